"""Per-layer statistics the doctor collects on sampled steps, as plain time series.

On a sampled step the collector hooks the model's layers for one forward pass (activation mean and
std, ReLU units that fired, saturated sigmoid/tanh units, a few values for histograms), reads every
gradient after backward (its norm), copies the weights, and after the optimizer step measures how
far they moved (the update-to-weight ratio). Unsampled steps cost a few attribute look-ups.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ActivationSeries", "ParamSeries", "StatsCollector", "TrainingStats", "activation_kind"]

# Module classes whose outputs get kind-specific statistics; matched by class name so that user
# subclasses of Module with these names are treated the same.
_KINDS = {"ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}


def activation_kind(module: Any) -> str | None:
    """'relu', 'sigmoid', 'tanh' for those activation modules, 'layer' for modules that hold
    parameters directly, None for the rest (containers, dropout, flatten...)."""
    kind = _KINDS.get(type(module).__name__)
    if kind is not None:
        return kind
    params = module.__dict__.get("_parameters") or {}
    if any(p is not None for p in params.values()):
        return "layer"
    return None


@dataclass
class ParamSeries:
    """One parameter's statistics over the sampled steps."""

    steps: list[int] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    weight_norm: list[float] = field(default_factory=list)
    update_ratio: list[float] = field(default_factory=list)
    shape: tuple[int, ...] = ()


@dataclass
class ActivationSeries:
    """One layer's output statistics over the sampled steps.

    ``dead_fraction`` is recorded when a window of at least ``min_dead_rows`` rows closes: the
    fraction of units (features, or channels of an image) that were never positive in it.
    """

    kind: str
    module_type: str = ""
    steps: list[int] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    saturated_fraction: list[float] = field(default_factory=list)
    dead_steps: list[int] = field(default_factory=list)
    dead_fraction: list[float] = field(default_factory=list)
    histogram: np.ndarray | None = None
    # the open window of the dead-unit count
    ever_active: np.ndarray | None = None
    rows_seen: int = 0


@dataclass
class TrainingStats:
    """Everything the doctor measured, ready for diagnoses and plots.

    Attributes:
        loss_steps, losses: every training step's loss.
        params: parameter name -> ParamSeries (sampled steps).
        activations: layer name -> ActivationSeries (sampled steps).
        epochs: one dict per finished epoch (``epoch``, ``loss``, ``val_loss`` when present).
        intervals: (step, interval) each time the sampling interval changed.
        non_finite: (step, what) for the first non-finite loss or gradient seen.
    """

    loss_steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    params: dict[str, ParamSeries] = field(default_factory=dict)
    activations: dict[str, ActivationSeries] = field(default_factory=dict)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    intervals: list[tuple[int, int]] = field(default_factory=list)
    non_finite: tuple[int, str] | None = None
    sampled_steps: list[int] = field(default_factory=list)

    def weight_names(self) -> list[str]:
        """Parameters with at least 2 dimensions (weights, not biases), in model order."""
        return [name for name, series in self.params.items() if len(series.shape) >= 2]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able time series (non-finite numbers become None)."""
        return {
            "loss_steps": list(self.loss_steps),
            "losses": _clean(self.losses),
            "params": {
                name: {
                    "shape": list(s.shape),
                    "steps": list(s.steps),
                    "grad_norm": _clean(s.grad_norm),
                    "weight_norm": _clean(s.weight_norm),
                    "update_ratio": _clean(s.update_ratio),
                }
                for name, s in self.params.items()
            },
            "activations": {
                name: {
                    "kind": s.kind,
                    "module_type": s.module_type,
                    "steps": list(s.steps),
                    "mean": _clean(s.mean),
                    "std": _clean(s.std),
                    "saturated_fraction": _clean(s.saturated_fraction),
                    "dead_steps": list(s.dead_steps),
                    "dead_fraction": _clean(s.dead_fraction),
                }
                for name, s in self.activations.items()
            },
            "epochs": [{k: _clean_value(v) for k, v in e.items()} for e in self.epochs],
            "intervals": [list(pair) for pair in self.intervals],
            "non_finite": list(self.non_finite) if self.non_finite else None,
        }


def _clean_value(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def _clean(values: list[float]) -> list[float | None]:
    return [_clean_value(v) for v in values]


def _norm(array: np.ndarray) -> float:
    flat = array.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(math.sqrt(float(np.dot(flat, flat)))) if flat.size else 0.0


class StatsCollector:
    """Collects :class:`TrainingStats` for one model; driven by the Doctor's callback methods.

    Args:
        model: a Module (anything with ``named_parameters`` and ``named_modules``).
        config: a DoctorConfig.
    """

    def __init__(self, model: Any, config: Any) -> None:
        if not hasattr(model, "named_parameters") or not hasattr(model, "named_modules"):
            raise TypeError(
                f"Doctor: the model must be a gradwise.nn.Module, got {type(model).__name__}"
            )
        self.config = config
        self.stats = TrainingStats()
        # picks the values kept for histograms; the doctor's own, so training's RNG is untouched
        self._sample_rng = np.random.default_rng(0)
        self._params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        for name, param in self._params:
            self.stats.params[name] = ParamSeries(shape=tuple(param.shape))
        self._layers = []
        for name, module in model.named_modules():
            kind = activation_kind(module)
            if kind is not None:
                label = name or type(module).__name__
                self._layers.append((label, module, kind))
                self.stats.activations[label] = ActivationSeries(
                    kind=kind, module_type=type(module).__name__
                )
        self._handles: list[Any] = []
        self._before: dict[str, np.ndarray] = {}
        self._step = 0
        self.hook_seconds = 0.0  # time spent inside the forward hooks (part of the overhead)

    # ---- one sampled step ---------------------------------------------------------------------
    def begin_sample(self, step: int) -> None:
        """Hook every watched layer for this step's forward pass."""
        self._step = step
        self.stats.sampled_steps.append(step)
        for label, module, kind in self._layers:
            self._handles.append(module.register_forward_hook(self._make_hook(label, kind)))

    def _make_hook(self, label: str, kind: str) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            started = time.perf_counter()
            data = getattr(output, "_data", None)
            if isinstance(data, np.ndarray) and data.size and data.dtype.kind == "f":
                self._record_activation(label, kind, data)
            self.hook_seconds += time.perf_counter() - started

        return hook

    def _record_activation(self, label: str, kind: str, data: np.ndarray) -> None:
        series = self.stats.activations[label]
        series.steps.append(self._step)
        flat = data.reshape(-1)
        with np.errstate(all="ignore"):
            # one pass for the sum and one BLAS dot for the sum of squares: 3x faster than std()
            mean = float(flat.sum(dtype=np.float64)) / flat.size
            mean_square = float(np.dot(flat, flat)) / flat.size
            series.mean.append(mean)
            series.std.append(math.sqrt(max(mean_square - mean * mean, 0.0)))
            if kind == "sigmoid":
                level = self.config.saturation_level
                inside = np.count_nonzero((flat > 1.0 - level) & (flat < level))
                saturated = 1.0 - inside / flat.size
            elif kind == "tanh":
                inside = np.count_nonzero(np.abs(flat) <= self.config.saturation_level)
                saturated = 1.0 - inside / flat.size
            else:
                saturated = 0.0
        series.saturated_fraction.append(saturated)
        if kind == "relu" and data.ndim >= 2:
            # a unit is a feature (N, F) or a channel (N, C, H, W); "alive" if it fired anywhere
            axes = (0, *range(2, data.ndim))
            fired = data.max(axis=axes) > 0
            if series.ever_active is None or series.ever_active.shape != fired.shape:
                series.ever_active = fired
                series.rows_seen = 0
            else:
                series.ever_active |= fired
            series.rows_seen += data.shape[0]
        keep = self.config.histogram_values
        # random positions: a regular stride through (N, C, H, W) keeps hitting the same pixel
        # of every map (often the zero-padded border), which draws a comb, not a distribution
        picks = self._sample_rng.integers(0, flat.size, size=min(keep, flat.size))
        series.histogram = flat[picks].astype(np.float32)

    def end_forward(self) -> None:
        """Take the hooks off again (validation passes and unsampled steps stay unobserved)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def after_backward(self) -> None:
        """Gradient and weight norms; keep the weights to measure the update after the step."""
        step = self._step
        for name, param in self._params:
            series = self.stats.params[name]
            series.steps.append(step)
            grad = param._grad
            grad_norm = _norm(grad) if grad is not None else 0.0
            series.grad_norm.append(grad_norm)
            series.weight_norm.append(_norm(param._data))
            series.update_ratio.append(math.nan)  # filled in by after_step
            if not math.isfinite(grad_norm) and self.stats.non_finite is None:
                self.stats.non_finite = (step, f"gradient of {name}")
            buffer = self._before.get(name)
            if buffer is None or buffer.shape != param._data.shape:
                buffer = self._before[name] = np.empty_like(param._data)
            np.copyto(buffer, param._data)

    def after_step(self) -> None:
        """Update-to-weight ratio ||w_new - w_old|| / ||w_old|| for each parameter."""
        for name, param in self._params:
            series = self.stats.params[name]
            before = self._before.get(name)
            if before is None or not series.update_ratio:
                continue
            old_norm = series.weight_norm[-1]
            with np.errstate(all="ignore"):
                np.subtract(param._data, before, out=before)
            moved = _norm(before)
            ratio = moved / old_norm if old_norm > 0 else (0.0 if moved == 0 else math.inf)
            series.update_ratio[-1] = ratio

    # ---- every step ---------------------------------------------------------------------------
    def record_loss(self, step: int, loss: float) -> None:
        self.stats.loss_steps.append(step)
        self.stats.losses.append(loss)
        if not math.isfinite(loss) and self.stats.non_finite is None:
            self.stats.non_finite = (step, "training loss")

    def close_dead_windows(self) -> None:
        """At an epoch's end: record the dead fraction of each ReLU whose window is full."""
        for series in self.stats.activations.values():
            if series.ever_active is None or series.rows_seen < self.config.min_dead_rows:
                continue
            series.dead_steps.append(self._step)
            series.dead_fraction.append(float(1.0 - series.ever_active.mean()))
            series.ever_active = None
            series.rows_seen = 0

    def record_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        record: dict[str, Any] = {"epoch": epoch}
        for key in ("loss", "val_loss", "lr"):
            value = logs.get(key)
            if isinstance(value, int | float | np.floating):
                record[key] = float(value)
        self.stats.epochs.append(record)
