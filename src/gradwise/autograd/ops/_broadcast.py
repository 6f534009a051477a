"""The one place where broadcasting is undone in the backward pass."""

from __future__ import annotations

import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` back down to ``shape``, the shape of the input before broadcasting.

    Broadcasting copies an input along new leading axes and along axes of size 1; each copy
    received part of the gradient, so the input's gradient is the sum over those axes.

    Shape:
        grad: the broadcast result's shape; returns ``shape``.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def unbroadcast_graph(grad, shape: tuple[int, ...]):
    """:func:`unbroadcast` for a gradient that is a Tensor (``create_graph=True``): the same
    sums, recorded as ops so the result can be differentiated again.

    Shape:
        grad: the broadcast result's shape; returns ``shape``.
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1
    )
    if axes:
        grad = grad.sum(dim=axes, keepdim=True)
    return grad.reshape(shape)
