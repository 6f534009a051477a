"""``t[index] = value`` with a value of extra leading size-1 dims (torch broadcasts it, as if
squeezed of its leading 1s): values and gradients vs torch, over targets (0-d, element, row,
slice, views) and value shapes. Issue 12, fifth newcomer review."""
import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

# (base shape, how the target is reached, index written, value's core shape)
TARGETS = [
    ((), "y", (), ()),
    ((3,), "y", 0, ()),
    ((3,), "y[0]", ..., ()),
    ((3, 2), "y", 1, (2,)),
    ((3, 2), "y", (slice(0, 2),), (2, 2)),
    ((3, 2), "y", (slice(None), 0), (3,)),
    ((3, 2), "y.t()", 0, (3,)),
    ((4,), "y.view(2, 2)", 1, (2,)),
    ((4,), "y[1:3]", ..., (2,)),
]


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: f"{t[0]}-{t[1]}-{t[2]}")
@pytest.mark.parametrize("lead", [0, 1, 2])
@pytest.mark.parametrize("grad", [True, False])
def test_setitem_value_with_leading_ones_matches_torch(target, lead, grad):
    shape, how, index, core = target
    vshape = (1,) * lead + core
    results = []
    for T in (torch, gw):
        x = T.tensor(np.arange(1.0, 1.0 + int(np.prod(vshape))).reshape(vshape),
                     requires_grad=grad)
        y = T.tensor(np.linspace(-1, 1, int(np.prod(shape))).reshape(shape)) * 1
        if grad:
            y = y * x.sum()  # y requires grad too
        v = eval(how, {"y": y})
        v[index] = x * x
        out = [np.asarray(y.detach().tolist())]
        if grad:
            (y * y).sum().backward()
            out.append(np.asarray(x.grad.tolist()))
        results.append(out)
    for t_out, g_out in zip(*results, strict=True):
        np.testing.assert_allclose(g_out, t_out, rtol=1e-6)


def test_setitem_value_with_leading_ones_double_backward():
    grads = []
    for T in (torch, gw):
        x = T.tensor([[1.5, 2.0]], dtype=T.float64, requires_grad=True)
        y = T.zeros(3, 2, dtype=T.float64) * 1
        y[1] = x * x * x
        (g,) = T.autograd.grad((y * y).sum(), x, create_graph=True)
        (h,) = T.autograd.grad(g.sum(), x)
        grads.append((np.asarray(g.tolist()), np.asarray(h.tolist())))
    for t_out, g_out in zip(*grads, strict=True):
        np.testing.assert_allclose(g_out, t_out)


def test_setitem_value_with_a_leading_dim_longer_than_one_still_raises():
    y = gw.zeros(3)
    with pytest.raises(ValueError):
        y[0] = gw.ones(2, 1)


def test_index_put_keeps_torchs_strict_value_rank():
    for T in (torch, gw):
        with pytest.raises(RuntimeError, match="shape mismatch"):
            T.zeros(3).index_put_((T.tensor([0]),), T.ones(1, 1))
        y = T.zeros(3).index_put_((T.tensor([0, 2]),), T.ones(1) * 2)
        assert y.tolist() == [2.0, 0.0, 2.0]
