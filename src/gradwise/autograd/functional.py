"""Free functions over tensors (gw.cat, gw.where, ...) that take several tensors at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradwise.autograd._args import dim_arg
from gradwise.autograd.ops import elementwise, shape
from gradwise.autograd.tensor import Tensor


def _as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if like is not None:
        return like._lift(value)
    return Tensor(value)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum; a tie splits the gradient evenly between a and b."""
    a = _as_tensor(a, b if isinstance(b, Tensor) else None)
    return elementwise.Maximum.apply(a, _as_tensor(b, a))


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum; a tie splits the gradient evenly between a and b."""
    a = _as_tensor(a, b if isinstance(b, Tensor) else None)
    return elementwise.Minimum.apply(a, _as_tensor(b, a))


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Pick ``a`` where ``condition`` holds, else ``b``; the gradient goes to the side picked."""
    condition = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    return elementwise.Where.apply(condition, _as_tensor(a, like), _as_tensor(b, like))


def cat(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing dim (default 0; NumPy alias ``axis``)."""
    return shape.Cat.apply(*[_as_tensor(t) for t in tensors], axis=dim_arg("cat", dim, axis, 0))


def stack(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join same-shaped tensors along a new dim (default 0; NumPy alias ``axis``)."""
    return shape.Stack.apply(*[_as_tensor(t) for t in tensors],
                             axis=dim_arg("stack", dim, axis, 0))


def pad(x: Tensor, pad_width: Any, value: float = 0.0) -> Tensor:
    """Constant padding with NumPy's ``pad_width`` ((before, after) per axis)."""
    return shape.Pad.apply(x, pad_width, value)


def broadcast_to(x: Tensor, shape_: Sequence[int]) -> Tensor:
    return shape.BroadcastTo.apply(x, tuple(shape_))
