"""Softmax cross-entropy of (N, C) logits against integer labels, forward and backward, each in
one pass over the logits (the plain case: no class weights, no label smoothing, no ignored rows;
``ops/loss.py`` keeps the general case in NumPy).

The NumPy references are the definitions. The kernels compute the same formulas in the same
dtype, but ``exp``/``log`` come from LLVM's libm instead of NumPy's SIMD routines and the row sum
adds left to right instead of pairwise, so forward values agree within float32 rounding (a few
ulp), not bitwise; the backward, given the same probabilities, is bitwise.
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd.kernels._jit import index_ready, kernel, kernel_ready


def cross_entropy_forward_reference(
    logits: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(probs, losses)``: the softmax of each row and ``-log_softmax(logits)[i, labels[i]]``,
    computed stably (the row maximum subtracted first; a NaN or +inf logit makes its row NaN).

    Shape: logits (N, C), labels (N,) ints in [0, C) -> probs (N, C), losses (N,).
    """
    shifted = logits - logits.max(axis=1, keepdims=True, initial=-np.inf)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    log_probs = shifted - np.log(total)  # (N, C)
    exp /= total
    return exp, -log_probs[np.arange(logits.shape[0]), labels]


@kernel()
def _cross_entropy_forward_kernel(logits, labels, probs, losses,
                                  zero):  # pragma: no cover - numba
    # every scalar stays in the logits' dtype (zero is passed in it: a float literal would
    # make numba compute in float64)
    rows, classes = logits.shape
    if classes == 0:
        return
    for i in range(rows):
        top = logits[i, 0]
        for c in range(1, classes):
            value = logits[i, c]
            if value > top or value != value:  # NaN wins, as in ndarray.max
                top = value
            if top != top:
                break
        total = zero
        for c in range(classes):
            e = np.exp(logits[i, c] - top)
            probs[i, c] = e
            total += e
        losses[i] = -((logits[i, labels[i]] - top) - np.log(total))
        for c in range(classes):
            probs[i, c] = probs[i, c] / total


def cross_entropy_forward(
    logits: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The fused forward (see :func:`cross_entropy_forward_reference`); labels already checked."""
    if kernel_ready(logits, ndim=2) and index_ready(labels):
        probs = np.empty_like(logits)
        losses = np.empty(logits.shape[0], dtype=logits.dtype)
        _cross_entropy_forward_kernel(logits, labels, probs, losses, logits.dtype.type(0))
        return probs, losses
    return cross_entropy_forward_reference(logits, labels)


def cross_entropy_backward_reference(
    probs: np.ndarray, labels: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """``(probs - onehot(labels)) * scale``: the gradient of the plain cross-entropy.

    Shape: probs (N, C), labels (N,), scale () (mean/sum) or (N,) (reduction 'none') -> (N, C).
    """
    out = probs.copy()
    out[np.arange(probs.shape[0]), labels] -= 1
    out *= scale[:, None] if scale.ndim == 1 else scale
    return out


@kernel()
def _cross_entropy_backward_kernel(probs, labels, scale, out, one):  # pragma: no cover - numba
    # one is 1 in the probabilities' dtype: an int literal would make numba subtract in float64
    rows, classes = probs.shape
    per_row = scale.size == rows and scale.ndim == 1
    for i in range(rows):
        factor = scale[i] if per_row else scale[0]
        label = labels[i]
        for c in range(classes):
            value = probs[i, c]
            if c == label:
                value = value - one
            out[i, c] = value * factor


def cross_entropy_backward(probs: np.ndarray, labels: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The fused backward (see :func:`cross_entropy_backward_reference`), bitwise the same."""
    scale = np.asarray(scale)
    if (kernel_ready(probs, ndim=2) and scale.ndim <= 1 and scale.dtype == probs.dtype
            and index_ready(labels)):
        out = np.empty_like(probs)
        _cross_entropy_backward_kernel(probs, labels, scale.reshape(-1), out,
                                       probs.dtype.type(1))
        return out
    return cross_entropy_backward_reference(probs, labels, scale)
