"""F.dropout, F.batch_norm, F.layer_norm, F.embedding and the penalties."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise.nn import functional as F
from helpers import make_inputs


def test_dropout_is_identity_in_eval_and_for_p_zero():
    x = gw.randn(10, 10, rng=0)
    assert F.dropout(x, 0.5, training=False) is x
    assert gw.nn.Dropout(0.5, rng=0).eval()(x) is x
    assert F.dropout(x, 0.0, training=True, rng=0) is x
    assert not F.dropout(x, 1.0, training=True, rng=0).data.any()


def test_dropout_zeroes_p_of_the_values_and_preserves_the_mean():
    x = gw.ones(200, 500)
    out = gw.nn.Dropout(0.3, rng=0)(x).data
    assert (out == 0).float().mean() == pytest.approx(0.3, abs=0.01)
    assert out.mean() == pytest.approx(1.0, abs=0.01)
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.7)}


def test_dropout_is_reproducible_with_a_seed_and_gradient_follows_the_mask():
    a, b = gw.nn.Dropout(0.5, rng=3), gw.nn.Dropout(0.5, rng=3)
    x = gw.randn(20, 20, rng=0, requires_grad=True)
    out = a(x)
    np.testing.assert_array_equal(out.data, b(x).data)
    assert not np.array_equal(out.data, a(x).data)  # the generator advances
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, (out.data != 0) * 2.0)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 4, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_fused_backward_passes_gradcheck(shape, training):
    x, weight, bias = make_inputs([shape, (shape[1],), (shape[1],)], seed=1)
    mean, var = np.zeros(shape[1]), np.ones(shape[1]) * 1.5

    def fn(x, weight, bias):
        # fresh copies: in training the running stats are updated on every call
        return F.batch_norm(x, mean.copy(), var.copy(), weight, bias, training=training)

    assert gw.gradcheck(fn, *(gw.tensor(a, requires_grad=True) for a in (x, weight, bias)))


@pytest.mark.parametrize("normalized_shape", [(5,), (3, 5)])
def test_layer_norm_fused_backward_passes_gradcheck(normalized_shape):
    x, weight, bias = make_inputs([(2, 3, 5), normalized_shape, normalized_shape], seed=2)
    assert gw.gradcheck(
        lambda x, w, b: F.layer_norm(x, normalized_shape, w, b),
        *(gw.tensor(a, requires_grad=True) for a in (x, weight, bias)),
    )


def test_batch_norm_without_affine_passes_gradcheck():
    (x,) = make_inputs([(5, 4)], seed=3)
    assert gw.gradcheck(lambda x: F.batch_norm(x, None, None, training=True),
                        gw.tensor(x, requires_grad=True))


def test_batch_norm_eval_needs_running_stats():
    with pytest.raises(ValueError, match="needs the running stats"):
        F.batch_norm(gw.zeros(2, 3), None, None, training=False)


def test_batch_norm_names_mismatched_stat_shapes():
    with pytest.raises(ValueError, match=r"running_mean has shape \(4,\).*3 channels"):
        F.batch_norm(gw.zeros(2, 3), np.zeros(4), np.ones(3), training=True)


def test_embedding_accepts_integer_tensors_and_nd_indices():
    weight = gw.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    out = F.embedding(gw.tensor(np.array([[0, 3], [3, 3]])), weight)
    assert out.shape == (2, 2, 3)
    out.sum().backward()
    np.testing.assert_array_equal(weight.grad[:, 0], [1, 0, 0, 3])


def test_penalties_sum_squares_and_absolute_values_with_gradients():
    a = gw.tensor([1.0, -2.0], requires_grad=True)
    b = gw.tensor([[3.0]], requires_grad=True)
    assert F.l2_penalty([a, b]).item() == pytest.approx(14.0)
    assert F.l1_penalty([a, b]).item() == pytest.approx(6.0)
    F.l2_penalty([a, b]).backward()
    np.testing.assert_array_equal(a.grad, [2.0, -4.0])
    assert F.l2_penalty([]).item() == 0.0
