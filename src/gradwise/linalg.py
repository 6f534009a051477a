"""``torch.linalg`` for gradwise: norms (``norm``, ``vector_norm``, ``matrix_norm``), and the
matrix functions and decompositions ``inv``, ``det``, ``slogdet``, ``solve``, ``cholesky``,
``eigh``, ``eigvalsh``, ``svd``, ``svdvals``, ``qr``, ``pinv``, ``matrix_rank``,
``matrix_power``, ``multi_dot``, ``cross``, ``diagonal``, ``vecdot``, ``matmul``.

Every norm is differentiable, and its gradient at the zero vector (or matrix) is 0, the
subgradient PyTorch picks (not the NaN that 0 / 0 would give). The formulas and their local
derivatives are in :class:`~gradwise.autograd.ops.reduce.VectorNorm` and
:class:`~gradwise.autograd.ops.linalg.SingularValueNorm`.
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import numpy as np

from gradwise.autograd.ops import decompositions as _decomp
from gradwise.autograd.ops import linalg as _linalg_ops
from gradwise.autograd.ops import reduce as _reduce
from gradwise.autograd.tensor import Tensor

__all__ = ["cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul",
           "matrix_norm", "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr",
           "slogdet", "solve", "svd", "svdvals", "vecdot", "vector_norm"]

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


# ---- matrix functions and decompositions -----------------------------------------------------
SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SvdResult = namedtuple("SvdResult", ["U", "S", "Vh"])
QrResult = namedtuple("QrResult", ["Q", "R"])


def inv(A: Any) -> Tensor:  # noqa: N803 - torch's argument name
    """The inverse of each square matrix, as ``torch.linalg.inv``; differentiable.

    Shape: (..., n, n) -> (..., n, n).

    Raises:
        TypeError: ``A`` is not floating point. ValueError: not square, or singular.
    """
    return _decomp.Inverse.apply(_tensor(A))


def det(A: Any) -> Tensor:  # noqa: N803
    """The determinant of each square matrix, as ``torch.linalg.det``; differentiable (also at
    singular matrices, through the adjugate). Shape: (..., n, n) -> (...)."""
    return _decomp.Determinant.apply(_tensor(A))


def slogdet(A: Any) -> SlogdetResult:  # noqa: N803
    """``(sign, logabsdet)`` of each square matrix, as ``torch.linalg.slogdet``: det = sign *
    exp(logabsdet); a singular matrix gives (0, -inf). ``logabsdet`` is differentiable
    (dL/dA = g A^-T). Shape: (..., n, n) -> two (...) tensors."""
    a = _tensor(A)
    _decomp.check_matrices("linalg.slogdet", a._data)
    sign, _ = np.linalg.slogdet(a._data)
    return SlogdetResult(Tensor._make(np.asarray(sign, dtype=a.dtype), False, None),
                         _decomp.LogAbsDeterminant.apply(a))


def solve(A: Any, B: Any, *, left: bool = True) -> Tensor:  # noqa: N803
    """The solution X of A X = B (``left=False``: X A = B), as ``torch.linalg.solve``;
    differentiable in A and B.

    Shape: A (..., n, n); B (..., n, k), or (n,) / (..., n) as a vector; batch axes broadcast.

    Raises:
        ValueError: A not square or singular; shapes that do not fit, naming both.
    """
    a, b = _tensor(A), _tensor(B)
    if left:
        return _decomp.Solve.apply(a, b)
    # X A = B  <=>  A^T X^T = B^T
    return _decomp.Solve.apply(a.mT, b.mT).mT


def cholesky(A: Any, *, upper: bool = False) -> Tensor:  # noqa: N803
    """The Cholesky factor L (A = L L^T; ``upper=True``: U = L^T, A = U^T U) of each symmetric
    positive-definite matrix, as ``torch.linalg.cholesky``; differentiable.

    Raises:
        ValueError: a matrix is not positive-definite (the message names the op and shape).
    """
    return _decomp.Cholesky.apply(_tensor(A), upper)


def eigvalsh(A: Any, UPLO: str = "L") -> Tensor:  # noqa: N803
    """The eigenvalues, ascending, of each symmetric matrix (read from its ``UPLO`` triangle),
    as ``torch.linalg.eigvalsh``; differentiable. Shape: (..., n, n) -> (..., n)."""
    _check_uplo(UPLO)
    return _decomp.EighValues.apply(_tensor(A), UPLO)


def eigh(A: Any, UPLO: str = "L") -> EighResult:  # noqa: N803
    """``(eigenvalues, eigenvectors)`` of each symmetric matrix, as ``torch.linalg.eigh``:
    A = V diag(L) V^T, eigenvalues ascending, eigenvectors as columns. Both are differentiable;
    eigenvectors are defined up to sign (and their gradient is ill-defined for repeated
    eigenvalues), as in PyTorch."""
    _check_uplo(UPLO)
    a = _tensor(A)
    return EighResult(_decomp.EighValues.apply(a, UPLO), _decomp.EighVectors.apply(a, UPLO))


def _check_uplo(uplo: Any) -> None:
    if uplo not in ("L", "U"):
        raise ValueError(f"linalg.eigh: UPLO must be 'L' or 'U', got {uplo!r}")


def svd(A: Any, full_matrices: bool = True) -> SvdResult:  # noqa: N803
    """``(U, S, Vh)`` with A = U diag(S) Vh, S descending, as ``torch.linalg.svd``.

    With ``full_matrices=False`` (the reduced SVD) all three are differentiable; with the
    default ``True`` U and Vh are square and, as in PyTorch, backward through them raises
    (use ``full_matrices=False``); S is differentiable either way.
    Shape: (..., m, n) -> U (..., m, m | k), S (..., k), Vh (..., n | k, n), k = min(m, n).
    """
    a = _tensor(A)
    if full_matrices and min(a.shape[-2:], default=0) != max(a.shape[-2:], default=0):
        _decomp.check_matrices("linalg.svd", a._data, square=False)
        u, _, vh = np.linalg.svd(a._data, full_matrices=True)
        if a.requires_grad:
            from gradwise.autograd.grad_mode import is_grad_enabled
            if is_grad_enabled():
                raise ValueError("linalg.svd: full_matrices=True is not differentiable for "
                                 f"non-square input {tuple(a.shape)} (as in PyTorch); pass "
                                 "full_matrices=False")
        return SvdResult(Tensor._make(u.astype(a.dtype), False, None), svdvals(a),
                         Tensor._make(vh.astype(a.dtype), False, None))
    return SvdResult(_decomp.SvdU.apply(a), _decomp.SvdS.apply(a), _decomp.SvdVh.apply(a))


def svdvals(A: Any) -> Tensor:  # noqa: N803
    """The singular values, descending, as ``torch.linalg.svdvals``; differentiable
    (dL/dA = U diag(g) Vh). Shape: (..., m, n) -> (..., min(m, n))."""
    return _decomp.SvdS.apply(_tensor(A))


def qr(A: Any, mode: str = "reduced") -> QrResult:  # noqa: N803
    """``(Q, R)`` with A = Q R, as ``torch.linalg.qr``; ``mode`` "reduced" (Q (..., m, k)),
    "complete" (Q (..., m, m)) or "r" (Q empty). Differentiable in mode "reduced" for m >= n.

    Raises:
        ValueError: another ``mode``.
    """
    a = _tensor(A)
    if mode == "reduced":
        return QrResult(_decomp.QrQ.apply(a), _decomp.QrR.apply(a))
    if mode not in ("complete", "r"):
        raise ValueError(f"linalg.qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    _decomp.check_matrices("linalg.qr", a._data, square=False)
    q_array, r_array = np.linalg.qr(a._data, mode="complete")
    if mode == "r":
        q_array = np.zeros((0,), dtype=a.dtype)
    return QrResult(Tensor._make(q_array.astype(a.dtype), False, None),
                    Tensor._make(r_array.astype(a.dtype), False, None))


def pinv(A: Any, *, atol: float | None = None, rtol: float | None = None,  # noqa: N803
         hermitian: bool = False) -> Tensor:
    """The Moore-Penrose pseudo-inverse, as ``torch.linalg.pinv`` (singular values at most
    ``max(atol, rtol * max(S))`` count as zero; default rtol ``max(m, n) * eps``);
    differentiable where the rank is constant. Shape: (..., m, n) -> (..., n, m)."""
    return _decomp.PseudoInverse.apply(_tensor(A), rtol, atol, hermitian)


def matrix_rank(A: Any, *, atol: float | None = None, rtol: float | None = None,  # noqa: N803
                hermitian: bool = False) -> Tensor:
    """The numerical rank of each matrix (an int64 tensor), as ``torch.linalg.matrix_rank``:
    the count of singular values above ``max(atol, rtol * max(S))``, default rtol
    ``max(m, n) * eps``. Shape: (..., m, n) -> (...)."""
    a = _tensor(A)
    _decomp.check_matrices("linalg.matrix_rank", a._data, square=False)
    s = np.linalg.svd(a._data, compute_uv=False)
    if atol is None and rtol is None:
        rtol = max(a.shape[-2:]) * np.finfo(a.dtype).eps
    cutoff = (0.0 if rtol is None else rtol) * (s.max(axis=-1, keepdims=True) if s.shape[-1]
                                                else 0)
    if atol is not None:
        cutoff = np.maximum(cutoff, atol)
    return Tensor._make(np.asarray((s > cutoff).sum(axis=-1), dtype=np.int64), False, None)


def matrix_power(A: Any, n: int) -> Tensor:  # noqa: N803
    """A^n for an integer n (negative: powers of the inverse), by repeated squaring with
    recorded matmuls, as ``torch.linalg.matrix_power``. n = 0 gives the identity."""
    a = _tensor(A)
    _decomp.check_matrices("linalg.matrix_power", a._data)
    if not isinstance(n, int | np.integer) or isinstance(n, bool):
        raise TypeError(f"linalg.matrix_power: n must be an int, got {n!r}")
    if n < 0:
        a, n = inv(a), -n
    result = None
    base = a
    while n:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    if result is None:
        eye = np.broadcast_to(np.eye(a.shape[-1], dtype=a.dtype), a.shape).copy()
        return Tensor._make(eye, False, None)
    return result


def multi_dot(tensors: Any) -> Tensor:
    """The product of a list of matrices (first may be 1-d, last may be 1-d), as
    ``torch.linalg.multi_dot``, left to right.

    Raises:
        ValueError: fewer than 2 tensors.
    """
    tensors = [_tensor(t) for t in tensors]
    if len(tensors) < 2:
        raise ValueError(f"linalg.multi_dot: expected at least 2 tensors, got {len(tensors)}")
    out = tensors[0]
    for t in tensors[1:]:
        out = out @ t
    return out


def matmul(input: Any, other: Any) -> Tensor:  # noqa: A002
    """``input @ other`` (``torch.linalg.matmul``)."""
    return _tensor(input) @ _tensor(other)


def vecdot(x: Any, y: Any, *, dim: int = -1) -> Tensor:
    """The dot product along ``dim`` with broadcasting, as ``torch.linalg.vecdot``."""
    return (_tensor(x) * _tensor(y)).sum(dim=dim)


def cross(input: Any, other: Any, *, dim: int = -1) -> Tensor:  # noqa: A002
    """The 3-vector cross product along ``dim``, as ``torch.linalg.cross``."""
    return _tensor(input).cross(_tensor(other), dim=dim)


def diagonal(A: Any, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:  # noqa: N803
    """``torch.linalg.diagonal``: the diagonal of the matrices over (dim1, dim2), defaulting to
    the last two axes."""
    return _tensor(A).diagonal(offset, dim1, dim2)
