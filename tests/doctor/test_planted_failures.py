"""The doctor must be right in both directions, at every sampling rate: every planted failure of
the catalogue is named, healthy runs get a clean bill, and each run's failure is checked to have
really happened without the doctor's help."""

from __future__ import annotations

import pytest

from doctor import planted
from gradwise.doctor import Doctor, DoctorConfig, subsample

PLANTED = [s for s in planted.CATALOGUE if s.expected]
HEALTHY = [s for s in planted.CATALOGUE if not s.expected]


def test_catalogue_is_broad():
    assert len(PLANTED) >= 20 and len(HEALTHY) >= 8
    expected = {name for s in PLANTED for name in s.expected}
    assert expected == {"vanishing_gradients", "exploding_gradients", "non_finite_values",
                        "dead_relus", "lr_too_high", "lr_too_low", "saturated_activations",
                        "overfitting", "plateau", "divergence", "worse_than_guessing",
                        "zero_init"}
    assert len({s.name for s in planted.CATALOGUE}) == len(planted.CATALOGUE)


@pytest.mark.parametrize("scenario", planted.CATALOGUE, ids=[s.name for s in planted.CATALOGUE])
def test_verdict_is_right_at_every_sampling_rate(scenario):
    outcome = planted.record(scenario.name)
    scenario.verify(outcome)  # the failure really happened (or the healthy run really learned)
    verdicts = {rate: planted.findings_at(outcome, rate) for rate in planted.RATES}
    for rate, found in verdicts.items():
        missing = set(scenario.expected) - set(found)
        extra = set(found) - set(scenario.expected) - set(scenario.allowed)
        assert not missing and not extra, (
            f"{scenario.name} at 1/{rate}: missing {sorted(missing)}, false alarms "
            f"{sorted(extra)}\n{outcome.doctor.report()}"
        )
    assert len({tuple(v) for v in verdicts.values()}) == 1, verdicts


@pytest.mark.parametrize("name", ["plateau_noise_labels", "functional_dead_relu", "cnn_collapse"])
def test_replayed_sampling_equals_a_live_run(name):
    """The catalogue replays one recording at each rate: that must be what a live doctor at that
    rate records, through the Trainer and through doctor.step() alike."""
    recorded = planted.record(name)
    scenario = next(s for s in planted.CATALOGUE if s.name == name)
    config = DoctorConfig(interval=16)
    live = _run_with(scenario, config)
    replayed = subsample(recorded.doctor.stats, lambda step: config.sampled(step, 16))
    assert live.doctor.stats.to_dict() == replayed.to_dict()
    assert planted.findings_at(recorded, 16) == sorted({f.name for f in live.doctor.findings})


def _run_with(scenario, config: DoctorConfig) -> planted.Outcome:
    original_fit, original_loop = planted.fit, planted.loop
    planted.fit = lambda *a, **k: original_fit(*a, **{**k, "config": config})
    planted.loop = lambda *a, **k: original_loop(*a, **{**k, "config": config})
    try:
        return scenario.run()
    finally:
        planted.fit, planted.loop = original_fit, original_loop


def test_default_sampling_is_deterministic_and_sparse():
    scenario = next(s for s in planted.CATALOGUE if s.name == "cnn_collapse")
    outcome = _run_with(scenario, DoctorConfig())
    doctor: Doctor = outcome.doctor
    assert doctor.interval == 32  # a small CNN: 1 step in 32 after the warm-up
    expected = [s for s in range(doctor.stats.steps) if s < 8 or s % 32 == 0]
    assert doctor.stats.sampled_steps == expected
    assert sorted({f.name for f in doctor.findings}) == planted.findings_at(
        planted.record("cnn_collapse"), "auto")


def test_each_failure_points_at_the_right_layer():
    dead = planted.record("dead_bias_adam").doctor
    assert {f.layer for f in dead.findings if f.name == "dead_relus"} == {"1", "3"}
    functional = planted.record("functional_dead_relu").doctor
    assert {f.layer for f in functional.findings if f.name == "dead_relus"} == {"relu#1"}
    vanishing = planted.record("vanishing_sigmoid").doctor
    finding = next(f for f in vanishing.findings if f.name == "vanishing_gradients")
    assert finding.layer == "0.weight"
    assert finding.evidence["ratio"] < 1e-3
    assert finding.evidence["last_layer"] == "18.weight"


def test_collapse_is_named_with_its_evidence():
    """The issue's first case: a CNN at lr 2.0 collapses to chance; the doctor must say the lr
    is too high, with the chance level, the zero gradients and the dead units as evidence."""
    doctor = planted.record("cnn_collapse").doctor
    finding = next(f for f in doctor.findings if f.name == "lr_too_high")
    assert finding.severity == "error"
    assert "collapsed" in finding.summary
    assert finding.evidence["chance_loss"] == pytest.approx(2.3026, abs=0.01)
    assert finding.evidence["dead_fraction"] > 0.5
    assert "lr_too_low" not in {f.name for f in doctor.findings}
    assert any("divide the learning rate by 10" in r for r in finding.remedies)


@pytest.mark.parametrize("name", ["forgot_zero_grad", "forgot_zero_grad_slow"])
def test_climbing_loss_is_divergence_and_asks_for_zero_grad(name):
    """A loop without zero_grad: the loss climbs back (below chance, in the slow case) while the
    gradient norm grows; the doctor says divergence and asks about zero_grad first, not only
    "lower the rate"."""
    doctor = planted.record(name).doctor
    finding = next(f for f in doctor.findings if f.name == "divergence")
    assert "climbed" in finding.summary and "plateau" not in {f.name for f in doctor.findings}
    evidence = finding.evidence
    assert evidence["loss_last_tenth"] > 1.5 * evidence["loss_lowest"]
    assert evidence["grad_growth"] == pytest.approx(
        evidence["grad_norm_recent"] / evidence["grad_norm_warmup"])
    assert evidence["grad_growth"] > 5
    assert "did you forget optimizer.zero_grad()?" in finding.remedies[0]


def test_worse_than_guessing_names_the_init_scale():
    doctor = planted.record("huge_init_sgd").doctor
    finding = next(f for f in doctor.findings if f.name == "worse_than_guessing")
    evidence = finding.evidence
    assert evidence["baseline_loss"] == pytest.approx(2.30, abs=0.01)
    end, baseline = evidence["loss_last_tenth"], evidence["baseline_loss"]
    assert evidence["ratio"] == pytest.approx(end / baseline)
    assert evidence["ratio"] > 10
    assert evidence["weight_std"] == pytest.approx(5.0, rel=0.05)  # set_normal(model, 5.0)
    assert evidence["fan_in_std"] == pytest.approx(1 / 8)  # 64 inputs
    assert "initialisation scale" in finding.summary
    assert "reset_parameters" in finding.remedies[0]


def test_zero_init_is_named_instead_of_dead_relus():
    doctor = planted.record("zero_init_mlp").doctor
    assert [f.name for f in doctor.findings] == ["zero_init"]
    finding = doctor.findings[0]
    assert finding.evidence["zero_weights"] == ["0.weight", "2.weight"]
    assert not any("learning rate" in r for r in finding.remedies)
