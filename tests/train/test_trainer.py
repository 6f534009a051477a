"""Trainer: it learns (XOR, spirals), shows vanishing gradients, is deterministic, fires
events in order, steps schedules at the right time, stops on a non-finite loss, and rejects bad
input with a message naming the problem."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import gradwise as gw
from gradwise.data import DataLoader, make_moons, make_spirals
from gradwise.train import Callback, NonFiniteLossWarning, Trainer
from train.train_helpers import (
    Recorder,
    assert_same_weights,
    classifier_trainer,
    mlp,
)


@pytest.fixture(scope="module")
def moons() -> tuple[np.ndarray, np.ndarray]:
    return make_moons(128, noise=0.1, seed=0)


# ---- it learns --------------------------------------------------------------------------------
def test_xor_with_a_2_4_1_sigmoid_network_reaches_zero_errors() -> None:
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    model = mlp([2, 4, 1], activation=gw.nn.Sigmoid, init="xavier_normal", seed=1)
    trainer = Trainer(
        model,
        gw.nn.BCEWithLogitsLoss(),
        gw.optim.Adam(model.parameters(), lr=0.1),
        progress=False,
    )
    history = trainer.fit((x, y), epochs=300, batch_size=4)
    predictions = (trainer.predict(x) > 0).astype(np.float32)
    np.testing.assert_array_equal(predictions, y)
    assert history["accuracy"][-1] == 1.0  # binary accuracy on one logit column
    assert history["loss"][-1] < 0.1


def test_two_spirals_reach_95_percent_with_an_mlp() -> None:
    x, y = make_spirals(400, noise=0.05, seed=0)
    trainer = classifier_trainer(mlp([2, 64, 64, 2], seed=0), lr=0.01)
    history = trainer.fit((x, y), epochs=60, batch_size=32)
    assert trainer.evaluate((x, y))["accuracy"] >= 0.95
    assert history["loss"][-1] < history["loss"][0] / 4


class FirstLayerGradNorm(Callback):
    """Reads the first layer's gradient where the doctor does: right after backward."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_after_backward(self, step: int) -> None:
        first_weight = next(iter(self.trainer.model.parameters()))
        self.norms.append(float(np.linalg.norm(first_weight.grad)))


def test_deep_sigmoid_net_has_vanishing_gradients_and_learns_slower_than_relu_he(moons) -> None:
    results = {}
    for activation, init in ((gw.nn.Sigmoid, "default"), (gw.nn.ReLU, "kaiming_normal")):
        probe = FirstLayerGradNorm()
        model = mlp([2] + [32] * 8 + [2], activation=activation, init=init, seed=0)
        trainer = classifier_trainer(model, lr=0.05, optimizer="sgd", callbacks=[probe])
        history = trainer.fit(moons, epochs=8, batch_size=32)
        results[activation.__name__] = (np.mean(probe.norms[:4]), history["loss"][-1])
    sigmoid_grad, sigmoid_loss = results["Sigmoid"]
    relu_grad, relu_loss = results["ReLU"]
    assert sigmoid_grad < 1e-4 * relu_grad  # the gradient all but vanishes 8 sigmoids deep
    assert sigmoid_loss > 0.6  # still near chance (ln 2 = 0.69)
    assert relu_loss < sigmoid_loss - 0.2


# ---- determinism ------------------------------------------------------------------------------
def test_same_seed_gives_bitwise_same_weights_and_another_seed_does_not(moons) -> None:
    def train(seed: int) -> gw.nn.Module:
        model = mlp([2, 16, 16, 2], seed=3, dropout=0.2)
        classifier_trainer(model, seed=seed).fit(moons, epochs=3, batch_size=16)
        return model

    first, again, other = train(0), train(0), train(1)
    assert_same_weights(first, again)
    with pytest.raises(AssertionError):
        assert_same_weights(first, other)


# ---- events -----------------------------------------------------------------------------------
def test_callbacks_fire_in_order_with_step_and_epoch_indices(moons) -> None:
    recorder = Recorder()
    x, y = moons[0][:40], moons[1][:40]
    trainer = classifier_trainer(callbacks=[recorder])
    trainer.fit((x, y), val_data=(x, y), epochs=2, batch_size=16)  # 3 batches per epoch
    one_step = ["batch_begin", "after_backward", "after_step", "batch_end"]
    one_epoch = ["epoch_begin", *one_step * 3, "validation_end", "epoch_end"]
    assert recorder.names() == ["train_begin", *one_epoch * 2, "train_end"]
    steps = [arg for name, arg in recorder.events if name == "after_step"]
    assert steps == [0, 1, 2, 3, 4, 5]
    assert [arg for name, arg in recorder.events if name == "epoch_end"] == [0, 1]
    assert trainer.step == 6 and trainer.epoch == 2


def test_callbacks_see_weights_updated_only_after_the_step(moons) -> None:
    class Snapshot(Callback):
        def on_after_backward(self, step: int) -> None:
            weight = next(iter(self.trainer.model.parameters()))
            assert weight.grad is not None
            self.before = weight.numpy().copy()

        def on_after_step(self, step: int) -> None:
            weight = next(iter(self.trainer.model.parameters()))
            assert not np.array_equal(weight.data, self.before)

    classifier_trainer(callbacks=[Snapshot()]).fit(moons, epochs=1)


def test_doctor_object_runs_after_the_other_callbacks(moons) -> None:
    order: list[str] = []

    class Named(Callback):
        def __init__(self, name: str) -> None:
            self.name = name

        def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
            order.append(self.name)

    trainer = classifier_trainer(callbacks=[Named("user")], doctor=Named("doctor"))
    trainer.fit(moons, epochs=1)
    assert order == ["user", "doctor"]
    assert trainer.doctor.trainer is trainer


def test_doctor_true_attaches_the_training_doctor(moons) -> None:
    doctor_module = pytest.importorskip("gradwise.doctor")
    trainer = classifier_trainer(doctor=True)
    assert isinstance(trainer.doctor, doctor_module.Doctor)
    trainer.fit(moons, epochs=1)


# ---- history contents, schedules, clipping ----------------------------------------------------
def test_history_records_losses_metrics_lr_time_and_steps(moons) -> None:
    trainer = classifier_trainer(metrics=("accuracy", "f1"))
    history = trainer.fit(moons, val_data=moons, epochs=2, batch_size=32)
    record = history.last
    assert list(record) == [
        "epoch", "loss", "accuracy", "f1", "val_loss", "val_accuracy", "val_f1",
        "lr", "epoch_time", "steps", "samples",
    ]
    assert record["steps"] == 4 and record["samples"] == 128 and record["epoch"] == 2
    assert record["val_loss"] == pytest.approx(trainer.evaluate(moons)["loss"])
    assert history.stop_reason is None


@pytest.mark.parametrize(
    ("scheduler", "expected_lrs"),
    [
        ("step", [0.01, 0.007, 0.0049]),  # per epoch; history shows the lr used in the epoch
        ("plateau", None),  # stepped with val_loss; checked below
    ],
)
def test_epoch_schedulers_step_once_per_epoch(moons, scheduler, expected_lrs) -> None:
    trainer = classifier_trainer(scheduler=scheduler)
    history = trainer.fit(moons, val_data=moons, epochs=3, batch_size=32)
    if expected_lrs is not None:
        assert history["lr"] == pytest.approx(expected_lrs)
    else:
        assert trainer.scheduler.last_epoch == 3  # one step(val_loss) per epoch


def test_one_cycle_is_stepped_every_batch(moons) -> None:
    trainer = classifier_trainer(scheduler="onecycle", steps=8)
    trainer.fit(moons, epochs=2, batch_size=32)  # 4 batches per epoch
    assert trainer.scheduler_interval == "step"
    assert trainer.scheduler.last_epoch == 8


def test_clip_grad_norm_records_the_norm_before_clipping(moons) -> None:
    trainer = classifier_trainer(clip_grad_norm=1e-3)
    trainer.fit(moons, epochs=1)
    assert trainer.last_grad_norm is not None and trainer.last_grad_norm > 1e-3
    grads = [np.asarray(p.grad) for p in trainer.model.parameters()]
    assert math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads)) <= 1.01e-3


def test_regression_loss_drops_the_default_accuracy_metric() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)).astype(np.float32)
    model = mlp([3, 1])
    trainer = Trainer(model, gw.nn.MSELoss(), gw.optim.SGD(model.parameters(), lr=0.1),
                      progress=False)
    history = trainer.fit((x, y), epochs=30, batch_size=16)
    assert "accuracy" not in history and "loss" in history
    assert history["loss"][-1] < 0.01


# ---- inputs: arrays, Tensors, loaders; evaluate and predict ----------------------------------
def test_tensors_and_dataloaders_are_accepted_like_arrays(moons) -> None:
    x, y = moons
    as_arrays = classifier_trainer().fit((x, y), epochs=1, shuffle=False)
    as_tensors = classifier_trainer().fit((gw.tensor(x), gw.tensor(y)), epochs=1, shuffle=False)
    loader = DataLoader((x, y), batch_size=32)
    as_loader = classifier_trainer().fit(loader, epochs=1)
    assert as_arrays["loss"] == as_tensors["loss"] == as_loader["loss"]


def test_predict_and_evaluate_leave_the_training_mode_as_it_was(moons) -> None:
    trainer = classifier_trainer(mlp([2, 8, 2], dropout=0.5))
    trainer.model.train()
    outputs = trainer.predict(moons[0], batch_size=50)
    assert outputs.shape == (128, 2)
    np.testing.assert_array_equal(outputs, trainer.predict(moons[0]))  # dropout off
    assert trainer.model.training
    trainer.model.eval()
    trainer.evaluate(moons)
    assert not trainer.model.training


# ---- progress output --------------------------------------------------------------------------
def test_progress_lines_prints_one_summary_line_per_epoch(moons, capsys) -> None:
    classifier_trainer(progress="lines").fit(moons, val_data=moons, epochs=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("epoch 2/2  loss ")
    for word in ("accuracy", "val_loss", "val_accuracy", "lr", "samples/s"):
        assert word in lines[1]


def test_progress_bar_goes_to_stderr_and_quiet_mode_prints_nothing(moons, capsys) -> None:
    classifier_trainer(progress=True).fit(moons, epochs=1)
    captured = capsys.readouterr()
    assert "epoch 1/1" in captured.err and "samples/s" in captured.err
    classifier_trainer(progress=False).fit(moons, epochs=1)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ---- non-finite loss --------------------------------------------------------------------------
def test_non_finite_loss_stops_training_before_the_bad_update(moons) -> None:
    recorder = Recorder()
    trainer = classifier_trainer(lr=1e6, optimizer="sgd", callbacks=[recorder])
    with pytest.warns(NonFiniteLossWarning, match="loss is (nan|inf) at epoch"), np.errstate(
        all="ignore"
    ):
        history = trainer.fit(moons, epochs=50, batch_size=16)
    assert "loss is" in history.stop_reason and "lower learning rate" in history.stop_reason
    assert len(history) < 50
    assert recorder.names()[-1] == "train_end"
    names = recorder.names()
    # the bad batch reaches on_batch_end (with its loss) but never backward or the step
    assert names.count("batch_end") == names.count("after_step") + 1 == trainer.step + 1
    assert names.count("after_backward") == trainer.step


# ---- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "kwargs", "error", "message"),
    [
        ((np.zeros((4, 2)), np.zeros(4)), {"batch_size": 0}, ValueError, "batch_size must be"),
        ((np.zeros((4, 2)), np.zeros(4)), {"batch_size": 2.5}, TypeError, "batch_size must be"),
        ((np.zeros((4, 2)), np.zeros(4)), {"epochs": -1}, ValueError, "epochs must be"),
        ((np.zeros((0, 2)), np.zeros(0)), {}, ValueError, "empty"),
        ((np.zeros((4, 2)), np.zeros(3)), {}, ValueError, r"x \(4, 2\), y \(3,\)"),
        ((np.full((4, 2), np.nan), np.zeros(4)), {}, ValueError, "x has 8 non-finite"),
        ((np.zeros((4, 2)), np.array([0, 1, np.inf, 0])), {}, ValueError, "y has 1 non-finite"),
        ((np.zeros((4, 2)),), {}, ValueError, r"two arrays \(x, y\)"),
        ("data.csv", {}, TypeError, "expected \\(x, y\\) arrays"),
    ],
)
def test_bad_fit_arguments_raise_errors_naming_the_problem(data, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        classifier_trainer().fit(data, **kwargs)


def test_bad_validation_data_is_rejected_before_training(moons) -> None:
    trainer = classifier_trainer()
    with pytest.raises(ValueError, match="val_data: x has 2 non-finite"):
        trainer.fit(moons, val_data=(np.array([[np.nan, np.inf]]), np.array([0])))
    assert trainer.step == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"metrics": ("accuracy", "nope")}, ValueError, "unknown metric 'nope'"),
        ({"clip_grad_norm": -1.0}, ValueError, "clip_grad_norm must be"),
        ({"seed": -3}, ValueError, "seed must be"),
        ({"progress": "loud"}, ValueError, "progress must be"),
        ({"scheduler_interval": "batch"}, ValueError, "scheduler_interval must be"),
        ({"callbacks": [print]}, TypeError, "Callback instances"),
        ({"doctor": object()}, TypeError, "doctor must have callback methods"),
    ],
)
def test_bad_trainer_arguments_raise_errors_naming_them(kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        classifier_trainer(**kwargs)


def test_a_loss_that_is_not_a_scalar_is_reported(moons) -> None:
    model = mlp([2, 2])
    trainer = Trainer(model, gw.nn.CrossEntropyLoss(reduction="none"),
                      gw.optim.SGD(model.parameters(), lr=0.1), progress=False)
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar, got shape \(32,\)"):
        trainer.fit(moons)
