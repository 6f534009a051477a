"""The Doctor as a callback: it observes without changing training, samples adaptively, reports
in text and JSON, and refuses bad settings with a clear message."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import gradwise as gw
from doctor import planted
from gradwise import nn
from gradwise.doctor import Doctor, DoctorConfig, Finding, TrainingStats, diagnose
from gradwise.optim import SGD
from gradwise.train import Trainer


def _train(doctor: Doctor | None, epochs: int = 2) -> nn.Module:
    model, optimizer, train, val, _ = planted.healthy_sgd()
    Trainer(model, nn.CrossEntropyLoss(), optimizer, progress=False, doctor=doctor).fit(
        train, val, epochs=epochs, batch_size=64
    )
    return model


def test_doctor_never_changes_training():
    watched, plain = _train(Doctor(DoctorConfig(adaptive=False))), _train(None)
    for (name, a), (_, b) in zip(watched.state_dict().items(), plain.state_dict().items(),
                                 strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_hooks_are_removed_after_each_sampled_step():
    doctor = Doctor()
    model = _train(doctor, epochs=1)
    assert all(not module._forward_hooks for module in model.modules())


def test_fixed_interval_samples_every_nth_step():
    doctor = Doctor(DoctorConfig(adaptive=False, warmup_steps=0, interval=5))
    _train(doctor, epochs=1)
    steps = doctor.stats.sampled_steps
    assert steps == list(range(0, doctor.steps_seen, 5))
    series = doctor.stats.params["0.weight"]
    assert series.steps == steps
    assert len(series.grad_norm) == len(series.update_ratio) == len(steps)
    assert all(r > 0 and math.isfinite(r) for r in series.update_ratio)


def test_adaptive_interval_keeps_overhead_within_budget():
    """Expensive sampling (a tiny budget) pushes the interval up; overhead is measured."""
    doctor = Doctor(DoctorConfig(overhead_budget=0.001))
    _train(doctor, epochs=2)
    assert doctor.interval > 1
    assert doctor.stats.intervals, "interval changes are recorded"
    assert len(doctor.stats.sampled_steps) < doctor.steps_seen
    assert 0 < doctor.overhead < 1


def test_statistics_measure_what_they_say():
    doctor = Doctor(DoctorConfig(adaptive=False, warmup_steps=0, interval=1))
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=1))
    doctor.watch(model)
    optimizer = SGD(model.parameters(), lr=0.1)
    x = gw.tensor(np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32))
    y = gw.tensor(np.arange(8) % 2)
    doctor.on_batch_begin(0, {})
    hidden = model[1](model[0](x))
    loss = nn.functional.cross_entropy(model[2](hidden), y)
    optimizer.zero_grad()
    loss.backward()
    doctor.on_after_backward(0)
    before = model[0].weight.numpy().copy()
    optimizer.step()
    doctor.on_after_step(0)
    doctor.on_batch_end(0, {"loss": loss.item()})
    weight = doctor.stats.params["0.weight"]
    assert weight.grad_norm[0] == pytest.approx(np.linalg.norm(model[0].weight.grad), rel=1e-5)
    moved = np.linalg.norm(model[0].weight.data - before) / np.linalg.norm(before)
    assert weight.update_ratio[0] == pytest.approx(moved, rel=1e-4)
    relu = doctor.stats.activations["1"]
    assert relu.kind == "relu" and relu.module_type == "ReLU"
    assert relu.mean[0] == pytest.approx(hidden.data.mean(), rel=1e-5)
    assert relu.std[0] == pytest.approx(np.asarray(hidden.data).std(), rel=1e-4)
    np.testing.assert_array_equal(relu.ever_active, np.asarray(hidden.data).max(axis=0) > 0)
    assert doctor.stats.losses == [pytest.approx(loss.item())]


def test_findings_as_text_and_json():
    doctor = planted.run(planted.exploding)
    text = doctor.format_findings()
    assert text.startswith("gradwise doctor: 3 problems found")
    assert "[error] non_finite_values (step 1)" in text
    assert "try:" in text and "clip" in text
    data = json.loads(doctor.to_json())
    assert data["format"] == "gradwise.doctor"
    assert {f["name"] for f in data["findings"]} >= {"exploding_gradients", "non_finite_values"}
    assert data["stats"]["params"]["0.weight"]["grad_norm"]
    assert data["config"] == DoctorConfig().to_dict()


def test_doctor_true_in_trainer_builds_a_doctor():
    model, optimizer, train, _, _ = planted.lr_too_low()
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, progress=False, doctor=True)
    trainer.fit(train, epochs=1)
    assert isinstance(trainer.doctor, Doctor)
    assert trainer.doctor.stats.losses


def test_diagnose_on_empty_stats_finds_nothing():
    assert diagnose(TrainingStats()) == []
    assert Doctor().format_findings().startswith("gradwise doctor: no problems found")


def test_config_round_trip_and_bad_settings():
    config = DoctorConfig(interval=4, dead_fraction=0.7)
    assert DoctorConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown setting"):
        DoctorConfig.from_dict({"intervall": 3})
    with pytest.raises(ValueError, match="interval must be a positive int"):
        DoctorConfig(interval=0)
    with pytest.raises(ValueError, match="min_interval <= interval <= max_interval"):
        DoctorConfig(interval=1024)
    with pytest.raises(ValueError, match="overhead_budget must be in"):
        DoctorConfig(overhead_budget=5)
    with pytest.raises(ValueError, match="dead_fraction must be in"):
        DoctorConfig(dead_fraction=1.5)
    with pytest.raises(TypeError, match="config must be a DoctorConfig"):
        Doctor({"interval": 2})
    with pytest.raises(ValueError, match="severity must be one of"):
        Finding("x", "fatal", "summary")


def test_doctor_needs_a_model():
    with pytest.raises(RuntimeError, match="not watching a model"):
        Doctor().on_batch_begin(0, {})
    with pytest.raises(TypeError, match="must be a gradwise.nn.Module"):
        Doctor().watch(object())


def _stats_with_epochs(first_loss: float, epochs: list[tuple[float, float]]) -> TrainingStats:
    stats = TrainingStats(loss_steps=[0], losses=[first_loss])
    stats.epochs = [{"epoch": i + 1, "loss": train, "val_loss": val}
                    for i, (train, val) in enumerate(epochs)]
    return stats


@pytest.mark.parametrize(
    ("first_loss", "epochs", "expected"),
    [
        # the textbook picture: validation turns up while training keeps falling
        (2.3, [(1.0, 0.9), (0.5, 0.6), (0.2, 0.55), (0.1, 0.62), (0.05, 0.7)], True),
        # validation wobbles by less than 10%: noise, not overfitting
        (2.3, [(1.0, 0.9), (0.5, 0.6), (0.2, 0.55), (0.1, 0.58), (0.05, 0.59)], False),
        # both rising: divergence
        (2.3, [(1.0, 0.9), (0.5, 0.6), (0.7, 0.8), (0.9, 1.2)], False),
        # a diverged run recovering: its best validation loss is worse than untrained
        (2.3, [(1.6e6, 6.8e5), (30.0, 7.5e5), (25.0, 8.7e5)], False),
    ],
)
def test_overfitting_needs_a_real_turn_of_the_validation_loss(first_loss, epochs, expected):
    names = [f.name for f in diagnose(_stats_with_epochs(first_loss, epochs))]
    assert ("overfitting" in names) == expected
