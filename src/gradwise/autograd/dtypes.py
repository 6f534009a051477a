"""PyTorch's dtypes and type-promotion rules, in one place.

The dtype objects are NumPy dtypes (``gw.float32 == np.float32`` holds), so they can be passed to
NumPy and to every gradwise function that takes a dtype.

Promotion follows PyTorch (https://pytorch.org/docs/stable/tensor_attributes.html#type-promotion-doc):
operands are ranked by category, bool < integer < floating, and by kind of operand, a tensor with
dimensions above a "scalar" (a Python number, a NumPy scalar, a 0-d array or a 0-d tensor).
The result takes the dtype of the highest category present; when that category appears only among
the scalars, the result is that category's default (int64 for integers, the default float dtype
for floats) unless a 0-d tensor/array supplies it, otherwise the dimensioned operands' dtype
(NumPy's promotion among them). So ``int tensor * 0.5`` is float32, ``float32 tensor * 2.0``
stays float32, ``int64 tensor * float32 tensor`` is float32. True division of integers gives the
default float dtype. gradwise treats a 0-d tensor like a Python scalar of its kind (PyTorch keeps
the 0-d tensor's own width in that case): see docs/PORTING.md.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from gradwise.autograd import _fperr

float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)  # noqa: A001 - PyTorch's name
float64 = double = np.dtype(np.float64)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
int16 = short = np.dtype(np.int16)
int32 = int = np.dtype(np.int32)  # noqa: A001 - PyTorch's name
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)  # noqa: A001 - PyTorch's name

_DEFAULT_FLOAT = float32


def get_default_dtype() -> np.dtype:
    """The dtype Python floats become (float32, as in PyTorch)."""
    return _DEFAULT_FLOAT


def _category(dtype: np.dtype) -> Any:
    kind = dtype.kind
    return 0 if kind == "b" else 1 if kind in "iu" else 2


def scalar_dtype(value: Any) -> np.dtype:
    """The dtype a Python scalar or NumPy scalar/0-d array takes on its own (PyTorch's rule)."""
    if isinstance(value, np.ndarray | np.generic):
        return np.dtype(value.dtype)
    if isinstance(value, _pybool):
        return bool
    if isinstance(value, _pyint):
        return int64
    if isinstance(value, _pyfloat):
        return _DEFAULT_FLOAT
    return np.asarray(value).dtype


def promote(tensor_dtypes: list[np.dtype], scalar_dtypes: list[np.dtype]) -> np.dtype:
    """The result dtype of an op over dimensioned operands and scalars (PyTorch's promotion).

    Args:
        tensor_dtypes: dtypes of the operands with dimensions (at least one).
        scalar_dtypes: dtypes of the scalar operands (Python/NumPy scalars, 0-d arrays/tensors).
    """
    if len(tensor_dtypes) == 1:
        result = tensor_dtypes[0]
    else:
        # the highest category wins outright (int64 * float32 -> float32); within it, NumPy's
        # widening (float32 * float64 -> float64)
        top = max(_category(d) for d in tensor_dtypes)
        result = np.result_type(*[d for d in tensor_dtypes if _category(d) == top])
    top = _category(result)
    best = None
    for dtype in scalar_dtypes:
        category = _category(dtype)
        if category > top:
            top, best = category, dtype
    if best is None:
        return result
    return int64 if top == 1 else _DEFAULT_FLOAT if top == 2 else bool


def as_array(value: Any, dtype: np.dtype) -> np.ndarray:
    """A constant operand as an array of ``dtype``; integers out of the dtype's range wrap
    around as in PyTorch (``uint8 tensor + 300`` adds 44) instead of NumPy's OverflowError."""
    try:
        if type(value) is builtins.float and dtype.kind == "f":
            # 1e40 as float32 is inf, silently as torch's `x * 1e40` (NumPy warns "overflow
            # encountered in cast", and raises under np.seterr(over="raise"))
            token = _fperr.quiet()
            try:
                return np.asarray(value, dtype=dtype)
            finally:
                _fperr.restore(token)
        return np.asarray(value, dtype=dtype)
    except OverflowError:
        return np.asarray(value, dtype=np.int64).astype(dtype)


def result_type(*operands: Any) -> np.dtype:
    """PyTorch's result dtype over any mix of operands (``torch.result_type`` for many).

    Each operand is a Tensor (anything with a raw ``_data`` array), an ndarray, a list/tuple of
    numbers, or a scalar; operands with dimensions rank above 0-d ones and scalars, as in
    :func:`promote`. ``None`` operands (an absent clamp bound) are skipped. Every multi-input op
    (where, cat, stack, maximum, minimum, clamp) takes its dtype from here.

    Raises:
        ValueError: no operand given.
    """
    dims: list[np.dtype] = []
    scalars: list[np.dtype] = []
    for x in operands:
        if x is None:
            continue
        data = getattr(x, "_data", None)
        if isinstance(data, np.ndarray):
            (dims if data.ndim else scalars).append(data.dtype)
        elif isinstance(x, np.ndarray) and x.ndim:
            dims.append(x.dtype)
        elif isinstance(x, list | tuple):
            array = np.asarray(x)
            kind = array.dtype.kind
            dims.append(bool if kind == "b" else int64 if kind in "iu" else _DEFAULT_FLOAT)
        else:
            scalars.append(scalar_dtype(x))
    if not dims and not scalars:
        raise ValueError("result_type: no operands")
    if not dims:
        # only scalars: the 0-d ones keep their dtype, Python numbers take the defaults
        dims.append(scalars.pop(0))
    return promote(dims, scalars)


_pybool, _pyint, _pyfloat = type(True), type(1), type(1.0)  # noqa: UP003 - names shadowed here


def check_scalar_fits(op: str, value: Any, dtype: Any) -> None:
    """Refuse a finite Python/NumPy number that ``dtype`` cannot hold, as torch does where it
    converts a scalar argument (``fill_``, ``full``, ``masked_fill``, an indexed write):
    "value cannot be converted to type float without overflow". inf and NaN pass into a float
    dtype (they convert exactly) and are refused by an integer one, as torch; Tensors and arrays
    are not checked (they cast by NumPy's rules).

    Raises:
        RuntimeError: ``value`` is finite and outside ``dtype``'s range (torch's message).
    """
    if isinstance(value, builtins.bool) or not isinstance(
            value, builtins.int | builtins.float | np.integer | np.floating):
        return
    kind = np.dtype(dtype).kind
    number = builtins.float(value)
    if kind == "f":
        if math.isfinite(number) and abs(number) > builtins.float(np.finfo(dtype).max):
            raise RuntimeError(f"{op}: value cannot be converted to type {np.dtype(dtype).name} "
                               "without overflow")
    elif kind in "iu":
        info = np.iinfo(dtype)
        if not math.isfinite(number) or not info.min <= builtins.int(value) <= info.max:
            raise RuntimeError(f"{op}: value cannot be converted to type {np.dtype(dtype).name} "
                               "without overflow")
