"""The diagnoses: each reads TrainingStats and returns Findings in plain words, with evidence.

One function per diagnosis, all with the signature ``(stats, config) -> list[Finding]``; they read,
never change, what the collector measured. The thresholds live in :class:`DoctorConfig`, each with
the reason for its value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gradwise.doctor.config import DoctorConfig
from gradwise.doctor.stats import TrainingStats

__all__ = ["DIAGNOSES", "SEVERITIES", "Finding", "diagnose"]

SEVERITIES = ("info", "warning", "error")


@dataclass
class Finding:
    """One diagnosis: what is wrong, how sure we are, the numbers behind it and what to try.

    Attributes:
        name: a stable identifier, e.g. ``"vanishing_gradients"``.
        severity: ``"info"``, ``"warning"`` or ``"error"``.
        summary: one line in plain words.
        evidence: the numbers, layer names and steps that support it.
        remedies: things to try, most likely first.
        step: the training step the evidence points at (None when it is about the whole run).
        layer: the layer or parameter concerned (None when it is the whole model).
    """

    name: str
    severity: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remedies: list[str] = field(default_factory=list)
    step: int | None = None
    layer: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"Finding: severity must be one of {SEVERITIES}, got {self.severity!r}"
            )

    def _repr_html_(self) -> str:  # Jupyter's display; the renderer lives in findings_html.py
        from gradwise.doctor.findings_html import finding_html

        return finding_html(self)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evidence"] = {key: _json_number(value) for key, value in self.evidence.items()}
        return data


def _json_number(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float(f"{value:.6g}")
    if isinstance(value, list | tuple):
        return [_json_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
    return value


# ---- helpers -----------------------------------------------------------------------------------
def _finite(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def _recent_median(values: list[float], fraction: float = 0.5) -> float:
    """Median of the finite values in the last ``fraction`` of the series (nan when none)."""
    tail = values[len(values) - max(1, math.ceil(len(values) * fraction)):] if values else []
    finite = _finite(tail)
    return float(np.median(finite)) if finite.size else math.nan


def _finite_losses(stats: TrainingStats) -> np.ndarray:
    """The training losses up to the first non-finite one."""
    losses = np.asarray(stats.losses, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(losses))
    return losses[: bad[0]] if bad.size else losses


def _level(losses: np.ndarray, start: int, stop: int) -> float:
    """A robust loss level over losses[start:stop]: the median (noise of single batches out)."""
    return float(np.median(losses[start:stop]))


def _chunk(n: int) -> int:
    """Points averaged for a start or end level: a tenth of the run, at least 3."""
    return max(3, n // 10)


def _total_grad_norms(stats: TrainingStats) -> tuple[list[int], np.ndarray]:
    """Sampled steps and the global gradient norm over all parameters at each."""
    series = list(stats.params.values())
    if not series or not series[0].steps:
        return [], np.zeros(0)
    n = min(len(s.grad_norm) for s in series)
    squares = np.zeros(n)
    for s in series:
        with np.errstate(over="ignore", invalid="ignore"):
            squares += np.asarray(s.grad_norm[:n], dtype=np.float64) ** 2
    return series[0].steps[:n], np.sqrt(squares)


def _depth_ratio(stats: TrainingStats) -> tuple[str, str, float, float, float] | None:
    """(first, last, first grad norm, last grad norm, median ratio first/last) over samples."""
    names = stats.weight_names()
    if len(names) < 2:
        return None
    first, last = stats.params[names[0]], stats.params[names[-1]]
    n = min(len(first.grad_norm), len(last.grad_norm))
    a = np.asarray(first.grad_norm[:n], dtype=np.float64)
    b = np.asarray(last.grad_norm[:n], dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b) & (b > 0)
    if not ok.any():
        return None
    ratio = float(np.median(a[ok] / b[ok]))
    return names[0], names[-1], float(np.median(a[ok])), float(np.median(b[ok])), ratio


def _layer_of(param_name: str) -> str:
    return param_name.rsplit(".", 1)[0] if "." in param_name else param_name


def _max_update_ratio(stats: TrainingStats) -> tuple[str | None, float, dict[str, float]]:
    """Per weight: median update ratio over the recent half; the largest of them and where."""
    per_layer = {
        name: _recent_median(stats.params[name].update_ratio) for name in stats.weight_names()
    }
    per_layer = {name: value for name, value in per_layer.items() if math.isfinite(value)}
    if not per_layer:
        return None, math.nan, {}
    worst = max(per_layer, key=per_layer.__getitem__)
    return worst, per_layer[worst], per_layer


def _last_step(stats: TrainingStats) -> int | None:
    return stats.loss_steps[-1] if stats.loss_steps else None


_CLIP = (
    "clip gradients: Trainer(clip_grad_norm=1.0), or nn.utils.clip_grad_norm_(params, 1.0) "
    "before optimizer.step()"
)


# ---- the diagnoses -----------------------------------------------------------------------------
def non_finite_values(stats: TrainingStats, config: DoctorConfig) -> list[Finding]:
    if stats.non_finite is None:
        return []
    step, what = stats.non_finite
    losses = _finite_losses(stats)
    evidence: dict[str, Any] = {"step": step, "where": what}
    if losses.size:
        evidence["last_finite_loss"] = float(losses[-1])
    return [Finding(
        "non_finite_values", "error",
        f"NaN/Inf appeared in the {what} at step {step}; from then on training learns nothing",
        evidence,
        [
            "lower the learning rate (try 10x smaller, or run gw.doctor.lr_find)",
            _CLIP,
            "find the op that made it: run the step under `with gw.detect_anomaly():` "
            "(gradwise train --detect-anomaly)",
            "check the data for NaN/Inf and scale inputs to about unit range",
            "use fused, stable losses (F.cross_entropy on logits, "
            "F.binary_cross_entropy_with_logits) instead of log(softmax(x))",
        ],
        step=step,
    )]


def exploding_gradients(stats: TrainingStats, config: DoctorConfig) -> list[Finding]:
    steps, totals = _total_grad_norms(stats)
    if not steps:
        return []
    reasons = []
    evidence: dict[str, Any] = {}
    finite = np.isfinite(totals)
    step = None
    if finite.any():
        peak = int(np.argmax(np.where(finite, totals, -1.0)))
        evidence["max_grad_norm"] = float(totals[peak])
        evidence["max_grad_norm_step"] = steps[peak]
        if totals[peak] > config.exploding_grad_norm:
            reasons.append(f"the total gradient norm reached {totals[peak]:.3g}")
            step = steps[peak]
        growth = _grad_growth(stats)
        if growth is not None and growth[0] > config.exploding_growth:
            evidence["growth"] = growth[0]
            reasons.append(f"it grew {growth[0]:.3g}x during training")
            step = growth[1]
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        evidence["non_finite_grad_step"] = steps[bad]
        reasons.append(f"gradients became NaN/Inf at step {steps[bad]}")
        step = steps[bad] if step is None else step
    depth = _depth_ratio(stats)
    layer = None
    if depth is not None and depth[4] > config.exploding_ratio:
        first_name, last_name, first_norm, last_norm, ratio = depth
        evidence.update(first_layer=first_name, first_grad_norm=first_norm,
                        last_layer=last_name, last_grad_norm=last_norm, ratio=ratio)
        reasons.append(
            f"{first_name} gets {ratio:.3g}x the gradient of {last_name} (it grows through depth)"
        )
        layer = first_name
    if not reasons:
        return []
    return [Finding(
        "exploding_gradients", "error",
        "exploding gradients: " + "; ".join(reasons),
        evidence,
        [
            _CLIP,
            "lower the learning rate",
            "use a variance-preserving init (nn.init.kaiming_normal_ for ReLU, xavier for tanh) "
            "instead of large random weights",
            "add normalisation (BatchNorm1d/LayerNorm) between layers",
        ],
        step=step, layer=layer,
    )]


def vanishing_gradients(stats: TrainingStats, config: DoctorConfig) -> list[Finding]:
    depth = _depth_ratio(stats)
    if depth is None or depth[4] >= config.vanishing_ratio:
        return []
    first_name, last_name, first_norm, last_norm, ratio = depth
    per_layer = {name: _recent_median(stats.params[name].grad_norm, 1.0)
                 for name in stats.weight_names()}
    activations = sorted({s.kind for s in stats.activations.values()} - {"layer"})
    return [Finding(
        "vanishing_gradients", "warning",
        f"vanishing gradients: {first_name} gets {ratio:.2g} times the gradient of {last_name}, "
        "so the early layers barely learn",
        {
            "first_layer": first_name, "first_grad_norm": first_norm,
            "last_layer": last_name, "last_grad_norm": last_norm, "ratio": ratio,
            "grad_norm_per_layer": per_layer, "activations": activations,
        },
        [
            "use ReLU (or GELU) instead of sigmoid/tanh in hidden layers",
            "use a variance-preserving init: nn.init.kaiming_normal_ (ReLU) or "
            "nn.init.xavier_uniform_ (tanh/sigmoid), not small random weights",
            "add normalisation (BatchNorm1d/LayerNorm) or residual connections",
            "use fewer layers",
        ],
        step=_last_step(stats), layer=first_name,
    )]


def dead_relus(stats: TrainingStats, config: DoctorConfig) -> list[Finding]:
    findings = []
    for name, series in stats.activations.items():
        if series.kind != "relu" or not series.dead_fraction:
            continue
        fraction = series.dead_fraction[-1]
        if fraction <= config.dead_fraction:
            continue
        findings.append(Finding(
            "dead_relus", "warning",
            f"dead ReLUs: {fraction:.0%} of the units of layer {name} ({series.module_type}) never "
            "fired on the sampled batches, so they pass no gradient and have stopped learning",
            {"layer": name, "dead_fraction": fraction, "step": series.dead_steps[-1],
             "history": list(series.dead_fraction)},
            [
                "check the biases and init of the layer before it (negative biases or a "
                "large negative shift kill units); nn.init.kaiming_normal_ and zero biases "
                "are a safe start",
                "lower the learning rate: one large step can push units into the dead zone",
                "use LeakyReLU or GELU, which pass gradient for negative inputs",
                "normalise inputs (and activations, with BatchNorm1d)",
            ],
            step=series.dead_steps[-1], layer=name,
        ))
    return findings


def saturated_activations(stats: TrainingStats, config: DoctorConfig) -> list[Finding]:
    findings = []
    for name, series in stats.activations.items():
        if series.kind not in ("sigmoid", "tanh") or not series.saturated_fraction:
            continue
        fraction = _recent_median(series.saturated_fraction)
        if not fraction > config.saturated_fraction:
            continue
        bound = "0 or 1" if series.kind == "sigmoid" else "-1 or 1"
        findings.append(Finding(
            "saturated_activations", "warning",
            f"saturated activations: {fraction:.0%} of the outputs of layer {name} "
            f"({series.module_type}) are pinned near {bound}, where the derivative is almost 0",
            {"layer": name, "kind": series.kind, "saturated_fraction": fraction,
             "level": config.saturation_level, "mean": _recent_median(series.mean),
             "std": _recent_median(series.std)},
            [
                "scale the inputs to about unit range (standardize) so pre-activations stay "
                "small",
                "use a smaller init (nn.init.xavier_uniform_) for the layer before it",
                "lower the learning rate",
                "use ReLU in hidden layers, or add BatchNorm1d before the activation",
            ],
            step=series.steps[-1], layer=name,
        ))
    return findings


def lr_too_high(stats: TrainingStats, config: DoctorConfig) -> list[Finding]:
    losses = _finite_losses(stats)
    reasons = []
    evidence: dict[str, Any] = {}
    severity = "warning"
    worst, ratio, per_layer = _max_update_ratio(stats)
    if worst is not None and ratio > config.lr_high_update_ratio:
        reasons.append(f"each step changes {worst} by {ratio:.0%} of its size")
        evidence.update(update_ratio=ratio, update_ratio_layer=worst,
                        update_ratio_per_layer=per_layer)
    else:
        peak_step, peak_layer, peak = _peak_update_ratio(stats)
        if peak > config.lr_high_peak_update_ratio:
            reasons.append(f"one step changed {peak_layer} by {peak:.3g}x its size "
                           f"(step {peak_step})")
            evidence.update(peak_update_ratio=peak, peak_update_ratio_layer=peak_layer,
                            peak_update_ratio_step=peak_step)
            worst = peak_layer
    if losses.size >= config.min_samples:
        chunk = _chunk(losses.size)
        start, end = _level(losses, 0, chunk), _level(losses, -chunk, None)
        evidence.update(loss_start=start, loss_end=end)
        tail = losses[losses.size // 2:]
        tail_chunk = _chunk(tail.size)
        tail_level = _level(tail, -tail_chunk, None)
        swing = float(np.mean(np.abs(np.diff(tail)))) if tail.size > 2 else 0.0
        if end > start * config.lr_high_loss_rise:
            reasons.append(f"the training loss rose from {start:.4g} to {end:.4g}")
            severity = "error"
        elif (swing > config.lr_high_oscillation * tail_level
              and tail_level > config.plateau_level * start
              and tail_level >= _level(tail, 0, tail_chunk)):
            evidence.update(mean_step_change=swing, loss_level=tail_level)
            reasons.append(
                f"the loss swings by {swing:.3g} per step around {tail_level:.3g} without "
                "coming down"
            )
    if stats.non_finite is not None and stats.non_finite[1] == "training loss":
        reasons.append(f"the loss became NaN/Inf at step {stats.non_finite[0]}")
        severity = "error"
    growth = _grad_growth(stats)
    if growth is not None and growth[0] > config.exploding_growth:
        reasons.append(f"the gradient norm grew {growth[0]:.3g}x by step {growth[1]}")
        evidence.update(grad_growth=growth[0], grad_growth_step=growth[1])
    if not reasons:
        return []
    lr = _current_lr(stats)
    if lr is not None:
        evidence["lr"] = lr
    return [Finding(
        "lr_too_high", severity,
        "learning rate too high: " + "; ".join(reasons),
        evidence,
        [
            "divide the learning rate by 10 (gw.doctor.lr_find suggests one)",
            "use a warm-up or a decaying schedule (optim.lr_scheduler)",
            _CLIP,
        ],
        step=_last_step(stats), layer=worst,
    )]


def _peak_update_ratio(stats: TrainingStats) -> tuple[int | None, str | None, float]:
    """The largest single-step update ratio of any weight: (step, layer, ratio)."""
    best: tuple[int | None, str | None, float] = (None, None, 0.0)
    for name in stats.weight_names():
        series = stats.params[name]
        for step, value in zip(series.steps, series.update_ratio, strict=False):
            if math.isfinite(value) and value > best[2]:
                best = (step, name, value)
    return best


def _grad_growth(stats: TrainingStats) -> tuple[float, int] | None:
    """How much the total gradient norm grew from the first sample to its peak, and when."""
    steps, totals = _total_grad_norms(stats)
    finite = np.isfinite(totals)
    if not finite.any() or totals[finite][0] <= 0:
        return None
    peak = int(np.argmax(np.where(finite, totals, -1.0)))
    return float(totals[peak] / totals[finite][0]), steps[peak]


def lr_too_low(stats: TrainingStats, config: DoctorConfig) -> list[Finding]:
    losses = _finite_losses(stats)
    worst, ratio, per_layer = _max_update_ratio(stats)
    if worst is None or losses.size < config.min_samples or not ratio < config.lr_low_update_ratio:
        return []
    if _max_grad_to_weight(stats) < config.lr_low_min_gradient:
        return []  # nothing to follow: a larger lr would not move the weights either
    chunk = _chunk(losses.size)
    start, end = _level(losses, 0, chunk), _level(losses, -chunk, None)
    drop = (start - end) / abs(start) if start else 0.0
    if drop >= config.flat_loss_fraction:
        return []
    evidence = {"max_update_ratio": ratio, "layer": worst, "update_ratio_per_layer": per_layer,
                "loss_start": start, "loss_end": end, "relative_drop": drop}
    lr = _current_lr(stats)
    if lr is not None:
        evidence["lr"] = lr
    return [Finding(
        "lr_too_low", "warning",
        f"learning rate too low: the weights move by at most {ratio:.1e} of their size per step "
        f"and the loss fell only {max(drop, 0.0):.1%}",
        evidence,
        [
            "multiply the learning rate by 10-100 (gw.doctor.lr_find suggests one)",
            "Adam with lr 1e-3 is a robust default",
        ],
        step=_last_step(stats),
    )]


def _max_grad_to_weight(stats: TrainingStats) -> float:
    """The largest median ||grad|| / ||w|| of any weight (0 when the gradients are all 0)."""
    best = 0.0
    for name in stats.weight_names():
        series = stats.params[name]
        grad = np.asarray(series.grad_norm, dtype=np.float64)
        weight = np.asarray(series.weight_norm, dtype=np.float64)
        ok = np.isfinite(grad) & np.isfinite(weight) & (weight > 0)
        if ok.any():
            best = max(best, float(np.median(grad[ok] / weight[ok])))
    return best


def overfitting(stats: TrainingStats, config: DoctorConfig) -> list[Finding]:
    epochs = [e for e in stats.epochs if "val_loss" in e and "loss" in e
              and math.isfinite(e["val_loss"]) and math.isfinite(e["loss"])]
    if len(epochs) < 3:
        return []
    best = min(range(len(epochs)), key=lambda i: epochs[i]["val_loss"])
    best_val, last = epochs[best]["val_loss"], epochs[-1]
    rise = (last["val_loss"] - best_val) / abs(best_val) if best_val else 0.0
    if best == len(epochs) - 1 or rise <= config.overfit_val_rise:
        return []
    if last["loss"] >= epochs[best]["loss"]:
        return []  # both rising: that is divergence, not overfitting
    first_loss = stats.losses[0] if stats.losses else math.inf
    if math.isfinite(first_loss) and best_val >= first_loss:
        # even at its best the model did worse on validation data than untrained (the first
        # batch's loss): the run diverged and is recovering, which is not overfitting
        return []
    return [Finding(
        "overfitting", "warning",
        f"overfitting: validation loss rose {rise:.0%} since epoch {epochs[best]['epoch']} "
        f"({best_val:.4g} -> {last['val_loss']:.4g}) while training loss kept falling "
        f"({epochs[best]['loss']:.4g} -> {last['loss']:.4g})",
        {"best_epoch": epochs[best]["epoch"], "best_val_loss": best_val,
         "last_val_loss": last["val_loss"], "train_loss_at_best": epochs[best]["loss"],
         "last_train_loss": last["loss"], "gap": last["val_loss"] - last["loss"]},
        [
            f"stop earlier: keep the weights of epoch {epochs[best]['epoch']} "
            "(EarlyStopping with restore_best_weights)",
            "regularise: weight decay, Dropout, data augmentation",
            "use a smaller model or more training data",
        ],
        step=_last_step(stats),
    )]


def plateau(stats: TrainingStats, config: DoctorConfig) -> list[Finding]:
    losses = _finite_losses(stats)
    if losses.size < 4 * config.min_samples:
        return []
    window_start = int(losses.size * (1.0 - config.plateau_window))
    chunk = _chunk(losses.size - window_start)
    start = _level(losses, 0, _chunk(losses.size))
    before, after = _level(losses, window_start, window_start + chunk), _level(losses, -chunk, None)
    improvement = (before - after) / abs(before) if before else 0.0
    if improvement >= config.plateau_improvement or after <= config.plateau_level * start:
        return []
    _, ratio, _ = _max_update_ratio(stats)
    if math.isfinite(ratio) and ratio < config.lr_low_update_ratio:
        return []  # the weights are not moving: lr_too_low says that better
    first_step = stats.loss_steps[window_start]
    return [Finding(
        "plateau", "warning",
        f"plateau: the training loss has stayed near {after:.4g} since step {first_step} "
        f"(it started at {start:.4g})",
        {"since_step": first_step, "loss_start": start, "loss_window_start": before,
         "loss_end": after, "relative_improvement": improvement},
        [
            "check that the labels match the inputs and that the task is learnable "
            "(overfit one small batch first)",
            "try a larger learning rate or a schedule with restarts",
            "use a larger model, or Adam instead of SGD",
        ],
        step=first_step,
    )]


def _current_lr(stats: TrainingStats) -> float | None:
    for record in reversed(stats.epochs):
        if isinstance(record.get("lr"), float):
            return record["lr"]
    return None


#: every diagnosis, most serious first (the order findings are listed in)
DIAGNOSES: tuple[Callable[[TrainingStats, DoctorConfig], list[Finding]], ...] = (
    non_finite_values,
    exploding_gradients,
    lr_too_high,
    vanishing_gradients,
    dead_relus,
    saturated_activations,
    lr_too_low,
    overfitting,
    plateau,
)


def diagnose(stats: TrainingStats, config: DoctorConfig | None = None) -> list[Finding]:
    """Run every diagnosis over ``stats``; findings ordered by severity, then by DIAGNOSES."""
    config = config or DoctorConfig()
    findings = [finding for check in DIAGNOSES for finding in check(stats, config)]
    rank = {severity: i for i, severity in enumerate(reversed(SEVERITIES))}
    return sorted(findings, key=lambda f: rank[f.severity])
