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


def _torch_dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


_REFUSALS = (RuntimeError, ValueError, IndexError, TypeError)


def _torch_or_both_refuse(gw_fn, torch_fn, inputs, t_inputs):
    """torch's output, or None when torch and gradwise both refuse the inputs.

    Raises:
        AssertionError: torch refuses and gradwise does not.
    """
    try:
        return torch_fn(*t_inputs)
    except _REFUSALS as error:
        try:
            gw_fn(*inputs)
        except _REFUSALS:
            return None
        raise AssertionError(f"torch raises ({error}) but gradwise does not") from None


def check_edges(
    gw_fn: Callable[..., gw.Tensor],
    torch_fn: Callable[..., Any],
    arrays: Sequence[np.ndarray],
    *,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    grad: bool = True,
    seed: int = 0,
    upstream: Callable[[tuple[int, ...], np.dtype], np.ndarray] | None = None,
) -> None:
    """One call compares an op with torch.autograd on fixed (edge) inputs, as tinygrad's
    ``helper_test_op`` does: shape, dtype and values of the output, then the gradient of every
    floating input (dtype and values) for a fixed random upstream gradient, or for the one
    ``upstream(shape, dtype)`` builds (to send +-inf, NaN or -0 backwards).

    NaN must meet NaN and +-inf the same infinity. Floating arrays require grad (unless
    ``grad`` is False); other arrays are passed as constants. When torch raises, gradwise must
    raise too (a ValueError, TypeError, IndexError or RuntimeError), and the other way round.
    """
    assert torch is not None
    floating = [a.dtype.kind == "f" for a in arrays]
    inputs = [
        gw.tensor(a.copy(), requires_grad=grad and f) for a, f in zip(arrays, floating, strict=True)
    ]
    t_inputs = [
        torch.tensor(a.copy(), requires_grad=grad and f)
        for a, f in zip(arrays, floating, strict=True)
    ]
    t_out = _torch_or_both_refuse(gw_fn, torch_fn, inputs, t_inputs)
    if t_out is None:
        return
    with np.errstate(all="ignore"):
        out = gw_fn(*inputs)
    t_values = t_out.detach().numpy()
    assert tuple(out.shape) == tuple(t_out.shape), f"shape {out.shape} != torch {t_out.shape}"
    assert out.dtype.name == _torch_dtype_name(t_out.dtype), (
        f"dtype {out.dtype} != torch {t_out.dtype}"
    )
    np.testing.assert_allclose(
        np.asarray(out.numpy(), dtype=np.float64), t_values.astype(np.float64),
        atol=atol, rtol=rtol, equal_nan=True, err_msg="values",
    )
    if not grad or not t_out.requires_grad:
        return
    if upstream is None:
        grad_out = np.random.default_rng(seed).uniform(0.5, 1.5, size=t_values.shape)
        grad_out = grad_out.astype(t_values.dtype)
    else:
        grad_out = np.asarray(upstream(t_values.shape, t_values.dtype), t_values.dtype)
    with np.errstate(all="ignore"):
        out.backward(grad_out.copy())
    t_out.backward(torch.tensor(grad_out.copy()))
    for i, (x, tx) in enumerate(zip(inputs, t_inputs, strict=True)):
        if not tx.requires_grad:
            continue
        t_dtype = tx.detach().numpy().dtype
        expected = tx.grad.numpy() if tx.grad is not None else np.zeros(tx.shape, t_dtype)
        got = np.zeros(x.shape, x.dtype) if x.grad is None else np.asarray(x.grad)
        assert got.dtype == expected.dtype, f"gradient {i}: dtype {got.dtype} != {expected.dtype}"
        np.testing.assert_allclose(
            got.astype(np.float64), expected.astype(np.float64), atol=atol, rtol=rtol,
            equal_nan=True, err_msg=f"gradient of input {i}",
        )


def check_second_order_edges(
    gw_fn: Callable[..., gw.Tensor],
    torch_fn: Callable[..., Any],
    arrays: Sequence[np.ndarray],
    *,
    atol: float = 1e-9,
    rtol: float = 1e-7,
    seed: int = 0,
) -> None:
    """``check_edges`` one order up, in float64: the first gradient recorded with
    ``create_graph=True`` and a Hessian-vector product ``d/dx (v . d(w . f)/dx)`` (w, v fixed
    and random) against torch.autograd, NaN meeting NaN and +-inf the same infinity.

    Floating arrays are the inputs; other arrays are constants. An input torch's second pass
    does not reach (the function is linear in it) must get zero or None here too.
    """
    assert torch is not None
    arrays = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
    floating = [a.dtype.kind == "f" for a in arrays]
    inputs = [gw.tensor(a.copy(), requires_grad=f) for a, f in zip(arrays, floating, strict=True)]
    t_inputs = [torch.tensor(a.copy(), requires_grad=f)
                for a, f in zip(arrays, floating, strict=True)]
    xs = [x for x, f in zip(inputs, floating, strict=True) if f]
    t_xs = [x for x, f in zip(t_inputs, floating, strict=True) if f]
    t_out = _torch_or_both_refuse(gw_fn, torch_fn, inputs, t_inputs)
    if t_out is None:
        return
    with np.errstate(all="ignore"):
        out = gw_fn(*inputs)
    if not t_out.requires_grad:
        return
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 1.5, size=tuple(t_out.shape))
    v = [rng.uniform(0.5, 1.5, size=x.shape) for x in xs]
    t_first = torch.autograd.grad(t_out, t_xs, torch.tensor(w), create_graph=True,
                                  allow_unused=True)
    with np.errstate(all="ignore"):
        first = gw.autograd.grad(out, xs, gw.tensor(w), create_graph=True, allow_unused=True)
    for i, (ours, theirs) in enumerate(zip(first, t_first, strict=True)):
        _assert_same_or_both_zero(ours, theirs, xs[i].shape, atol, rtol, f"first gradient {i}")
    t_terms = [(g * torch.tensor(vi)).sum() for g, vi in zip(t_first, v, strict=True)
               if g is not None and g.requires_grad]
    terms = [(g * gw.tensor(vi)).sum() for g, vi in zip(first, v, strict=True)
             if g is not None and g.requires_grad]
    t_second = (torch.autograd.grad(sum(t_terms), t_xs, allow_unused=True) if t_terms
                else [None] * len(xs))
    with np.errstate(all="ignore"):
        second = (gw.autograd.grad(sum(terms[1:], terms[0]), xs, allow_unused=True) if terms
                  else [None] * len(xs))
    for i, (ours, theirs) in enumerate(zip(second, t_second, strict=True)):
        _assert_same_or_both_zero(ours, theirs, xs[i].shape, atol, rtol, f"second derivative {i}")


def _assert_same_or_both_zero(ours: Any, theirs: Any, shape: tuple, atol: float, rtol: float,
                              what: str) -> None:
    # torch may answer with a ZeroTensor, which needs force=True to become an array
    expected = np.zeros(shape) if theirs is None else theirs.detach().numpy(force=True)
    got = np.zeros(shape) if ours is None else np.asarray(ours)
    np.testing.assert_allclose(got, expected, atol=atol, rtol=rtol, equal_nan=True, err_msg=what)
