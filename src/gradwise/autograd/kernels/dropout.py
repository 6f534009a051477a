"""Dropout masks: ``scale`` where a uniform draw is >= p, else 0, in one pass over the draws
(the reference makes a boolean array, casts it and multiplies: three passes). Bitwise equal:
the kernel compares in float32 like NumPy (p arrives rounded to float32, NEP 50) and writes
exactly ``scale`` or 0.
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd.kernels._jit import KERNEL_DTYPES, kernel, kernel_ready


def dropout_mask_reference(uniform: np.ndarray, p: float, dtype: np.dtype) -> np.ndarray:
    """``(uniform >= p) * (1 / (1 - p))`` in ``dtype``: the inverted-dropout mask.

    Shape: uniform (any, float32 draws in [0, 1)) -> same shape, ``dtype``.
    """
    keep = uniform >= p
    return keep.astype(dtype) * np.asarray(1.0 / (1.0 - p), dtype=dtype)


@kernel()
def _dropout_mask_kernel(uniform, p, scale, zero, mask):  # pragma: no cover - numba
    flat_uniform, flat_mask = uniform.reshape(-1), mask.reshape(-1)
    for i in range(flat_uniform.size):
        flat_mask[i] = scale if flat_uniform[i] >= p else zero


def dropout_mask(uniform: np.ndarray, p: float, dtype: np.dtype) -> np.ndarray:
    """The mask of :func:`dropout_mask_reference`, fused when the kernels are on."""
    dtype = np.dtype(dtype)
    if (kernel_ready(uniform) and uniform.dtype == np.float32
            and dtype in KERNEL_DTYPES and dtype.isnative):
        mask = np.empty(uniform.shape, dtype=dtype)
        _dropout_mask_kernel(uniform, np.float32(p), dtype.type(1.0 / (1.0 - p)), dtype.type(0),
                             mask)
        return mask
    return dropout_mask_reference(uniform, p, dtype)
