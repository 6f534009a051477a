"""More of ``torch.Tensor``'s methods: diagonals and rolls, order statistics (median,
quantile, mode, kthvalue, cummax), scatter/index_add, windows (unfold), special functions
and the elementwise helpers (lerp, hypot, xlogy, copysign, fmod ...).

Like :mod:`tensor_methods`, a mixin whose methods attach.py sets on ``Tensor``, written with
recorded ops (so gradients come from the ops' own backward) or, where PyTorch has no gradient
(unique, bucketize, heaviside, nextafter), computed outside the graph. Each method says which
``torch.Tensor`` method it follows; ``gw.<name>(input, ...)`` calls it (autograd/namespace.py).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from gradwise import linalg
from gradwise.autograd import dtypes as _dtypes
from gradwise.autograd.functional import cat, promoted, stack, where
from gradwise.autograd.grad_mode import no_grad
from gradwise.autograd.ops import shape as _shape
from gradwise.autograd.ops.elementwise import Copysign, Hypot, Logaddexp, NanToZero
from gradwise.autograd.ops.reduce import EvenlyDistributed
from gradwise.autograd.ops.special import (
    CumProd,
    Digamma,
    Erf,
    Erfc,
    Erfinv,
    Fmod,
    Lgamma,
    LogCumSumExp,
    Logit,
    Sinc,
)
from gradwise.autograd.tensor import Tensor, tensor


class MinMax(NamedTuple):
    """``(min, max)`` of ``aminmax`` (torch.return_types.aminmax)."""

    min: Tensor
    max: Tensor


class ValuesIndices(NamedTuple):
    """``(values, indices)`` of median/mode/kthvalue/cummax/cummin (torch.return_types)."""

    values: Tensor
    indices: Tensor


def _tensor(value: Any, like: Tensor | None = None) -> Tensor:
    """A Tensor for ``value`` (a number takes ``like``'s dtype when ``like`` is floating)."""
    if isinstance(value, Tensor):
        return value
    if like is not None and np.ndim(value) == 0 and like._data.dtype.kind == "f":
        return Tensor._make(np.asarray(value, dtype=like._data.dtype), False, None)
    return tensor(value)


def _raw(value: Any) -> np.ndarray:
    return value._data if hasattr(value, "_data") else np.asarray(value)


def _make(array: Any) -> Tensor:
    return Tensor._make(np.asarray(array), False, None)


def _dim(op: str, dim: int, ndim: int) -> int:
    if not isinstance(dim, int | np.integer) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim} is out of range for a {ndim}-d tensor")
    return int(dim) % max(ndim, 1)


def same_source_dtype(self: Tensor, source: Any, message: str) -> None:
    """Refuse a Tensor ``source`` whose dtype differs from ``self``'s, as torch's scatter,
    index_add, index_copy, put and masked_scatter do (they never promote); ``message`` is
    torch's text with ``{self}`` and ``{source}`` for the dtype names (Float, Double...).

    Raises:
        RuntimeError: the dtypes differ.
    """
    from gradwise.autograd.tensor import Tensor, _dtype_name
    if isinstance(source, Tensor) and source._data.dtype != self._data.dtype:
        raise RuntimeError(message.format(self=_dtype_name(self._data.dtype),
                                          source=_dtype_name(source._data.dtype)))


_INDEX_COPY_DTYPES = ("index_copy_(): self and source expected to have the same dtype, but got "
                      "(self) {self} and (source) {source}")
_SCATTER_DTYPES = ("{op}: scatter(): Expected self.dtype to be equal to src.dtype (self {self}, "
                   "src {source})")


def _floating(op: str, t: Tensor) -> None:
    if t._data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point tensor, got {t._data.dtype}")


def _promoted(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    first, second = promoted(a, b)
    return first, second


def _as_float(t: Tensor) -> Tensor:
    """Integer and bool tensors as float32 (PyTorch's result dtype for float-valued ops)."""
    return t if t._data.dtype.kind == "f" else t.to(np.float32)


class TensorExtras:
    """The methods in this file, mixed into ``gradwise.Tensor``."""

    __slots__: tuple[str, ...] = ()
    # set by Tensor.__init__; declared for the type checker, which meets this class first
    _ctx: Any
    requires_grad: bool
    _requires_grad: bool

    # ---- diagonals, rolls, tiles ----------------------------------------------------------------
    def roll(self: Tensor, shifts: Any, dims: Any = None) -> Tensor:
        """Shift entries cyclically by ``shifts`` along ``dims`` (None: the flattened tensor,
        shape kept), as ``torch.roll``; recorded.

        Raises:
            ValueError: ``shifts`` and ``dims`` have different lengths.
        """
        if dims is None:
            if not isinstance(shifts, int | np.integer):
                raise ValueError(f"roll: with dims=None shifts must be an int, got {shifts!r}")
            return self.reshape(-1).roll(int(shifts), 0).reshape(self.shape)
        shifts_t = (shifts,) if isinstance(shifts, int | np.integer) else tuple(shifts)
        dims_t = (dims,) if isinstance(dims, int | np.integer) else tuple(dims)
        if len(shifts_t) != len(dims_t):
            raise ValueError(f"roll: shifts {shifts!r} and dims {dims!r} differ in length")
        out = self
        for shift, dim in zip(shifts_t, dims_t, strict=True):
            d = _dim("roll", dim, self.ndim)
            n = self.shape[d]
            if n:
                order = (np.arange(n) - int(shift)) % n
                out = out[(slice(None),) * d + (order,)]
        return out

    def diagonal(self: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
        """The diagonal ``offset`` over (dim1, dim2), appended as the last dim, as
        ``torch.diagonal``; recorded.

        Raises:
            ValueError: dim1 and dim2 are the same dim.
        """
        d1, d2 = _dim("diagonal", dim1, self.ndim), _dim("diagonal", dim2, self.ndim)
        if d1 == d2:
            raise ValueError(f"diagonal: dim1 and dim2 are both {d1}")
        from gradwise.autograd.ops.shape import Diagonal

        return Diagonal.apply(self, int(offset), d1, d2)

    def diag(self: Tensor, diagonal: int = 0) -> Tensor:
        """1-d input: a square matrix with it on diagonal ``diagonal``; 2-d input: that
        diagonal as a vector; as ``torch.diag``; recorded.

        Raises:
            ValueError: input is neither 1-d nor 2-d.
        """
        if self.ndim == 2:
            return self.diagonal(diagonal, 0, 1).clone()  # torch.diag copies; diagonal views
        if self.ndim != 1:
            raise ValueError(f"diag: expected a 1-d or 2-d tensor, got shape {tuple(self.shape)}")
        return self.diag_embed(diagonal)

    def diag_embed(self: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
        """Square matrices with the last dim on diagonal ``offset``, placed at dims (dim1,
        dim2) of the result, as ``torch.diag_embed``; recorded (a gather from the values
        and one zero)."""
        n = self.shape[-1] if self.ndim else 1
        size = n + abs(offset)
        batch = self.shape[:-1]
        flat = self.reshape(-1, n)  # (B, n)
        padded = cat([flat, flat.new_zeros((flat.shape[0], 1))], dim=1)  # (B, n + 1): last = 0
        index = np.full((size, size), n, dtype=np.int64)
        i = np.arange(n)
        index[i + max(-offset, 0), i + max(offset, 0)] = i
        out = padded[:, index].reshape(*batch, size, size)
        ndim = out.ndim
        d1, d2 = _dim("diag_embed", dim1, ndim), _dim("diag_embed", dim2, ndim)
        if d1 == d2:
            raise ValueError(f"diag_embed: dim1 and dim2 are both {d1}")
        return out.movedim((ndim - 2, ndim - 1), (d1, d2))

    def trace(self: Tensor) -> Tensor:
        """The sum of the main diagonal of a matrix, as ``torch.trace``; recorded.

        Raises:
            ValueError: input is not 2-d.
        """
        if self.ndim != 2:
            raise ValueError(f"trace: expected a 2-d tensor, got shape {tuple(self.shape)}")
        return self.diagonal().sum()

    def tile(self: Tensor, *dims: Any) -> Tensor:
        """Repeat the tensor ``dims`` times along each dim (fewer dims than the tensor: 1s in
        front), as ``torch.tile``; recorded."""
        reps = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], tuple | list) else dims
        reps = tuple(int(r) for r in reps)
        if len(reps) < self.ndim:
            reps = (1,) * (self.ndim - len(reps)) + reps
        return self.repeat(*reps)

    def repeat_interleave(self: Tensor, repeats: Any, dim: int | None = None, *,
                          output_size: int | None = None) -> Tensor:
        """Each entry repeated ``repeats`` times (an int, or one count per entry) along
        ``dim`` (None: the flattened tensor), as ``torch.repeat_interleave``; recorded.

        Raises:
            ValueError: ``repeats`` has the wrong length or a negative count.
        """
        source = self.reshape(-1) if dim is None else self
        d = 0 if dim is None else _dim("repeat_interleave", dim, self.ndim)
        n = source.shape[d]
        counts = np.asarray(_raw(repeats)).reshape(-1)
        if counts.size == 1:
            counts = np.full(n, int(counts[0]))
        if counts.size != n or (counts.size and counts.min() < 0):
            raise ValueError(f"repeat_interleave: repeats must be non-negative, one per entry "
                             f"({n}) or a single int, got {counts.size} value(s)")
        order = np.repeat(np.arange(n), counts)
        return source[(slice(None),) * d + (order,)]

    def fliplr(self: Tensor) -> Tensor:
        """Reverse dim 1 (``torch.fliplr``); needs at least 2 dims."""
        if self.ndim < 2:
            raise ValueError(f"fliplr: needs at least 2 dims, got shape {tuple(self.shape)}")
        return self.flip(1)

    def flipud(self: Tensor) -> Tensor:
        """Reverse dim 0 (``torch.flipud``); needs at least 1 dim."""
        if self.ndim < 1:
            raise ValueError("flipud: needs at least 1 dim, got a 0-d tensor")
        return self.flip(0)

    def rot90(self: Tensor, k: int = 1, dims: Any = (0, 1)) -> Tensor:
        """Rotate by 90 degrees ``k`` times in the plane ``dims``, from the first towards the
        second, as ``torch.rot90``; recorded.

        Raises:
            ValueError: ``dims`` is not two different dims.
        """
        dims = tuple(dims)
        if len(dims) != 2:
            raise ValueError(f"rot90: dims must be two dims, got {dims!r}")
        d0, d1 = _dim("rot90", dims[0], self.ndim), _dim("rot90", dims[1], self.ndim)
        if d0 == d1:
            raise ValueError(f"rot90: dims must differ, got {dims!r}")
        k %= 4
        if k == 1:
            return self.flip(d1).transpose(d0, d1)
        if k == 2:
            return self.flip(d0, d1)
        if k == 3:
            return self.transpose(d0, d1).flip(d1)
        return self.clone()  # torch's rot90 returns new memory for every k

    def unfold(self: Tensor, dimension: int, size: int, step: int) -> Tensor:
        """Every window of ``size`` entries, ``step`` apart, along ``dimension``: that dim
        becomes the window count and a new last dim of ``size`` holds each window, as
        ``torch.Tensor.unfold``: a view (writes through it reach this tensor); a 0-d tensor
        gives shape (size,); recorded.

        Raises:
            RuntimeError: ``size`` exceeds the dim or is negative, or ``step`` < 1 (as torch).
        """
        d = _dim("unfold", dimension, self.ndim)
        n = self.shape[d] if self.ndim else 1
        # torch's checks, messages and order (aten TensorShape.cpp unfold)
        if size > n:
            raise RuntimeError(f"unfold: maximum size for tensor at dimension {d} is {n} but "
                               f"size is {size}")
        if size < 0:
            raise RuntimeError(f"unfold: size is {size} but must be >= 0")
        if step < 1:
            raise RuntimeError(f"unfold: step is {step} but must be > 0")
        return _shape.Unfold.apply(self, d, size, step)

    # ---- order statistics -----------------------------------------------------------------------
    def _reduce_dim(self: Tensor, op: str, dim: int | None) -> tuple[Tensor, int]:
        """The tensor and axis an order statistic works on (dim None: the flattened tensor)."""
        if dim is None:
            return self.reshape(-1), 0
        return (self.reshape(1), 0) if self.ndim == 0 else (self, _dim(op, dim, self.ndim))

    def _pick(self: Tensor, op: str, dim: int, keepdim: bool, rank: np.ndarray | int,
              ) -> ValuesIndices:
        """The entry of sorted rank ``rank`` along ``dim`` (NaN sorted last) and its index."""
        indices = np.argsort(self._data, axis=dim, kind="stable")
        rank = np.asarray(rank)
        if rank.ndim == 0:
            shape = list(indices.shape)
            shape[dim] = 1
            rank = np.full(shape, int(rank))
        chosen = np.take_along_axis(indices, rank, axis=dim)  # (..., 1, ...)
        values = self._take_along_dim_raw(chosen, dim)
        if not keepdim:
            values = values.squeeze(dim)
            chosen = chosen.squeeze(dim)
        return ValuesIndices(values, _make(chosen.astype(np.int64)))

    def _take_along_dim_raw(self: Tensor, indices: np.ndarray, dim: int) -> Tensor:
        grids = list(np.ix_(*[np.arange(n) for n in indices.shape]))
        grids[dim] = indices
        return self[tuple(grids)]

    def median(self: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:
        """The lower median (the entry of rank (n - 1) // 2, no averaging), as
        ``torch.median``: without ``dim`` a 0-d tensor, with ``dim`` ``(values, indices)``.
        NaN propagates (a slice holding NaN gives NaN). The gradient goes to the entry picked;
        without ``dim`` it is split evenly among the entries equal to the median (the NaNs
        when it is NaN), as torch's ``evenly_distribute_backward``.

        Raises:
            IndexError: ``dim`` out of range. ValueError: empty input without ``dim``.
        """
        source, d = self._reduce_dim("median", dim)
        n = source.shape[d]
        if n == 0:
            raise ValueError(f"median: cannot take the median of an empty dim (shape "
                             f"{tuple(self.shape)})")
        rank = np.asarray((n - 1) // 2)
        if source._data.dtype.kind == "f":
            has_nan = np.isnan(source._data).any(axis=d, keepdims=True)
            nan_rank = (~np.isnan(source._data)).sum(axis=d, keepdims=True)  # first NaN
            rank = np.where(has_nan, nan_rank, rank)
        result = source._pick("median", d, keepdim and dim is not None, rank)
        if dim is None:  # torch: the gradient split evenly among the entries equal to it
            return EvenlyDistributed.apply(self, result.values._data)
        return result

    def nanmedian(self: Tensor, dim: int | None = None, keepdim: bool = False) -> Any:
        """The lower median of the non-NaN entries, as ``torch.nanmedian`` (all NaN: NaN)."""
        source, d = self._reduce_dim("nanmedian", dim)
        valid = (~np.isnan(source._data)).sum(axis=d, keepdims=True) if (
            source._data.dtype.kind == "f") else np.full((1,) * source.ndim, source.shape[d])
        if source.shape[d] == 0:
            raise ValueError("nanmedian: cannot take the median of an empty dim")
        rank = np.where(valid > 0, (valid - 1) // 2, 0)
        result = source._pick("nanmedian", d, keepdim and dim is not None, rank)
        return result.values.reshape(()) if dim is None else result

    def kthvalue(self: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> ValuesIndices:
        """The ``k``-th smallest entry (1-based) along ``dim`` and its index, as
        ``torch.kthvalue``; recorded.

        Raises:
            IndexError: ``k`` is not in 1..n.
        """
        source, d = self._reduce_dim("kthvalue", dim)
        n = source.shape[d]
        if not 1 <= k <= n:
            raise IndexError(f"kthvalue: k={k} out of range for a dim of size {n}")
        return source._pick("kthvalue", d, keepdim, k - 1)

    def mode(self: Tensor, dim: int = -1, keepdim: bool = False) -> ValuesIndices:
        """The most frequent value along ``dim`` (the smallest among equally frequent ones)
        and the index of its last occurrence, as ``torch.mode`` on the CPU; recorded."""
        source, d = self._reduce_dim("mode", dim)
        data = np.moveaxis(source._data, d, -1)
        flat = data.reshape(-1, data.shape[-1])
        best = np.empty(flat.shape[0], dtype=np.int64)
        for row, values in enumerate(flat):
            # NaNs count as distinct values, each once, sorted last (torch's run scan, where
            # NaN != NaN); a NaN chosen (all counts 1 and no number) is the first NaN
            uniques, counts = np.unique(values, return_counts=True, equal_nan=False)
            value = uniques[np.argmax(counts)]  # the first (smallest) of the most frequent
            hits = np.isnan(values) if value != value else values == value
            best[row] = np.flatnonzero(hits)[0 if value != value else -1]
        chosen = np.moveaxis(best.reshape(*data.shape[:-1], 1), -1, d)
        picked = source._take_along_dim_raw(chosen, d)
        if not keepdim:
            picked, chosen = picked.squeeze(d), chosen.squeeze(d)
        return ValuesIndices(picked, _make(chosen))

    def quantile(self: Tensor, q: Any, dim: int | None = None, keepdim: bool = False, *,
                 interpolation: str = "linear") -> Tensor:
        """The ``q``-quantiles (a number or a 1-d tensor in [0, 1]) along ``dim`` (None: of all
        values), as ``torch.quantile``: linear interpolation between the order statistics by
        default ("lower", "higher", "nearest", "midpoint" too). A slice holding NaN gives NaN.
        A 1-d ``q`` adds a leading dim. Recorded.

        Raises:
            TypeError: non-floating input. ValueError: q outside [0, 1], unknown
            interpolation, empty input.
        """
        return self._quantile("quantile", q, dim, keepdim, interpolation, ignore_nan=False)

    def nanquantile(self: Tensor, q: Any, dim: int | None = None, keepdim: bool = False, *,
                    interpolation: str = "linear") -> Tensor:
        """:meth:`quantile` over the non-NaN values (a slice of only NaN gives NaN), as
        ``torch.nanquantile``."""
        return self._quantile("nanquantile", q, dim, keepdim, interpolation, ignore_nan=True)

    def _quantile(self: Tensor, op: str, q: Any, dim: int | None, keepdim: bool,
                  interpolation: str, ignore_nan: bool) -> Tensor:
        _floating(op, self)
        if interpolation not in ("linear", "lower", "higher", "nearest", "midpoint"):
            raise ValueError(f"{op}: unknown interpolation {interpolation!r}")
        qs = np.asarray(_raw(q), dtype=np.float64)
        if qs.ndim > 1 or (qs.size and (qs.min() < 0 or qs.max() > 1)) or np.isnan(qs).any():
            raise ValueError(f"{op}: q must be a number or a 1-d tensor of values in [0, 1], "
                             f"got {qs.tolist()}")
        source, d = self._reduce_dim(op, dim)
        if source.shape[d] == 0:
            raise ValueError(f"{op}: input of shape {tuple(self.shape)} is empty along dim")
        data = source._data
        order = np.argsort(data, axis=d, kind="stable")  # NaN last
        ordered = source._take_along_dim_raw(order, d)
        nan = np.isnan(data)
        valid = (~nan).sum(axis=d, keepdims=True)
        if not ignore_nan:
            valid = np.where(nan.any(axis=d, keepdims=True), source.shape[d], valid)
        outs = []
        for value in qs.reshape(-1):
            position = value * (np.maximum(valid, 1) - 1)
            low = np.floor(position).astype(np.int64)
            high = np.ceil(position).astype(np.int64)
            fraction = position - low
            if interpolation == "lower":
                high, fraction = low, np.zeros_like(fraction)
            elif interpolation == "higher":
                low, fraction = high, np.zeros_like(fraction)
            elif interpolation == "nearest":
                # round half to even, as torch (and NumPy) do
                low = high = np.round(position).astype(np.int64)
                fraction = np.zeros_like(fraction)
            elif interpolation == "midpoint":
                fraction = np.where(high > low, 0.5, 0.0)
            if not ignore_nan and nan.any():
                # a slice holding NaN takes the last sorted entry (a NaN: the sort puts them
                # last), so the NaN result's gradient reaches that NaN's position, as torch;
                # an all-NaN slice of nanquantile reads position 0, a NaN, likewise
                has_nan = nan.any(axis=d, keepdims=True)
                last = source.shape[d] - 1
                low, high = np.where(has_nan, last, low), np.where(has_nan, last, high)
                fraction = np.where(has_nan, 0, fraction)
            lo_values = ordered._take_along_dim_raw(low, d)
            hi_values = ordered._take_along_dim_raw(high, d)
            weight = _make(fraction.astype(data.dtype))
            out = lo_values + (hi_values - lo_values) * weight
            if not (keepdim and dim is not None):
                out = out.squeeze(d)
            if keepdim and dim is None:
                out = out.reshape((1,) * self.ndim)
            outs.append(out)
        if qs.ndim == 0:
            return outs[0]
        return stack(outs, 0)

    def _cumulative_extreme(self: Tensor, op: str, dim: int, largest: bool) -> ValuesIndices:
        d = _dim(op, dim, self.ndim)
        if self.ndim == 0 or self._data.size == 0:
            # a 0-d tensor is its own running extreme; an empty one gives empty results (the
            # scan below would read element 0 of an empty axis), as torch
            return ValuesIndices(self[...], _make(np.zeros(self.shape, np.int64)))
        data = np.moveaxis(self._data, d, -1)
        n = data.shape[-1]
        indices = np.zeros(data.shape, dtype=np.int64)
        best = data[..., 0].copy()
        best_index = np.zeros(data.shape[:-1], dtype=np.int64)
        for i in range(n):  # a scan: n steps over the other dims at once
            value = data[..., i]
            better = (value >= best) if largest else (value <= best)
            if data.dtype.kind == "f":
                better = better | np.isnan(value)
                better &= ~np.isnan(best) | np.isnan(value)
            best = np.where(better, value, best)
            best_index = np.where(better, i, best_index)
            indices[..., i] = best_index
        indices = np.moveaxis(indices, -1, d)
        return ValuesIndices(self._take_along_dim_raw(indices, d), _make(indices))

    def cummax(self: Tensor, dim: int) -> ValuesIndices:
        """Running maximum along ``dim`` and the index where it was reached (the latest of
        equal values; NaN propagates), as ``torch.cummax``; values recorded."""
        return self._cumulative_extreme("cummax", dim, largest=True)

    def cummin(self: Tensor, dim: int) -> ValuesIndices:
        """Running minimum along ``dim`` and its index, as ``torch.cummin``."""
        return self._cumulative_extreme("cummin", dim, largest=False)

    def logcumsumexp(self: Tensor, dim: int) -> Tensor:
        """log(cumsum(exp(x))) along ``dim`` without overflow, as ``torch.logcumsumexp``: one
        log-add-exp at a time, in the input's dtype as torch; its derivatives are torch's
        formula (``ops.special.LogCumSumExp``). Recorded.
        """
        _floating("logcumsumexp", self)
        d = _dim("logcumsumexp", dim, self.ndim)
        return LogCumSumExp.apply(self, d)

    # ---- scatter and friends --------------------------------------------------------------------
    def scatter(self: Tensor, dim: int, index: Any, src: Any = None, *, value: Any = None,
                reduce: str | None = None) -> Tensor:
        """A copy with ``src`` (a tensor, or the number ``value``) written at ``index`` along
        ``dim``, as ``torch.scatter``; ``reduce`` "add"/"multiply" combine instead. Recorded.

        Raises:
            TypeError: both or neither of src/value; a non-integer index. ValueError /
            IndexError: shapes or indices that do not fit (naming them).
        """
        # at first use, as before: keeps import gradwise fast
        from gradwise.autograd.ops.scatter import Scatter
        if (src is None) == (value is None):
            raise TypeError("scatter: give exactly one of src (a tensor or number) and value")
        if src is None:
            src = value
        d = _dim("scatter", dim, self.ndim)
        same_source_dtype(self, src, _SCATTER_DTYPES.replace("{op}", "scatter"))
        source = src if hasattr(src, "_data") else np.asarray(src, dtype=self._data.dtype)
        reductions = {None: None, "add": "sum", "multiply": "prod"}
        if reduce not in reductions:
            raise ValueError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
        return Scatter.apply(self, source, np.asarray(_raw(index)), d, reductions[reduce],
                             True, "scatter")

    def scatter_add(self: Tensor, dim: int, index: Any, src: Any) -> Tensor:
        """A copy with ``src`` added at ``index`` along ``dim`` (duplicates accumulate), as
        ``torch.scatter_add``; recorded."""
        # at first use, as before: keeps import gradwise fast
        from gradwise.autograd.ops.scatter import Scatter
        d = _dim("scatter_add", dim, self.ndim)
        same_source_dtype(self, src, _SCATTER_DTYPES.replace("{op}", "scatter_add"))
        return Scatter.apply(self, src, np.asarray(_raw(index)), d, "sum", True, "scatter_add")

    def scatter_reduce(self: Tensor, dim: int, index: Any, src: Any, reduce: str, *,
                       include_self: bool = True) -> Tensor:
        """A copy with ``src`` reduced into ``index`` along ``dim`` by ``reduce`` ("sum",
        "prod", "mean", "amax", "amin"), counting the original entry when ``include_self``,
        as ``torch.scatter_reduce``; recorded (amax/amin split the gradient among ties)."""
        # at first use, as before: keeps import gradwise fast
        from gradwise.autograd.ops.scatter import REDUCTIONS, Scatter
        if reduce not in REDUCTIONS:
            raise ValueError(f"scatter_reduce: reduce must be one of {REDUCTIONS}, got "
                             f"{reduce!r}")
        d = _dim("scatter_reduce", dim, self.ndim)
        same_source_dtype(self, src, _SCATTER_DTYPES.replace("{op}", "scatter_reduce"))
        return Scatter.apply(self, src, np.asarray(_raw(index)), d, reduce, bool(include_self),
                             "scatter_reduce")

    def _assign_(self: Tensor, op: str, compute: Any, *operands: Any) -> Tensor:
        """Run an in-place op given its out-of-place form ``compute(tensor) -> Tensor``:
        recorded (history rebased, see ``Tensor._rebase``) when grad is on and self or one of
        ``operands`` requires grad, else computed detached and written into this tensor's array.
        """
        if self._records_inplace(op, *operands):
            return self._rebase(op, compute)
        with no_grad():
            result = compute(self.detach())
        self._data[...] = result._data
        return self._bump()

    def scatter_(self: Tensor, dim: int, index: Any, src: Any = None, *, value: Any = None,
                 reduce: str | None = None) -> Tensor:
        """In-place :meth:`scatter` (recorded as ``add_`` is)."""
        return self._assign_("scatter_", lambda t: t.scatter(dim, index, src, value=value,
                                                            reduce=reduce), src)

    def scatter_add_(self: Tensor, dim: int, index: Any, src: Any) -> Tensor:
        """In-place :meth:`scatter_add` (recorded as ``add_`` is)."""
        return self._assign_("scatter_add_", lambda t: t.scatter_add(dim, index, src), src)

    def scatter_reduce_(self: Tensor, dim: int, index: Any, src: Any, reduce: str, *,
                        include_self: bool = True) -> Tensor:
        """In-place :meth:`scatter_reduce` (recorded as ``add_`` is)."""
        return self._assign_("scatter_reduce_", lambda t: t.scatter_reduce(
            dim, index, src, reduce, include_self=include_self), src)

    def index_add(self: Tensor, dim: int, index: Any, source: Any, *, alpha: float = 1
                  ) -> Tensor:
        """A copy with ``alpha * source[..., i, ...]`` added at ``index[i]`` along ``dim``
        (duplicates accumulate), as ``torch.index_add``; recorded.

        Raises:
            ValueError: ``index`` is not 1-d, or ``source`` does not fit.
        """
        d = _dim("index_add", dim, self.ndim)
        index = np.asarray(_raw(index))
        same_source_dtype(self, source, "index_add_(): self ({self}) and source ({source}) "
                                        "must have the same scalar type")
        source = _tensor(source, self)
        if index.ndim > 1 or (source.ndim and index.size != source.shape[d]) or (
                source.ndim != self.ndim):
            raise ValueError(f"index_add: index of shape {index.shape} and source of shape "
                             f"{tuple(source.shape)} do not fit a tensor of shape "
                             f"{tuple(self.shape)} along dim {d}")
        shape = [1] * self.ndim
        shape[d] = index.size
        full_index = np.broadcast_to(index.reshape(shape), source.shape)
        scaled = source * alpha if alpha != 1 else source
        return self.scatter_add(d, full_index, scaled)

    def index_add_(self: Tensor, dim: int, index: Any, source: Any, *, alpha: float = 1
                   ) -> Tensor:
        """In-place :meth:`index_add` (recorded as ``add_`` is)."""
        return self._assign_("index_add_", lambda t: t.index_add(dim, index, source,
                                                                alpha=alpha), source)

    def masked_select(self: Tensor, mask: Any) -> Tensor:
        """The entries where the bool ``mask`` (broadcast with the tensor) holds, as a 1-d
        tensor, as ``torch.masked_select``; recorded.

        Raises:
            TypeError: ``mask`` is not bool.
        """
        mask = np.asarray(_raw(mask))
        if mask.dtype != np.bool_:
            raise TypeError(f"masked_select: mask must be bool, got {mask.dtype}")
        shape = np.broadcast_shapes(self.shape, mask.shape)
        source = self if tuple(self.shape) == shape else self.expand(*shape)
        return source[np.broadcast_to(mask, shape)]

    def take_along_dim(self: Tensor, indices: Any, dim: int | None = None) -> Tensor:
        """Entries at ``indices`` along ``dim`` (broadcasting the other dims; None: of the
        flattened tensor), as ``torch.take_along_dim``; recorded."""
        indices = np.asarray(_raw(indices))
        if indices.dtype.kind not in "iu":
            raise TypeError(f"take_along_dim: indices must be integers, got {indices.dtype}")
        if dim is None:
            return self.reshape(-1)[indices.reshape(-1)]
        d = _dim("take_along_dim", dim, self.ndim)
        if indices.ndim != self.ndim:
            raise ValueError(f"take_along_dim: indices of shape {indices.shape} and input of "
                             f"shape {tuple(self.shape)} differ in dims")
        shape = list(np.broadcast_shapes(
            tuple(n for i, n in enumerate(self.shape) if i != d),
            tuple(n for i, n in enumerate(indices.shape) if i != d)))
        source_shape = shape[:d] + [self.shape[d]] + shape[d:]
        index_shape = shape[:d] + [indices.shape[d]] + shape[d:]
        source = self if tuple(self.shape) == tuple(source_shape) else self.expand(
            *source_shape)
        return source._take_along_dim_raw(np.broadcast_to(indices, index_shape), d)

    # ---- elementwise ----------------------------------------------------------------------------
    def lerp(self: Tensor, end: Any, weight: Any) -> Tensor:
        """``self + weight * (end - self)``, as ``torch.lerp``; recorded."""
        end = _tensor(end, self)
        return self + _tensor(weight, self) * (end - self)

    def hypot(self: Tensor, other: Any) -> Tensor:
        """sqrt(self^2 + other^2) elementwise, as ``torch.hypot``: no overflow, inf where
        either is infinite (even beside NaN); recorded (:class:`~gradwise.autograd.ops.
        elementwise.Hypot`)."""
        a, b = _promoted(self, other)
        _floating("hypot", a)
        return Hypot.apply(a, b)

    def logaddexp(self: Tensor, other: Any) -> Tensor:
        """log(exp(self) + exp(other)) without overflow, as ``torch.logaddexp``; recorded
        (:class:`~gradwise.autograd.ops.elementwise.Logaddexp`: torch's derivatives, so
        logaddexp(inf, 1) has d/da 1; two -inf give -inf, with a zero gradient)."""
        a, b = _promoted(self, other)
        _floating("logaddexp", a)
        return Logaddexp.apply(a, b)

    def erfinv(self: Tensor) -> Tensor:
        """The inverse error function, as ``torch.erfinv``; recorded."""
        return Erfinv.apply(_as_float(self))

    def lgamma(self: Tensor) -> Tensor:
        """log |Gamma(x)|, as ``torch.lgamma``; recorded (derivative: digamma)."""
        return Lgamma.apply(_as_float(self))

    def digamma(self: Tensor) -> Tensor:
        """The digamma function Gamma'/Gamma, as ``torch.digamma``; recorded."""
        return Digamma.apply(_as_float(self))

    def erf(self: Tensor) -> Tensor:
        """The error function, as ``torch.erf``; recorded."""
        return Erf.apply(_as_float(self))

    def erfc(self: Tensor) -> Tensor:
        """1 - erf(x), as ``torch.erfc``; recorded."""
        return Erfc.apply(_as_float(self))

    def xlogy(self: Tensor, other: Any) -> Tensor:
        """``self * log(other)``, 0 where self is 0 (unless other is NaN, also for a negative
        other), as ``torch.xlogy``; recorded: d/dself = log(other), d/dother = self / other.
        Where self is 0 and other is 0, +inf or negative the gradients are 0 (PyTorch gives
        -inf/inf/NaN there: PORTING.md)."""
        x, y = _promoted(self, other)
        x, y = _as_float(x), _as_float(y)
        # 0 * log(0), 0 * log(inf) and 0 * log(negative) are NaN in IEEE arithmetic but 0 by
        # definition here (torch.xlogy(0., -1.) is 0); only a NaN other gives NaN
        undefined = (x._data == 0) & ((y._data <= 0) | (y._data == np.inf))
        safe_y = where(undefined, np.asarray(1, dtype=y.dtype), y)
        return x * safe_y.log()

    def sinc(self: Tensor) -> Tensor:
        """sin(pi x) / (pi x), 1 at 0, as ``torch.sinc``; recorded (:class:`~gradwise.
        autograd.ops.special.Sinc`: derivative 0 where pi x^2 underflows, as torch)."""
        return Sinc.apply(_as_float(self))

    def heaviside(self: Tensor, values: Any) -> Tensor:
        """0 below 0, 1 above, ``values`` at 0, as ``torch.heaviside`` (not differentiable
        there either). Raises TypeError for mixed dtypes, as torch does."""
        values = _tensor(values)
        if values._data.dtype != self._data.dtype:
            raise TypeError(f"heaviside: input ({self._data.dtype}) and values "
                            f"({values._data.dtype}) must have the same dtype")
        return _make(np.heaviside(self._data, values._data).astype(self._data.dtype))

    def copysign(self: Tensor, other: Any) -> Tensor:
        """|self| with the sign of ``other`` (signed zeros count), as ``torch.copysign``;
        float result; recorded (:class:`~gradwise.autograd.ops.elementwise.Copysign`: gradient
        +-1 for self, 0 at self == 0, and zeros for other, as PyTorch)."""
        a, b = _promoted(self, other)
        a = _as_float(a)
        if b._data.dtype != a._data.dtype:
            b = b.to(a._data.dtype)
        return Copysign.apply(a, b)

    def nextafter(self: Tensor, other: Any) -> Tensor:
        """The next floating-point value after self towards ``other``, as
        ``torch.nextafter`` (no gradient)."""
        a, b = _promoted(self, other)
        _floating("nextafter", a)
        return _make(np.nextafter(a._data, b._data))

    def frac(self: Tensor) -> Tensor:
        """self - trunc(self), with self's sign, as ``torch.frac``; gradient 1."""
        _floating("frac", self)
        return self - self.trunc()  # trunc is recorded with gradient 0 (and exports)

    def fmod(self: Tensor, other: Any) -> Tensor:
        """The remainder with the dividend's sign (C's fmod), as ``torch.fmod``; recorded
        (``remainder`` / ``%`` keep the divisor's sign)."""
        return Fmod.apply(*_promoted(self, other))

    def nan_to_num(self: Tensor, nan: float = 0.0, posinf: float | None = None,
                   neginf: float | None = None) -> Tensor:
        """NaN, +inf and -inf replaced (default: 0 and the dtype's largest/lowest finite
        value), as ``torch.nan_to_num``; the gradient passes where nothing was replaced."""
        data = self._data
        if data.dtype.kind != "f":
            return self[...]
        info = np.finfo(data.dtype)
        replaced = np.nan_to_num(data, nan=nan, posinf=info.max if posinf is None else posinf,
                                 neginf=info.min if neginf is None else neginf)
        return where(np.isfinite(data), self, replaced.astype(data.dtype))

    def nan_to_num_(self: Tensor, nan: float = 0.0, posinf: float | None = None,
                    neginf: float | None = None) -> Tensor:
        """In-place :meth:`nan_to_num` (recorded as ``add_`` is)."""
        return self._assign_("nan_to_num_", lambda t: t.nan_to_num(nan, posinf, neginf))

    # ---- linear algebra as methods --------------------------------------------------------------
    def det(self: Tensor) -> Tensor:
        """``torch.det``: see ``gw.linalg.det``."""
        return linalg.det(self)

    def logdet(self: Tensor) -> Tensor:
        """log(det) (NaN for a negative determinant, -inf for a singular matrix), as
        ``torch.logdet``; recorded."""
        sign, logabsdet = linalg.slogdet(self)
        return where(sign._data < 0, np.asarray(np.nan, dtype=self._data.dtype), logabsdet)

    def slogdet(self: Tensor) -> Any:
        """``torch.slogdet``: see ``gw.linalg.slogdet``."""
        return linalg.slogdet(self)

    def inverse(self: Tensor) -> Tensor:
        """``torch.inverse``: see ``gw.linalg.inv``."""
        return linalg.inv(self)

    def pinverse(self: Tensor, rcond: float = 1e-15) -> Tensor:
        """``torch.pinverse``: ``gw.linalg.pinv`` with relative cutoff ``rcond``."""
        return linalg.pinv(self, rtol=rcond)

    def cholesky(self: Tensor, upper: bool = False) -> Tensor:
        """``torch.cholesky``: see ``gw.linalg.cholesky``."""
        return linalg.cholesky(self, upper=upper)

    def outer(self: Tensor, vec2: Any) -> Tensor:
        """Outer product of two 1-d tensors, as ``torch.outer``; recorded."""
        other = _tensor(vec2, self)
        if self.ndim != 1 or other.ndim != 1:
            raise ValueError(f"outer: expected two 1-d tensors, got shapes {tuple(self.shape)} "
                             f"and {tuple(other.shape)}")
        a, b = _promoted(self, other)
        return a.reshape(-1, 1) * b.reshape(1, -1)

    ger = outer

    def kron(self: Tensor, other: Any) -> Tensor:
        """The Kronecker product, as ``torch.kron``; recorded."""
        a, b = _promoted(self, _tensor(other, self))
        ndim = max(a.ndim, b.ndim)
        a = a.reshape((1,) * (ndim - a.ndim) + tuple(a.shape))
        b = b.reshape((1,) * (ndim - b.ndim) + tuple(b.shape))
        # (a1, 1, a2, 1, ...) * (1, b1, 1, b2, ...) -> (a1 * b1, a2 * b2, ...)
        a_shape = [n for size in a.shape for n in (size, 1)]
        b_shape = [n for size in b.shape for n in (1, size)]
        product = a.reshape(a_shape) * b.reshape(b_shape)
        return product.reshape(tuple(x * y for x, y in zip(a.shape, b.shape, strict=True)))

    def cross(self: Tensor, other: Any, dim: int | None = None) -> Tensor:
        """The cross product of 3-vectors along ``dim`` (None: the first dim of size 3), as
        ``torch.cross``; recorded.

        Raises:
            ValueError: that dim is not of size 3, or no dim is.
        """
        a, b = _promoted(self, _tensor(other, self))
        shape = np.broadcast_shapes(a.shape, b.shape)
        a = a if tuple(a.shape) == shape else a.expand(*shape)
        b = b if tuple(b.shape) == shape else b.expand(*shape)
        if dim is None:
            sizes = [d for d, n in enumerate(shape) if n == 3]
            if not sizes:
                raise ValueError(f"cross: no dim of size 3 in shape {shape}")
            d = sizes[0]
        else:
            d = _dim("cross", dim, len(shape))
        if shape[d] != 3:
            raise ValueError(f"cross: dim {d} has size {shape[d]}, expected 3 (shape {shape})")
        first, second = np.array([1, 2, 0]), np.array([2, 0, 1])
        pick: tuple[Any, ...] = (slice(None),) * d
        return (a[pick + (first,)] * b[pick + (second,)]
                - a[pick + (second,)] * b[pick + (first,)])

    def bincount(self: Tensor, weights: Any = None, minlength: int = 0) -> Tensor:
        """Counts of each non-negative int (int64), or sums of ``weights`` (their dtype), as
        ``torch.bincount``.

        Raises:
            ValueError: input is not 1-d non-negative integers.
        """
        data = self._data
        if data.ndim != 1 or data.dtype.kind not in "iu" or (data.size and data.min() < 0):
            raise ValueError(f"bincount: expected a 1-d tensor of non-negative ints, got shape "
                             f"{data.shape} of {data.dtype}")
        if weights is None:
            return _make(np.bincount(data, minlength=minlength).astype(np.int64))
        w = np.asarray(_raw(weights))
        dtype = w.dtype if w.dtype.kind == "f" else np.float64
        return _make(np.bincount(data, w, minlength).astype(dtype))

    # ---- unique ---------------------------------------------------------------------------------
    def unique(self: Tensor, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
               return_counts: bool = False, dim: int | None = None) -> Any:
        """The distinct values (sorted), and optionally the inverse indices (shaped like the
        input) and the counts, as ``torch.unique``; ``dim`` finds distinct slices. Not
        differentiable (as in PyTorch)."""
        data = self._data
        axis = None if dim is None else _dim("unique", dim, self.ndim)
        # equal_nan=False: every NaN is its own value, as torch.unique (NaN != NaN)
        values, inverse, counts = np.unique(data, return_inverse=True, return_counts=True,
                                            axis=axis, equal_nan=False)
        inverse = inverse.reshape(data.shape) if axis is None else inverse.reshape(-1)
        out = [_make(values)]
        if return_inverse:
            out.append(_make(inverse.astype(np.int64)))
        if return_counts:
            out.append(_make(counts.astype(np.int64)))
        return out[0] if len(out) == 1 else tuple(out)

    def unique_consecutive(self: Tensor, return_inverse: bool = False,
                           return_counts: bool = False, dim: int | None = None) -> Any:
        """Drop consecutive repeats (of the flattened tensor), as
        ``torch.unique_consecutive`` without ``dim``."""
        if dim is not None:
            raise NotImplementedError("unique_consecutive: dim= is not supported in gradwise "
                                      "(docs/PORTING.md)")
        flat = self._data.reshape(-1)
        starts = np.ones(flat.shape, dtype=bool)
        starts[1:] = flat[1:] != flat[:-1]
        out = [_make(flat[starts])]
        if return_inverse:
            out.append(_make((np.cumsum(starts) - 1).reshape(self.shape).astype(np.int64)))
        if return_counts:
            out.append(_make(np.diff(np.append(np.flatnonzero(starts), flat.size))))
        return out[0] if len(out) == 1 else tuple(out)

    # ---- more everyday methods ------------------------------------------------------------------
    def cumprod(self: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
        """Running product along ``dim``, as ``torch.cumprod`` (the input cast to ``dtype``
        first when given; otherwise integers and bools give int64, outside the graph);
        recorded, exact also where entries are 0
        (:class:`~gradwise.autograd.ops.special.CumProd`)."""
        d = _dim("cumprod", dim, self.ndim)
        x = self._cast_for_reduction(dtype)
        if x._data.dtype.kind != "f":
            out = np.int64 if dtype is None else x._data.dtype
            return _make(np.cumprod(x._data, axis=d if x.ndim else None,
                                    dtype=out).reshape(x.shape))
        if x.ndim == 0:
            return x[...]
        return CumProd.apply(x, d)

    def diff(self: Tensor, n: int = 1, dim: int = -1, prepend: Any = None,
             append: Any = None) -> Tensor:
        """The ``n``-th forward difference along ``dim`` (``prepend``/``append`` joined
        first), as ``torch.diff``; recorded. Bool input gives logical xor, as torch."""
        d = _dim("diff", dim, self.ndim)
        parts = [p for p in (prepend, self, append) if p is not None]
        out = cat([_tensor(p, self) for p in parts], dim=d) if len(parts) > 1 else self
        for _ in range(n):
            length = out.shape[d]
            later = out.narrow(d, 1, max(length - 1, 0))
            earlier = out.narrow(d, 0, max(length - 1, 0))
            if out._data.dtype == np.bool_:
                out = _make(later._data != earlier._data)
            else:
                out = later - earlier
        return out

    def nansum(self: Tensor, dim: Any = None, keepdim: bool = False, *,
               dtype: Any = None) -> Tensor:
        """The sum treating NaN as 0, as ``torch.nansum``; recorded (NaN entries get gradient
        0, times the upstream gradient as torch: NaN for an inf or NaN arriving there)."""
        source = self if dtype is None else self.to(dtype)
        if source._data.dtype.kind != "f":
            return source.sum(dim=dim, keepdim=keepdim)
        return NanToZero.apply(source).sum(dim=dim, keepdim=keepdim)

    def nanmean(self: Tensor, dim: Any = None, keepdim: bool = False, *,
                dtype: Any = None) -> Tensor:
        """The mean of the non-NaN entries (all NaN: NaN), as ``torch.nanmean``; recorded."""
        source = self if dtype is None else self.to(dtype)
        _floating("nanmean", source)
        count = _make((~np.isnan(source._data)).astype(source._data.dtype))
        return source.nansum(dim, keepdim) / count.sum(dim=dim, keepdim=keepdim)

    def signbit(self: Tensor) -> Tensor:
        """Whether the sign bit is set (True for -0.0), as ``torch.signbit``."""
        return _make(np.signbit(self._data))

    def logical_xor(self: Tensor, other: Any) -> Tensor:
        """Elementwise xor of truth values, as ``torch.logical_xor``."""
        return _make(np.logical_xor(self._data, _raw(other)))

    def isneginf(self: Tensor) -> Tensor:
        """Where the entry is -inf, as ``torch.isneginf``."""
        return _make(np.isneginf(self._data) if self._data.dtype.kind == "f"
                     else np.zeros(self.shape, dtype=bool))

    def isposinf(self: Tensor) -> Tensor:
        """Where the entry is +inf, as ``torch.isposinf``."""
        return _make(np.isposinf(self._data) if self._data.dtype.kind == "f"
                     else np.zeros(self.shape, dtype=bool))

    def isreal(self: Tensor) -> Tensor:
        """True everywhere for real dtypes, as ``torch.isreal``."""
        return _make(np.isreal(self._data))

    def isin(self: Tensor, test_elements: Any, *, invert: bool = False) -> Tensor:
        """Whether each entry is among ``test_elements``, as ``torch.isin``."""
        return _make(np.isin(self._data, _raw(test_elements), invert=invert))

    def exp2(self: Tensor) -> Tensor:
        """2 ** x, as ``torch.exp2`` (integers: float32); recorded."""
        return (_as_float(self) * float(np.log(2))).exp()

    def logit(self: Tensor, eps: float | None = None) -> Tensor:
        """log(p / (1 - p)), with p clamped to [eps, 1 - eps] when ``eps`` is given, as
        ``torch.logit``; recorded (gradient 1 / (x (1 - x)): +inf at 0 and 1, NaN outside [0, 1]
        without ``eps``, 0 outside [eps, 1 - eps] with it, as torch)."""
        return Logit.apply(_as_float(self), eps)

    def deg2rad(self: Tensor) -> Tensor:
        """Degrees to radians, as ``torch.deg2rad``; recorded."""
        return _as_float(self) * float(np.pi / 180)

    def rad2deg(self: Tensor) -> Tensor:
        """Radians to degrees, as ``torch.rad2deg``; recorded."""
        return _as_float(self) * float(180 / np.pi)

    def float_power(self: Tensor, exponent: Any) -> Tensor:
        """self ** exponent in float64, as ``torch.float_power``; recorded."""
        base = self.to(np.float64)
        if hasattr(exponent, "_data"):
            exponent = exponent.to(np.float64)
        return base ** exponent

    def fmax(self: Tensor, other: Any) -> Tensor:
        """Elementwise maximum ignoring NaN (NaN only where both are), as ``torch.fmax``;
        recorded, a tie's gradient all to self (torch's)."""
        a, b = _promoted(self, other)
        picked = where(a._data >= b._data, a, b)  # a tie's gradient goes to self, as torch
        return where(np.isnan(b._data), a, where(np.isnan(a._data), b, picked))

    def fmin(self: Tensor, other: Any) -> Tensor:
        """Elementwise minimum ignoring NaN, as ``torch.fmin``; recorded."""
        a, b = _promoted(self, other)
        picked = where(a._data <= b._data, a, b)  # a tie's gradient goes to self, as torch
        return where(np.isnan(b._data), a, where(np.isnan(a._data), b, picked))

    def sgn(self: Tensor) -> Tensor:
        """The sign (``torch.sgn``; for real input, ``sign``)."""
        return self.sign()

    def positive(self: Tensor) -> Tensor:
        """Self, as ``torch.positive``."""
        return self

    def aminmax(self: Tensor, *, dim: int | None = None, keepdim: bool = False) -> Any:
        """``(min, max)`` over ``dim`` (None: all entries), as ``torch.aminmax``."""
        return MinMax(self.amin(dim=dim, keepdim=keepdim), self.amax(dim=dim, keepdim=keepdim))

    def argwhere(self: Tensor) -> Tensor:
        """The (k, ndim) int64 indices of the non-zero entries, as ``torch.argwhere``."""
        return _make(np.argwhere(self._data).astype(np.int64))

    def unflatten(self: Tensor, dim: int, sizes: Any) -> Tensor:
        """Split dim ``dim`` into ``sizes`` (one may be -1), as ``torch.unflatten``;
        recorded."""
        d = _dim("unflatten", dim, self.ndim)
        return self.reshape(*self.shape[:d], *tuple(sizes), *self.shape[d + 1:])

    def tensor_split(self: Tensor, indices_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
        """Split into ``n`` nearly equal parts (the first ``size % n`` one longer) or at the
        given indices, as ``torch.tensor_split``; recorded."""
        d = _dim("tensor_split", dim, self.ndim)
        size = self.shape[d]
        spec = _raw(indices_or_sections) if hasattr(indices_or_sections, "_data") else (
            indices_or_sections)
        if np.ndim(spec) == 0:
            sections = int(spec)
            if sections < 1:
                raise ValueError(f"tensor_split: sections must be >= 1, got {sections}")
            lengths = [size // sections + (1 if i < size % sections else 0)
                       for i in range(sections)]
            bounds = np.cumsum([0, *lengths])
        else:
            bounds = np.clip(np.array([0, *list(spec), size]), 0, size)
        return tuple(self.narrow(d, int(start), max(int(stop) - int(start), 0))
                     for start, stop in zip(bounds[:-1], bounds[1:], strict=True))

    def hsplit(self: Tensor, sections: Any) -> tuple[Tensor, ...]:
        """``tensor_split`` along dim 1 (dim 0 for 1-d), as ``torch.hsplit``."""
        return self.tensor_split(sections, 1 if self.ndim > 1 else 0)

    def vsplit(self: Tensor, sections: Any) -> tuple[Tensor, ...]:
        """``tensor_split`` along dim 0, as ``torch.vsplit``."""
        return self.tensor_split(sections, 0)

    def addmm(self: Tensor, mat1: Any, mat2: Any, *, beta: float = 1, alpha: float = 1
              ) -> Tensor:
        """beta * self + alpha * (mat1 @ mat2), as ``torch.addmm``; recorded."""
        product = _tensor(mat1) @ _tensor(mat2)
        return self * beta + product * alpha if (beta, alpha) != (1, 1) else self + product

    def addmv(self: Tensor, mat: Any, vec: Any, *, beta: float = 1, alpha: float = 1
              ) -> Tensor:
        """beta * self + alpha * (mat @ vec), as ``torch.addmv``; recorded."""
        return self * beta + (_tensor(mat) @ _tensor(vec)) * alpha

    def baddbmm(self: Tensor, batch1: Any, batch2: Any, *, beta: float = 1, alpha: float = 1
                ) -> Tensor:
        """beta * self + alpha * (batch1 @ batch2) for 3-d batches, as ``torch.baddbmm``."""
        return self * beta + (_tensor(batch1) @ _tensor(batch2)) * alpha

    def addcmul(self: Tensor, tensor1: Any, tensor2: Any, *, value: float = 1) -> Tensor:
        """self + value * tensor1 * tensor2, as ``torch.addcmul``; recorded."""
        return self + _tensor(tensor1, self) * _tensor(tensor2, self) * value

    def addcdiv(self: Tensor, tensor1: Any, tensor2: Any, *, value: float = 1) -> Tensor:
        """self + value * tensor1 / tensor2, as ``torch.addcdiv``; recorded."""
        return self + _tensor(tensor1, self) / _tensor(tensor2, self) * value

    def mv(self: Tensor, vec: Any) -> Tensor:
        """Matrix (n, m) times vector (m,), as ``torch.mv``; recorded.

        Raises:
            ValueError: not a matrix and a vector.
        """
        vec = _tensor(vec)
        if self.ndim != 2 or vec.ndim != 1:
            raise ValueError(f"mv: expected a matrix and a vector, got shapes "
                             f"{tuple(self.shape)} and {tuple(vec.shape)}")
        return self @ vec

    def inner(self: Tensor, other: Any) -> Tensor:
        """The sum over the last dims of both, as ``torch.inner``; recorded."""
        other = _tensor(other, self)
        if self.ndim == 0 or other.ndim == 0:
            return self * other
        if self.shape[-1] != other.shape[-1]:
            raise ValueError(f"inner: last dims differ, shapes {tuple(self.shape)} and "
                             f"{tuple(other.shape)}")
        # (..a, k) x (..b, k) -> (..a, ..b): flatten both, one matmul, reshape
        left = self.reshape(-1, self.shape[-1])
        right = other.reshape(-1, other.shape[-1])
        return (left @ right.t()).reshape(*self.shape[:-1], *other.shape[:-1])

    def vdot(self: Tensor, other: Any) -> Tensor:
        """The dot product of two 1-d tensors, as ``torch.vdot`` (real input)."""
        return self.dot(other)

    def dist(self: Tensor, other: Any, p: float = 2) -> Tensor:
        """The p-norm of ``self - other``, as ``torch.dist``; recorded."""
        return linalg.vector_norm(self - _tensor(other, self), ord=p)

    def msort(self: Tensor) -> Tensor:
        """Sorted along dim 0, as ``torch.msort``; recorded."""
        return self.sort(dim=0).values

    def new_empty(self: Tensor, *size: Any, dtype: Any = None,
                  requires_grad: bool = False, **_: Any) -> Tensor:
        """A new tensor of ``size`` with this dtype (zeros here), as ``Tensor.new_empty``."""
        return self.new_zeros(*size, dtype=dtype, requires_grad=requires_grad)

    def tril_(self: Tensor, diagonal: int = 0) -> Tensor:
        """In-place :meth:`tril` (recorded as ``add_`` is)."""
        return self._assign_("tril_", lambda t: t.tril(diagonal))

    def triu_(self: Tensor, diagonal: int = 0) -> Tensor:
        """In-place :meth:`triu` (recorded as ``add_`` is)."""
        return self._assign_("triu_", lambda t: t.triu(diagonal))

    def lerp_(self: Tensor, end: Any, weight: Any) -> Tensor:
        """In-place :meth:`lerp` (recorded as ``add_`` is)."""
        return self._assign_("lerp_", lambda t: t.lerp(end, weight), end, weight)

    def index_fill_(self: Tensor, dim: int, index: Any, value: float) -> Tensor:
        """Set the entries at ``index`` along ``dim`` to ``value``, in place, as
        ``Tensor.index_fill_``."""
        self._check_inplace("index_fill_")
        _dtypes.check_scalar_fits("index_fill_", value, self._data.dtype)
        d = _dim("index_fill_", dim, self.ndim)
        self._data[(slice(None),) * d + (np.asarray(_raw(index)).reshape(-1),)] = _raw(value)
        return self._bump()

    def index_copy_(self: Tensor, dim: int, index: Any, source: Any) -> Tensor:
        """Copy ``source``'s slices to positions ``index`` along ``dim``, in place, as
        ``Tensor.index_copy_``."""
        from gradwise.autograd.ops.scatter import check_index_range
        self._check_inplace("index_copy_")
        same_source_dtype(self, source, _INDEX_COPY_DTYPES)
        d = _dim("index_copy_", dim, self.ndim)
        check_index_range("index_copy_", np.asarray(_raw(index)), d,
                          self.shape[d] if self.ndim else 1, IndexError)
        self._data[(slice(None),) * d + (np.asarray(_raw(index)).reshape(-1),)] = _raw(source)
        return self._bump()

    def fill_diagonal_(self: Tensor, fill_value: float, wrap: bool = False) -> Tensor:
        """Fill the main diagonal in place, as ``Tensor.fill_diagonal_`` (all dims equal, or
        2-d; ``wrap`` restarts below a tall matrix's square, as NumPy's ``fill_diagonal``)."""
        self._check_inplace("fill_diagonal_")
        np.fill_diagonal(self._data, fill_value, wrap=wrap)
        return self._bump()

    # ---- issue 11: memory layout, flat take, index_fill/index_put_, shifts ----------------------
    def stride(self: Tensor, dim: int | None = None) -> Any:
        """Steps in elements (not bytes) between neighbours along each dim, as
        ``Tensor.stride()`` (a tuple; ``stride(dim)`` one int). A broadcast (expanded) dim has
        stride 0, a transposed view swapped strides."""
        steps = tuple(s // self._data.itemsize for s in self._data.strides)
        return steps if dim is None else steps[_dim("stride", dim, self.ndim)]

    def data_ptr(self: Tensor) -> int:
        """The address of the first element, as ``Tensor.data_ptr()`` (views share the base's
        memory, so ``x[1:].data_ptr() == x.data_ptr() + x.element_size()``)."""
        return int(self._data.__array_interface__["data"][0])

    def storage_offset(self: Tensor) -> int:
        """How many elements into the underlying memory block the first element sits, as
        ``Tensor.storage_offset()`` (0 for a tensor that owns its memory)."""
        base = self._data
        while isinstance(base.base, np.ndarray):
            base = base.base
        start = int(base.__array_interface__["data"][0])
        return (self.data_ptr() - start) // self._data.itemsize

    def detach_(self: Tensor) -> Tensor:
        """Cut this tensor from the graph in place (it becomes a leaf that does not require
        grad), as ``Tensor.detach_()``; returns self.

        Raises:
            RuntimeError: this tensor is a view (torch's rule: detaching a view in place would
                leave its base's graph inconsistent; ``detach()`` makes a new tensor instead).
        """
        if self._base is not None:
            raise RuntimeError("detach_: Can't detach views in-place. Use detach() instead "
                               f"(a view of shape {tuple(self.shape)})")
        self._ctx = None
        self._requires_grad = False
        return self

    def take(self: Tensor, index: Any) -> Tensor:
        """The entries at ``index`` in the flattened tensor (negative counts from the end),
        shaped like ``index``, as ``torch.take``; recorded.

        Raises:
            TypeError: ``index`` is not an integer tensor.
            IndexError: an index is out of range (naming it and the size).
        """
        flat_index = np.asarray(_raw(index))
        if flat_index.dtype.kind not in "iu":
            raise TypeError(f"take: index must be an integer tensor, got {flat_index.dtype}")
        n = self._data.size
        bad = (flat_index >= n) | (flat_index < -n)
        if bad.any():
            raise IndexError(f"take: index {int(flat_index[bad].reshape(-1)[0])} is out of "
                             f"range for a tensor of {n} elements")
        return self.reshape(-1)[flat_index % max(n, 1)]

    def index_fill(self: Tensor, dim: int, index: Any, value: Any) -> Tensor:
        """A copy with the slices at ``index`` along ``dim`` set to ``value`` (a number or a
        0-d tensor), as ``Tensor.index_fill``; recorded (no gradient reaches the filled
        entries of self; a 0-d tensor ``value`` gets the sum of theirs)."""
        d = _dim("index_fill", dim, self.ndim)
        mask = np.zeros(self.shape, dtype=bool)
        mask[(slice(None),) * d + (np.asarray(_raw(index)).reshape(-1),)] = True
        fill = value if hasattr(value, "_data") else _make(np.asarray(value, self._data.dtype))
        return where(mask, fill.to(self._data.dtype) if fill._data.dtype != self._data.dtype
                     else fill, self)

    def index_put_(self: Tensor, indices: Any, values: Any, accumulate: bool = False) -> Tensor:
        """``self[indices] = values`` in place (``accumulate``: ``+=``, repeated indices adding
        up), as ``Tensor.index_put_``; ``indices`` is a tuple of index tensors. Returns self.
        Recorded as torch's ``index_put_`` when grad is on and self or ``values`` requires
        grad: self's gradient is the incoming one (zeroed at the overwritten places unless
        ``accumulate``), ``values`` gets the incoming gradient at ``indices`` (each use of a
        repeated index), summed over broadcast dims.

        Raises:
            TypeError: ``indices`` is not a tuple or list.
            IndexError: an index is out of range (naming the tensor's shape).
            RuntimeError: ``values`` is a Tensor of another dtype (torch does not promote),
                or has more dims than self (torch's "shape mismatch: value tensor of shape
                ... cannot be broadcast to indexing result of shape ...").
        """
        if not isinstance(indices, tuple | list):
            raise TypeError(f"index_put_: indices must be a tuple of tensors, got "
                            f"{type(indices).__name__}")
        same_source_dtype(self, values, "index_put_: Index put requires the source and "
                                        "destination dtypes match, got {self} for the "
                                        "destination and {source} for the source.")
        where_ = tuple(np.asarray(_raw(i)) for i in indices)
        if not accumulate:
            value_shape = np.shape(_raw(values))
            try:
                picked = np.shape(self._data[where_]) if value_shape else ()
            except IndexError:
                picked = value_shape  # the assignment below raises, naming the shape
            if len(value_shape) > len(picked):  # no leading-1 squeeze here (torch's
                # index_put_ broadcasts strictly; ``t[i] = v`` squeezes them)
                raise RuntimeError(
                    f"index_put_: shape mismatch: value tensor of shape {list(value_shape)} "
                    f"cannot be broadcast to indexing result of shape {list(picked)}")
            self[where_] = values
            return self
        try:
            picked_shape = self._data[where_].shape
        except IndexError as error:
            raise IndexError(f"index_put_: {error} (tensor shape {self.shape})") from None
        source = values if isinstance(values, Tensor) else Tensor._make(
            np.asarray(values, dtype=self._data.dtype), False, None)
        if source._data.dtype != self._data.dtype:
            source = source.to(self._data.dtype)
        if source.shape != picked_shape:
            source = source.broadcast_to(picked_shape)
        return self.add_(_shape.ScatterAdd.apply(source, self.shape, where_, False))

    def index_put(self: Tensor, indices: Any, values: Any, accumulate: bool = False) -> Tensor:
        """Out-of-place :meth:`index_put_` on a copy, as ``Tensor.index_put``; recorded (the
        gradients reach self and ``values`` as torch's ``IndexPutBackward0``)."""
        return self.clone().index_put_(indices, values, accumulate)

    def _shift(self: Tensor, other: Any, fn: Any, name: str, reflected: bool = False) -> Tensor:
        a, b = promoted(other, self) if reflected else promoted(self, other)
        if a._data.dtype.kind not in "iu":
            raise TypeError(f"{name}: needs integer tensors, got {a._data.dtype}")
        return _make(fn(a._data, b._data))

    def __lshift__(self: Tensor, other: Any) -> Tensor:
        """``self << other`` on integers (broadcast, promoted), as torch's; no gradient."""
        return self._shift(other, np.left_shift, "bitwise_left_shift")

    def __rshift__(self: Tensor, other: Any) -> Tensor:
        """``self >> other`` on integers (arithmetic: the sign is kept), as torch's."""
        return self._shift(other, np.right_shift, "bitwise_right_shift")

    def __rlshift__(self: Tensor, other: Any) -> Tensor:
        return self._shift(other, np.left_shift, "bitwise_left_shift", reflected=True)

    def __rrshift__(self: Tensor, other: Any) -> Tensor:
        return self._shift(other, np.right_shift, "bitwise_right_shift", reflected=True)

    bitwise_left_shift, bitwise_right_shift = __lshift__, __rshift__
