"""Built-in callbacks: early stopping (with best weights), checkpoints of the best model,
learning-rate functions, CSV/JSON Lines logs and stopping on NaN."""

from __future__ import annotations

import csv
import json
import math
from typing import Any

import numpy as np
import pytest

from gradwise.data import make_moons
from gradwise.train import (
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLinesLogger,
    LearningRateScheduler,
    ModelCheckpoint,
    TerminateOnNaN,
    load_checkpoint,
)
from train.train_helpers import classifier_trainer, weights


@pytest.fixture(scope="module")
def data():
    x, y = make_moons(160, noise=0.2, seed=2)
    return (x[:120], y[:120]), (x[120:], y[120:])


def blow_up_after(epoch: int) -> LearningRateScheduler:
    """A sane learning rate, then one far too large: validation loss gets worse."""
    return LearningRateScheduler(lambda e: 0.02 if e < epoch else 3.0)


class WeightsPerEpoch(Callback):
    def __init__(self) -> None:
        self.snapshots: list[dict[str, np.ndarray]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.snapshots.append(weights(self.trainer.model))


def test_early_stopping_stops_and_restores_the_best_weights(data) -> None:
    snapshots = WeightsPerEpoch()
    stopper = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    trainer = classifier_trainer(callbacks=[blow_up_after(3), snapshots, stopper])
    history = trainer.fit(data[0], val_data=data[1], epochs=20, batch_size=16)
    val_losses = history["val_loss"]
    best = int(np.argmin(val_losses))
    assert len(history) == best + 3  # patience 1: two epochs without improvement
    assert stopper.best_epoch == best and stopper.best == val_losses[best]
    assert history.stop_reason.startswith("early stopping: val_loss did not improve for 2 epochs")
    for name, value in weights(trainer.model).items():
        np.testing.assert_array_equal(value, snapshots.snapshots[best][name])


def test_early_stopping_min_delta_and_max_mode(data) -> None:
    stopper = EarlyStopping(monitor="val_accuracy", patience=0, min_delta=1.0)
    assert stopper.mode == "max"
    history = classifier_trainer(callbacks=[stopper]).fit(data[0], val_data=data[1], epochs=10)
    assert len(history) == 2  # nothing can improve accuracy by 1.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: EarlyStopping(patience=-1), "patience must be an int >= 0"),
        (lambda: EarlyStopping(mode="up"), "mode must be 'auto', 'min' or 'max'"),
        (lambda: ModelCheckpoint("x", every_n_epochs=0), "every_n_epochs must be an int >= 1"),
        (lambda: LearningRateScheduler(0.1), "schedule must be a function"),
    ],
)
def test_bad_callback_arguments_are_rejected(make, message) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_monitoring_a_missing_value_says_how_to_fix_it(data) -> None:
    trainer = classifier_trainer(callbacks=[EarlyStopping(monitor="val_loss")])
    with pytest.raises(ValueError, match="'val_loss' is not in the epoch logs .*pass val_data"):
        trainer.fit(data[0], epochs=2)


def test_model_checkpoint_keeps_the_best_epoch(data, tmp_path) -> None:
    saver = ModelCheckpoint(tmp_path, monitor="val_loss", save_best_only=True)
    history = classifier_trainer(callbacks=[blow_up_after(3), saver]).fit(
        data[0], val_data=data[1], epochs=6, batch_size=16
    )
    best = int(np.argmin(history["val_loss"]))
    assert saver.best_epoch == best and saver.best_path == tmp_path / "best"
    assert [p.name for p in tmp_path.iterdir()] == ["best"]
    saved = load_checkpoint(saver.best_path)
    assert saved.trainer_state["epoch"] == best + 1
    assert saved.history["epochs"][-1]["val_loss"] == history["val_loss"][best]


def test_learning_rate_scheduler_sets_the_lr_of_every_epoch(data) -> None:
    history = classifier_trainer(callbacks=[LearningRateScheduler(lambda e: 0.1 / (e + 1))]).fit(
        data[0], epochs=3
    )
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    bad = classifier_trainer(callbacks=[LearningRateScheduler(lambda e: math.nan)])
    with pytest.raises(ValueError, match=r"schedule\(0\) returned nan"):
        bad.fit(data[0])


def test_csv_and_json_lines_loggers_write_one_row_per_epoch(data, tmp_path) -> None:
    loggers = [CSVLogger(tmp_path / "log.csv"), JSONLinesLogger(tmp_path / "log.jsonl")]
    history = classifier_trainer(callbacks=loggers).fit(data[0], val_data=data[1], epochs=3)
    with open(tmp_path / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(row["val_loss"]) for row in rows] == history["val_loss"]
    assert list(rows[0]) == history.keys()
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == history.epochs


def test_terminate_on_nan_requests_a_stop_on_a_non_finite_loss(data) -> None:
    trainer = classifier_trainer()
    callback = TerminateOnNaN()
    callback.set_trainer(trainer)
    callback.on_batch_end(7, {"loss": 1.5})
    assert not trainer.stop_training
    callback.on_batch_end(8, {"loss": math.inf})
    assert trainer.stop_training and trainer.stop_reason == "TerminateOnNaN: loss is inf at step 8"
    trainer.stop_reason = None
    callback.on_epoch_end(2, {"loss": 0.3, "val_loss": math.nan})
    assert "val_loss is nan after epoch 3" in trainer.stop_reason
