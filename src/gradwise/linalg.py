"""Norms of vectors and matrices, as ``torch.linalg`` names them: ``gw.linalg.norm``,
``vector_norm`` and ``matrix_norm``.

Every norm is differentiable, and its gradient at the zero vector (or matrix) is 0, the
subgradient PyTorch picks (not the NaN that 0 / 0 would give). The formulas and their local
derivatives are in :class:`~gradwise.autograd.ops.reduce.VectorNorm` and
:class:`~gradwise.autograd.ops.linalg.SingularValueNorm`.
"""

from __future__ import annotations

import math
from typing import Any

from gradwise.autograd.ops import linalg as _linalg_ops
from gradwise.autograd.ops import reduce as _reduce
from gradwise.autograd.tensor import Tensor

__all__ = ["matrix_norm", "norm", "vector_norm"]

Dim = int | tuple[int, ...] | None

_MATRIX_ORDS = ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf)


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def vector_norm(x: Any, ord: float = 2, dim: Dim = None, keepdim: bool = False) -> Tensor:
    """The ``ord``-norm of ``x`` over ``dim`` (all axes by default), ``torch.linalg.vector_norm``.

    Args:
        ord: any real number or +-inf. inf: max |x|; -inf: min |x|; 0: the number of non-zeros;
            otherwise (sum |x|^ord)^(1/ord).
        dim: an axis or a tuple of axes; None reduces over every axis.
        keepdim: keep the reduced axes as size 1.

    Raises:
        TypeError: for a non-floating tensor or a non-numeric ``ord``.
        ValueError: for the +-inf norm of an empty tensor (no identity for max/min).

    Example:
        >>> gw.linalg.vector_norm(gw.tensor([3.0, 4.0]))  # tensor(5.)
    """
    if isinstance(ord, str | bool):
        raise TypeError(f"vector_norm: ord must be a number, got {ord!r}")
    return _reduce.VectorNorm.apply(_tensor(x), float(ord), dim, keepdim)


def _matrix_dims(x: Tensor, dim: Any, op: str) -> tuple[int, int]:
    if not isinstance(dim, tuple | list) or len(dim) != 2:
        raise ValueError(f"{op}: dim must be a pair of axes, got {dim!r}")
    if x.ndim < 2:
        raise ValueError(f"{op}: needs at least 2 dimensions, got shape {x.shape}")
    rows, cols = _reduce.normalize_axis(dim[0], x.ndim, op)[0], _reduce.normalize_axis(
        dim[1], x.ndim, op
    )[0]
    if rows == cols:
        raise ValueError(f"{op}: dim {dim!r} names the same axis twice")
    return rows, cols


def matrix_norm(x: Any, ord: Any = "fro", dim: tuple[int, int] = (-2, -1),
                keepdim: bool = False) -> Tensor:
    """A matrix norm over the two axes ``dim``, ``torch.linalg.matrix_norm``.

    Args:
        ord: "fro" (sqrt of the sum of squares), "nuc" (sum of singular values), 1 / -1 (max /
            min absolute column sum), inf / -inf (max / min absolute row sum), 2 / -2 (largest /
            smallest singular value).
        dim: the (row, column) axes of the matrices; the other axes are batch axes.
        keepdim: keep the two reduced axes as size 1.

    Shape:
        (..., m, n) -> (...), or (..., 1, 1) with ``keepdim``.

    Raises:
        ValueError: for another ``ord``, a ``dim`` that is not two distinct axes, or fewer
            than 2 dimensions.
    """
    x = _tensor(x)
    if ord not in _MATRIX_ORDS or isinstance(ord, bool):
        raise ValueError(f"matrix_norm: ord must be one of {_MATRIX_ORDS}, got {ord!r}")
    rows, cols = _matrix_dims(x, dim, "matrix_norm")
    if ord == "fro":
        return _reduce.VectorNorm.apply(x, 2.0, (rows, cols), keepdim)
    if ord in ("nuc", 2, -2):
        # move the matrix axes last, take the singular values, put size-1 axes back if asked
        batch = [a for a in range(x.ndim) if a not in (rows, cols)]
        moved = x.permute(*batch, rows, cols)
        kind = {"nuc": "sum", 2: "max", -2: "min"}[ord]
        out = _linalg_ops.SingularValueNorm.apply(moved, kind)
        if keepdim:
            shape = list(x.shape)
            shape[rows] = shape[cols] = 1
            out = out.reshape(tuple(shape))
        return out
    # 1: max over columns of the column sums; inf: max over rows of the row sums
    summed, extreme_axis = (rows, cols) if abs(ord) == 1 else (cols, rows)
    sums = _reduce.Sum.apply(x.abs(), summed, True)
    extreme = _reduce.Max if ord > 0 else _reduce.Min
    out = extreme.apply(sums, extreme_axis, True)
    return out if keepdim else out.reshape(
        tuple(n for a, n in enumerate(out.shape) if a not in (rows, cols))
    )


def norm(x: Any, ord: Any = None, dim: Dim = None, keepdim: bool = False) -> Tensor:
    """A vector or matrix norm, chosen as ``torch.linalg.norm`` chooses.

    ``dim`` an int: a vector norm over it. ``dim`` a pair: a matrix norm over it. ``dim`` None:
    with ``ord`` None the 2-norm of all values; otherwise ``x`` must be 1-D (vector norm) or
    2-D (matrix norm). ``ord`` None means 2 for vectors and "fro" for matrices.

    Raises:
        ValueError: when ``ord`` is given, ``dim`` is None and ``x`` is neither 1-D nor 2-D.
    """
    x = _tensor(x)
    if dim is None:
        if ord is None:
            return _reduce.VectorNorm.apply(x, 2.0, None, keepdim)
        if x.ndim == 1:
            return vector_norm(x, ord, None, keepdim)
        if x.ndim == 2:
            return matrix_norm(x, ord, (0, 1), keepdim)
        raise ValueError(
            f"norm: with ord={ord!r} and dim=None the input must be 1-D or 2-D, got shape "
            f"{x.shape}; pass dim"
        )
    if isinstance(dim, int) or (isinstance(dim, tuple | list) and len(dim) == 1):
        return vector_norm(x, 2 if ord is None else ord, dim if isinstance(dim, int) else
                           tuple(dim), keepdim)
    return matrix_norm(x, "fro" if ord is None else ord, (dim[0], dim[1]), keepdim)
