"""Reductions over axes (NumPy's ``axis``/``keepdims``) and the softmax family."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gradwise.autograd.function import Function
from gradwise.autograd.kernels import softmax as _softmax_kernels
from gradwise.autograd.ops._select import select_grad
from gradwise.autograd.ops.elementwise import (
    Abs,
    Exp,
    PowScalar,
    Where,
    linked_to,
    select_grad_graph,
    sgn,
)
from gradwise.autograd.ops.shape import BroadcastTo, Reshape

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
    """Sum over ``axes`` (all by default).

    Local derivative: 1 for every summed element. Shape: x -> x without ``axes`` (size 1 with
    ``keepdims``); an empty axis sums to 0.
    """

    saves_inputs = False
    named_per_call = True

    dim_given: bool  # set by forward

    def torch_node_name(self) -> str:
        """PyTorch's overloads: ``SumBackward0`` over everything, ``SumBackward1`` over dims."""
        return "SumBackward1" if self.dim_given else "SumBackward0"

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.dim_given = axis is not None
        axes = normalize_axis(axis, x.ndim, "sum")
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return np.sum(x, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        # every summed element contributes with derivative 1
        grad = _expand_reduced(grad, ctx.axes, ctx.keepdims)
        return (np.broadcast_to(grad, ctx.shape),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (_expand_graph(grad, ctx.shape, ctx.axes, ctx.keepdims),)


class Mean(Function):
    """Mean over ``axes``.

    Local derivative: 1 / N for each of the N elements averaged. Shape: as :class:`Sum`. An
    empty axis is refused (0 / 0; PyTorch returns NaN, see docs/NUMERICS.md).
    """

    saves_inputs = False
    named_per_call = True

    dim_given: bool  # set by forward

    def torch_node_name(self) -> str:
        """PyTorch's overloads: ``MeanBackward0`` over everything, ``MeanBackward1`` over dims."""
        return "MeanBackward1" if self.dim_given else "MeanBackward0"

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.dim_given = axis is not None
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

    @staticmethod
    def backward_graph(ctx, grad):
        grad = grad / np.asarray(ctx.count, grad.dtype)
        return (_expand_graph(grad, ctx.shape, ctx.axes, ctx.keepdims),)


class _Extreme(Function):
    """Maximum or minimum over ``axes`` (PyTorch's ``amax`` / ``amin``).

    Local derivative: 1 for the extreme element; ties split it evenly, as ``amax`` does. A
    NaN extreme: NaN everywhere (amax/amin), or split among the NaNs with ``nan_picks``
    (torch's max()/min() without a dim).
    Shape: as :class:`Sum`; an empty reduced axis is refused (no identity).
    """

    owns_grads = True
    reduce_fn = staticmethod(np.max)

    @classmethod
    def _forward(cls, ctx, x, axis, keepdims, name):
        axes = normalize_axis(axis, x.ndim, name)
        if _reduced_count(x.shape, axes) == 0:
            raise ValueError(
                f"{name}: reducing over an empty axis of a tensor of shape {x.shape}: the "
                "maximum and minimum of nothing are undefined"
            )
        out = cls.reduce_fn(x, axis=axes, keepdims=True)
        ctx.x, ctx.out, ctx.axes, ctx.keepdims = x, out, axes, keepdims
        return out if keepdims else np.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        # the gradient flows to the extreme element; ties split it evenly (like PyTorch's amax)
        hits = _extreme_hits(ctx.x, ctx.out, ctx.nan_picks)
        count = hits.sum(axis=ctx.axes, keepdims=True)
        grad = _expand_reduced(grad, ctx.axes, ctx.keepdims)
        share = (grad / count).astype(grad.dtype, copy=False)
        if ctx.nan_picks:  # torch's evenly_distribute_backward selects (an inf stays local)
            return (select_grad(hits, share),)
        return (hits * share,)  # torch's amax/amin backward multiplies by the mask

    @staticmethod
    def backward_graph(ctx, grad):
        # which elements are extreme is piecewise constant: a constant factor
        hits = _extreme_hits(ctx.x, ctx.out, ctx.nan_picks)
        share = (hits / hits.sum(axis=ctx.axes, keepdims=True)).astype(grad.dtype, copy=False)
        expanded = _expand_graph(grad, ctx.x.shape, ctx.axes, ctx.keepdims)
        if ctx.nan_picks:
            return (select_grad_graph(hits, expanded * share),)
        return (expanded * share,)


def _extreme_hits(x, out, nan_picks):
    """Where ``x`` equals the (kept-dims) extreme ``out``. With ``nan_picks`` (``max()`` /
    ``min()`` without a dim) a NaN extreme is "hit" by the NaN entries, as torch's
    ``evenly_distribute_backward`` (the whole gradient goes to the NaNs, split evenly);
    without it (``amax``/``amin``) NaN != NaN leaves no hit and the 0/0 share is NaN
    everywhere, as torch's amax/amin backward."""
    hits = x == out
    if nan_picks and x.dtype.kind in "fc":
        hits |= np.isnan(x) & np.isnan(out)
    return hits


class EvenlyDistributed(Function):
    """A value picked from ``x`` (0-d: median() without a dim), whose gradient is split evenly
    among the entries equal to it, or among the NaN entries when it is NaN: torch's
    ``evenly_distribute_backward``. Shape: x -> ()."""

    owns_grads = True

    @staticmethod
    def forward(ctx, x, value):
        ctx.x, ctx.out = x, np.asarray(value, dtype=x.dtype).reshape((1,) * x.ndim)
        return np.asarray(value, dtype=x.dtype).reshape(())

    @staticmethod
    def _share(ctx, dtype):
        hits = _extreme_hits(ctx.x, ctx.out, True)
        return (hits / max(int(hits.sum()), 1)).astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        share = EvenlyDistributed._share(ctx, grad.dtype)
        return (select_grad(share != 0, share * grad),)

    @staticmethod
    def backward_graph(ctx, grad):
        share = EvenlyDistributed._share(ctx, grad.dtype)
        return (select_grad_graph(share != 0, grad * share),)


class Max(_Extreme):
    """Maximum over ``axes``; see :class:`_Extreme`.
    """
    torch_name = "Amax"  # max() without dim renames its node MaxBackward1

    reduce_fn = staticmethod(np.max)

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, nan_picks=False):
        ctx.nan_picks = nan_picks
        return Max._forward(ctx, x, axis, keepdims, "max")


class Min(_Extreme):
    """Minimum over ``axes``; see :class:`_Extreme`.
    """
    torch_name = "Amin"  # min() without dim renames its node MinBackward1

    reduce_fn = staticmethod(np.min)

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, nan_picks=False):
        ctx.nan_picks = nan_picks
        return Min._forward(ctx, x, axis, keepdims, "min")


def _reduced_count(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    count = 1
    for a in axes:
        count *= shape[a]
    return count


class Var(Function):
    """Variance over ``axes``: sum((x - mean(x))^2) / (N - ddof), N the number of values reduced.

    Local derivative (PyTorch's ``var_backward``): d var / dx_i = 2 (x_i - mean) / (N - ddof)
    (the mean's own dependence on x_i cancels, since the deviations sum to zero).
    Shape: x -> x with ``axes`` removed (kept as size 1 with ``keepdims``).
    """

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, ddof=0, name="var"):
        return Var._variance(ctx, x, axis, keepdims, ddof, name).astype(x.dtype, copy=False)

    @staticmethod
    def _variance(ctx, x, axis, keepdims, ddof, name):
        """The variance in the accumulation dtype (float64 for narrower floats, as PyTorch's
        CPU kernel accumulates), so that the squares of values near float32's largest do not
        overflow; keeps the deviations, in x's dtype, for backward."""
        axes = normalize_axis(axis, x.ndim, name)
        count = _reduced_count(x.shape, axes)
        if count - ddof <= 0:
            raise ValueError(
                f"{name}: {count} value(s) with ddof={ddof} leave no degrees of freedom "
                f"(tensor of shape {x.shape}, axes {axes})"
            )
        wide = x.astype(np.float64, copy=False) if x.dtype.itemsize < 8 else x
        centered = wide - np.mean(wide, axis=axes, keepdims=True)
        out = np.sum(centered * centered, axis=axes, keepdims=keepdims) / (count - ddof)
        ctx.centered = centered.astype(x.dtype, copy=False)
        ctx.axes, ctx.keepdims = axes, keepdims
        ctx.dof = np.asarray(count - ddof, dtype=x.dtype)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = _expand_reduced(grad, ctx.axes, ctx.keepdims)
        return ((2 * grad / ctx.dof) * ctx.centered,)

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        centered = x - Mean.apply(x, ctx.axes, True)
        grad = _expand_graph(grad, x.shape, ctx.axes, ctx.keepdims)
        return (grad * centered * (2 / ctx.dof),)


class Std(Var):
    """Standard deviation: sqrt of :class:`Var`.

    Local derivative: d std / dx_i = (x_i - mean) / ((N - ddof) std), taken as 0 where std is 0
    (all values equal, or a single value with ddof=0): sqrt'(0) = inf times a zero deviation
    would be NaN, and PyTorch's ``std_backward`` masks it to 0 the same way.
    Shape: as :class:`Var`.
    """

    saves_output = True

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, ddof=0):
        out = np.sqrt(Var._variance(ctx, x, axis, keepdims, ddof, "std")).astype(x.dtype)
        ctx.out = out
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.out
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_var = np.where(out == 0, 0, grad / (2 * out)).astype(grad.dtype, copy=False)
        return Var.backward(ctx, grad_var)

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        std = Std.apply(x, ctx.axes, ctx.keepdims, int(_reduced_count(x.shape, ctx.axes) -
                                                          ctx.dof))
        zero = np.zeros((), dtype=grad.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_var = Where.apply(ctx.out == 0, zero, grad / (std * 2))
        return Var.backward_graph(ctx, grad_var)


def var(x: Tensor, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance with ``ddof`` delta degrees of freedom (see :class:`Var`)."""
    return Var.apply(x, axis, keepdims, ddof)


def std(x: Tensor, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Standard deviation with ``ddof`` delta degrees of freedom (see :class:`Std`)."""
    return Std.apply(x, axis, keepdims, ddof)


class VectorNorm(Function):
    """The p-norm of ``x`` over ``axes``, as ``torch.linalg.vector_norm``.

    p = inf: max |x|; p = -inf: min |x|; p = 0: the number of non-zero values; otherwise
    (sum |x|^p)^(1/p). Computed without rescaling, as PyTorch does, so the 2-norm of
    [1e200, 1e200] overflows to inf in float64 (and of [1e-30, 1e-30] underflows to 0 in
    float32) exactly where PyTorch's does.

    Local derivative (PyTorch's ``linalg_vector_norm_backward``): p = 2: x / norm; p = 1:
    sign(x); p = +-inf: sign(x) at the values where |x| equals the norm (or is NaN), split evenly
    between ties; other p: sign(x) |x|^(p-1) / norm^(p-1). Every one is taken as 0 where the
    norm is 0 (so norm'(0) = 0, a subgradient). p = 0 sends no gradient at all, torch's
    undefined gradient (``autograd.grad(..., allow_unused=True)`` gives None). ``distance=True``
    is the rule of torch's ``_cdist_backward`` and ``_pdist_backward`` (cdist, pdist): each tied
    entry of an inf-norm takes the whole gradient, and p = 0 gives zeros.
    Shape: x -> x with ``axes`` removed (kept as size 1 with ``keepdims``).
    """
    torch_name = "LinalgVectorNorm"

    owns_grads = True
    saves_output = True
    may_send_no_grad = True  # p = 0

    @staticmethod
    def forward(ctx, x, ord=2.0, axis=None, keepdims=False, distance=False):
        ctx.distance = distance
        if x.dtype.kind not in "fc":
            raise TypeError(f"vector_norm: expected a floating-point tensor, got {x.dtype}")
        ord = float(ord)
        axes = normalize_axis(axis, x.ndim, "vector_norm")
        if np.isinf(ord) and _reduced_count(x.shape, axes) == 0 and x.ndim:
            raise ValueError(
                f"vector_norm: the {ord} norm of an empty tensor (shape {x.shape}, axes {axes}) "
                "is undefined: max and min have no identity"
            )
        magnitude = np.abs(x)
        if ord == np.inf:
            out = np.max(magnitude, axis=axes, keepdims=True)
        elif ord == -np.inf:
            out = np.min(magnitude, axis=axes, keepdims=True)
        elif ord == 0:
            out = np.sum(x != 0, axis=axes, keepdims=True).astype(x.dtype)
        elif ord == 1:
            out = np.sum(magnitude, axis=axes, keepdims=True)
        elif ord == 2:
            out = np.sqrt(np.sum(x * x, axis=axes, keepdims=True))
        else:
            with np.errstate(divide="ignore"):
                out = np.sum(magnitude**ord, axis=axes, keepdims=True) ** (1 / ord)
        ctx.x, ctx.ord, ctx.axes, ctx.keepdims, ctx.out = x, ord, axes, keepdims, out
        # torch's p = 0, 1, inf gradients read x only (sgn, the ties), not the norm
        ctx.double_backward_reads_output = not (ord in (0, 1) or np.isinf(ord))
        return out if keepdims else np.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        x, p, norm = ctx.x, ctx.ord, ctx.out  # norm keeps the reduced axes (size 1)
        grad = _expand_reduced(grad, ctx.axes, ctx.keepdims)
        if p == 0:
            return (np.zeros(x.shape, dtype=grad.dtype) if ctx.distance else None,)
        if p == 1:
            return (sgn(x) * grad,)
        with np.errstate(divide="ignore", invalid="ignore"):
            if np.isinf(p):
                magnitude = np.abs(x)
                hits = (magnitude == norm) | np.isnan(magnitude)
                count = 1 if ctx.distance else hits.sum(axis=ctx.axes, keepdims=True)
                return (sgn(x) * hits * (grad / count).astype(grad.dtype, copy=False),)
            if p == 2:
                return (np.where(norm == 0, 0, x / norm).astype(grad.dtype) * grad,)
            scale = np.where(norm == 0, 0, grad / norm ** (p - 1))
            local = sgn(x) * np.abs(x) ** (p - 1)
            if p < 1:  # |x|^(p-1) is inf at 0; PyTorch masks it to 0 there
                local = np.where(x == 0, 0, local)
            return ((local * scale).astype(grad.dtype, copy=False),)

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        p = ctx.ord
        grad = _expand_graph(grad, x.shape, ctx.axes, ctx.keepdims)
        if p == 0:
            # torch's undefined gradient (None); cdist/pdist keep torch's zeros
            return (grad * np.zeros(x.shape, dtype=grad.dtype) if ctx.distance else None,)
        # p = 1 and +-inf: torch's backward reads x through sgn (derivative 0): linked to x
        if p == 1:
            return (linked_to(grad * sgn(ctx.x), x),)
        if np.isinf(p):
            magnitude = np.abs(ctx.x)
            hits = (magnitude == ctx.out) | np.isnan(magnitude)
            count = 1 if ctx.distance else hits.sum(axis=ctx.axes, keepdims=True)
            share = sgn(ctx.x) * hits / count
            return (linked_to(grad * share.astype(grad.dtype, copy=False), x),)
        if p == 2:
            norm = VectorNorm.apply(x, 2.0, ctx.axes, True, ctx.distance)
            zero = np.zeros((), dtype=grad.dtype)
            with np.errstate(divide="ignore", invalid="ignore"):
                return (Where.apply(ctx.out == 0, zero, x / norm) * grad,)
        # other p: sign(x) |x|^(p-1) / norm^(p-1), 0 where the norm is 0 (and, for p < 1,
        # where x is 0), as backward; the masks are constants
        norm = VectorNorm.apply(x, p, ctx.axes, True, ctx.distance)
        zero = np.zeros((), dtype=grad.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            local = PowScalar.apply(Abs.apply(x), p - 1) * sgn(ctx.x).astype(grad.dtype)
            if p < 1:
                local = Where.apply(ctx.x == 0, zero, local)
            scale = Where.apply(ctx.out == 0, zero, grad / PowScalar.apply(norm, p - 1))
            return (local * scale,)


class LogSumExp(Function):
    """log(sum(e^x)) over ``axes``, shifted by the maximum so it never overflows.

    Local derivative: softmax(x) over ``axes``. An empty axis gives -inf (PyTorch too).
    Shape: as :class:`Sum`.
    """
    torch_name = "Logsumexp"

    owns_grads = True
    # torch's logsumexp_backward saves both x and the result: a change to either before the
    # gradient (or before a create_graph gradient is differentiated) is an error, as there
    saves_output = True

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axes = normalize_axis(axis, x.ndim, "logsumexp")
        # `initial` makes an empty axis reduce to -inf (PyTorch: logsumexp of nothing is -inf)
        peak = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
        peak = np.where(np.isfinite(peak), peak, 0)  # all -inf rows stay -inf, not NaN
        shifted_exp = np.exp(x - peak)
        total = shifted_exp.sum(axis=axes, keepdims=True)
        with np.errstate(divide="ignore"):  # log(0) = -inf is the answer for an empty axis
            out = np.log(total) + peak
        ctx.softmax = shifted_exp / total
        ctx.axes, ctx.keepdims = axes, keepdims
        return out if keepdims else np.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        # d logsumexp / dx_i = softmax(x)_i
        return (_expand_reduced(grad, ctx.axes, ctx.keepdims) * ctx.softmax,)

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        # torch's formula: grad * e^(x - result), from the output (not recomputed from x)
        softmax = Exp.apply(x - _expand_graph(ctx.result, x.shape, ctx.axes, ctx.keepdims))
        return (_expand_graph(grad, x.shape, ctx.axes, ctx.keepdims) * softmax,)


def _check_axis(axis: int, ndim: int, op: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a {ndim}-d tensor")
    return axis % ndim


def require_floating(op: str, x: np.ndarray) -> None:
    """Refuse integer/bool input to an op defined on real numbers only, as torch does.

    Raises:
        NotImplementedError: ``x`` is not floating point (torch: '"softmax_lastdim_kernel_impl"
            not implemented for 'Long''); before, softmax of int64 raised an OverflowError and
            layer_norm silently returned float64 (issue 14).
    """
    if x.dtype.kind != "f":
        raise NotImplementedError(
            f"{op}: not implemented for dtype {x.dtype} (input of shape {tuple(x.shape)}); "
            "convert it first, e.g. x.float()")


class Softmax(Function):
    """e^x / sum(e^x) along one axis, shifted by the maximum.

    Local derivative (as a vector-Jacobian product): s * (g - sum(g * s)). An empty axis gives
    an empty result. Shape: x -> same.
    """

    observe_kind = "softmax"
    owns_grads = True
    saves_inputs = False
    saves_output = True

    @staticmethod
    def forward(ctx, x, axis=-1):
        require_floating("softmax", x)
        axis = _check_axis(axis, x.ndim, "softmax")
        if axis == x.ndim - 1 and x.ndim >= 1 and x.flags.c_contiguous:
            # rows of the last axis, one pass each (autograd/kernels/softmax.py)
            out = _softmax_kernels.softmax_forward(_as_rows(x)).reshape(x.shape)
            ctx.out, ctx.axis = out, axis
            return out
        # `initial` lets an empty axis through (the result is empty too, as in PyTorch)
        e = np.exp(x - x.max(axis=axis, keepdims=True, initial=-np.inf))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.out, ctx.axis = out, axis
        return out

    @staticmethod
    def backward(ctx, grad):
        # Jacobian-vector product: s * (g - sum(g * s))
        s = ctx.out
        if _last_axis_rows(ctx.axis, s, grad):
            return (_softmax_kernels.softmax_backward(_as_rows(grad), _as_rows(s))
                    .reshape(s.shape),)
        return (s * (grad - (grad * s).sum(axis=ctx.axis, keepdims=True)),)

    @staticmethod
    def backward_graph(ctx, grad):
        s = ctx.result  # torch's: from the output (result)
        return (s * (grad - Sum.apply(grad * s, ctx.axis, True)),)


class LogSoftmax(Function):
    """x - logsumexp(x) along one axis.

    Local derivative (vector-Jacobian product): g - softmax * sum(g). Shape: x -> same.
    """

    owns_grads = True
    saves_inputs = False
    saves_output = True

    @staticmethod
    def forward(ctx, x, axis=-1):
        require_floating("log_softmax", x)
        axis = _check_axis(axis, x.ndim, "log_softmax")
        if axis == x.ndim - 1 and x.ndim >= 1 and x.flags.c_contiguous:
            out = _softmax_kernels.softmax_forward(_as_rows(x), log=True)
            ctx.out, ctx.axis = out.reshape(x.shape), axis
            return ctx.out
        shifted = x - x.max(axis=axis, keepdims=True, initial=-np.inf)
        with np.errstate(divide="ignore"):  # an empty axis sums to 0; its result is empty
            out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.out, ctx.axis = out, axis
        return out

    @staticmethod
    def backward(ctx, grad):
        # d log_softmax_i / dx_j = delta_ij - softmax_j
        out = ctx.out
        if _last_axis_rows(ctx.axis, out, grad):
            return (_softmax_kernels.softmax_backward(_as_rows(grad), _as_rows(out), log=True)
                    .reshape(out.shape),)
        return (grad - np.exp(ctx.out) * grad.sum(axis=ctx.axis, keepdims=True),)

    @staticmethod
    def backward_graph(ctx, grad):
        probs = Exp.apply(ctx.result)  # torch's: from the output (result)
        return (grad - probs * Sum.apply(grad, ctx.axis, True),)


def _as_rows(a: np.ndarray) -> np.ndarray:
    """``a`` as (M, D) rows of its last axis (a view; -1 cannot stand for M when D is 0)."""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def _last_axis_rows(axis: int, out: np.ndarray, grad: np.ndarray) -> bool:
    """The softmax ran over the last axis and both arrays can be viewed as (M, D) rows."""
    return (axis == out.ndim - 1 and out.ndim >= 1 and grad.shape == out.shape
            and out.flags.c_contiguous and grad.flags.c_contiguous)


def _expand_graph(grad, shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool):
    """:func:`_expand_reduced` then broadcast to ``shape``, as recorded ops (create_graph)."""
    if not keepdims and axes:
        grad = Reshape.apply(grad, tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return BroadcastTo.apply(grad, tuple(shape))
