"""The plane-major im2col kernel (``kernels/conv.py::im2col_planes``) against its NumPy reference
(``ops/conv.py::_planes_chunks`` with the kernels off): a copy, so bit for bit, on a grid of
strides, dilations, paddings and chunkings, on edge values (NaN, inf, -0.0, subnormals), batch 0
and 1, float32 and float64; and whole few-channel conv steps agree across both paths."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels import set_jit_enabled
from gradwise.autograd.ops import conv as conv_ops
from gradwise.nn import functional as F

# (input shape (N, C, H, W), kernel, stride, dilation, padding)
CASES = [
    ((5, 3, 12, 11), (5, 5), (1, 1), (1, 1), (0, 0)),  # CIFAR's first layer, small
    ((2, 1, 9, 9), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((3, 4, 10, 9), (3, 2), (2, 1), (1, 1), (1, 2)),
    ((2, 2, 11, 10), (3, 3), (1, 2), (2, 1), (0, 1)),
    ((1, 3, 8, 8), (2, 2), (3, 3), (2, 2), (1, 1)),
    ((0, 3, 8, 8), (3, 3), (1, 1), (1, 1), (0, 0)),  # batch 0
    ((1, 3, 5, 5), (5, 5), (1, 1), (1, 1), (0, 0)),  # kernel as large as the input
]


def _edge_input(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    if flat.size >= 6:
        flat[:6] = [np.nan, np.inf, -np.inf, -0.0, np.finfo(dtype).tiny / 4, 0.0]
        rng.shuffle(flat)
    return x


def _all_chunks(x, kernel, stride, dilation, padding):
    """Every chunk of ``_planes_chunks`` over the padded input, concatenated (copies)."""
    n, c, h, w = x.shape
    out_hw = tuple(
        (size + 2 * p - d * (k - 1) - 1) // s + 1
        for size, k, s, d, p in zip((h, w), kernel, stride, dilation, padding, strict=True)
    )
    x_padded = np.zeros((n, c, h + 2 * padding[0], w + 2 * padding[1]), dtype=x.dtype)
    x_padded[:, :, padding[0]: padding[0] + h, padding[1]: padding[1] + w] = x
    chunks = [cols.copy() for _, _, cols in
              conv_ops._planes_chunks(x_padded, kernel, out_hw, stride, dilation)]
    if not chunks:
        return np.zeros((0,), dtype=x.dtype)
    return np.concatenate(chunks)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "kernel", "stride", "dilation", "padding"), CASES)
def test_im2col_planes_kernel_equals_reference_bitwise(monkeypatch, shape, kernel, stride,
                                                       dilation, padding, dtype, chunked):
    if chunked:  # image by image, the buffer reused
        monkeypatch.setattr(conv_ops, "CHUNK_BYTES", 1)
        monkeypatch.setattr(conv_ops, "_WHOLE_BATCH_BYTES", 0)
    x = _edge_input(shape, dtype)
    results = []
    for jit in (True, False):
        previous = set_jit_enabled(jit)
        try:
            results.append(_all_chunks(x, kernel, stride, dilation, padding))
        finally:
            set_jit_enabled(previous)
    kernel_cols, reference_cols = results
    assert kernel_cols.shape == reference_cols.shape and kernel_cols.dtype == dtype
    # a copy: the same bits, NaN payloads and the sign of zero included
    np.testing.assert_array_equal(kernel_cols.view(f"u{np.dtype(dtype).itemsize}"),
                                  reference_cols.view(f"u{np.dtype(dtype).itemsize}"))


@pytest.mark.parametrize("batch", [1, 6])
def test_few_channel_conv_step_is_the_same_on_both_paths(jit_path, batch):
    # the forward and the weight/bias gradients of a plane-major layer (3 -> 6 channels 5x5),
    # with the kernels on and off: the im2col rows are bit for bit the same, so is all the rest
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 3, 14, 13)).astype(np.float32)
    w = rng.standard_normal((6, 3, 5, 5)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    upstream = None
    results = []
    for jit in (jit_path, not jit_path):
        previous = set_jit_enabled(jit)
        try:
            weight, bias = gw.tensor(w, requires_grad=True), gw.tensor(b, requires_grad=True)
            out = F.conv2d(gw.from_numpy(x), weight, bias)
            assert out.grad_fn.planes
            if upstream is None:
                upstream = rng.standard_normal(out.shape).astype(np.float32)
            out.backward(gw.from_numpy(upstream))
            results.append((out.numpy(), np.asarray(weight.grad), np.asarray(bias.grad)))
        finally:
            set_jit_enabled(previous)
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_array_equal(ours, theirs)
