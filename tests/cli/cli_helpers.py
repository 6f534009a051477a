"""Helpers shared by the CLI tests: run the command in-process, read a run folder back."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

from gradwise.cli import main

RUN_FILES = ("config.json", "run.json", "metrics.jsonl", "history.json", "weights.safetensors",
             "checkpoints/last/checkpoint.json", "checkpoints/best/checkpoint.json")
GRADWISE = Path(sys.executable).with_name("gradwise")
TOP3_LINE = re.compile(r"^(?P<path>.+?): (?P<ranked>.+ \d+\.\d%, .+ \d+\.\d%, .+ \d+\.\d%)$")


def module_available(name: str) -> bool:
    """Whether a gradwise module is part of this build (and imports cleanly)."""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


@dataclass
class Result:
    code: int
    out: str
    err: str


def gradwise(capsys: pytest.CaptureFixture[str], *args: object) -> Result:
    """Run ``gradwise ARGS`` in this process and capture what it printed."""
    capsys.readouterr()
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def assert_one_line_error(result: Result, code: int = 2, fragment: str = "") -> None:
    """A failure reported as exactly one ``gradwise: error: ...`` line on stderr."""
    assert result.code == code, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("gradwise: error: "), lines[0]
    assert "Traceback" not in result.err + result.out
    assert fragment in lines[0], (fragment, lines[0])


def run_info(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def weights(run_dir: Path) -> dict[str, np.ndarray]:
    return safetensors.numpy.load_file(run_dir / "weights.safetensors")


def assert_same_weights(first: Path, second: Path) -> None:
    a, b = weights(first), weights(second)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def spawn(*args: object) -> subprocess.Popen[str]:
    """Start the installed ``gradwise`` entry point with unbuffered, captured output."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [str(GRADWISE), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )


def wait_for_line(process: subprocess.Popen[str], prefix: str) -> list[str]:
    """Read stdout until a line starts with ``prefix``; fail if the process ends first."""
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(prefix):
            return seen
    process.wait()
    raise AssertionError(f"no line starting {prefix!r}; stdout: {''.join(seen)}"
                         f"stderr: {process.stderr.read()}")


def epoch_interval(process: subprocess.Popen[str], prefix: str = "epoch ") -> float | None:
    """Seconds between the next two stdout lines starting with ``prefix``: the run's own pace.

    Returns None when stdout ends first (the run finished, or failed: check its return code).
    Tests that kill a run a random fraction of this interval after an epoch line can never
    overshoot by more than about one epoch, on a fast machine or a slow one.
    """
    stamps: list[float] = []
    for line in process.stdout:
        if line.startswith(prefix):
            stamps.append(time.perf_counter())
            if len(stamps) == 2:
                return stamps[1] - stamps[0]
    return None
