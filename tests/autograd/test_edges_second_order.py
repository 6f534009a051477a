"""The edge grid one order up: second derivatives at 0 and -0, +-inf, NaN, ties, huge and tiny
values, and size-0 and size-1 axes, in float64, against torch.autograd (issue 12).

Every op of the first-order grid (tests/autograd/test_edges.py) that has a second derivative runs
here on the same edge inputs: the gradient recorded with ``create_graph=True`` and a
Hessian-vector product must equal torch's, NaN for NaN and inf for inf. Where gradwise differs on
purpose the case is in ``DIFFERENCES`` with the reason (docs/NUMERICS.md), and the test asserts
that it still differs, so the list cannot go stale.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from autograd.test_edges import (
    BINARY,
    BINARY_TARGET,
    CLASS_WEIGHT,
    INF,
    LABELS,
    LAYERS,
    REDUCE,
    SHAPE_OPS,
    UNARY,
    _rows_with_huge_values,
    constant_channels,
    edge_image,
    edge_logits,
    edge_matrix,
    edge_rows,
    edge_values,
    pair_values,
    random_array,
)
from gradwise.nn import functional as F
from helpers import check_second_order_edges

T = pytest.importorskip("torch")
TF = T.nn.functional
F64 = np.float64

# case id -> (which rows (or elements) of the first input differ, why); the case runs without
# them, where it must agree with torch, and whole, where it must still differ (docs/NUMERICS.md)
DIFFERENCES = {
    "unary-gelu": (lambda a: np.isfinite(a) & (np.abs(a) > 1e300),
                   "at |x| = max/4 torch's second derivative is NaN (x^2 overflows to inf and is "
                   "multiplied by exp(-x^2/2) = 0); gradwise gives 0, the limit"),
    "reduce-logsumexp": (_rows_with_huge_values,
                         "rows with huge maxima: the first gradient already differs "
                         "(test_edges.py, logsumexp-f64) and the second follows it"),
    "layer-bce_at_0_and_1": (lambda p: p * (1 - p) < 1e-6,
                             "p within 1e-6 of 0 or 1: gradwise differentiates the first "
                             "derivative both compute, (p - y) / max(p (1 - p), 1e-12); torch's "
                             "double backward is a separate formula, (p^2 - 2py + y) / ((p + "
                             "eps)^2 (1 - p + eps)^2), which is not the derivative of its clamp "
                             "(1e24 where the clamp's is 1e12 or 0) and cancels catastrophically "
                             "near 1 (0.1% off at p = 1 - 1e-7)"),
}


def check(case_id: str, gw_fn, torch_fn, arrays) -> None:
    if case_id not in DIFFERENCES:
        check_second_order_edges(gw_fn, torch_fn, arrays)
        return
    select, _reason = DIFFERENCES[case_id]
    hit = select(arrays[0])
    check_second_order_edges(gw_fn, torch_fn, [a[~hit] for a in arrays])
    with pytest.raises(AssertionError):
        check_second_order_edges(gw_fn, torch_fn, arrays)


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_second_derivatives_at_edge_values(name):
    gw_fn, torch_fn = UNARY[name]
    check(f"unary-{name}", gw_fn, torch_fn, [edge_values(F64)])


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_second_derivatives_at_edge_pairs(name):
    gw_fn, torch_fn = BINARY[name]
    check(f"binary-{name}", gw_fn, torch_fn, list(pair_values(F64)))


@pytest.mark.parametrize("name", list(REDUCE))
def test_reduction_second_derivatives_over_edge_rows(name):
    gw_fn, torch_fn = REDUCE[name]
    check(f"reduce-{name}", gw_fn, torch_fn, [edge_rows(F64)])


@pytest.mark.parametrize("shape", [(0,), (0, 3), (1,), (1, 1), ()], ids=str)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_second_derivatives_on_empty_and_single_element_shapes(name, shape):
    gw_fn, torch_fn = UNARY[name]
    check(f"unary-{name}-{shape}", gw_fn, torch_fn, [random_array(shape, F64)])


@pytest.mark.parametrize("shape", [(3, 0), (0, 4), (3, 1), (1, 4)], ids=str)
@pytest.mark.parametrize("name", list(REDUCE))
def test_reduction_second_derivatives_over_empty_and_single_element_axes(name, shape):
    gw_fn, torch_fn = REDUCE[name]
    x = random_array(shape, F64)
    try:
        torch_fn(T.tensor(x))
    except (RuntimeError, IndexError):
        return  # torch refuses too (the first-order grid checks that gradwise does)
    try:
        gw_fn(gw.tensor(x))
    except ValueError:
        return  # a deliberate refusal of the first-order grid (RAISES there)
    check(f"reduce-{name}-{shape}", gw_fn, torch_fn, [x])


@pytest.mark.parametrize("name", list(SHAPE_OPS))
def test_shape_op_second_derivatives_carry_edge_values(name):
    gw_fn, torch_fn = SHAPE_OPS[name]
    # a shape op is linear: the interesting part is the op before it seeing edge values
    check(f"shape-{name}", lambda x: gw_fn(x * x), lambda x: torch_fn(x * x),
          [edge_matrix(F64)])


@pytest.mark.parametrize("name", list(LAYERS))
def test_pooling_second_derivatives_at_edge_values(name):
    gw_fn, torch_fn = LAYERS[name]
    check(f"pool-{name}", lambda x: gw_fn(x) ** 2, lambda x: torch_fn(x) ** 2,
          [edge_image(F64)])


def _conv_input():
    x = edge_image(F64)
    x[~np.isfinite(x)] = 0.0  # BLAS orders sums differently, so inf - inf lands elsewhere
    return x


LAYER_CASES = {
    "conv2d": (lambda a, w, b: F.conv2d(a, w, b, padding=1).tanh(),
               lambda a, w, b: TF.conv2d(a, w, b, padding=1).tanh(),
               lambda: [_conv_input(), random_array((3, 2, 3, 3), F64, 1),
                        random_array((3,), F64, 2)]),
    "conv2d_single_pixel": (lambda a, w: F.conv2d(a, w) ** 2, lambda a, w: TF.conv2d(a, w) ** 2,
                            lambda: [random_array((1, 2, 1, 1), F64),
                                     random_array((2, 2, 1, 1), F64, 1)]),
    "batch_norm_constant_channel": (
        lambda a, w, b: F.batch_norm(a, None, None, w, b, training=True).tanh(),
        lambda a, w, b: TF.batch_norm(a, None, None, w, b, training=True).tanh(),
        lambda: [constant_channels(F64), random_array((3,), F64, 1),
                 random_array((3,), F64, 2)]),
    "batch_norm_eval": (
        lambda a, w, b: F.batch_norm(a, np.full(3, 0.5), np.full(3, 2.0), w, b,
                                     training=False).tanh(),
        lambda a, w, b: TF.batch_norm(a, T.full((3,), 0.5, dtype=T.float64),
                                      T.full((3,), 2.0, dtype=T.float64), w, b,
                                      training=False).tanh(),
        lambda: [constant_channels(F64), random_array((3,), F64, 1),
                 random_array((3,), F64, 2)]),
    "layer_norm_constant_rows": (
        lambda a, w, b: F.layer_norm(a, 3, w, b).tanh(),
        lambda a, w, b: TF.layer_norm(a, (3,), w, b).tanh(),
        lambda: [constant_channels(F64).transpose(0, 2, 1).copy(), random_array((3,), F64, 1),
                 random_array((3,), F64, 2)]),
    "embedding_repeats": (lambda w: F.embedding(np.array([[0, 3, 3], [1, 3, 0]]), w) ** 2,
                          lambda w: TF.embedding(T.tensor([[0, 3, 3], [1, 3, 0]]), w) ** 2,
                          lambda: [edge_matrix(F64, 5, 3)]),
    "bce_at_0_and_1": (  # the target is an input too: torch differentiates it
        lambda p, y: F.binary_cross_entropy(p, y, reduction="sum"),
        lambda p, y: TF.binary_cross_entropy(p, y, reduction="sum"),
        lambda: [np.array([0.1, 1, 1, 0, 1, 0.5, 1e-30, 1 - 1e-7, 0.25, 0.5, 0.5, 0]),
                 BINARY_TARGET.ravel().copy()]),
    "bce_with_logits_at_infinities": (
        lambda z: F.binary_cross_entropy_with_logits(z, BINARY_TARGET,
                                                     pos_weight=np.array([3.0, 0.5, 1.0])),
        lambda z: TF.binary_cross_entropy_with_logits(
            z, T.tensor(BINARY_TARGET), pos_weight=T.tensor([3.0, 0.5, 1.0], dtype=T.float64)),
        lambda: [np.array([[INF, -INF, 0], [1e4, -1e4, 80], [-80, 0, 3], [-0.0, 1, -1]])]),
    "mse_at_ties": (lambda a: F.mse_loss(a, np.resize([0.0, -0.0, 1.0, 3.0], 19), "sum"),
                    lambda a: TF.mse_loss(a, T.tensor(np.resize([0.0, -0.0, 1.0, 3.0], 19)),
                                          reduction="sum"),
                    lambda: [edge_values(F64)]),
}


@pytest.mark.parametrize("name", list(LAYER_CASES))
def test_layer_and_loss_second_derivatives_at_edges(name):
    gw_fn, torch_fn, make = LAYER_CASES[name]
    check(f"layer-{name}", gw_fn, torch_fn, make())


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_second_derivatives_at_edge_logits(weighted, smoothing):
    weight = CLASS_WEIGHT if weighted else None
    t_weight = None if weight is None else T.tensor(weight)
    check(f"cross_entropy-{weighted}-{smoothing}",
          lambda z: F.cross_entropy(z, LABELS, weight, label_smoothing=smoothing),
          lambda z: TF.cross_entropy(z, T.tensor(LABELS), t_weight, label_smoothing=smoothing),
          [edge_logits(F64)])


@pytest.mark.parametrize("ord", ["fro", 1, -1, INF, -INF, 2, -2, "nuc"])
def test_matrix_norm_second_derivatives_at_zeros_and_ties(ord):
    for x in (np.zeros((3, 3)), np.diag([2.0, 2.0, 1.0]), np.ones((1, 1)),
              random_array((2, 3, 4), F64)):
        check(f"matrix_norm-{ord}", lambda a: gw.linalg.matrix_norm(a, ord) ** 2,
              lambda a: T.linalg.matrix_norm(a, ord) ** 2, [x])
