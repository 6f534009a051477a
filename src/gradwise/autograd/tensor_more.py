"""More ``torch.Tensor`` methods (issue 11, review 3): the in-place form of every math method
gradwise has out of place (``log_``, ``sin_``, ``clamp_min_``, ``eq_``...), in-place shape
changes (``t_``, ``transpose_``, ``unsqueeze_``, ``squeeze_``), ``masked_scatter``,
``index_copy``, ``put``, the bitwise methods and torch's aliases (``swapdims``, ``ravel``,
``absolute``, ``negative``, ``greater``...).

Like :mod:`tensor_methods`, a mixin whose methods attach.py sets on ``Tensor``, written with the
core methods and ops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradwise.autograd.functional import promoted
from gradwise.autograd.grad_mode import _grad_enabled
from gradwise.autograd.ops.reduce import normalize_axis
from gradwise.autograd.tensor import Tensor
from gradwise.autograd.tensor import tensor as _tensor


def _inplace_method(name: str) -> Callable[..., Tensor]:
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return self._assign_(f"{name}_", lambda t: getattr(t, name)(*args, **kwargs), *args,
                             *kwargs.values())

    method.__name__ = method.__qualname__ = f"{name}_"
    method.__doc__ = (f"In place: ``{name}`` written into this tensor; returns self, as "
                      f"``torch.Tensor.{name}_`` (recorded as ``add_`` is).")
    return method


def _raw(value: Any) -> np.ndarray:
    return np.asarray(value._data if hasattr(value, "_data") else value)


class TensorMore:
    """The mixin; see the module docstring."""

    __slots__: tuple[str, ...] = ()

    # ---- in-place shape changes ---------------------------------------------------------------
    def _reshape_in_place(self: Tensor, op: str, view: Tensor) -> Tensor:
        """Give this tensor ``view``'s shape and strides (same memory), as torch's in-place
        view ops; refused while recording for a tensor that requires grad."""
        if self.requires_grad and _grad_enabled.get():
            raise RuntimeError(
                f"{op}: changing the shape of a tensor that requires grad in place is not "
                f"supported (a leaf Variable cannot change in place in torch either); use "
                f"y = x.{op[:-1]}(...) instead")
        self._data = view._data
        return self

    def t_(self: Tensor) -> Tensor:
        """In place ``t()``: this tensor becomes its transpose (<= 2 dims); returns self."""
        return self._reshape_in_place("t_", self.t())

    def transpose_(self: Tensor, dim0: int, dim1: int) -> Tensor:
        """In place ``transpose(dim0, dim1)``; returns self, as ``torch.Tensor.transpose_``."""
        return self._reshape_in_place("transpose_", self.transpose(dim0, dim1))

    def swapdims_(self: Tensor, dim0: int, dim1: int) -> Tensor:
        """Alias of :meth:`transpose_`."""
        return self._reshape_in_place("swapdims_", self.transpose(dim0, dim1))

    def swapaxes_(self: Tensor, axis0: int, axis1: int) -> Tensor:
        """Alias of :meth:`transpose_`."""
        return self._reshape_in_place("swapaxes_", self.transpose(axis0, axis1))

    def unsqueeze_(self: Tensor, dim: int) -> Tensor:
        """In place ``unsqueeze(dim)``; returns self."""
        return self._reshape_in_place("unsqueeze_", self.unsqueeze(dim))

    def squeeze_(self: Tensor, dim: Any = None) -> Tensor:
        """In place ``squeeze(dim)``; returns self."""
        return self._reshape_in_place("squeeze_", self.squeeze(dim))

    # ---- aliases ------------------------------------------------------------------------------
    def swapdims(self: Tensor, dim0: int, dim1: int) -> Tensor:
        """Alias of ``transpose(dim0, dim1)`` (``torch.swapdims``)."""
        return self.transpose(dim0, dim1)

    def ravel(self: Tensor) -> Tensor:
        """The elements as one dim (a view when possible; ``ViewBackward0``), as torch's."""
        return self.reshape(-1)

    def absolute(self: Tensor) -> Tensor:
        """Alias of :meth:`abs`."""
        return self.abs()

    def negative(self: Tensor) -> Tensor:
        """Alias of :meth:`neg`."""
        return -self

    def fix(self: Tensor) -> Tensor:
        """Alias of :meth:`trunc`."""
        return self.trunc()

    def greater(self: Tensor, other: Any) -> Tensor:
        """Alias of :meth:`gt`."""
        return self.gt(other)

    def greater_equal(self: Tensor, other: Any) -> Tensor:
        """Alias of :meth:`ge`."""
        return self.ge(other)

    def less(self: Tensor, other: Any) -> Tensor:
        """Alias of :meth:`lt`."""
        return self.lt(other)

    def less_equal(self: Tensor, other: Any) -> Tensor:
        """Alias of :meth:`le`."""
        return self.le(other)

    def not_equal(self: Tensor, other: Any) -> Tensor:
        """Alias of :meth:`ne`."""
        return self.ne(other)

    def bitwise_and(self: Tensor, other: Any) -> Tensor:
        """Elementwise AND of bool/integer tensors (``&``), as ``torch.bitwise_and``."""
        return self._bitwise("bitwise_and", other, np.bitwise_and)

    def bitwise_or(self: Tensor, other: Any) -> Tensor:
        """Elementwise OR of bool/integer tensors (``|``)."""
        return self._bitwise("bitwise_or", other, np.bitwise_or)

    def bitwise_xor(self: Tensor, other: Any) -> Tensor:
        """Elementwise XOR of bool/integer tensors (``^``)."""
        return self._bitwise("bitwise_xor", other, np.bitwise_xor)

    def bitwise_not(self: Tensor) -> Tensor:
        """Elementwise NOT of a bool/integer tensor (``~``)."""
        return ~self

    def _bitwise(self: Tensor, op: str, other: Any, fn: Any) -> Tensor:
        """A bitwise op with torch's promotion; floats are refused as torch does (TypeError)."""
        a, b = promoted(self, other)
        if a._data.dtype.kind not in "biu":
            raise TypeError(f"{op}: needs bool or integer tensors, got {a._data.dtype}")
        return Tensor._make(np.asarray(fn(a._data, b._data)), False, None)

    def select(self: Tensor, dim: int, index: int) -> Tensor:
        """``self`` indexed by ``index`` along ``dim`` (that dim removed), as torch's."""
        (d,) = normalize_axis(dim, self.ndim, "select")
        return self[(slice(None),) * d + (int(index),)]

    def bmm(self: Tensor, mat2: Any) -> Tensor:
        """Batched matrix product of two 3-D tensors, as ``torch.bmm``.

        Raises:
            ValueError: either side is not 3-D.
        """
        if self.ndim != 3 or np.ndim(_raw(mat2)) != 3:
            raise ValueError(f"bmm: expects two 3-D tensors, got shapes {tuple(self.shape)} "
                             f"and {tuple(np.shape(_raw(mat2)))}")
        return self @ mat2

    def ldexp(self: Tensor, other: Any) -> Tensor:
        """``self * 2 ** other`` (float result), as ``torch.ldexp``."""
        return self * (2.0 ** other)

    # ---- scattering by position ---------------------------------------------------------------
    def masked_scatter(self: Tensor, mask: Any, source: Any) -> Tensor:
        """A copy of self whose elements where ``mask`` (broadcast to self) is True take
        ``source``'s elements in order (row-major), as ``torch.Tensor.masked_scatter``;
        gradients flow to self (unmasked places) and to the used part of ``source``.

        Raises:
            ValueError: ``source`` has fewer elements than ``mask`` has True values.
        """
        picked = np.flatnonzero(np.broadcast_to(_raw(mask).astype(bool), self.shape))
        source_t = source if hasattr(source, "_data") else _tensor(source)
        if source_t.numel() < picked.size:
            raise ValueError(f"masked_scatter: source has {source_t.numel()} elements, the "
                             f"mask selects {picked.size}")
        flat = self.reshape(-1)
        values = source_t.reshape(-1)[: picked.size]
        return flat.scatter(0, _tensor(picked), values).reshape(self.shape)

    def index_copy(self: Tensor, dim: int, index: Any, source: Any) -> Tensor:
        """A copy of self with the slices ``index`` along ``dim`` replaced by ``source``'s, as
        ``torch.Tensor.index_copy``; gradients flow to both."""
        (d,) = normalize_axis(dim, self.ndim, "index_copy")
        positions = _raw(index).astype(np.int64).reshape(-1)
        source_t = source if hasattr(source, "_data") else _tensor(source)
        shape = [1] * self.ndim
        shape[d] = positions.size
        spread = np.broadcast_to(positions.reshape(shape), source_t.shape)
        return self.scatter(d, _tensor(np.ascontiguousarray(spread)), source_t)

    def put(self: Tensor, index: Any, source: Any, accumulate: bool = False) -> Tensor:
        """A copy of self with the elements at flat positions ``index`` (negative from the end)
        set to (``accumulate``: increased by) ``source``, as ``torch.Tensor.put``.

        Raises:
            IndexError: a position out of range.
        """
        positions = _raw(index).astype(np.int64).reshape(-1)
        n = self.numel()
        if positions.size and (positions.max() >= n or positions.min() < -n):
            raise IndexError(f"put: index out of range for a tensor of {n} elements")
        source_t = source if hasattr(source, "_data") else _tensor(source)
        where_ = _tensor(positions % max(n, 1))
        values = source_t.reshape(-1)
        flat = self.reshape(-1)
        out = flat.scatter_add(0, where_, values) if accumulate else flat.scatter(0, where_, values)
        return out.reshape(self.shape)

    def put_(self: Tensor, index: Any, source: Any, accumulate: bool = False) -> Tensor:
        """In-place :meth:`put`; returns self."""
        return self._assign_("put_", lambda t: t.put(index, source, accumulate), source)

    # ---- torch's in-place methods whose out-of-place form gradwise has -------------------------
    # ``x.name_(*args)`` computes ``x.name(*args)`` and writes it into x (recorded when grad is
    # on, as ``add_``); one a line, so type checkers see each method
    acos_ = _inplace_method("acos")
    acosh_ = _inplace_method("acosh")
    addmm_ = _inplace_method("addmm")
    addmv_ = _inplace_method("addmv")
    arccos_ = _inplace_method("arccos")
    arccosh_ = _inplace_method("arccosh")
    arcsin_ = _inplace_method("arcsin")
    arcsinh_ = _inplace_method("arcsinh")
    arctan2_ = _inplace_method("arctan2")
    arctan_ = _inplace_method("arctan")
    arctanh_ = _inplace_method("arctanh")
    asin_ = _inplace_method("asin")
    asinh_ = _inplace_method("asinh")
    atan2_ = _inplace_method("atan2")
    atan_ = _inplace_method("atan")
    atanh_ = _inplace_method("atanh")
    baddbmm_ = _inplace_method("baddbmm")
    bitwise_left_shift_ = _inplace_method("bitwise_left_shift")
    bitwise_right_shift_ = _inplace_method("bitwise_right_shift")
    ceil_ = _inplace_method("ceil")
    clamp_max_ = _inplace_method("clamp_max")
    clamp_min_ = _inplace_method("clamp_min")
    clip_ = _inplace_method("clip")
    copysign_ = _inplace_method("copysign")
    cos_ = _inplace_method("cos")
    cosh_ = _inplace_method("cosh")
    cumprod_ = _inplace_method("cumprod")
    cumsum_ = _inplace_method("cumsum")
    deg2rad_ = _inplace_method("deg2rad")
    digamma_ = _inplace_method("digamma")
    divide_ = _inplace_method("divide")
    eq_ = _inplace_method("eq")
    erf_ = _inplace_method("erf")
    erfc_ = _inplace_method("erfc")
    erfinv_ = _inplace_method("erfinv")
    exp2_ = _inplace_method("exp2")
    expm1_ = _inplace_method("expm1")
    float_power_ = _inplace_method("float_power")
    floor_ = _inplace_method("floor")
    floor_divide_ = _inplace_method("floor_divide")
    fmod_ = _inplace_method("fmod")
    frac_ = _inplace_method("frac")
    ge_ = _inplace_method("ge")
    gt_ = _inplace_method("gt")
    heaviside_ = _inplace_method("heaviside")
    hypot_ = _inplace_method("hypot")
    le_ = _inplace_method("le")
    lgamma_ = _inplace_method("lgamma")
    log10_ = _inplace_method("log10")
    log1p_ = _inplace_method("log1p")
    log2_ = _inplace_method("log2")
    log_ = _inplace_method("log")
    logical_and_ = _inplace_method("logical_and")
    logical_not_ = _inplace_method("logical_not")
    logical_or_ = _inplace_method("logical_or")
    logical_xor_ = _inplace_method("logical_xor")
    logit_ = _inplace_method("logit")
    lt_ = _inplace_method("lt")
    multiply_ = _inplace_method("multiply")
    ne_ = _inplace_method("ne")
    nextafter_ = _inplace_method("nextafter")
    rad2deg_ = _inplace_method("rad2deg")
    reciprocal_ = _inplace_method("reciprocal")
    remainder_ = _inplace_method("remainder")
    round_ = _inplace_method("round")
    rsqrt_ = _inplace_method("rsqrt")
    sgn_ = _inplace_method("sgn")
    sign_ = _inplace_method("sign")
    sin_ = _inplace_method("sin")
    sinc_ = _inplace_method("sinc")
    sinh_ = _inplace_method("sinh")
    square_ = _inplace_method("square")
    subtract_ = _inplace_method("subtract")
    tan_ = _inplace_method("tan")
    true_divide_ = _inplace_method("true_divide")
    trunc_ = _inplace_method("trunc")
    xlogy_ = _inplace_method("xlogy")
    bitwise_and_ = _inplace_method("bitwise_and")
    bitwise_or_ = _inplace_method("bitwise_or")
    bitwise_xor_ = _inplace_method("bitwise_xor")
    bitwise_not_ = _inplace_method("bitwise_not")
    absolute_ = _inplace_method("absolute")
    negative_ = _inplace_method("negative")
    fix_ = _inplace_method("fix")
    greater_ = _inplace_method("greater")
    greater_equal_ = _inplace_method("greater_equal")
    less_ = _inplace_method("less")
    less_equal_ = _inplace_method("less_equal")
    not_equal_ = _inplace_method("not_equal")
    ldexp_ = _inplace_method("ldexp")
    masked_scatter_ = _inplace_method("masked_scatter")
