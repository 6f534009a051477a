"""The fused softmax / log-softmax kernels against their NumPy references (within float
rounding: libm exp/log, row sums over SIMD lanes), on random and edge rows (NaN, +-inf, all
-inf, uniform, empty), and F.softmax / F.log_softmax the same both ways, values and gradients."""

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels import softmax as kernels
from gradwise.autograd.kernels._jit import set_jit_enabled


def _rows(rows, size, dtype, edges, seed=0):
    x = (np.random.default_rng(seed).standard_normal((rows, size)) * 5).astype(dtype)
    if edges and rows >= 5 and size >= 2:
        x[0, 0] = np.nan
        x[1, 1] = np.inf
        x[2, :] = -np.inf
        x[3, :] = 7.0
        x[4, 0] = -np.inf
    return x


CASES = [(0, 3), (1, 1), (2, 0), (5, 2), (128, 10), (7, 1000)]


@pytest.mark.parametrize("rows,size", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("edges", [False, True], ids=["random", "edges"])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_softmax_kernels_equal_references(jit_path, rows, size, dtype, log, edges):
    x = _rows(rows, size, dtype, edges)
    got = kernels.softmax_forward(x, log=log)
    want = (kernels.log_softmax_forward_reference(x) if log
            else kernels.softmax_forward_reference(x))
    finite = np.abs(x[np.isfinite(x)])
    magnitude = max(1.0, 2 * float(finite.max())) if finite.size else 1.0
    tolerance = 8 * np.finfo(dtype).eps
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance * magnitude)
    grad = _rows(rows, size, dtype, False, seed=1)
    out = np.where(np.isfinite(want), want, 0).astype(dtype)  # a finite output to push back
    got = kernels.softmax_backward(grad, out, log=log)
    want = (kernels.log_softmax_backward_reference(grad, out) if log
            else kernels.softmax_backward_reference(grad, out))
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=tolerance * max(1, np.sqrt(size)),
                               atol=tolerance * magnitude * max(1, np.sqrt(size)))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [-1, 0])
def test_functional_softmax_same_both_ways(name, dim):
    data = _rows(6, 9, np.float32, False)
    results = []
    for flag in (True, False):
        previous = set_jit_enabled(flag)
        try:
            x = gw.tensor(data, requires_grad=True)
            out = getattr(gw.nn.functional, name)(x, dim=dim)
            (out * gw.tensor(np.linspace(-1, 1, 54, dtype=np.float32).reshape(6, 9))).sum() \
                .backward()
            results.append((out.numpy(), np.asarray(x.grad)))
        finally:
            set_jit_enabled(previous)
    for got, want in zip(*results, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
