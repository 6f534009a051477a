"""DoctorConfig: how often the doctor samples and where each diagnosis draws its line.

Every threshold says why it sits where it does. They were calibrated on the planted failures in
``tests/doctor`` (each must be caught) and on healthy runs (a digits MLP with SGD or Adam, a spiral
MLP) that must raise nothing: each line sits with a wide margin on both sides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["DoctorConfig"]


@dataclass
class DoctorConfig:
    """Settings of the training doctor.

    Sampling:
        warmup_steps: the first steps of a run are all sampled: explosions and NaNs often
            happen there, and the trend diagnoses need a few points. 8 steps cost well under
            1% of any run long enough for the overhead to matter.
        interval: steps between two sampled steps after the warm-up; adapted while training.
        min_interval, max_interval: the range the adaptive interval stays in.
        adaptive: change the interval so the doctor's time stays within ``overhead_budget``.
        overhead_budget: the fraction of step time the doctor may spend. The promise is 5%; we
            aim at 2.5% so timing noise does not push a run over.
        histogram_values: activation values kept per layer (the latest sampled batch) for the
            report's histograms.
        min_dead_rows: rows that must have passed through a ReLU before a unit that never fired
            counts as dead; below that a quiet unit may just not have met its input yet.

    Thresholds (see each comment):
        The names say what they bound; a diagnosis fires when its evidence crosses the line.
    """

    warmup_steps: int = 8
    interval: int = 1
    min_interval: int = 1
    max_interval: int = 512
    adaptive: bool = True
    overhead_budget: float = 0.025
    histogram_values: int = 2048
    min_dead_rows: int = 256

    # Vanishing: the gradient norm of the first weight layer over that of the last. A healthy
    # 2-4 layer MLP sits between 0.05 and 20; a 10-layer sigmoid stack with default init is below
    # 1e-6, because each sigmoid multiplies the gradient by at most 0.25.
    vanishing_ratio: float = 1e-3
    # Exploding, by depth: the same ratio the other way round (first layer gets 1000x the last).
    exploding_ratio: float = 1e3
    # Exploding, by size: a total gradient norm this large means one SGD step with lr 1e-3
    # already moves the weights by more than their own scale. Healthy runs stay below 50.
    exploding_grad_norm: float = 1e3
    # Exploding, in time: the gradient norm growing this much over the run (healthy runs change by
    # less than 10x either way once past the first steps).
    exploding_growth: float = 1e3

    # Dead ReLUs: a layer where more than this fraction of units never fired on min_dead_rows
    # rows. He-initialised healthy nets have under 10% dead; biases at -5 kill more than 90%.
    dead_fraction: float = 0.5
    # Saturation: the fraction of sigmoid outputs below 0.01 or above 0.99 (tanh: |a| > 0.99).
    # There the local derivative is below 0.01, so those units have all but stopped learning.
    saturation_level: float = 0.99
    saturated_fraction: float = 0.5

    # Learning rate too high: median update/weight ratio (||w_new - w|| / ||w||). Karpathy's rule
    # of thumb is about 1e-3; Adam at lr 1e-3 on a default-initialised MLP starts near 0.05.
    # Above 0.3 a third of each weight is replaced every step: training cannot settle.
    lr_high_update_ratio: float = 0.3
    # ... or a single sampled step more than doubled a weight matrix (||dw|| > 1.5 ||w||): no
    # healthy optimizer step does that, even Adam's first steps on a fresh layer stay below 0.1.
    lr_high_peak_update_ratio: float = 1.5
    # ... or the smoothed training loss ends this many times above its start (it diverged).
    lr_high_loss_rise: float = 1.5
    # ... or the loss oscillates: in the second half of the run the mean step-to-step change of
    # the batch loss exceeds this fraction of its level, the level is not falling and it is still
    # above plateau_level of the start. Batch noise of a healthy run is 5-20% of the loss, and
    # where it is larger the loss has already fallen far below its start.
    lr_high_oscillation: float = 0.3
    # Learning rate too low: median update ratio this small moves weights by 0.001% per step:
    # 100,000 steps to change them once over. SGD at lr 1e-6 sits near 1e-7.
    lr_low_update_ratio: float = 1e-5
    # ... but only while the gradient is not itself ~0 (median ||grad|| / ||w|| of the most moved
    # weight): with zero gradients (dead units) no learning rate would move anything.
    lr_low_min_gradient: float = 1e-8
    # "flat loss": the smoothed loss fell by less than this fraction of its starting value.
    flat_loss_fraction: float = 0.05

    # Overfitting: validation loss this far (relative) above its best epoch while the training
    # loss kept falling since that epoch.
    overfit_val_rise: float = 0.1
    # Plateau: the last ``plateau_window`` fraction of steps improved the smoothed loss by less
    # than ``plateau_improvement`` of its value, while it is still above ``plateau_level`` times
    # its starting value (a run that converged is not on a plateau) and the updates are not tiny
    # (that is "learning rate too low").
    plateau_window: float = 0.5
    plateau_improvement: float = 0.01
    plateau_level: float = 0.5

    # Trend diagnoses need this many sampled steps (and loss values) before they speak.
    min_samples: int = 8

    def __post_init__(self) -> None:
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) \
                or self.warmup_steps < 0:
            raise ValueError(
                f"DoctorConfig: warmup_steps must be a non-negative int, got {self.warmup_steps!r}"
            )
        for name in ("interval", "min_interval", "max_interval", "histogram_values",
                     "min_dead_rows", "min_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DoctorConfig: {name} must be a positive int, got {value!r}")
        if not self.min_interval <= self.interval <= self.max_interval:
            raise ValueError(
                f"DoctorConfig: need min_interval <= interval <= max_interval, got "
                f"{self.min_interval}, {self.interval}, {self.max_interval}"
            )
        if not 0.0 < self.overhead_budget < 1.0:
            raise ValueError(
                f"DoctorConfig: overhead_budget must be in (0, 1), got {self.overhead_budget}"
            )
        for name in ("dead_fraction", "saturated_fraction", "saturation_level",
                     "plateau_window", "plateau_level", "flat_loss_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"DoctorConfig: {name} must be in (0, 1), got {value}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DoctorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"DoctorConfig: unknown setting(s) {unknown}")
        return cls(**data)
