"""Fused, numerically stable losses: each is one node whose backward is the closed form.

Composing these from log, exp and indexing works too, but is slower and, for logits of +-1000,
overflows; the fused forms below never exponentiate a positive number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd.function import Function
from gradwise.autograd.kernels import loss as _loss_kernels
from gradwise.autograd.ops.elementwise import (
    Clip,
    Log,
    Log1p,
    Maximum,
    Sigmoid,
    Where,
    stable_sigmoid,
)
from gradwise.autograd.ops.reduce import Softmax, require_floating
from gradwise.autograd.ops.shape import BroadcastTo, Reshape
from gradwise.autograd.tensor import _dtype_name

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(name: str, reduction: str) -> None:
    """Raise ValueError naming the loss ``name`` unless ``reduction`` is "mean", "sum" or "none"."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_not_empty(name: str, size: int, reduction: str) -> None:
    """A 'mean' over an empty batch is 0 / 0: refused, as ``Tensor.mean`` refuses it.

    PyTorch returns NaN here; see docs/NUMERICS.md (an empty last batch is almost always a
    data-loading bug, and a NaN loss would reach the weights before anyone saw it).
    """
    if reduction == "mean" and size == 0:
        raise ValueError(
            f"{name}: reduction='mean' over an empty batch (0 elements) is undefined; use "
            "reduction='sum' or skip empty batches"
        )


def _reduce(loss: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "mean":
        return _mean(loss)
    if reduction == "sum":
        return np.asarray(loss.sum(), dtype=loss.dtype)
    return loss


def _mean(values: np.ndarray) -> np.ndarray:
    """``values.mean()`` as a 0-d array of their dtype, bitwise, without ``ndarray.mean``'s
    Python layer (~2 us, a tenth of a small loss's forward): for float32/float64 NumPy's mean is
    ``add.reduce`` over all axes (pairwise) divided by the count, rounded to the dtype (numpy
    ``_core/_methods._mean``); other dtypes (float16 sums in float32) take ``mean`` itself."""
    if values.dtype.type in (np.float32, np.float64) and values.size:
        total = np.add.reduce(values, axis=None)
        # divided by an intp, as NumPy does: a float32 sum then divides in float64 (a count
        # above 2**24 is exact there), rounded back to float32
        return np.asarray(total.dtype.type(total / np.intp(values.size)))
    return np.asarray(values.mean(), dtype=values.dtype)


def _grad_scale(grad: np.ndarray, reduction: str, count: int) -> np.ndarray:
    """The incoming gradient per element: scalar for mean/sum, per element for 'none'."""
    if reduction == "mean":
        return grad / np.asarray(count, grad.dtype)
    return grad


def check_class_targets(
    name: str, logits: np.ndarray, target: np.ndarray, ignore_index: int | None = None
) -> np.ndarray:
    """Targets must be integer class indices in [0, C), one per row of (N, C) logits, of
    dtype int64 or uint8 as torch requires (RuntimeError with torch's message otherwise).

    Entries equal to ``ignore_index`` are exempt from the range check. Returns the mask of the
    rows that count (all True without ``ignore_index``).
    """
    _check_class_target_form(name, logits, target)
    return _class_targets_counted(name, logits.shape[1], target, ignore_index)[0]


def _check_class_target_form(name: str, logits: np.ndarray, target: np.ndarray) -> None:
    """The dtype and shape rules of :func:`check_class_targets` (not the label range)."""
    if logits.ndim != 2:
        raise ValueError(f"{name}: input must be (N, C), got shape {logits.shape}")
    if target.dtype not in (np.int64, np.uint8):
        # torch's rule (ClassNLLCriterion): class indices are int64 or uint8; int32, bool and
        # floats are refused rather than cast
        raise RuntimeError(f"{name}: expected target dtype to be Long or Byte, but got "
                           f"{_dtype_name(target.dtype)}")
    if target.shape != (logits.shape[0],):
        raise ValueError(
            f"{name}: target of shape {target.shape} does not match input {logits.shape} "
            f"(expected ({logits.shape[0]},))"
        )


def _class_targets_counted(name: str, classes: int, target: np.ndarray,
                           ignore_index: int | None) -> tuple[np.ndarray, bool]:
    """The range check of :func:`check_class_targets` (dtype and shape already checked):
    ``(counted, every row counted)``.

    The common case (no ``ignore_index``, or a negative one such as the default -100, and no
    negative label) needs only the minimum and the maximum: a non-negative minimum means no row
    carries a negative ``ignore_index``. That is three NumPy calls fewer than the mask first
    (~3 us of a ~20 us cross-entropy step for 128 rows).
    """
    if target.size and (ignore_index is None or ignore_index < 0):
        low = int(target.min())
        if low >= 0:
            high = int(target.max())
            if high >= classes:
                raise ValueError(
                    f"{name}: target label {high} is out of range for {classes} classes")
            return np.ones(target.shape, dtype=bool), True
    counted = np.ones(target.shape, dtype=bool) if ignore_index is None else (
        target != ignore_index
    )
    every = bool(counted.all())
    labels = target if every else target[counted]
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= classes:
            bad = low if low < 0 else high
            raise ValueError(
                f"{name}: target label {bad} is out of range for {classes} classes"
            )
    return counted, every


def check_class_weight(name: str, weight: np.ndarray | None, classes: int, dtype) -> Any:
    """A per-class weight must be a (C,) array; it is returned in the logits' dtype."""
    if weight is None:
        return None
    weight = np.asarray(weight)
    if weight.shape != (classes,):
        raise ValueError(
            f"{name}: weight of shape {weight.shape} does not match {classes} classes "
            f"(expected ({classes},))"
        )
    return weight.astype(dtype, copy=False)


def _class_terms(target, counted, weight, dtype):
    """The label of each row (0 where ignored) and its weight w[y_i] (0 where ignored)."""
    labels = np.where(counted, target, 0)
    picked = counted.astype(dtype) if weight is None else weight[labels] * counted
    return labels, picked


def _mean_denominator(picked: np.ndarray) -> np.ndarray:
    # PyTorch divides a 'mean' by the total weight of the counted rows (their number without
    # a class weight); when every row is ignored that is 0 / 0 = NaN, in PyTorch too
    return picked.sum()


def _row_scale(grad: np.ndarray, ctx) -> np.ndarray:
    """The incoming gradient per row, 0 on ignored rows whatever it is (PyTorch's masking).

    A 'mean' over rows that are all ignored is 0 / 0 = NaN, yet the ignored rows' gradient
    stays 0 (it is never multiplied by that NaN).
    """
    if ctx.reduction == "none":
        scale = grad
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = grad / ctx.denominator if ctx.reduction == "mean" else grad
        scale = np.broadcast_to(scale, ctx.counted.shape)
    return np.where(ctx.counted, scale, 0).astype(grad.dtype, copy=False)


class CrossEntropy(Function):
    """Softmax cross-entropy of (N, C) logits against integer labels, ``F.cross_entropy``.

    With log-probabilities ``l = log_softmax(z)``, class weights ``w`` (1 without), label
    smoothing ``s``, and ``m_i`` = 0 for rows whose label is ``ignore_index`` (1 otherwise),
    row i's loss is ``-sum_c a_ic l_ic`` with the target weights
    ``a_ic = m_i ((1 - s) w_yi [c == y_i] + (s / C) w_c)``, exactly PyTorch's
    ``(1 - s) nll_loss + (s / C) smooth_loss``. 'mean' divides the sum by
    ``D = sum_i m_i w_yi`` (PyTorch's normalisation, for the smoothing term too).

    Local derivative: dL_i/dz_ij = (sum_c a_ic) softmax_ij - a_ij.
    Shape: logits (N, C), target (N,) -> () or (N,) for 'none'.
    """
    torch_name = "NllLoss"  # torch's last node: nll_loss(log_softmax)

    observe_kind = "cross_entropy"
    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, logits, target, weight=None, ignore_index=-100, reduction="mean",
                label_smoothing=0.0):
        require_floating("cross_entropy", logits)
        _check_class_target_form("cross_entropy", logits, target)
        n, classes = logits.shape
        counted, every = _class_targets_counted("cross_entropy", classes, target, ignore_index)
        check_not_empty("cross_entropy", target.size, reduction)
        weight = check_class_weight("cross_entropy", weight, classes, logits.dtype)
        if weight is None and not label_smoothing and every:
            # the common case, one pass over the logits (autograd/kernels/loss.py)
            probs, losses = _loss_kernels.cross_entropy_forward(logits, target)
            ctx.plain = True
            ctx.probs, ctx.labels, ctx.reduction = probs, target, reduction
            return _reduce(losses, reduction)
        shifted = logits - logits.max(axis=1, keepdims=True, initial=-np.inf)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        log_probs = shifted - np.log(total)  # (N, C)
        rows = np.arange(n)
        ctx.plain = False
        labels, picked = _class_terms(target, counted, weight, logits.dtype)
        # ignored rows are selected away, not multiplied by 0: a -inf logit there makes its
        # log-probabilities -inf (or NaN), and -inf * 0 would be NaN where torch has exactly 0
        loss = np.where(counted, -log_probs[rows, labels] * picked, 0)
        if label_smoothing:
            weighted = log_probs if weight is None else log_probs * weight
            smooth = np.where(counted, -weighted.sum(axis=1), 0)
            loss = (1 - label_smoothing) * loss + (label_smoothing / classes) * smooth
        exp /= total  # softmax, kept for backward
        ctx.probs, ctx.labels, ctx.picked, ctx.rows = exp, labels, picked, rows
        ctx.counted, ctx.weight = counted, weight
        ctx.reduction, ctx.smoothing = reduction, label_smoothing
        if reduction == "mean":
            ctx.denominator = _mean_denominator(picked)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.asarray(loss.sum() / ctx.denominator, dtype=logits.dtype)
        return _reduce(loss.astype(logits.dtype, copy=False), reduction)

    @staticmethod
    def backward(ctx, grad):
        # dL/dz = (sum_c a_c) softmax - a, row by row (see the class docstring)
        if ctx.plain:
            scale = _grad_scale(grad, ctx.reduction, ctx.probs.shape[0])
            return (_loss_kernels.cross_entropy_backward(ctx.probs, ctx.labels, scale),)
        probs, s = ctx.probs, ctx.smoothing
        classes = probs.shape[1]
        out = probs * ctx.picked[:, None] if s == 0 else None
        if s:
            weight_sum = classes if ctx.weight is None else ctx.weight.sum()
            mass = (1 - s) * ctx.picked + (s / classes) * weight_sum * ctx.counted  # sum_c a_c
            out = probs * mass[:, None]
            smooth = (s / classes) * (1 if ctx.weight is None else ctx.weight)
            out -= smooth * ctx.counted[:, None]
            out[ctx.rows, ctx.labels] -= (1 - s) * ctx.picked
        else:
            out[ctx.rows, ctx.labels] -= ctx.picked
        out *= _row_scale(grad, ctx)[:, None]
        return (out.astype(grad.dtype, copy=False),)

    @staticmethod
    def backward_graph(ctx, grad):
        # dL/dz = ((sum_c a_c) softmax - a) times the row's incoming gradient; a and its sum
        # depend only on the targets (constants), softmax and the incoming gradient are recorded
        probs, labels = ctx.probs, ctx.labels
        n, classes = probs.shape
        rows = np.arange(n)
        targets = np.zeros_like(probs)  # a, (N, C)
        if ctx.plain:
            targets[rows, labels] = 1
            mass = np.ones(n, dtype=probs.dtype)
            counted = np.ones(n, dtype=bool)
            denominator = n
        else:
            s, counted = ctx.smoothing, ctx.counted
            targets[rows, labels] = (1 - s) * ctx.picked
            if s:
                smooth = (s / classes) * (1 if ctx.weight is None else ctx.weight)
                targets += smooth * counted[:, None]
            mass = targets.sum(axis=1)
            denominator = getattr(ctx, "denominator", None)
        scale = _row_scale_graph(grad, ctx.reduction, counted, denominator)
        softmax = Softmax.apply(ctx.inputs[0], 1)
        local = softmax * mass[:, None].astype(grad.dtype) - targets.astype(grad.dtype)
        # an ignored row's gradient is its softmax times 0: 0 for a -inf logit, NaN where the
        # softmax itself is NaN (all -inf, or a NaN logit), as torch's log_softmax backward
        return (local * Reshape.apply(scale, (n, 1)),)


class NLLLoss(Function):
    """Negative log-likelihood of integer labels under (N, C) log-probabilities, ``F.nll_loss``.

    Row i's loss is ``-w_yi l_i,yi`` (0 for rows labelled ``ignore_index``); 'mean' divides the
    sum by the total weight ``sum_i m_i w_yi`` of the counted rows, as PyTorch does.
    Local derivative: -w_yi at the label, 0 elsewhere.
    Shape: log_probs (N, C), target (N,) -> () or (N,) for 'none'.
    """
    torch_name = "NllLoss"

    observe_kind = "nll_loss"
    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, log_probs, target, weight=None, ignore_index=-100, reduction="mean"):
        counted = check_class_targets("nll_loss", log_probs, target, ignore_index)
        check_not_empty("nll_loss", target.size, reduction)
        weight = check_class_weight("nll_loss", weight, log_probs.shape[1], log_probs.dtype)
        rows = np.arange(log_probs.shape[0])
        labels, picked = _class_terms(target, counted, weight, log_probs.dtype)
        # an ignored row is left out (0), not multiplied by 0: its value may be +-inf
        loss = np.where(counted, -log_probs[rows, labels] * picked, 0)
        ctx.shape, ctx.rows, ctx.labels, ctx.picked = log_probs.shape, rows, labels, picked
        ctx.counted = counted
        ctx.reduction = reduction
        if reduction == "mean":
            ctx.denominator = _mean_denominator(picked)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.asarray(loss.sum() / ctx.denominator, dtype=log_probs.dtype)
        return _reduce(loss.astype(log_probs.dtype, copy=False), reduction)

    @staticmethod
    def backward(ctx, grad):
        out = np.zeros(ctx.shape, dtype=grad.dtype)
        # each row is written once; an ignored row writes 0 at column 0
        with np.errstate(invalid="ignore"):  # inf * 0 at an ignored row, selected away
            values = 0 - ctx.picked * _row_scale(grad, ctx)  # 0 - 0 is +0
        out[ctx.rows, ctx.labels] = np.where(ctx.counted, values, 0)
        return (out,)

    @staticmethod
    def backward_graph(ctx, grad):
        # linear in the incoming gradient: -w_yi at each row's label, times that row's scale
        n = ctx.shape[0]
        local = np.zeros(ctx.shape, dtype=grad.dtype)
        local[ctx.rows, ctx.labels] = -ctx.picked
        scale = _row_scale_graph(grad, ctx.reduction, ctx.counted, getattr(ctx, "denominator", n))
        return (Reshape.apply(scale, (n, 1)) * local,)


def _broadcast_weight(name: str, weight, like: np.ndarray):
    if weight is None:
        return None
    weight = np.asarray(weight).astype(like.dtype, copy=False)
    try:
        np.broadcast_to(weight, like.shape)
    except ValueError:
        raise ValueError(
            f"{name}: weight of shape {weight.shape} cannot be broadcast to the input "
            f"{like.shape}"
        ) from None
    return weight


class BCEWithLogits(Function):
    """Binary cross-entropy on logits, fused with the sigmoid (F.binary_cross_entropy_with_logits).

    With log-weight ``lw = 1 + (pos_weight - 1) y`` the loss is
    ``weight * ((1 - y) x + lw * log(1 + e^-x))``, with ``log(1 + e^-x)`` computed as
    ``max(-x, 0) + log1p(e^-|x|)`` so that it never overflows (PyTorch's formula).
    Local derivative: ``weight * ((1 - y) - lw * sigmoid(-x))``, which is ``sigmoid(x) - y``
    without weights; for the target ``weight * ((pos_weight - 1) log(1 + e^-x) - x)``
    (``-x`` without pos_weight), as PyTorch's binary_cross_entropy_with_logits_target_backward.
    Shape: logits and target alike; weight broadcastable to them; pos_weight broadcastable
    (one per class on the last axis) -> () or the input's shape for 'none'.
    """
    torch_name = "BinaryCrossEntropyWithLogits"

    observe_kind = "bce_with_logits"
    owns_grads = True
    tensor_args = (0, 1)  # the target is differentiable too, as in PyTorch

    @staticmethod
    def forward(ctx, logits, target, reduction="mean", weight=None, pos_weight=None):
        name = "binary_cross_entropy_with_logits"
        check_not_empty(name, logits.size, reduction)
        weight = _broadcast_weight(name, weight, logits)
        pos_weight = _broadcast_weight(name, pos_weight, logits)
        softplus_neg = np.maximum(-logits, 0) + np.log1p(np.exp(-np.abs(logits)))
        if pos_weight is None:
            loss = (1 - target) * logits + softplus_neg
            log_weight = None
        else:
            log_weight = 1 + (pos_weight - 1) * target
            loss = (1 - target) * logits + log_weight * softplus_neg
        if weight is not None:
            loss = loss * weight
        ctx.logits, ctx.target, ctx.reduction = logits, target, reduction
        ctx.weight, ctx.log_weight = weight, log_weight
        ctx.pos_weight, ctx.softplus_neg = pos_weight, softplus_neg
        return _reduce(loss.astype(logits.dtype, copy=False), reduction)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.logits, ctx.target
        if ctx.log_weight is None:
            local = stable_sigmoid(x) - y
        else:
            local = (1 - y) - ctx.log_weight * stable_sigmoid(-x)
        if ctx.weight is not None:
            local = local * ctx.weight
        scale = _grad_scale(grad, ctx.reduction, x.size)
        grad_logits = np.asarray(local * scale, dtype=grad.dtype)
        grad_target = None
        if len(ctx.needs_input_grad) > 1 and ctx.needs_input_grad[1]:
            local_target = -x if ctx.pos_weight is None else (
                (ctx.pos_weight - 1) * ctx.softplus_neg - x)
            if ctx.weight is not None:
                local_target = local_target * ctx.weight
            grad_target = np.asarray(local_target * scale, dtype=grad.dtype)
        return (grad_logits, grad_target)

    @staticmethod
    def backward_graph(ctx, grad):
        x, y = ctx.inputs  # y: the target, a Tensor in the graph when it requires grad
        if ctx.log_weight is None:
            local = Sigmoid.apply(x) - y
        else:
            log_weight = 1 + (ctx.pos_weight - 1) * y
            local = (1 - y) - Sigmoid.apply(-x) * log_weight
        if ctx.weight is not None:
            local = local * ctx.weight
        if ctx.reduction == "mean":
            grad = grad / np.asarray(x.size, dtype=grad.dtype)
        grad_target = None
        if ctx.needs_input_grad[1]:
            # d/dy: -x, plus (pos_weight - 1) softplus(-x) = -(pos_weight - 1) log sigmoid(x)
            local_target = -x if ctx.pos_weight is None else (
                -(ctx.pos_weight - 1) * Sigmoid.apply(x).log() - x)
            if ctx.weight is not None:
                local_target = local_target * ctx.weight
            grad_target = local_target * grad
        return (local * grad, grad_target)


class BCE(Function):
    """Binary cross-entropy on probabilities, ``F.binary_cross_entropy``.

    Loss ``-weight (y log p + (1 - y) log(1 - p))``, each log clamped at -100 as PyTorch does.
    Local derivative: ``weight (p - y) / (p (1 - p))``, the denominator floored at 1e-12
    (PyTorch's epsilon); for the target ``weight (log(1 - p) - log p)`` with the clamped logs.
    Shape: probs and target alike, weight broadcastable -> () or the input's shape for 'none'.
    """
    torch_name = "BinaryCrossEntropy"

    observe_kind = "bce"
    owns_grads = True
    tensor_args = (0, 1)  # the target is differentiable too, as in PyTorch

    @staticmethod
    def forward(ctx, probs, target, reduction="mean", weight=None):
        # written so that NaN (whose comparisons are all False) is refused too, as torch does
        if probs.size and not (probs.min() >= 0 and probs.max() <= 1):
            raise ValueError(
                "binary_cross_entropy: input must hold probabilities in [0, 1], not NaN "
                f"(got min {probs.min():.4g}, max {probs.max():.4g}); for logits use "
                "binary_cross_entropy_with_logits"
            )
        check_not_empty("binary_cross_entropy", probs.size, reduction)
        weight = _broadcast_weight("binary_cross_entropy", weight, probs)
        ctx.probs, ctx.target, ctx.reduction, ctx.weight = probs, target, reduction, weight
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(probs), -100)
            log_1mp = np.maximum(np.log1p(-probs), -100)
        ctx.log_ratio = log_1mp - log_p
        loss = -(target * log_p + (1 - target) * log_1mp)
        if weight is not None:
            loss = loss * weight
        return _reduce(loss.astype(probs.dtype, copy=False), reduction)

    @staticmethod
    def backward(ctx, grad):
        p, y = ctx.probs, ctx.target
        scale = _grad_scale(grad, ctx.reduction, p.size)
        grad_p = (p - y) / np.maximum(p * (1 - p), 1e-12) * scale
        if ctx.weight is not None:
            grad_p = grad_p * ctx.weight
        grad_target = None
        if len(ctx.needs_input_grad) > 1 and ctx.needs_input_grad[1]:
            local_target = ctx.log_ratio if ctx.weight is None else ctx.log_ratio * ctx.weight
            grad_target = np.asarray(local_target * scale, dtype=p.dtype)
        return (np.asarray(grad_p, dtype=p.dtype), grad_target)

    @staticmethod
    def backward_graph(ctx, grad):
        # backward's formula in recorded ops: (p - y) / max(p (1 - p), 1e-12) for p, and the
        # clamped log(1 - p) - log p for the target
        p, y = ctx.inputs
        if ctx.reduction == "mean":
            grad = grad / np.asarray(p.size, dtype=grad.dtype)
        floor = np.asarray(1e-12, dtype=p.dtype)
        local = (p - y) / Maximum.apply(p * (1 - p), floor)
        if ctx.weight is not None:
            local = local * ctx.weight
        grad_target = None
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore"):
                local_target = (Clip.apply(Log1p.apply(-p), -100.0, None)
                                - Clip.apply(Log.apply(p), -100.0, None))
            if ctx.weight is not None:
                local_target = local_target * ctx.weight
            grad_target = local_target * grad
        return (local * grad, grad_target)


def _row_scale_graph(grad, reduction: str, counted: np.ndarray, denominator):
    """:func:`_row_scale` as recorded ops (create_graph): the incoming gradient per row, divided
    by the 'mean' denominator, 0 on ignored rows."""
    n = counted.shape[0]
    scale = grad if reduction == "none" else BroadcastTo.apply(grad, (n,))
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = scale / np.asarray(denominator, dtype=grad.dtype)
    return Where.apply(counted, scale, np.zeros((), dtype=grad.dtype))
