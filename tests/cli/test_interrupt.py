"""Ctrl-C/SIGTERM during `gradwise train` checkpoints and exits; `--resume` finishes the run with
the weights an uninterrupted run gets; a SIGKILL never leaves an unloadable checkpoint."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess

import numpy as np
import pytest

from cli.cli_helpers import (
    assert_same_weights,
    epoch_interval,
    gradwise,
    run_info,
    spawn,
    wait_for_line,
)
from gradwise.train import load_checkpoint

# 225 steps per epoch: a signal lands mid-epoch, and the run outlasts the test's reaction time
SPIRAL = ("train", "spiral", "--epochs", "12", "--batch-size", "4", "--no-doctor")


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """The same training, never interrupted."""
    from gradwise.cli import main

    run_dir = tmp_path_factory.mktemp("cli-interrupt") / "reference"
    assert main([*SPIRAL, "--out", str(run_dir), "--quiet"]) == 0
    return run_dir


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_a_checkpoint_and_resume_finishes_identically(
    capsys, tmp_path, reference_run, signum, code
) -> None:
    run_dir = tmp_path / "run"
    process = spawn(*SPIRAL, "--out", run_dir)
    wait_for_line(process, "epoch 1/12")
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1]
    assert message.startswith("Interrupted at epoch ")
    assert message.endswith(f"checkpoint saved. Resume with: gradwise train --resume {run_dir}")
    info = run_info(run_dir)
    assert info["status"] == "interrupted"
    assert info["interrupted_by"] == signal.Signals(signum).name
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "last")
    assert checkpoint.trainer_state["step"] == info["step"]
    assert not (run_dir / "weights.safetensors").exists()
    partial = gradwise(capsys, "evaluate", run_dir)  # an unfinished run evaluates its checkpoint
    assert partial.code == 0 and "Test accuracy:" in partial.out

    result = gradwise(capsys, "train", "--resume", run_dir, "--quiet")
    assert result.code == 0, result.err
    assert run_info(run_dir)["status"] == "finished"
    assert_same_weights(run_dir, reference_run)


def test_sigkill_at_random_moments_leaves_a_resumable_run(capsys, tmp_path, reference_run):
    """Each kill lands a random fraction of an epoch after two epochs ended, timed by the run's
    own pace, so three kill cycles use at most about nine of the twelve epochs on any machine."""
    run_dir = tmp_path / "run"
    rng = np.random.default_rng(7)
    process = spawn(*SPIRAL, "--out", run_dir)
    for kill in range(3):
        interval = epoch_interval(process)
        if interval is None:  # the run ended by itself (it cannot have been killed)
            _, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
        else:
            try:
                process.wait(timeout=float(rng.uniform(0.0, interval)))
            except subprocess.TimeoutExpired:  # still running: the usual case
                process.kill()
            process.communicate(timeout=60)
        checkpoint = load_checkpoint(run_dir / "checkpoints" / "last")  # loads and verifies
        assert checkpoint.trainer_state["epoch"] >= 1, kill
        if run_info(run_dir).get("status") == "finished":
            break
        process = spawn("train", "--resume", run_dir)
    else:
        process.kill()
        process.communicate(timeout=60)
        result = gradwise(capsys, "train", "--resume", run_dir, "--quiet")
        assert result.code == 0, result.err
    assert_same_weights(run_dir, reference_run)


def _unfinish(run_dir):
    """Make a finished run look killed after its last checkpoint, before "finished"."""
    info = run_info(run_dir)
    for name in ("weights.safetensors", "history.json", "report.html"):
        (run_dir / name).unlink(missing_ok=True)
    info.update(status="running")
    for key in ("test_loss", "test_accuracy", "stop_reason", "seconds"):
        info.pop(key, None)
    (run_dir / "run.json").write_text(json.dumps(info))


def test_resume_after_the_only_epoch_says_the_1_epoch(capsys, tmp_path) -> None:
    from gradwise.cli import main

    run_dir = tmp_path / "run"
    at = SPIRAL.index("--epochs") + 1
    one_epoch = [*SPIRAL[:at], "1", *SPIRAL[at + 1:]]
    assert main([*one_epoch, "--out", str(run_dir), "--quiet"]) == 0
    _unfinish(run_dir)
    result = gradwise(capsys, "train", "--resume", run_dir)
    assert result.code == 0, result.err
    assert "The 1 epoch was done before the interruption; finishing the run" in result.out


def test_resume_after_the_last_epoch_finishes_the_run_and_says_so(capsys, tmp_path, reference_run):
    """A kill after the last checkpoint but before the run was marked finished: the resume has
    no epoch left to train, so it writes the final weights, scores the test set and says so."""
    run_dir = tmp_path / "run"
    shutil.copytree(reference_run, run_dir)
    _unfinish(run_dir)

    result = gradwise(capsys, "train", "--resume", run_dir)
    assert result.code == 0, result.err
    assert "All 12 epochs were done before the interruption; finishing the run" in result.out
    assert not any(line.startswith("epoch ") for line in result.out.splitlines())  # no training
    assert run_info(run_dir)["status"] == "finished"
    assert run_info(run_dir)["test_accuracy"] == run_info(reference_run)["test_accuracy"]
    assert_same_weights(run_dir, reference_run)
