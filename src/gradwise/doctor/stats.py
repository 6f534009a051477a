"""Per-layer statistics the doctor collects on sampled steps, as plain time series.

Every statistic is a property of one step alone (the gradient norm, the update of that step, the
units that fired on that batch, the class counts of that batch's targets): nothing carries over
from one sampled step to the next. So the statistics a doctor sampling every k-th step collects
are exactly those of a doctor sampling every step, with the other steps left out
(:func:`subsample`), and the diagnoses can be checked at every sampling rate from one recording.

On a sampled step the collector installs an observer (:mod:`gradwise.autograd.observe`) for the
forward pass: every activation op (``nn.ReLU`` or ``F.relu`` or ``x.tanh()`` in a custom
``forward``) reports its output, and every fused loss op (cross-entropy, BCE) its targets. After
backward it reads each gradient's norm; it copies the weights before the optimizer step and
measures how far they moved after it. Unsampled steps cost a few attribute look-ups.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradwise.autograd import observe
from gradwise.autograd.grad_mode import is_grad_enabled
from gradwise.nn.parallel import DistributedDataParallel

__all__ = [
    "ACTIVATION_KINDS",
    "ActivationSeries",
    "ParamSeries",
    "StatsCollector",
    "TargetSeries",
    "TrainingStats",
    "subsample",
]

#: observed op kinds that are activations (the rest, e.g. "cross_entropy", are losses)
ACTIVATION_KINDS = ("relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softplus", "softmax")
_LOSS_KINDS = {"cross_entropy": "classes", "nll_loss": "classes", "bce_with_logits": "binary",
               "bce": "binary", "mse": "regression"}
# activation modules: an op called directly by one of these is labelled with the module's name
_ACTIVATION_MODULES = {"ReLU", "LeakyReLU", "ELU", "GELU", "Sigmoid", "Tanh", "Softplus",
                       "Softmax"}


@dataclass
class ParamSeries:
    """One parameter's statistics over the sampled steps (one entry per sampled step)."""

    steps: list[int] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    weight_norm: list[float] = field(default_factory=list)
    update_ratio: list[float] = field(default_factory=list)
    shape: tuple[int, ...] = ()


@dataclass
class ActivationSeries:
    """One activation's output statistics over the sampled steps.

    ``fired[i]`` is a bool array with one entry per unit (feature of an ``(N, F)`` output,
    channel of an ``(N, C, H, W)`` one): True where the unit was positive for at least one row of
    that step's batch (ReLU only; None for other kinds). ``rows[i]`` is that batch's row count.
    """

    kind: str
    module_type: str = ""
    steps: list[int] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    saturated_fraction: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    fired: list[np.ndarray | None] = field(default_factory=list)
    histogram: np.ndarray | None = None


@dataclass
class TargetSeries:
    """The targets the loss saw on the sampled steps, enough to compute the baseline loss.

    ``kind``: ``"classes"`` (per step: counts of each class, length C), ``"binary"`` (per step:
    [rows, sum of targets per output column...]) or ``"regression"`` (per step: [rows, sum per
    column..., sum of squares per column...]).
    """

    kind: str
    steps: list[int] = field(default_factory=list)
    values: list[list[float]] = field(default_factory=list)


@dataclass
class TrainingStats:
    """Everything the doctor measured, ready for diagnoses and plots.

    Attributes:
        loss_steps, losses: every training step's loss (never sampled: it costs nothing).
        sampled_steps: the steps whose layers were examined.
        params: parameter name -> ParamSeries (sampled steps).
        activations: activation label -> ActivationSeries (sampled steps).
        targets: what the loss was fitting (sampled steps), or None when no loss op reported.
        epochs: one dict per finished epoch (``epoch``, ``loss``, ``val_loss``, ``lr``).
        non_finite: (step, what) for the first non-finite loss or gradient seen.
    """

    loss_steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    params: dict[str, ParamSeries] = field(default_factory=dict)
    activations: dict[str, ActivationSeries] = field(default_factory=dict)
    targets: TargetSeries | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)
    non_finite: tuple[int, str] | None = None
    sampled_steps: list[int] = field(default_factory=list)

    @property
    def steps(self) -> int:
        """Steps seen so far (the last step with a loss, plus one)."""
        return self.loss_steps[-1] + 1 if self.loss_steps else 0

    def weight_names(self) -> list[str]:
        """Parameters with at least 2 dimensions (weights, not biases), in model order."""
        return [name for name, series in self.params.items() if len(series.shape) >= 2]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able time series (non-finite numbers become None); :meth:`from_dict` undoes it."""
        return {
            "loss_steps": list(self.loss_steps),
            "losses": _clean(self.losses),
            "sampled_steps": list(self.sampled_steps),
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
                    "rows": list(s.rows),
                    "fired": [_pack(f) for f in s.fired],
                }
                for name, s in self.activations.items()
            },
            "targets": None if self.targets is None else {
                "kind": self.targets.kind,
                "steps": list(self.targets.steps),
                "values": [list(v) for v in self.targets.values],
            },
            "epochs": [{k: _clean_value(v) for k, v in e.items()} for e in self.epochs],
            "non_finite": list(self.non_finite) if self.non_finite else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingStats:
        """Rebuild statistics saved by :meth:`to_dict` (None becomes nan).

        Raises:
            ValueError: a field is missing or of the wrong kind (named in the message).
        """
        try:
            stats = cls(
                loss_steps=[int(s) for s in data["loss_steps"]],
                losses=_floats(data["losses"]),
                sampled_steps=[int(s) for s in data["sampled_steps"]],
                epochs=[{k: (math.nan if v is None else v) for k, v in e.items()}
                        for e in data["epochs"]],
                non_finite=(int(data["non_finite"][0]), str(data["non_finite"][1]))
                if data["non_finite"] else None,
            )
            for name, s in data["params"].items():
                stats.params[name] = ParamSeries(
                    steps=[int(x) for x in s["steps"]], grad_norm=_floats(s["grad_norm"]),
                    weight_norm=_floats(s["weight_norm"]),
                    update_ratio=_floats(s["update_ratio"]), shape=tuple(s["shape"]),
                )
            for name, s in data["activations"].items():
                stats.activations[name] = ActivationSeries(
                    kind=s["kind"], module_type=s["module_type"],
                    steps=[int(x) for x in s["steps"]], mean=_floats(s["mean"]),
                    std=_floats(s["std"]), saturated_fraction=_floats(s["saturated_fraction"]),
                    rows=[int(x) for x in s["rows"]], fired=[_unpack(f) for f in s["fired"]],
                )
            if data["targets"] is not None:
                t = data["targets"]
                stats.targets = TargetSeries(t["kind"], [int(x) for x in t["steps"]],
                                             [_floats(v) for v in t["values"]])
        except (KeyError, TypeError, IndexError, ValueError) as error:
            raise ValueError(f"TrainingStats.from_dict: damaged statistics ({error!r})") from None
        return stats


def subsample(stats: TrainingStats, keep: Callable[[int], bool]) -> TrainingStats:
    """The statistics a doctor would have collected had it sampled only the steps ``keep`` accepts.

    Losses and epochs are recorded every step, so they stay; every per-step series keeps the
    entries of the kept steps. Because no statistic depends on earlier samples, this equals a
    live run at that sampling (``tests/doctor`` checks it against live runs).
    """
    out = TrainingStats(loss_steps=list(stats.loss_steps), losses=list(stats.losses),
                        epochs=[dict(e) for e in stats.epochs],
                        sampled_steps=[s for s in stats.sampled_steps if keep(s)])
    # the first non-finite loss (every step) or gradient (sampled steps only), whichever is first
    for step, loss in zip(stats.loss_steps, stats.losses, strict=True):
        if not math.isfinite(loss):
            out.non_finite = (step, "training loss")
            break
    for name, s in stats.params.items():
        idx = [i for i, step in enumerate(s.steps) if keep(step)]
        out.params[name] = ParamSeries(
            [s.steps[i] for i in idx], [s.grad_norm[i] for i in idx],
            [s.weight_norm[i] for i in idx], [s.update_ratio[i] for i in idx], s.shape,
        )
        for i, step in enumerate(s.steps):
            if keep(step) and not math.isfinite(s.grad_norm[i]) and (
                    out.non_finite is None or step <= out.non_finite[0]):
                out.non_finite = (step, f"gradient of {name}")
    for name, a in stats.activations.items():
        idx = [i for i, step in enumerate(a.steps) if keep(step)]
        out.activations[name] = ActivationSeries(
            a.kind, a.module_type, [a.steps[i] for i in idx], [a.mean[i] for i in idx],
            [a.std[i] for i in idx], [a.saturated_fraction[i] for i in idx],
            [a.rows[i] for i in idx], [a.fired[i] for i in idx], a.histogram,
        )
    if stats.targets is not None:
        t = stats.targets
        idx = [i for i, step in enumerate(t.steps) if keep(step)]
        out.targets = TargetSeries(t.kind, [t.steps[i] for i in idx], [t.values[i] for i in idx])
    return out


def _pack(fired: np.ndarray | None) -> list[Any] | None:
    if fired is None:
        return None
    return [int(fired.size), np.packbits(fired).tobytes().hex()]


def _unpack(packed: Any) -> np.ndarray | None:
    if packed is None:
        return None
    size, hexed = packed
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(hexed), dtype=np.uint8))
    return bits[: int(size)].astype(bool)


def _floats(values: list[Any]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


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
    """Collects :class:`TrainingStats` for one model; driven by the :class:`Doctor`.

    One sampled step: :meth:`begin_sample` (before the forward pass), :meth:`end_forward`,
    :meth:`record_gradients` (after backward), :meth:`snapshot_weights` (before the optimizer
    step; in a hand-written loop at the end of the previous step), :meth:`record_updates` (after
    the step). Every step: :meth:`record_loss`.

    Args:
        model: a Module (anything with ``named_parameters`` and ``named_modules``).
        config: a DoctorConfig.

    Raises:
        TypeError: ``model`` is not a Module.
    """

    def __init__(self, model: Any, config: Any) -> None:
        if not hasattr(model, "named_parameters") or not hasattr(model, "named_modules"):
            raise TypeError(
                f"Doctor: the model must be a gradwise.nn.Module, got {type(model).__name__}"
            )
        # watch the replica inside DistributedDataParallel, so layers are named as in the
        # bare model ("2", not "module.2"), as the docs promise
        if isinstance(model, DistributedDataParallel):
            model = model.module
        self.config = config
        self.stats = TrainingStats()
        self._model = model
        self._params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        for name, param in self._params:
            self.stats.params[name] = ParamSeries(shape=tuple(param.shape))
        self._module_names = {id(m): name for name, m in model.named_modules()}
        self._stack: list[Any] = []
        self._calls: dict[tuple[int, str], int] = {}
        self._handles: list[Any] = []
        self._token: Any = None
        self._before: dict[str, np.ndarray] = {}
        self._before_norm: dict[str, float] = {}
        self._snapshot_step: int | None = None
        self._step = 0
        self._seen: set[str] = set()
        self._forwarded = False
        self.hook_seconds = 0.0  # time spent observing the forward pass (part of the overhead)

    @property
    def n_parameters(self) -> int:
        """Number of scalar parameters watched (the sum of every parameter's element count)."""
        return sum(int(np.prod(p.shape)) for _, p in self._params)

    # ---- the forward pass of a sampled step ---------------------------------------------------
    def begin_sample(self, step: int) -> None:
        """Observe the activations and loss targets of the forward pass of ``step``."""
        self.end_forward()
        self._step = step
        self._seen = set()
        self._forwarded = False
        for _, module in self._model.named_modules():
            self._handles.append(module.register_forward_pre_hook(self._enter))
            self._handles.append(module.register_forward_hook(self._leave))
        self._token = observe.install(self._observe)

    def _enter(self, module: Any, inputs: Any) -> None:
        if not self._stack:
            self._calls.clear()  # a new forward pass of the whole model: labels start again
        self._stack.append(module)

    def _leave(self, module: Any, inputs: Any, output: Any) -> None:
        if self._stack and self._stack[-1] is module:
            self._stack.pop()
        if not self._stack:
            self._forwarded = True  # the watched model ran: its loss may follow

    def end_forward(self) -> None:
        """Stop observing (validation passes and unsampled steps stay unobserved)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._stack.clear()
        if self._token is not None:
            # installed in another context (a thread): leave that one alone
            with contextlib.suppress(ValueError):
                observe.uninstall(self._token)
            self._token = None

    def _label(self, kind: str) -> tuple[str, str]:
        """(label, module type) of an activation op call: the activation module's own name, or
        '<module>:<kind>' (then '#1', '#2'... for later calls in the same module)."""
        module = self._stack[-1] if self._stack else None
        name = self._module_names.get(id(module), "") if module is not None else ""
        module_type = type(module).__name__ if module is not None else ""
        key = (id(module), kind)
        count = self._calls.get(key, 0)
        self._calls[key] = count + 1
        if module_type in _ACTIVATION_MODULES and count == 0 and name:
            return name, module_type
        label = f"{name}:{kind}" if name else kind
        return (label if count == 0 else f"{label}#{count}"), f"{module_type}.forward"

    def _observe(self, kind: str, arrays: tuple[Any, ...], out: np.ndarray) -> None:
        if not is_grad_enabled():
            return  # an evaluation pass (no_grad) between two steps is not the training forward
        started = time.perf_counter()
        # only ops of the watched model count: another model's ops (a second model trained in
        # the same program) run outside its module stack, and a loss only after its forward
        if kind in _LOSS_KINDS:
            if self._forwarded:
                self._record_targets(_LOSS_KINDS[kind], arrays)
        elif self._stack and isinstance(out, np.ndarray) and out.size and out.dtype.kind == "f":
            label, module_type = self._label(kind)
            self._record_activation(label, kind, module_type, out)
        self.hook_seconds += time.perf_counter() - started

    def record_loss_inputs(self, loss_name: str, output: Any, target: Any) -> None:
        """Targets of a loss that is not one fused op (``MSELoss``...), given by the caller."""
        if self._token is None:
            return
        kind = {"MSELoss": "regression", "L1Loss": "regression"}.get(loss_name)
        if not self._forwarded:
            return
        target = getattr(target, "_data", target)
        if kind is not None and isinstance(target, np.ndarray):
            self._record_targets(kind, (None, target))

    def _record_targets(self, kind: str, arrays: tuple[Any, ...]) -> None:
        if len(arrays) < 2 or not isinstance(arrays[1], np.ndarray):
            return
        target = arrays[1]
        if kind == "classes":
            logits = arrays[0]
            if not isinstance(logits, np.ndarray) or logits.ndim != 2 or target.ndim != 1:
                return
            labels = target.astype(np.int64)
            # rows labelled ignore_index (-100 by default) are not classes: leave them out
            labels = labels[(labels >= 0) & (labels < logits.shape[1])]
            counts = np.bincount(labels, minlength=logits.shape[1])
            values = [float(c) for c in counts[: logits.shape[1]]]
        else:
            columns = target.reshape(len(target), -1).astype(np.float64)
            values = [float(len(columns)), *columns.sum(axis=0).tolist()]
            if kind == "regression":
                values += (columns * columns).sum(axis=0).tolist()
        series = self.stats.targets
        if series is None or series.kind != kind:
            series = self.stats.targets = TargetSeries(kind)
        if series.steps and series.steps[-1] == self._step:
            return  # a second loss call in one step: the first describes the data
        series.steps.append(self._step)
        series.values.append(values)

    def _record_activation(self, label: str, kind: str, module_type: str,
                           data: np.ndarray) -> None:
        series = self.stats.activations.get(label)
        if series is None:
            series = self.stats.activations[label] = ActivationSeries(kind, module_type)
        fired = None
        if kind == "relu" and data.ndim >= 2:
            # a unit is a feature (N, F) or a channel (N, C, H, W); "fired" if positive anywhere
            axes = (0, *range(2, data.ndim))
            fired = data.max(axis=axes) > 0
        if label in self._seen:
            # the same activation twice in one step (two forward passes): merge what it fired
            last = series.fired[-1]
            if fired is not None and last is not None and last.shape == fired.shape:
                series.fired[-1] = last | fired
                series.rows[-1] += data.shape[0]
            return
        self._seen.add(label)
        series.steps.append(self._step)
        flat = data.reshape(-1)
        with np.errstate(all="ignore"):
            # one pass for the sum and one BLAS dot for the sum of squares: 3x faster than std()
            mean = float(flat.sum(dtype=np.float64)) / flat.size
            mean_square = float(np.dot(flat, flat)) / flat.size
            series.mean.append(mean)
            series.std.append(math.sqrt(max(mean_square - mean * mean, 0.0)))
            saturated: float
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
        series.rows.append(int(data.shape[0]) if data.ndim else 1)
        series.fired.append(fired)
        keep = self.config.histogram_values
        # random positions: a regular stride through (N, C, H, W) keeps hitting the same pixel
        # of every map (often the zero-padded border), which draws a comb, not a distribution.
        # Seeded by the step, so the picks depend on nothing else.
        picks = np.random.default_rng(self._step).integers(0, flat.size, size=min(keep, flat.size))
        series.histogram = flat[picks].astype(np.float32)

    # ---- gradients and updates ----------------------------------------------------------------
    def record_gradients(self) -> None:
        """The gradient norm of every parameter (call after backward, before the next one)."""
        step = self._step
        self.stats.sampled_steps.append(step)
        for name, param in self._params:
            series = self.stats.params[name]
            grad = param._grad
            grad_norm = _norm(grad) if grad is not None else 0.0
            series.steps.append(step)
            series.grad_norm.append(grad_norm)
            series.weight_norm.append(math.nan)
            series.update_ratio.append(math.nan)
            if not math.isfinite(grad_norm) and self.stats.non_finite is None:
                self.stats.non_finite = (step, f"gradient of {name}")

    def snapshot_weights(self, step: int) -> None:
        """Copy the weights as they are before the optimizer step of ``step``."""
        self._snapshot_step = step
        for name, param in self._params:
            data = param._data
            buffer = self._before.get(name)
            if buffer is None or buffer.shape != data.shape or buffer.dtype != data.dtype:
                buffer = self._before[name] = np.empty_like(data)
            np.copyto(buffer, data)
            self._before_norm[name] = _norm(data)

    def record_updates(self) -> None:
        """Weight norm before the step and ||w_new - w_old|| / ||w_old|| for each parameter."""
        if self._snapshot_step != self._step:
            return
        for name, param in self._params:
            series = self.stats.params[name]
            before = self._before.get(name)
            if before is None or not series.steps or series.steps[-1] != self._step:
                continue
            old_norm = self._before_norm[name]
            with np.errstate(all="ignore"):
                np.subtract(param._data, before, out=before)
            moved = _norm(before)
            series.weight_norm[-1] = old_norm
            series.update_ratio[-1] = (moved / old_norm if old_norm > 0
                                       else (0.0 if moved == 0 else math.inf))
        self._snapshot_step = None

    # ---- every step ---------------------------------------------------------------------------
    def record_loss(self, step: int, loss: float) -> None:
        """Record the training loss of step ``step``; the first non-finite one is kept as evidence.
        """
        self.stats.loss_steps.append(step)
        self.stats.losses.append(loss)
        if not math.isfinite(loss) and self.stats.non_finite is None:
            self.stats.non_finite = (step, "training loss")

    def record_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        """Record epoch ``epoch``'s finite ``loss``, ``val_loss`` and ``lr`` from the trainer's
        logs.
        """
        record: dict[str, Any] = {"epoch": epoch, "step": self.stats.steps}
        for key in ("loss", "val_loss", "lr"):
            value = logs.get(key)
            if isinstance(value, int | float | np.floating) and not isinstance(value, bool):
                record[key] = float(value)
        self.stats.epochs.append(record)
