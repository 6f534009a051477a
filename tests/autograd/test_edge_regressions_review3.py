"""The third reviewer's reports on the engine's edges (issue 12, edges-fix3), each compared with
torch 2.13 on the reported case and on a small grid of its family (float32 and float64; second
derivatives in float64 where the op is differentiable); norm ops with a numba kernel run with
the kernels on and off."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels import _jit
from gradwise.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
INF, NAN = math.inf, math.nan
DTYPES = ["float32", "float64"]


@pytest.fixture(params=[True, False], ids=["jit", "nojit"])
def jit(request):
    if request.param and _jit._numba is None:
        pytest.skip("numba absent")
    previous = _jit.set_jit_enabled(request.param)
    yield request.param
    _jit.set_jit_enabled(previous)


def _numpy(t):
    """A Tensor's values (torch's ZeroTensor gradients materialised)."""
    if isinstance(t, torch.Tensor):
        return t.detach().numpy(force=True)
    return np.asarray(t.detach())


def _run(lib, fn, arrays, upstream, second):
    """fn's value, its gradients and (``second``) the gradient of sum(g^2), as arrays."""
    xs = [lib.tensor(a, requires_grad=True) for a in arrays]
    y = fn(lib, *xs)
    seed = lib.tensor(np.full(tuple(y.shape), upstream, dtype=arrays[0].dtype))
    grads = lib.autograd.grad(y, xs, seed, create_graph=second)
    out = [_numpy(y), *(_numpy(g) for g in grads)]
    if second:
        square = sum((g * g).sum() for g in grads)
        out += [_numpy(g) for g in lib.autograd.grad(square, xs)]
    return out


def assert_like_torch(fn, arrays, dtype, upstream=1.0, second=False, rtol=1e-6, atol32=1e-5):
    """Values and gradients of fn(lib, *tensors) in gradwise and torch: same dtype, shape,
    value (NaN where torch has NaN, infinities with their sign)."""
    arrays = [np.asarray(a, dtype=dtype) for a in arrays]
    got = _run(gw, fn, arrays, upstream, second)
    want = _run(torch, fn, arrays, upstream, second)
    assert len(got) == len(want)
    rtol, atol = (rtol, rtol) if dtype == "float64" else (1e-5, atol32)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.dtype == w.dtype and g.shape == w.shape, (i, g.dtype, w.dtype, g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"item {i}")


# ---- 1. logit: torch's 1/(x(1-x)) slope, inf at 0 and 1, NaN outside; 0 outside [eps, 1-eps]
LOGIT_VALUES = [0.0, -0.0, 1.0, 0.5, -1.0, 2.0, 1e-30, 0.999, NAN]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [None, 0.1, 0.0])
@pytest.mark.parametrize("spelling", ["method", "special"])
def test_logit_gradient_at_and_outside_the_domain_edges(dtype, eps, spelling):
    def logit(lib, x):
        if spelling == "method":
            return x.logit(eps)
        return lib.special.logit(x, eps)

    assert_like_torch(logit, [LOGIT_VALUES], dtype)
    if dtype == "float64":
        inside = [0.05, 0.3, 0.5, 0.8, 0.95]
        assert_like_torch(logit, [inside], dtype, second=True)


def test_logit_gradient_is_inf_at_zero_and_one():
    x = gw.tensor([0.0, -0.0, 1.0], requires_grad=True)
    x.logit().sum().backward()
    np.testing.assert_array_equal(np.asarray(x.grad), [INF, INF, INF])


# ---- 4. special functions' forward values at the edges
SPECIAL_EDGES = [0.0, -0.0, 1.0, -1.0, -2.0, INF, -INF, NAN, 30.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_lgamma_of_minus_inf_is_plus_inf(dtype):
    for fn in (lambda lib, x: x.lgamma(), lambda lib, x: lib.special.gammaln(x)):
        assert_like_torch(fn, [SPECIAL_EDGES], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_polygamma_at_minus_inf_is_nan(dtype, n):
    values = np.array([-INF, 0.5, 3.0, NAN], dtype=dtype)
    got = gw.special.polygamma(n, gw.tensor(values)).numpy()
    want = torch.special.polygamma(n, torch.tensor(values)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert np.isnan(got[0]) == (n == 1)  # trigamma; n >= 2 gives +-inf there, as scipy
    # digamma's derivative (trigamma) at -inf: NaN as torch
    x = gw.tensor(values, requires_grad=True)
    x.digamma().sum().backward()
    assert np.isnan(np.asarray(x.grad)[0])


# ---- 5. step functions: recorded with gradient 0, sign(NaN) = 0
STEPS = ["sign", "floor", "ceil", "round", "trunc", "sgn"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", STEPS)
@pytest.mark.parametrize("upstream", [1.0, INF, NAN])
def test_step_functions_are_recorded_with_zero_gradient(dtype, name, upstream):
    values = [NAN, 0.0, -0.0, -1.5, 2.5, INF, -INF, 0.49]
    assert_like_torch(lambda lib, x: getattr(x, name)(), [values], dtype, upstream=upstream)
    y = getattr(gw.tensor([1.5], requires_grad=True), name)()
    assert y.requires_grad and y.grad_fn is not None


def test_sign_of_nan_is_zero_and_round_decimals_is_recorded():
    assert gw.tensor([NAN, -2.0]).sign().numpy().tolist() == [0.0, -1.0]
    x = gw.tensor([1.234, -5.678], dtype=np.float64, requires_grad=True)
    y = x.round(decimals=1)
    np.testing.assert_array_equal(y.numpy(), [1.2, -5.7])
    (y * x).sum().backward()
    np.testing.assert_array_equal(np.asarray(x.grad), [1.2, -5.7])  # y's own gradient is 0
    assert gw.tensor([3, -2]).sign().numpy().tolist() == [1, -1]  # integers: no graph


def test_step_functions_second_derivative_is_zero_and_constant():
    x = gw.tensor([0.3, -1.7], dtype=np.float64, requires_grad=True)
    (g,) = gw.autograd.grad((x.sign() * x * x).sum(), x, create_graph=True)
    np.testing.assert_allclose(np.asarray(g.detach()), [0.6, 3.4])
    (h,) = gw.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(np.asarray(h), [2.0, -2.0])


# ---- 6. prod: torch's prod_backward at zeros, NaN and inf, along dims, keepdim
PROD_ROWS = [[0.0, 0.0, NAN, 2.0], [0.0, 3.0, NAN, 2.0], [1.0, 2.0, 3.0, 4.0],
             [0.0, INF, 2.0, 1.0], [INF, 2.0, NAN, 1.0], [5.0, 0.0, 1.0, -2.0]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("dim", "keepdim"), [(None, False), (0, False), (1, False), (-1, True)])
@pytest.mark.parametrize("pair", list(itertools.combinations(range(len(PROD_ROWS)), 2)))
def test_prod_gradient_with_zeros_nan_and_inf(dtype, dim, keepdim, pair):
    def prod(lib, x):
        return x.prod() if dim is None else x.prod(dim=dim, keepdim=keepdim)

    rows = [PROD_ROWS[i] for i in pair]
    assert_like_torch(prod, [rows], dtype, second=dtype == "float64")


def test_prod_with_two_zeros_and_nan_has_zero_gradient():
    x = gw.tensor([0.0, 0.0, NAN, 2.0], requires_grad=True)
    x.prod().backward()
    np.testing.assert_array_equal(np.asarray(x.grad), [0.0, 0.0, 0.0, 0.0])


# ---- 2. lp_pool with an all-zero window: gradient 0 (torch's sign * relu(abs) guard)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, 0.5])
@pytest.mark.parametrize("values", [[0.0, 0.0, 1.0, 2.0, 0.0, 0.0],
                                    [-1.0, 1.0, 0.0, 0.0, 2.0, -3.0],
                                    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
def test_lp_pool_with_an_all_zero_window(dtype, norm_type, values):
    one_d = np.reshape(values, (1, 1, 6))
    assert_like_torch(lambda lib, x: (F if lib is gw else TF).lp_pool1d(x, norm_type, 2),
                      [one_d], dtype)
    two_d = np.reshape(values, (1, 1, 2, 3))[..., :2]
    assert_like_torch(lambda lib, x: (F if lib is gw else TF).lp_pool2d(x, norm_type, 2),
                      [two_d], dtype)


# ---- 3. normalisation of a constant row/group/channel is exactly 0
def _norms(lib):
    functional = F if lib is gw else TF
    return {
        "layer_norm": lambda x: functional.layer_norm(x, (3,)),
        "group_norm": lambda x: functional.group_norm(x, 2),
        "instance_norm": lambda x: functional.instance_norm(x),
        "batch_norm": lambda x: functional.batch_norm(x, None, None, training=True),
        "rms_norm": lambda x: functional.rms_norm(x, (3,)),
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [0.1, 1 / 3, 7.0, -2.5, 1e-30, 1e30])
@pytest.mark.parametrize("name", ["layer_norm", "group_norm", "instance_norm", "batch_norm"])
def test_a_constant_row_normalises_to_exactly_zero(jit, dtype, value, name):
    x = gw.tensor(np.full((2, 4, 3), value, dtype=dtype))
    np.testing.assert_array_equal(_norms(gw)[name](x).numpy(), 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [0.1, 1 / 3, 7.0, -2.5])
@pytest.mark.parametrize("name", ["layer_norm", "group_norm", "instance_norm", "batch_norm",
                                  "rms_norm"])
def test_norms_of_constant_rows_match_torch(jit, dtype, value, name):
    values = np.full((2, 4, 3), value)
    if name != "batch_norm":  # batch norm's channels span the batch
        values[1] = np.arange(12.0).reshape(4, 3)
    weights = np.linspace(-1, 1, values.size).reshape(values.shape)
    # float32: torch's batch/instance norm mean (a plain sum / count) leaves a residue of
    # ~3e-5 where gradwise's is exactly 0 (the test above)
    assert_like_torch(lambda lib, x: _norms(lib)[name](x) * lib.tensor(weights.astype(dtype)),
                      [values], dtype, second=dtype == "float64", rtol=1e-5, atol32=1e-4)


@pytest.mark.parametrize(("shape", "raises"), [((1, 2, 1), True), ((1, 4, 1), False),
                                               ((2, 2, 1), False), ((1, 2, 2), False)])
def test_group_norm_with_one_value_per_group_raises_as_torch(shape, raises):
    x = np.ones(shape)
    with pytest.raises(ValueError) if raises else _nothing():
        TF.group_norm(torch.tensor(x), 2)
    with pytest.raises(ValueError, match="more than 1 value per group") if raises else \
            _nothing():
        F.group_norm(gw.tensor(x), 2)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---- 7. nansum / nanmean: grad * (x is not NaN), so an inf upstream gives NaN at NaN entries
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["nansum", "nanmean"])
@pytest.mark.parametrize(("dim", "keepdim"), [(None, False), (0, False), (1, True)])
@pytest.mark.parametrize("upstream", [1.0, INF, -INF, NAN, 0.0])
def test_nansum_and_nanmean_with_non_finite_upstream(dtype, name, dim, keepdim, upstream):
    values = [[1.0, NAN, 2.0], [NAN, NAN, NAN], [INF, 0.0, -1.0]]

    def reduce(lib, x):
        return getattr(x, name)() if dim is None else getattr(x, name)(dim=dim, keepdim=keepdim)

    assert_like_torch(reduce, [values], dtype, upstream=upstream)


# ---- 8. size-0 dimensions in the matmul family and the layers
SIZES = [0, 1, 2]


@pytest.mark.parametrize(("batch", "features", "out"), list(itertools.product(SIZES, repeat=3)))
def test_linear_with_size_zero_dims(batch, features, out):
    rng = np.random.default_rng(0)
    x, w, b = (rng.normal(size=s) for s in ((batch, features), (out, features), (out,)))
    for fn in (lambda lib, x, w, b: (F if lib is gw else TF).linear(x, w, b),
               lambda lib, x, w, b: (F if lib is gw else TF).linear(x, w) + b,
               lambda lib, x, w, b: x @ w.T + b,
               lambda lib, x, w, b: lib.einsum("...i,oi->...o", x, w) + b):
        assert_like_torch(fn, [x, w, b], "float64")
        assert_like_torch(fn, [x[None], w, b], "float32")


def test_linear_with_no_input_features_has_zero_and_empty_gradients():
    weight, bias = gw.zeros(3, 0, requires_grad=True), gw.zeros(3, requires_grad=True)
    out = F.linear(gw.zeros(4, 0), weight, bias)
    np.testing.assert_array_equal(out.numpy(), np.zeros((4, 3)))
    out.sum().backward()
    assert weight.grad.shape == (3, 0)
    np.testing.assert_array_equal(np.asarray(bias.grad), [4.0, 4.0, 4.0])


@pytest.mark.parametrize(("batch", "c_in", "c_out"),
                         [(b, c, o) for b, c, o in itertools.product(SIZES, repeat=3) if o and c])
def test_conv_with_size_zero_dims(batch, c_in, c_out):
    rng = np.random.default_rng(1)
    x2, w2 = rng.normal(size=(batch, c_in, 3, 3)), rng.normal(size=(c_out, c_in, 2, 2))
    assert_like_torch(lambda lib, x, w: (F if lib is gw else TF).conv2d(x, w), [x2, w2],
                      "float64")
    assert_like_torch(lambda lib, x, w: (F if lib is gw else TF).conv1d(x, w),
                      [x2[..., 0], w2[..., 0]], "float32")


@pytest.mark.parametrize("batch", SIZES)
def test_conv_with_no_input_channels_gives_zeros(batch):
    # torch 2.13 returns (N, 0, Ho, Wo) here, dropping C_out (docs/NUMERICS.md); the sum over
    # no channels is 0 in each of the C_out outputs, as F.linear with no features gives
    x, w = gw.zeros(batch, 0, 3, 3, requires_grad=True), gw.ones(2, 0, 2, 2, requires_grad=True)
    out = F.conv2d(x, w, gw.tensor([1.0, 2.0]))
    np.testing.assert_array_equal(out.numpy(), np.broadcast_to([[[[1.0]], [[2.0]]]],
                                                               (batch, 2, 2, 2)))
    gx, gw_ = gw.autograd.grad(out.sum(), [x, w])
    assert gx.shape == (batch, 0, 3, 3) and gw_.shape == (2, 0, 2, 2)


# ---- 9. anomaly mode: see test_gradcheck_and_anomaly.py (backward only, as torch)
# ---- 11. the documented empty-batch message, for every loss built from others
EMPTY = np.zeros(0)
EMPTY_LOSSES = {
    "mse_loss": (EMPTY, EMPTY), "l1_loss": (EMPTY, EMPTY), "smooth_l1_loss": (EMPTY, EMPTY),
    "huber_loss": (EMPTY, EMPTY), "kl_div": (EMPTY, EMPTY), "soft_margin_loss": (EMPTY, EMPTY),
    "poisson_nll_loss": (EMPTY, EMPTY), "hinge_embedding_loss": (EMPTY, EMPTY),
    "margin_ranking_loss": (EMPTY, EMPTY, EMPTY),
    "multilabel_soft_margin_loss": (np.zeros((0, 3)), np.zeros((0, 3))),
    "triplet_margin_loss": (np.zeros((0, 3)),) * 3,
    "cosine_embedding_loss": (np.zeros((0, 3)), np.zeros((0, 3)), EMPTY),
    "binary_cross_entropy": (EMPTY, EMPTY),
}


@pytest.mark.parametrize("name", sorted(EMPTY_LOSSES))
def test_mean_loss_over_an_empty_batch_gives_the_documented_error(name):
    arrays = [gw.tensor(a) for a in EMPTY_LOSSES[name]]
    with pytest.raises(ValueError, match=f"^{name}: reduction='mean' over an empty batch"):
        getattr(F, name)(*arrays)
    total = getattr(F, name)(*arrays, reduction="sum")
    assert float(total) == 0.0


# ---- the deliberate differences docs/NUMERICS.md lists for this review: each still holds
def _grad_at(lib, fn, value):
    x = lib.tensor([value], dtype=lib.float64, requires_grad=True)
    fn(lib, x).sum().backward()
    return float(x.grad[0])


def test_documented_differences_still_hold():
    # trigamma at a pole: gradwise inf (scipy), torch a finite series value
    assert math.isinf(gw.special.polygamma(1, gw.tensor([-1.0])).item())
    assert math.isfinite(torch.special.polygamma(1, torch.tensor([-1.0])).item())
    # polygamma(2, +inf): gradwise the limit 0, torch NaN
    assert gw.special.polygamma(2, gw.tensor([INF])).item() == 0.0
    assert math.isnan(torch.special.polygamma(2, torch.tensor([INF])).item())
    # a constant float32 row of 1e30: gradwise exactly 0, torch NaN
    row = np.full((1, 3), 1e30, dtype=np.float32)
    np.testing.assert_array_equal(F.layer_norm(gw.tensor(row), (3,)).numpy(), 0.0)
    assert np.isnan(TF.layer_norm(torch.tensor(row), (3,)).numpy()).all()
    # conv2d with no input channels: torch drops C_out from the output's shape
    assert TF.conv2d(torch.zeros(1, 0, 3, 3), torch.zeros(2, 0, 2, 2)).shape == (1, 0, 2, 2)
    assert F.conv2d(gw.zeros(1, 0, 3, 3), gw.zeros(2, 0, 2, 2)).shape == (1, 2, 2, 2)


def _second_at_zero(lib, fn):
    """d/dx sum(g^2) at x = 0 (and 0.5 for a finite neighbour), g the first gradient."""
    x = lib.tensor([0.0, 0.5], dtype=lib.float64, requires_grad=True)
    (g,) = lib.autograd.grad(fn(lib, x).sum(), x, create_graph=True)
    (h,) = lib.autograd.grad((g * g).sum(), x)
    return np.asarray(h.detach())


@pytest.mark.parametrize("fn", [lambda lib, x: lib.atan2(x, x * 0),
                                lambda lib, x: lib.special.sinc(x)], ids=["atan2", "sinc"])
def test_second_derivative_at_the_removable_point_is_the_limit(fn):
    # atan2 at the origin and sinc at 0: gradwise the value of the guarded branch (0), torch
    # NaN from differentiating the guarded-away 0/0 (docs/NUMERICS.md)
    got, want = _second_at_zero(gw, fn), _second_at_zero(torch, fn)
    assert got[0] == 0.0 and math.isnan(want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
