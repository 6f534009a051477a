"""The fused cross-entropy kernels against their NumPy references (forward within float32
rounding: libm's log and a left-to-right row sum; backward bitwise), and F.cross_entropy's
value and gradient the same with the kernels on and off."""

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels import loss as kernels
from gradwise.autograd.kernels._jit import set_jit_enabled


def _logits(rows, classes, dtype, edges, seed=0):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((rows, classes)) * 4).astype(dtype)
    if edges and rows >= 4 and classes >= 2:
        logits[0, 0] = np.nan        # a NaN logit makes its row NaN
        logits[1, 1] = np.inf        # so does +inf (inf - inf)
        logits[2, :] = -np.inf       # all -inf: NaN, as in NumPy
        logits[3, :] = 0.0           # uniform row
    return logits


CASES = [(0, 3), (1, 1), (1, 10), (4, 2), (128, 10), (33, 1000)]


@pytest.mark.parametrize("rows,classes", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("edges", [False, True], ids=["random", "edges"])
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_cross_entropy_kernels_equal_references(jit_path, rows, classes, dtype, edges):
    logits = _logits(rows, classes, dtype, edges)
    labels = np.random.default_rng(1).integers(0, classes, rows)
    probs, losses = kernels.cross_entropy_forward(logits, labels)
    ref_probs, ref_losses = kernels.cross_entropy_forward_reference(logits, labels)
    assert probs.dtype == losses.dtype == dtype
    # a loss is (logit - max) - log(total): a difference of terms up to ~2 max|logit|, so a few
    # ulp of that magnitude is the float rounding of either way of computing it
    finite = np.abs(logits[np.isfinite(logits)])
    magnitude = max(1.0, 2 * float(finite.max())) if finite.size else 1.0
    tolerance = dict(rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps * magnitude)
    np.testing.assert_allclose(probs, ref_probs, **tolerance)  # NaNs in the same places
    np.testing.assert_allclose(losses, ref_losses, **tolerance)
    for scale in (np.asarray(0.5, dtype), np.linspace(-1, 1, rows).astype(dtype)):
        got = kernels.cross_entropy_backward(ref_probs, labels, scale)
        np.testing.assert_array_equal(got, kernels.cross_entropy_backward_reference(
            ref_probs, labels, scale))
        assert got.dtype == dtype


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_same_both_ways(reduction):
    logits = _logits(16, 5, np.float32, edges=False)
    labels = np.random.default_rng(2).integers(0, 5, 16)
    results = []
    for flag in (True, False):
        previous = set_jit_enabled(flag)
        try:
            x = gw.tensor(logits, requires_grad=True)
            loss = gw.nn.functional.cross_entropy(x, labels, reduction=reduction)
            loss.sum().backward()
            results.append((loss.numpy(), np.asarray(x.grad)))
        finally:
            set_jit_enabled(previous)
    (loss_jit, grad_jit), (loss_ref, grad_ref) = results
    assert loss_jit.dtype == grad_jit.dtype == np.float32
    np.testing.assert_allclose(loss_jit, loss_ref, rtol=1e-6)
    np.testing.assert_allclose(grad_jit, grad_ref, rtol=1e-6, atol=1e-8)
