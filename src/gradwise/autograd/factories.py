"""Tensor factories with PyTorch's signatures: zeros/ones/full/empty/arange/linspace/eye and the
random ones (rand, randn, randint, randperm, multinomial, normal, bernoulli).

Every factory takes ``dtype=``, ``device=`` (the CPU only; a GPU raises, naming it) and
``requires_grad=``; the random ones take ``generator=`` (PyTorch's name) or ``rng=`` (gradwise's
alias) and draw from the default generator (``gw.manual_seed``) when neither is given. Dtypes
follow PyTorch: float factories give the default float dtype (float32); ``full`` infers from the
fill value; ``arange`` gives int64 when every bound is an int.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradwise.autograd import dtypes as _dtypes
from gradwise.autograd import random as _random
from gradwise.autograd.device import check_device
from gradwise.autograd.tensor import Tensor, _shape_arg

__all__ = [
    "arange", "bernoulli", "empty", "empty_like", "eye", "full", "full_like", "linspace",
    "logspace", "multinomial", "normal", "ones", "ones_like", "rand", "rand_like", "randint",
    "randint_like", "randn", "randn_like", "randperm", "zeros", "zeros_like",
]


def _finish(data: np.ndarray, device: Any, requires_grad: bool, caller: str) -> Tensor:
    if device is not None:
        check_device(device, caller)
    out = Tensor._make(data, False, None)
    if requires_grad:
        out.requires_grad_(True)
    return out


def _float_dtype(dtype: Any) -> np.dtype:
    return _dtypes.get_default_dtype() if dtype is None else np.dtype(dtype)


def zeros(*size: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Zeros of shape ``size`` (``zeros(2, 3)`` or ``zeros((2, 3))``), float32 by default."""
    return _finish(np.zeros(_shape_arg(size), _float_dtype(dtype)), device, requires_grad,
                   "zeros")


def ones(*size: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Ones of shape ``size``, float32 by default."""
    return _finish(np.ones(_shape_arg(size), _float_dtype(dtype)), device, requires_grad, "ones")


def empty(*size: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor (zeros here: no stale memory is ever shown)."""
    return _finish(np.zeros(_shape_arg(size), _float_dtype(dtype)), device, requires_grad,
                   "empty")


def full(size: Sequence[int], fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """``fill_value`` everywhere; the dtype follows the value (int -> int64, float -> float32,
    bool -> bool) unless given, as in PyTorch."""
    if dtype is None:
        value = fill_value._data if isinstance(fill_value, Tensor) else fill_value
        dtype = _dtypes.scalar_dtype(value)
    shape = _shape_arg((size,)) if not isinstance(size, int) else (size,)
    _dtypes.check_scalar_fits("full", fill_value, dtype)
    return _finish(np.full(shape, fill_value, dtype=dtype), device, requires_grad, "full")


def _like(other: Any, dtype: Any) -> tuple[tuple[int, ...], np.dtype]:
    array = other._data if isinstance(other, Tensor) else np.asarray(other)
    return array.shape, np.dtype(dtype) if dtype is not None else array.dtype


def zeros_like(input: Any, dtype: Any = None, device: Any = None,  # noqa: A002
               requires_grad: bool = False) -> Tensor:
    """A tensor of zeros shaped like ``input``; ``dtype`` defaults to ``input``'s
    (torch.zeros_like).
    """
    shape, dtype = _like(input, dtype)
    return _finish(np.zeros(shape, dtype), device, requires_grad, "zeros_like")


def ones_like(input: Any, dtype: Any = None, device: Any = None,  # noqa: A002
              requires_grad: bool = False) -> Tensor:
    """A tensor of ones shaped like ``input``; ``dtype`` defaults to ``input``'s (torch.ones_like).
    """
    shape, dtype = _like(input, dtype)
    return _finish(np.ones(shape, dtype), device, requires_grad, "ones_like")


def empty_like(input: Any, dtype: Any = None, device: Any = None,  # noqa: A002
               requires_grad: bool = False) -> Tensor:
    """A tensor shaped like ``input`` (zero-filled: NumPy has no cheaper safe "empty"), as torch's.

    ``dtype`` defaults to ``input``'s; ``device`` must be ``"cpu"``.
    """
    shape, dtype = _like(input, dtype)
    return _finish(np.zeros(shape, dtype), device, requires_grad, "empty_like")


def full_like(input: Any, fill_value: Any, dtype: Any = None, device: Any = None,  # noqa: A002
              requires_grad: bool = False) -> Tensor:
    """A tensor shaped like ``input`` filled with ``fill_value``; ``dtype`` defaults to ``input``'s.

    As ``torch.full_like``.
    """
    shape, dtype = _like(input, dtype)
    _dtypes.check_scalar_fits("full_like", fill_value, dtype)
    return _finish(np.full(shape, fill_value, dtype), device, requires_grad, "full_like")


def arange(start: Any = 0, end: Any = None, step: Any = 1, *, dtype: Any = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    """``[start, end)`` in steps of ``step`` (one argument: ``[0, start)``); int64 when every
    bound is an int, else the default float dtype (PyTorch's rule).

    Raises:
        ValueError: ``step`` is 0.
    """
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    values = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if dtype is None:
        integral = all(isinstance(v, int | np.integer) and not isinstance(v, bool)
                       for v in values)
        dtype = np.int64 if integral else _dtypes.get_default_dtype()
    # computed in float64 (or int64) and then cast, so float32 end points match PyTorch's
    work = np.int64 if np.dtype(dtype).kind in "iu" and all(
        isinstance(v, int | np.integer) for v in values) else np.float64
    data = np.arange(*values, dtype=work).astype(dtype)
    return _finish(data, device, requires_grad, "arange")


def linspace(start: float, end: float, steps: int, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    data = np.linspace(float(start), float(end), int(steps)).astype(_float_dtype(dtype))
    return _finish(data, device, requires_grad, "linspace")


def logspace(start: float, end: float, steps: int, base: float = 10.0, *, dtype: Any = None,
             device: Any = None, requires_grad: bool = False) -> Tensor:
    """``base ** linspace(start, end, steps)``."""
    data = np.logspace(float(start), float(end), int(steps), base=base)
    return _finish(data.astype(_float_dtype(dtype)), device, requires_grad, "logspace")


def eye(n: int, m: int | None = None, *, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    """An ``n`` x ``m`` (default square) identity matrix."""
    return _finish(np.eye(n, m, dtype=_float_dtype(dtype)), device, requires_grad, "eye")


# ---- random -----------------------------------------------------------------------------------
def _random_float_dtype(dtype: Any, caller: str) -> np.dtype:
    """The float dtype a continuous sampler draws in; NotImplementedError for integer and
    bool dtypes, as PyTorch (``torch.rand(2, dtype=torch.long)``), instead of truncating every
    draw to 0."""
    dtype = _float_dtype(dtype)
    if dtype.kind != "f":
        raise NotImplementedError(
            f"{caller}: not implemented for dtype {dtype} (uniform and normal draws need a "
            "floating dtype, as in PyTorch; use randint for integers)")
    return dtype


def rand(*size: Any, generator: Any = None, rng: Any = None, dtype: Any = None,
         device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1).

    Raises:
        NotImplementedError: an integer or bool ``dtype`` (as PyTorch).
    """
    dtype = _random_float_dtype(dtype, "rand")
    stream = _random.resolve(generator, rng, "rand")
    data = stream.random(_shape_arg(size)).astype(dtype)
    return _finish(data, device, requires_grad, "rand")


def randn(*size: Any, generator: Any = None, rng: Any = None, dtype: Any = None,
          device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples.

    Raises:
        NotImplementedError: an integer or bool ``dtype`` (as PyTorch).
    """
    dtype = _random_float_dtype(dtype, "randn")
    stream = _random.resolve(generator, rng, "randn")
    data = stream.standard_normal(_shape_arg(size)).astype(dtype)
    return _finish(data, device, requires_grad, "randn")


def rand_like(input: Tensor, *, generator: Any = None, dtype: Any = None,  # noqa: A002
              requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) samples shaped like ``input``, drawn from ``generator`` or the default one.

    As ``torch.rand_like``; ``dtype`` defaults to ``input``'s (NotImplementedError when that
    is an integer or bool dtype, as PyTorch).
    """
    shape, dtype = _like(input, dtype)
    return rand(shape, generator=generator, dtype=dtype, requires_grad=requires_grad)


def randn_like(input: Tensor, *, generator: Any = None, dtype: Any = None,  # noqa: A002
               requires_grad: bool = False) -> Tensor:
    """Standard normal samples shaped like ``input``, from ``generator`` or the default one.

    As ``torch.randn_like``; ``dtype`` defaults to ``input``'s (NotImplementedError when
    that is an integer or bool dtype, as PyTorch).
    """
    shape, dtype = _like(input, dtype)
    return randn(shape, generator=generator, dtype=dtype, requires_grad=requires_grad)


def randint(*args: Any, size: Any = None, generator: Any = None, rng: Any = None,
            dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Integers uniform in ``[low, high)``: ``randint(high, size)`` or ``randint(low, high,
    size)`` (``size`` a tuple, also as a keyword); int64 by default.

    Raises:
        TypeError: no size; ValueError: ``low >= high``.
    """
    bounds = list(args)
    if size is None and bounds and isinstance(bounds[-1], Sequence):
        size = bounds.pop()
    if size is None:
        raise TypeError("randint: missing size (a tuple, e.g. randint(0, 10, (32,)))")
    if len(bounds) == 1:
        low, high = 0, bounds[0]
    elif len(bounds) == 2:
        low, high = bounds
    else:
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
    if low >= high:
        raise ValueError(f"randint: low ({low}) must be below high ({high})")
    stream = _random.resolve(generator, rng, "randint")
    data = stream.integers(int(low), int(high), _shape_arg((size,)))
    return _finish(data.astype(dtype or np.int64), device, requires_grad, "randint")


def randint_like(input: Tensor, low: int = 0, high: int | None = None, *,  # noqa: A002
                 generator: Any = None, dtype: Any = None) -> Tensor:
    """Integers uniform in [low, high) shaped like ``input``; one bound given is ``high``.

    As ``torch.randint_like``; ``dtype`` defaults to ``input``'s.
    """
    if high is None:
        low, high = 0, low
    shape, dtype = _like(input, dtype)
    return randint(low, high, shape, generator=generator, dtype=dtype)


def randperm(n: int, *, generator: Any = None, rng: Any = None, dtype: Any = None,
             device: Any = None, requires_grad: bool = False) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64)."""
    stream = _random.resolve(generator, rng, "randperm")
    data = stream.permutation(int(n)).astype(dtype or np.int64)
    return _finish(data, device, requires_grad, "randperm")


def multinomial(input: Any, num_samples: int, replacement: bool = False, *,  # noqa: A002
                generator: Any = None, rng: Any = None) -> Tensor:
    """Draw ``num_samples`` category indices (int64) per row of the non-negative weights
    ``input`` (1-d: one distribution; 2-d: one per row); weights need not sum to 1.

    Raises:
        ValueError: negative, non-finite or all-zero weights, or more samples than nonzero
            categories without replacement.
    """
    weights = input._data if isinstance(input, Tensor) else np.asarray(input)
    if weights.ndim not in (1, 2):
        raise ValueError(f"multinomial: input must be 1-d or 2-d, got shape {weights.shape}")
    rows = np.atleast_2d(weights).astype(np.float64)
    if not np.all(np.isfinite(rows)) or np.any(rows < 0):
        raise ValueError("multinomial: weights must be finite and non-negative")
    stream = _random.resolve(generator, rng, "multinomial")
    out = np.empty((rows.shape[0], num_samples), dtype=np.int64)
    for i, row in enumerate(rows):
        total = row.sum()
        if total <= 0:
            raise ValueError(f"multinomial: row {i} of the weights sums to 0")
        if not replacement and num_samples > np.count_nonzero(row):
            raise ValueError(
                f"multinomial: cannot draw {num_samples} samples without replacement from "
                f"{np.count_nonzero(row)} nonzero categories"
            )
        out[i] = stream.choice(row.size, size=num_samples, replace=replacement, p=row / total)
    return Tensor._make(out if weights.ndim == 2 else out[0], False, None)


def normal(mean: Any = 0.0, std: Any = 1.0, size: Any = None, *, generator: Any = None,
           rng: Any = None, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Normal samples: ``normal(0, 0.01, size=(3, 4))`` or elementwise means/stds given as
    tensors (the result takes their broadcast shape and dtype)."""
    stream = _random.resolve(generator, rng, "normal")
    mean_a = mean._data if isinstance(mean, Tensor) else mean
    std_a = std._data if isinstance(std, Tensor) else std
    if size is None:
        shape = np.broadcast_shapes(np.shape(mean_a), np.shape(std_a))
        tensors = [t._data.dtype for t in (mean, std) if isinstance(t, Tensor)]
        dtype = dtype or (tensors[0] if tensors else None)
    else:
        shape = _shape_arg((size,)) if not isinstance(size, int) else (size,)
    if np.any(np.asarray(std_a) < 0):
        raise ValueError("normal: std must be non-negative")
    data = stream.normal(mean_a, std_a, shape).astype(_float_dtype(dtype))
    return _finish(data, device, requires_grad, "normal")


def bernoulli(input: Any, p: float | None = None, *, generator: Any = None) -> Tensor:  # noqa: A002
    """1 with probability ``input`` (elementwise; or ``p`` for every element), else 0."""
    probs = input._data if isinstance(input, Tensor) else np.asarray(input)
    stream = _random.resolve(generator, None, "bernoulli")
    p_array = probs if p is None else np.full(probs.shape, p)
    return Tensor._make((stream.random(probs.shape) < p_array).astype(probs.dtype), False, None)
