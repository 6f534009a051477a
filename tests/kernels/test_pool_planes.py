"""Max pooling of contiguous NCHW inputs plane by plane (``ops/pool.py``: each (n, c) plane
pooled as a one-channel image) against the same values laid out NHWC (the channels-last passes):
values, gradients and the recorded (create_graph) gradient bit for bit, on ties, NaN, inf, -0.0
and inf/NaN upstream gradients, for tiling geometries with and without leftover rows."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise.nn import functional as F

# (input shape, kernel): windows tile the input, or leave the last rows/columns out
CASES = [((3, 6, 8, 8), 2), ((2, 3, 9, 7), 2), ((2, 2, 9, 9), 3), ((1, 4, 6, 8), (2, 4))]


def _edge_values(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=shape).astype(dtype)  # small integers: many ties
    flat = x.reshape(-1)
    picks = rng.choice(flat.size, size=8, replace=False)
    flat[picks] = [np.nan, np.nan, np.inf, -np.inf, -0.0, 0.0, np.inf, -np.inf]
    return x


def _pool(x_array, kernel, upstream):
    x = gw.from_numpy(x_array).requires_grad_()  # keeps the memory layout
    out = F.max_pool2d(x, kernel)
    assert bool(out.grad_fn.planes) is bool(x_array.flags.c_contiguous)
    (grad,) = gw.autograd.grad(out, [x], gw.from_numpy(upstream), retain_graph=True)
    # the recorded backward (create_graph): a scatter of the same picks
    (graph_grad,) = gw.autograd.grad(out, [x], gw.from_numpy(upstream), create_graph=True)
    return out.numpy(), np.asarray(grad), graph_grad.detach().numpy()


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "kernel"), CASES)
def test_plane_by_plane_max_pool_equals_channels_last_bitwise(jit_path, shape, kernel, dtype):
    x = _edge_values(shape, dtype, seed=len(shape) + shape[1])
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    probe = F.max_pool2d(gw.tensor(x), kernel)
    rng = np.random.default_rng(1)
    upstream = rng.standard_normal(probe.shape).astype(dtype)
    upstream.reshape(-1)[:2] = [np.inf, np.nan]
    planes = _pool(x, kernel, upstream)
    nhwc = _pool(channels_last, kernel, upstream)
    for ours, theirs in zip(planes, nhwc, strict=True):
        assert ours.dtype == theirs.dtype
        ours, theirs = np.ascontiguousarray(ours), np.ascontiguousarray(theirs)
        np.testing.assert_array_equal(ours.view(np.uint8), theirs.view(np.uint8))
