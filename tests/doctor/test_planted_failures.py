"""The doctor must be right in both directions: every planted failure is named, healthy runs
get a clean bill."""

from __future__ import annotations

import pytest

from doctor import planted

PLANTED = [
    (planted.vanishing, "vanishing_gradients"),
    (planted.exploding, "exploding_gradients"),
    (planted.exploding, "non_finite_values"),
    (planted.dead_relus, "dead_relus"),
    (planted.lr_too_low, "lr_too_low"),
    (planted.lr_too_high, "lr_too_high"),
    (planted.overfitting, "overfitting"),
    (planted.plateau, "plateau"),
    (planted.saturated, "saturated_activations"),
]


@pytest.mark.parametrize(
    ("builder", "expected"), PLANTED, ids=[f"{b.__name__}->{e}" for b, e in PLANTED]
)
def test_planted_failure_is_diagnosed(builder, expected):
    doctor = planted.run(builder)
    names = [finding.name for finding in doctor.findings]
    assert expected in names, doctor.format_findings()
    finding = next(f for f in doctor.findings if f.name == expected)
    assert finding.severity in ("warning", "error")
    assert finding.summary and finding.remedies and finding.evidence
    assert expected in doctor.format_findings()


@pytest.mark.parametrize("builder", [planted.healthy_adam, planted.healthy_sgd,
                                     planted.healthy_spirals])
def test_healthy_run_reports_no_problem(builder):
    doctor = planted.run(builder)
    assert doctor.findings == [], doctor.format_findings()
    assert doctor.format_findings().startswith("gradwise doctor: no problems found")
    assert len(doctor.stats.sampled_steps) >= doctor.config.min_samples


def test_each_failure_points_at_the_right_layer():
    dead = planted.run(planted.dead_relus)
    assert {f.layer for f in dead.findings if f.name == "dead_relus"} == {"1", "3"}
    vanishing = planted.run(planted.vanishing)
    finding = next(f for f in vanishing.findings if f.name == "vanishing_gradients")
    assert finding.layer == "0.weight"
    assert finding.evidence["ratio"] < 1e-3
    assert finding.evidence["last_layer"] == "18.weight"
