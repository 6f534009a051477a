"""Run hostile-corpus cases in this process: ``python corpus_worker.py CASE [CASE ...]``.

Started by test_hostile_corpus.py (several cases per process, to keep the suite fast) under an
address-space cap (RLIMIT_AS, ``CORPUS_AS_BYTES``): a runaway allocation then fails here
instead of swapping the machine. Each case gets a fresh folder, a 5-second alarm and a
tracemalloc peak; prints one JSON line per case: name, exit code, stderr, seconds, peak bytes.
"""

from __future__ import annotations

import contextlib
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


class CaseTimeout(BaseException):
    """A case ran past CASE_SECONDS (a BaseException, so no handler in gradwise swallows it)."""


def _alarm(signum, frame):
    raise CaseTimeout


def build_bases(root: Path) -> dict[str, Path]:
    import numpy as np

    from gradwise.cli import main
    from gradwise.recipes import TrainConfig, build_model
    from gradwise.safetensors_io import dump_safetensors

    spiral = root / "spiral"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["train", "spiral", "--epochs", "2", "--no-doctor", "--quiet",
                     "--out", str(spiral)])
    assert code == 0, "the base spiral run failed"
    digits = root / "digits"
    digits.mkdir()
    config = TrainConfig.from_recipe("digits-mlp")
    (digits / "config.json").write_text(json.dumps(config.to_dict()))
    (digits / "run.json").write_text(json.dumps({
        "format": "gradwise.run", "recipe": "digits-mlp", "dataset": "digits",
        "input_shape": [1, 28, 28], "classes": [str(d) for d in range(10)], "mean": 0.1,
        "std": 0.3, "status": "finished"}))
    state = build_model(config, (1, 28, 28), 10).state_dict()
    (digits / "weights.safetensors").write_bytes(
        dump_safetensors({k: np.asarray(v) for k, v in state.items()}))
    return {"spiral": spiral, "digits": digits}


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
            out, err = io.StringIO(), io.StringIO()
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
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(json.dumps({"name": name, "code": code, "err": err.getvalue()[-2000:],
                              "seconds": seconds, "peak": peak, "timed_out": timed_out,
                              "ok": ok}), flush=True)
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"maxrss": usage}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
