"""Issue 14: benchmark verdicts refuse to call met/missed when the load or the spread of the
rounds says the ratio only measured the machine."""

import os
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))
_common = pytest.importorskip("_common")


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    monkeypatch.setattr(_common, "_PEAK_LOAD", [0.0])
    monkeypatch.setattr(_common, "_LAST_SPREAD", [1.0])


def test_quiet_machine_gets_a_verdict(quiet):
    assert "met" in _common.verdict(0.5, 0.75) and "busy" not in _common.verdict(0.5, 0.75)
    assert "MISSED" in _common.verdict(0.9, 1.0, lower_is_better=False)


def test_load_above_cores_is_not_a_verdict(quiet, monkeypatch):
    busy = (os.cpu_count() or 1) + 1.5
    monkeypatch.setattr(os, "getloadavg", lambda: (busy, busy, busy))
    assert "load average at start" in _common.load_line("start")
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    text = _common.verdict(0.12, 0.8)  # the peak seen at start counts
    assert "machine busy: not a verdict" in text and "met" not in text.split("(")[1]


def test_spread_rounds_are_not_a_verdict(quiet):
    calls = iter([0.001, 0.01, 0.001, 0.001])

    def jumpy():
        import time
        time.sleep(next(calls))

    _common.interleaved({"jumpy": jumpy}, repeats=3, warmup=1, pause=0)
    assert "machine busy: not a verdict; rounds spread" in _common.verdict(0.5, 0.75)
