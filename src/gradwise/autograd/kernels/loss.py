"""Softmax cross-entropy of (N, C) logits against integer labels, forward and backward, each in
one pass over the logits (the plain case: no class weights, no label smoothing, no ignored rows;
``ops/loss.py`` keeps the general case in NumPy).

The NumPy references are the definitions. The kernels compute the same formulas in the same
dtype; the forward's ``exp`` is NumPy's (between two kernel passes), but its ``log`` comes from
LLVM's libm and the row sum adds left to right instead of pairwise, so forward values agree
within float32 rounding (a few ulp), not bitwise; the backward, given the same probabilities,
is bitwise.
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
def _shift_rows_kernel(logits, shifted, tops):  # pragma: no cover - numba
    # tops[i] = max of row i (NaN wins, as in ndarray.max); shifted = logits - tops[:, None]
    rows, classes = logits.shape
    if classes == 0:
        return
    for i in range(rows):
        top = logits[i, 0]
        for c in range(1, classes):
            value = logits[i, c]
            if value > top or value != value:
                top = value
        tops[i] = top
        for c in range(classes):
            shifted[i, c] = logits[i, c] - top


@kernel()
def _normalise_rows_kernel(logits, labels, probs, tops, losses, zero):  # pragma: no cover - numba
    # probs holds exp(logits - top) on entry and the softmax on return; every scalar stays in
    # the logits' dtype (zero is passed in it: a float literal would make numba compute in
    # float64)
    rows, classes = probs.shape
    if classes == 0:
        return
    for i in range(rows):
        total = zero
        for c in range(classes):
            total += probs[i, c]
        losses[i] = -((logits[i, labels[i]] - tops[i]) - np.log(total))
        for c in range(classes):
            probs[i, c] = probs[i, c] / total


def cross_entropy_forward(
    logits: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The fused forward (see :func:`cross_entropy_forward_reference`); labels already checked.

    Two kernel passes around NumPy's ``exp``: numba calls libm's scalar ``expf`` per element
    (1,280 calls for a (128, 10) batch, ~2.3 us), NumPy's SIMD exp takes ~0.6 us, and the
    whole forward went from 6.0 to 3.6 us (1 thread, CPU time; issue 14, branch kernels-mlp2).
    The exponentials are then bitwise the reference's; the row sums add left to right.
    """
    if kernel_ready(logits, ndim=2) and index_ready(labels):
        rows = logits.shape[0]
        probs = np.empty_like(logits)
        tops = np.empty(rows, dtype=logits.dtype)
        losses = np.empty(rows, dtype=logits.dtype)
        _shift_rows_kernel(logits, probs, tops)
        np.exp(probs, out=probs)
        _normalise_rows_kernel(logits, labels, probs, tops, losses, logits.dtype.type(0))
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
