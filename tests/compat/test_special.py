"""``gw.special`` against ``torch.special``: values, dtypes and gradients over a grid of inputs
that covers each function's edges (0, the poles, far tails, NaN), and float64 gradchecks
(issue 11)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradwise as gw

NAN, INF = math.nan, math.inf
GRID = [-30.0, -5.0, -1.5, -0.5, 0.0, 0.25, 1.0, 3.0, 12.0, NAN, INF, -INF]
UNIT = [0.0, 1e-6, 0.1, 0.5, 0.9, 1.0, -0.5, 2.0, NAN]  # probabilities and erfinv's domain
POSITIVE = [0.0, 1e-3, 0.5, 1.0, 2.5, 7.0, -1.0, NAN]
CASES = {  # name -> inputs (differentiable points are the finite ones inside the domain)
    "expit": GRID, "logit": UNIT, "erf": GRID, "erfc": GRID, "erfcx": GRID[:-1],
    "erfinv": UNIT + [-1.0, -0.99], "gammaln": POSITIVE, "digamma": POSITIVE, "psi": POSITIVE,
    "i0": GRID, "i0e": GRID, "i1": GRID, "i1e": GRID, "ndtr": GRID, "ndtri": UNIT,
    "log_ndtr": GRID, "entr": POSITIVE + [INF], "sinc": GRID, "expm1": GRID, "exp2": GRID,
    "log1p": POSITIVE + [-0.5],
}

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_special_matches_torch(name, dtype):
    data = CASES[name]
    t_in = torch.tensor(data, dtype=getattr(torch, dtype))
    g_in = gw.tensor(data, dtype=getattr(gw, dtype))
    expected = getattr(torch.special, name)(t_in)
    got = getattr(gw.special, name)(g_in)
    assert str(got.dtype) == dtype
    rtol = 2e-5 if dtype == "float32" else 1e-9
    # torch's float32 kernels lose a few ulps in far tails (ndtr(-5)); scipy runs in float64
    atol = 2e-8 if dtype == "float32" else 1e-30
    np.testing.assert_allclose(np.asarray(got), expected.numpy(), rtol=rtol, atol=atol,
                               err_msg=name)
    # gradients where both are finite and defined
    t_in.requires_grad_()
    getattr(torch.special, name)(t_in).sum().backward()
    g_in.requires_grad_()
    getattr(gw.special, name)(g_in).sum().backward()
    t_grad, g_grad = t_in.grad.numpy(), np.asarray(g_in.grad)
    # where torch's derivative is finite and not astronomically large (digamma'(0): torch
    # 6.6e32 or 1.3e15 from its series, scipy inf; both mean the pole)
    finite = np.isfinite(t_grad) & np.isfinite(np.array(data)) & (np.abs(t_grad) < 1e12)
    np.testing.assert_allclose(g_grad[finite], t_grad[finite], rtol=max(rtol, 1e-6) * 10,
                               atol=1e-7, err_msg=f"{name} gradient")


@pytest.mark.parametrize("name", ["i0", "i0e", "i1", "i1e", "ndtr", "log_ndtr", "erfcx",
                                  "entr", "ndtri"])
def test_new_special_ops_gradcheck(name):
    points = np.array([0.2, 0.45, 0.7]) if name in ("ndtri", "entr") else np.array(
        [-2.5, -0.3, 0.0, 0.4, 3.0])
    x = gw.tensor(points, requires_grad=True)
    assert gw.gradcheck(getattr(gw.special, name), x)


def test_integer_input_is_promoted_like_torch():
    for name in ("i0", "ndtr", "expit", "erf", "entr"):
        expected = getattr(torch.special, name)(torch.tensor([0, 1, 2]))
        got = getattr(gw.special, name)(gw.tensor([0, 1, 2]))
        assert str(got.dtype) == str(expected.dtype).replace("torch.", "")
        np.testing.assert_allclose(np.asarray(got), expected.numpy(), rtol=1e-6)


def test_reductions_and_two_argument_functions_match_torch():
    x = [[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]]
    y = [[0.0, 2.0, NAN], [1.5, -0.5, 3.0]]  # with x: 0*log(0), 0*log(<0), 0*NaN
    for name, args in (("softmax", (1,)), ("log_softmax", (0,)), ("logsumexp", (1,))):
        np.testing.assert_allclose(
            np.asarray(getattr(gw.special, name)(gw.tensor(x), *args)),
            getattr(torch.special, name)(torch.tensor(x), *args).numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(gw.special.softmax(gw.tensor(x), 1, dtype=gw.float64)),
        torch.special.softmax(torch.tensor(x), 1, dtype=torch.float64).numpy())
    for name in ("xlogy", "xlog1py"):
        tx = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, -1.0]], requires_grad=True)
        gx = gw.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, -1.0]], requires_grad=True)
        t_out = getattr(torch.special, name)(tx, torch.tensor(y))
        g_out = getattr(gw.special, name)(gx, gw.tensor(y))
        np.testing.assert_allclose(np.asarray(g_out.detach()), t_out.detach().numpy(),
                                   rtol=1e-6)
        t_out.sum().backward()
        g_out.sum().backward()
        finite = np.isfinite(tx.grad.numpy())
        np.testing.assert_allclose(np.asarray(gx.grad)[finite], tx.grad.numpy()[finite],
                                   rtol=1e-6)
    np.testing.assert_allclose(np.asarray(gw.special.round(gw.tensor([0.5, 1.5, 2.567]), 2)),
                               torch.special.round(torch.tensor([0.5, 1.5, 2.567]),
                                                   decimals=2).numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_polygamma_matches_torch(n, dtype):
    """polygamma(n, x) (issue 12: digamma's derivative as an op of its own); n = 0 is digamma.
    Values and first gradients against torch, whose trigamma is ~5e-10 off (relative) in
    float64, hence the tolerance; tests/autograd/test_higher_order.py checks scipy's against
    mpmath."""
    data = [1e-3, 0.5, 1.0, 2.5, 7.0, -1.5, 30.0, NAN]
    t_in = torch.tensor(data, dtype=getattr(torch, dtype), requires_grad=True)
    g_in = gw.tensor(data, dtype=getattr(gw, dtype), requires_grad=True)
    expected, got = torch.special.polygamma(n, t_in), gw.special.polygamma(n, g_in)
    assert str(got.dtype) == dtype
    rtol = 2e-5 if dtype == "float32" else 1e-8
    np.testing.assert_allclose(np.asarray(got.detach()), expected.detach().numpy(), rtol=rtol)
    expected.sum().backward()
    got.sum().backward()
    np.testing.assert_allclose(np.asarray(g_in.grad), t_in.grad.numpy(), rtol=rtol)
    with pytest.raises(ValueError, match="polygamma: n must be a non-negative integer"):
        gw.special.polygamma(1.5, g_in)
