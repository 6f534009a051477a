"""backward() lets go of each intermediate gradient once the node that consumes it has run.

A gradient array kept alive past its use makes the allocator map a fresh block for the next one
instead of reusing it: the backward loop kept the last multi-input node's gradients in a
leftover local list through every single-input node after it, and the CNN step of
benchmarks/step_vs_revision.py page-faulted ~2,100 times per step (24.4 ms; 0.6 faults and
20.7 ms once released; issue 14, branch kernels-mlp2)."""

import gc
import weakref

import numpy as np
import pytest

import gradwise as gw


def _chain(dtype, single_ops):
    rng = np.random.default_rng(0)
    x = gw.tensor(rng.standard_normal((16, 8)).astype(dtype), requires_grad=True)
    w = gw.tensor(rng.standard_normal((8, 8)).astype(dtype), requires_grad=True)
    h = x
    tensors = []
    for op in single_ops:
        h = op(h)
        tensors.append(h)
    out = h @ w  # a two-input node first in the backward walk, then the single-input ones
    return x, w, tensors, out


SINGLE_OPS = {
    "exp, tanh, sin": (lambda t: t.exp(), lambda t: t.tanh(), lambda t: t.sin()),
    "relu, neg, sigmoid": (lambda t: t.relu(), lambda t: -t, lambda t: t.sigmoid()),
}


@pytest.mark.parametrize("ops", sorted(SINGLE_OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_freed_after_its_consumer_ran(ops, dtype):
    gc.disable()  # only reference counting may free the arrays: what the allocator sees
    try:
        x, w, (h1, _, h3), out = _chain(dtype, SINGLE_OPS[ops])
        seen = {}

        def remember(grad):  # dL/dh3, handed over by the matmul's backward
            seen["h3"] = weakref.ref(grad._data)

        def check(grad):  # dL/dh1: two single-input nodes later
            seen["alive at h1"] = seen["h3"]() is not None

        h3.register_hook(remember)
        h1.register_hook(check)
        out.sum().backward()
        assert seen["alive at h1"] is False
        assert x.grad is not None and w.grad is not None
    finally:
        gc.enable()
