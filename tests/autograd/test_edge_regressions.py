"""The ten reports of issue 12, each pinned to the value PyTorch 2.13 gives (no torch needed).

The edge grid (test_edges.py) sweeps the families these came from; these tests keep the
reported cases themselves from coming back.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradwise as gw
from gradwise.nn import functional as F

INF, NAN = math.inf, math.nan


def grad_of(fn, values, dtype=np.float32) -> np.ndarray:
    x = gw.tensor(np.array(values, dtype=dtype), requires_grad=True)
    fn(x).sum().backward()
    return np.asarray(x.grad)


# 1. pow at 0 and at negative bases ------------------------------------------------------------
@pytest.mark.parametrize(
    "power",
    [lambda x: x**0, lambda x: x**0.0, lambda x: x ** gw.tensor([0.0, 0.0])],
    ids=["int", "float", "tensor"],
)
def test_x_to_the_zero_has_gradient_zero_at_zero(power):
    np.testing.assert_array_equal(grad_of(power, [0.0, 0.0]), [0.0, 0.0])


def test_exponent_gradient_at_negative_and_zero_bases():
    base = gw.tensor(np.array([-2.0, 0.0, 0.0]), requires_grad=True)
    exponent = gw.tensor(np.array([2.0, -1.0, 2.0]), requires_grad=True)
    (base**exponent).sum().backward()
    # d/db a^b = a^b log a: NaN for a < 0, -inf for a = 0 with b < 0, 0 for a = 0 with b >= 0
    np.testing.assert_array_equal(np.asarray(exponent.grad), [NAN, -INF, 0.0])
    np.testing.assert_array_equal(np.asarray(base.grad), [-4.0, -INF, 0.0])


# 2. std of equal values and of one value ------------------------------------------------------
@pytest.mark.parametrize(("values", "ddof"), [([2.0, 2.0, 2.0], 1), ([2.0, 2.0, 2.0], 0),
                                              ([3.0], 0)])
def test_std_of_equal_values_has_gradient_zero(values, ddof):
    np.testing.assert_array_equal(
        grad_of(lambda x: x.std(ddof=ddof), values), np.zeros(len(values))
    )


# 3. norms, with gradient 0 at 0 ---------------------------------------------------------------
@pytest.mark.parametrize(
    "norm",
    [lambda x: gw.linalg.norm(x), lambda x: gw.linalg.vector_norm(x, 1),
     lambda x: gw.linalg.vector_norm(x, INF), lambda x: x.norm(), lambda x: x.norm(2, dim=1),
     lambda x: x.norm(1, dim=0), lambda x: gw.linalg.matrix_norm(x, "fro"),
     lambda x: gw.linalg.matrix_norm(x, 1), lambda x: gw.linalg.matrix_norm(x, INF),
     lambda x: gw.linalg.norm(x, "fro")],
    ids=["linalg.norm", "vector_1", "vector_inf", "Tensor.norm", "norm_2_dim1", "norm_1_dim0",
         "fro", "matrix_1", "matrix_inf", "linalg.norm_fro"],
)
def test_norms_have_gradient_zero_at_zero(norm):
    grad = grad_of(norm, np.zeros((2, 3)))
    np.testing.assert_array_equal(grad, np.zeros((2, 3)))


def test_norm_values():
    x = gw.tensor(np.array([[3.0, -4.0], [0.0, 12.0]]))
    assert gw.linalg.norm(x).item() == 13.0
    np.testing.assert_array_equal(x.norm(2, dim=1).numpy(), [5.0, 12.0])
    np.testing.assert_array_equal(gw.linalg.vector_norm(x, 1, dim=0).numpy(), [3.0, 16.0])
    assert gw.linalg.vector_norm(x, INF).item() == 12.0
    assert gw.linalg.matrix_norm(x, 1).item() == 16.0  # largest absolute column sum
    assert gw.linalg.matrix_norm(x, INF).item() == 12.0  # largest absolute row sum


# 4. max_pool2d over -inf windows that touch the padding ---------------------------------------
def test_max_pool_over_minus_infinity_windows_keeps_every_gradient():
    x = gw.tensor(np.full((1, 1, 4, 4), -INF, dtype=np.float32), requires_grad=True)
    F.max_pool2d(x, 2, 2, 1).sum().backward()
    grad = np.asarray(x.grad)
    assert grad.sum() == 9.0  # one per window: a 3x3 output, torch gives the same
    # each window's gradient goes to its first real element (torch's choice), none to padding
    np.testing.assert_array_equal(
        grad[0, 0], [[1, 1, 0, 1], [1, 1, 0, 1], [0, 0, 0, 0], [1, 1, 0, 1]]
    )


def test_max_pool_corner_window_of_minus_infinity_as_reported():
    # the report: kernel 2, stride 2, padding 1 over a 2x2 block of -inf; torch's sum is 4
    x = gw.tensor(np.full((1, 1, 2, 2), -INF, dtype=np.float32), requires_grad=True)
    F.max_pool2d(x, 2, 2, 1).sum().backward()
    assert np.asarray(x.grad).sum() == 4.0


# 5. clip_grad_norm_ with an infinite norm ----------------------------------------------------
@pytest.mark.parametrize(
    ("grad", "dtype", "expected"),
    [([INF, 1.0, -2.0], np.float32, [NAN, 0.0, -0.0]), ([1e200, 1e200], np.float64, [0.0, 0.0])],
    ids=["inf_entry", "overflowing_norm"],
)
def test_clip_grad_norm_with_an_infinite_norm_as_torch(grad, dtype, expected):
    param = gw.tensor(np.zeros(len(grad), dtype=dtype), requires_grad=True)
    param.grad = np.array(grad, dtype=dtype)
    total = gw.nn.utils.clip_grad_norm_([param], 1.0)
    assert total == INF
    np.testing.assert_array_equal(np.asarray(param.grad), expected)
    assert np.asarray(param.grad).dtype == dtype


def test_clip_grad_norm_error_if_nonfinite_leaves_the_gradients():
    param = gw.tensor(np.zeros(3, dtype=np.float32), requires_grad=True)
    param.grad = np.array([INF, 1.0, -2.0], dtype=np.float32)
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is inf"):
        gw.nn.utils.clip_grad_norm_([param], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(np.asarray(param.grad), [INF, 1.0, -2.0])


def test_clip_grad_norm_with_a_nan_gradient_makes_every_gradient_nan():
    first = gw.tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    second = gw.tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    first.grad = np.array([NAN, 1.0], dtype=np.float32)
    second.grad = np.array([3.0, 4.0], dtype=np.float32)
    assert math.isnan(gw.nn.utils.clip_grad_norm_([first, second], 1.0))
    assert np.isnan(np.asarray(second.grad)).all()


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, INF])
def test_clip_grad_norm_uses_the_norm_of_the_per_tensor_norms(norm_type):
    grads = [np.array([3.0, -4.0], np.float32), np.array([[12.0]], np.float32)]
    params = [gw.tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    for param, grad in zip(params, grads, strict=True):
        param.grad = grad.copy()
    total = gw.nn.utils.clip_grad_norm_(params, 1.0, norm_type=norm_type)
    flat = np.concatenate([g.ravel() for g in grads]).astype(np.float64)
    expected = np.abs(flat).max() if math.isinf(norm_type) else (
        (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    )
    assert total == pytest.approx(expected, rel=1e-6)
    scale = 1.0 / (expected + 1e-6)
    for param, grad in zip(params, grads, strict=True):
        np.testing.assert_allclose(np.asarray(param.grad), grad * scale, rtol=1e-6)


# 6. the softmax family over a zero-size axis -------------------------------------------------
def test_softmax_family_over_an_empty_axis():
    x = gw.zeros(2, 0, requires_grad=True)
    assert x.softmax(axis=1).shape == (2, 0)
    assert x.log_softmax(axis=1).shape == (2, 0)
    lse = x.logsumexp(axis=1)
    np.testing.assert_array_equal(lse.numpy(), [-INF, -INF])
    lse.sum().backward()
    assert np.asarray(x.grad).shape == (2, 0)
    np.testing.assert_array_equal(gw.zeros(0, 3).logsumexp(axis=0).numpy(), [-INF] * 3)


# 7. a BatchNorm state dict without num_batches_tracked ---------------------------------------
def test_batch_norm_state_dict_without_num_batches_tracked_loads():
    model = gw.nn.Sequential(gw.nn.Linear(2, 3, rng=0), gw.nn.BatchNorm1d(3))
    state = model.state_dict()
    old_style = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    old_style["1.running_mean"] = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    result = model.load_state_dict(old_style)
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(model[1].running_mean.numpy(), [1.0, 2.0, 3.0])
    assert int(model[1].num_batches_tracked.item()) == 0
    assert "1.num_batches_tracked" not in old_style  # the caller's dict is not changed


def test_a_missing_running_mean_is_still_missing():
    model = gw.nn.BatchNorm1d(3)
    state = {k: v for k, v in model.state_dict().items() if k != "running_mean"}
    with pytest.raises(gw.nn.module.StateDictError, match="running_mean"):
        model.load_state_dict(state)


# 8. gelu and erf from scipy.special ----------------------------------------------------------
def test_exact_gelu_is_exact_in_float64():
    from scipy import special

    x = np.linspace(-6, 6, 25)
    # Phi(x) = erfc(-x / sqrt 2) / 2: the same function without the cancellation in 1 + erf
    # for negative x (torch's 0.5 * (1 + erf) loses digits there; gradwise does not)
    expected = x * 0.5 * special.erfc(-x / math.sqrt(2))
    np.testing.assert_allclose(F.gelu(gw.tensor(x)).numpy(), expected, rtol=1e-14, atol=0)
    # the reported point: the hand-written polynomial was 1.4e-7 away from torch here
    value = F.gelu(gw.tensor(np.array([0.5]))).item()
    assert value == pytest.approx(0.34573123063700656, abs=1e-16)


# 9. cross_entropy's weight and ignore_index; SequentialLR at milestone 0 -----------------------
def test_cross_entropy_with_weight_ignore_index_and_smoothing():
    logits = gw.tensor(np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])),
                       requires_grad=True)
    labels = np.array([0, 2, -100])
    weight = np.array([2.0, 1.0, 0.5])
    loss = F.cross_entropy(logits, labels, weight)
    # (2 * -log 0.7 + 0.5 * -log 0.8) / (2 + 0.5): the ignored row adds nothing, even weight
    expected = (2 * -math.log(0.7) + 0.5 * -math.log(0.8)) / 2.5
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    np.testing.assert_array_equal(np.asarray(logits.grad)[2], [0.0, 0.0, 0.0])
    smoothed = F.cross_entropy(logits, labels, weight, label_smoothing=0.3).item()
    log_p = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    smooth = -(log_p * weight).sum(axis=1)
    expected_smoothed = 0.7 * expected + 0.3 / 3 * smooth.sum() / 2.5
    assert smoothed == pytest.approx(expected_smoothed, rel=1e-12)


def test_cross_entropy_of_only_ignored_rows_is_nan_with_zero_gradient():
    logits = gw.tensor(np.zeros((2, 3)), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([-100, -100]))
    assert math.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(np.asarray(logits.grad), np.zeros((2, 3)))


def test_sequential_lr_accepts_milestone_zero():
    param = gw.tensor(np.zeros(1, dtype=np.float32), requires_grad=True)
    opt = gw.optim.SGD([param], lr=1.0)
    schedules = gw.optim.lr_scheduler
    warmup = schedules.LinearLR(opt, start_factor=0.5, total_iters=2)
    decay = schedules.ExponentialLR(opt, gamma=0.9)
    sched = schedules.SequentialLR(opt, [warmup, decay], milestones=[0])
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(lrs, [1.0, 0.9, 0.81, 0.729])  # torch 2.13's trajectory


# 10. dtype promotion (the rules themselves are tested in the engine core's dtype table) ------
def test_int64_tensors_promote_to_float32_as_torch():
    integers = gw.tensor(np.array([1, 2, 3], dtype=np.int64))
    floats = gw.tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    assert (integers / 2).dtype == np.float32
    assert (integers * floats).dtype == np.float32
    assert (floats * integers).dtype == np.float32
    assert (integers * 2).dtype == np.int64


def test_relu_backward_gives_zero_where_inactive_even_for_non_finite_upstream_gradients():
    # torch's threshold_backward is "grad if x > 0 else 0": an inf or NaN arriving at an
    # inactive unit stays there (a product would make it inf * 0 = NaN)
    x = gw.tensor(np.array([-1.0, 0.0, 2.0, -3.0], np.float32), requires_grad=True)
    gw.relu(x).backward(gw.tensor(np.array([np.inf, np.nan, 1.0, -np.inf], np.float32)))
    np.testing.assert_array_equal(np.asarray(x.grad), np.array([0, 0, 1, 0], np.float32))


# ---- the lead's measurements (x = [-3, -0.5, 0, 0.5, 3, 7], every upstream gradient +inf) -----
PROBE = np.array([-3.0, -0.5, 0.0, 0.5, 3.0, 7.0], np.float32)
INF_UPSTREAM = {  # torch 2.13's gradients; gradwise gave NaN wherever a product met inf * 0
    "clamp": (lambda x: x.clamp(-1.0, 1.0), [0, np.inf, np.inf, np.inf, 0, 0]),
    "hardtanh": (lambda x: F.hardtanh(x), [0, np.inf, np.inf, np.inf, 0, 0]),
    "relu6": (lambda x: F.relu6(x), [0, 0, 0, np.inf, np.inf, 0]),
    "hardsigmoid": (lambda x: F.hardsigmoid(x), [0, np.inf, np.inf, np.inf, 0, 0]),
    "hardswish": (lambda x: F.hardswish(x), [0, np.inf, np.inf, np.inf, np.inf, np.inf]),
    "maximum_0": (lambda x: gw.maximum(x, gw.zeros(6)), [0, 0, np.inf, np.inf, np.inf, np.inf]),
    "silu": (lambda x: F.silu(x), [-np.inf, np.inf, np.inf, np.inf, np.inf, np.inf]),
}


@pytest.mark.parametrize("name", list(INF_UPSTREAM))
def test_piecewise_ops_keep_an_infinite_upstream_gradient_off_flat_positions(name):
    fn, expected = INF_UPSTREAM[name]
    for create_graph in (False, True):
        x = gw.tensor(PROBE.copy(), requires_grad=True)
        with np.errstate(all="ignore"):
            (grad,) = gw.autograd.grad(fn(x), x, gw.tensor(np.full(6, np.inf, np.float32)),
                                       create_graph=create_graph)
        np.testing.assert_array_equal(np.asarray(grad), np.array(expected, np.float32))


def test_hard_activations_use_torchs_strict_boundaries_with_finite_gradients():
    x = gw.tensor(np.array([-3.0, 0.0, 3.0, 6.0, -1.0, 1.0]), requires_grad=True)
    (relu6,) = gw.autograd.grad(F.relu6(x).sum(), x)
    (hardtanh,) = gw.autograd.grad(F.hardtanh(x).sum(), x)
    (hardsigmoid,) = gw.autograd.grad(F.hardsigmoid(x).sum(), x)
    (hardswish,) = gw.autograd.grad(F.hardswish(x).sum(), x)
    np.testing.assert_array_equal(np.asarray(relu6), [0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(np.asarray(hardtanh), [0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(np.asarray(hardsigmoid), [0, 1 / 6, 0, 0, 1 / 6, 1 / 6])
    np.testing.assert_allclose(np.asarray(hardswish), [0, 0.5, 1, 1, 1 / 6, 5 / 6])


def test_max_pool_numpy_paths_keep_an_infinite_gradient_on_the_picked_element():
    x = gw.tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    for kernel, stride in ((2, 2), (3, 1)):  # tiles, overlapping windows
        out = F.max_pool2d(x, kernel, stride)
        (grad,) = gw.autograd.grad(out, x, gw.tensor(np.full(out.shape, np.inf)))
        grad = np.asarray(grad)
        assert not np.isnan(grad).any()
        assert np.isinf(grad).sum() == np.prod(out.shape) and (grad[np.isfinite(grad)] == 0).all()


def test_sort_and_topk_put_nan_first_when_descending():
    x = gw.tensor(np.array([1.0, np.nan, np.inf, -1.0]), requires_grad=True)
    np.testing.assert_array_equal(np.asarray(x.sort(descending=True).indices), [1, 2, 0, 3])
    np.testing.assert_array_equal(np.asarray(x.topk(2).indices), [1, 2])
    np.testing.assert_array_equal(np.asarray(x.sort().indices), [3, 0, 2, 1])
