"""Fused, numerically stable losses: each is one node whose backward is the closed form.

Composing these from log, exp and indexing works too, but is slower and, for logits of +-1000,
overflows; the fused forms below never exponentiate a positive number.
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd.function import Function
from gradwise.autograd.ops.elementwise import stable_sigmoid

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(name: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(loss: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "mean":
        return np.asarray(loss.mean(), dtype=loss.dtype)
    if reduction == "sum":
        return np.asarray(loss.sum(), dtype=loss.dtype)
    return loss


def _grad_scale(grad: np.ndarray, reduction: str, count: int) -> np.ndarray:
    """The incoming gradient per element: scalar for mean/sum, per element for 'none'."""
    if reduction == "mean":
        return grad / np.asarray(count, grad.dtype)
    return grad


def check_class_targets(name: str, logits: np.ndarray, target: np.ndarray) -> None:
    """Targets must be integer class indices in [0, C) with one per row of (N, C) logits."""
    if logits.ndim != 2:
        raise ValueError(f"{name}: input must be (N, C), got shape {logits.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: target must hold integer class indices, got dtype {target.dtype}"
        )
    if target.shape != (logits.shape[0],):
        raise ValueError(
            f"{name}: target of shape {target.shape} does not match input {logits.shape} "
            f"(expected ({logits.shape[0]},))"
        )
    if target.size:
        low, high = int(target.min()), int(target.max())
        if low < 0 or high >= logits.shape[1]:
            bad = low if low < 0 else high
            raise ValueError(
                f"{name}: target label {bad} is out of range for {logits.shape[1]} classes"
            )


class CrossEntropy(Function):
    """Softmax cross-entropy over (N, C) logits and integer labels, with label smoothing."""
    observe_kind = "cross_entropy"
    owns_grads = True

    saves_inputs = False

    @staticmethod
    def forward(ctx, logits, target, reduction="mean", label_smoothing=0.0):
        check_class_targets("cross_entropy", logits, target)
        n, classes = logits.shape
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        log_probs = shifted - np.log(total)  # (N, C)
        rows = np.arange(n)
        loss = -log_probs[rows, target]
        if label_smoothing:
            loss = (1 - label_smoothing) * loss - label_smoothing * log_probs.mean(axis=1)
        exp /= total  # softmax, kept for backward
        ctx.probs, ctx.target, ctx.rows = exp, target, rows
        ctx.reduction, ctx.smoothing = reduction, label_smoothing
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        # dL/dlogits = softmax - target distribution (one-hot, or smoothed), per row
        probs, n = ctx.probs, ctx.probs.shape[0]
        out = probs.copy()
        if ctx.smoothing:
            out -= ctx.smoothing / probs.shape[1]
            out[ctx.rows, ctx.target] -= 1 - ctx.smoothing
        else:
            out[ctx.rows, ctx.target] -= 1
        scale = _grad_scale(grad, ctx.reduction, n)
        out *= scale[:, None] if ctx.reduction == "none" else scale
        return (out,)


class NLLLoss(Function):
    """Negative log-likelihood of integer labels under (N, C) log-probabilities."""
    observe_kind = "nll_loss"
    owns_grads = True

    saves_inputs = False

    @staticmethod
    def forward(ctx, log_probs, target, reduction="mean"):
        check_class_targets("nll_loss", log_probs, target)
        rows = np.arange(log_probs.shape[0])
        ctx.shape, ctx.dtype, ctx.rows, ctx.target = log_probs.shape, log_probs.dtype, rows, target
        ctx.reduction = reduction
        return _reduce(-log_probs[rows, target], reduction)

    @staticmethod
    def backward(ctx, grad):
        # d(-logp[y])/dlogp = -1 at the label, 0 elsewhere
        out = np.zeros(ctx.shape, dtype=grad.dtype)
        scale = _grad_scale(grad, ctx.reduction, ctx.shape[0])
        out[ctx.rows, ctx.target] = -scale
        return (out,)


class BCEWithLogits(Function):
    """Binary cross-entropy on logits: max(x, 0) - x y + log(1 + e^-|x|), stable for any x."""
    observe_kind = "bce_with_logits"
    owns_grads = True

    @staticmethod
    def forward(ctx, logits, target, reduction="mean"):
        ctx.logits, ctx.target, ctx.reduction = logits, target, reduction
        loss = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        # dL/dx = sigmoid(x) - y
        scale = _grad_scale(grad, ctx.reduction, ctx.logits.size)
        return ((stable_sigmoid(ctx.logits) - ctx.target) * scale,)


class BCE(Function):
    """Binary cross-entropy on probabilities; each log is clamped at -100 as PyTorch does."""
    observe_kind = "bce"
    owns_grads = True

    @staticmethod
    def forward(ctx, probs, target, reduction="mean"):
        if probs.size and (probs.min() < 0 or probs.max() > 1):
            raise ValueError(
                "binary_cross_entropy: input must hold probabilities in [0, 1] "
                f"(got min {probs.min():.4g}, max {probs.max():.4g}); for logits use "
                "binary_cross_entropy_with_logits"
            )
        ctx.probs, ctx.target, ctx.reduction = probs, target, reduction
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(probs), -100)
            log_1mp = np.maximum(np.log1p(-probs), -100)
        return _reduce(-(target * log_p + (1 - target) * log_1mp), reduction)

    @staticmethod
    def backward(ctx, grad):
        # dL/dp = (p - y) / (p (1 - p)), the denominator floored at 1e-12 (PyTorch's epsilon)
        p, y = ctx.probs, ctx.target
        scale = _grad_scale(grad, ctx.reduction, p.size)
        grad_p = (p - y) / np.maximum(p * (1 - p), 1e-12) * scale
        return (grad_p.astype(p.dtype, copy=False),)
