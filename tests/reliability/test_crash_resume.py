"""SIGKILL at random moments never costs the saved work, and resuming is bitwise exact.

Two ways to run training, each killed with SIGKILL at seeded random moments, KILLS times:
- ``script``: tests/reliability/crash_run.py (Trainer.fit with a mid-epoch checkpoint every 5
  steps, the hardest case for exact resume, plus EarlyStopping that restores its best weights,
  ModelCheckpoint(save_best_only) keeping best/ and a JSON Lines log);
- ``cli``: ``gradwise train spiral --out RUN`` (a checkpoint at every epoch end), resumed with
  ``gradwise train --resume RUN``.
After every kill the run's checkpoint must verify (sizes and SHA-256 of every file the manifest
names), its step must never go backwards, and nothing else in it may look like a checkpoint.
Each kill lands a random (seeded) fraction of a save interval after the run has saved two new
checkpoints, the interval being the one measured between those two saves: the kills follow the
run's own pace, so a fast machine cannot finish the run between kills and a slow one still
makes progress in every cycle.
The run is then resumed to the end: its final weights must equal, bit for bit, those of a
run that was never interrupted, and so must every file of its folder (checkpoints, best/,
history, metrics, run.json), apart from wall-clock fields (see reliability/folders.py); the
same stop epoch follows. No temporary file is left once the resumed run has finished.
SIGINT and SIGTERM to the CLI must save a checkpoint, exit
130 / 143 with a message saying how to resume, and resume to the same weights.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

from gradwise._atomic import is_atomic_temp_name
from gradwise.train.checkpoint import MANIFEST_NAME, load_checkpoint
from reliability.folders import assert_same_folders

LONG = bool(os.environ.get("GRADWISE_LONG_TESTS"))
KILLS = int(os.environ.get("GRADWISE_KILLS", 25 if LONG else 5))
RUN_TIMEOUT_S = 180
# A kill cycle uses two saves plus a fraction of a third interval (more only when the poll
# misses a save): these totals leave room for KILLS cycles several times over.
CLI_EPOCHS = str(max(40, 8 * KILLS))  # a checkpoint at every epoch end
# 30 steps, six checkpoints, per epoch; EarlyStopping ends the run at epoch 20
SCRIPT_EPOCHS = "30"


@dataclass(frozen=True)
class Runner:
    """How to start, resume and inspect one kind of training run."""

    command: Callable[[Path], list[str]]
    checkpoint: Callable[[Path], Path]
    final_weights: Callable[[Path], Path]


def _script_command(run_dir: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).with_name("crash_run.py")), str(run_dir),
            SCRIPT_EPOCHS]


def _cli_command(run_dir: Path) -> list[str]:
    cli = [sys.executable, "-m", "gradwise.cli", "train"]
    if (run_dir / "checkpoints" / "last" / MANIFEST_NAME).exists():
        return [*cli, "--resume", str(run_dir)]
    # Killed before the first epoch ended: there is nothing to resume, so start again.
    shutil.rmtree(run_dir, ignore_errors=True)
    return [*cli, "spiral", "--epochs", CLI_EPOCHS, "--out", str(run_dir), "--no-doctor"]


RUNNERS = {
    "script": Runner(_script_command, lambda d: d / "last", lambda d: d / "final.safetensors"),
    "cli": Runner(_cli_command, lambda d: d / "checkpoints" / "last",
                  lambda d: d / "weights.safetensors"),
}


def _start(runner: Runner, run_dir: Path) -> subprocess.Popen:
    """Start (or resume) the run; return once it has printed its first line (training is on)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    process = subprocess.Popen(runner.command(run_dir), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdout.readline(), process.stderr.read()
    return process


def _run_to_end(runner: Runner, run_dir: Path) -> dict[str, np.ndarray]:
    """Run (or resume) to the end; return the final weights."""
    process = _start(runner, run_dir)
    _, err = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == 0, err
    return safetensors.numpy.load_file(str(runner.final_weights(run_dir)))


def _temp_files(run_dir: Path) -> list[Path]:
    return [path for path in run_dir.rglob("*") if is_atomic_temp_name(path.name)]


def _save_interval(process: subprocess.Popen, manifest: Path) -> float:
    """Wait for two new saves of ``manifest``; return the seconds between them (the pace).

    Killing on events, a fraction of the run's own pace later, rather than after fixed delays
    keeps the test independent of machine speed: the run cannot finish before the last kill,
    however slow or fast the machine is.
    """
    _wait_for_a_new_save(process, manifest)
    first = time.perf_counter()
    _wait_for_a_new_save(process, manifest)
    return time.perf_counter() - first


def _wait_for_a_new_save(process: subprocess.Popen, manifest: Path) -> None:
    """Block until ``manifest`` is (re)written."""

    def signature() -> tuple[int, int] | None:
        try:
            info = manifest.stat()
        except FileNotFoundError:
            return None
        return info.st_mtime_ns, info.st_ino

    before = signature()
    deadline = time.perf_counter() + RUN_TIMEOUT_S
    while signature() in (before, None):
        assert process.poll() is None, "the run ended before saving a new checkpoint"
        assert time.perf_counter() < deadline, "no new checkpoint within the time limit"
        time.sleep(0.002)


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


def assert_same_weights(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert got.keys() == expected.keys()
    for name, array in expected.items():
        assert got[name].tobytes() == array.tobytes(), f"{name} differs after resuming"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, np.ndarray]]:
    """Final weights of an uninterrupted run, per runner (computed on first use); its folder
    is ``reference["<runner>-folder"]``."""

    class Lazy(dict):
        def __missing__(self, name: str) -> dict[str, np.ndarray]:
            folder = tmp_path_factory.mktemp(f"ref-{name}") / "run"
            folder.mkdir()
            self[name] = _run_to_end(RUNNERS[name], folder)
            self[f"{name}-folder"] = folder
            return self[name]

    return Lazy()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("runner_name", sorted(RUNNERS))
def test_sigkill_at_random_moments_then_resume_is_bitwise_exact(
    tmp_path: Path, runner_name: str, reference: dict
) -> None:
    runner = RUNNERS[runner_name]
    expected = reference[runner_name]
    run_dir = tmp_path / "run"  # the same name as the reference's: run.json holds no path
    run_dir.mkdir()
    fractions = np.random.default_rng(7).uniform(0.0, 1.0, size=KILLS)
    steps: list[int] = []
    for fraction in fractions:
        process = _start(runner, run_dir)
        interval = _save_interval(process, runner.checkpoint(run_dir) / MANIFEST_NAME)
        time.sleep(float(fraction) * interval)  # a random moment before or in the next save
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=RUN_TIMEOUT_S)
        steps.append(check_last_good_checkpoint(runner.checkpoint(run_dir)))
    assert steps == sorted(steps), f"the saved step went backwards across kills: {steps}"
    assert not runner.final_weights(run_dir).exists(), "a run finished before being killed"
    leftovers = list(runner.checkpoint(run_dir).glob(".*.tmp"))
    print(f"{runner_name}: {KILLS} kills survived; checkpoint steps after each {steps}; "
          f"temp files left {len(leftovers)}")

    resumed = _run_to_end(runner, run_dir)
    assert_same_weights(resumed, expected)
    assert_same_folders(run_dir, reference[f"{runner_name}-folder"])
    assert _temp_files(run_dir) == []


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("signal_number", "exit_code"),
                         [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_interrupt_saves_checkpoint_and_resumes_exactly(
    tmp_path: Path, reference: dict, signal_number: int, exit_code: int
) -> None:
    runner = RUNNERS["cli"]
    expected = reference["cli"]
    run_dir = tmp_path / "run"
    process = _start(runner, run_dir)
    _wait_for_a_new_save(process, runner.checkpoint(run_dir) / MANIFEST_NAME)
    process.send_signal(signal_number)
    _, err = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == exit_code, err
    assert f"gradwise train --resume {run_dir}" in err
    assert "Traceback" not in err
    check_last_good_checkpoint(runner.checkpoint(run_dir))

    resumed = _run_to_end(runner, run_dir)
    assert_same_weights(resumed, expected)
