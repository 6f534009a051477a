"""Issue 13: every hostile input in corpus.py is refused cleanly, fast and small.

Cases run in subprocesses (a few per process, two processes at a time); each must end with a
documented refusal code (2, 3, 4 or 6) and exactly one ``gradwise: error:`` line that is not
the generic "unexpected" handler's and holds no control character, within 5 s and 500 MB:
at most 500 MiB more address space than the process had before the case (a hard RLIMIT_AS
per case), at most 500 MiB of resident growth (the kernel's VmHWM, reset per case) and of
traced allocation (tracemalloc); see corpus_worker.py. Controls must succeed. The summary
(cases per loader family, slowest case, largest peaks) is printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gradwise import cli
from reliability.corpus import CASES

WORKER = Path(__file__).with_name("corpus_worker.py")
PROCESSES = 2
AS_LIMIT = 6 << 30  # the hard cap for the imports; each case gets VmSize + 500 MiB (worker)
MAX_SECONDS = 5.0
MAX_PEAK = 500 << 20
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _run_chunk(names: list[str]) -> list[dict]:
    env = {**os.environ, "CORPUS_AS_BYTES": str(AS_LIMIT), "OMP_NUM_THREADS": "1",
           "GRADWISE_DEBUG": ""}
    result = subprocess.run([sys.executable, str(WORKER), *names], capture_output=True,
                            text=True, timeout=240, env=env)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0, result.stderr[-3000:]
    return lines


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict]:
    names = sorted(CASES)
    chunks = [names[i::PROCESSES] for i in range(PROCESSES)]
    with ThreadPoolExecutor(PROCESSES) as pool:
        results = [row for rows in pool.map(_run_chunk, chunks) for row in rows]
    by_name = {row["name"]: row for row in results if "name" in row}
    rss = max(row["maxrss"] for row in results if "maxrss" in row)
    families = Counter(CASES[name][0] for name in by_name)
    slowest = max(by_name.values(), key=lambda row: row["seconds"])
    largest = max(by_name.values(), key=lambda row: row["peak"])
    grown = max(by_name.values(), key=lambda row: row["rss_growth"] or 0)
    print(f"\nhostile corpus: {len(by_name)} cases {dict(families)}; slowest {slowest['name']} "
          f"{slowest['seconds']:.2f} s; largest traced peak {largest['name']} "
          f"{largest['peak'] / 2**20:.1f} MiB; largest resident growth {grown['name']} "
          f"{(grown['rss_growth'] or 0) / 2**20:.1f} MiB; worker max RSS {rss / 2**20:.0f} MiB")
    return by_name


def test_the_corpus_is_large_and_covers_every_loader(outcomes):
    assert len(CASES) >= 120
    assert set(outcomes) == set(CASES)
    families = {family for family, _, _ in CASES.values()}
    assert families >= {"weights", "checkpoint", "run_json", "run_config", "config_file", "idx",
                        "picture", "argv", "digest"}


REFUSALS = (cli.EXIT_USAGE, cli.EXIT_DATA, cli.EXIT_RUN, cli.EXIT_SYSTEM)


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_is_refused_cleanly(outcomes, name):
    row = outcomes[name]
    assert not row["timed_out"], f"{name}: still running after {MAX_SECONDS} s"
    lines = [line for line in row["err"].splitlines() if line.strip()]
    if row["ok"]:
        assert row["code"] == 0, row["err"]
    else:
        # a documented refusal (usage, data, run folder, system), never 1 (a bug) or 0
        assert row["code"] in REFUSALS, (row["code"], row["err"])
        errors = [line for line in lines if line.startswith("gradwise: error: ")]
        assert len(errors) == 1, row["err"]
        assert not errors[0].startswith("gradwise: error: unexpected "), errors[0]
        assert "Traceback" not in row["err"]
    # no terminal escape, carriage return or stray line reaches the screen, on either stream
    assert not CONTROL.search(row["err"].replace("\n", "")), repr(row["err"])
    assert not CONTROL.search(row["out"].replace("\n", "")), repr(row["out"])
    assert row["seconds"] < MAX_SECONDS, f"{name}: {row['seconds']:.2f} s"
    assert row["peak"] < MAX_PEAK, f"{name}: peak {row['peak'] / 2**20:.0f} MiB"
    if row["rss_growth"] is not None:
        growth = row["rss_growth"] / 2**20
        assert row["rss_growth"] < MAX_PEAK, f"{name}: resident +{growth:.0f} MiB"
