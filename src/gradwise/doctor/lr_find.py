"""The learning-rate range test: raise the lr exponentially and watch where the loss falls fastest.

Leslie Smith's test, as fastai popularised it: train for a few hundred steps with the learning rate
growing geometrically from ``start_lr`` to ``end_lr``, smooth the loss with a bias-corrected
exponential moving average, and stop once it clearly diverges. The suggestion is the learning rate
where the smoothed loss falls most steeply (per unit of log lr), searched before the minimum: fast
learning that is still stable. The model's weights and the caller's RNGs are left as they were.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradwise.autograd.tensor import Tensor

__all__ = ["LRFindResult", "lr_find"]

# The smoothed loss counts as diverged once it exceeds this multiple of the best seen: by then
# every larger lr is useless and the steps only waste time.
_DIVERGENCE_FACTOR = 4.0


@dataclass
class LRFindResult:
    """What the range test measured.

    Attributes:
        lrs: the learning rate of each step taken.
        losses: the smoothed loss after each step.
        raw_losses: the unsmoothed batch losses.
        suggested_lr: where the smoothed loss fell fastest (None if it never fell).
        stopped_early: True when the loss diverged before ``num_steps``.
    """

    lrs: list[float]
    losses: list[float]
    suggested_lr: float | None
    raw_losses: list[float] = field(default_factory=list)
    stopped_early: bool = False

    def plot(self, path: str | Path) -> Path:
        """Save the loss-versus-lr curve (log x axis, suggestion marked) as a PNG; returns path."""
        from gradwise.viz.plots import plot_lr_find  # viz sits above the doctor

        return plot_lr_find(self, path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lrs": list(self.lrs),
            "losses": [v if math.isfinite(v) else None for v in self.losses],
            "suggested_lr": self.suggested_lr,
            "stopped_early": self.stopped_early,
        }


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


def _suggest(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """The lr of steepest descent of the smoothed loss over log(lr), before its minimum."""
    if lrs.size < 5:
        return None
    best = int(np.argmin(losses))
    # skip the first tenth: the moving average is still warming up there
    skip = max(1, lrs.size // 10)
    if best <= skip + 1:
        return None
    slopes = np.gradient(losses[: best + 1], np.log(lrs[: best + 1]))
    steepest = skip + int(np.argmin(slopes[skip:]))
    if slopes[steepest] >= 0:
        return None
    return float(lrs[steepest])


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
    **optimizer_kwargs: Any,
) -> LRFindResult:
    """Run the learning-rate range test and restore the model's weights afterwards.

    Args:
        model: a ``gw.nn.Module``.
        loss_fn: ``loss_fn(output, target) -> scalar Tensor``.
        data: ``(x, y)`` arrays (batched here, shuffled with ``seed``) or an iterable of
            ``(x, y)`` batches such as a DataLoader.
        optimizer_cls: the optimizer class, built as ``optimizer_cls(model.parameters(),
            lr=start_lr, **optimizer_kwargs)``; ``gw.optim.SGD`` with momentum 0.9 when None.
        start_lr, end_lr: the range, swept geometrically.
        num_steps: steps in the sweep (fewer if the loss diverges first).
        batch_size: rows per step when ``data`` are arrays.
        smooth: the exponential moving average factor for the loss, in [0, 1).
        seed: shuffling seed for array data.

    Returns:
        an :class:`LRFindResult` with ``lrs``, ``losses``, ``suggested_lr`` and ``plot(path)``.

    Example:
        >>> result = gw.doctor.lr_find(model, F.cross_entropy, (x, y))   # doctest: +SKIP
        >>> result.suggested_lr                                          # doctest: +SKIP
        0.0316
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
    if not hasattr(model, "state_dict") or not callable(model):
        raise TypeError(f"lr_find: model must be a gw.nn.Module, got {type(model).__name__}")
    if optimizer_cls is None:
        from gradwise.optim import SGD

        optimizer_cls = SGD
        optimizer_kwargs.setdefault("momentum", 0.9)

    saved_weights = model.state_dict()
    saved_rng = model.rng_state() if hasattr(model, "rng_state") else None
    was_training = getattr(model, "training", True)
    params = list(model.parameters())
    saved_grads = [None if p._grad is None else p._grad.copy() for p in params]
    optimizer = optimizer_cls(params, lr=start_lr, **optimizer_kwargs)
    factor = (end_lr / start_lr) ** (1.0 / (num_steps - 1))
    batches = _batches(data, batch_size, np.random.default_rng(seed))

    lrs: list[float] = []
    smoothed: list[float] = []
    raw: list[float] = []
    average, best = 0.0, math.inf
    stopped_early = False
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
                stopped_early = True
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
            if step > 0 and corrected > _DIVERGENCE_FACTOR * best:
                stopped_early = True
                break
    finally:
        model.load_state_dict(saved_weights)
        if saved_rng is not None and hasattr(model, "set_rng_state"):
            model.set_rng_state(saved_rng)
        for param, grad in zip(params, saved_grads, strict=True):
            param._grad = grad
        model.train(was_training)
    suggestion = _suggest(np.asarray(lrs), np.asarray(smoothed))
    return LRFindResult(lrs, smoothed, suggestion, raw, stopped_early)
