"""A resumed run equals an uninterrupted one: weights, history, best/ and stop epoch (issue 13,
items 1 and 2), whatever epoch or step it was interrupted at, with EarlyStopping,
ModelCheckpoint(save_best_only) and ReduceLROnPlateau carrying state across the resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import gradwise as gw
from gradwise.data.toy import make_spirals
from gradwise.train import Callback, CheckpointError, EarlyStopping, ModelCheckpoint, Trainer
from reliability.folders import assert_same_folders
from train.train_helpers import mlp

EPOCHS = 40


class StopAt(Callback):
    """Interrupt the run (as Ctrl-C would) after epoch ``epoch`` or at optimizer step ``step``."""

    def __init__(self, epoch: int | None = None, step: int | None = None):
        self.epoch, self.step = epoch, step

    def on_batch_end(self, step: int, logs: dict) -> None:
        if self.step is not None and step + 1 == self.step:
            self.trainer.request_stop("interrupted", resumable=True)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if self.epoch is not None and epoch + 1 == self.epoch:
            self.trainer.request_stop("interrupted", resumable=True)


def _data():
    x, y = make_spirals(n_samples=240, seed=0)
    return (x[:180], y[:180]), (x[180:], y[180:])


def _trainer(folder: Path, extra: list[Callback] = ()) -> Trainer:
    model = mlp([2, 24, 2], seed=1)
    optimizer = gw.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    scheduler = gw.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
    callbacks = [
        EarlyStopping(monitor="val_accuracy", patience=3, restore_best_weights=True),
        *extra,
        ModelCheckpoint(folder, monitor="val_accuracy", save_best_only=True, save_last=True),
    ]
    return Trainer(model, gw.nn.CrossEntropyLoss(), optimizer, scheduler=scheduler,
                   callbacks=callbacks, progress=False, seed=5)


def _fit(trainer: Trainer, resume: Path | None = None):
    train, val = _data()
    return trainer.fit(train, val_data=val, epochs=EPOCHS, batch_size=16, resume_from=resume)


def _timeless(history) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "epoch_time"} for record in history.epochs]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted") / "ckpt"
    trainer = _trainer(folder)
    history = _fit(trainer)
    assert history.stop_reason and history.stop_reason.startswith("early stopping")
    assert len(history) < EPOCHS - 5  # it really stops early, with room to overshoot
    return folder, trainer, history


def _interrupt_and_resume(tmp_path: Path, stop: StopAt, save_after: bool):
    folder = tmp_path / "ckpt"
    first = _trainer(folder, [stop])
    _fit(first)
    if save_after:  # what the CLI does on a signal: checkpoint where the step loop stopped
        first.save_checkpoint(folder / "last")
    resumed = _trainer(folder)
    return folder, resumed, _fit(resumed, folder / "last")


@pytest.mark.parametrize("epoch", [1, 2, 4, 6, 9])
def test_resume_after_any_epoch_equals_the_uninterrupted_run(tmp_path, uninterrupted, epoch):
    expected_folder, expected_trainer, expected_history = uninterrupted
    folder, trainer, history = _interrupt_and_resume(tmp_path, StopAt(epoch=epoch), False)
    assert len(history) == len(expected_history)  # same stop epoch
    assert history.stop_reason == expected_history.stop_reason
    assert _timeless(history) == _timeless(expected_history)
    for name, value in expected_trainer.model.state_dict().items():
        assert np.asarray(trainer.model.state_dict()[name]).tobytes() == np.asarray(
            value).tobytes(), name
    assert_same_folders(folder, expected_folder)  # best/ and last/, byte for byte


@pytest.mark.parametrize("step", [5, 30, 61, 100])
def test_resume_mid_epoch_equals_the_uninterrupted_run(tmp_path, uninterrupted, step):
    expected_folder, _, expected_history = uninterrupted
    folder, _, history = _interrupt_and_resume(tmp_path, StopAt(step=step), True)
    assert _timeless(history) == _timeless(expected_history)
    assert_same_folders(folder, expected_folder)


def test_killed_after_the_stop_decision_does_not_train_on(tmp_path, uninterrupted):
    """The last checkpoint was written after EarlyStopping decided to stop: resuming it
    trains no further epoch (issue 13 item 1: it used to run 10 epochs more)."""
    _, _, expected_history = uninterrupted
    folder, trainer, history = _interrupt_and_resume(
        tmp_path, StopAt(epoch=len(expected_history)), False
    )
    assert trainer.resumed_at[0] == len(expected_history)
    assert len(history) == len(expected_history)
    assert history.stop_reason == expected_history.stop_reason


def test_best_checkpoint_is_not_overwritten_by_the_first_epoch_after_a_resume(tmp_path):
    """Issue 13 item 2: ModelCheckpoint forgot its best on resume, so the first epoch after a
    resume always replaced best/ even when worse."""
    folder = tmp_path / "ckpt"
    first = _trainer(folder, [StopAt(epoch=8)])
    _fit(first)
    best_epoch = first.callbacks[-1].best_epoch
    manifest_before = (folder / "best" / "checkpoint.json").read_bytes()
    state = json.loads((folder / "last" / "checkpoint.json").read_text())["callbacks"]
    assert state["ModelCheckpoint"]["best_epoch"] == best_epoch
    resumed = _trainer(folder)
    _fit(resumed, folder / "last")
    checkpoint = resumed.callbacks[-1]
    improved_later = checkpoint.best_epoch != best_epoch
    assert improved_later or (folder / "best" / "checkpoint.json").read_bytes() == manifest_before


def test_a_stateful_callback_missing_from_the_checkpoint_is_refused(tmp_path):
    folder = tmp_path / "ckpt"
    trainer = Trainer(mlp([2, 8, 2]), gw.nn.CrossEntropyLoss(),
                      gw.optim.SGD(mlp([2, 8, 2]).parameters(), lr=0.1), progress=False)
    model = mlp([2, 8, 2])
    trainer = Trainer(model, gw.nn.CrossEntropyLoss(), gw.optim.SGD(model.parameters(), lr=0.1),
                      progress=False)
    train, _ = _data()
    trainer.fit(train, epochs=1)
    trainer.save_checkpoint(folder)
    model = mlp([2, 8, 2])
    again = Trainer(model, gw.nn.CrossEntropyLoss(), gw.optim.SGD(model.parameters(), lr=0.1),
                    callbacks=[EarlyStopping(monitor="loss")], progress=False)
    with pytest.raises(CheckpointError, match="no state for callback EarlyStopping"):
        again.fit(train, epochs=2, resume_from=folder)


class Counter(Callback):
    """A user callback with state: counts the batches it has seen."""

    def __init__(self):
        self.seen = 0

    def on_batch_end(self, step: int, logs: dict) -> None:
        self.seen += 1

    def state_dict(self) -> dict:
        return {"seen": self.seen, "array": np.arange(self.seen, dtype=np.int64)}

    def load_state_dict(self, state: dict) -> None:
        self.seen = state["seen"]
        assert state["array"].tolist() == list(range(self.seen))


def test_any_callback_with_state_dict_is_saved_generically(tmp_path):
    """User callbacks (and the doctor) are saved by class name; arrays go to safetensors."""
    model = mlp([2, 8, 2])
    counters = [Counter(), Counter()]
    trainer = Trainer(model, gw.nn.CrossEntropyLoss(), gw.optim.SGD(model.parameters(), lr=0.1),
                      callbacks=[*counters, StopAt(step=7)], progress=False)
    train, _ = _data()
    trainer.fit(train, epochs=3, batch_size=30)
    trainer.save_checkpoint(tmp_path / "ck")
    manifest = json.loads((tmp_path / "ck" / "checkpoint.json").read_text())
    assert set(manifest["callbacks"]) == {"Counter", "Counter#2"}
    assert "callbacks" in manifest["files"]
    model = mlp([2, 8, 2])
    fresh = [Counter(), Counter()]
    resumed = Trainer(model, gw.nn.CrossEntropyLoss(), gw.optim.SGD(model.parameters(), lr=0.1),
                      callbacks=fresh, progress=False)
    resumed.fit(train, epochs=3, batch_size=30, resume_from=tmp_path / "ck")
    assert [c.seen for c in fresh] == [18, 18]  # 7 before the stop, 11 after: 3 epochs of 6


class WatchingDoctor:
    """Stands in for gradwise.doctor.Doctor: a watcher with windows of recent losses."""

    def __init__(self):
        self.losses: list[float] = []

    def on_batch_end(self, step: int, logs: dict) -> None:
        self.losses = [*self.losses, logs["loss"]][-5:]

    def state_dict(self) -> dict:
        return {"losses": np.array(self.losses)}

    def load_state_dict(self, state: dict) -> None:
        self.losses = [float(v) for v in state["losses"]]


def test_the_doctors_windows_are_saved_under_the_key_doctor(tmp_path):
    train, _ = _data()

    def trainer(doctor, extra=()):
        model = mlp([2, 8, 2])
        return Trainer(model, gw.nn.CrossEntropyLoss(),
                       gw.optim.SGD(model.parameters(), lr=0.1), callbacks=list(extra),
                       doctor=doctor, progress=False)

    uninterrupted = WatchingDoctor()
    trainer(uninterrupted).fit(train, epochs=2, batch_size=30)
    first = trainer(WatchingDoctor(), [StopAt(step=9)])
    first.fit(train, epochs=2, batch_size=30)
    first.save_checkpoint(tmp_path / "ck")
    assert "doctor" in json.loads((tmp_path / "ck" / "checkpoint.json").read_text())["callbacks"]
    resumed = WatchingDoctor()
    trainer(resumed).fit(train, epochs=2, batch_size=30, resume_from=tmp_path / "ck")
    assert resumed.losses == uninterrupted.losses
    # a resume may switch the doctor on (gradwise train --resume without --no-doctor)
    plain = trainer(None, [StopAt(step=4)])
    plain.fit(train, epochs=2, batch_size=30)
    plain.save_checkpoint(tmp_path / "plain")
    late = WatchingDoctor()
    trainer(late).fit(train, epochs=2, batch_size=30, resume_from=tmp_path / "plain")
    assert len(late.losses) == 5
