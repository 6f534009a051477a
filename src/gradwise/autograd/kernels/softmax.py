"""Softmax and log-softmax along the last axis, forward and backward, one row at a time, on an
(M, D) view of a C-contiguous array (other axes and layouts take the NumPy references).

The references are the formulas of ``ops/reduce.py`` (Softmax, LogSoftmax). The kernels use
libm's exp/log and add each row over SIMD lanes (fastmath ``reassoc`` only, so NaN and inf keep
their meaning), so they agree with NumPy within float rounding, not bitwise. Every scalar stays in
the input's dtype (``zero`` is passed in: a float literal would make numba compute in float64).
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd.kernels._jit import kernel, kernel_ready


def softmax_forward_reference(x2: np.ndarray) -> np.ndarray:
    """``exp(x - max) / sum(exp(x - max))`` per row. Shape: (M, D) -> (M, D)."""
    e = np.exp(x2 - x2.max(axis=1, keepdims=True, initial=-np.inf))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax_forward_reference(x2: np.ndarray) -> np.ndarray:
    """``(x - max) - log(sum(exp(x - max)))`` per row. Shape: (M, D) -> (M, D)."""
    shifted = x2 - x2.max(axis=1, keepdims=True, initial=-np.inf)
    with np.errstate(divide="ignore"):
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_backward_reference(grad2: np.ndarray, out2: np.ndarray) -> np.ndarray:
    """``s (g - sum(g s))`` per row, s the softmax output. Shape: (M, D), (M, D) -> (M, D)."""
    return out2 * (grad2 - (grad2 * out2).sum(axis=1, keepdims=True))


def log_softmax_backward_reference(grad2: np.ndarray, out2: np.ndarray) -> np.ndarray:
    """``g - exp(out) sum(g)`` per row, out the log-softmax output. Shape: as above."""
    return grad2 - np.exp(out2) * grad2.sum(axis=1, keepdims=True)


@kernel()
def _row_max(x2, i):  # pragma: no cover - numba
    top = x2[i, 0]
    for j in range(1, x2.shape[1]):
        value = x2[i, j]
        if value > top or value != value:  # NaN wins, as in ndarray.max
            top = value
    return top


@kernel(fastmath={"reassoc"})
def _softmax_kernel(x2, zero, log, out):  # pragma: no cover - numba
    rows, size = x2.shape
    if size == 0:
        return
    for i in range(rows):
        top = _row_max(x2, i)
        total = zero
        for j in range(size):
            e = np.exp(x2[i, j] - top)
            out[i, j] = e
            total += e
        if log:
            log_total = np.log(total)
            for j in range(size):
                out[i, j] = (x2[i, j] - top) - log_total
        else:
            for j in range(size):
                out[i, j] = out[i, j] / total


@kernel(fastmath={"reassoc"})
def _softmax_backward_kernel(grad2, out2, zero, log, result):  # pragma: no cover - numba
    rows, size = grad2.shape
    for i in range(rows):
        total = zero
        if log:
            for j in range(size):
                total += grad2[i, j]
            for j in range(size):
                result[i, j] = grad2[i, j] - np.exp(out2[i, j]) * total
        else:
            for j in range(size):
                total += grad2[i, j] * out2[i, j]
            for j in range(size):
                result[i, j] = out2[i, j] * (grad2[i, j] - total)


def _fits(*arrays: np.ndarray) -> bool:
    return kernel_ready(*arrays, ndim=2)


def softmax_forward(x2: np.ndarray, log: bool = False) -> np.ndarray:
    """Softmax (or log-softmax when ``log``) of each row of ``x2``, fused when possible."""
    if _fits(x2):
        out = np.empty_like(x2)
        _softmax_kernel(x2, x2.dtype.type(0), log, out)
        return out
    return log_softmax_forward_reference(x2) if log else softmax_forward_reference(x2)


def softmax_backward(grad2: np.ndarray, out2: np.ndarray, log: bool = False) -> np.ndarray:
    """The vector-Jacobian product of (log-)softmax per row, fused when possible."""
    if _fits(grad2, out2):
        result = np.empty_like(grad2)
        _softmax_backward_kernel(grad2, out2, grad2.dtype.type(0), log, result)
        return result
    if log:
        return log_softmax_backward_reference(grad2, out2)
    return softmax_backward_reference(grad2, out2)
