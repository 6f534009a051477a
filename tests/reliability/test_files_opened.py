"""Issue 13: a hostile run folder (or data folder, or picture) makes gradwise open nothing
outside itself and the Python installation, traced with ``strace -f -e trace=open,openat``.

The corpus cases that plant links and special files (symlinks to ``/etc/passwd``,
``/etc/hostname``, ``/dev/zero``, a dangling ``/nonexistent`` target, FIFOs, absolute and
``../`` names in manifests), the digest forgeries and the controls run in one worker under
strace. The worker marks the start and end of each case with an open of
``/dev/null/corpus-mark-...`` (fails with ENOTDIR, touches nothing), and every open attempted
between the marks, successful or not, must lie in the case's own folder, the Python
installation or gradwise's source, or be one of the few kernel files gradwise reads on
purpose (``/proc/meminfo`` for the memory caps) or the worker reads to measure memory
(``/proc/self/status``, ``/proc/self/clear_refs``). Skipped, with the reason, where strace is
not installed or may not trace (no ptrace in the container); CI installs it (.ci/run).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reliability.corpus import CASES

WORKER = Path(__file__).with_name("corpus_worker.py")
PLANTED = re.compile(r"outside|dev_zero|dangling|absolute|parent_path|fifo")
TARGETS = ("/etc/passwd", "/etc/hostname", "/dev/zero", "/nonexistent")
KERNEL_FILES = ("/proc/meminfo", "/proc/self/status", "/proc/self/clear_refs")
OPEN = re.compile(r'\bopen(?:at2?)?\((?:AT_FDCWD, )?"((?:[^"\\]|\\.)*)"')
MARK = re.compile(r'"/dev/null/corpus-mark-(start|end)-(\d+)"')


def _traced_cases() -> list[str]:
    return sorted(name for name, (family, _, _) in CASES.items()
                  if PLANTED.search(name) or family in ("control", "digest"))


def _allowed_roots() -> list[str]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(__file__).resolve().parents[2] / "src"), str(Path(__file__).parent)}
    roots |= {os.path.realpath(root) for root in list(roots)}
    return sorted(roots)


def _run_traced(tmp_path: Path, names: list[str]) -> str:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (apt-get install strace; .ci/run does)")
    log = tmp_path / "strace.log"
    env = {**os.environ, "CORPUS_TRACE_MARKS": "1", "OMP_NUM_THREADS": "1",
           "GRADWISE_DEBUG": "", "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [strace, "-f", "-qq", "-s", "4096", "-e", "trace=open,openat,openat2,creat",
         "-o", str(log), sys.executable, str(WORKER), *names],
        capture_output=True, text=True, timeout=300, env=env)
    if result.returncode != 0 and "ptrace" in result.stderr.lower():
        pytest.skip(f"strace may not trace here: {result.stderr.strip().splitlines()[0]}")
    assert result.returncode == 0, result.stderr[-3000:]
    return log.read_text(errors="replace")


def _opens_per_case(trace: str) -> dict[int, list[str]]:
    """Paths opened between each case's start and end marks (every traced process)."""
    opened: dict[int, list[str]] = {}
    current: int | None = None
    for line in trace.splitlines():
        mark = MARK.search(line)
        if mark:
            current = int(mark.group(2)) if mark.group(1) == "start" else None
            continue
        match = OPEN.search(line)
        if match and current is not None:
            opened.setdefault(current, []).append(match.group(1))
    return opened


def test_hostile_folders_open_nothing_outside_themselves(tmp_path):
    names = _traced_cases()
    assert len(names) >= 40
    trace = _run_traced(tmp_path, names)
    opened = _opens_per_case(trace)
    assert set(opened) <= set(range(len(names)))
    roots = _allowed_roots()
    problems = []
    for index, paths in sorted(opened.items()):
        case_root = None
        for path in paths:
            if path in KERNEL_FILES:
                continue
            real = os.path.realpath(path) if not path.startswith("/dev/null/") else path
            if "/case" in path:
                case_root = case_root or re.sub(r"(/case\d+)/.*", r"\1", path)
            inside_case = case_root is not None and (path.startswith(case_root + "/")
                                                     or real.startswith(case_root + "/"))
            if inside_case or any(path.startswith(root + "/") for root in roots):
                continue
            problems.append(f"{names[index]}: opened {path}")
    assert not problems, "\n".join(problems[:20])
    everything = [path for paths in opened.values() for path in paths]
    for target in TARGETS:
        assert not any(path == target or path.startswith(target + "/") for path in everything), (
            f"{target} was opened")
    # the trace saw the cases' own files, so an empty log cannot pass
    assert sum(len(paths) for paths in opened.values()) > len(names)
