"""SIGKILL at random moments never costs the saved work, and resuming is bitwise exact.

A training subprocess (tests/reliability/crash_run.py: a spiral MLP with Adam, a mid-epoch
checkpoint every 3 steps) is killed with SIGKILL at seeded random moments, KILLS times. After
every kill the run directory must hold a checkpoint that load_checkpoint verifies (sizes and
SHA-256 of every file the manifest names), whose step never goes backwards, and nothing that a
loader could mistake for a checkpoint. Then the run is resumed to the end, and its final weights
must equal, bit for bit, those of a run that was never interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

from gradwise.train.checkpoint import MANIFEST_NAME, load_checkpoint

SCRIPT = Path(__file__).with_name("crash_run.py")
KILLS = int(os.environ.get("GRADWISE_KILLS", 25 if os.environ.get("GRADWISE_LONG_TESTS") else 5))
RUN_TIMEOUT_S = 120


def _start(run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(run_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _run_to_end(run_dir: Path) -> tuple[dict[str, np.ndarray], float]:
    """Run (or resume) to the end; return the final weights and the seconds spent training."""
    process = _start(run_dir)
    assert process.stdout.readline().strip() == "STARTED", process.stderr.read()
    started = time.perf_counter()
    out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    seconds = time.perf_counter() - started
    assert process.returncode == 0 and "DONE" in out, err
    return safetensors.numpy.load_file(str(run_dir / "final.safetensors")), seconds


def _kill_at(run_dir: Path, delay: float) -> None:
    """Start the run, wait until training begins, sleep ``delay`` s, then SIGKILL it."""
    process = _start(run_dir)
    assert process.stdout.readline().strip() == "STARTED", process.stderr.read()
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=RUN_TIMEOUT_S)


def check_last_good_checkpoint(checkpoint_dir: Path) -> int:
    """The checkpoint verifies, and every other file in it is one the loader never reads.

    Returns the checkpoint's step. Leftovers a kill may leave are hidden temporary files
    (``.name.XXXX.tmp``, never named by a manifest) and array files from a save whose manifest
    was never written (content-addressed names the manifest does not list).
    """
    data = load_checkpoint(checkpoint_dir)
    named = {MANIFEST_NAME} | {entry["file"] for entry in data.meta["files"].values()}
    for path in checkpoint_dir.iterdir():
        if path.name in named:
            continue
        assert path.name.startswith(".") and path.name.endswith(".tmp") or (
            path.name.endswith(".safetensors")
        ), f"unexpected file in the checkpoint folder: {path.name}"
    assert all(np.all(np.isfinite(array)) for array in data.model_state.values())
    return int(data.trainer_state["step"])


@pytest.mark.timeout(300)
def test_sigkill_at_random_moments_then_resume_is_bitwise_exact(tmp_path: Path) -> None:
    expected, training_seconds = _run_to_end(tmp_path / "reference")

    run_dir = tmp_path / "killed"
    run_dir.mkdir()
    # Random moments that together cover at most 80% of the run, so the last kill still lands
    # before the end (a resumed run also spends time reloading).
    shares = np.random.default_rng(7).uniform(0.2, 1.0, size=KILLS + 1)
    delays = 0.8 * training_seconds * shares[:KILLS] / shares.sum()
    steps: list[int] = []
    for delay in delays:
        _kill_at(run_dir, float(delay))
        checkpoint = run_dir / "last"
        if steps or (checkpoint / MANIFEST_NAME).exists():
            steps.append(check_last_good_checkpoint(checkpoint))
    assert len(steps) == KILLS, "a kill landed before the first checkpoint of the whole run"
    assert steps == sorted(steps), f"the saved step went backwards across kills: {steps}"
    assert not (run_dir / "final.safetensors").exists(), "a run finished before being killed"

    leftovers = [p.name for p in (run_dir / "last").iterdir() if p.name.endswith(".tmp")]
    print(f"{KILLS} kills survived; saved steps {steps}; temp files left: {len(leftovers)}")
    resumed, _ = _run_to_end(run_dir)
    assert resumed.keys() == expected.keys()
    for name, array in expected.items():
        assert resumed[name].tobytes() == array.tobytes(), f"{name} differs after resuming"
