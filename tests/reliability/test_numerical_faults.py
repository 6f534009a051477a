"""Numerical faults: a run that produces NaN stops with a diagnosis and never saves bad weights.

Two ways to diverge: a learning rate of 1e6 (weights blow up until the loss overflows) and a
planted log of a negative number at a chosen step (the loss turns NaN at once). The run saves a
checkpoint after every step and at every epoch end; afterwards every weights file in the run
folder must hold finite values and the last checkpoint must verify.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import gradwise as gw
from gradwise import nn, optim
from gradwise.data.toy import make_spirals
from gradwise.doctor import Doctor
from gradwise.train import (
    Callback,
    CheckpointError,
    ModelCheckpoint,
    NonFiniteLossWarning,
    TerminateOnNaN,
    Trainer,
    load_checkpoint,
)


class PlantedLogOfNegative(nn.Module):
    """Adds log(1) to the output, except on forward call ``at_call``: log(-1) = NaN."""

    def __init__(self, at_call: int):
        super().__init__()
        self.at_call, self.calls = at_call, 0

    def forward(self, x: gw.Tensor) -> gw.Tensor:
        self.calls += 1
        argument = -1.0 if self.calls == self.at_call else 1.0
        return x + gw.tensor(np.float32(argument)).log()


class CheckpointEveryStep(Callback):
    def __init__(self, path: Path):
        self.path = path

    def on_batch_end(self, step: int, logs: dict) -> None:
        self.trainer.save_checkpoint(self.path)


def _diverging_run(tmp_path: Path, fault: str) -> tuple[Trainer, Doctor]:
    """Train until the fault stops the run; per-step and per-epoch checkpoints under run/."""
    x, labels = make_spirals(n_samples=256, seed=0)
    rng = np.random.default_rng(0)
    if fault == "lr=1e6":
        # a linear regression diverges for sure (ReLUs could die and stall the blow-up)
        layers = [nn.Linear(2, 16, rng=rng), nn.Linear(16, 1, rng=rng)]
        y, loss_fn, lr = labels.astype(np.float32)[:, None], nn.MSELoss(), 1e6
    else:
        layers = [nn.Linear(2, 32, rng=rng), nn.ReLU(), nn.Linear(32, 2, rng=rng),
                  PlantedLogOfNegative(at_call=20)]
        y, loss_fn, lr = labels, nn.CrossEntropyLoss(), 0.05
    model = nn.Sequential(*layers)
    doctor = Doctor()
    trainer = Trainer(
        model, loss_fn, optim.SGD(model.parameters(), lr=lr), progress=False, doctor=doctor,
        callbacks=[TerminateOnNaN(), CheckpointEveryStep(tmp_path / "run" / "step"),
                   ModelCheckpoint(tmp_path / "run", monitor="loss", save_last=True)],
    )
    with pytest.warns(NonFiniteLossWarning, match="training stopped"), \
            np.errstate(all="ignore"):
        trainer.fit((x, y), epochs=50, batch_size=16)
    return trainer, doctor


def check_no_non_finite_weights_saved(run_dir: Path) -> int:
    """Every safetensors file under ``run_dir`` is finite; return how many were checked."""
    files = sorted(run_dir.rglob("*.safetensors"))
    for path in files:
        for name, array in safetensors.numpy.load_file(str(path)).items():
            assert np.all(np.isfinite(array)), f"{path}: {name} holds non-finite values"
    return len(files)


@pytest.mark.parametrize("fault", ["lr=1e6", "log(-1) at step 20"])
def test_diverging_run_stops_keeps_last_good_checkpoint(tmp_path: Path, fault: str) -> None:
    trainer, doctor = _diverging_run(tmp_path, fault)
    assert trainer.history.stop_reason is not None
    assert "loss is nan" in trainer.history.stop_reason or "loss is inf" in (
        trainer.history.stop_reason)
    assert "lower learning rate" in trainer.history.stop_reason
    assert check_no_non_finite_weights_saved(tmp_path / "run") >= 1
    last_good = load_checkpoint(tmp_path / "run" / "step")
    assert last_good.trainer_state["step"] == trainer.step  # the step before the fault
    assert doctor.problems, "the doctor found nothing wrong in a diverged run"


def test_lr_too_high_is_diagnosed_by_the_doctor(tmp_path: Path) -> None:
    _, doctor = _diverging_run(tmp_path, "lr=1e6")
    names = {finding.name for finding in doctor.problems}
    assert names & {"lr_too_high", "exploding_gradients", "non_finite_values"}, names


def test_non_finite_weights_are_never_checkpointed(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(2, 4, rng=rng))
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                      progress=False)
    trainer.save_checkpoint(tmp_path / "ckpt")
    before = load_checkpoint(tmp_path / "ckpt").model_state
    model[0].weight.data[1, 1] = np.nan
    with pytest.raises(CheckpointError, match=r"non-finite values in 0\.weight"):
        trainer.save_checkpoint(tmp_path / "ckpt")
    after = load_checkpoint(tmp_path / "ckpt").model_state
    assert all(after[k].tobytes() == before[k].tobytes() for k in before)


# Found by this test and fixed in gradwise.runs: a NaN test loss made the run.json write raise.
def test_cli_diverging_run_ends_with_a_diagnosis(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "gradwise.cli", "train", "spiral", "--optimizer", "sgd",
         "--lr", "1e6", "--epochs", "3", "--out", str(run_dir)],
        capture_output=True, text=True, timeout=120,
    )
    assert "Traceback" not in result.stderr
    assert "unexpected" not in result.stderr, result.stderr
    assert "training stopped" in result.stdout + result.stderr
    check_no_non_finite_weights_saved(run_dir)
