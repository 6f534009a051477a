"""The second reviewer's reports on the engine's edges (issue 12, edges-fix2), each compared
with torch 2.13 on the reported case and on a small grid of its family; ops with a numba
kernel run with the kernels on and off."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels import _jit
from gradwise.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
INF, NAN = math.inf, math.nan


@pytest.fixture(params=[True, False], ids=["jit", "nojit"])
def jit(request):
    if request.param and _jit._numba is None:
        pytest.skip("numba absent")
    previous = _jit.set_jit_enabled(request.param)
    yield request.param
    _jit.set_jit_enabled(previous)


def both(gw_fn, torch_fn, values, upstream=None, dtype=np.float64):
    """Value and input gradient of gw_fn and torch_fn at ``values``; asserts they agree
    (NaN where torch has NaN, same dtype)."""
    data = np.array(values, dtype=dtype)
    x = gw.tensor(data.copy(), requires_grad=True)
    t = torch.tensor(data.copy(), requires_grad=True)
    out, t_out = gw_fn(x), torch_fn(t)
    up = np.ones(t_out.shape, dtype) if upstream is None else np.array(upstream, dtype)
    out.backward(gw.tensor(up))
    t_out.backward(torch.tensor(up))
    np.testing.assert_allclose(np.asarray(out.detach()), t_out.detach().numpy(), rtol=1e-6,
                               err_msg="value")
    assert np.asarray(x.grad).dtype == t.grad.numpy().dtype
    np.testing.assert_allclose(np.asarray(x.grad), t.grad.numpy(), rtol=1e-6, atol=1e-12,
                               err_msg="gradient")


# 1. running sums and products: NaN/inf reach only later positions -------------------------------
CUMULATIVE = {
    "cumsum0": (lambda x: x.cumsum(0), lambda t: t.cumsum(0)),
    "cumsum1": (lambda x: x.cumsum(1), lambda t: t.cumsum(1)),
    "cumprod1": (lambda x: x.cumprod(1), lambda t: t.cumprod(1)),
    "logcumsumexp1": (lambda x: x.logcumsumexp(1), lambda t: t.logcumsumexp(1)),
    "cummax1": (lambda x: x.cummax(1)[0], lambda t: t.cummax(1)[0]),
}
GRID = [
    [[1.0, 3.0], [NAN, 1.0], [2.0, 2.0]],
    [[-INF, -INF], [INF, 1.0], [2.0, -INF]],
    [[1.0, 0.0], [0.0, -INF], [0.0, 0.0]],
    [[0.5, -2.0], [3.0, 0.25], [-1.0, 4.0]],
]


@pytest.mark.parametrize("values", range(len(GRID)))
@pytest.mark.parametrize("name", list(CUMULATIVE))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_cumulative_ops_keep_non_finite_values_local(name, values, dtype):
    gw_fn, torch_fn = CUMULATIVE[name]
    upstream = np.array([[1.0, 2.0], [-1.0, 0.5], [3.0, 1.0]])
    with np.errstate(all="ignore"):
        both(gw_fn, torch_fn, GRID[values], upstream, dtype)


def test_cumsum_backward_with_non_finite_upstream():
    both(lambda x: x.cumsum(0), lambda t: t.cumsum(0), [1.0, 2.0, 3.0, 4.0],
         [INF, NAN, -INF, 1.0])


def test_cumprod_at_zero_beside_inf_as_torch():
    with np.errstate(all="ignore"):
        both(lambda x: x.cumprod(0), lambda t: t.cumprod(0), [1.0, 0.0, -INF])
        both(lambda x: x.cumprod(0), lambda t: t.cumprod(0), [2.0, 0.0, 3.0, 0.0, 5.0],
             [1.0, 2.0, 3.0, 4.0, 5.0])


def test_cumsum_of_integers_and_a_scalar():
    assert gw.tensor([1, 2, 3]).cumsum(0).tolist() == [1, 3, 6]
    both(lambda x: x.cumsum(0), lambda t: t.cumsum(0), 2.0)


def test_cumsum_second_derivative_matches_torch():
    data = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])
    x = gw.tensor(data, requires_grad=True)
    t = torch.tensor(data, requires_grad=True)
    (g,) = gw.autograd.grad((x.cumsum(1) ** 3).sum(), x, create_graph=True)
    (tg,) = torch.autograd.grad((t.cumsum(1) ** 3).sum(), t, create_graph=True)
    (h,) = gw.autograd.grad((g * g).sum(), x)
    (th,) = torch.autograd.grad((tg * tg).sum(), t)
    np.testing.assert_allclose(np.asarray(h), th.numpy(), rtol=1e-10)


# 3. max()/min() without dim and the order statistics at NaN ---------------------------------
REDUCTIONS = {
    "max": (lambda x: x.max(), lambda t: t.max()),
    "min": (lambda x: x.min(), lambda t: t.min()),
    "amax": (lambda x: x.amax(), lambda t: t.amax()),
    "amin": (lambda x: x.amin(), lambda t: t.amin()),
    "max_dim": (lambda x: x.max(0)[0], lambda t: t.max(0)[0]),
    "median": (lambda x: x.median(), lambda t: t.median()),
    "median_dim": (lambda x: x.median(0)[0], lambda t: t.median(0)[0]),
    "kthvalue": (lambda x: x.kthvalue(2, 0)[0], lambda t: t.kthvalue(2, 0)[0]),
    "mode": (lambda x: x.mode(0)[0], lambda t: t.mode(0)[0]),
}


@pytest.mark.parametrize("values", [[1.0, NAN, 3.0, 0.0], [1.0, NAN, 3.0, NAN],
                                    [NAN, NAN, NAN, NAN], [2.0, 2.0, 1.0, 0.0]])
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reductions_at_nan_match_torch(name, values):
    if name == "kthvalue" and all(math.isnan(v) for v in values):
        pytest.skip("which NaN torch's kthvalue picks in an all-NaN slice is its sort's detail")
    gw_fn, torch_fn = REDUCTIONS[name]
    both(gw_fn, torch_fn, values)


def test_mode_indices_with_nan_match_torch():
    for values in ([1.0, NAN, NAN, 0.0], [NAN, NAN], [NAN, 1.0, 1.0]):
        got = gw.tensor(values).mode(0)
        expected = torch.tensor(values).mode(0)
        assert int(got.indices) == int(expected.indices), values


# 2. cross_entropy: ignored rows add exactly nothing ------------------------------------------
@pytest.mark.parametrize("logits", [
    [[2.0, -1.0, 0.5], [-INF, 0.0, 1.0]],
    [[2.0, -1.0, 0.5], [-INF, -INF, -INF]],
    [[2.0, -1.0, 0.5], [NAN, 0.0, 1.0]],
    [[-INF, 1.0, 0.5], [0.0, 0.0, 1.0]],
])
@pytest.mark.parametrize("weight", [None, [1.0, 2.0, 3000.0]], ids=["plain", "weight"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_ignored_rows_are_selected_away(jit, logits, weight, smoothing,
                                                      reduction):
    kwargs = {"ignore_index": 2, "label_smoothing": smoothing, "reduction": reduction}
    target = [1, 2]
    with np.errstate(all="ignore"):
        both(lambda x: F.cross_entropy(x, gw.tensor(target), weight=None if weight is None
                                       else gw.tensor(weight), **kwargs),
             lambda t: TF.cross_entropy(t, torch.tensor(target), weight=None if weight is None
                                        else torch.tensor(weight), **kwargs),
             logits, dtype=np.float32)


def test_cross_entropy_reported_values():
    logits = [[2.0, -1.0, 0.5], [-INF, 0.0, 1.0]]
    loss = F.cross_entropy(gw.tensor(logits), gw.tensor([0, 2]), ignore_index=2,
                           label_smoothing=0.1)
    np.testing.assert_allclose(float(loss), 0.3913113, rtol=1e-6)


# 4. losses at infinite differences and activations at huge inputs --------------------------
@pytest.mark.parametrize("name", ["smooth_l1_loss", "huber_loss"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_robust_losses_at_infinite_differences(name, dtype):
    kwargs = {"reduction": "sum"}
    for param in ({}, {"beta": 0.5} if name == "smooth_l1_loss" else {"delta": 2.0}):
        both(lambda x, p=param: getattr(F, name)(x, gw.zeros(4, dtype=x.dtype), **kwargs, **p),
             lambda t, p=param: getattr(TF, name)(t, torch.zeros(4, dtype=t.dtype), **kwargs,
                                                  **p),
             [INF, -INF, 1e30, 0.25], dtype=dtype)


@pytest.mark.parametrize("name", ["silu", "mish"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_silu_mish_at_huge_inputs(jit, name, dtype):
    big = float(np.finfo(dtype).max) / 2
    with np.errstate(all="ignore"):
        both(getattr(F, name), getattr(TF, name),
             [big, big / 3, -big, 30.0, -30.0, 0.5, -2.0, 0.0],
             [2.0, 4.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], dtype=dtype)


# 5. smaller elementwise edges ---------------------------------------------------------------
def binary(gw_fn, torch_fn, a, b):
    a_data, b_data = np.array(a), np.array(b)
    ga, gb = gw.tensor(a_data, requires_grad=True), gw.tensor(b_data, requires_grad=True)
    ta, tb = torch.tensor(a_data, requires_grad=True), torch.tensor(b_data, requires_grad=True)
    out, t_out = gw_fn(ga, gb), torch_fn(ta, tb)
    out.sum().backward()
    t_out.sum().backward()
    np.testing.assert_allclose(np.asarray(out.detach()), t_out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ga.grad), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(gb.grad), tb.grad.numpy(), rtol=1e-12)


def test_hypot_at_infinities_and_huge_values():
    binary(gw.hypot, torch.hypot, [INF, NAN, -INF, 1e200, 3.0, 0.5],
           [NAN, INF, 2.0, 1e200, 4.0, -1.5])
    with np.errstate(all="ignore"):
        assert np.isnan(float(gw.hypot(gw.tensor(NAN), gw.tensor(1.0))))


def test_fmax_fmin_ties_go_to_self():
    binary(gw.fmax, torch.fmax, [1.0, 2.0, NAN, 5.0, NAN], [1.0, 3.0, 4.0, NAN, NAN])
    binary(gw.fmin, torch.fmin, [1.0, 2.0, NAN, 5.0, NAN], [1.0, 3.0, 4.0, NAN, NAN])


def test_remainder_gradient_uses_floor_division():
    with np.errstate(all="ignore"):
        binary(gw.remainder, torch.remainder, [-1.0, 1.0, 5.0, -7.5, 3.0],
               [INF, -INF, 2.0, 2.0, -2.0])


def test_xlogy_at_zero_with_negative_and_nan_other():
    with np.errstate(all="ignore"):
        out = gw.xlogy(gw.tensor([0.0, 0.0, 2.0, 0.0]), gw.tensor([-1.0, NAN, -1.0, 3.0]))
        expected = torch.xlogy(torch.tensor([0.0, 0.0, 2.0, 0.0]),
                               torch.tensor([-1.0, NAN, -1.0, 3.0]))
    np.testing.assert_array_equal(np.asarray(out), expected.numpy())


def test_grad_casts_grad_outputs_to_the_output_dtype():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    (g,) = gw.autograd.grad(x * 2, x, grad_outputs=gw.tensor(np.ones(2)))
    assert g.dtype == np.float32
    _, h = gw.autograd.functional.hvp(lambda a: (a**3).sum(), gw.tensor([1.0, 2.0]),
                                      gw.tensor(np.array([1.0, 0.5])))
    assert h.dtype == np.float32
    np.testing.assert_allclose(np.asarray(h), [6.0, 6.0])


# 6. create_graph gradients that do not depend on x ------------------------------------------
SECOND = {
    "relu": (F.relu, TF.relu),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda t: TF.leaky_relu(t, 0.1)),
    "max_pool2d": (lambda x: F.max_pool2d(x.reshape(1, 1, 2, 2), 2),
                   lambda t: TF.max_pool2d(t.reshape(1, 1, 2, 2), 2)),
    "batch_norm_eval": (lambda x: F.batch_norm(x.reshape(2, 2), np.zeros(2), np.ones(2)),
                        lambda t: TF.batch_norm(t.reshape(2, 2), torch.zeros(2, dtype=t.dtype),
                                                torch.ones(2, dtype=t.dtype))),
    "linear_in_x": (lambda x: x * 3.0, lambda t: t * 3.0),
}


@pytest.mark.parametrize("name", list(SECOND))
def test_double_backward_of_a_constant_gradient_is_torchs(name):
    # issue 12 item d: a create_graph gradient requires grad where torch's does (its backward
    # read x: relu, leaky_relu, max_pool2d give zeros when differentiated again); x * 3's is a
    # constant in both, so differentiating it again raises in both
    gw_fn, torch_fn = SECOND[name]
    data = np.array([1.0, -2.0, 0.5, 3.0])
    x = gw.tensor(data, requires_grad=True)
    t = torch.tensor(data, requires_grad=True)
    (g,) = gw.autograd.grad(gw_fn(x).sum(), x, create_graph=True)
    (tg,) = torch.autograd.grad(torch_fn(t).sum(), t, create_graph=True)
    np.testing.assert_allclose(np.asarray(g.detach()), tg.detach().numpy())
    if name == "batch_norm_eval":  # STRUCTURE_DIFFERS (test_edges_ops_second_order.py)
        assert tg.requires_grad and not g.requires_grad
        assert torch.autograd.grad(tg.sum(), t, allow_unused=True)[0] is None
        return
    assert g.requires_grad == tg.requires_grad
    if not tg.requires_grad:
        for grad, first, leaf in ((gw.autograd.grad, g, x), (torch.autograd.grad, tg, t)):
            with pytest.raises(RuntimeError, match="does not require grad"):
                grad(first.sum(), leaf)
        return
    (second,) = gw.autograd.grad(g.sum(), x)
    (t_second,) = torch.autograd.grad(tg.sum(), t)
    np.testing.assert_array_equal(np.asarray(second), t_second.numpy(force=True))


def test_materialize_grads_and_is_grads_batched():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    unused = gw.tensor([3.0], requires_grad=True)
    (gx, gu) = gw.autograd.grad((x * x).sum(), [x, unused], materialize_grads=True)
    np.testing.assert_allclose(np.asarray(gu), [0.0])
    np.testing.assert_allclose(np.asarray(gx), [2.0, 4.0])
    with pytest.raises(ValueError, match="materialize_grads"):
        gw.autograd.grad((x * x).sum(), [x, unused], allow_unused=False,
                         materialize_grads=True)
    with pytest.raises(NotImplementedError, match="is_grads_batched"):
        gw.autograd.grad((x * x).sum(), x, is_grads_batched=True)


# 7. gradcheck signature, empty products -----------------------------------------------------
def test_gradcheck_takes_torch_tuple_of_inputs():
    a = gw.tensor([1.0, 2.0], dtype=gw.float64, requires_grad=True)
    b = gw.tensor([0.5, -1.0], dtype=gw.float64, requires_grad=True)
    assert gw.gradcheck(lambda p, q: p * q.tanh(), (a, b))
    assert gw.gradcheck(lambda p, q: p * q.tanh(), [a, b])
    assert gw.gradcheck(lambda p: p**3, a)
    assert gw.gradgradcheck(lambda p, q: p * q.tanh(), (a, b))
    with pytest.raises(ValueError, match="no input requires grad"):
        gw.gradcheck(lambda p: p, (gw.tensor([1.0], dtype=gw.float64),))


@pytest.mark.parametrize("shape,dim", [((0, 3), 0), ((2, 0), 1), ((2, 0, 3), 1), ((0,), None),
                                       ((0, 3), None), ((2, 0), 0)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_prod_over_empty_dims_is_one(shape, dim, keepdim):
    if dim is None and keepdim:
        pytest.skip("keepdim needs a dim")
    x = gw.ones(shape, requires_grad=True)
    t = torch.ones(shape, requires_grad=True)
    out = x.prod() if dim is None else x.prod(dim, keepdim=keepdim)
    t_out = t.prod() if dim is None else t.prod(dim, keepdim=keepdim)
    assert tuple(out.shape) == tuple(t_out.shape)
    np.testing.assert_array_equal(np.asarray(out.detach()), t_out.detach().numpy())
    out.sum().backward()
    t_out.sum().backward()
    assert np.asarray(x.grad).shape == tuple(t.grad.shape)


# 8. torch names that were missing -----------------------------------------------------------
def test_vhp_matches_torch():
    data = np.array([0.5, -1.0, 2.0])
    v = np.array([1.0, 0.25, -0.5])
    _, got = gw.autograd.functional.vhp(lambda a: (a.sin() * a.sum()).sum(), gw.tensor(data),
                                        gw.tensor(v))
    _, expected = torch.autograd.functional.vhp(lambda a: (a.sin() * a.sum()).sum(),
                                                torch.tensor(data), torch.tensor(v))
    np.testing.assert_allclose(np.asarray(got), expected.numpy(), rtol=1e-12)


def test_set_detect_anomaly_as_function_and_context_manager():
    assert not gw.autograd.is_anomaly_enabled()
    with gw.autograd.set_detect_anomaly(True):
        assert gw.autograd.is_anomaly_enabled()
        with gw.autograd.set_detect_anomaly(False):
            assert not gw.autograd.is_anomaly_enabled()
        assert gw.autograd.is_anomaly_enabled()
        x = gw.tensor([0.0], requires_grad=True)
        with pytest.raises(gw.autograd.AnomalyError):
            x.sqrt().sum().backward()  # backward checked (sqrt'(0) = inf), as torch
    assert not gw.autograd.is_anomaly_enabled()
    gw.autograd.set_detect_anomaly(True)
    try:
        assert gw.autograd.is_anomaly_enabled()
    finally:
        gw.autograd.set_detect_anomaly(False)
    assert not gw.autograd.is_anomaly_enabled()
    with pytest.raises(NotImplementedError, match="check_nan"):
        gw.autograd.set_detect_anomaly(True, check_nan=False)
