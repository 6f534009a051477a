"""clip_grad_norm_/clip_grad_value_ against PyTorch, counting, vectors, penalties, summary."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradwise as gw
from gradwise.nn import utils
from helpers import torch


def grads_pair(scale: float = 1.0):
    """Two identical parameter lists (gradwise, torch) with the same random gradients."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) * scale for s in [(4, 3), (3,), (2, 2)]]
    ours = [gw.nn.Parameter(np.zeros_like(a)) for a in arrays]
    for p, a in zip(ours, arrays, strict=True):
        p.grad = a.copy()
    theirs = None
    if torch is not None:
        theirs = [torch.nn.Parameter(torch.zeros(a.shape)) for a in arrays]
        for p, a in zip(theirs, arrays, strict=True):
            p.grad = torch.from_numpy(a.copy())
    return ours, theirs


@pytest.mark.skipif(torch is None, reason="PyTorch oracle not installed")
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = grads_pair()
    total = utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(expected.item(), rel=1e-5)
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.skipif(torch is None, reason="PyTorch oracle not installed")
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
@pytest.mark.parametrize("scale", [1.0, math.inf])
def test_get_total_norm_and_clip_grads_with_norm_match_torch(norm_type, scale):
    ours, theirs = grads_pair()
    ours[0].grad[0, 0], theirs[0].grad[0, 0] = scale, scale  # inf: torch's non-finite rule
    total = utils.get_total_norm([p.grad for p in ours], norm_type)
    expected = torch.nn.utils.get_total_norm([p.grad for p in theirs], norm_type)
    assert isinstance(total, gw.Tensor) and total.shape == ()
    np.testing.assert_allclose(float(total), expected.item(), rtol=1e-5)
    utils.clip_grads_with_norm_(ours, 0.5, total)
    torch.nn.utils.clip_grads_with_norm_(theirs, 0.5, expected)
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(np.asarray(p.grad), q.grad.numpy(), rtol=1e-5, atol=1e-7)
    if scale == math.inf:
        with pytest.raises(RuntimeError, match="nan or inf"):
            utils.get_total_norm([p.grad for p in ours], norm_type, error_if_nonfinite=True)


def test_clip_grad_norm_takes_a_module_and_skips_missing_grads():
    model = gw.nn.Linear(3, 2, rng=0)
    assert utils.clip_grad_norm_(model, 1.0) == 0.0
    model(gw.ones(1, 3)).sum().backward()
    model.bias.grad = None
    norm = utils.clip_grad_norm_(model, 0.1)
    assert norm == pytest.approx(math.sqrt(2 * 3))
    assert np.linalg.norm(model.weight.grad) == pytest.approx(0.1, rel=1e-4)


def test_clip_grad_norm_nonfinite():
    ours, _ = grads_pair()
    ours[1].grad[0] = np.nan
    before = [np.array(p.grad) for p in ours]
    with pytest.raises(RuntimeError, match="nan or inf"):
        utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    for p, b in zip(ours, before, strict=True):
        np.testing.assert_array_equal(p.grad, b)
    assert math.isnan(utils.clip_grad_norm_(ours, 1.0))
    with pytest.raises(ValueError, match="max_norm"):
        utils.clip_grad_norm_(ours, -1.0)


def test_clip_grad_value_clamps_in_place():
    ours, theirs = grads_pair(scale=3.0)
    utils.clip_grad_value_(ours, 1.5)
    for p in ours:
        assert np.abs(p.grad).max() <= 1.5
    if theirs is not None:
        torch.nn.utils.clip_grad_value_(theirs, 1.5)
        for p, q in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(p.grad, q.grad.numpy())


def test_count_parameters_and_vectors():
    model = gw.nn.Sequential(gw.nn.Linear(3, 4), gw.nn.BatchNorm1d(4), gw.nn.Linear(4, 2))
    assert utils.count_parameters(model) == 16 + 8 + 10
    model[1].requires_grad_(False)
    assert utils.count_parameters(model) == 26
    assert utils.count_parameters(model, trainable_only=False) == 34
    vector = utils.parameters_to_vector(model.parameters())
    assert vector.shape == (34,) and vector.requires_grad  # a recorded cat, as torch's
    (vector * gw.arange(34.0)).sum().backward()
    np.testing.assert_array_equal(np.asarray(model[0].bias.grad), [12, 13, 14, 15])
    utils.vector_to_parameters(np.arange(34.0), model.parameters())
    np.testing.assert_array_equal(model[0].bias.data, [12, 13, 14, 15])
    with pytest.raises(ValueError, match="34 parameter values"):
        utils.vector_to_parameters(np.zeros(3), model.parameters())


def test_penalties_scale_and_differentiate():
    model = gw.nn.Linear(2, 1, rng=0)
    weights = np.concatenate([model.weight.numpy().ravel(), model.bias.numpy()])
    penalty = utils.l2_penalty(model, 0.5)
    assert penalty.item() == pytest.approx(0.5 * (weights**2).sum(), rel=1e-6)
    penalty.backward()
    np.testing.assert_allclose(model.weight.grad, model.weight.data, rtol=1e-6)
    assert utils.l1_penalty(model, 2.0).item() == pytest.approx(2 * np.abs(weights).sum(),
                                                                 rel=1e-6)


def test_summary_lists_layers_shapes_and_totals_without_touching_state():
    model = gw.nn.Sequential(
        gw.nn.Conv2d(1, 4, 3, padding=1, rng=0), gw.nn.BatchNorm2d(4), gw.nn.ReLU(),
        gw.nn.MaxPool2d(2), gw.nn.Flatten(), gw.nn.Dropout(0.5), gw.nn.Linear(4 * 4 * 4, 10),
    )
    # a snapshot: state_dict() shares memory with the model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    printed = []
    text = utils.summary(model, (2, 1, 8, 8), print_fn=printed.append)
    assert printed == [text]
    for row in ["0 (Conv2d)", "(2, 4, 8, 8)", "1 (BatchNorm2d)", "3 (MaxPool2d)", "(2, 4, 4, 4)",
                "4 (Flatten)", "(2, 64)", "6 (Linear)", "(2, 10)", "650"]:
        assert row in text
    assert "Total params: 698" in text and "Trainable params: 698" in text
    assert all(m.training for m in model.modules())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    assert not any(m._forward_hooks for m in model.modules())


def test_summary_of_an_embedding_model_takes_an_integer_dtype():
    model = gw.nn.Sequential(gw.nn.Embedding(10, 4), gw.nn.Flatten(), gw.nn.Linear(12, 2))
    text = utils.summary(model, (5, 3), dtype=np.int64, print_fn=None)
    assert "(5, 3, 4)" in text and "Total params: 66" in text
