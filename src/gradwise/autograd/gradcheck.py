"""Check analytic gradients against central finite differences, in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradwise.autograd.tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numerical gradients disagree."""


def _scalar_projection(output: Tensor, weights: np.ndarray) -> float:
    return float(np.sum(output._data * weights))


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Compare backward's gradient of ``fn(*inputs)`` with central differences.

    For a non-scalar output the check runs on ``sum(fn(*inputs) * v)`` for a fixed random ``v``,
    which tests the whole vector-Jacobian product that backward computes.

    Args:
        fn: maps the inputs to a Tensor.
        inputs: float64 Tensors; those with ``requires_grad`` are checked, others held fixed.
    Returns:
        True when every element agrees within ``atol + rtol * |numerical|``.
    Raises:
        GradcheckError naming the input, the element index and both values.
    """
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64"
            )
    for i in checked:
        inputs[i]._grad = None
    output = fn(*inputs)
    if not isinstance(output, Tensor):
        raise TypeError(f"gradcheck: fn returned {type(output).__name__}, expected a Tensor")
    weights = np.random.default_rng(seed).uniform(0.5, 1.5, size=output.shape)
    output.backward(weights.astype(output.dtype))

    for i in checked:
        x = inputs[i]
        analytic = x._grad if x._grad is not None else np.zeros_like(x._data)
        numeric = np.zeros_like(x._data)
        flat = x._data.reshape(-1)  # a view: perturbing it perturbs x
        numeric_flat = numeric.reshape(-1)
        for j in range(flat.size):
            original = flat[j]
            flat[j] = original + eps
            plus = _scalar_projection(fn(*inputs), weights)
            flat[j] = original - eps
            minus = _scalar_projection(fn(*inputs), weights)
            flat[j] = original
            numeric_flat[j] = (plus - minus) / (2 * eps)
        bad = np.abs(analytic - numeric) > atol + rtol * np.abs(numeric)
        if bad.any():
            index = tuple(int(k) for k in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradcheck: input {i} (shape {x.shape}) disagrees at index {index}: "
                f"analytic {analytic[index]:.8g}, numerical {numeric[index]:.8g} "
                f"({int(bad.sum())} of {bad.size} elements differ)"
            )
    return True
