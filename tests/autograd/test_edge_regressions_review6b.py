"""The fourth newcomer review's engine reports (issue 12, edges-fix6b), each compared with torch
2.13 on the reported case and a small grid of its family: gradcheck/gradgradcheck on non-leaf
inputs and existing ``.grad``; functional vjp/jvp/vhp/hvp with tuple outputs; create_graph
gradients of pooling, padding, upsampling and fold that require grad where torch's do; the
exception types of the autograd API's argument errors and of anomaly detection."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")


def _input(lib, kind):
    """A float64 input of ``kind`` built the same way in torch and gradwise; returns it and the
    leaf behind it (whose .grad must survive)."""
    values = [0.3, -0.7, 1.1]
    if kind == "float32 leaf .double()":
        leaf = lib.tensor(values, requires_grad=True)
        return leaf.double(), leaf
    leaf = lib.tensor(values, dtype=lib.float64, requires_grad=True)
    if kind == "leaf":
        return leaf, leaf
    if kind == "leaf with .grad":
        (leaf * 5).sum().backward()
        return leaf, leaf
    if kind == "non-leaf a * 1":
        return leaf * 1, leaf
    if kind == "non-leaf with leaf .grad":
        (leaf * 5).sum().backward()
        return leaf * 2, leaf
    assert kind == "detached leaf"
    return leaf.detach().requires_grad_(), leaf


KINDS = ["leaf", "leaf with .grad", "non-leaf a * 1", "non-leaf with leaf .grad",
         "float32 leaf .double()", "detached leaf"]


@pytest.mark.parametrize("check", ["gradcheck", "gradgradcheck"])
@pytest.mark.parametrize("kind", KINDS)
def test_gradchecks_accept_non_leaf_inputs_and_leave_grad_and_graph_alone(check, kind):
    results = {}
    for lib in (torch, gw):
        x, leaf = _input(lib, kind)
        before = None if leaf.grad is None else np.asarray(leaf.grad).copy()
        ok = getattr(lib.autograd, check)(lambda t: t.sin() * t, (x,))
        after = None if leaf.grad is None else np.asarray(leaf.grad).copy()
        assert ok is True
        if before is None:
            assert after is None, f"{lib.__name__}: {check} wrote .grad"
        else:
            np.testing.assert_array_equal(after, before)
        # the caller's graph behind a non-leaf input is still usable afterwards
        if x is not leaf and x.grad_fn is not None:
            (x * x).sum().backward()
            results[lib.__name__] = np.asarray(leaf.grad, dtype=np.float64)
    if results:
        np.testing.assert_allclose(results["gradwise"], results["torch"], rtol=1e-6)
