"""Trigonometric and hyperbolic ops (ops/trig.py): values, first and second derivatives against
float64 finite differences, and values, dtypes and gradients against PyTorch (issue 11)."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

# inputs inside each function's domain (acosh: > 1; asin/acos/atanh: (-1, 1))
DOMAIN = {
    "tan": [-1.2, -0.3, 0.4, 1.1], "asin": [-0.9, -0.2, 0.3, 0.8],
    "acos": [-0.9, -0.2, 0.3, 0.8], "atan": [-3.0, -0.5, 0.2, 4.0],
    "sinh": [-3.0, -0.5, 0.2, 4.0], "cosh": [-3.0, -0.5, 0.2, 4.0],
    "asinh": [-3.0, -0.5, 0.2, 4.0], "acosh": [1.1, 1.5, 3.0, 9.0],
    "atanh": [-0.9, -0.2, 0.3, 0.8],
}
ALIASES = {"asin": "arcsin", "acos": "arccos", "atan": "arctan", "asinh": "arcsinh",
           "acosh": "arccosh", "atanh": "arctanh"}


@pytest.mark.parametrize("name", sorted(DOMAIN))
def test_unary_gradcheck_and_gradgradcheck(name):
    x = gw.tensor(np.array(DOMAIN[name]), requires_grad=True)
    assert gw.gradcheck(lambda t: getattr(t, name)(), x)
    assert gw.gradgradcheck(lambda t: getattr(gw, name)(t), x)


def test_atan2_gradcheck_broadcast_and_gradgradcheck():
    y = gw.tensor(np.array([[-1.0, 0.5, 2.0], [0.3, -0.7, 1.5]]), requires_grad=True)
    x = gw.tensor(np.array([0.4, -2.0, 1.0]), requires_grad=True)
    assert gw.gradcheck(lambda a, b: gw.atan2(a, b), y, x)
    assert gw.gradgradcheck(lambda a, b: a.arctan2(b), y, x)


def test_atan2_names_unbroadcastable_shapes():
    with pytest.raises(ValueError, match=r"atan2: shapes \(2,\) and \(3,\)"):
        gw.atan2(gw.ones(2), gw.ones(3))


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("name", sorted(DOMAIN))
def test_unary_matches_torch_value_dtype_and_grad(name, dtype):
    # edges too: NaN, the poles, out of the domain
    data = DOMAIN[name] + [float("nan"), -5.0, 5.0, 1.0, -1.0, 0.0]
    if dtype == "int64":
        data = [2, 1, 0, -1, 3]
    tx = torch.tensor(data, dtype=getattr(torch, dtype))
    gx = gw.tensor(data, dtype=getattr(gw, dtype))
    expected = getattr(torch, name)(tx)
    for got in (getattr(gw, name)(gx), getattr(gx, ALIASES.get(name, name))()):
        assert str(got.dtype) == str(expected.dtype).replace("torch.", "")
        np.testing.assert_allclose(np.asarray(got), expected.numpy(), rtol=1e-6, atol=1e-6)
    if dtype != "int64":
        tx.requires_grad_()
        getattr(torch, name)(tx).sum().backward()
        gx.requires_grad_()
        getattr(gw, name)(gx).sum().backward()
        np.testing.assert_allclose(np.asarray(gx.grad), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_atan2_matches_torch_quadrants_zero_and_grads():
    y = [1.0, 1.0, -1.0, -1.0, 0.0, 0.0, -0.0, 2.0]
    x = [1.0, -1.0, -1.0, 1.0, -1.0, 0.0, -1.0, float("inf")]
    ty, tx = (torch.tensor(v, requires_grad=True) for v in (y, x))
    gy, gx = (gw.tensor(v, requires_grad=True) for v in (y, x))
    t_out, g_out = torch.atan2(ty, tx), gw.atan2(gy, gx)
    np.testing.assert_allclose(np.asarray(g_out.detach()), t_out.detach().numpy())
    t_out.sum().backward()
    g_out.sum().backward()
    np.testing.assert_allclose(np.asarray(gy.grad), ty.grad.numpy())
    np.testing.assert_allclose(np.asarray(gx.grad), tx.grad.numpy())
    ints = (torch.atan2(torch.tensor([1, -2]), torch.tensor([3, 0])),
            gw.arctan2(gw.tensor([1, -2]), gw.tensor([3, 0])))
    assert str(ints[1].dtype) == "float32" and ints[0].dtype == torch.float32
    np.testing.assert_allclose(np.asarray(ints[1]), ints[0].numpy())
