"""Free functions over tensors (gw.cat, gw.where, ...) that take several tensors at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradwise.autograd import dtypes as _dtypes
from gradwise.autograd._args import dim_arg
from gradwise.autograd.ops import elementwise, shape
from gradwise.autograd.tensor import Tensor


def _as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if like is not None:
        return like._lift(value)
    return Tensor(value)


def promoted(*values: Any) -> list[Tensor]:
    """``values`` as Tensors of their common dtype (PyTorch's promotion, autograd/dtypes.py).

    A Tensor of another dtype is cast through the recorded ``Cast`` op, so the gradient still
    reaches it (in its own dtype); constants become constant Tensors of the common dtype.
    """
    target = _dtypes.result_type(*values)
    out = []
    for value in values:
        if isinstance(value, Tensor):
            out.append(value if value._data.dtype == target
                       else elementwise.Cast.apply(value, target))
        else:
            out.append(Tensor._make(_dtypes.as_array(value, target), False, None))
    return out


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum; a tie splits the gradient evenly between a and b. The result has
    the operands' promoted dtype (int tensor and float tensor: float32, as in PyTorch)."""
    return elementwise.Maximum.apply(*promoted(a, b))


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum; a tie splits the gradient evenly between a and b. The result has
    the operands' promoted dtype, as :func:`maximum`."""
    return elementwise.Minimum.apply(*promoted(a, b))


def where(condition: Any, a: Any = None, b: Any = None) -> Any:
    """Pick ``a`` where ``condition`` holds, else ``b``; the gradient goes to the side picked.

    ``a`` and ``b`` (tensors or numbers) take their promoted dtype, as in PyTorch:
    ``where(cond, int_tensor, 0.5)`` is float32. With ``condition`` alone it is
    ``nonzero(condition, as_tuple=True)``: a tuple of int64 index tensors, one per dim.

    Raises:
        TypeError: only one of ``a`` and ``b`` given.
        ValueError: the three shapes do not broadcast together.
    """
    condition = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if a is None and b is None:
        return tuple(Tensor._make(index.astype(np.int64), False, None)
                     for index in np.nonzero(condition))
    if a is None or b is None:
        raise TypeError("where: give both a and b, or the condition alone")
    return elementwise.Where.apply(condition, *promoted(a, b))


def cat(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing dim (default 0; NumPy alias ``axis``); mixed dtypes take
    their promoted dtype (int64 and float32: float32, as in PyTorch).

    Raises:
        ValueError: no tensors given.
    """
    if len(tensors) == 0:
        raise ValueError("cat: expected a non-empty list of tensors")
    return shape.Cat.apply(*_promoted_dimensioned(tensors),
                           axis=dim_arg("cat", dim, axis, 0))


def stack(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join same-shaped tensors along a new dim (default 0; NumPy alias ``axis``); mixed
    dtypes take their promoted dtype, as :func:`cat`.

    Raises:
        ValueError: no tensors given.
    """
    if len(tensors) == 0:
        raise ValueError("stack: expected a non-empty list of tensors")
    return shape.Stack.apply(*_promoted_dimensioned(tensors),
                             axis=dim_arg("stack", dim, axis, 0))


def _promoted_dimensioned(values: Sequence[Any]) -> list[Tensor]:
    """cat/stack operands of one dtype; all count as dimensioned (torch: 0-d inputs to stack
    promote like the others)."""
    tensors = [_as_tensor(v) for v in values]
    if len({t._data.dtype for t in tensors}) == 1:
        return tensors
    target = _dtypes.promote([t._data.dtype for t in tensors], [])
    return [t if t._data.dtype == target else elementwise.Cast.apply(t, target)
            for t in tensors]


def pad(x: Tensor, pad_width: Any, value: float = 0.0) -> Tensor:
    """Constant padding with NumPy's ``pad_width`` ((before, after) per axis)."""
    return shape.Pad.apply(x, pad_width, value)


def broadcast_to(x: Tensor, shape_: Sequence[int]) -> Tensor:
    return shape.BroadcastTo.apply(x, tuple(shape_))
