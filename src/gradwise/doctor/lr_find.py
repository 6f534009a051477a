"""The learning-rate range test: raise the lr exponentially and read a good one off the loss curve.

Leslie Smith's test (L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV
2017, section 3.3), as fastai's ``Learner.lr_find`` runs it (fastai/callback/schedule.py): train
for a few hundred steps with the learning rate growing geometrically from ``start_lr`` to
``end_lr``, smooth the loss with a bias-corrected exponential moving average, stop once the
smoothed loss exceeds four times the best seen (divergence), and put the model and the optimizer
back as they were. Three suggestions are read off the smoothed curve, the same three fastai offers:

- ``valley`` (the default, as in fastai since 2.5): the middle, in log lr, of the descent, from
  where the loss has made 10% of its fall down to its minimum (fastai takes the longest
  decreasing run instead; see :func:`_valley` for why that lands too low here);
- ``steep``: where the loss falls fastest per unit of log(lr);
- ``minimum``: one tenth of the lr at the smoothed loss's minimum (fastai's ``minimum``, the
  "one order of magnitude before the minimum" rule of its course).

docs/DOCTOR.md (section "lr_find") gives the check on real recipes: the suggested lr trains as well
as the recipe's own, and why the old steepest-descent suggestion did not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradwise.autograd.tensor import Tensor

__all__ = ["SUGGESTION_METHODS", "LRFindResult", "lr_find", "suggest_lrs"]

SUGGESTION_METHODS = ("valley", "steep", "minimum")
"""The suggestion rules :func:`lr_find` knows; the first is the default."""

DIVERGENCE_FACTOR = 4.0
"""The sweep stops once the smoothed loss exceeds this multiple of the best smoothed loss so far
(fastai's ``stop_div`` test): every larger lr is useless, and the steps would only waste time."""


@dataclass
class LRFindResult:
    """What the range test measured.

    Attributes:
        lrs: the learning rate of each step taken, ``(steps,)``.
        losses: the smoothed (bias-corrected moving average) loss after each step, ``(steps,)``.
        raw_losses: the unsmoothed batch losses, ``(steps,)``.
        suggestions: ``{"valley": lr, "steep": lr, "minimum": lr}``; a value is None when its
            rule finds nothing (e.g. the loss never fell).
        method: which suggestion ``suggested_lr`` is.
        suggested_lr: ``suggestions[method]``.
        stopped_early: True when the sweep ended before ``num_steps`` (divergence).
        stop_reason: why it ended early, in words; None when it ran to ``end_lr``.
    """

    lrs: list[float]
    losses: list[float]
    suggested_lr: float | None
    raw_losses: list[float] = field(default_factory=list)
    stopped_early: bool = False
    suggestions: dict[str, float | None] = field(default_factory=dict)
    method: str = SUGGESTION_METHODS[0]
    stop_reason: str | None = None

    def __repr__(self) -> str:
        """One line: the sweep's range and length and the suggestions (not the ~200-point
        curves; they are in ``lrs``, ``losses`` and ``raw_losses``)."""
        if self.lrs:
            sweep = f"{len(self.lrs)} steps, lr {self.lrs[0]:.3g} to {self.lrs[-1]:.3g}"
        else:
            sweep = "0 steps"
        shown = ", ".join(f"{k}={'None' if v is None else format(v, '.3g')}"
                          for k, v in self.suggestions.items())
        suggested = "None" if self.suggested_lr is None else f"{self.suggested_lr:.3g}"
        stop = f", stopped: {self.stop_reason}" if self.stop_reason else ""
        return (f"LRFindResult(suggested_lr={suggested} ({self.method}), {sweep}, "
                f"suggestions: {shown}{stop})")

    def plot(self, path: str | Path) -> Path:
        """Save the loss-versus-lr curve (log x, y clipped to the useful range, the suggestions
        marked) as a PNG; returns the path."""
        from gradwise.viz.plots import plot_lr_find  # viz sits above the doctor

        return plot_lr_find(self, path)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite losses become None)."""
        return {
            "lrs": list(self.lrs),
            "losses": [v if math.isfinite(v) else None for v in self.losses],
            "raw_losses": [v if math.isfinite(v) else None for v in self.raw_losses],
            "suggested_lr": self.suggested_lr,
            "method": self.method,
            "suggestions": dict(self.suggestions),
            "stopped_early": self.stopped_early,
            "stop_reason": self.stop_reason,
        }


# ---- the suggestion rules -----------------------------------------------------------------------
def _window(n: int) -> tuple[int, int]:
    """The indices the rules look at: fastai drops the first tenth of the sweep (the moving
    average is still warming up there) and the last five steps (the divergence that stopped it)."""
    start = n // 10
    end = n - 5 if n - 5 - start >= 5 else n
    return start, end


VALLEY_START = 0.1
"""The valley starts where the smoothed loss has made this fraction of its fall (from the level at
the start of the window the rules read down to the minimum)."""


def _valley(lrs: np.ndarray, losses: np.ndarray) -> int | None:
    """Index of the middle (in log lr) of the valley: the descent from where the loss has made
    :data:`VALLEY_START` of its fall down to its minimum.

    fastai's ``valley`` (Z. Mueller, fastai 2.5) takes the longest strictly decreasing
    subsequence of the losses as the valley and suggests its middle. On a smoothed curve the
    slow creep at tiny learning rates (a few steps of real, slow progress) is strictly
    decreasing too, so that valley starts near the beginning of the sweep and its middle lands
    3-10x below a good rate (measured on the digits-mlp, mnist-mlp and fashion-mlp recipes,
    all Adam; docs/DOCTOR.md). Starting the valley where the loss has really begun to fall
    keeps fastai's idea (the middle of the way down) without that failure.
    """
    lowest = int(np.argmin(losses))
    fall = losses[0] - losses[lowest]
    if lowest < 2 or fall <= 0:
        return None
    # the first point below the threshold, so a bump above the starting level changes nothing
    start = int(np.argmax(losses[: lowest + 1] < losses[0] - VALLEY_START * fall))
    middle = 0.5 * (math.log(lrs[start]) + math.log(lrs[lowest]))
    return start + int(np.argmin(np.abs(np.log(lrs[start : lowest + 1]) - middle)))


def _steep(lrs: np.ndarray, losses: np.ndarray) -> int | None:
    """Index of the steepest fall per unit of log(lr) (fastai's ``steep``), before the minimum."""
    lowest = int(np.argmin(losses))
    if lowest < 1:
        return None
    slopes = np.diff(losses[: lowest + 1]) / np.diff(np.log(lrs[: lowest + 1]))
    steepest = int(np.argmin(slopes))
    return steepest if slopes[steepest] < 0 else None


def suggest_lrs(lrs: Sequence[float], losses: Sequence[float]) -> dict[str, float | None]:
    """The three suggestions for a smoothed loss curve from a geometric lr sweep.

    Args:
        lrs: increasing learning rates, ``(steps,)``.
        losses: the smoothed loss at each, ``(steps,)``; a non-finite value ends the curve.

    Returns:
        ``{"valley": lr, "steep": lr, "minimum": lr}`` with None where the curve never falls
        (fewer than 5 finite points, or no descent inside the window fastai reads). Before
        anything else the first tenth and the last five points are dropped, as in fastai.

    Raises:
        ValueError: the two sequences differ in length.
    """
    lrs_array = np.asarray(lrs, dtype=np.float64)
    loss_array = np.asarray(losses, dtype=np.float64)
    if lrs_array.shape != loss_array.shape or lrs_array.ndim != 1:
        raise ValueError(
            f"suggest_lrs: lrs {lrs_array.shape} and losses {loss_array.shape} must be two "
            f"sequences of the same length"
        )
    finite = np.flatnonzero(~np.isfinite(loss_array))
    if finite.size:
        lrs_array, loss_array = lrs_array[: finite[0]], loss_array[: finite[0]]
    none: dict[str, float | None] = dict.fromkeys(SUGGESTION_METHODS)
    if loss_array.size < 5:
        return none
    start, end = _window(loss_array.size)
    lrs_array, loss_array = lrs_array[start:end], loss_array[start:end]
    lowest = int(np.argmin(loss_array))
    if lowest == 0:  # the loss only rose: nothing to suggest
        return none
    valley = _valley(lrs_array, loss_array)
    steep = _steep(lrs_array, loss_array)
    return {
        "valley": None if valley is None else float(lrs_array[valley]),
        "steep": None if steep is None else float(lrs_array[steep]),
        "minimum": float(lrs_array[lowest]) / 10.0,
    }


# ---- the sweep ----------------------------------------------------------------------------------
def _batches(data: Any, batch_size: int, rng: np.random.Generator) -> Iterator[tuple[Any, Any]]:
    """Endless (x, y) batches from (x, y) arrays (shuffled each pass) or any iterable of batches."""
    if isinstance(data, tuple | list) and len(data) == 2 and hasattr(data[0], "__len__") \
            and not isinstance(data[0], tuple | list):
        x = data[0]._data if isinstance(data[0], Tensor) else np.asarray(data[0])
        y = data[1]._data if isinstance(data[1], Tensor) else np.asarray(data[1])
        if len(x) != len(y):
            raise ValueError(f"lr_find: x has {len(x)} samples but y has {len(y)}")
        if len(x) == 0:
            raise ValueError("lr_find: the data are empty")
        if x.dtype.kind != "f":
            x = x.astype(np.float32)
        while True:
            order = rng.permutation(len(x))
            for start in range(0, len(x), batch_size):
                index = order[start:start + batch_size]
                yield x[index], y[index]
    if not isinstance(data, Iterable):
        raise TypeError(
            f"lr_find: data must be (x, y) arrays or an iterable of (x, y) batches (a DataLoader),"
            f" got {type(data).__name__}"
        )
    while True:
        empty = True
        for batch in data:
            empty = False
            x, y = batch[0], batch[1]
            yield x, y
        if empty:
            raise ValueError("lr_find: the data loader yielded no batches")


def _progress_bar(total: int, enabled: bool) -> Any:
    """A tqdm bar on stderr, or None when disabled."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="lr_find", unit="step", leave=False, dynamic_ncols=True)


def lr_find(
    model: Any,
    loss_fn: Any,
    data: Any,
    optimizer_cls: Any = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 200,
    batch_size: int = 64,
    smooth: float = 0.98,
    seed: int = 0,
    *,
    optimizer: Any = None,
    suggest: str = SUGGESTION_METHODS[0],
    progress: bool = True,
    **optimizer_kwargs: Any,
) -> LRFindResult:
    """Run the learning-rate range test, then put the model and optimizer back as they were.

    Step ``i`` (of ``num_steps``) trains one batch at ``lr_i = start_lr * (end_lr /
    start_lr) ** (i / (num_steps - 1))``. The smoothed loss is ``avg_i / (1 - smooth ** (i + 1))``
    with ``avg_i = smooth * avg_(i-1) + (1 - smooth) * loss_i`` (fastai's ``AvgSmoothLoss``). The
    sweep stops at a non-finite loss or once the smoothed loss exceeds :data:`DIVERGENCE_FACTOR`
    times its best. Afterwards the parameters and buffers (bitwise), the gradients, the model's
    random generators, its train/eval mode and the optimizer's state and learning rates are all
    what they were before, also when the sweep raises.

    Args:
        model: a ``gw.nn.Module``.
        loss_fn: ``loss_fn(output, target) -> scalar Tensor``.
        data: ``(x, y)`` arrays (batched here, shuffled with ``seed``) or an iterable of
            ``(x, y)`` batches such as a DataLoader.
        optimizer_cls: the optimizer class, built as ``optimizer_cls(model.parameters(),
            lr=start_lr, **optimizer_kwargs)``; ``gw.optim.SGD`` with momentum 0.9 when neither
            it nor ``optimizer`` is given.
        start_lr, end_lr: the range, swept geometrically (fastai's defaults, 1e-7 to 10).
        num_steps: steps in the sweep (fewer if the loss diverges first).
        batch_size: rows per step when ``data`` are arrays.
        smooth: the moving average's factor, in [0, 1) (fastai's beta, 0.98).
        seed: shuffling seed for array data.
        optimizer: an optimizer already made for ``model`` (keyword only), used for the sweep
            instead of a new one (every parameter group gets the swept lr) and restored
            afterwards; not together with ``optimizer_cls`` or ``optimizer_kwargs``.
        suggest: which suggestion ``suggested_lr`` is: one of :data:`SUGGESTION_METHODS`.
        progress: show a tqdm progress bar on stderr.

    Returns:
        an :class:`LRFindResult` with ``lrs``, ``losses``, ``suggestions``, ``suggested_lr`` and
        ``plot(path)``.

    Raises:
        ValueError: a bad range, step count, batch size, smoothing factor or ``suggest``; data
            of mismatched lengths or no data.
        TypeError: ``model`` is not a Module, ``data`` are not batches, or both an optimizer and
            an optimizer class are given.

    Example:
        >>> result = gw.doctor.lr_find(model, F.cross_entropy, (x, y))   # doctest: +SKIP
        >>> result.suggestions                                           # doctest: +SKIP
        {'valley': 0.0021, 'steep': 0.00035, 'minimum': 0.0018}
    """
    if not (0 < start_lr < end_lr) or not math.isfinite(end_lr):
        raise ValueError(
            f"lr_find: need 0 < start_lr < end_lr (finite), got start_lr={start_lr}, "
            f"end_lr={end_lr}"
        )
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"lr_find: num_steps must be an int >= 2, got {num_steps!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"lr_find: batch_size must be a positive int, got {batch_size!r}")
    if not 0.0 <= smooth < 1.0:
        raise ValueError(f"lr_find: smooth must be in [0, 1), got {smooth}")
    if suggest not in SUGGESTION_METHODS:
        raise ValueError(
            f"lr_find: suggest must be one of {', '.join(SUGGESTION_METHODS)}, got {suggest!r}"
        )
    if not hasattr(model, "state_dict") or not callable(model):
        raise TypeError(f"lr_find: model must be a gw.nn.Module, got {type(model).__name__}")
    if optimizer is not None and (optimizer_cls is not None or optimizer_kwargs):
        raise TypeError("lr_find: pass either an optimizer or optimizer_cls (with its settings),"
                        " not both")

    params = list(model.parameters())
    # state_dict() shares memory with the parameters (as in PyTorch): keep a copy
    saved_weights = {name: value.clone() for name, value in model.state_dict().items()}
    saved_rng = model.rng_state() if hasattr(model, "rng_state") else None
    was_training = getattr(model, "training", True)
    saved_grads = [None if p._grad is None else p._grad.copy() for p in params]
    saved_optimizer = None if optimizer is None else optimizer.state_dict()
    if optimizer is None:
        if optimizer_cls is None:
            from gradwise.optim import SGD

            optimizer_cls = SGD
            optimizer_kwargs.setdefault("momentum", 0.9)
        optimizer = optimizer_cls(params, lr=start_lr, **optimizer_kwargs)
    factor = (end_lr / start_lr) ** (1.0 / (num_steps - 1))
    batches = _batches(data, batch_size, np.random.default_rng(seed))

    lrs: list[float] = []
    smoothed: list[float] = []
    raw: list[float] = []
    average, best = 0.0, math.inf
    stop_reason = None
    bar = _progress_bar(num_steps, progress)
    model.train()
    try:
        for step in range(num_steps):
            lr = start_lr * factor**step
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = next(batches)
            output = model(x if isinstance(x, Tensor) else Tensor(x))
            loss = loss_fn(output, y if isinstance(y, Tensor) else Tensor(y))
            value = float(loss.item())
            if not math.isfinite(value):
                stop_reason = f"the loss became {value} at lr {lr:.3g}"
                break
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            average = smooth * average + (1.0 - smooth) * value
            corrected = average / (1.0 - smooth ** (step + 1))
            lrs.append(lr)
            raw.append(value)
            smoothed.append(corrected)
            best = min(best, corrected)
            if bar is not None:
                bar.update()
                bar.set_postfix(lr=f"{lr:.2e}", loss=f"{corrected:.4g}", refresh=False)
            if corrected > DIVERGENCE_FACTOR * best:
                stop_reason = (f"the smoothed loss {corrected:.4g} exceeded {DIVERGENCE_FACTOR:g}x "
                               f"its best ({best:.4g}) at lr {lr:.3g}")
                break
    finally:
        if bar is not None:
            bar.close()
        model.load_state_dict(saved_weights)
        if saved_rng is not None and hasattr(model, "set_rng_state"):
            model.set_rng_state(saved_rng)
        for param, grad in zip(params, saved_grads, strict=True):
            param._grad = grad
        model.train(was_training)
        if saved_optimizer is not None:
            optimizer.load_state_dict(saved_optimizer)
    suggestions = suggest_lrs(lrs, smoothed)
    return LRFindResult(
        lrs=lrs, losses=smoothed, suggested_lr=suggestions[suggest], raw_losses=raw,
        stopped_early=stop_reason is not None, suggestions=suggestions, method=suggest,
        stop_reason=stop_reason,
    )
