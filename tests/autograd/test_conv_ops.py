"""conv2d, max_pool2d, avg_pool2d: gradcheck in float64, values and gradients against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels import jit_enabled
from gradwise.autograd.ops import conv as conv_ops
from gradwise.nn import functional as F
from helpers import check_op, torch

T = torch  # None without PyTorch: check_op then runs gradcheck only

# (input shape, weight shape, bias, stride, padding, dilation)
CONV_CASES = [
    ((2, 3, 5, 6), (4, 3, 3, 3), True, 1, 0, 1),
    ((1, 1, 7, 7), (2, 1, 3, 3), True, 2, 1, 1),
    ((2, 3, 6, 5), (2, 3, 2, 3), False, (2, 1), (1, 2), 1),  # non-square kernel, pair args
    ((1, 2, 7, 6), (3, 2, 3, 2), True, 1, 2, 2),  # dilation, padding 2
    ((2, 1, 5, 5), (3, 1, 1, 1), True, 1, 0, 1),  # 1x1 kernel
    ((1, 3, 8, 7), (2, 3, 3, 3), True, 3, 1, (2, 1)),  # stride 3 leaves rows unread
    ((1, 2, 4, 4), (2, 2, 4, 4), True, 1, 0, 1),  # kernel as large as the input
    ((1, 2, 2, 2), (3, 2, 3, 3), True, 2, 1, 1),  # kernel row/column 0 only ever sees padding
    ((2, 3, 5, 4), (2, 3, 3, 3), True, 1, 1, 1),  # "same": the centre offset covers all of dx
]


def _conv_fns(bias: bool, stride, padding, dilation):
    def gw_fn(x, w, b=None):
        return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)

    def torch_fn(x, w, b=None):
        return T.nn.functional.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)

    return gw_fn, torch_fn if T is not None else None


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "bias", "stride", "padding", "dilation"), CONV_CASES
)
def test_conv2d_matches_torch(x_shape, w_shape, bias, stride, padding, dilation):
    gw_fn, torch_fn = _conv_fns(bias, stride, padding, dilation)
    shapes = [x_shape, w_shape] + ([(w_shape[0],)] if bias else [])
    check_op(gw_fn, torch_fn, shapes, atol=1e-9, rtol=1e-7)


def test_conv2d_in_chunks_matches_one_pass(monkeypatch):
    # a tiny chunk size makes forward and backward run image by image
    monkeypatch.setattr(conv_ops, "CHUNK_BYTES", 1)
    monkeypatch.setattr(conv_ops, "_WHOLE_BATCH_BYTES", 0)
    gw_fn, torch_fn = _conv_fns(True, 1, 1, 1)
    check_op(gw_fn, torch_fn, [(3, 2, 5, 5), (4, 2, 3, 3), (4,)], atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("c_out", [1, 2, 3, 4, 5, 6, 7, 8, 12])  # 3 and 5-7 are widened
@pytest.mark.parametrize("chunked", [False, True])
def test_conv2d_every_output_width_matches_torch(monkeypatch, c_out, chunked):
    # the products run with zero columns added for 3 and 5-7 output channels (_gemm_width);
    # the values and all three gradients must not notice, in one pass and chunk by chunk
    assert conv_ops._gemm_width(c_out) >= c_out
    if chunked:
        monkeypatch.setattr(conv_ops, "CHUNK_BYTES", 1)
        monkeypatch.setattr(conv_ops, "_WHOLE_BATCH_BYTES", 0)
    gw_fn, torch_fn = _conv_fns(True, 1, 1, 1)
    check_op(gw_fn, torch_fn, [(3, 2, 5, 4), (c_out, 2, 3, 3), (c_out,)], atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("layout", ["nchw", "nhwc", "strided"])
def test_conv2d_first_layer_input_layouts_give_the_same_values(layout):
    # im2col reads a contiguous NHWC copy of whatever layout arrives; every layout must give
    # the same numbers bit for bit (float32, 3 channels 5x5 as a CIFAR first layer)
    rng = np.random.default_rng(0)
    nchw = rng.standard_normal((4, 3, 12, 12), dtype=np.float32)
    arrays = {"nchw": nchw, "nhwc": np.ascontiguousarray(nchw.transpose(0, 2, 3, 1)).transpose(
        0, 3, 1, 2), "strided": np.repeat(nchw, 2, axis=3)[:, :, :, ::2]}
    weight = gw.tensor(rng.standard_normal((6, 3, 5, 5), dtype=np.float32), requires_grad=True)
    outs, grads = [], []
    for data in (nchw, arrays[layout]):
        out = F.conv2d(gw.from_numpy(data), weight)  # keeps the layout
        out.sum().backward()
        outs.append(out.numpy())
        grads.append(np.asarray(weight.grad).copy())
        weight.grad = None
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(grads[0], grads[1])


# (kernel_size, stride, padding, input shape)
POOL_CASES = [
    (2, None, 0, (2, 3, 6, 6)),
    (2, None, 0, (1, 2, 7, 5)),  # odd sizes: the last row and column are dropped
    (3, 1, 1, (1, 2, 5, 5)),  # overlapping windows
    (3, 2, 1, (2, 1, 7, 6)),
    (3, 3, 0, (1, 3, 9, 8)),
    ((2, 3), (1, 2), (1, 1), (1, 2, 5, 7)),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("kernel", "stride", "padding", "shape"), POOL_CASES)
def test_pool2d_matches_torch(kind, kernel, stride, padding, shape):
    gw_pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    torch_fn = None
    if T is not None:
        t_pool = T.nn.functional.max_pool2d if kind == "max" else T.nn.functional.avg_pool2d

        def torch_fn(x):
            return t_pool(x, kernel, stride, padding)

    # random normal inputs have no exact ties, where PyTorch's routing is an implementation detail
    check_op(lambda x: gw_pool(x, kernel, stride, padding), torch_fn, [shape])


def test_small_cnn_matches_torch():
    """conv -> relu -> pool -> conv -> avg pool -> linear, the layouts the ops hand each other."""

    def gw_fn(x, w1, b1, w2, wl):
        h = F.max_pool2d(F.relu(F.conv2d(x, w1, b1, padding=1)), 2)
        h = F.avg_pool2d(F.conv2d(h, w2, stride=1, padding=1), 2)
        return F.linear(h.reshape(h.shape[0], -1), wl)

    def torch_fn(x, w1, b1, w2, wl):
        f = T.nn.functional
        h = f.max_pool2d(f.relu(f.conv2d(x, w1, b1, padding=1)), 2)
        h = f.avg_pool2d(f.conv2d(h, w2, stride=1, padding=1), 2)
        return f.linear(h.reshape(h.shape[0], -1), wl)

    shapes = [(2, 1, 8, 8), (3, 1, 3, 3), (3,), (4, 3, 3, 3), (5, 16)]
    check_op(gw_fn, torch_fn if T is not None else None, shapes, atol=1e-9, rtol=1e-7)


def test_conv2d_skips_the_input_gradient_when_not_needed():
    rng = np.random.default_rng(0)
    x = gw.tensor(rng.standard_normal((2, 1, 6, 6)).astype(np.float32))
    w = gw.tensor(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), requires_grad=True)
    out = F.conv2d(x, w, padding=1)
    assert out.grad_fn.needs_input_grad == (False, True)
    out.sum().backward()
    assert x.grad is None
    assert w.grad.shape == w.shape


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    x = gw.tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    w = gw.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    b = gw.zeros(4, requires_grad=True)
    out = F.avg_pool2d(F.max_pool2d(F.conv2d(x, w, b, padding=1), 2), 3, 1, 1)
    out.sum().backward()
    assert out.dtype == np.float32
    assert {t.grad.dtype for t in (x, w, b)} == {np.dtype(np.float32)}


@pytest.mark.parametrize(
    ("kernel", "stride", "expected"),
    [
        # one 2x2 window of equal values: everything goes to its top-left element
        (2, 2, [[1, 0], [0, 0]]),
        # overlapping 2x2 windows, stride 1: each window routes to its own top-left element
        (2, 1, [[1, 0], [0, 0]]),
    ],
)
def test_max_pool_ties_route_to_the_first_maximum(kernel, stride, expected):
    x = gw.ones(1, 1, 2, 2, requires_grad=True)
    F.max_pool2d(x, kernel, stride).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], expected)


def _reference_max_pool_grad(x: np.ndarray, kernel, stride) -> np.ndarray:
    """d(sum of max_pool2d)/dx by loops: each window's 1 goes to its first maximum (row-major)."""
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x.shape
    grad = np.zeros_like(x)
    for b in range(n):
        for ch in range(c):
            for y in range(0, h - kh + 1, sh):
                for xx in range(0, w - kw + 1, sw):
                    i, j = divmod(int(np.argmax(x[b, ch, y : y + kh, xx : xx + kw])), kw)
                    grad[b, ch, y + i, xx + j] += 1
    return grad


@pytest.mark.parametrize(
    ("kernel", "stride", "shape", "tiled"),
    [
        ((2, 2), (2, 2), (2, 3, 6, 8), True),  # kernel == stride: the tiled fast path
        ((2, 2), (2, 2), (1, 2, 7, 5), True),  # fast path, last row and column in no window
        ((3, 2), (3, 2), (1, 2, 9, 6), True),  # fast path, non-square
        ((2, 2), (1, 1), (1, 2, 5, 5), False),  # overlapping windows: the general path
        ((2, 3), (3, 3), (1, 2, 6, 9), False),  # stride != kernel: the general path
    ],
)
def test_max_pool_routes_ties_to_the_first_maximum_on_both_paths(kernel, stride, shape, tiled):
    # values in {0, 1, 2}: most windows hold ties, in every arrangement
    x_data = np.random.default_rng(1).integers(0, 3, size=shape).astype(np.float32)
    x = gw.tensor(x_data, requires_grad=True)
    out = F.max_pool2d(x, kernel, stride)
    if not jit_enabled():  # the numba kernel has one path for every geometry
        assert (out.grad_fn.argmax is not None) == tiled
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, _reference_max_pool_grad(x_data, kernel, stride))
    if T is not None:
        t_x = T.tensor(x_data, requires_grad=True)
        T.nn.functional.max_pool2d(t_x, kernel, stride).sum().backward()
        np.testing.assert_array_equal(x.grad, t_x.grad.numpy())


def test_max_pool_fast_path_reads_channels_first_memory_too():
    # a plain NCHW array (not the NHWC view a conv returns) takes the same path, same answer;
    # under no_grad the path skips the argmax and returns the same values
    x_data = np.random.default_rng(2).standard_normal((2, 3, 4, 6))
    x = gw.tensor(x_data, requires_grad=True)
    out = F.max_pool2d(x, 2)
    expected = x_data.reshape(2, 3, 2, 2, 3, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(out.data, expected)
    with gw.no_grad():
        np.testing.assert_array_equal(F.max_pool2d(x, 2).data, expected)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, _reference_max_pool_grad(x_data, (2, 2), (2, 2)))


def test_max_pool_tie_in_a_row_picks_the_leftmost():
    x = gw.tensor([[[[0.0, 5.0, 5.0], [5.0, 1.0, 2.0], [3.0, 4.0, 0.0]]]], requires_grad=True)
    F.max_pool2d(x, 3).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[0, 1, 0], [0, 0, 0], [0, 0, 0]])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: F.conv2d(gw.ones(28, 28), gw.ones(8, 3, 3, 3)),  # (3, 28, 28) is unbatched
         r"conv2d: expected a 4-D input \(N, C, H, W\), got shape \(28, 28\)"),
        (lambda: F.conv2d(gw.ones(2, 3, 8, 8), gw.ones(8, 1, 3, 3)),
         r"conv2d: input has 3 channels but weight expects 1 \(weight shape \(8, 1, 3, 3\)\)"),
        (lambda: F.conv2d(gw.ones(1, 1, 4, 4), gw.ones(2, 1, 7, 7), padding=1),
         r"conv2d: kernel \(7, 7\) is larger than the padded input \(6, 6\)"),
        (lambda: F.conv2d(gw.ones(1, 1, 5, 5), gw.ones(2, 1, 3, 3), dilation=3),
         r"conv2d: kernel \(3, 3\) \(dilated to \(7, 7\)\) is larger"),
        (lambda: F.conv2d(gw.ones(1, 1, 5, 5), gw.ones(2, 1, 3, 3), gw.ones(3)),
         r"conv2d: bias of shape \(3,\) does not fit weight \(2, 1, 3, 3\)"),
        (lambda: F.conv2d(gw.ones(1, 1, 5, 5), gw.ones(2, 1, 3)),
         r"conv2d: weight must be 4-D"),
        (lambda: F.conv2d(gw.ones(1, 1, 5, 5), gw.ones(2, 1, 3, 3), stride=0),
         r"conv2d: stride must be at least 1, got 0"),
        (lambda: F.conv2d(gw.ones(1, 1, 5, 5), gw.ones(2, 1, 3, 3), padding=(1, 2, 3)),
         r"conv2d: padding must be an int or a pair of ints"),
        (lambda: F.conv2d(gw.ones(1, 1, 5, 5), gw.ones(2, 1, 3, 3, dtype=np.float64)),
         r"conv2d: input dtype float32 and weight dtype float64 differ"),
        (lambda: F.max_pool2d(gw.ones(5, 5), 2),  # (C, H, W) is torch's unbatched input
         r"max_pool2d: expected input of shape \(N, C, H, W\) or \(C, H, W\)"),
        (lambda: F.max_pool2d(gw.ones(1, 1, 5, 5), 2, padding=2),
         r"max_pool2d: pad should be at most half of effective kernel size, but got "
         r"padding=\(2, 2\) for kernel_size=\(2, 2\)"),
        (lambda: F.avg_pool2d(gw.ones(1, 1, 2, 2), 3),
         r"avg_pool2d: input size \(2, 2\) gives output size \(0, 0\): Output size is too "
         r"small"),
        (lambda: F.avg_pool2d(gw.ones(1, 1, 4, 4), 2, stride=-1),
         r"avg_pool2d: stride must be at least 1, got -1"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
