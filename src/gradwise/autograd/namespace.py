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
from typing import Any

import numpy as np

from gradwise.autograd.tensor import Tensor, tensor

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
)


def _as_input(value: Any) -> Tensor:
    return value if isinstance(value, Tensor) else tensor(value)


def _method_function(name: str) -> Callable[..., Any]:
    def function(input: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: A002 - torch's name
        return getattr(_as_input(input), name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (
        f"``gw.{name}(input, ...)``: the same as ``input.{name}(...)`` (see "
        f"``gradwise.Tensor.{name}``); array-like input becomes a constant tensor."
    )
    return function


# (this shadows the builtins any/all/sum/max/min/abs/round/pow in this module: use builtins.*)
globals().update({name: _method_function(name) for name in _METHOD_FUNCTIONS})
multiply, subtract, divide, true_divide = (
    globals()["mul"], globals()["sub"], globals()["div"], globals()["div"])
absolute, negative, greater, less = (
    globals()["abs"], globals()["neg"], globals()["gt"], globals()["lt"])


# dtype limits: NumPy's finfo/iinfo (eps, max, min, tiny, bits) take gradwise dtypes as they are
finfo, iinfo = np.finfo, np.iinfo


_num_threads: list[int] = []  # the count set_num_threads last set (none yet: the libraries' own)


def set_num_threads(num_threads: int) -> None:
    """Limit the threads of the native libraries behind gradwise (BLAS/OpenMP through
    threadpoolctl, numba's parallel kernels), as ``torch.set_num_threads``; lasts until changed.

    Without threadpoolctl (it comes with scikit-learn) only numba is limited.

    Raises:
        ValueError: ``num_threads`` is not a positive int.
    """
    if isinstance(num_threads, bool) or not isinstance(num_threads, int | np.integer) or (
            num_threads < 1):
        raise ValueError(f"set_num_threads: expected a positive int, got {num_threads!r}")
    num_threads = int(num_threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        threadpool_limits(limits=num_threads)
    try:
        import numba
    except ImportError:
        pass
    else:
        # numba.config sets NUMBA_NUM_THREADS at import (from the environment), unseen by mypy
        ceiling = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
        numba.set_num_threads(builtins.min(num_threads, ceiling))
    _num_threads[:] = [num_threads]


def get_num_threads() -> int:
    """The thread count ``set_num_threads`` set; before any call, the most threads any native
    library behind gradwise uses (threadpoolctl's report), or the CPU count."""
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


def outer(input: Tensor, vec2: Tensor) -> Tensor:  # noqa: A002
    """Outer product of two 1-d tensors."""
    return _as_input(input).reshape(-1, 1) * _as_input(vec2).reshape(1, -1)


def histc(input: Any, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:  # noqa: A002
    """Histogram of the values into ``bins`` equal bins over [min, max] (both 0: the data's
    range), as ``torch.histc``; values outside are ignored; result has the input's dtype.

    Raises:
        ValueError: ``bins`` < 1, or ``min`` > ``max``.
    """
    data = _as_input(input)._data
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
    dtype = data.dtype if data.dtype.kind == "f" else np.float32
    return Tensor._make(counts.astype(dtype), False, None)


def bincount(input: Any, weights: Any = None, minlength: int = 0) -> Tensor:  # noqa: A002
    """Count of each non-negative integer value (``torch.bincount``)."""
    data = _as_input(input)._data
    w = weights._data if isinstance(weights, Tensor) else weights
    out = np.bincount(data, w, minlength)
    return Tensor._make(out if w is not None else out.astype(np.int64), False, None)


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation over constant operands (outside the graph).

    Raises:
        TypeError: an operand requires grad (use matmul/sum, which record).
    """
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    if builtins.any(isinstance(op, Tensor) and op.requires_grad for op in operands):
        raise TypeError("einsum: not recorded for autograd in gradwise; use matmul/sum instead")
    arrays = [op._data if isinstance(op, Tensor) else np.asarray(op) for op in operands]
    return Tensor._make(np.asarray(np.einsum(equation, *arrays)), False, None)


__all__ = [*_METHOD_FUNCTIONS, "absolute", "as_tensor", "bincount", "bmm", "divide", "einsum",
           "finfo", "get_num_threads", "iinfo", "greater", "set_num_threads", "histc",
           "is_floating_point", "is_tensor", "less", "multiply", "negative", "outer", "subtract",
           "true_divide"]
