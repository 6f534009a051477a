"""The backward of a piecewise op: the incoming gradient where the op is active, else 0.

Shared by the elementwise ops (clamp, hardtanh, maximum, relu...) and the pooling ops; the
differentiable form for ``create_graph=True`` is ``select_grad_graph`` in ``elementwise.py``.
"""

from __future__ import annotations

import numpy as np


def select_grad(mask: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """``grad`` where ``mask`` holds, else 0: the backward of every piecewise op.

    torch writes its masked backward formulas as selections (``threshold_backward``,
    ``clamp_backward``, ``hardtanh_backward``, ``max_pool2d_backward``...), so an inf or NaN
    gradient arriving where an op is flat (clipped, inactive, the losing side of a max) stays 0
    there; the product ``grad * mask`` would turn it into inf * 0 = NaN. Shapes broadcast.

    Done on the bits, as fast as the product: ``grad & -mask`` on the float's integer view keeps
    every bit where the mask holds and gives +0 elsewhere. ``np.where`` gives the same values
    but branches per element (about 10x slower than the product on a random mask of 1M float32).
    """
    grad = np.asarray(grad)
    if grad.dtype.kind != "f":
        return np.where(mask, grad, np.zeros((), grad.dtype))
    keep = _keep_bits(mask, grad.dtype)
    if keep.shape == grad.shape:  # the usual case: reuse the mask's buffer for the result
        return np.bitwise_and(grad.view(keep.dtype), keep, out=keep).view(grad.dtype)
    return np.bitwise_and(grad.view(keep.dtype), keep).view(grad.dtype)


def _keep_bits(mask: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The mask as integers of ``dtype``'s width: all ones where it holds, 0 elsewhere (a cast
    and an in-place negation: faster than ``np.negative(mask, dtype=...)``, whose cast inside
    the ufunc runs buffered)."""
    bits = np.dtype(f"i{np.dtype(dtype).itemsize}")
    keep = np.asarray(mask, dtype=bool).view(np.uint8).astype(bits)
    return np.negative(keep, out=keep)


def select_grad_into(out: np.ndarray, mask: np.ndarray, grad: np.ndarray) -> None:
    """:func:`select_grad` written into ``out`` (a float array, any strides; shapes broadcast)."""
    keep = _keep_bits(mask, grad.dtype)
    np.bitwise_and(grad.view(keep.dtype), keep, out=out.view(keep.dtype))
