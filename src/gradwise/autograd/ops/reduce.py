"""Reductions over axes (NumPy's ``axis``/``keepdims``) and the softmax family."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradwise.autograd.function import Function

if TYPE_CHECKING:
    from gradwise.autograd.tensor import Tensor


def normalize_axis(axis, ndim: int, op: str) -> tuple[int, ...]:
    """``axis`` (None, int or tuple, negatives allowed) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a {ndim}-d tensor")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def _expand_reduced(grad: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """Put back the reduced axes as size-1 axes so the gradient broadcasts over the input."""
    if keepdims or not axes:
        return grad
    return np.expand_dims(grad, axes)


class Sum(Function):
    saves_inputs = False

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axes = normalize_axis(axis, x.ndim, "sum")
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return np.sum(x, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        # every summed element contributes with derivative 1
        grad = _expand_reduced(grad, ctx.axes, ctx.keepdims)
        return (np.broadcast_to(grad, ctx.shape),)


class Mean(Function):
    saves_inputs = False

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axes = normalize_axis(axis, x.ndim, "mean")
        count = 1
        for a in axes:
            count *= x.shape[a]
        if count == 0:
            raise ValueError(f"mean: reducing over an empty axis of a tensor of shape {x.shape}")
        ctx.shape, ctx.axes, ctx.keepdims, ctx.count = x.shape, axes, keepdims, count
        return np.mean(x, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        # each element contributes 1/count
        grad = _expand_reduced(grad, ctx.axes, ctx.keepdims) / np.asarray(ctx.count, grad.dtype)
        return (np.broadcast_to(grad, ctx.shape),)


class _Extreme(Function):
    owns_grads = True
    reduce_fn = staticmethod(np.max)

    @classmethod
    def _forward(cls, ctx, x, axis, keepdims, name):
        axes = normalize_axis(axis, x.ndim, name)
        if x.size == 0:
            raise ValueError(f"{name}: tensor of shape {x.shape} is empty")
        out = cls.reduce_fn(x, axis=axes, keepdims=True)
        ctx.x, ctx.out, ctx.axes, ctx.keepdims = x, out, axes, keepdims
        return out if keepdims else np.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        # the gradient flows to the extreme element; ties split it evenly (like PyTorch's amax)
        hits = ctx.x == ctx.out
        count = hits.sum(axis=ctx.axes, keepdims=True)
        grad = _expand_reduced(grad, ctx.axes, ctx.keepdims)
        return (hits * (grad / count).astype(grad.dtype, copy=False),)


class Max(_Extreme):
    reduce_fn = staticmethod(np.max)

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return Max._forward(ctx, x, axis, keepdims, "max")


class Min(_Extreme):
    reduce_fn = staticmethod(np.min)

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return Min._forward(ctx, x, axis, keepdims, "min")


def var(x: Tensor, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance built from primitives: mean((x - mean(x))^2) * n / (n - ddof)."""
    axes = normalize_axis(axis, x.ndim, "var")
    count = 1
    for a in axes:
        count *= x.shape[a]
    if count - ddof <= 0:
        raise ValueError(f"var: {count} elements with ddof={ddof} leave no degrees of freedom")
    centered = x - x.mean(axis=axes, keepdims=True)
    return (centered * centered).sum(axis=axes, keepdims=keepdims) * (1.0 / (count - ddof))


class LogSumExp(Function):
    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axes = normalize_axis(axis, x.ndim, "logsumexp")
        peak = np.max(x, axis=axes, keepdims=True)
        peak = np.where(np.isfinite(peak), peak, 0)  # all -inf rows stay -inf, not NaN
        shifted_exp = np.exp(x - peak)
        total = shifted_exp.sum(axis=axes, keepdims=True)
        out = np.log(total) + peak
        ctx.softmax = shifted_exp / total
        ctx.axes, ctx.keepdims = axes, keepdims
        return out if keepdims else np.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        # d logsumexp / dx_i = softmax(x)_i
        return (_expand_reduced(grad, ctx.axes, ctx.keepdims) * ctx.softmax,)


def _check_axis(axis: int, ndim: int, op: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a {ndim}-d tensor")
    return axis % ndim


class Softmax(Function):
    observe_kind = "softmax"
    owns_grads = True
    saves_inputs = False
    saves_output = True

    @staticmethod
    def forward(ctx, x, axis=-1):
        axis = _check_axis(axis, x.ndim, "softmax")
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.out, ctx.axis = out, axis
        return out

    @staticmethod
    def backward(ctx, grad):
        # Jacobian-vector product: s * (g - sum(g * s))
        s = ctx.out
        return (s * (grad - (grad * s).sum(axis=ctx.axis, keepdims=True)),)


class LogSoftmax(Function):
    owns_grads = True
    saves_inputs = False
    saves_output = True

    @staticmethod
    def forward(ctx, x, axis=-1):
        axis = _check_axis(axis, x.ndim, "log_softmax")
        shifted = x - x.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.out, ctx.axis = out, axis
        return out

    @staticmethod
    def backward(ctx, grad):
        # d log_softmax_i / dx_j = delta_ij - softmax_j
        return (grad - np.exp(ctx.out) * grad.sum(axis=ctx.axis, keepdims=True),)
