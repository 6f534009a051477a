"""Run hostile-corpus cases in this process: ``python corpus_worker.py CASE [CASE ...]``.

Started by test_hostile_corpus.py (several cases per process, to keep the suite fast). Memory
is bounded and measured three ways, per case:

- **address space**: before each case the soft ``RLIMIT_AS`` is set to the address space the
  process already uses (``VmSize``: the interpreter, numpy, numba and Pillow reserve ~1.5 GB
  before any work) plus ``CASE_BUDGET`` (500 MiB), so a case that tries to map more fails
  here (and the test sees an "unexpected MemoryError") instead of swapping the machine; the
  hard limit stays at ``CORPUS_AS_BYTES`` for the imports;
- **resident memory**: the kernel's high-water mark (``VmHWM``) is reset before the case
  (``/proc/self/clear_refs``, "5") and read after it: ``rss_growth`` is how far the peak
  resident size rose above the size at the start of the case;
- **traced allocations**: the tracemalloc peak (Python objects and NumPy buffers).

Each case also gets a fresh folder and a 5-second alarm; one JSON line per case: name, exit
code, stderr, seconds, peaks.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import resource
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASE_SECONDS = 5.0
CASE_BUDGET = 500 << 20
"""The address space, resident growth and traced peak one case may use (issue 13: 500 MB)."""


def _status(field: str) -> int:
    """``field`` (VmSize, VmRSS, VmHWM) of /proc/self/status, in bytes; 0 where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _mark(label: str) -> None:
    """A line in an strace log (test_files_opened.py): an open that fails (ENOTDIR) and
    touches nothing."""
    with contextlib.suppress(OSError):
        os.close(os.open(f"/dev/null/corpus-mark-{label}", os.O_RDONLY))


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class CaseTimeout(BaseException):
    """A case ran past CASE_SECONDS (a BaseException, so no handler in gradwise swallows it)."""


def _alarm(signum, frame):
    raise CaseTimeout


def build_bases(root: Path) -> dict[str, Path]:
    """A real 2-epoch spiral run and an untrained image run, for the cases to copy."""
    from gradwise.cli import main

    spiral = root / "spiral"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["train", "spiral", "--epochs", "2", "--no-doctor", "--quiet",
                     "--out", str(spiral)])
    assert code == 0, "the base spiral run failed"
    digits = digits_run(root / "digits")
    return {"spiral": spiral, "digits": digits}


def digits_run(digits: Path) -> Path:
    """An image-recipe run folder (digits-mlp, freshly initialised weights, the weights'
    SHA-256 in run.json), made without training."""
    import numpy as np

    from gradwise.recipes import TrainConfig, build_model
    from gradwise.safetensors_io import dump_safetensors

    digits.mkdir(parents=True)
    config = TrainConfig.from_recipe("digits-mlp")
    (digits / "config.json").write_text(json.dumps(config.to_dict()))
    state = build_model(config, (1, 28, 28), 10).state_dict()
    payload = dump_safetensors({k: np.asarray(v) for k, v in state.items()})
    (digits / "weights.safetensors").write_bytes(payload)
    (digits / "run.json").write_text(json.dumps({
        "format": "gradwise.run", "recipe": "digits-mlp", "dataset": "digits",
        "input_shape": [1, 28, 28], "classes": [str(d) for d in range(10)], "mean": 0.1,
        "std": 0.3, "status": "finished", "weights_sha256": hashlib.sha256(payload).hexdigest()}))
    return digits


def main(names: list[str]) -> None:
    limit = int(os.environ.get("CORPUS_AS_BYTES", 0))
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from corpus import CASES  # noqa: I001 - after the path set-up above

    from gradwise.cli import main as gradwise

    with tempfile.TemporaryDirectory() as root:
        bases = build_bases(Path(root) / "bases")
        signal.signal(signal.SIGALRM, _alarm)
        for index, name in enumerate(names):
            family, build, ok = CASES[name]
            folder = Path(root) / f"case{index}"
            folder.mkdir()
            try:
                argv = build(folder, bases)
            except Exception as error:  # a broken case is reported, not fatal to the others
                print(json.dumps({"name": name, "code": None, "err": f"build failed: {error!r}",
                                  "seconds": 0.0, "peak": 0, "timed_out": False, "ok": ok}))
                continue
            if os.environ.get("CORPUS_TRACE_MARKS"):
                _mark(f"start-{index}")
            out, err = io.StringIO(), io.StringIO()
            hard = resource.getrlimit(resource.RLIMIT_AS)[1]
            budget = _status("VmSize") + CASE_BUDGET
            if budget > CASE_BUDGET and (hard == resource.RLIM_INFINITY or budget < hard):
                resource.setrlimit(resource.RLIMIT_AS, (budget, hard))
            rss_measured = _reset_peak_rss()
            rss_before = _status("VmRSS")
            tracemalloc.start()
            started = time.perf_counter()
            timed_out = False
            signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = gradwise(argv)
            except CaseTimeout:
                code, timed_out = -1, True
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            seconds = time.perf_counter() - started
            if os.environ.get("CORPUS_TRACE_MARKS"):
                _mark(f"end-{index}")
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rss_growth = _status("VmHWM") - rss_before if rss_measured else None
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
            print(json.dumps({"name": name, "code": code, "err": err.getvalue()[-2000:],
                              "out": out.getvalue()[-2000:], "seconds": seconds, "peak": peak,
                              "rss_growth": rss_growth, "timed_out": timed_out, "ok": ok}),
                  flush=True)
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"maxrss": usage}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
