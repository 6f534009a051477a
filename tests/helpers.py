"""One helper per family of checks, shared by the test folders."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import gradwise as gw

try:
    import torch
except ImportError:  # the PyTorch oracle is optional: its comparisons are skipped without it
    torch = None


def make_inputs(shapes: Sequence[Any], seed: int = 0, positive: bool = False) -> list[np.ndarray]:
    """Float64 arrays for the given shapes; a shape may also be a ready array (kept as given)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for shape in shapes:
        if isinstance(shape, np.ndarray):
            arrays.append(shape)
        elif positive:
            arrays.append(rng.uniform(0.5, 2.0, size=shape))
        else:
            arrays.append(rng.standard_normal(shape))
    return arrays


def check_op(
    gw_fn: Callable[..., gw.Tensor],
    torch_fn: Callable[..., Any] | None,
    shapes: Sequence[Any],
    *,
    seed: int = 0,
    positive: bool = False,
    grad: bool = True,
    atol: float = 1e-6,
    rtol: float = 1e-6,
) -> None:
    """Check one op: gradcheck in float64, then values and gradients against torch.autograd.

    Inputs are float64 arrays drawn from ``shapes``; floating inputs require grad, integer or
    boolean arrays are passed through as constants.
    """
    arrays = make_inputs(shapes, seed, positive)
    differentiable = [a.dtype.kind == "f" for a in arrays]

    def gw_inputs() -> list[gw.Tensor]:
        return [
            gw.tensor(a.copy(), requires_grad=grad and d)
            for a, d in zip(arrays, differentiable, strict=True)
        ]

    if grad:
        assert gw.gradcheck(gw_fn, *gw_inputs())
    if torch is None or torch_fn is None:
        return
    inputs = gw_inputs()
    out = gw_fn(*inputs)
    t_inputs = [
        torch.tensor(a, requires_grad=grad and d)
        for a, d in zip(arrays, differentiable, strict=True)
    ]
    t_out = torch_fn(*t_inputs)
    assert tuple(out.shape) == tuple(t_out.shape), (out.shape, t_out.shape)
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), atol=atol, rtol=rtol)
    if not grad:
        return
    upstream = np.random.default_rng(seed + 1).standard_normal(out.shape)
    out.backward(upstream)
    t_out.backward(torch.tensor(upstream))
    for i, (x, tx) in enumerate(zip(inputs, t_inputs, strict=True)):
        if tx.requires_grad:
            expected = tx.grad.numpy() if tx.grad is not None else np.zeros(x.shape)
            np.testing.assert_allclose(
                x.grad, expected, atol=atol, rtol=rtol, err_msg=f"gradient of input {i}"
            )
