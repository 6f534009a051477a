"""The fused layer-norm kernels against their NumPy references (within float rounding of the
row sums: left to right in the kernel, pairwise in einsum), with and without weight and bias,
on random, constant, huge, NaN/inf and empty rows; and nn.LayerNorm the same both ways."""

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels import norm as kernels
from gradwise.autograd.kernels._jit import set_jit_enabled


def _rows(rows, size, dtype, kind, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, size)) * 3 + 1).astype(dtype)
    if kind == "edges" and rows >= 4 and size >= 2:
        x[0] = 2.5               # constant row: var 0, xhat 0
        x[1, 0] = np.nan         # NaN spreads over its row
        x[2, 1] = np.inf
        x[3] *= 1e4              # large values
    return x


def _close(got, want, dtype, size):
    # each row sum of D terms rounds ~log2(D) times more in one order than the other
    tolerance = 8 * np.finfo(dtype).eps * max(1.0, np.sqrt(size))
    np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)


CASES = [(0, 4), (1, 1), (3, 0), (4, 2), (16, 64), (5, 1000)]


@pytest.mark.parametrize("rows,size", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("kind", ["random", "edges"])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's warnings on NaN/empty rows
def test_layer_norm_kernels_equal_references(jit_path, rows, size, dtype, affine, kind):
    x = _rows(rows, size, dtype, kind)
    rng = np.random.default_rng(1)
    weight = rng.standard_normal(size).astype(dtype) if affine else None
    bias = rng.standard_normal(size).astype(dtype) if affine else None
    got = kernels.layer_norm_forward(x, weight, bias, 1e-5)
    want = kernels.layer_norm_forward_reference(x, weight, bias, 1e-5)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype and g.shape == w.shape
        _close(g, w, dtype, size)
    grad = rng.standard_normal((rows, size)).astype(dtype)
    _, xhat, invstd = want
    got = kernels.layer_norm_backward(grad, xhat, invstd, weight, True, affine, affine)
    want = kernels.layer_norm_backward_reference(grad, xhat, invstd, weight, True, affine,
                                                 affine)
    for g, w in zip(got, want, strict=True):
        assert (g is None) == (w is None)
        if w is not None:
            assert g.dtype == dtype and g.shape == w.shape
            _close(g, w, dtype, max(size, rows))


def test_layer_norm_module_same_both_ways_and_matches_gradcheck():
    x_data = np.random.default_rng(2).standard_normal((6, 3, 8)).astype(np.float32)
    results = []
    for flag in (True, False):
        previous = set_jit_enabled(flag)
        try:
            norm = gw.nn.LayerNorm((3, 8))
            norm.weight.data = np.linspace(0.5, 1.5, 24, dtype=np.float32).reshape(3, 8)
            x = gw.tensor(x_data, requires_grad=True)
            out = norm(x)
            (out * out).sum().backward()
            results.append([out.numpy(), np.asarray(x.grad), np.asarray(norm.weight.grad),
                            np.asarray(norm.bias.grad)])
        finally:
            set_jit_enabled(previous)
    for got, want in zip(*results, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    previous = set_jit_enabled(True)
    try:
        x = gw.tensor(x_data.astype(np.float64), requires_grad=True)
        w = gw.tensor(np.linspace(0.5, 1.5, 8), requires_grad=True)
        b = gw.tensor(np.zeros(8), requires_grad=True)
        assert gw.autograd.gradcheck(
            lambda x, w, b: gw.nn.functional.layer_norm(x, 8, w, b), x, w, b)
    finally:
        set_jit_enabled(previous)


BN_CASES = [(0, 3, 4), (1, 1, 1), (2, 3, 0), (8, 4, 1), (16, 8, 49), (128, 64, 1)]


@pytest.mark.parametrize("shape", BN_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["random", "edges"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_batch_norm_kernels_equal_references(jit_path, shape, dtype, kind, training):
    rng = np.random.default_rng(3)
    x3 = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    if kind == "edges" and x3.size >= 4:
        x3.reshape(-1)[:3] = np.array([np.nan, np.inf, 0.0], dtype=dtype)
    count = max(shape[0] * shape[2], 1)
    got = kernels.batch_norm_stats(x3)
    want = kernels.batch_norm_stats_reference(x3)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype
        _close(g, w, dtype, count)
    mean, var = want
    invstd = (1.0 / np.sqrt(var + 1e-5)).astype(dtype)
    xhat = ((x3 - mean[:, None]) * invstd[:, None]).astype(dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    scale = (invstd * rng.uniform(0.5, 2.0, shape[1])).astype(dtype)
    got = kernels.batch_norm_backward(grad, xhat, scale, training, True)
    want = kernels.batch_norm_backward_reference(grad, xhat, scale, training, True)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype and g.shape == w.shape
        _close(g, w, dtype, count)


@pytest.mark.parametrize("module", ["BatchNorm1d", "BatchNorm2d"])
def test_batch_norm_module_same_both_ways(module):
    shape = (8, 3) if module == "BatchNorm1d" else (4, 3, 5, 5)
    data = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    results = []
    for flag in (True, False):
        previous = set_jit_enabled(flag)
        try:
            norm = getattr(gw.nn, module)(3)
            x = gw.tensor(data, requires_grad=True)
            out = norm(x)
            (out * out * out).sum().backward()
            results.append([out.numpy(), np.asarray(x.grad), np.asarray(norm.weight.grad),
                            np.asarray(norm.bias.grad), np.asarray(norm.running_mean),
                            np.asarray(norm.running_var)])
        finally:
            set_jit_enabled(previous)
    for got, want in zip(*results, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
