"""``F.cross_entropy`` with (N, C, d1, ...) logits and with class-probability targets, as torch
(issue 11, review 3): values and gradients for every reduction, weight and label smoothing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(2, 3, 4)).astype(np.float64)
LABELS = np.array([[0, 1, 2, 0], [1, -100, 1, 2]])
PROBS = RNG.dirichlet(np.ones(3), size=(2, 4)).transpose(0, 2, 1).copy()  # (N, C, d)
WEIGHT = np.array([0.5, 2.0, 1.0])

OPTIONS = list(itertools.product(["mean", "sum", "none"], [None, WEIGHT], [0.0, 0.2]))


def _run(m, logits, target, reduction, weight, smoothing, grad_target=False):
    x = m.tensor(logits, requires_grad=True)
    t = m.tensor(target, requires_grad=grad_target)
    w = None if weight is None else m.tensor(weight)
    loss = m.nn.functional.cross_entropy(x, t, weight=w, reduction=reduction,
                                         label_smoothing=smoothing)
    loss.sum().backward()
    grads = [np.asarray(x.grad)] + ([np.asarray(t.grad)] if grad_target else [])
    return np.asarray(loss.detach()), grads


@pytest.mark.parametrize(("reduction", "weight", "smoothing"), OPTIONS)
@pytest.mark.parametrize("form", ["k-dim-labels", "probabilities", "2d-probabilities",
                                  "unbatched-label", "unbatched-ignored",
                                  "unbatched-probabilities"])
def test_cross_entropy_forms_match_torch(form, reduction, weight, smoothing):
    # unbatched: (C,) logits with a () label or (C,) probabilities (newcomer review 8 of
    # issue 14: gradwise refused them with "input must be (N, C)")
    logits, target = {"k-dim-labels": (LOGITS, LABELS), "probabilities": (LOGITS, PROBS),
                      "2d-probabilities": (LOGITS[:, :, 0], PROBS[:, :, 0]),
                      "unbatched-label": (LOGITS[0, :, 1], LABELS[0, 1]),
                      "unbatched-ignored": (LOGITS[0, :, 1], LABELS[1, 1]),
                      "unbatched-probabilities": (LOGITS[0, :, 1], PROBS[0, :, 1])}[form]
    grad_target = "probabilities" in form
    expected = _run(torch, logits, target, reduction, weight, smoothing, grad_target)
    actual = _run(gw, logits, target, reduction, weight, smoothing, grad_target)
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-10, atol=1e-12)
    for got, want in zip(actual[1], expected[1], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_mismatched_target_shapes_are_refused():
    with pytest.raises(ValueError, match="does not fit input"):
        gw.nn.functional.cross_entropy(gw.tensor(LOGITS), gw.tensor(LABELS[:, :3]))
    with pytest.raises(ValueError, match="does not fit input"):
        gw.nn.functional.cross_entropy(gw.tensor(LOGITS), gw.tensor(PROBS[:, :, :3]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label", [2, -100])
def test_unbatched_nll_loss_matches_torch(reduction, label):
    results = []
    for m in (torch, gw):
        x = m.tensor(LOGITS[1, :, 2], requires_grad=True)
        loss = m.nn.functional.nll_loss(x, m.tensor(label), weight=m.tensor(WEIGHT),
                                        reduction=reduction)
        loss.sum().backward()
        results.append((np.asarray(loss.detach()), np.asarray(x.grad)))
    assert results[1][0].shape == results[0][0].shape == ()
    for got, want in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
