"""DoctorConfig: which steps the doctor examines and where each diagnosis draws its line.

Every threshold says why it sits where it does. They were calibrated on the planted catalogue in
``tests/doctor/planted.py`` (30 failures that must each be named, 17 healthy runs that must raise
nothing) at every sampling rate from every step to 1 in 64; docs/DOCTOR.md has the table, and
says which runs were held out of the calibration.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["ADVICE_STYLES", "DoctorConfig", "auto_interval"]

ADVICE_STYLES = ("python", "cli")


def auto_interval(n_parameters: int) -> int:
    """The default sampling interval for a model with ``n_parameters`` parameters.

    An examined step costs a fixed Python part (hooks on every module, one record per parameter
    and activation: roughly 0.3-0.5 ms) plus about five passes over the parameters (two norms, a
    copy, a difference, a norm) and one over the activations; a training step costs forward,
    backward and the optimizer. Below 100k parameters a step takes well under a millisecond, so
    the fixed part is comparable to a whole step and 1 step in 32 keeps the doctor near 3%; above,
    1 in 16 keeps it at 1-3% (``benchmarks/doctor_overhead.py``, docs/DOCTOR.md).
    """
    return 32 if n_parameters < 100_000 else 16


@dataclass
class DoctorConfig:
    """Settings of the training doctor.

    Sampling (a function of the step number and these settings only, never of time):
        warmup_steps: steps 0 .. warmup_steps-1 are all examined: explosions, NaNs and collapses
            happen there, and every whole-run rule gets the same early picture at any rate.
        interval: after the warm-up, step s is examined when ``s % interval == 0``. None picks
            :func:`auto_interval` from the model's size when the doctor starts watching.
        histogram_values: activation values kept per layer (the latest sampled batch) for the
            report's histograms.

    Advice:
        advice_style: ``"python"`` (remedies name the Python call, e.g.
            ``Trainer(clip_grad_norm=1.0)``) or ``"cli"`` (the ``gradwise`` command's flags, e.g.
            ``--clip-grad-norm 1.0``).

    Thresholds: the names say what they bound; each comment gives the reason for its value.
    """

    warmup_steps: int = 8
    interval: int | None = None
    histogram_values: int = 2048
    advice_style: str = "python"

    # Vanishing: the gradient norm of the first weight layer over that of the last (median over
    # the samples). A healthy 2-4 layer MLP sits between 0.05 and 20; a 10-layer sigmoid stack
    # with small init is below 1e-6, because each sigmoid multiplies the gradient by at most 0.25.
    vanishing_ratio: float = 1e-3
    # Exploding, by depth: the same ratio the other way round (first layer gets 1000x the last).
    exploding_ratio: float = 1e3
    # Exploding, by size: a total gradient norm this large means one SGD step with lr 1e-3
    # already moves the weights by more than their own scale. Healthy runs stay below 50.
    exploding_grad_norm: float = 1e3

    # Dead ReLUs: a layer where more than this fraction of units fired on none of the rows of a
    # batch (median over the recent samples). Healthy nets of the catalogue reach 0.48 (small
    # 2-D-input nets, whose units each cover one region of the plane, on batches of 20-64 rows);
    # planted dead layers are at 0.66 and above (biases at -5: 1.0).
    dead_fraction: float = 0.6
    # Saturation: the fraction of sigmoid outputs below 0.01 or above 0.99 (tanh: |a| > 0.99).
    # There the local derivative is below 0.01, so those units have all but stopped learning.
    saturation_level: float = 0.99
    saturated_fraction: float = 0.5

    # Learning rate too high: median update/weight ratio ||w_new - w|| / ||w|| of the recent
    # samples. Karpathy's rule of thumb ("A Recipe for Training Neural Networks", 2019; CS231n)
    # is about 1e-3; Adam at lr 1e-3 on a fresh MLP starts near 0.05. Above 0.3 a third of each
    # weight is replaced every step: training cannot settle.
    lr_high_update_ratio: float = 0.3
    # ... or one warm-up step more than doubled a weight matrix (||dw|| > 1.5 ||w||): no healthy
    # optimizer step does that, even Adam's first steps on a fresh layer stay below 0.1.
    lr_high_peak_update_ratio: float = 1.5
    # ... or the training loss diverged: its level at the end is this many times its level at
    # the start (and above the baseline loss).
    lr_high_loss_rise: float = 1.5
    # ... a climb that stays below the baseline must also be this fraction of the reference loss
    # (ln 10 for 10 classes: 0.23) above the lowest level, so a converged run's noise near 0 is
    # no climb. The newcomer's forgotten zero_grad climbed from 0.21 to 1.32 (0.48 of ln 10).
    divergence_min_rise: float = 0.1
    # Gradients that grow: the recent median total gradient norm over the warm-up median. Never
    # zeroed, gradients add up (x10 after 10 steps of similar gradients); healthy runs of the
    # catalogue stay below 3 (their gradient norm mostly shrinks).
    grad_growth: float = 5.0
    # Worse than guessing: the loss level at the end and the lowest level both above this many
    # times the baseline (predicting the class priors / target mean). Batch noise of a fresh
    # classifier stays within 1.3x ln C; N(0, 5) weights start near 300x.
    worse_than_baseline: float = 2.0
    # ... and a weight whose std is this many times 1/sqrt(fan_in) is a bad initialisation scale
    # (the default init has 1/sqrt(3), He sqrt(2) times it).
    init_scale_ratio: float = 5.0
    # ... or it collapsed: a spike (the median of 3 consecutive batch losses) to this many times
    # the baseline (or the first) loss, then the loss stuck within chance_tolerance of the
    # baseline (predicting the class priors: ln C for C balanced classes). Batch noise of MSE on
    # noise targets reaches 1.4x; the catalogue's collapses spike above 30x.
    lr_high_spike: float = 2.0
    chance_tolerance: float = 0.05
    # ... or the loss oscillates: in the second half of the run the mean step-to-step change of
    # the batch loss exceeds this fraction of its level, the level is not falling and it is still
    # above the baseline's plateau_level. Batch noise of a healthy run is 5-20% of the loss.
    lr_high_oscillation: float = 0.3
    # Learning rate too low: the recent median update ratio this small moves weights by 0.001%
    # per step: 100,000 steps to change them once over. SGD at lr 1e-6 sits near 1e-7.
    lr_low_update_ratio: float = 1e-5
    # ... or, learning slowly: below this ratio (ten times under the ~1e-3 rule of thumb) while
    # the loss at the end is still above plateau_level x the baseline. SGD at lr 1e-3 on a
    # 3-layer digits MLP sits at 6e-5 and ends at 2.308 against ln 10 = 2.303.
    lr_slow_update_ratio: float = 1e-4
    # ... but only while the recent gradient is not itself ~0 (||grad|| / ||w|| of the most moved
    # weight): with zero gradients (dead units) no learning rate would move anything.
    lr_low_min_gradient: float = 1e-8
    # "flat loss": the loss level fell by less than this fraction of its starting value.
    flat_loss_fraction: float = 0.05

    # Overfitting: after the best validation epoch, at least overfit_epochs more epochs, the
    # median of the last overfit_epochs validation losses this far (relative) above the best,
    # the last one too, the training loss lower than at the best epoch and the gap between
    # validation and training loss wider by overfit_gap_growth of the best validation loss.
    # One noisy epoch moves the median of three by nothing.
    overfit_val_rise: float = 0.1
    overfit_epochs: int = 3
    overfit_gap_growth: float = 0.1
    # Plateau: not learning. The loss level at the end is above plateau_level times the baseline
    # (the loss of predicting the class priors or the target mean; without targets, the loss at
    # the start) and the second half of the run improved it by less than plateau_improvement.
    # A run that converged at its noise floor ends below the baseline, so it is not a plateau.
    plateau_level: float = 0.97
    plateau_improvement: float = 0.02

    # Trend diagnoses need this many steps (loss values) before they speak.
    min_steps: int = 16

    def __post_init__(self) -> None:
        for name in ("warmup_steps",):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"DoctorConfig: {name} must be a non-negative int, got {value!r}")
        for name in ("histogram_values", "min_steps", "overfit_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DoctorConfig: {name} must be a positive int, got {value!r}")
        if self.interval is not None and (isinstance(self.interval, bool)
                                          or not isinstance(self.interval, int)
                                          or self.interval < 1):
            raise ValueError(
                f"DoctorConfig: interval must be a positive int or None, got {self.interval!r}"
            )
        if self.advice_style not in ADVICE_STYLES:
            raise ValueError(
                f"DoctorConfig: advice_style must be one of {ADVICE_STYLES}, "
                f"got {self.advice_style!r}"
            )
        for name in ("dead_fraction", "saturated_fraction", "saturation_level", "plateau_level",
                     "flat_loss_fraction", "chance_tolerance", "plateau_improvement"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 < value < 1.0:
                raise ValueError(f"DoctorConfig: {name} must be in (0, 1), got {value!r}")
        for name in ("vanishing_ratio", "exploding_ratio", "exploding_grad_norm",
                     "lr_high_update_ratio", "lr_high_peak_update_ratio", "lr_high_loss_rise",
                     "lr_high_spike", "lr_high_oscillation", "lr_low_update_ratio",
                     "lr_low_min_gradient", "overfit_val_rise", "overfit_gap_growth"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not (value > 0 and math.isfinite(value)):
                raise ValueError(f"DoctorConfig: {name} must be a positive number, got {value!r}")

    def sampled(self, step: int, interval: int) -> bool:
        """Whether ``step`` is examined at sampling ``interval``: the rule, in one place."""
        return step < self.warmup_steps or step % interval == 0

    def to_dict(self) -> dict[str, Any]:
        """Every threshold and setting as a plain dict (stored in the doctor's report for
        reproducibility).
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DoctorConfig:
        """The config saved by :meth:`to_dict`; an unknown key (a typo) is an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"DoctorConfig: unknown setting(s) {unknown}")
        return cls(**data)
