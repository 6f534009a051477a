"""Convolution and pooling: the numba kernels against their NumPy references.

Every case runs the op twice, kernels on (``set_jit_enabled(True)``) and off (the NumPy
references), on the same inputs and output gradient, and compares values and every gradient:
bit for bit (both sum in the same order; the matrix products get the very same matrices). Inputs
carry the edge values: 0, -0.0, +-inf, NaN, ties.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels import _jit
from gradwise.autograd.ops import conv as conv_ops
from gradwise.autograd.ops import pool as pool_ops
from gradwise.nn import functional as F

pytestmark = [
    pytest.mark.skipif(_jit._numba is None, reason="numba is not installed"),
    pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning"),  # the planted inf and NaN
]


@pytest.fixture(autouse=True)
def _kernels_for_any_channel_count(monkeypatch):
    # the op leaves inputs with few channels to NumPy; these tests compare the kernel itself
    monkeypatch.setattr(pool_ops, "MAX_POOL_KERNEL_MIN_CHANNELS", 1)


def _edge_input(shape, dtype, seed=0, ties=False):
    """Random values (or small integers, full of ties) with 0, -0.0, +-inf and NaN planted."""
    rng = np.random.default_rng(seed)
    if ties:
        x = rng.integers(-1, 2, size=shape).astype(dtype)
    else:
        x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=dtype)
    # spread the specials so that some windows hold one and most do not
    places = rng.choice(flat.size, size=min(flat.size, specials.size), replace=False)
    flat[places] = specials[: places.size]
    return x


def _both_paths(fn, arrays, seed=1):
    """Run ``fn`` on Tensors of ``arrays`` with the kernels on, then off: [(out, grads...)]x2."""
    results = []
    for enabled in (True, False):
        previous = _jit.set_jit_enabled(enabled)
        try:
            tensors = [gw.tensor(a, requires_grad=True) for a in arrays]
            out = fn(*tensors)
            grad = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
            out.backward(gw.tensor(grad))
            results.append([np.asarray(out.detach()._data)]
                           + [np.asarray(t.grad) if t.grad is not None else None
                              for t in tensors])
        finally:
            _jit.set_jit_enabled(previous)
    return results


def _assert_same(kernel_result, reference_result):
    for got, want in zip(kernel_result, reference_result, strict=True):
        assert (got is None) == (want is None)
        if got is not None:
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)


# (kernel, stride, padding): square and not, tiling, overlapping, gaps between windows
POOL_GEOMETRIES = [
    (1, 1, 0),
    (2, 2, 0),
    (2, 1, 0),
    (2, 2, 1),
    (3, 1, 1),
    (3, 2, 1),
    (3, 3, 0),
    ((2, 3), (1, 2), (1, 1)),
    ((3, 2), (3, 2), 0),
]
POOL_SHAPES = [(0, 2, 6, 6), (1, 1, 3, 4), (2, 3, 7, 6)]


@pytest.mark.parametrize(("kernel", "stride", "padding"), POOL_GEOMETRIES)
@pytest.mark.parametrize("shape", POOL_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True], ids=["random", "ties"])
def test_max_pool_kernel_equals_reference_bitwise(kernel, stride, padding, shape, dtype, ties):
    x = _edge_input(shape, dtype, ties=ties)
    results = _both_paths(lambda t: F.max_pool2d(t, kernel, stride, padding), [x])
    _assert_same(*results)


@pytest.mark.parametrize(("kernel", "stride", "padding"), POOL_GEOMETRIES)
@pytest.mark.parametrize("shape", POOL_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool_kernel_equals_reference_bitwise(kernel, stride, padding, shape, dtype):
    x = _edge_input(shape, dtype)
    results = _both_paths(lambda t: F.avg_pool2d(t, kernel, stride, padding), [x])
    _assert_same(*results)


def test_max_pool_routes_few_channels_to_numpy_and_many_to_the_kernel(monkeypatch):
    monkeypatch.setattr(pool_ops, "MAX_POOL_KERNEL_MIN_CHANNELS", 4)
    previous = _jit.set_jit_enabled(True)
    try:
        for channels, kernel_path in [(3, False), (4, True)]:
            x = gw.tensor(np.ones((1, channels, 4, 4), dtype=np.float32), requires_grad=True)
            out = F.max_pool2d(x, 2)
            assert (out.grad_fn.kernel_choice is not None) == kernel_path
    finally:
        _jit.set_jit_enabled(previous)


def test_max_pool_kernel_picks_like_torch_on_all_minus_inf_and_nan_windows():
    # a window of -inf beside padding, a window whose NaN comes after its maximum, two NaNs
    x = np.array([[[[-np.inf, -np.inf, 1.0, np.nan],
                    [-np.inf, -np.inf, 5.0, 2.0],
                    [np.nan, 3.0, 0.0, 0.0],
                    [1.0, np.nan, 0.0, 0.0]]]], dtype=np.float32)
    for kernel, stride, padding in [(2, 2, 0), (3, 2, 1), (2, 1, 1)]:
        kernel_result, reference = _both_paths(
            lambda t, k=kernel, s=stride, p=padding: F.max_pool2d(t, k, s, p), [x]
        )
        _assert_same(kernel_result, reference)


# (input shape, weight shape, stride, padding, dilation)
CONV_GEOMETRIES = [
    ((2, 1, 6, 6), (4, 1, 3, 3), 1, 1, 1),
    ((2, 3, 7, 5), (5, 3, 5, 5), 1, 2, 1),
    ((1, 3, 8, 7), (2, 3, 3, 3), (3, 2), (1, 0), (2, 1)),
    ((3, 4, 5, 6), (6, 4, 3, 3), 1, 1, 1),
    ((2, 5, 6, 5), (2, 5, 2, 3), (2, 1), (1, 2), 1),
    ((1, 4, 7, 6), (3, 4, 3, 2), 1, 2, 2),
    ((1, 6, 2, 2), (3, 6, 3, 3), 2, 1, 1),  # kernel row/column 0 only ever sees padding
    ((2, 8, 4, 4), (3, 8, 1, 1), 1, 0, 1),
    ((0, 4, 5, 5), (2, 4, 3, 3), 1, 1, 1),  # empty batch
    ((0, 1, 5, 5), (2, 1, 3, 3), 1, 1, 1),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding", "dilation"),
                         CONV_GEOMETRIES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_kernels_equal_reference(x_shape, w_shape, stride, padding, dilation, dtype, bias):
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(x_shape).astype(dtype),
              rng.standard_normal(w_shape).astype(dtype)]
    if bias:
        arrays.append(rng.standard_normal(w_shape[0]).astype(dtype))

    def conv(x, weight, b=None):
        return F.conv2d(x, weight, b, stride=stride, padding=padding, dilation=dilation)

    _assert_same(*_both_paths(conv, arrays))


@pytest.mark.parametrize("channels", [1, 5])
def test_conv_kernels_propagate_inf_and_nan_like_reference(channels):
    x = _edge_input((2, channels, 6, 6), np.float32)
    weight = np.random.default_rng(3).standard_normal((3, channels, 3, 3)).astype(np.float32)
    _assert_same(*_both_paths(lambda a, w: F.conv2d(a, w, padding=1), [x, weight]))


def test_conv_in_chunks_equals_reference(monkeypatch):
    # a tiny chunk size makes col2im run image by image
    monkeypatch.setattr(conv_ops, "CHUNK_BYTES", 1)
    monkeypatch.setattr(conv_ops, "_WHOLE_BATCH_BYTES", 0)
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal((3, 4, 6, 6)).astype(np.float32),
              rng.standard_normal((5, 4, 3, 3)).astype(np.float32),
              rng.standard_normal(5).astype(np.float32)]
    _assert_same(*_both_paths(lambda x, w, b: F.conv2d(x, w, b, padding=1), arrays))
