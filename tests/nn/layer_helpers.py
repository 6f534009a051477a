"""The one check every layer goes through: same weights, same outputs and gradients as PyTorch."""

from __future__ import annotations

from typing import Any

import numpy as np

import gradwise as gw
from helpers import torch

RTOL = 1e-5
ATOL = 1e-5


def copy_state_both_ways(gw_layer: gw.nn.Module, torch_layer: Any) -> None:
    """gradwise -> torch (strict, so keys and shapes must match exactly), then torch -> gradwise."""
    torch_layer.load_state_dict({k: torch.from_numpy(np.asarray(v))
                                for k, v in gw_layer.state_dict().items()})
    gw_layer.load_state_dict(torch_layer.state_dict())


def assert_layer_matches_torch(
    gw_layer: gw.nn.Module,
    torch_layer: Any,
    input_shape: tuple[int, ...] | None = None,
    *,
    inputs: np.ndarray | None = None,
    modes: tuple[str, ...] = ("train", "eval"),
    steps: int = 1,
    seed: int = 0,
    rtol: float = RTOL,
    atol: float = ATOL,
    input_grad: bool = True,
) -> None:
    """Forward and backward ``steps`` batches through both layers in each mode and compare.

    Compares the output, dL/d(input) and dL/d(every parameter) for a random upstream gradient,
    and the full state dict (parameters and buffers such as running stats) after each step.
    Integer ``inputs`` (embedding indices) get no input gradient.
    """
    rng = np.random.default_rng(seed)
    copy_state_both_ways(gw_layer, torch_layer)
    for mode in modes:
        gw_layer.train(mode == "train")
        torch_layer.train(mode == "train")
        for _ in range(steps):
            array = inputs if inputs is not None else rng.standard_normal(input_shape)
            array = array.astype(np.float32) if array.dtype.kind == "f" else array
            differentiable = input_grad and array.dtype.kind == "f"
            x = gw.tensor(array.copy(), requires_grad=differentiable)
            tx = torch.from_numpy(array.copy()).requires_grad_(differentiable)
            out, tout = gw_layer(x), torch_layer(tx)
            _close(f"{mode} output", out.data, tout, rtol, atol)
            upstream = rng.standard_normal(out.shape).astype(np.float32)
            gw_layer.zero_grad()
            torch_layer.zero_grad()
            if out.requires_grad:
                out.backward(upstream)
                tout.backward(torch.from_numpy(upstream))
            if differentiable:
                _close(f"{mode} input grad", x.grad, tx.grad, rtol, atol)
            torch_params = dict(torch_layer.named_parameters())
            for name, param in gw_layer.named_parameters():
                _close(f"{mode} grad of {name}", param.grad, torch_params[name].grad, rtol, atol)
            torch_state = torch_layer.state_dict()
            for name, value in gw_layer.state_dict().items():
                _close(f"{mode} state {name}", value, torch_state[name], rtol, atol)


def _close(what: str, ours: Any, theirs: Any, rtol: float, atol: float) -> None:
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours is not None, f"{what}: gradwise has no value"
    assert np.shape(ours) == theirs.shape, f"{what}: shape {np.shape(ours)} != {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)

