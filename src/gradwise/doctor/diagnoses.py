"""The diagnoses: each reads TrainingStats and returns Findings in plain words, with evidence.

One function per diagnosis, all with the signature ``(stats, context) -> list[Finding]``; they
read, never change, what the collector measured. The thresholds live in :class:`DoctorConfig`,
each with the reason for its value; each diagnosis's docstring gives its signal, threshold,
evidence keys and the source of the rule.

Every rule must give the same verdict whether the doctor examined every step or one in 64. So a
rule reads only:

- the loss, recorded at every step, summarised by medians of chunks (a tenth of the run, at
  least 3 steps), so that single noisy batches do not decide anything;
- the warm-up samples (steps ``0 .. warmup_steps-1``), examined at every rate;
- medians over the *recent* samples: those in the second half of the run (the last sample if
  none is), which every rate has;
- the epochs' records (training and validation loss), recorded at every epoch's end;
- the baseline loss: what predicting the class priors (cross-entropy: the entropy of the class
  frequencies, ln C for C balanced classes; BCE: the binary entropy of each output's mean) or
  the target mean (MSE: the target variance) would score, from the targets the loss saw.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gradwise.doctor.config import DoctorConfig
from gradwise.doctor.stats import TrainingStats

__all__ = ["DIAGNOSES", "SEVERITIES", "Context", "Finding", "baseline_loss", "diagnose"]

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
        """The finding as JSON-safe data (non-finite evidence numbers become strings)."""
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


@dataclass
class Context:
    """What every diagnosis reads: the statistics, the settings, and facts derived once.

    Attributes:
        stats, config: the recorded statistics and the doctor's settings.
        lr: the optimizer's current learning rate (None when unknown).
        optimizer: the optimizer's class name (None when unknown).
        losses: the finite training losses (up to the first non-finite one), every step.
        start, end: the loss level at the start and at the end (medians of a tenth of the run).
        baseline: the baseline loss (:func:`baseline_loss`), or None without targets.
        recent_from: the first step of the recent window (the second half of the run).
    """

    stats: TrainingStats
    config: DoctorConfig
    lr: float | None = None
    optimizer: str | None = None
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    start: float = math.nan
    end: float = math.nan
    baseline: float | None = None
    recent_from: int = 0

    @classmethod
    def build(cls, stats: TrainingStats, config: DoctorConfig, lr: float | None = None,
              optimizer: str | None = None) -> Context:
        """Summarise recorded ``stats`` once for all diagnoses (finite losses, smoothed trend, ...).

        Args:
            stats: what the doctor recorded during training.
            config: the thresholds in use.
            lr: the learning rate, when known; optimizer: its class name, when known.
        """
        losses = np.asarray(stats.losses, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(losses))
        losses = losses[: bad[0]] if bad.size else losses
        context = cls(stats, config, lr, optimizer, losses, baseline=baseline_loss(stats),
                      recent_from=stats.steps // 2)
        if losses.size:
            chunk = _chunk(losses.size)
            context.start = _level(losses[:chunk])
            context.end = _level(losses[-chunk:])
        return context

    @property
    def reference(self) -> float:
        """The loss "not learning" scores: the baseline, or the starting level without one."""
        return self.baseline if self.baseline is not None else self.start

    def advice(self, python: str, cli: str) -> str:
        """The remedy in the words of where the user is: Python calls or command flags."""
        return cli if self.config.advice_style == "cli" else python


# ---- helpers -----------------------------------------------------------------------------------
def _level(values: np.ndarray) -> float:
    """A robust loss level: the median (single noisy batches do not move it)."""
    return float(np.median(values)) if values.size else math.nan


def _chunk(n: int) -> int:
    """Points in a start or end level: a tenth of the run, at least 3."""
    return min(n, max(3, n // 10))


def _finite(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def _recent(steps: list[int], values: list[Any], recent_from: int) -> list[Any]:
    """The values of the samples at or after ``recent_from`` (the last sample when none is)."""
    picked = [v for s, v in zip(steps, values, strict=False) if s >= recent_from]
    return picked if picked else list(values[-1:])


def _warmup(steps: list[int], values: list[Any], config: DoctorConfig) -> list[Any]:
    """The values of the warm-up samples (examined at every sampling rate)."""
    return [v for s, v in zip(steps, values, strict=False) if s < config.warmup_steps]


def _median(values: list[float]) -> float:
    finite = _finite(values)
    return float(np.median(finite)) if finite.size else math.nan


def baseline_loss(stats: TrainingStats) -> float | None:
    """The loss of a model that ignores its input: predicting the class priors or target mean.

    Cross-entropy: the entropy of the observed class frequencies (ln C when balanced). BCE: the
    mean over outputs of the binary entropy of each output's positive rate. MSE: the mean over
    outputs of the target variance. From the targets the loss saw on the sampled steps (the
    warm-up alone gives 8 batches). None when no loss reported its targets.
    """
    targets = stats.targets
    if targets is None or not targets.values:
        return None
    values = np.asarray(targets.values, dtype=np.float64)
    if targets.kind == "classes":
        counts = values.sum(axis=0)
        total = counts.sum()
        if total <= 0:
            return None
        p = counts[counts > 0] / total
        return float(-(p * np.log(p)).sum())
    rows = values[:, 0].sum()
    if rows <= 0:
        return None
    if targets.kind == "binary":
        mean = np.clip(values[:, 1:].sum(axis=0) / rows, 1e-7, 1 - 1e-7)
        return float(np.mean(-(mean * np.log(mean) + (1 - mean) * np.log(1 - mean))))
    columns = (values.shape[1] - 1) // 2
    mean = values[:, 1:1 + columns].sum(axis=0) / rows
    mean_square = values[:, 1 + columns:].sum(axis=0) / rows
    return float(np.mean(np.maximum(mean_square - mean * mean, 0.0)))


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
    """(first, last, first grad norm, last grad norm, median ratio first/last).

    Over the samples where both gradients are non-zero and finite; None when the first layer's
    gradient is exactly 0 on most samples (dead units, not vanishing: dead_relus says that).
    """
    names = stats.weight_names()
    if len(names) < 2:
        return None
    first, last = stats.params[names[0]], stats.params[names[-1]]
    n = min(len(first.grad_norm), len(last.grad_norm))
    a = np.asarray(first.grad_norm[:n], dtype=np.float64)
    b = np.asarray(last.grad_norm[:n], dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    if not ok.any() or ok.sum() * 2 < n:
        return None
    ratio = float(np.median(a[ok] / b[ok]))
    return names[0], names[-1], float(np.median(a[ok])), float(np.median(b[ok])), ratio


def _recent_update_ratios(context: Context) -> tuple[str | None, float, dict[str, float]]:
    """Per weight: median update ratio of the recent samples; the largest and where."""
    stats = context.stats
    per_layer = {}
    for name in stats.weight_names():
        series = stats.params[name]
        value = _median(_recent(series.steps, series.update_ratio, context.recent_from))
        if math.isfinite(value):
            per_layer[name] = value
    if not per_layer:
        return None, math.nan, {}
    worst = max(per_layer, key=per_layer.__getitem__)
    return worst, per_layer[worst], per_layer


def _recent_grad_to_weight(context: Context) -> float:
    """The largest recent median ||grad|| / ||w|| of any weight (0 when the gradients are 0)."""
    best = 0.0
    for name in context.stats.weight_names():
        series = context.stats.params[name]
        ratios = [g / w if w > 0 else math.nan
                  for g, w in zip(series.grad_norm, series.weight_norm, strict=True)]
        value = _median(_recent(series.steps, ratios, context.recent_from))
        if math.isfinite(value):
            best = max(best, value)
    return best


def _zero_grad_weights(context: Context) -> list[str]:
    """Weights whose gradient was exactly 0 on every recent sample."""
    names = []
    for name in context.stats.weight_names():
        series = context.stats.params[name]
        recent = _recent(series.steps, series.grad_norm, context.recent_from)
        if recent and all(g == 0.0 for g in recent):
            names.append(name)
    return names


def _dead_fractions(context: Context, warmup: bool = False) -> dict[str, float]:
    """Per ReLU: the fraction of units that fired on none of a batch's rows, median over the
    recent samples (or over the warm-up samples with ``warmup=True``).

    A per-batch fraction has the same distribution at any sampling rate; a union over all the
    examined batches would not (more batches, more rows, fewer units that never fired).
    """
    fractions = {}
    for name, series in context.stats.activations.items():
        if series.kind != "relu":
            continue
        masks = (_warmup(series.steps, series.fired, context.config) if warmup
                 else _recent(series.steps, series.fired, context.recent_from))
        per_batch = [1.0 - float(m.mean()) for m in masks if m is not None and m.size]
        if per_batch:
            fractions[name] = float(np.median(per_batch))
    return fractions


def _last_step(stats: TrainingStats) -> int | None:
    return stats.loss_steps[-1] if stats.loss_steps else None


def _pair(a: float, b: float) -> str:
    """``a -> b`` with the same number of decimals on both sides (4 significant digits of the
    larger), so 2.317 -> 2.310 never reads as 2.317 -> 2.31."""
    big = max(abs(a), abs(b))
    if not math.isfinite(big) or big == 0 or big >= 1e4 or big < 1e-3:
        return f"{a:.4g} -> {b:.4g}"
    decimals = max(0, 3 - math.floor(math.log10(big)))
    return f"{a:.{decimals}f} -> {b:.{decimals}f}"


def _change(start: float, end: float) -> str:
    """How the loss moved, in words that match the numbers."""
    if not start:
        return f"went from {start:.4g} to {end:.4g}"
    change = (end - start) / abs(start)
    if change > 0.005:
        return f"rose {change:.1%} ({_pair(start, end)})"
    if change < -0.005:
        return f"fell only {-change:.1%} ({_pair(start, end)})"
    return f"did not change ({_pair(start, end)})"


#: the ``gradwise`` command's optimizer names (``--optimizer``), by optimizer class name
_CLI_OPTIMIZERS = {"SGD": "sgd", "Adam": "adam", "AdamW": "adamw", "RMSprop": "rmsprop"}


def _lr_find_cli(context: Context) -> str:
    """The lr-find command for the optimizer the run uses (a good rate depends on it)."""
    name = _CLI_OPTIMIZERS.get(context.optimizer or "")
    return f"gradwise lr-find RECIPE --optimizer {name}" if name else "gradwise lr-find"


def _lr_down(context: Context) -> str:
    if context.lr is not None:
        lower = f"{context.lr / 10:.3g}"
        return context.advice(
            f"divide the learning rate by 10 (lr={lower} instead of {context.lr:.3g}); "
            "gw.doctor.lr_find suggests one",
            f"divide the learning rate by 10: --lr {lower} "
            f"({_lr_find_cli(context)} suggests one)",
        )
    return context.advice("divide the learning rate by 10 (gw.doctor.lr_find suggests one)",
                          "divide the learning rate by 10 with --lr "
                          f"({_lr_find_cli(context)} suggests one)")


#: the update/weight ratio lr_too_low steers towards (Karpathy, CS231n: ~1e-3) and the largest
#: factor it suggests at once (a bigger jump risks overshooting into lr_too_high)
TARGET_UPDATE_RATIO = 1e-3
MAX_LR_FACTOR = 1000.0


def _lr_factor(ratio: float) -> float:
    """How much to multiply the lr by to bring the update ratio ``ratio`` towards ~1e-3.

    For SGD the update ratio is proportional to the lr; for Adam-like optimizers it is too while
    the step is lr-bound. The factor is 1e-3 / ratio rounded down to 1, 2, 3 or 5 times a power of
    ten, between 3 and ``MAX_LR_FACTOR`` (nan ratio: 10).
    """
    if not (math.isfinite(ratio) and ratio > 0):
        return 10.0
    raw = min(max(TARGET_UPDATE_RATIO / ratio, 3.0), MAX_LR_FACTOR)
    power = 10.0 ** math.floor(math.log10(raw))
    return max(m * power for m in (1.0, 2.0, 3.0, 5.0) if m * power <= raw * (1 + 1e-9))


def _lr_up(context: Context, ratio: float = math.nan) -> str:
    factor = _lr_factor(ratio)
    why = (f" (steers the update ratio {ratio:.1e} towards the ~1e-3 rule of thumb)"
           if math.isfinite(ratio) and ratio > 0 else "")
    if context.lr is not None:
        higher = f"{context.lr * factor:.3g}"
        return context.advice(
            f"multiply the learning rate by {factor:g}{why}: lr={higher}; gw.doctor.lr_find "
            "suggests one",
            f"multiply the learning rate by {factor:g}{why}: --lr {higher} "
            f"({_lr_find_cli(context)} suggests one)",
        )
    return context.advice(f"multiply the learning rate by {factor:g}{why} (gw.doctor.lr_find "
                          "suggests one)",
                          f"multiply the learning rate by {factor:g}{why} with --lr "
                          f"({_lr_find_cli(context)} suggests one)")


def _is_adam(context: Context) -> bool:
    return context.optimizer is not None and "adam" in context.optimizer.lower()


def _clip(context: Context) -> str:
    return context.advice(
        "clip gradients: Trainer(clip_grad_norm=1.0), or nn.utils.clip_grad_norm_(params, 1.0) "
        "before optimizer.step()",
        "clip gradients: --clip-grad-norm 1.0",
    )


def _schedule(context: Context) -> str:
    return context.advice(
        "use a warm-up or a decaying schedule (optim.lr_scheduler.OneCycleLR, CosineAnnealingLR)",
        "use a decaying schedule: --schedule onecycle (or cosine)",
    )


# ---- the loss-shape facts several rules share ---------------------------------------------------
def _best_level(context: Context) -> float:
    """The lowest loss level of the run: the smallest median of consecutive chunks."""
    losses = context.losses
    chunk = _chunk(losses.size)
    return min(_level(losses[i:i + chunk]) for i in range(0, losses.size - chunk + 1, chunk))


def _died_during_training(context: Context) -> tuple[list[str], list[str]]:
    """(weights with a non-zero gradient in the warm-up and exactly zero on every recent sample,
    ReLUs alive in the warm-up (under half dead) and dead now): the run killed them."""
    died, relus = [], []
    config = context.config
    for name in _zero_grad_weights(context):
        series = context.stats.params[name]
        if any(g > 0 for g in _warmup(series.steps, series.grad_norm, config)):
            died.append(name)
    before = _dead_fractions(context, warmup=True)
    for name, fraction in _dead_fractions(context).items():
        if fraction > config.dead_fraction and before.get(name, 1.0) < config.dead_fraction / 2:
            relus.append(name)
    return died, relus


def _collapse(context: Context) -> dict[str, Any] | None:
    """The loss stuck at the baseline after a spike or after the net killed its own units.

    Signal: the end level within ``chance_tolerance`` of the baseline, and either a spike (the
    largest median of 3 consecutive batch losses in the first half above ``lr_high_spike`` x
    max(baseline, first loss)) or
    weights/ReLUs alive in the warm-up and dead now (:func:`_died_during_training`). A net dead
    from its first step (bad init) did not collapse: dead_relus says that. Returns the evidence
    dict, or None.
    """
    losses, config = context.losses, context.config
    if context.baseline is None or losses.size < config.min_steps:
        return None
    if abs(context.end - context.baseline) > config.chance_tolerance * context.baseline:
        return None
    first_half = losses[: max(1, losses.size // 2)]
    # a spike lasts: the median of 3 consecutive batch losses (one noisy batch is not a spike)
    rolling = np.array([np.median(first_half[i:i + 3])
                        for i in range(max(1, first_half.size - 2))])
    peak_index = int(np.argmax(rolling))
    peak = float(rolling[peak_index])
    spiked = peak > config.lr_high_spike * max(context.baseline, float(losses[0]))
    died, relus = _died_during_training(context)
    if not spiked and not died and not relus:
        return None
    evidence: dict[str, Any] = {"chance_loss": context.baseline, "loss_last_tenth": context.end,
                                "loss_peak": peak,
                                "loss_peak_step": context.stats.loss_steps[peak_index]}
    if died:
        evidence["weights_died"] = ", ".join(died)
    if relus:
        evidence["relus_died"] = ", ".join(relus)
    return evidence


def _fitted_fall(losses: np.ndarray) -> float:
    """How far a least-squares line through ``losses`` falls over their span; 0 when the fall is
    within two standard errors of none (batch noise), so noise cannot pass for learning."""
    n = losses.size
    if n < 3:
        return 0.0
    t = np.arange(n, dtype=np.float64)
    t -= t.mean()
    slope = float(np.dot(t, losses - losses.mean()) / np.dot(t, t))
    residual = losses - losses.mean() - slope * t
    stderr = math.sqrt(float(np.dot(residual, residual)) / (n - 2) / float(np.dot(t, t)))
    if slope >= -2.0 * stderr:
        return 0.0
    return -slope * (n - 1)


def _diverged(context: Context) -> bool:
    """The loss level at the end is ``lr_high_loss_rise`` times the lowest level of the run, and
    the climb is real: either the end is above the baseline, or the climb back is more than
    ``divergence_min_rise`` of the reference loss (a run that learned, then lost what it learned;
    a converged run's noise around 0.01 is not a climb)."""
    config = context.config
    if context.losses.size < config.min_steps or not context.start > 0:
        return False
    best = _best_level(context)
    if not context.end > config.lr_high_loss_rise * best:
        return False
    if context.baseline is None or context.end > 1.1 * context.baseline:
        return True
    return context.end - best > config.divergence_min_rise * context.reference


def _grad_growth(context: Context) -> tuple[float, float, float]:
    """(warm-up median, recent median, their ratio) of the total gradient norm (nan if unknown).

    Gradients that are never zeroed add up: their norm grows step over step, roughly with the
    number of steps, while a healthy run's gradient norm shrinks or stays.
    """
    steps, totals = _total_grad_norms(context.stats)
    if not steps:
        return math.nan, math.nan, math.nan
    warm = _median(_warmup(steps, list(totals), context.config))
    recent = _median(_recent(steps, list(totals), context.recent_from))
    ratio = recent / warm if warm > 0 else math.nan
    return warm, recent, ratio


# ---- the diagnoses -----------------------------------------------------------------------------
def non_finite_values(context: Context) -> list[Finding]:
    """NaN or Inf in the training loss (every step) or a gradient (sampled steps).

    Signal: ``stats.non_finite``. Threshold: any. Evidence: ``step``, ``where``,
    ``last_finite_loss``. Source: a NaN propagates through every later op (IEEE 754).
    """
    stats = context.stats
    if stats.non_finite is None:
        return []
    step, what = stats.non_finite
    evidence: dict[str, Any] = {"step": step, "where": what}
    if context.losses.size:
        evidence["last_finite_loss"] = float(context.losses[-1])
    return [Finding(
        "non_finite_values", "error",
        f"NaN/Inf appeared in the {what} at step {step}; from then on training learns nothing",
        evidence,
        [
            _lr_down(context),
            _clip(context),
            context.advice("find the op that made it: run the step under "
                           "`with gw.detect_anomaly(check_forward=True):`",
                           "find the op that made it: --detect-anomaly"),
            "check the data for NaN/Inf and scale inputs to about unit range",
            "use fused, stable losses (F.cross_entropy on logits, "
            "F.binary_cross_entropy_with_logits) instead of log(softmax(x))",
        ],
        step=step,
    )]


def exploding_gradients(context: Context) -> list[Finding]:
    """Gradients far too large: by size, by growth over the run, or by depth.

    Signals and thresholds: the largest total gradient norm of the warm-up samples, or the
    median of the recent ones, above ``exploding_grad_norm``; the first weight's median gradient
    ``exploding_ratio`` times the last's. Evidence: ``max_grad_norm``, ``max_grad_norm_step``,
    ``recent_grad_norm``, ``ratio``, ``first_layer``, ``last_layer``. Source: Pascanu, Mikolov
    and Bengio, "On the difficulty of training recurrent neural networks" (2013).
    """
    stats, config = context.stats, context.config
    steps, totals = _total_grad_norms(stats)
    if not steps:
        return []
    reasons = []
    evidence: dict[str, Any] = {}
    step = None
    warm = [(s, t) for s, t in zip(steps, totals, strict=True)
            if s < config.warmup_steps and math.isfinite(t)]
    if warm:
        peak_step, peak = max(warm, key=lambda pair: pair[1])
        evidence.update(max_grad_norm=float(peak), max_grad_norm_step=peak_step)
        if peak > config.exploding_grad_norm:
            reasons.append(f"the total gradient norm reached {peak:.3g} at step {peak_step}")
            step = peak_step
    recent = _median(_recent(steps, list(totals), context.recent_from))
    if math.isfinite(recent):
        evidence["recent_grad_norm"] = recent
        if recent > config.exploding_grad_norm and step is None:
            reasons.append(f"the total gradient norm is {recent:.3g} in the second half")
            step = steps[-1]
    if stats.non_finite is not None and stats.non_finite[1].startswith("gradient"):
        evidence["non_finite_grad_step"] = stats.non_finite[0]
        reasons.append(f"gradients became NaN/Inf at step {stats.non_finite[0]}")
        step = stats.non_finite[0] if step is None else step
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
            _clip(context),
            _lr_down(context),
            _python_only(context, "use a variance-preserving init (nn.init.kaiming_normal_ for "
                         "ReLU, xavier for tanh) instead of large random weights"),
            _python_only(context, "add normalisation (BatchNorm1d/LayerNorm) between layers"),
        ],
        step=step, layer=layer,
    )]


def lr_too_high(context: Context) -> list[Finding]:
    """The learning rate is too high: the loss diverged, collapsed or oscillates, or each step
    replaces a large part of the weights.

    Signals and thresholds (any of):

    - divergence: end level > ``lr_high_loss_rise`` x start level, above the baseline;
    - collapse: a spike above ``lr_high_spike`` x max(baseline, first loss), then the loss stuck
      within ``chance_tolerance`` of the baseline (with the zero-gradient weights and dead ReLUs
      as evidence);
    - a non-finite loss;
    - the recent median update ratio of some weight above ``lr_high_update_ratio``, or a warm-up
      step above ``lr_high_peak_update_ratio``;
    - oscillation: the second half's mean step-to-step change above ``lr_high_oscillation`` of
      its level, not falling, above ``plateau_level`` x the reference loss.

    Evidence: ``loss_first_tenth``, ``loss_last_tenth``, ``loss_peak``, ``chance_loss``,
    ``update_ratio``,
    ``update_ratio_layer``, ``zero_grad_weights``, ``dead_fraction``, ``lr``. Source: the
    update/weight rule of thumb of ~1e-3 (Karpathy, CS231n "Babysitting the learning process");
    the collapse picture is Goodfellow, Bengio and Courville, Deep Learning (2016), 8.2.
    """
    config, stats = context.config, context.stats
    reasons = []
    evidence: dict[str, Any] = {}
    severity = "warning"
    if context.losses.size:
        evidence.update(loss_first_tenth=context.start, loss_last_tenth=context.end)
    collapse = _collapse(context)
    if collapse is not None and context.baseline is not None and not _diverged(context):
        evidence.update(collapse)
        zero = _zero_grad_weights(context)
        dead = _dead_fractions(context)
        if collapse["loss_peak"] > config.lr_high_spike * context.baseline:
            reason = (f"the loss spiked to {collapse['loss_peak']:.4g} (step "
                      f"{collapse['loss_peak_step']}) and then stuck at {context.end:.4g}")
        else:
            reason = f"the loss fell back to {context.end:.4g} and stuck there"
        reason += (f", the loss of guessing the class priors ({context.baseline:.4g}): the net "
                   "collapsed")
        if zero:
            evidence["zero_grad_weights"] = len(zero)
            reason += f"; {len(zero)} of {len(stats.weight_names())} weights get exactly zero " \
                      "gradient"
        if dead:
            worst_dead = max(dead, key=dead.__getitem__)
            evidence.update(dead_fraction=dead[worst_dead], dead_layer=worst_dead)
            reason += f" and {dead[worst_dead]:.0%} of the units of {worst_dead} are dead"
        reasons.append(reason)
        severity = "error"
    if stats.non_finite is not None and stats.non_finite[1] == "training loss":
        reasons.append(f"the loss became NaN/Inf at step {stats.non_finite[0]}")
        severity = "error"
    worst, ratio, per_layer = _recent_update_ratios(context)
    if worst is not None and ratio > config.lr_high_update_ratio:
        reasons.append(f"each step changes {worst} by {ratio:.0%} of its size")
        evidence.update(update_ratio=ratio, update_ratio_layer=worst)
    else:
        peaks = []
        for name in stats.weight_names():
            series = stats.params[name]
            pairs = [(r, s) for s, r in zip(series.steps, series.update_ratio, strict=False)
                     if s < config.warmup_steps and math.isfinite(r)]
            if pairs:
                ratio_max, at = max(pairs)
                peaks.append((float(ratio_max), name, at))
        if peaks and max(peaks)[0] > config.lr_high_peak_update_ratio:
            peak, worst, at = max(peaks)
            reasons.append(f"warm-up step {at} changed {worst} by {peak:.3g}x its size")
            evidence.update(peak_update_ratio=peak, peak_update_ratio_layer=worst,
                            peak_update_ratio_step=at)
    if not reasons and context.losses.size >= config.min_steps and collapse is None \
            and not _diverged(context):
        tail = context.losses[context.losses.size // 2:]
        chunk = _chunk(tail.size)
        tail_level, tail_start = _level(tail[-chunk:]), _level(tail[:chunk])
        swing = float(np.mean(np.abs(np.diff(tail)))) if tail.size > 2 else 0.0
        if (swing > config.lr_high_oscillation * tail_level
                and tail_level > config.plateau_level * context.reference
                and tail_level >= tail_start):
            evidence.update(mean_step_change=swing, loss_level=tail_level)
            reasons.append(f"the loss swings by {swing:.3g} per step around {tail_level:.3g} "
                           "without coming down")
    if not reasons:
        return []
    if context.lr is not None:
        evidence["lr"] = context.lr
    return [Finding(
        "lr_too_high", severity,
        "learning rate too high: " + "; ".join(reasons),
        evidence,
        [_lr_down(context), _schedule(context), _clip(context)],
        # the step the evidence points at: the warm-up step when that step is the only reason
        step=(evidence["peak_update_ratio_step"] if len(reasons) == 1
              and "peak_update_ratio_step" in evidence else _last_step(stats)),
        layer=worst,
    )]


def divergence(context: Context) -> list[Finding]:
    """The training loss climbed back far above the lowest level it reached.

    Signal: the end level (median of the last tenth of the run) above ``lr_high_loss_rise`` x
    the lowest level (the smallest median of a tenth), and either above 1.1 x the baseline or
    more than ``divergence_min_rise`` x the reference above the lowest level. The total gradient
    norm's growth (recent median / warm-up median) above ``grad_growth`` points at gradients
    that add up because they are never zeroed, and puts ``optimizer.zero_grad()`` first among the
    tries; otherwise a too-large learning rate comes first. Evidence: ``loss_first_tenth``,
    ``loss_lowest``, ``loss_last_tenth``, ``baseline_loss``, ``grad_norm_warmup``,
    ``grad_norm_recent``,
    ``grad_growth``, ``lr``. Source: a loss that rises under gradient descent means steps
    overshoot (Goodfellow, Bengio and Courville, Deep Learning (2016), 4.3 and 8.2) or follow a
    stale gradient; PyTorch's docs on ``Optimizer.zero_grad`` (gradients accumulate in .grad).
    """
    if not _diverged(context):
        return []
    best = _best_level(context)
    warm, recent, growth = _grad_growth(context)
    evidence: dict[str, Any] = {"loss_first_tenth": context.start, "loss_lowest": best,
                                "loss_last_tenth": context.end}
    if context.baseline is not None:
        evidence["baseline_loss"] = context.baseline
    if math.isfinite(growth):
        evidence.update(grad_norm_warmup=warm, grad_norm_recent=recent, grad_growth=growth)
    if context.lr is not None:
        evidence["lr"] = context.lr
    summary = (f"divergence: the training loss climbed from its lowest level {best:.4g} back to "
               f"{context.end:.4g}")
    zero_grad = ("did you forget optimizer.zero_grad()? gradients add up in .grad until "
                 "zeroed, so each step follows the sum of all the gradients so far: call "
                 "optimizer.zero_grad() before loss.backward() in every step")
    growing = math.isfinite(growth) and growth > context.config.grad_growth
    if growing:
        summary += (f", while the gradient norm grew {growth:.3g}x (from {warm:.3g} in the "
                    f"warm-up to {recent:.3g})")
    summary += ": training is going backwards"
    remedies = [_lr_down(context), _clip(context), _schedule(context)]
    if growing and context.config.advice_style != "cli":
        remedies.insert(0, zero_grad)
    elif context.config.advice_style != "cli":
        remedies.append(zero_grad)
    return [Finding("divergence", "error", summary, evidence, remedies,
                    step=_last_step(context.stats))]


def _fan_in_std(shape: tuple[int, ...]) -> float:
    """1/sqrt(fan_in): the weight std of LeCun's init; PyTorch's (and gradwise's) default Linear
    and Conv init has 1/sqrt(3 fan_in), He's sqrt(2/fan_in)."""
    fan_in = int(np.prod(shape[1:])) if len(shape) >= 2 else 0
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else math.nan


def _weight_stds(context: Context) -> dict[str, tuple[float, float]]:
    """Per weight matrix: (std estimate ||w|| / sqrt(numel) at the first sample, 1/sqrt(fan_in))."""
    out = {}
    for name in context.stats.weight_names():
        series = context.stats.params[name]
        shape = tuple(series.shape)
        norms = [w for w in series.weight_norm if math.isfinite(w)]
        numel = int(np.prod(shape)) if shape else 0
        if not norms or numel == 0:
            continue
        out[name] = (norms[0] / math.sqrt(numel), _fan_in_std(shape))
    return out


def worse_than_guessing(context: Context) -> list[Finding]:
    """The loss stays far above what a model ignoring its input scores: worse than guessing.

    Signal: the end level and the lowest level of the run both above ``worse_than_baseline`` x
    the baseline (class priors or target mean), and no NaN. Evidence: ``loss_first_tenth``,
    ``loss_last_tenth``, ``baseline_loss``, ``ratio`` (end / baseline), and per weight
    ``weight_std``
    (||w|| / sqrt(numel), at the first sample) against ``fan_in_std`` (1/sqrt(fan_in)); a
    weight above ``init_scale_ratio`` x its fan-in std names a bad initialisation scale.
    Source: Karpathy, "A Recipe for Training Neural Networks" (2019), "verify loss @ init"
    (a fresh classifier should score about ln C); LeCun et al., "Efficient BackProp" (1998), 4.6
    and He et al. (2015) for the init scale.
    """
    config = context.config
    if context.baseline is None or not context.baseline > 0 \
            or context.losses.size < config.min_steps or context.stats.non_finite is not None:
        return []
    limit = config.worse_than_baseline * context.baseline
    if not (context.end > limit and _best_level(context) > limit):
        return []
    ratio = context.end / context.baseline
    evidence: dict[str, Any] = {"loss_first_tenth": context.start, "loss_last_tenth": context.end,
                                "baseline_loss": context.baseline, "ratio": ratio}
    stds = _weight_stds(context)
    scaled = {name: std / expected for name, (std, expected) in stds.items()
              if math.isfinite(expected) and expected > 0}
    summary = (f"worse than guessing: the training loss is {context.end:.4g} at the end, "
               f"{ratio:.3g}x the loss of predicting the "
               + ("target mean" if context.stats.targets is not None
                  and context.stats.targets.kind == "regression" else "class priors")
               + f" ({context.baseline:.4g})")
    init = context.advice(
        "re-initialise with the layers' default init (layer.reset_parameters()) or "
        "nn.init.kaiming_normal_ (ReLU) / nn.init.xavier_uniform_ (tanh): weight std near "
        "1/sqrt(fan_in)",
        "this needs Python code: re-initialise with the layers' default init "
        "(layer.reset_parameters()), weight std near 1/sqrt(fan_in)")
    remedies = []
    if scaled:
        worst = max(scaled, key=scaled.__getitem__)
        std, expected = stds[worst]
        evidence.update(weight_std=std, fan_in_std=expected, init_scale_layer=worst,
                        init_scale_ratio=scaled[worst])
        if scaled[worst] > config.init_scale_ratio:
            summary += (f"; {worst} started with weight std {std:.3g}, {scaled[worst]:.3g}x "
                        f"1/sqrt(fan_in) = {expected:.3g}: a bad initialisation scale")
            remedies.append(init)
    remedies += [
        "check the loss is fed logits (not probabilities) and targets of the right kind and "
        "scale (class indices for cross-entropy)",
        "check the output scale: the last layer's logits should start near 0",
    ]
    if init not in remedies:
        remedies.append(init)
    return [Finding("worse_than_guessing", "error", summary, evidence, remedies,
                    step=_last_step(context.stats))]


def zero_init(context: Context) -> list[Finding]:
    """Weight matrices that are all zeros and stay so: nothing flows through them.

    Signal: a weight (2-D or more) whose norm is exactly 0 on the first sample and whose
    gradient is exactly 0 on every recent sample. With zero weights every hidden unit computes
    the same thing (0), so each gets the same gradient (0 through a zero weight after it): the
    symmetry is never broken. Evidence: ``zero_weights``, ``count``. Source: Goodfellow, Bengio
    and Courville, Deep Learning (2016), 8.4 ("break symmetry between different units").
    """
    stats = context.stats
    zero = []
    for name in stats.weight_names():
        series = stats.params[name]
        if len(series.shape) < 2:
            continue
        norms = [w for w in series.weight_norm if math.isfinite(w)]
        recent = _recent(series.steps, series.grad_norm, context.recent_from)
        if norms and norms[0] == 0.0 and recent and all(g == 0.0 for g in recent):
            zero.append(name)
    if not zero:
        return []
    return [Finding(
        "zero_init", "error",
        f"all-zero weights: {', '.join(zero)} started at exactly 0 and get no gradient, so every "
        "unit of the layer computes the same thing and none can learn (the symmetry is never "
        "broken)",
        {"zero_weights": zero, "count": len(zero)},
        [context.advice(
            "initialise weights randomly: the layers' default init (layer.reset_parameters()) "
            "or nn.init.kaiming_normal_; only biases may start at 0",
            "this needs Python code: initialise weights randomly (layer.reset_parameters() or "
            "nn.init.kaiming_normal_); only biases may start at 0")],
        layer=zero[0],
    )]


def _python_only(context: Context, advice: str) -> str:
    """Advice the ``gradwise`` command has no flag for: said so, with the Python to write."""
    if context.config.advice_style == "cli":
        return f"(needs Python code, no flag) {advice}"
    return advice


def _dead_remedies(context: Context, died_in_training: bool) -> list[str]:
    """What to try for dead ReLUs, the likely cause first: units alive in the warm-up and dead
    now were killed by large steps (the lr); units dead from the start, by the init or biases."""
    init = _python_only(context, "check the biases and init of the layer before it (negative "
                        "biases or a large negative shift kill units); nn.init.kaiming_normal_ "
                        "and zero biases are a safe start")
    lower = ("lower the learning rate: one large step can push units into the dead zone"
             if context.config.advice_style != "cli" or context.lr is None else _lr_down(context))
    rest = [_python_only(context, "use LeakyReLU or GELU, which pass gradient for negative "
                         "inputs"),
            _python_only(context, "normalise inputs (and activations, with BatchNorm1d)")]
    return [lower, init, *rest] if died_in_training else [init, lower, *rest]


def vanishing_gradients(context: Context) -> list[Finding]:
    """The first layers get almost no gradient.

    Signal: the median over samples of ||grad(first weight)|| / ||grad(last weight)||, over
    samples where both are non-zero. Threshold: ``vanishing_ratio``. Evidence: ``ratio``,
    ``first_layer``, ``last_layer``, their norms, ``grad_norm_per_layer``. Source: Hochreiter
    (1991); Glorot and Bengio, "Understanding the difficulty of training deep feedforward neural
    networks" (2010).
    """
    stats = context.stats
    depth = _depth_ratio(stats)
    if depth is None or depth[4] >= context.config.vanishing_ratio:
        return []
    first_name, last_name, first_norm, last_norm, ratio = depth
    per_layer = {name: _median(stats.params[name].grad_norm) for name in stats.weight_names()}
    activations = sorted({s.kind for s in stats.activations.values()})
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


def dead_relus(context: Context) -> list[Finding]:
    """ReLU units that no longer fire, so they pass no gradient.

    Signal: per ReLU (module or functional), the fraction of units (features or channels) that
    were positive for none of the rows of a batch, median over the recent samples (the second
    half of the run). Threshold: ``dead_fraction``. Evidence: ``layer``, ``dead_fraction``,
    ``batches``. Source: Lu et
    al., "Dying ReLU and Initialization" (2019); Karpathy, CS231n notes.
    """
    findings = []
    before = _dead_fractions(context, warmup=True)
    for name, fraction in _dead_fractions(context).items():
        if fraction <= context.config.dead_fraction:
            continue
        series = context.stats.activations[name]
        batches = len(_recent(series.steps, series.fired, context.recent_from))
        where = f" ({series.module_type})" if series.module_type else ""
        findings.append(Finding(
            "dead_relus", "warning",
            f"dead ReLUs: {fraction:.0%} of the units of {name}{where} fire on none of the rows "
            f"of a batch (median of the {batches} recent batches examined), so they pass no "
            "gradient and have stopped learning",
            {"layer": name, "dead_fraction": fraction, "batches": batches},
            _dead_remedies(context, before.get(name, 1.0) < context.config.dead_fraction / 2),
            step=series.steps[-1], layer=name,
        ))
    return findings


def saturated_activations(context: Context) -> list[Finding]:
    """Sigmoid or tanh outputs pinned at their limits, where the derivative is ~0.

    Signal: the recent median fraction of outputs beyond ``saturation_level`` (sigmoid: < 0.01
    or > 0.99; tanh: |a| > 0.99). Threshold: ``saturated_fraction``. Evidence: ``layer``,
    ``kind``, ``saturated_fraction``, ``mean``, ``std``. Source: LeCun et al., "Efficient
    BackProp" (1998), 4.4.
    """
    findings = []
    for name, series in context.stats.activations.items():
        if series.kind not in ("sigmoid", "tanh") or not series.saturated_fraction:
            continue
        fraction = _median(_recent(series.steps, series.saturated_fraction,
                                   context.recent_from))
        if not fraction > context.config.saturated_fraction:
            continue
        bound = "0 or 1" if series.kind == "sigmoid" else "-1 or 1"
        where = f" ({series.module_type})" if series.module_type else ""
        findings.append(Finding(
            "saturated_activations", "warning",
            f"saturated activations: {fraction:.0%} of the outputs of {name}{where} are pinned "
            f"near {bound}, where the derivative is almost 0",
            {"layer": name, "kind": series.kind, "saturated_fraction": fraction,
             "level": context.config.saturation_level,
             "mean": _median(_recent(series.steps, series.mean, context.recent_from)),
             "std": _median(_recent(series.steps, series.std, context.recent_from))},
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


def lr_too_low(context: Context) -> list[Finding]:
    """The weights barely move although there is gradient to follow, and the loss hardly falls.

    Signals and thresholds (either):

    - the recent median update ratio of the most moved weight below ``lr_low_update_ratio``
      and the loss level fell by less than ``flat_loss_fraction``;
    - learning slowly: that ratio below ``lr_slow_update_ratio`` (ten times under the rule of
      thumb) and the loss level at the end still above ``plateau_level`` x the baseline (after
      the whole run, hardly better than predicting the class priors / target mean).

    Both need the recent ||grad|| / ||w|| above ``lr_low_min_gradient`` (zero gradients are
    dead units, not a small lr). The suggested factor (``lr_factor``) is 1e-3 / ratio, rounded
    down and capped (:func:`_lr_factor`). Evidence: ``max_update_ratio``, ``layer``,
    ``loss_first_tenth``, ``loss_last_tenth`` (medians of the first and last tenth of the
    steps), ``relative_change``, ``baseline_loss``, ``lr_factor``, ``lr``. Source: the ~1e-3
    update/weight rule of thumb (Karpathy, CS231n): 1e-5 is a hundred times below it.
    """
    config = context.config
    worst, ratio, per_layer = _recent_update_ratios(context)
    if worst is None or context.losses.size < config.min_steps \
            or not ratio < config.lr_slow_update_ratio:
        return []
    if _recent_grad_to_weight(context) < config.lr_low_min_gradient:
        return []  # nothing to follow: a larger lr would not move the weights either
    start, end = context.start, context.end
    change = (end - start) / abs(start) if start else 0.0
    flat = ratio < config.lr_low_update_ratio and -change < config.flat_loss_fraction
    slow = context.baseline is not None and end > config.plateau_level * context.baseline
    if not (flat or slow):
        return []
    evidence = {"max_update_ratio": ratio, "layer": worst, "loss_first_tenth": start,
                "loss_last_tenth": end, "relative_change": change,
                "lr_factor": _lr_factor(ratio)}
    if context.baseline is not None:
        evidence["baseline_loss"] = context.baseline
    if context.lr is not None:
        evidence["lr"] = context.lr
    remedies = [_lr_up(context, ratio)]
    if not _is_adam(context):
        remedies.append(context.advice("Adam with lr 1e-3 is a robust default",
                                       "--optimizer adam --lr 1e-3 is a robust default"))
    return [Finding(
        "lr_too_low", "warning",
        f"learning rate too low: the weights move by at most {ratio:.1e} of their size per step "
        f"(the rule of thumb is ~1e-3) and the loss {_change(start, end)}"
        + ("" if flat else f", still near the baseline {context.baseline:.4g}: learning slowly"),
        evidence,
        remedies,
        step=_last_step(context.stats),
    )]


def overfitting(context: Context) -> list[Finding]:
    """The validation loss turned up for good while the training loss kept falling.

    Signals and thresholds: at least ``overfit_epochs`` epochs after the best validation epoch;
    the median of the last ``overfit_epochs`` validation losses and the last one more than
    ``overfit_val_rise`` above the best; the training loss lower than at the best epoch; the
    validation-training gap wider by ``overfit_gap_growth`` x best validation loss. One noisy
    epoch does not move a median of three. Evidence: ``best_epoch``, ``best_val_loss``,
    ``last_val_loss``, ``train_loss_at_best``, ``last_train_loss``, ``gap_at_best``, ``gap``.
    Source: Prechelt, "Early Stopping - But When?" (1998).
    """
    config = context.config
    epochs = [e for e in context.stats.epochs if "val_loss" in e and "loss" in e
              and math.isfinite(e["val_loss"]) and math.isfinite(e["loss"])]
    if len(epochs) < config.overfit_epochs + 1:
        return []
    best = min(range(len(epochs)), key=lambda i: epochs[i]["val_loss"])
    after = epochs[best + 1:]
    if len(after) < config.overfit_epochs:
        return []
    best_val, last = epochs[best]["val_loss"], epochs[-1]
    if best_val <= 0:
        return []
    recent = float(np.median([e["val_loss"] for e in epochs[-config.overfit_epochs:]]))
    rise = (recent - best_val) / best_val
    if rise <= config.overfit_val_rise \
            or last["val_loss"] <= best_val * (1 + config.overfit_val_rise):
        return []
    if last["loss"] >= epochs[best]["loss"]:
        return []  # both rising: that is divergence, not overfitting
    gap_best = best_val - epochs[best]["loss"]
    gap = last["val_loss"] - last["loss"]
    if gap - gap_best <= config.overfit_gap_growth * best_val:
        return []
    if context.losses.size and best_val >= float(context.losses[0]):
        return []  # even at its best it did worse than untrained: a diverged run recovering
    best_epoch = epochs[best]["epoch"]
    return [Finding(
        "overfitting", "warning",
        f"overfitting: validation loss rose {rise:.0%} over the {len(after)} epochs since epoch "
        f"{best_epoch} ({best_val:.4g} -> {last['val_loss']:.4g}) while training loss kept "
        f"falling ({epochs[best]['loss']:.4g} -> {last['loss']:.4g})",
        {"best_epoch": best_epoch, "best_val_loss": best_val,
         "last_val_loss": last["val_loss"], "train_loss_at_best": epochs[best]["loss"],
         "last_train_loss": last["loss"], "gap_at_best": gap_best, "gap": gap},
        [
            context.advice(f"stop earlier: keep the weights of epoch {best_epoch} "
                           "(EarlyStopping(restore_best_weights=True))",
                           f"stop earlier: --epochs {best_epoch}"),
            context.advice("regularise: weight decay (optimizer weight_decay=1e-4), "
                           "nn.Dropout, data augmentation",
                           "regularise: --weight-decay 1e-4, --dropout 0.2"),
            "use a smaller model or more training data",
        ],
        step=_last_step(context.stats),
    )]


def plateau(context: Context) -> list[Finding]:
    """Not learning: the loss stays at what a model ignoring its input would score.

    Signals and thresholds: the end level above ``plateau_level`` x the reference loss (the
    baseline: class priors or target mean; the starting level without targets) and the second
    half of the run improving it by less than ``plateau_improvement`` of the reference, and the
    end level not below the reference by more than its noise (2 standard errors of the last
    tenth's batch losses): a loss below the baseline beyond noise is learning, if slowly. A
    collapse is ``lr_too_high``, a climb ``divergence``, unmoving weights ``lr_too_low``; those
    come first. Evidence: ``since_step``, ``loss_first_tenth`` and ``loss_last_tenth`` (medians
    of the first and last tenth of the steps), ``baseline_loss``, ``relative_improvement``
    ((first - last) / first), ``second_half_fall`` (the fitted fall of the second half over the
    reference), ``end_noise``. Source: the "predict the prior" baseline, Karpathy, "A Recipe
    for Training Neural Networks" (2019): "verify loss @ init".
    """
    config, losses = context.config, context.losses
    if losses.size < config.min_steps or context.stats.non_finite is not None:
        return []
    reference = context.reference
    if not reference > 0 or context.end < config.plateau_level * reference:
        return []
    chunk = losses[-_chunk(losses.size):]
    # the end level's noise: 2 standard errors of the mean of the last tenth's batch losses
    noise = 2.0 * float(np.std(chunk)) / math.sqrt(chunk.size) if chunk.size > 1 else 0.0
    if context.end < reference - noise:
        return []  # below the baseline beyond noise: it learned something (slowly, maybe)
    half = losses.size // 2
    fall = _fitted_fall(losses[half:]) / reference
    if fall >= config.plateau_improvement:
        return []
    if _diverged(context) or _collapse(context) is not None:
        return []  # lr_too_high says that
    _, ratio, _ = _recent_update_ratios(context)
    if math.isfinite(ratio) and (ratio < config.lr_low_update_ratio or (
            ratio < config.lr_slow_update_ratio
            and _recent_grad_to_weight(context) >= config.lr_low_min_gradient)):
        return []  # the weights are hardly moving: lr_too_low says that better
    since = context.stats.loss_steps[half]
    against = ("the loss of predicting the class priors" if context.stats.targets is not None
               and context.stats.targets.kind != "regression" else
               "the loss of predicting the target mean" if context.baseline is not None else
               "its starting level")
    evidence = {"since_step": since, "loss_first_tenth": context.start,
                "loss_last_tenth": context.end,
                "relative_improvement": (context.start - context.end) / context.start
                if context.start else 0.0,
                "second_half_fall": fall, "end_noise": noise}
    if context.baseline is not None:
        evidence["baseline_loss"] = context.baseline
    return [Finding(
        "plateau", "warning",
        f"plateau: the training loss has stayed near {context.end:.4g} since step {since}, no "
        f"better than {against} ({reference:.4g}): the model is not learning",
        evidence,
        [
            "check that the labels match the inputs and that the task is learnable "
            "(overfit one small batch first)",
            _lr_up(context, _recent_update_ratios(context)[1]),
            context.advice("use a larger model" + ("" if _is_adam(context)
                                                   else ", or Adam instead of SGD"),
                           "use a larger model" + ("" if _is_adam(context)
                                                   else ", or --optimizer adam")),
        ],
        step=since,
    )]


#: findings that all-zero weights cause by themselves (reported as zero_init alone)
EXPLAINED_BY_ZERO_INIT = frozenset({"dead_relus", "plateau", "lr_too_low", "vanishing_gradients"})

#: every diagnosis, most serious first (the order findings are listed in)
DIAGNOSES: tuple[Callable[[Context], list[Finding]], ...] = (
    non_finite_values,
    exploding_gradients,
    divergence,
    lr_too_high,
    worse_than_guessing,
    zero_init,
    vanishing_gradients,
    dead_relus,
    saturated_activations,
    lr_too_low,
    overfitting,
    plateau,
)


def diagnose(stats: TrainingStats, config: DoctorConfig | None = None, *,
             lr: float | None = None, optimizer: str | None = None) -> list[Finding]:
    """Run every diagnosis over ``stats``; findings ordered by severity, then by DIAGNOSES.

    Args:
        stats: what the doctor recorded.
        config: thresholds and advice style (``DoctorConfig()`` when None).
        lr: the optimizer's current learning rate, for the evidence and the advice.
        optimizer: the optimizer's class name.
    """
    config = config or DoctorConfig()
    lr = lr if lr is not None else _epoch_lr(stats)
    context = Context.build(stats, config, lr, optimizer)
    findings = [finding for check in DIAGNOSES for finding in check(context)]
    names = {finding.name for finding in findings}
    if "zero_init" in names:
        # dead units, a flat loss and unmoving weights are what zero weights do: one cause
        findings = [f for f in findings if f.name not in EXPLAINED_BY_ZERO_INIT]
    rank = {severity: i for i, severity in enumerate(reversed(SEVERITIES))}
    return sorted(findings, key=lambda f: rank[f.severity])


def _epoch_lr(stats: TrainingStats) -> float | None:
    for record in reversed(stats.epochs):
        if isinstance(record.get("lr"), float):
            return record["lr"]
    return None
