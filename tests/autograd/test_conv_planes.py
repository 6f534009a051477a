"""conv2d's plane-major path (few input and output channels: a first layer such as CIFAR's).

``ops/conv.py::_planes_pay`` routes such layers to ``W @ cols^T`` per image on NCHW memory
instead of the NHWC ``cols @ W``; values and the input, weight and bias gradients must equal
PyTorch's and the NHWC path's (within float rounding: the products sum in another order) on a
grid of channel counts and geometries, one pass and chunk by chunk, and on edge inputs (batch 0
and 1, zeros, inf, NaN).
"""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.ops import conv as conv_ops
from gradwise.nn import functional as F
from helpers import torch

# (c_in, c_out): CIFAR's 3 -> 6, the limits (4 -> 8), single channels, a widened width (3)
CHANNELS = [(1, 1), (3, 6), (4, 8), (2, 3)]
# (kernel, stride, padding, dilation, input H, W)
GEOMETRIES = [
    ((5, 5), 1, 0, 1, (9, 8)),
    ((3, 3), 1, 1, 1, (6, 6)),  # "same": the centre offset covers all of dx
    ((3, 2), (2, 1), (1, 2), 1, (7, 6)),
    ((3, 3), 1, 2, 2, (7, 7)),
    ((2, 2), 3, 1, (2, 1), (8, 7)),  # stride 3 leaves rows unread
]


def _conv(x, w, b, geometry, x_grad=False):
    """gradwise conv2d and its gradients for the upstream ``cos(out)``: (out, dx or None, dW,
    db or None), and whether the plane-major path ran."""
    kernel, stride, padding, dilation, _ = geometry
    data = gw.tensor(x, requires_grad=True) if x_grad else gw.from_numpy(x)
    weight = gw.tensor(w, requires_grad=True)
    bias = gw.tensor(b, requires_grad=True) if b is not None else None
    out = F.conv2d(data, weight, bias, stride=stride, padding=padding, dilation=dilation)
    took_planes = bool(out.grad_fn.planes)
    with np.errstate(invalid="ignore"):  # cos(inf) is NaN, as on torch's side
        upstream = np.cos(out.numpy())
    out.backward(gw.from_numpy(upstream))
    grads = [np.asarray(t.grad) if t is not None and t.requires_grad else None
             for t in (data, weight, bias)]
    return [out.numpy(), *grads], took_planes


def _torch_conv(x, w, b, geometry, x_grad=False):
    kernel, stride, padding, dilation, _ = geometry
    data = torch.tensor(x, requires_grad=x_grad)
    weight = torch.tensor(w, requires_grad=True)
    bias = torch.tensor(b, requires_grad=True) if b is not None else None
    out = torch.nn.functional.conv2d(data, weight, bias, stride=stride, padding=padding,
                                     dilation=dilation)
    out.backward(torch.cos(out.detach()))
    grads = [t.grad.numpy() if t is not None and t.requires_grad else None
             for t in (data, weight, bias)]
    return [out.detach().numpy(), *grads]


def _inputs(n, c_in, c_out, geometry, dtype=np.float64, seed=0):
    kernel, *_, (h, w) = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, h, w)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in, *kernel)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype)
    return x, weight, bias


def _assert_same(ours, theirs, rtol, atol, scaled=False):
    """Equal shapes and dtypes, values within rtol/atol (``scaled``: atol times the largest
    finite magnitude, for sums whose terms cancel); NaN where the other has NaN."""
    for a, b in zip(ours, theirs, strict=True):
        if b is None:
            assert a is None
            continue
        assert a.shape == b.shape and a.dtype == b.dtype
        finite = np.abs(b[np.isfinite(b)])
        bound = atol * (finite.max() if scaled and finite.size else 1.0)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=bound, equal_nan=True)


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize(("with_bias", "x_grad"), [(True, False), (False, False), (True, True)])
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize(("c_in", "c_out"), CHANNELS)
def test_planes_path_matches_torch(monkeypatch, c_in, c_out, geometry, with_bias, x_grad,
                                   chunked):
    pytest.importorskip("torch")
    if chunked:  # image by image, im2col rebuilt in the backward
        monkeypatch.setattr(conv_ops, "CHUNK_BYTES", 1)
        monkeypatch.setattr(conv_ops, "_WHOLE_BATCH_BYTES", 0)
    x, w, b = _inputs(3, c_in, c_out, geometry)
    b = b if with_bias else None
    ours, took_planes = _conv(x, w, b, geometry, x_grad)
    assert took_planes
    _assert_same(ours, _torch_conv(x, w, b, geometry, x_grad), rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("x_grad", [False, True])
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize(("c_in", "c_out"), CHANNELS)
def test_planes_path_matches_the_nhwc_path_in_float32(monkeypatch, c_in, c_out, geometry,
                                                      x_grad):
    # the two layouts sum the products in different orders: float32 rounding apart, no more
    x, w, b = _inputs(5, c_in, c_out, geometry, dtype=np.float32, seed=1)
    planes, took_planes = _conv(x, w, b, geometry, x_grad)
    assert took_planes
    monkeypatch.setattr(conv_ops, "_planes_pay", lambda *args: False)
    nhwc, took_planes = _conv(x, w, b, geometry, x_grad)
    assert not took_planes
    _assert_same(planes, nhwc, rtol=1e-5, atol=1e-5, scaled=True)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf * 0
@pytest.mark.parametrize("x_grad", [False, True])
@pytest.mark.parametrize("fill", ["zeros", "inf", "nan", "batch0", "batch1"])
def test_planes_path_edge_inputs_match_torch(fill, x_grad):
    pytest.importorskip("torch")
    geometry = GEOMETRIES[1]
    n = {"batch0": 0, "batch1": 1}.get(fill, 2)
    x, w, b = _inputs(n, 3, 6, geometry)
    if fill == "zeros":
        x[:] = 0.0
    elif fill in ("inf", "nan"):
        x[0, 1, 2, 3] = np.inf if fill == "inf" else np.nan
        x[1, 0, 0, 0] = -np.inf if fill == "inf" else np.nan
    ours, took_planes = _conv(x, w, b, geometry, x_grad)
    assert took_planes
    _assert_same(ours, _torch_conv(x, w, b, geometry, x_grad), rtol=1e-10, atol=1e-11)


def test_planes_path_keeps_float16_and_agrees_with_the_nhwc_path(monkeypatch):
    x, w, b = _inputs(2, 3, 6, GEOMETRIES[0], dtype=np.float16)
    planes, took_planes = _conv(x, w, b, GEOMETRIES[0], x_grad=True)
    assert took_planes and all(a.dtype == np.float16 for a in planes)
    monkeypatch.setattr(conv_ops, "_planes_pay", lambda *args: False)
    nhwc, _ = _conv(x, w, b, GEOMETRIES[0], x_grad=True)
    _assert_same([a.astype(np.float32) for a in planes], [a.astype(np.float32) for a in nhwc],
                 rtol=2e-2, atol=1e-2, scaled=True)


@pytest.mark.parametrize(("c_in", "c_out", "expected"),
                         [(3, 6, True), (4, 8, True), (5, 6, False), (3, 9, False)])
def test_the_layout_depends_on_the_channel_counts_only(c_in, c_out, expected):
    # not on grad mode or on whether the input needs a gradient: a no_grad forward must give
    # the recorded forward's bits (tests/kernels/test_inference_path.py relies on it)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, c_in, 8, 8)).astype(np.float32)
    w = gw.tensor(rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32),
                  requires_grad=True)
    outs = []
    for x_grad in (False, True):
        out = F.conv2d(gw.tensor(x, requires_grad=x_grad), w)
        assert bool(out.grad_fn.planes) is expected
        outs.append(out.numpy())
    with gw.no_grad():
        outs.append(F.conv2d(gw.from_numpy(x), w).numpy())
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


def test_planes_path_second_derivative_matches_the_nhwc_path(monkeypatch):
    # create_graph differentiates the recorded backward (backward_graph), not the planes code;
    # first and second derivatives must agree with the NHWC path's
    x, w, b = _inputs(2, 3, 4, GEOMETRIES[1])
    results = []
    for planes in (True, False):
        if not planes:
            monkeypatch.setattr(conv_ops, "_planes_pay", lambda *args: False)
        weight = gw.tensor(w, requires_grad=True)
        out = F.conv2d(gw.from_numpy(x), weight, gw.tensor(b), padding=1)
        (grad_w,) = gw.autograd.grad((out * out).sum(), [weight], create_graph=True)
        (grad2,) = gw.autograd.grad((grad_w * grad_w).sum(), [weight])
        results.append((grad_w.detach().numpy(), np.asarray(grad2)))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)
