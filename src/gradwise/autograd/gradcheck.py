"""Check analytic gradients against central finite differences, in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradwise.autograd.functional import cat
from gradwise.autograd.higher_order import grad
from gradwise.autograd.tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numerical gradients disagree."""


def _scalar_projection(output: Tensor, weights: np.ndarray) -> float:
    return float(np.sum(output._data * weights))


def _unpack_inputs(inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """torch's ``gradcheck(fn, (x, y))`` passes the inputs as one tuple: unpack it (the
    one-by-one form ``gradcheck(fn, x, y)`` stays as it is)."""
    if len(inputs) == 1 and isinstance(inputs[0], tuple | list):
        return tuple(inputs[0])
    return inputs


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
        inputs: float64 Tensors, given one by one or (torch's form) as one tuple/list; those
            with ``requires_grad`` are checked, others held fixed. An input may be a non-leaf
            (``a * 1``, ``a.double()`` of a float32 leaf), as in torch.
    Returns:
        True when every element agrees within ``atol + rtol * |numerical|``. The analytic
        gradient comes from :func:`gradwise.autograd.grad`, so every input's ``.grad`` and the
        caller's graph are left as they were (torch's gradcheck does the same).
    Raises:
        GradcheckError naming the input, the element index and both values.
    """
    inputs = _unpack_inputs(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64"
            )
    output = fn(*inputs)
    if not isinstance(output, Tensor):
        raise TypeError(f"gradcheck: fn returned {type(output).__name__}, expected a Tensor")
    weights = np.random.default_rng(seed).uniform(0.5, 1.5, size=output.shape)
    # the analytic Jacobian as a value (autograd.grad), as torch does: the inputs' .grad is left
    # alone, a non-leaf input (``a * 1``, ``a.double()``) is differentiated like a leaf, and
    # retain_graph keeps the caller's graph behind a non-leaf input usable
    if output.requires_grad:
        analytics = grad(output, [inputs[i] for i in checked], weights.astype(output.dtype),
                         retain_graph=True, allow_unused=True)
    else:
        analytics = tuple(None for _ in checked)

    for i, found in zip(checked, analytics, strict=True):
        x = inputs[i]
        analytic = np.zeros_like(x._data) if found is None else found._data
        numeric = np.zeros_like(x._data)
        # index x itself: reshape(-1) of a non-C-contiguous array (a transpose) is a copy,
        # and perturbing a copy would leave every numerical derivative 0
        for index in np.ndindex(*x._data.shape):
            original = x._data[index]
            x._data[index] = original + eps
            plus = _scalar_projection(fn(*inputs), weights)
            x._data[index] = original - eps
            minus = _scalar_projection(fn(*inputs), weights)
            x._data[index] = original
            numeric[index] = (plus - minus) / (2 * eps)
        bad = np.abs(analytic - numeric) > atol + rtol * np.abs(numeric)
        if bad.any():
            index = tuple(int(k) for k in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradcheck: input {i} (shape {x.shape}) disagrees at index {index}: "
                f"analytic {analytic[index]:.8g}, numerical {numeric[index]:.8g} "
                f"({int(bad.sum())} of {bad.size} elements differ)"
            )
    return True


def gradgradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check second derivatives: the first gradient's own gradient against finite differences.

    The first gradient ``g(x) = d(sum(fn(x) * w))/dx`` (w fixed and random, as PyTorch's
    ``gradgradcheck`` takes random grad_outputs) is computed with ``create_graph=True``, and
    :func:`gradcheck` then compares backward through that recorded gradient with central
    differences of g itself, in float64. Before that, the recorded g is compared with the
    plain (NumPy) backward's gradient, which :func:`gradcheck` covers, so a differentiable
    backward that is self-consistent but wrong is caught too.

    Args:
        fn: maps the inputs to a Tensor; every op on the way needs a differentiable backward.
        inputs: float64 Tensors, given one by one or (torch's form) as one tuple/list; those
            with ``requires_grad`` are checked, others held fixed; non-leaf inputs work, and
            no ``.grad`` is touched (as :func:`gradcheck`).
    Returns:
        True when every element of the second derivative agrees within
        ``atol + rtol * |numerical|``.
    Raises:
        GradcheckError naming the element; RuntimeError naming an op without a differentiable
        backward.
    """
    inputs = _unpack_inputs(inputs)
    checked = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input requires grad")
    probe = fn(*inputs)
    weights = np.random.default_rng(seed + 1).uniform(0.5, 1.5, size=probe.shape)

    def first_gradient(*xs: Any) -> Tensor:
        out = fn(*xs)
        wanted = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        grads = grad(out, wanted, weights.astype(out.dtype), create_graph=True,
                     allow_unused=True)
        flat = [
            (Tensor._make(np.zeros(x._data.size, x._data.dtype), False, None) if g is None
             else g.reshape(-1))
            for g, x in zip(grads, wanted, strict=True)
        ]
        result = flat[0] if len(flat) == 1 else cat(flat)
        if not result.requires_grad:
            # fn is linear in its inputs: the gradient is constant and its derivative exactly 0;
            # a zero-weighted term keeps it connected so gradcheck's backward can run
            result = result + (wanted[0].reshape(-1)[:1] * 0).sum()
        return result

    # the recorded first gradient must equal the plain one (the NumPy backward, which gradcheck
    # checks), or a wrong backward_graph that is merely self-consistent would pass
    recorded = first_gradient(*inputs)._data
    out = fn(*inputs)
    plain_grads = grad(out, checked, weights.astype(out.dtype), retain_graph=True,
                       allow_unused=True)
    plain = np.concatenate([
        np.zeros(x._data.size, x._data.dtype) if g is None else g._data.reshape(-1)
        for g, x in zip(plain_grads, checked, strict=True)
    ])
    bad = np.abs(recorded - plain) > atol + rtol * np.abs(plain)
    if bad.any():
        index = int(np.argmax(bad))
        raise GradcheckError(
            f"gradgradcheck: the first gradient recorded with create_graph=True disagrees with "
            f"backward's at flat index {index}: {recorded[index]:.8g} vs {plain[index]:.8g} "
            f"({int(bad.sum())} of {bad.size} elements differ)"
        )
    return gradcheck(first_gradient, *inputs, eps=eps, atol=atol, rtol=rtol, seed=seed)
