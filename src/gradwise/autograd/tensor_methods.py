"""The Tensor methods PyTorch code uses beyond the engine's core: shape queries, casts and
devices, comparisons as methods, sorting, splitting, random in-place fills.

A mixin written in terms of the core methods and ops, above the ops, whose methods attach.py
sets on ``Tensor`` (tensor_ops.py says how the imports run), so the engine's core in tensor.py
stays small. Every method follows ``torch.Tensor``'s signature
and semantics; deliberate differences are in docs/PORTING.md.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradwise.autograd import dtypes
from gradwise.autograd import random as _random
from gradwise.autograd.device import CPU, device, is_device_like
from gradwise.autograd.functional import promoted, where
from gradwise.autograd.graph import name_node
from gradwise.autograd.ops import elementwise
from gradwise.autograd.ops.elementwise import Remainder
from gradwise.autograd.ops.shape import Repeat, SetItem, Transpose
from gradwise.autograd.ops.special import CumSum, Prod
from gradwise.autograd.tensor import SortResult, Tensor, TopkResult, _shape_arg


def _trig() -> Any:
    """ops/trig.py, imported at the first trig method (import gradwise does not load it)."""
    from gradwise.autograd.ops import trig

    return trig


def _make(array: Any) -> Tensor:
    return Tensor._make(np.asarray(array), False, None)


def _normalize_dim(dim: int, ndim: int, op: str) -> int:
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim} out of range for a {ndim}-d tensor")
    return dim % max(ndim, 1)


# numpy dtype name -> torch's legacy tensor type name (``x.type()``, ``gw.DoubleTensor``)
LEGACY_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
                     "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
                     "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}


class TensorMethods:
    """PyTorch's Tensor methods, mixed into ``gradwise.Tensor``."""

    __slots__: tuple[str, ...] = ()

    # ---- shape queries ------------------------------------------------------------------------
    def numel(self: Tensor) -> int:
        """The number of elements."""
        return int(self._data.size)

    def dim(self: Tensor) -> int:
        """The number of dimensions (``ndim``)."""
        return self._data.ndim

    ndimension = dim

    def nelement(self: Tensor) -> int:
        """Number of elements (the product of the shape), as ``torch.Tensor.nelement``."""
        return int(self._data.size)

    def element_size(self: Tensor) -> int:
        """Bytes per element."""
        return self._data.itemsize

    @property
    def device(self: Tensor) -> device:
        """Always the CPU."""
        return CPU

    @property
    def is_cuda(self: Tensor) -> bool:
        """Always False: gradwise tensors live in CPU memory."""
        return False

    def is_floating_point(self: Tensor) -> bool:
        """True when the dtype is float16, float32 or float64."""
        return self._data.dtype.kind == "f"

    def is_contiguous(self: Tensor) -> bool:
        """True when the values are C-contiguous in memory (a transposed view is not)."""
        return bool(self._data.flags.c_contiguous)

    def contiguous(self: Tensor) -> Tensor:
        """This tensor if its memory is C-ordered, else a recorded copy."""
        if self._data.flags.c_contiguous:
            return self
        return self.clone()

    # ---- casts and devices --------------------------------------------------------------------
    def _cast(self: Tensor, dtype: Any) -> Tensor:
        dtype = np.dtype(dtype)
        if dtype == self._data.dtype:
            return self
        if dtype.kind in "fc" and self._data.dtype.kind in "fc":
            return elementwise.Cast.apply(self, dtype)
        return _make(self._data.astype(dtype))  # to/from integers: no gradient (PyTorch's too)

    def long(self: Tensor) -> Tensor:
        """An int64 copy (truncated toward zero), as ``torch.Tensor.long``."""
        return self._cast(np.int64)

    def short(self: Tensor) -> Tensor:
        """An int16 copy, as ``torch.Tensor.short``."""
        return self._cast(np.int16)

    def byte(self: Tensor) -> Tensor:
        """A uint8 copy (values wrap as NumPy casts do), as ``torch.Tensor.byte``."""
        return self._cast(np.uint8)

    def half(self: Tensor) -> Tensor:
        """A float16 copy, as ``torch.Tensor.half``."""
        return self._cast(np.float16)

    def type(self: Tensor, dtype: Any = None) -> Any:
        """Without ``dtype``: PyTorch's type name (``'torch.FloatTensor'`` style, with gradwise).
        With a dtype, a legacy type (``gw.DoubleTensor``) or its name (``'torch.DoubleTensor'``
        or ``'gradwise.DoubleTensor'``): the cast, as torch's.

        Raises:
            ValueError: a string that names no tensor type (torch's "invalid type").
        """
        if dtype is None:
            name = self._data.dtype.name
            return f"gradwise.{LEGACY_TYPE_NAMES.get(name, name)}"
        if isinstance(dtype, str) and dtype.rpartition(".")[0] in ("torch", "gradwise"):
            by_name = {legacy: np.dtype(name) for name, legacy in LEGACY_TYPE_NAMES.items()}
            if dtype.rpartition(".")[2] in by_name:
                return self._cast(by_name[dtype.rpartition(".")[2]])
        if isinstance(dtype, str):
            raise ValueError(f"type: invalid type: {dtype!r}")
        legacy = getattr(dtype, "legacy_dtype", None)  # gw.DoubleTensor and the like
        return self._cast(dtype if legacy is None else legacy)

    def type_as(self: Tensor, other: Tensor) -> Tensor:
        """A copy cast to ``other``'s dtype, as ``torch.Tensor.type_as``."""
        return self._cast(other._data.dtype)

    def to(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(other)``, and the keywords
        ``device=``, ``dtype=``, ``non_blocking=``, ``copy=``. Only the CPU exists.

        Raises:
            RuntimeError: a GPU device, naming it.
        """
        dtype = kwargs.pop("dtype", None)
        target = kwargs.pop("device", None)
        if target is not None:
            device(target)  # raises for a GPU, naming it
        kwargs.pop("non_blocking", None)
        copy = kwargs.pop("copy", False)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg._data.dtype
            elif is_device_like(arg):
                device(arg)
            elif arg is not None and not isinstance(arg, bool):
                dtype = arg
        out = self if dtype is None else self._cast(dtype)
        return out.clone() if copy and out is self else out

    def cpu(self: Tensor) -> Tensor:
        """This tensor (it is on the CPU already)."""
        return self

    def cuda(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        """Raises: gradwise has no CUDA backend."""
        raise RuntimeError("cuda(): gradwise runs on the CPU only; keep tensors on 'cpu'")

    def pin_memory(self: Tensor) -> Tensor:
        """Returns self: there is no device to pin for (kept so torch code runs unchanged)."""
        return self

    # ---- views and shapes ---------------------------------------------------------------------
    def t(self: Tensor) -> Tensor:
        """Transpose of a tensor with at most 2 dims (``torch.t``).

        Raises:
            ValueError: more than 2 dims.
        """
        if self.ndim > 2:
            raise ValueError(f"t(): expects a tensor with <= 2 dims, got shape {self.shape}")

        # a 0-d or 1-d tensor gives a new view of itself (never ``self``), as in torch
        perm = (1, 0) if self.ndim == 2 else tuple(range(self.ndim))
        return name_node(Transpose.apply(self, perm), "T")

    @property
    def mT(self: Tensor) -> Tensor:  # noqa: N802 - PyTorch's name
        """The last two dims swapped (batched matrix transpose), as ``torch.Tensor.mT``."""
        return self.transpose(-2, -1)

    def view_as(self: Tensor, other: Tensor) -> Tensor:
        """A view of self in ``other``'s shape, as ``torch.Tensor.view_as`` (raises as ``view``
        when the layout needs a copy)."""
        return self.view(other.shape)

    def reshape_as(self: Tensor, other: Tensor) -> Tensor:
        """self reshaped to ``other``'s shape (a copy when needed), as torch's."""
        return self.reshape(other.shape)

    def expand_as(self: Tensor, other: Tensor) -> Tensor:
        """A broadcast view of self with ``other``'s shape, as ``torch.Tensor.expand_as``."""
        return self.broadcast_to(other.shape)

    def movedim(self: Tensor, source: Any, destination: Any) -> Tensor:
        """Move dim(s) ``source`` to position(s) ``destination`` (ints or equal-length
        tuples), the others keeping their order, as ``torch.movedim``; recorded.

        Raises:
            ValueError: the lengths differ or a dim repeats.
        """
        sources = (source,) if isinstance(source, int | np.integer) else tuple(source)
        targets = (destination,) if isinstance(destination, int | np.integer) else tuple(
            destination)
        if len(sources) != len(targets):
            raise ValueError(f"movedim: source {source!r} and destination {destination!r} "
                             "differ in length")
        sources = tuple(_normalize_dim(s, self.ndim, "movedim") for s in sources)
        targets = tuple(_normalize_dim(t, self.ndim, "movedim") for t in targets)
        if len(set(sources)) != len(sources) or len(set(targets)) != len(targets):
            raise ValueError(f"movedim: repeated dim in source {source!r} or destination "
                             f"{destination!r}")
        rest = iter(d for d in range(self.ndim) if d not in sources)
        placed = dict(zip(targets, sources, strict=True))
        perm = [placed[i] if i in placed else next(rest) for i in range(self.ndim)]
        return self.permute(*perm) if perm != list(range(self.ndim)) else self[...]

    moveaxis = movedim

    def repeat(self: Tensor, *sizes: Any) -> Tensor:
        """Tile the tensor ``sizes`` times along each dim (``torch.Tensor.repeat``)."""
        reps = _shape_arg(sizes)
        if len(reps) < self.ndim:
            raise ValueError(
                f"repeat: {len(reps)} repeat counts for a {self.ndim}-d tensor (need >= ndim)"
            )
        if any(int(r) < 0 for r in reps):
            raise ValueError(f"repeat: repeat counts must be >= 0, got {tuple(reps)}")
        return Repeat.apply(self, tuple(int(r) for r in reps))

    def chunk(self: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        """Split into ``chunks`` pieces of ceil(n / chunks) along ``dim`` (the last smaller)."""
        if chunks <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        d = _normalize_dim(dim, self.ndim, "chunk")
        size = -(-self.shape[d] // chunks)
        return self.split(max(size, 1), d)

    def split(self: Tensor, split_size: Any, dim: int = 0) -> tuple[Tensor, ...]:
        """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the listed
        sizes (which must sum to the dim's length)."""
        d = _normalize_dim(dim, self.ndim, "split")
        n = self.shape[d]
        if isinstance(split_size, int | np.integer):
            if split_size <= 0:
                raise ValueError(f"split: split_size must be positive, got {split_size}")
            sizes = [min(split_size, n - s) for s in range(0, n, split_size)] or [0]
        else:
            sizes = [int(s) for s in split_size]
            if sum(sizes) != n:
                raise ValueError(f"split: sizes {sizes} do not sum to dim {dim}'s length {n}")
        pieces, start = [], 0
        for size in sizes:
            index = (slice(None),) * d + (slice(start, start + size),)
            pieces.append(self[index])
            start += size
        return tuple(pieces)

    def unbind(self: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
        """The slices along ``dim`` as a tuple of tensors (that dim removed), as ``torch.unbind``.
        """
        d = _normalize_dim(dim, self.ndim, "unbind")
        return tuple(self[(slice(None),) * d + (i,)] for i in range(self.shape[d]))

    def _take_along(self: Tensor, indices: np.ndarray, dim: int) -> Tensor:
        """Recorded ``take_along_axis``: the gradient flows to the elements picked."""
        grids = list(np.ix_(*[np.arange(n) for n in indices.shape]))
        grids[dim] = indices
        return self[tuple(grids)]

    def gather(self: Tensor, dim: int, index: Any) -> Tensor:
        """``out[i][j] = self[index[i][j]][j]`` for dim 0 (and so on): ``torch.gather``."""
        index = index._data if hasattr(index, "_data") else np.asarray(index)
        if index.dtype.kind not in "iu":
            raise TypeError(f"gather: index must be an integer tensor, got {index.dtype}")
        if index.ndim != self.ndim:
            raise ValueError(
                f"gather: index has {index.ndim} dims but the tensor has {self.ndim}"
            )
        from gradwise.autograd.ops.scatter import check_index_range

        d = _normalize_dim(dim, self.ndim, "gather")
        check_index_range("gather", index, d, self.shape[d] if self.ndim else 1)
        return self._take_along(index, d)

    def sort(self: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
        """``(values, indices)`` sorted along ``dim``; the values are recorded.

        As ``torch.sort``: NaN counts as larger than every number (last ascending, first
        descending), and equal entries keep their order (always stable, as torch's CPU sort).
        """
        d = _normalize_dim(dim, self.ndim, "sort")
        if self.ndim == 0:
            return SortResult(self, _make(np.zeros((), np.int64)))
        indices = _sort_indices(self._data, d, descending)
        return SortResult(self._take_along(indices, d), _make(indices))

    def argsort(self: Tensor, dim: int = -1, descending: bool = False,
                stable: bool = False) -> Tensor:
        """Indices that sort along ``dim`` (descending if asked), int64, as ``torch.argsort``."""
        return self.sort(dim, descending, stable).indices

    def topk(self: Tensor, k: int, dim: int = -1, largest: bool = True,
             sorted: bool = True) -> Any:  # noqa: A002 - PyTorch's name
        """The ``k`` largest (or smallest) values along ``dim`` and their indices.

        Raises:
            ValueError: ``k`` exceeds the dim's length.
        """

        d = _normalize_dim(dim, self.ndim, "topk")
        n = self.shape[d] if self.ndim else 1
        if not 0 <= k <= n:
            raise ValueError(f"topk: k={k} out of range for a dim of length {n}")
        values, indices = self.sort(dim, descending=largest)
        index = (slice(None),) * d + (slice(0, k),)
        return TopkResult(values[index], indices[index])

    def cumsum(self: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
        """Running sum along ``dim``, recorded
        (:class:`~gradwise.autograd.ops.special.CumSum`: NaN/inf reach only later positions).

        The input is cast to ``dtype`` first when given; without it integers and bools sum to
        int64 (outside the graph), as ``torch.cumsum``.
        """
        d = _normalize_dim(dim, self.ndim, "cumsum")
        x = self._cast_for_reduction(dtype)
        if x._data.dtype.kind != "f":  # integers and bools: int64 (PyTorch), outside the graph
            out = np.int64 if dtype is None else x._data.dtype
            return _make(np.cumsum(x._data, axis=d, dtype=out))
        if x.ndim == 0:
            return x[...]
        return CumSum.apply(x, d)

    # ---- elementwise math ---------------------------------------------------------------------
    def log10(self: Tensor) -> Tensor:
        """Base-10 log elementwise: log(x) / ln(10), differentiable."""
        return self.log() * (1.0 / math.log(10.0))

    def log2(self: Tensor) -> Tensor:
        """Base-2 log elementwise: log(x) / ln(2), differentiable."""
        return self.log() * (1.0 / math.log(2.0))

    def log1p(self: Tensor) -> Tensor:
        """log(1 + x) elementwise, accurate for small x (numpy.log1p)."""
        return elementwise.Log1p.apply(self._as_float())

    def expm1(self: Tensor) -> Tensor:
        """exp(x) - 1 elementwise, accurate for small x (numpy.expm1)."""
        return elementwise.Expm1.apply(self._as_float())

    def sin(self: Tensor) -> Tensor:
        """Sine elementwise (radians); the gradient is cos(x)."""
        return elementwise.Sin.apply(self._as_float())

    def cos(self: Tensor) -> Tensor:
        """Cosine elementwise (radians); the gradient is -sin(x)."""
        return elementwise.Cos.apply(self._as_float())

    # trigonometric and hyperbolic functions (ops/trig.py states each derivative); integers are
    # promoted to the default float dtype first, as in PyTorch
    def tan(self: Tensor) -> Tensor:
        """Tangent elementwise (radians); the gradient is 1 + tan^2 x."""
        return _trig().Tan.apply(self._as_float())

    def asin(self: Tensor) -> Tensor:
        """Inverse sine elementwise, in [-pi/2, pi/2] (NaN outside [-1, 1]); as ``torch.asin``
        (also ``arcsin``)."""
        return _trig().Asin.apply(self._as_float())

    def acos(self: Tensor) -> Tensor:
        """Inverse cosine elementwise, in [0, pi] (NaN outside [-1, 1]); also ``arccos``."""
        return _trig().Acos.apply(self._as_float())

    def atan(self: Tensor) -> Tensor:
        """Inverse tangent elementwise, in (-pi/2, pi/2); also ``arctan``."""
        return _trig().Atan.apply(self._as_float())

    def sinh(self: Tensor) -> Tensor:
        """Hyperbolic sine elementwise (inf past ~89 in float32); the gradient is cosh x."""
        return _trig().Sinh.apply(self._as_float())

    def cosh(self: Tensor) -> Tensor:
        """Hyperbolic cosine elementwise; the gradient is sinh x."""
        return _trig().Cosh.apply(self._as_float())

    def asinh(self: Tensor) -> Tensor:
        """Inverse hyperbolic sine elementwise; also ``arcsinh``."""
        return _trig().Asinh.apply(self._as_float())

    def acosh(self: Tensor) -> Tensor:
        """Inverse hyperbolic cosine elementwise (NaN below 1); also ``arccosh``."""
        return _trig().Acosh.apply(self._as_float())

    def atanh(self: Tensor) -> Tensor:
        """Inverse hyperbolic tangent elementwise (+-inf at +-1, NaN beyond); also
        ``arctanh``."""
        return _trig().Atanh.apply(self._as_float())

    def atan2(self: Tensor, other: Any) -> Tensor:
        """The angle of the point (other, self) in (-pi, pi], elementwise and broadcast, as
        ``torch.atan2(input=y, other=x)`` (also ``arctan2``); integers are promoted to the
        default float dtype; differentiable in both.

        Raises:
            ValueError: the shapes do not broadcast (naming both).
        """
        y, x = promoted(self, other)
        if y._data.dtype.kind not in "fc":
            y, x = (t.to(dtypes.get_default_dtype()) for t in (y, x))
        return _trig().Atan2.apply(y, x)

    arcsin, arccos, arctan, arcsinh, arccosh, arctanh, arctan2 = (
        asin, acos, atan, asinh, acosh, atanh, atan2)

    def _as_float(self: Tensor) -> Tensor:
        if self._data.dtype.kind in "fc":
            return self

        return _make(self._data.astype(dtypes.get_default_dtype()))

    def square(self: Tensor) -> Tensor:
        """x * x elementwise, as ``torch.square``."""
        return self * self

    def rsqrt(self: Tensor) -> Tensor:
        """1 / sqrt(x) elementwise (inf at 0, nan below)."""
        return 1.0 / self.sqrt()

    def reciprocal(self: Tensor) -> Tensor:
        """1 / x elementwise (1/0 = inf, as torch's)."""
        return 1.0 / self

    def pow(self: Tensor, exponent: Any) -> Tensor:
        """self ** exponent elementwise (broadcast), as ``torch.pow``."""
        return self ** exponent

    def add(self: Tensor, other: Any, alpha: float = 1) -> Tensor:
        """self + alpha * other (broadcast), as ``torch.add``; ``add`` is the same as ``+``."""
        return self + (other * alpha if alpha != 1 else other)

    def sub(self: Tensor, other: Any, alpha: float = 1) -> Tensor:
        """self - alpha * other (broadcast), as ``torch.sub`` (also ``subtract``)."""
        return self - (other * alpha if alpha != 1 else other)

    def mul(self: Tensor, other: Any) -> Tensor:
        """self * other elementwise (broadcast), as ``torch.mul`` (also ``multiply``)."""
        return self * other

    def div(self: Tensor, other: Any, rounding_mode: str | None = None) -> Tensor:
        """``self / other``; ``rounding_mode="floor"`` rounds down (``//``), ``"trunc"`` toward
        zero, both in the operands' promoted dtype (int // int stays int) and outside the graph
        (their gradient is zero almost everywhere, as PyTorch's).

        Raises:
            ValueError: an unknown rounding_mode.
        """
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("floor", "trunc"):
            raise ValueError(
                f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")
        return _rounded_div(self, other, rounding_mode)

    multiply, subtract, divide, true_divide = mul, sub, div, div

    def matmul(self: Tensor, other: Any) -> Tensor:
        """Matrix product ``self @ other`` with NumPy/torch batching rules (also ``mm``).

        Raises ValueError naming both shapes when the inner dims differ.
        """
        return self @ other

    mm = matmul

    def dot(self: Tensor, other: Any) -> Tensor:
        """Inner product of two 1-D tensors (a 0-d tensor); ValueError naming the shape otherwise.
        """
        if self.ndim != 1:
            raise ValueError(f"dot: expects 1-d tensors, got shape {self.shape}")
        return self @ other

    def clamp_min(self: Tensor, min: float) -> Tensor:  # noqa: A002
        """max(x, min) elementwise, as ``torch.clamp_min``."""
        return self.clip(min, None)

    def clamp_max(self: Tensor, max: float) -> Tensor:  # noqa: A002
        """min(x, max) elementwise, as ``torch.clamp_max``."""
        return self.clip(None, max)

    def prod(self: Tensor, dim: int | None = None, keepdim: bool = False, *,
             dtype: Any = None) -> Tensor:
        """Product over all elements or along ``dim``, recorded
        (:class:`~gradwise.autograd.ops.special.Prod`: torch's gradient, exact at zeros). An
        empty dim gives ones (the empty product), as torch.

        The input is cast to ``dtype`` first when given; without it integers and bools multiply
        in int64 (``uint8 [250, 3]`` gives 750, not 238), outside the graph, as ``torch.prod``.
        """
        x = self._cast_for_reduction(dtype)
        d = None if dim is None else _normalize_dim(dim, self.ndim, "prod")
        if x._data.dtype.kind != "f":
            out = np.int64 if dtype is None else x._data.dtype
            return _make(np.asarray(np.prod(x._data, axis=d, dtype=out,
                                            keepdims=keepdim and d is not None)))
        return Prod.apply(x, d, keepdim)

    # ---- outside the graph: rounding, signs, tests ---------------------------------------------
    def floor(self: Tensor) -> Tensor:
        """Largest integer <= x, elementwise (same dtype); recorded with gradient 0, as torch."""
        return self._step(elementwise.Floor)

    def ceil(self: Tensor) -> Tensor:
        """Smallest integer >= x, elementwise (same dtype); recorded with gradient 0."""
        return self._step(elementwise.Ceil)

    def round(self: Tensor, decimals: int = 0) -> Tensor:
        """Round half to even (as PyTorch); recorded with gradient 0."""
        return self._step(elementwise.Round, decimals)

    def trunc(self: Tensor) -> Tensor:
        """x rounded toward zero, elementwise; recorded with gradient 0."""
        return self._step(elementwise.Trunc)

    def sign(self: Tensor) -> Tensor:
        """-1, 0 or 1 elementwise by the sign of x, 0 at NaN (as torch); recorded with
        gradient 0 (torch's SignBackward)."""
        return self._step(elementwise.Sign)

    def _step(self: Tensor, op: Any, *args: Any) -> Tensor:
        # a step function of a floating tensor is recorded (its gradient is 0, as torch's
        # SignBackward/FloorBackward); integers and bools cannot require grad
        if self._data.dtype.kind == "f":
            return op.apply(self, *args)
        return _make(op._value(self._data, *args))

    def isnan(self: Tensor) -> Tensor:
        """Elementwise: NaN (a bool tensor)."""
        return _make(np.isnan(self._data))

    def isinf(self: Tensor) -> Tensor:
        """Elementwise: +inf or -inf (a bool tensor)."""
        return _make(np.isinf(self._data))

    def isfinite(self: Tensor) -> Tensor:
        """Elementwise: not NaN and not ±inf (a bool tensor)."""
        return _make(np.isfinite(self._data))

    def logical_not(self: Tensor) -> Tensor:
        """Elementwise NOT of the truth values (nonzero is True), a bool tensor."""
        return _make(np.logical_not(self._data))

    def __invert__(self: Tensor) -> Tensor:
        if self._data.dtype.kind not in "biu":
            raise TypeError(f"~: needs a bool or integer tensor, got {self._data.dtype}")
        return _make(~self._data)

    def _logical(self: Tensor, other: Any, fn: Any) -> Tensor:
        other = other._data if hasattr(other, "_data") else other
        return _make(fn(self._data, other))

    def __and__(self: Tensor, other: Any) -> Tensor:
        return self._logical(other, np.bitwise_and)

    def __or__(self: Tensor, other: Any) -> Tensor:
        return self._logical(other, np.bitwise_or)

    def __xor__(self: Tensor, other: Any) -> Tensor:
        return self._logical(other, np.bitwise_xor)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def logical_and(self: Tensor, other: Any) -> Tensor:
        """Elementwise AND of the truth values (nonzero is True), a bool tensor."""
        return self._logical(other, np.logical_and)

    def logical_or(self: Tensor, other: Any) -> Tensor:
        """Elementwise OR of the truth values (nonzero is True), a bool tensor."""
        return self._logical(other, np.logical_or)

    # ---- new tensors like this one, and selections built from indexing ----------------------
    def new_zeros(self: Tensor, *size: Any, dtype: Any = None, requires_grad: bool = False
                  ) -> Tensor:
        """Zeros of ``size`` with this tensor's dtype unless ``dtype`` is given."""
        return self.new_full(_size_arg(size), 0, dtype=dtype, requires_grad=requires_grad)

    def new_ones(self: Tensor, *size: Any, dtype: Any = None, requires_grad: bool = False
                 ) -> Tensor:
        """Ones of ``size`` with this tensor's dtype unless ``dtype`` is given."""
        return self.new_full(_size_arg(size), 1, dtype=dtype, requires_grad=requires_grad)

    def new_full(self: Tensor, size: Any, fill_value: Any, dtype: Any = None,
                 requires_grad: bool = False) -> Tensor:
        """``fill_value`` everywhere in ``size``, this tensor's dtype unless ``dtype`` is given."""
        dtypes.check_scalar_fits("new_full", fill_value, dtype or self._data.dtype)
        array = np.full(_size_arg((size,)), fill_value, dtype=dtype or self._data.dtype)
        return Tensor(array, requires_grad=requires_grad)

    def new_tensor(self: Tensor, data: Any, dtype: Any = None, requires_grad: bool = False
                   ) -> Tensor:
        """A new tensor of ``data`` (copied) in this tensor's dtype unless ``dtype`` is given."""
        array = np.array(data._data if hasattr(data, "_data") else data,
                         dtype=dtype or self._data.dtype)
        return Tensor(array, requires_grad=requires_grad)

    def index_select(self: Tensor, dim: int, index: Any) -> Tensor:
        """The entries at the 1-d integer ``index`` along ``dim`` (recorded, as ``x[..., index]``).

        Raises:
            IndexError: ``index`` is not 1-d (or 0-d) integers. RuntimeError: an index is
            outside [0, size) (torch counts no index from the end here).
        """
        index = np.asarray(index._data if hasattr(index, "_data") else index)
        if index.ndim > 1 or index.dtype.kind not in "iu":
            raise IndexError(f"index_select: index must be 1-d integers, got shape "
                             f"{index.shape} of {index.dtype}")
        from gradwise.autograd.ops.scatter import check_index_range

        dim = _dim_index("index_select", dim, self.ndim)
        check_index_range("index_select", index, dim, self.shape[dim] if self.ndim else 1)
        return self[(slice(None),) * dim + (index.reshape(-1),)]

    def narrow(self: Tensor, dim: int, start: int, length: int) -> Tensor:
        """``length`` entries from ``start`` along ``dim`` (a recorded slice).

        Raises:
            IndexError: the range leaves the dim.
        """
        dim = _dim_index("narrow", dim, self.ndim)
        size = self.shape[dim]
        start = int(start) + size if int(start) < 0 else int(start)
        if not (start >= 0 and length >= 0 and start + length <= size):
            raise IndexError(f"narrow: start {start} + length {length} exceeds dim {dim} of "
                             f"size {size}")
        return self[(slice(None),) * dim + (slice(start, start + length),)]

    def flip(self: Tensor, *dims: Any) -> Tensor:
        """Reverse the order along each of ``dims``, in new memory as ``torch.flip`` (NumPy's
        flip is a view); recorded.

        Raises:
            RuntimeError: a dim appears twice (torch: "dim ... appears multiple times").
        """
        from gradwise.autograd.ops.shape import Flip

        axes = [_dim_index("flip", dim, self.ndim) for dim in _size_arg(dims)]
        for axis in axes:
            if axes.count(axis) > 1:
                raise RuntimeError(f"flip: dim {axis} appears multiple times in the list of dims")
        return Flip.apply(self, tuple(axes))

    def tril(self: Tensor, diagonal: int = 0) -> Tensor:
        """The lower triangle of the last two dims (above ``diagonal``: zeros); recorded."""
        return self._triangle(np.tril, diagonal, "tril")

    def triu(self: Tensor, diagonal: int = 0) -> Tensor:
        """The upper triangle of the last two dims (below ``diagonal``: zeros); recorded."""
        return self._triangle(np.triu, diagonal, "triu")

    def _triangle(self: Tensor, pick: Any, diagonal: int, name: str) -> Tensor:
        if self.ndim < 2:
            raise ValueError(f"{name}: needs at least 2 dims, got shape {tuple(self.shape)}")
        keep = pick(np.ones(self.shape[-2:], dtype=bool), diagonal)
        return where(keep, self, self.new_zeros(()))

    def isclose(self: Tensor, other: Any, rtol: float = 1e-5, atol: float = 1e-8,
                equal_nan: bool = False) -> Tensor:
        """Elementwise ``|self - other| <= atol + rtol |other|`` as a bool tensor."""
        other = other._data if hasattr(other, "_data") else other
        return _make(np.isclose(self._data, other, rtol=rtol, atol=atol, equal_nan=equal_nan))

    def __floordiv__(self: Tensor, other: Any) -> Tensor:
        """floor(self / other) elementwise (``//`` and ``floor_divide``), as torch's; no gradient.
        """
        return _rounded_div(self, other, "floor")

    def __rfloordiv__(self: Tensor, other: Any) -> Tensor:
        return _rounded_div(other, self, "floor")

    floor_divide = __floordiv__

    def __mod__(self: Tensor, other: Any) -> Tensor:
        """``self % other`` with the divisor's sign, as Python and ``torch.remainder``;
        differentiable in both operands."""
        return Remainder.apply(*promoted(self, other))

    def __rmod__(self: Tensor, other: Any) -> Tensor:
        return Remainder.apply(*promoted(other, self))

    remainder = __mod__

    def eq(self: Tensor, other: Any) -> Tensor:
        """Elementwise self == other (broadcast), a bool tensor, as ``torch.eq``."""
        return self == other

    def ne(self: Tensor, other: Any) -> Tensor:
        """Elementwise self != other (broadcast), a bool tensor, as ``torch.ne``."""
        return self != other

    def lt(self: Tensor, other: Any) -> Tensor:
        """Elementwise self < other (broadcast), a bool tensor, as ``torch.lt``."""
        return self < other

    def le(self: Tensor, other: Any) -> Tensor:
        """Elementwise self <= other (broadcast), a bool tensor, as ``torch.le``."""
        return self <= other

    def gt(self: Tensor, other: Any) -> Tensor:
        """Elementwise self > other (broadcast), a bool tensor, as ``torch.gt``."""
        return self > other

    def ge(self: Tensor, other: Any) -> Tensor:
        """Elementwise self >= other (broadcast), a bool tensor, as ``torch.ge``."""
        return self >= other

    def equal(self: Tensor, other: Tensor) -> bool:
        """True when shapes and every value agree (``torch.equal``)."""
        return self.shape == other.shape and bool(np.array_equal(self._data, other._data))

    def allclose(self: Tensor, other: Any, rtol: float = 1e-5, atol: float = 1e-8,
                 equal_nan: bool = False) -> bool:
        """True when |self - other| <= atol + rtol * |other| everywhere (numpy.allclose's rule)."""
        other = other._data if hasattr(other, "_data") else other
        return bool(np.allclose(self._data, other, rtol=rtol, atol=atol, equal_nan=equal_nan))

    def count_nonzero(self: Tensor, dim: Any = None) -> Tensor:
        """Number of nonzero elements (over ``dim`` when given), int64, as torch's."""
        return _make(np.asarray(np.count_nonzero(self._data, axis=dim), dtype=np.int64))

    def nonzero(self: Tensor, as_tuple: bool = False) -> Any:
        """Indices of the nonzero elements: (n, ndim) int64, or one index tensor per dim."""
        found = np.nonzero(self._data)
        if as_tuple:
            return tuple(_make(i.astype(np.int64)) for i in found)
        return _make(np.stack(found, axis=1).astype(np.int64))

    def masked_fill(self: Tensor, mask: Any, value: float) -> Tensor:
        """``value`` where ``mask`` holds; the gradient flows to the other elements."""
        dtypes.check_scalar_fits("masked_fill", value, self._data.dtype)
        # a Tensor mask goes to `where` as it is: a comparison's mask then exports as one
        mask = mask if isinstance(mask, Tensor) else np.asarray(mask)
        return where(mask, _make(np.asarray(value, dtype=self._data.dtype)), self)

    # ---- Python protocols ---------------------------------------------------------------------
    def __format__(self: Tensor, spec: str) -> str:
        """``f"{loss:.4f}"`` formats a one-element tensor's value; other tensors use repr."""
        if self._data.size == 1 and self._data.ndim == 0:
            return format(self._data.item(), spec)
        if not spec:
            return repr(self)
        raise TypeError(
            f"unsupported format string for a tensor of shape {self.shape}: use .item() on a "
            "one-element tensor"
        )

    def __index__(self: Tensor) -> int:
        """A one-element integer tensor as a Python index (``classes[label]``).

        Raises:
            TypeError: not integer, or not one element.
        """
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError(
                f"only integer tensors of a single element can be converted to an index; this "
                f"one has dtype {self._data.dtype} and shape {self.shape}"
            )
        return int(self._data.item())

    def __iter__(self: Tensor) -> Any:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __contains__(self: Tensor, value: Any) -> bool:
        value = value._data if hasattr(value, "_data") else value
        return bool(np.any(self._data == value))

    # ---- random in-place fills (not recorded; they bump the version counter) -------------------
    def _fill_random(self: Tensor, op: str, values: np.ndarray) -> Tensor:
        self._check_inplace(op)
        self._data[...] = values
        return self._bump()

    def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *, generator: Any = None,
                rng: Any = None) -> Tensor:
        """Fill with N(mean, std^2) from ``generator`` (default: the default generator)."""
        stream = _random.resolve(generator, rng, "normal_")
        return self._fill_random("normal_", stream.normal(mean, std, self.shape))

    def uniform_(self: Tensor, a: float = 0.0, b: float = 1.0, *, generator: Any = None,
                 rng: Any = None) -> Tensor:
        """Fill with U(a, b)."""
        stream = _random.resolve(generator, rng, "uniform_")
        return self._fill_random("uniform_", stream.uniform(a, b, self.shape))

    def bernoulli_(self: Tensor, p: float = 0.5, *, generator: Any = None) -> Tensor:
        """In place: each element becomes 1 with probability ``p``, else 0 (``generator`` or the
        default).
        """
        stream = _random.resolve(generator, None, "bernoulli_")
        return self._fill_random("bernoulli_", stream.random(self.shape) < p)

    def exponential_(self: Tensor, lambd: float = 1.0, *, generator: Any = None) -> Tensor:
        """In place: samples of Exp(``lambd``) (mean 1/lambd), from ``generator`` or the default
        one.
        """
        stream = _random.resolve(generator, None, "exponential_")
        return self._fill_random("exponential_", stream.exponential(1.0 / lambd, self.shape))

    def random_(self: Tensor, low: int = 0, high: int | None = None, *,
                generator: Any = None) -> Tensor:
        """Integers in [low, high) (one argument: [0, low))."""
        if high is None:
            low, high = 0, low
        stream = _random.resolve(generator, None, "random_")
        return self._fill_random("random_", stream.integers(low, high, self.shape))

    def abs_(self: Tensor) -> Tensor:
        """In place: |x|; returns self. Same in-place rules as ``add_``."""
        return self._assign_("abs_", lambda t: t.abs())

    def sqrt_(self: Tensor) -> Tensor:
        """In place: sqrt(x); returns self. Same in-place rules as ``add_``."""
        return self._assign_("sqrt_", lambda t: t.sqrt())

    def exp_(self: Tensor) -> Tensor:
        """In place: e**x; returns self. Same in-place rules as ``add_``."""
        return self._assign_("exp_", lambda t: t.exp())

    def addcmul_(self: Tensor, tensor1: Any, tensor2: Any, value: float = 1.0) -> Tensor:
        """In place: self += value * tensor1 * tensor2 (broadcast), as torch's."""
        if self._records_inplace("addcmul_", tensor1, tensor2):
            return self._rebase("addcmul_", lambda t: t + value * (tensor1 * tensor2))
        first = tensor1._data if hasattr(tensor1, "_data") else tensor1
        second = tensor2._data if hasattr(tensor2, "_data") else tensor2
        self._data += value * first * second
        return self._bump()

    def addcdiv_(self: Tensor, tensor1: Any, tensor2: Any, value: float = 1.0) -> Tensor:
        """In place: self += value * tensor1 / tensor2 (broadcast), as torch's (the Adam-style
        update)."""
        if self._records_inplace("addcdiv_", tensor1, tensor2):
            return self._rebase("addcdiv_", lambda t: t + value * (tensor1 / tensor2))
        first = tensor1._data if hasattr(tensor1, "_data") else tensor1
        second = tensor2._data if hasattr(tensor2, "_data") else tensor2
        self._data += value * first / second
        return self._bump()

    def masked_fill_(self: Tensor, mask: Any, value: float) -> Tensor:
        """In place: set the elements where ``mask`` (broadcast) is True to ``value``; returns self.
        """
        mask = mask._data if hasattr(mask, "_data") else np.asarray(mask)
        index = np.broadcast_to(mask, self.shape)
        if self._records_inplace("masked_fill_", value):
            fill = value if hasattr(value, "_data") else np.asarray(value, self._data.dtype)
            return self._rebase("masked_fill_", lambda t: SetItem.apply(t, fill, index))
        self._data[index] = value._data if hasattr(value, "_data") else value
        return self._bump()

    # ---- in-place activations (recorded as ``add_`` is) ------------------------------------------
    def relu_(self: Tensor) -> Tensor:
        """In place: max(x, 0); returns self, as ``torch.Tensor.relu_``."""
        return self._assign_("relu_", lambda t: t.relu())

    def sigmoid_(self: Tensor) -> Tensor:
        """In place: 1 / (1 + e**-x); returns self, as ``torch.Tensor.sigmoid_``."""
        return self._assign_("sigmoid_", lambda t: t.sigmoid())

    def tanh_(self: Tensor) -> Tensor:
        """In place: tanh(x); returns self, as ``torch.Tensor.tanh_``."""
        return self._assign_("tanh_", lambda t: t.tanh())

    def neg_(self: Tensor) -> Tensor:
        """In place: -x; returns self, as ``torch.Tensor.neg_``."""
        return self._assign_("neg_", lambda t: -t)

    def pow_(self: Tensor, exponent: Any) -> Tensor:
        """In place: x ** exponent; returns self, as ``torch.Tensor.pow_``."""
        return self._assign_("pow_", lambda t: t ** exponent, exponent)

    # int and bool come last: a method of that name shadows the builtin in every annotation
    # of the class body below it (mypy reads ``x: int`` there as this method)
    def int(self: Tensor) -> Tensor:
        """An int32 copy (truncated toward zero), as ``torch.Tensor.int``."""
        return self._cast(np.int32)

    def bool(self: Tensor) -> Tensor:
        """A bool copy (nonzero is True), as ``torch.Tensor.bool``."""
        return self._cast(np.bool_)


def _sort_indices(data: np.ndarray, d: int, descending: bool) -> np.ndarray:
    """Stable sort order along ``d`` with NaN largest (torch's ordering), int64.

    Descending sorts the flipped array ascending and flips the answer back, so equal entries
    keep their original order and no value is negated (``-x`` wraps unsigned ints and would
    send NaN to the wrong end).
    """
    if not descending:
        return np.argsort(data, axis=d, kind="stable").astype(np.int64)
    n = data.shape[d]
    order = np.argsort(np.flip(data, axis=d), axis=d, kind="stable")
    return (n - 1 - np.flip(order, axis=d)).astype(np.int64)


def _check_int_divisor(x: np.ndarray, y: np.ndarray, name: str) -> None:
    """Integer (or bool) division by zero: ZeroDivisionError, as PyTorch (NumPy gives 0 and a
    warning)."""
    if x.dtype.kind in "iub" and y.dtype.kind in "iub" and not np.all(y):
        raise ZeroDivisionError(f"{name}: integer division by zero ({x.dtype} by a 0 in the "
                                "divisor; PyTorch raises ZeroDivisionError too)")


def _rounded_div(a: Any, b: Any, rounding_mode: str) -> Tensor:
    """``a / b`` rounded down ("floor") or toward zero ("trunc") in the promoted dtype (PyTorch:
    ``7 // 2`` is 3, ``-7 // 2`` is -4, ``-7 / 2`` truncated is -3)."""
    x, y = (t._data for t in promoted(a, b))
    _check_int_divisor(x, y, "floor_divide" if rounding_mode == "floor" else "div")
    with np.errstate(divide="ignore", invalid="ignore"):
        if rounding_mode == "floor":
            out = np.floor_divide(x, y)
        elif x.dtype.kind in "iub":
            out = (np.abs(x) // np.abs(y)) * np.sign(x) * np.sign(y)
        else:
            out = np.trunc(x / y)
    return _make(np.asarray(out, dtype=x.dtype))


def _size_arg(size: tuple[Any, ...]) -> tuple[int, ...]:
    """``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` all mean the shape (2, 3)."""
    if len(size) == 1 and isinstance(size[0], tuple | list):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def _dim_index(name: str, dim: int, ndim: int) -> int:
    """``dim`` as a non-negative axis, or an IndexError naming the op."""
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{name}: dim {dim} is out of range for {ndim} dims")
    return dim % max(ndim, 1)
