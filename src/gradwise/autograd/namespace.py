"""Module-level functions with PyTorch's names: ``gw.tanh(x)``, ``gw.sum(x, dim=1)``,
``gw.clamp(x, min=0)``, ``gw.isnan(x)``, ``gw.allclose(a, b)``, ``gw.histc(x, bins=10)`` ...

Each ``gw.name(input, *args, **kwargs)`` is ``input.name(*args, **kwargs)`` (with the same
recording for autograd); an array-like ``input`` (list, ndarray, number) becomes a constant
tensor first, with ``gw.tensor``'s dtype rules.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np

from gradwise import linalg
from gradwise.autograd import dtypes
from gradwise.autograd import random as _random
from gradwise.autograd.dtypes import _category, get_default_dtype, promote
from gradwise.autograd.functional import cat, promoted, stack
from gradwise.autograd.kernels import _threads
from gradwise.autograd.ops.reduce import VectorNorm
from gradwise.autograd.tensor import Tensor, _dtype_name, tensor

# torch.<name>(input, ...) == input.<name>(...)
_METHOD_FUNCTIONS = (
    "abs", "exp", "log", "log10", "log2", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos",
    "tanh", "sigmoid", "relu", "neg", "square", "reciprocal", "sign", "floor", "ceil", "round",
    "trunc", "isnan", "isinf", "isfinite", "logical_not", "logical_and", "logical_or",
    "sum", "mean", "std", "var", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "any",
    "all", "logsumexp", "softmax", "log_softmax", "cumsum", "topk", "sort", "argsort",
    "flatten", "reshape", "squeeze", "unsqueeze", "transpose", "permute", "t", "chunk", "split",
    "unbind", "gather", "matmul", "mm", "dot", "clamp", "clip", "eq", "ne", "lt", "le", "gt",
    "ge", "equal", "allclose", "add", "sub", "mul", "div", "pow", "masked_fill", "numel",
    "nonzero", "count_nonzero", "norm", "movedim", "clamp_min", "clamp_max", "swapaxes",
    "index_select", "narrow", "flip", "tril", "triu", "isclose", "remainder", "floor_divide",
    # autograd/tensor_extras.py
    "roll", "diag", "diag_embed", "diagonal", "trace", "tile", "repeat_interleave", "unique",
    "unique_consecutive", "median", "nanmedian", "quantile", "nanquantile", "mode", "kthvalue",
    "cummax", "cummin", "logcumsumexp", "scatter", "scatter_add", "scatter_reduce",
    "index_add", "masked_select", "take_along_dim", "fliplr", "flipud", "rot90", "lerp",
    "hypot", "logaddexp", "erfinv", "lgamma", "digamma", "erf", "erfc", "xlogy", "sinc",
    "heaviside", "copysign", "nextafter", "frac", "fmod", "nan_to_num", "det", "logdet",
    "slogdet", "inverse", "pinverse", "cholesky", "kron", "cross", "moveaxis", "bincount",
    "cumprod", "diff", "nansum", "nanmean", "signbit", "logical_xor", "isneginf", "isposinf",
    "isreal", "isin", "exp2", "logit", "deg2rad", "rad2deg", "float_power", "fmax", "fmin",
    "sgn", "positive", "aminmax", "argwhere", "unflatten", "tensor_split", "hsplit", "vsplit",
    "addmm", "addmv", "baddbmm", "addcmul", "addcdiv", "mv", "inner", "vdot", "dist", "msort",
    "clone", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "atan2",
    "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "arctan2", "take",
    "index_fill", "index_put", "bitwise_left_shift", "bitwise_right_shift",
    # autograd/tensor_more.py
    "swapdims", "ravel", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "fix",
    "greater_equal", "less_equal", "not_equal", "select", "ldexp", "masked_scatter",
    "index_copy", "put",
)


def _as_input(value: Any) -> Tensor:
    return value if isinstance(value, Tensor) else tensor(value)


def _method_function(name: str) -> Callable[..., Any]:
    def function(input: Any, *args: Any, out: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        if out is None:
            return getattr(_as_input(input), name)(*args, **kwargs)
        if (name in _OUT_SETS_DTYPE and isinstance(out, Tensor) and "dtype" not in kwargs
                and out._data.dtype != _as_input(input)._data.dtype):
            kwargs["dtype"] = out._data.dtype  # torch accumulates in out's dtype
        return _into_out(name, lambda: getattr(_as_input(input), name)(*args, **kwargs),
                         out, (input, *args, *kwargs.values()))

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (
        f"``gw.{name}(input, ..., out=None)``: the same as ``input.{name}(...)`` (see "
        f"``gradwise.Tensor.{name}``); array-like input becomes a constant tensor. ``out``: "
        "a tensor (a tuple of them for a tuple result) the result is written into and "
        "returned, as torch's (see ``_into_out``)."
    )
    return function


# torch's three out= dtype rules: most functions cast the result into out when torch's
# can_cast allows (a float result never into an integer out); these accumulate in out's dtype;
# these want out's dtype to equal the result's
_OUT_SETS_DTYPE = frozenset({"sum", "prod", "cumsum", "cumprod", "nansum"})
_OUT_SAME_DTYPE = frozenset({"amax", "amin", "matmul", "mm", "mv", "dot", "vdot", "inner", "norm",
                             "clamp", "clip", "clamp_min", "clamp_max", "addmm", "addmv",
                             "baddbmm"})


def _into_out(name: str, compute: Callable[[], Any], out: Any, operands: tuple) -> Any:
    """torch's ``out=`` for every function of ``_METHOD_FUNCTIONS``: the result is written into
    ``out`` (cast to its dtype by the rules above; resized, with torch's warning, when its
    shape differs and it holds elements) and ``out`` is returned. Not recorded, as in torch.

    Raises:
        RuntimeError: grad is on and an operand or ``out`` requires grad (torch's "functions
            with out=... arguments don't support automatic differentiation"); the result's
            dtype can't be cast to out's (float into an integer out, torch's rule), or differs
            from it for the functions of ``_OUT_SAME_DTYPE``.
        TypeError: ``out`` is not a Tensor (or a tuple of as many Tensors as the result has).
    """
    import warnings

    from gradwise.autograd.grad_mode import is_grad_enabled, no_grad
    outs = out if isinstance(out, tuple | list) else (out,)
    if not builtins.all(isinstance(o, Tensor) for o in outs):
        raise TypeError(f"{name}(): argument 'out' must be a Tensor (or a tuple of Tensors), "
                        f"got {type(out).__name__}")
    if is_grad_enabled() and builtins.any(
            isinstance(t, Tensor) and t.requires_grad for t in (*operands, *outs)):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic "
                           "differentiation, but one of the arguments requires grad.")
    with no_grad():
        result = compute()
    results = tuple(result) if isinstance(result, tuple) else (result,)
    if len(results) != len(outs):
        raise TypeError(f"{name}(): out must be {len(results)} tensor(s), got {len(outs)}")
    for target, value in zip(outs, results, strict=True):
        array = value._data if isinstance(value, Tensor) else np.asarray(value)
        if name in _OUT_SAME_DTYPE and array.dtype != target._data.dtype:
            raise RuntimeError(f"{name}(): Expected out tensor to have dtype {array.dtype}, but "
                               f"got {target._data.dtype} instead")
        if not can_cast(array.dtype, target._data.dtype):
            from gradwise.autograd.tensor import _dtype_name
            raise RuntimeError(f"{name}(): result type {_dtype_name(array.dtype)} can't be cast "
                               f"to the desired output type {_dtype_name(target._data.dtype)}")
        if target.shape == array.shape:
            target._data[...] = array
        else:
            if target._data.size:
                warnings.warn(f"{name}(): An output with one or more elements was resized since "
                              f"it had shape {list(target.shape)}, which does not match the "
                              f"required output shape {list(array.shape)}. (torch's warning)",
                              UserWarning, stacklevel=3)
            target._data = array.astype(target._data.dtype, copy=True)
        target._version[0] += 1
    return out


# (this shadows the builtins any/all/sum/max/min/abs/round/pow in this module: use builtins.*)
globals().update({name: _method_function(name) for name in _METHOD_FUNCTIONS})
multiply, subtract, divide, true_divide = (
    globals()["mul"], globals()["sub"], globals()["div"], globals()["div"])
absolute, negative, greater, less = (
    globals()["abs"], globals()["neg"], globals()["gt"], globals()["lt"])


# torch's constants (torch.pi, torch.e, torch.inf, torch.nan): Python floats
pi, e, inf, nan = np.pi, np.e, np.inf, np.nan


class finfo:  # noqa: N801 - torch's name
    """Limits of a floating dtype (default: the default dtype) as Python numbers, as
    ``torch.finfo``: ``bits``, ``eps``, ``max``, ``min``, ``tiny`` (= ``smallest_normal``),
    ``resolution``, ``dtype`` (its name). Values from ``numpy.finfo``.

    Raises:
        ValueError: an integer or bool dtype (use ``iinfo``).
    """

    def __init__(self, type: Any = None) -> None:  # noqa: A002 - torch's name
        dtype = np.dtype(get_default_dtype() if type is None else type)
        if dtype.kind != "f":
            raise ValueError(f"finfo: {dtype} is not a floating dtype (use gw.iinfo)")
        info = np.finfo(dtype)
        self.bits = int(info.bits)
        self.eps, self.max, self.min = float(info.eps), float(info.max), float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = float(info.resolution)
        self.dtype = dtype.name

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801 - torch's name
    """Limits of an integer dtype as Python ints, as ``torch.iinfo``: ``bits``, ``max``,
    ``min``, ``dtype`` (its name). Values from ``numpy.iinfo``.

    Raises:
        ValueError: a floating dtype (use ``finfo``).
    """

    def __init__(self, type: Any) -> None:  # noqa: A002 - torch's name
        dtype = np.dtype(type)
        if dtype.kind == "b":
            self.bits, self.min, self.max, self.dtype = 8, 0, 1, "bool"
            return
        if dtype.kind not in "iu":
            raise ValueError(f"iinfo: {dtype} is not an integer dtype (use gw.finfo)")
        info = np.iinfo(dtype)
        self.bits, self.min, self.max = int(info.bits), int(info.min), int(info.max)
        self.dtype = dtype.name

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


def promote_types(type1: Any, type2: Any) -> np.dtype:
    """The dtype both promote to, as ``torch.promote_types`` (categories bool < integer <
    float, then the wider; gradwise's one rule in ``autograd/dtypes.py``)."""
    return np.dtype(promote([np.dtype(type1), np.dtype(type2)], []))


def result_type(tensor: Any, other: Any) -> np.dtype:  # noqa: A002
    """The dtype an op on ``tensor`` and ``other`` (tensors or numbers) gives, as
    ``torch.result_type``."""
    return np.dtype(dtypes.result_type(tensor, other))


def can_cast(from_: Any, to: Any) -> bool:
    """Whether torch's casting rules allow ``from_`` -> ``to`` in an in-place op: never to a
    lower category (float -> integer, integer -> bool), as ``torch.can_cast``."""
    return bool(_category(np.dtype(from_)) <= _category(np.dtype(to)))


def combinations(input: Any, r: int = 2, with_replacement: bool = False) -> Tensor:  # noqa: A002
    """The length-``r`` combinations of a 1-D tensor's elements, one per row (shape (k, r)),
    in ``itertools.combinations`` order, as ``torch.combinations``; recorded (an index).

    Raises:
        ValueError: the input is not 1-D or ``r`` is negative.
    """
    import itertools
    x = _as_input(input)
    if x.ndim != 1 or r < 0:
        raise ValueError(f"combinations: expects a 1-D tensor and r >= 0, got shape "
                         f"{tuple(x.shape)} and r={r}")
    pick = (itertools.combinations_with_replacement if with_replacement
            else itertools.combinations)
    rows = np.array(list(pick(range(x.shape[0]), r)), dtype=np.int64)
    if r == 0 or not rows.size:
        return Tensor._make(np.empty((0,) if r == 0 else (0, r), x._data.dtype), False, None)
    return x[Tensor._make(rows, False, None)]


class _Histogram(NamedTuple):
    hist: Tensor
    bin_edges: Tensor


def histogram(input: Any, bins: Any = 100, *, range: Any = None,  # noqa: A002
              weight: Any = None, density: bool = False) -> _Histogram:
    """Counts of a float tensor's values in ``bins`` (a count over ``range`` or the data's
    range, or a 1-D tensor of edges), as ``torch.histogram``: ``(hist, bin_edges)`` in the
    input's dtype; ``weight`` weighs each value, ``density`` normalises to a density.
    Computed by ``numpy.histogram`` (same bin rules).

    Raises:
        TypeError: an integer or bool input (torch refuses those too).
    """
    data = _as_input(input)._data
    if data.dtype.kind != "f":
        raise TypeError(f"histogram: expects a floating tensor, got {data.dtype}")
    edges_in = bins._data if isinstance(bins, Tensor) else bins
    weights = None if weight is None else _as_input(weight)._data.reshape(-1)
    counts, edges = np.histogram(data.reshape(-1), bins=edges_in, range=range,
                                 weights=weights, density=density)
    return _Histogram(Tensor._make(counts.astype(data.dtype), False, None),
                      Tensor._make(edges.astype(data.dtype), False, None))


class _Frexp(NamedTuple):
    mantissa: Tensor
    exponent: Tensor


def frexp(input: Any) -> _Frexp:  # noqa: A002
    """Mantissa in [0.5, 1) and int32 exponent with ``input = mantissa * 2 ** exponent``, as
    ``torch.frexp`` (``numpy.frexp``); outside the graph.

    Raises:
        TypeError: an integer or bool input.
    """
    data = _as_input(input)._data
    if data.dtype.kind != "f":
        raise TypeError(f"frexp: expects a floating tensor, got {data.dtype}")
    mantissa, exponent = np.frexp(data)
    return _Frexp(Tensor._make(mantissa, False, None),
                  Tensor._make(exponent.astype(np.int32), False, None))


def poisson(input: Any, generator: Any = None) -> Tensor:  # noqa: A002
    """Samples of Poisson(rate) for each rate in ``input`` (same dtype and shape), from
    ``generator`` or the default generator, as ``torch.poisson``; outside the graph.

    Raises:
        ValueError: a negative or non-finite rate.
    """
    rates = _as_input(input)._data
    if rates.size and not (np.isfinite(rates).all() and (rates >= 0).all()):
        raise ValueError("poisson: rates must be finite and non-negative")
    stream = _random.resolve(generator, None, "poisson")
    return Tensor._make(np.asarray(stream.poisson(rates)).astype(rates.dtype), False, None)


_num_threads: list[int] = []  # the count set_num_threads last set (none yet: the libraries' own)


def set_num_threads(num_threads: int) -> None:
    """Limit the threads of the native libraries behind gradwise (BLAS/OpenMP through
    threadpoolctl, numba's parallel kernels) and the threads of gradwise's own batch-parallel
    regions (convolution and pooling, ``kernels/_threads.py``; 1 turns them off), as
    ``torch.set_num_threads``; lasts until changed.

    Without threadpoolctl (it comes with scikit-learn) only numba is limited.

    Raises:
        ValueError: ``num_threads`` is not a positive int.
    """
    if isinstance(num_threads, bool) or not isinstance(num_threads, int | np.integer) or (
            num_threads < 1):
        raise ValueError(f"set_num_threads: expected a positive int, got {num_threads!r}")
    num_threads = int(num_threads)
    # numba first: its first set_num_threads loads its threading layer (an OpenMP runtime),
    # which threadpoolctl must then see and limit too (the other order left that pool at the
    # core count until a second call; third newcomer review of issue 14)
    try:
        import numba
    except ImportError:
        pass
    else:
        # numba.config sets NUMBA_NUM_THREADS at import (from the environment), unseen by mypy
        ceiling = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
        numba.set_num_threads(builtins.min(num_threads, ceiling))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        threadpool_limits(limits=num_threads)
    _num_threads[:] = [num_threads]
    _threads.set_thread_count(num_threads)  # the batch-parallel regions of conv and pooling


def get_num_threads() -> int:
    """The thread count ``set_num_threads`` set; before any call, the most threads any native
    library behind gradwise uses (threadpoolctl's report), or the CPU count.

    Like ``torch.get_num_threads`` this is the count asked for, even above the core count:
    numba's pool is capped at its launch size (``numba.config.NUMBA_NUM_THREADS``, the core
    count by default), so after ``set_num_threads(3)`` on 2 cores numba runs 2 (issue 14;
    no gradwise kernel is parallel, so gradwise itself is not affected)."""
    if _num_threads:
        return _num_threads[0]
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        counts = []
    else:
        counts = [info["num_threads"] for info in threadpool_info()]
    return builtins.max(counts) if counts else (os.cpu_count() or 1)


def is_tensor(obj: Any) -> bool:
    """Whether ``obj`` is a gradwise Tensor."""
    return isinstance(obj, Tensor)


def is_floating_point(input: Tensor) -> bool:  # noqa: A002
    """True when ``input``'s dtype is a floating type (float16/32/64), as
    ``torch.is_floating_point``.
    """
    return input._data.dtype.kind == "f"


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """``data`` as a Tensor, sharing memory when it already is one (or an ndarray of the dtype)."""
    if isinstance(data, Tensor) and (dtype is None or np.dtype(dtype) == data.dtype):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or np.dtype(dtype) == data.dtype):
        return Tensor._make(data, False, None)
    return tensor(data, dtype=dtype, device=device)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:  # noqa: A002
    """Batched matrix product of (B, n, m) and (B, m, p).

    Raises:
        ValueError: either operand is not 3-d.
    """
    if input.ndim != 3 or mat2.ndim != 3:
        raise ValueError(f"bmm: expects 3-d tensors, got shapes {input.shape} and {mat2.shape}")
    return input @ mat2


def outer(input: Any, vec2: Any) -> Tensor:  # noqa: A002
    """Outer product of two 1-d tensors, as ``torch.outer``; recorded.

    Raises:
        ValueError: either is not 1-d (naming both shapes).
    """
    return _as_input(input).outer(_as_input(vec2))


ger = outer


def atleast_1d(*tensors: Any) -> Any:
    """Each tensor with at least 1 dim (a 0-d one becomes shape (1,)), as
    ``torch.atleast_1d``; one argument gives one tensor, several a tuple."""
    return _atleast(tensors, 1)


def atleast_2d(*tensors: Any) -> Any:
    """Each tensor with at least 2 dims (1-d (n,) becomes (1, n)), as ``torch.atleast_2d``."""
    return _atleast(tensors, 2)


def atleast_3d(*tensors: Any) -> Any:
    """Each tensor with at least 3 dims ((n,) -> (1, n, 1), (m, n) -> (m, n, 1)), as
    ``torch.atleast_3d``."""
    return _atleast(tensors, 3)


def _atleast(tensors: tuple[Any, ...], ndim: int) -> Any:
    if len(tensors) == 1 and isinstance(tensors[0], list | tuple):
        tensors = tuple(tensors[0])
        single = False
    else:
        single = len(tensors) == 1
    out = []
    for t in map(_as_input, tensors):
        shape = tuple(t.shape)
        if len(shape) >= ndim:
            out.append(t)
            continue
        if ndim == 3:
            shape = {0: (1, 1, 1), 1: (1, *shape, 1), 2: (*shape, 1)}[len(shape)]
        else:
            shape = (1,) * (ndim - len(shape)) + shape
        out.append(t.reshape(shape))
    return out[0] if single else tuple(out)


def broadcast_tensors(*tensors: Any) -> tuple[Tensor, ...]:
    """The tensors expanded to their common broadcast shape (recorded views), as
    ``torch.broadcast_tensors``.

    Raises:
        ValueError: the shapes do not broadcast (naming them).
    """
    tensors = tuple(map(_as_input, tensors))
    try:
        shape = np.broadcast_shapes(*(t.shape for t in tensors))
    except ValueError:
        raise ValueError("broadcast_tensors: shapes "
                         f"{[tuple(t.shape) for t in tensors]} do not broadcast") from None
    return tuple(t if tuple(t.shape) == shape else t.expand(*shape) for t in tensors)


def broadcast_shapes(*shapes: Any) -> tuple[int, ...]:
    """The broadcast shape of the given shapes, as ``torch.broadcast_shapes``."""
    return tuple(np.broadcast_shapes(*(tuple(s) if isinstance(s, list | tuple) else (s,)
                                       for s in shapes)))


def meshgrid(*tensors: Any, indexing: str | None = None) -> tuple[Tensor, ...]:
    """Coordinate grids from 1-d tensors, as ``torch.meshgrid``: ``indexing="ij"`` (the
    default, PyTorch's; it warns when not given, gradwise does not) gives shape (n1, n2, ...),
    "xy" swaps the first two dims. Recorded.

    Raises:
        ValueError: an input is not 0-d/1-d, or unknown ``indexing``.
    """
    if len(tensors) == 1 and isinstance(tensors[0], list | tuple):
        tensors = tuple(tensors[0])
    indexing = "ij" if indexing is None else indexing
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    tensors = tuple(map(_as_input, tensors))
    if builtins.any(t.ndim > 1 for t in tensors):
        raise ValueError("meshgrid: expects 0-d or 1-d tensors, got shapes "
                         f"{[tuple(t.shape) for t in tensors]}")
    if len({t.dtype for t in tensors}) > 1:
        raise TypeError("meshgrid: expects tensors of one dtype (as torch), got "
                        f"{[str(t.dtype) for t in tensors]}")
    vectors = [t.reshape(-1) for t in tensors]
    swap = indexing == "xy" and len(vectors) >= 2
    order = list(range(len(vectors)))
    if swap:
        order[0], order[1] = 1, 0
    shape = tuple(vectors[i].shape[0] for i in order)
    grids = []
    for i, v in enumerate(vectors):
        position = order.index(i)
        view = [1] * len(vectors)
        view[position] = v.shape[0]
        grids.append(v.reshape(view).expand(*shape))
    return tuple(grids)


def cartesian_prod(*tensors: Any) -> Tensor:
    """Every combination of the entries of 1-d tensors, rows in lexicographic order, as
    ``torch.cartesian_prod`` (one tensor: itself); recorded. Shape: (n1 * n2 * ..., k)."""
    if len(tensors) == 1:
        return _as_input(tensors[0])
    grids = meshgrid(*tensors, indexing="ij")
    return stack([g.reshape(-1) for g in grids], dim=1)


def cdist(x1: Any, x2: Any, p: float = 2.0, compute_mode: str | None = None) -> Tensor:
    """Pairwise p-norm distances between the rows of ``x1`` (..., P, M) and ``x2``
    (..., R, M), as ``torch.cdist`` -> (..., P, R); recorded, with a 0 gradient at zero
    distance (PyTorch's choice) and torch's ``_cdist_backward`` at ties of the inf-norm (each
    tied coordinate takes the whole gradient; see :class:`~gradwise.autograd.ops.reduce.
    VectorNorm`).

    Raises:
        ValueError: fewer than 2 dims or different row sizes M.
    """
    a, b = _as_input(x1), _as_input(x2)
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-1]:
        raise ValueError(f"cdist: x1 {tuple(a.shape)} and x2 {tuple(b.shape)} must be "
                         "(..., P, M) and (..., R, M)")
    if p < 0:
        raise ValueError(f"cdist: p must be non-negative, got {p}")
    a, b = promoted(a, b)
    difference = a.unsqueeze(-2) - b.unsqueeze(-3)  # (..., P, R, M)
    # torch's _cdist_backward: each tied coordinate of the inf-norm takes the whole gradient
    return VectorNorm.apply(difference, float(p), -1, False, True)


def bucketize(input: Any, boundaries: Any, *, out_int32: bool = False,  # noqa: A002
              right: bool = False) -> Tensor:
    """The bucket of each value among the sorted 1-d ``boundaries``, as ``torch.bucketize``:
    ``right=False`` gives i with boundaries[i-1] < x <= boundaries[i]. Not differentiable.

    Raises:
        ValueError: ``boundaries`` is not 1-d.
    """
    edges = _as_input(boundaries)._data
    if edges.ndim != 1:
        raise ValueError(f"bucketize: boundaries must be 1-d, got shape {edges.shape}")
    values = _as_input(input)._data
    out = np.searchsorted(edges, values, side="right" if right else "left")
    return Tensor._make(np.asarray(out, dtype=np.int32 if out_int32 else np.int64), False,
                        None)


def searchsorted(sorted_sequence: Any, input: Any, *, out_int32: bool = False,  # noqa: A002
                 right: bool = False, side: str | None = None, sorter: Any = None) -> Tensor:
    """Insertion indices of ``input`` into ``sorted_sequence`` along its last dim, as
    ``torch.searchsorted`` (``side`` "left"/"right" or ``right``; an N-d sequence searches
    row by row, its leading dims matching the input's). Not differentiable.

    Raises:
        ValueError: ``side`` contradicts ``right``, or leading dims differ.
    """
    sequence = _as_input(sorted_sequence)._data
    values = input._data if isinstance(input, Tensor) else np.asarray(input)
    if side is not None and side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    if side == "left" and right:
        raise ValueError("searchsorted: side='left' and right=True contradict each other")
    side_name: Literal["left", "right"] = "right" if (side or (
        "right" if right else "left")) == "right" else "left"
    order = None if sorter is None else _as_input(sorter)._data
    if sequence.ndim == 1:
        out = np.searchsorted(sequence, values, side=side_name, sorter=order)
    else:
        if sequence.shape[:-1] != values.shape[:-1]:
            raise ValueError(f"searchsorted: leading dims of sorted_sequence {sequence.shape} "
                             f"and input {values.shape} differ")
        rows_s = sequence.reshape(-1, sequence.shape[-1])
        rows_v = values.reshape(-1, values.shape[-1])
        rows_o = None if order is None else order.reshape(rows_s.shape)
        out = np.stack([np.searchsorted(s, v, side=side_name,
                                        sorter=None if rows_o is None else rows_o[i])
                        for i, (s, v) in enumerate(zip(rows_s, rows_v, strict=True))])
        out = out.reshape(values.shape)
    return Tensor._make(np.asarray(out, dtype=np.int32 if out_int32 else np.int64), False,
                        None)


def _stack_family(name: str, tensors: Any, prepare: Callable[[Tensor], Tensor],
                  dim: int) -> Tensor:
    tensors = [prepare(_as_input(t)) for t in tensors]
    if not tensors:
        raise ValueError(f"{name}: expected a non-empty list of tensors")
    return cat(tensors, dim=dim)


def hstack(tensors: Any) -> Tensor:
    """Join along dim 1 (dim 0 for 1-d tensors), as ``torch.hstack``; recorded."""
    tensors = [_as_input(t) for t in tensors]
    one_d = builtins.all(t.ndim <= 1 for t in tensors)
    return _stack_family("hstack", tensors, lambda t: t.reshape(-1) if t.ndim == 0 else t,
                         0 if one_d else 1)


def vstack(tensors: Any) -> Tensor:
    """Join along dim 0 after making each at least 2-d, as ``torch.vstack``; recorded."""
    return _stack_family("vstack", tensors, lambda t: atleast_2d(t), 0)


row_stack = vstack


def dstack(tensors: Any) -> Tensor:
    """Join along dim 2 after making each at least 3-d, as ``torch.dstack``; recorded."""
    return _stack_family("dstack", tensors, lambda t: atleast_3d(t), 2)


def column_stack(tensors: Any) -> Tensor:
    """Join 0-/1-d tensors as columns (and 2-d ones as they are), as
    ``torch.column_stack``; recorded."""
    return _stack_family("column_stack", tensors,
                         lambda t: t.reshape(-1, 1) if t.ndim <= 1 else t, 1)


def tensordot(a: Any, b: Any, dims: Any = 2) -> Tensor:
    """Contract the last ``dims`` dims of ``a`` with the first of ``b`` (or the listed pairs
    ``([a dims], [b dims])``), as ``torch.tensordot``; recorded (one einsum)."""
    a, b = _as_input(a), _as_input(b)
    if isinstance(dims, int | np.integer):
        a_axes = list(range(a.ndim - int(dims), a.ndim))
        b_axes = list(range(int(dims)))
    else:
        a_axes, b_axes = ([d] if isinstance(d, int) else list(d) for d in dims)
    a_axes = [d % builtins.max(a.ndim, 1) for d in a_axes]
    b_axes = [d % builtins.max(b.ndim, 1) for d in b_axes]
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    a_labels = [next(letters) for _ in range(a.ndim)]
    b_labels = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(a_axes, b_axes, strict=True):
        b_labels[j] = a_labels[i]
    out = [c for k, c in enumerate(a_labels) if k not in a_axes] + [
        c for k, c in enumerate(b_labels) if k not in b_axes]
    return einsum(f"{''.join(a_labels)},{''.join(b_labels)}->{''.join(out)}", a, b)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype: Any = np.int64,
                 **_: Any) -> Tensor:
    """The (2, k) row and column indices of the lower triangle, as ``torch.tril_indices``."""
    rows, cols = np.tril_indices(row, offset, col)
    return Tensor._make(np.stack([rows, cols]).astype(dtype), False, None)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype: Any = np.int64,
                 **_: Any) -> Tensor:
    """The (2, k) row and column indices of the upper triangle, as ``torch.triu_indices``."""
    rows, cols = np.triu_indices(row, offset, col)
    return Tensor._make(np.stack([rows, cols]).astype(dtype), False, None)


def vander(x: Any, N: int | None = None, increasing: bool = False) -> Tensor:  # noqa: N803
    """The Vandermonde matrix of a 1-d tensor (powers decreasing unless ``increasing``), as
    ``torch.vander``; recorded."""
    x = _as_input(x)
    count = x.shape[0] if N is None else int(N)
    powers = range(count) if increasing else range(count - 1, -1, -1)
    columns = [x ** p if p else x.new_ones(x.shape) for p in powers]
    return stack(columns, dim=1) if columns else x.new_zeros((x.shape[0], 0))


def std_mean(input: Any, dim: Any = None, *, correction: float = 1,  # noqa: A002
             keepdim: bool = False) -> tuple[Tensor, Tensor]:
    """``(std, mean)`` with Bessel's correction by default, as ``torch.std_mean``."""
    x = _as_input(input)
    return (x.std(dim=dim, correction=correction, keepdim=keepdim),
            x.mean(dim=dim, keepdim=keepdim))


def var_mean(input: Any, dim: Any = None, *, correction: float = 1,  # noqa: A002
             keepdim: bool = False) -> tuple[Tensor, Tensor]:
    """``(var, mean)`` with Bessel's correction by default, as ``torch.var_mean``."""
    x = _as_input(input)
    return (x.var(dim=dim, correction=correction, keepdim=keepdim),
            x.mean(dim=dim, keepdim=keepdim))


def cov(input: Any, *, correction: int = 1, fweights: Any = None,  # noqa: A002
        aweights: Any = None) -> Tensor:
    """The covariance matrix of the variables in the rows of ``input`` (observations in
    columns), as ``torch.cov`` (without weights); recorded.

    Raises:
        ValueError: more than 2 dims, or weights given (not supported: PORTING.md).
    """
    if fweights is not None or aweights is not None:
        raise ValueError("cov: fweights/aweights are not supported in gradwise")
    x = _as_input(input)
    if x.ndim > 2:
        raise ValueError(f"cov: expected a 1-d or 2-d tensor, got shape {tuple(x.shape)}")
    x = x.reshape(1, -1) if x.ndim < 2 else x
    x = x if x._data.dtype.kind == "f" else x.to(np.float32)
    centred = x - x.mean(dim=1, keepdim=True)
    out = centred @ centred.t() / builtins.max(x.shape[1] - correction, 0)
    return out.reshape(()) if _as_input(input).ndim < 2 else out


def corrcoef(input: Any) -> Tensor:  # noqa: A002
    """The Pearson correlation matrix of the rows, as ``torch.corrcoef``; recorded."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    scale = c.diagonal().sqrt()
    return (c / scale.reshape(-1, 1) / scale.reshape(1, -1)).clamp(-1, 1)


def chain_matmul(*matrices: Any) -> Tensor:
    """The product of the matrices left to right, as ``torch.chain_matmul``."""
    return linalg.multi_dot(matrices) if len(matrices) > 1 else _as_input(matrices[0])


def matrix_power(input: Any, n: int) -> Tensor:  # noqa: A002
    """``torch.matrix_power``: see ``gw.linalg.matrix_power``."""
    return linalg.matrix_power(input, n)


def block_diag(*tensors: Any) -> Tensor:
    """The 2-d tensors on the diagonal of one matrix, zeros elsewhere, as
    ``torch.block_diag`` (0-d and 1-d count as 1 x n rows); recorded."""
    blocks = [t.reshape(1, -1) if t.ndim < 2 else t for t in map(_as_input, tensors)]
    if builtins.any(b.ndim != 2 for b in blocks):
        raise ValueError(f"block_diag: expects 0-, 1- or 2-d tensors, got shapes "
                         f"{[tuple(b.shape) for b in blocks]}")
    width = builtins.sum(b.shape[1] for b in blocks)
    rows, start = [], 0
    for b in blocks:
        parts = []
        if start:
            parts.append(b.new_zeros((b.shape[0], start)))
        parts.append(b)
        if width - start - b.shape[1]:
            parts.append(b.new_zeros((b.shape[0], width - start - b.shape[1])))
        rows.append(cat(parts, dim=1) if len(parts) > 1 else b)
        start += b.shape[1]
    return cat(rows, dim=0)


def histc(input: Any, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:  # noqa: A002
    """Histogram of the values into ``bins`` equal bins over [min, max] (both 0: the data's
    range), as ``torch.histc``; values outside are ignored; result has the input's dtype.

    Raises:
        NotImplementedError: an integer or bool input (torch's kernel is floating only; its
            message).
        ValueError: ``bins`` < 1, or ``min`` > ``max``.
    """
    data = _as_input(input)._data
    if data.dtype.kind != "f":
        kernel = "linspace_cpu" if data.dtype == np.bool_ else "histogram_cpu"
        raise NotImplementedError(
            f"histc: \"{kernel}\" not implemented for '{_dtype_name(data.dtype)}'")
    if bins < 1:
        raise ValueError(f"histc: bins must be positive, got {bins}")
    lo, hi = float(min), float(max)
    if lo == hi == 0 and data.size:
        lo, hi = float(data.min()), float(data.max())
    if lo > hi:
        raise ValueError(f"histc: min ({lo}) must not exceed max ({hi})")
    if lo == hi:  # PyTorch widens an empty range by 1 on each side
        lo, hi = lo - 1, hi + 1
    counts, _ = np.histogram(data, bins=bins, range=(lo, hi))
    return Tensor._make(counts.astype(data.dtype), False, None)


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation, as ``torch.einsum`` (``"ij,jk->ik"``, ``"bij,bjk->bik"``,
    ``"ii->i"``, ``"...ij->...ji"``, implicit output); recorded, with the gradient of each
    operand an einsum of the output gradient and the other operands
    (:class:`~gradwise.autograd.ops.einsum.Einsum`).

    Raises:
        ValueError: an equation NumPy refuses, naming it and the operand shapes.
    """
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    from gradwise.autograd.ops.einsum import Einsum  # at first use: keeps import gradwise fast
    tensors = [_as_input(op) for op in operands]
    return Einsum.apply(*tensors, equation=equation)


def _legacy_constructor(name: str, dtype: Any) -> Callable[..., Tensor]:
    def constructor(*args: Any) -> Tensor:
        if args and builtins.all(isinstance(a, int | np.integer) and not isinstance(a, bool)
                                 for a in args):
            return Tensor._make(np.zeros(tuple(int(a) for a in args), dtype), False, None)
        if len(args) > 1:
            raise TypeError(f"{name}: expected sizes (ints) or one sequence of data, got "
                            f"{len(args)} arguments")
        if not args:
            return Tensor._make(np.zeros((0,), dtype), False, None)
        return tensor(args[0], dtype=dtype)

    constructor.__name__ = constructor.__qualname__ = name
    constructor.legacy_dtype = np.dtype(dtype)  # type: ignore[attr-defined]  # x.type(gw.XTensor)
    constructor.__doc__ = (
        f"``gw.{name}(data)`` is ``gw.tensor(data, dtype={np.dtype(dtype).name})``; "
        f"``gw.{name}(2, 3)`` a (2, 3) tensor of that dtype (zeros: gradwise never shows "
        "uninitialised memory), as PyTorch's legacy constructor. It is a function, not a type "
        "(``isinstance(x, gw.FloatTensor)`` is not supported: docs/PORTING.md).\n\n"
        f"Raises:\n    TypeError: more than one argument that are not all sizes.")
    return constructor


FloatTensor = _legacy_constructor("FloatTensor", np.float32)
DoubleTensor = _legacy_constructor("DoubleTensor", np.float64)
HalfTensor = _legacy_constructor("HalfTensor", np.float16)
LongTensor = _legacy_constructor("LongTensor", np.int64)
IntTensor = _legacy_constructor("IntTensor", np.int32)
ShortTensor = _legacy_constructor("ShortTensor", np.int16)
ByteTensor = _legacy_constructor("ByteTensor", np.uint8)
CharTensor = _legacy_constructor("CharTensor", np.int8)
BoolTensor = _legacy_constructor("BoolTensor", np.bool_)


__all__ = [*_METHOD_FUNCTIONS, "pi", "e", "inf", "nan", "absolute", "promote_types",
           "result_type", "can_cast",
           "combinations", "histogram", "frexp", "poisson", "FloatTensor",
           "DoubleTensor", "HalfTensor",
           "LongTensor", "IntTensor", "ShortTensor", "ByteTensor", "CharTensor", "BoolTensor",
           "as_tensor", "atleast_1d", "atleast_2d",
           "atleast_3d", "block_diag", "bmm", "broadcast_shapes",
           "broadcast_tensors", "bucketize", "cartesian_prod", "cdist", "divide", "einsum",
           "finfo", "ger", "get_num_threads", "iinfo", "greater",
           "set_num_threads", "histc", "is_floating_point", "is_tensor", "less", "meshgrid",
           "multiply", "negative", "outer", "searchsorted", "subtract", "true_divide",
           "chain_matmul", "column_stack", "corrcoef", "cov", "dstack", "hstack",
           "matrix_power", "row_stack", "std_mean", "tensordot", "tril_indices", "triu_indices",
           "vander", "var_mean", "vstack"]
