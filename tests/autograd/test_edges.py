"""The edge grid: every differentiable op, layer and loss against torch.autograd where the
mathematics is delicate: 0 and -0, +-inf, NaN, values near overflow and underflow, exact ties,
size-0 and size-1 axes, in float32 and float64 (issue 12).

Each case is one line; ``check_edges`` compares shape, dtype, values and gradients. Where
gradwise differs on purpose, the case sits in ``DIFFERENCES`` with the reason (docs/NUMERICS.md
explains each) and the test asserts the difference, so the list cannot go stale.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradwise as gw
from gradwise.nn import functional as F
from helpers import check_edges

T = pytest.importorskip("torch")
TF = T.nn.functional
DTYPES = [np.float32, np.float64]
INF, NAN = math.inf, math.nan


def tag(dtype) -> str:
    return "f32" if np.dtype(dtype) == np.float32 else "f64"


def edge_values(dtype) -> np.ndarray:
    """Every delicate scalar of a dtype: signed zeros, +-1, infinities, NaN, the largest values
    (whose squares overflow), the smallest normal and a subnormal (whose squares underflow)."""
    info = np.finfo(dtype)
    values = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, INF, -INF, NAN,
              float(info.max) / 4, -float(info.max) / 4, float(info.tiny), float(info.tiny) / 8,
              -float(info.tiny), 80.0, -80.0, 700.0, -700.0]
    return np.array(values, dtype=dtype)


def pair_values(dtype) -> tuple[np.ndarray, np.ndarray]:
    """All ordered pairs of a smaller edge set (ties included), as two same-shaped arrays."""
    info = np.finfo(dtype)
    base = np.array([0.0, -0.0, 1.0, -2.0, 0.5, 3.0, INF, -INF, NAN, float(info.max) / 2,
                     float(info.tiny)], dtype=dtype)
    a, b = np.meshgrid(base, base, indexing="ij")
    return a.ravel(), b.ravel()


def edge_rows(dtype) -> np.ndarray:
    """Rows for reductions along axis 1: ties, infinities, NaN, all -inf, zeros, huge values."""
    big = float(np.finfo(dtype).max) / 2
    return np.array(
        [[2, 2, 2, 2], [1, INF, 3, 0], [-INF, 0, 1, 5], [NAN, 1, 2, 3], [-INF] * 4, [0, 0, 0, 0],
         [big, big, -big, 1], [1e-30, -1e-30, 0, 1e-30], [INF, INF, 1, 2], [-1, 5, 5, -1]],
        dtype=dtype,
    )


# Deliberate differences: case id -> (which rows (or elements) of the first input differ, why).
# The case runs without those rows, where it must agree with torch, and then whole, where it
# must still differ (so this list cannot go stale). docs/NUMERICS.md explains each entry.
def _is(value):
    return lambda a: np.isnan(a) if math.isnan(value) else a == value


def _rows_with_huge_values(a):
    return (np.abs(a) > 1e30).any(axis=1) & np.isfinite(a).all(axis=1)


DIFFERENCES = {
    "gelu-f32": (_is(INF), "torch's vectorised float32 GELU gives NaN at +inf (its scalar "
                           "path gives inf); gradwise gives inf"),
    "elu-f32": (_is(NAN), "torch's vectorised float32 ELU backward passes the gradient through "
                          "NaN (float64: NaN); gradwise gives NaN in both"),
    "logsumexp-f32": (_rows_with_huge_values, "gradwise's gradient is the softmax, computed "
                      "stably; torch's exp(x - logsumexp) rounds to 1 per maximum when the "
                      "maxima are huge"),
    "logsumexp-f64": (_rows_with_huge_values, "as logsumexp-f32"),
}


def check_case(case_id: str, gw_fn, torch_fn, arrays, **options) -> None:
    """check_edges on ``arrays``; a deliberate difference is checked apart (it must persist)."""
    if case_id not in DIFFERENCES:
        check_edges(gw_fn, torch_fn, arrays, **options)
        return
    select, _reason = DIFFERENCES[case_id]
    hit = select(arrays[0])
    check_edges(gw_fn, torch_fn, [a[~hit] for a in arrays], **options)
    with pytest.raises(AssertionError):
        check_edges(gw_fn, torch_fn, arrays, **options)


UNARY = {
    "neg": (lambda x: -x, lambda x: -x),
    "exp": (lambda x: x.exp(), lambda x: x.exp()),
    "log": (lambda x: x.log(), lambda x: x.log()),
    "sqrt": (lambda x: x.sqrt(), lambda x: x.sqrt()),
    "abs": (lambda x: x.abs(), lambda x: x.abs()),
    "relu": (lambda x: x.relu(), lambda x: x.relu()),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid()),
    "tanh": (lambda x: x.tanh(), lambda x: x.tanh()),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1)),
    "elu": (lambda x: F.elu(x, 1.5), lambda x: TF.elu(x, 1.5)),
    "gelu": (lambda x: F.gelu(x), lambda x: TF.gelu(x)),
    "gelu_tanh": (lambda x: F.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "softplus": (lambda x: F.softplus(x), lambda x: TF.softplus(x)),
    "softplus_beta": (lambda x: F.softplus(x, 2.0, 5.0), lambda x: TF.softplus(x, 2.0, 5.0)),
    "clip": (lambda x: x.clip(-1.0, 1.0), lambda x: x.clamp(-1.0, 1.0)),
    "clip_low": (lambda x: x.clip(lo=0.0), lambda x: x.clamp(min=0.0)),
    "pow_0": (lambda x: x**0, lambda x: x**0),
    "pow_0.0": (lambda x: x**0.0, lambda x: x**0.0),
    "pow_1": (lambda x: x**1, lambda x: x**1),
    "pow_2": (lambda x: x**2, lambda x: x**2),
    "pow_3": (lambda x: x**3, lambda x: x**3),
    "pow_half": (lambda x: x**0.5, lambda x: x**0.5),
    "pow_-1": (lambda x: x**-1, lambda x: x**-1),
    "pow_-0.5": (lambda x: x**-0.5, lambda x: x**-0.5),
    "pow_2.5": (lambda x: x**2.5, lambda x: x**2.5),
    "rpow_2": (lambda x: 2.0**x, lambda x: 2.0**x),
    "rpow_0": (lambda x: 0.0**x, lambda x: 0.0**x),
    "rpow_neg": (lambda x: (-2.0) ** x, lambda x: (-2.0) ** x),
    "div_by": (lambda x: 1.0 / x, lambda x: 1.0 / x),
    "clone": (lambda x: x.clone(), lambda x: x.clone()),
    "to_float64": (lambda x: x.double(), lambda x: x.double()),
    "to_float32": (lambda x: x.float(), lambda x: x.float()),
    "dropout_eval": (lambda x: F.dropout(x, 0.5, training=False),
                     lambda x: TF.dropout(x, 0.5, training=False)),
    "dropout_p0": (lambda x: F.dropout(x, 0.0), lambda x: TF.dropout(x, 0.0)),
    "sum": (lambda x: x.sum(), lambda x: x.sum()),
    "max": (lambda x: x.max(), lambda x: x.max()),
    "min": (lambda x: x.min(), lambda x: x.min()),
    "norm": (lambda x: x.norm(), lambda x: x.norm()),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_ops_at_edge_values(name, dtype):
    gw_fn, torch_fn = UNARY[name]
    check_case(f"{name}-{tag(dtype)}", gw_fn, torch_fn, [edge_values(dtype)])


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "pow": (lambda a, b: a**b, lambda a, b: a**b),
    "maximum": (lambda a, b: gw.maximum(a, b), lambda a, b: T.maximum(a, b)),
    "minimum": (lambda a, b: gw.minimum(a, b), lambda a, b: T.minimum(a, b)),
    "where": (lambda a, b: gw.where(a > b, a, b), lambda a, b: T.where(a > b, a, b)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_ops_at_edge_pairs(name, dtype):
    gw_fn, torch_fn = BINARY[name]
    check_edges(gw_fn, torch_fn, list(pair_values(dtype)))


REDUCE = {
    "sum": (lambda x: x.sum(axis=1), lambda x: x.sum(dim=1)),
    "mean": (lambda x: x.mean(axis=1), lambda x: x.mean(dim=1)),
    "amax": (lambda x: x.amax(dim=1), lambda x: x.amax(dim=1)),
    "amin": (lambda x: x.amin(dim=1, keepdim=True), lambda x: x.amin(dim=1, keepdim=True)),
    "max_dim": (lambda x: x.max(dim=1).values, lambda x: x.max(dim=1).values),
    "min_dim": (lambda x: x.min(1, keepdim=True)[0], lambda x: x.min(1, keepdim=True)[0]),
    "var": (lambda x: x.var(dim=1), lambda x: x.var(dim=1)),
    "var_biased": (lambda x: x.var(dim=1, correction=0), lambda x: x.var(dim=1, correction=0)),
    "std": (lambda x: x.std(dim=1), lambda x: x.std(dim=1)),
    "std_biased": (lambda x: x.std(1, unbiased=False), lambda x: x.std(1, unbiased=False)),
    "logsumexp": (lambda x: x.logsumexp(axis=1), lambda x: x.logsumexp(dim=1)),
    "softmax": (lambda x: x.softmax(axis=1), lambda x: x.softmax(dim=1)),
    "log_softmax": (lambda x: x.log_softmax(axis=1), lambda x: x.log_softmax(dim=1)),
    "norm_2": (lambda x: x.norm(2, dim=1), lambda x: x.norm(2, dim=1)),
    "norm_1": (lambda x: x.norm(1, dim=1), lambda x: x.norm(1, dim=1)),
    "norm_3": (lambda x: x.norm(3, dim=1), lambda x: x.norm(3, dim=1)),
    "norm_half": (lambda x: x.norm(0.5, dim=1), lambda x: x.norm(0.5, dim=1)),
    "norm_0": (lambda x: x.norm(0, dim=1), lambda x: x.norm(0, dim=1)),
    "norm_inf": (lambda x: x.norm(INF, dim=1), lambda x: x.norm(INF, dim=1)),
    "norm_-inf": (lambda x: x.norm(-INF, dim=1), lambda x: x.norm(-INF, dim=1)),
    "vector_norm_keep": (lambda x: gw.linalg.vector_norm(x, 2, 1, True),
                         lambda x: T.linalg.vector_norm(x, 2, 1, True)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(REDUCE))
def test_reductions_over_edge_rows(name, dtype):
    gw_fn, torch_fn = REDUCE[name]
    check_case(f"{name}-{tag(dtype)}", gw_fn, torch_fn, [edge_rows(dtype)])


# ---- size-0 and size-1 axes --------------------------------------------------------------------
SHAPES = [(0,), (0, 3), (3, 0), (1,), (1, 1), ()]
# shape cases where gradwise raises a clear error on purpose: case id -> why (NUMERICS.md)
RAISES = {
    "mean-(3, 0)": "mean over an empty axis is 0/0: gradwise raises instead of returning NaN",
    "var-(3, 0)": "no degrees of freedom: gradwise raises instead of returning NaN",
    "var_biased-(3, 0)": "no degrees of freedom: gradwise raises instead of returning NaN",
    "std-(3, 0)": "no degrees of freedom: gradwise raises instead of returning NaN",
    "std_biased-(3, 0)": "no degrees of freedom: gradwise raises instead of returning NaN",
    "var-(3, 1)": "one value with ddof=1: gradwise raises instead of returning NaN",
    "std-(3, 1)": "one value with ddof=1: gradwise raises instead of returning NaN",
}


def random_array(shape, dtype, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_ops_on_empty_and_single_element_shapes(name, shape, dtype):
    gw_fn, torch_fn = UNARY[name]
    check_edges(gw_fn, torch_fn, [random_array(shape, dtype)])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(3, 0), (0, 4), (3, 1), (1, 4)], ids=str)
@pytest.mark.parametrize("name", list(REDUCE))
def test_reductions_over_empty_and_single_element_axes(name, shape, dtype):
    gw_fn, torch_fn = REDUCE[name]
    x = random_array(shape, dtype)
    case = f"{name}-{shape}"
    if case in RAISES:
        with pytest.raises(ValueError):
            gw_fn(gw.tensor(x, requires_grad=True))
        return
    check_edges(gw_fn, torch_fn, [x])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(
    "shapes", [((0, 3), (1, 3)), ((3, 1), (1, 0)), ((1,), (0,)), ((), (0,)), ((1, 1), (1,))],
    ids=str,
)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_ops_broadcast_with_empty_and_single_axes(name, shapes, dtype):
    gw_fn, torch_fn = BINARY[name]
    check_edges(gw_fn, torch_fn, [random_array(shape, dtype, i) for i, shape in enumerate(shapes)])


# ---- matrix products, shape ops ------------------------------------------------------------
def edge_matrix(dtype, rows=4, cols=3) -> np.ndarray:
    values = edge_values(dtype)
    return np.resize(values, rows * cols).reshape(rows, cols)


MATMUL = {
    "matmul": (lambda a, b: a @ b, lambda a, b: a @ b, [(4, 3), (3, 2)]),
    "matmul_vec": (lambda a, b: a @ b, lambda a, b: a @ b, [(4, 3), (3,)]),
    "matmul_empty_inner": (lambda a, b: a @ b, lambda a, b: a @ b, [(2, 0), (0, 3)]),
    "matmul_empty_rows": (lambda a, b: a @ b, lambda a, b: a @ b, [(0, 3), (3, 2)]),
    "matmul_1x1": (lambda a, b: a @ b, lambda a, b: a @ b, [(1, 1), (1, 1)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), lambda x, w, b: TF.linear(x, w, b),
               [(4, 3), (2, 3), (2,)]),
    "linear_empty_batch": (lambda x, w, b: F.linear(x, w, b), lambda x, w, b: TF.linear(x, w, b),
                           [(0, 3), (2, 3), (2,)]),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(MATMUL))
def test_matrix_products(name, dtype):
    gw_fn, torch_fn, shapes = MATMUL[name]
    arrays = [random_array(shape, dtype, i) for i, shape in enumerate(shapes)]
    check_edges(gw_fn, torch_fn, arrays)
    if arrays[0].size:  # the first operand full of edge values (finite: BLAS may reorder sums)
        rows, cols = arrays[0].shape
        edges = edge_matrix(dtype, rows, cols)
        arrays[0] = np.where(np.isfinite(edges) & (np.abs(edges) < 1e3), edges, 0).astype(dtype)
        check_edges(gw_fn, torch_fn, arrays)


SHAPE_OPS = {
    "reshape": (lambda x: x.reshape(2, -1), lambda x: x.reshape(2, -1)),
    "transpose": (lambda x: x.transpose(), lambda x: x.T),
    "getitem_basic": (lambda x: x[1:, ::2], lambda x: x[1:, ::2]),
    "getitem_repeats": (lambda x: x[[0, 0, 1]], lambda x: x[[0, 0, 1]]),
    "getitem_mask": (lambda x: x[x > 0], lambda x: x[x > 0]),
    "getitem_empty": (lambda x: x[[]], lambda x: x[[]]),
    "cat": (lambda x: gw.cat([x, x[:0], x * 2], axis=0), lambda x: T.cat([x, x[:0], x * 2], 0)),
    "stack": (lambda x: gw.stack([x, x], axis=1), lambda x: T.stack([x, x], 1)),
    "pad": (lambda x: x.pad(((1, 0), (0, 2))), lambda x: TF.pad(x, (0, 2, 1, 0))),
    "expand": (lambda x: x[:1].expand(3, -1), lambda x: x[:1].expand(3, -1)),
    "flatten": (lambda x: x.flatten(), lambda x: x.flatten()),
    "flip": (lambda x: x.flip(0, 1), lambda x: x.flip(0, 1)),
    "rot90": (lambda x: x.rot90(1, (1, 0)), lambda x: x.rot90(1, (1, 0))),
    "diagonal": (lambda x: x.diagonal(1), lambda x: x.diagonal(1)),
    "unfold": (lambda x: x.unfold(1, 2, 1), lambda x: x.unfold(1, 2, 1)),  # overlapping windows
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(SHAPE_OPS))
def test_shape_ops_carry_edge_values_and_their_gradients(name, dtype):
    gw_fn, torch_fn = SHAPE_OPS[name]
    check_edges(gw_fn, torch_fn, [edge_matrix(dtype)])


# ---- layers -------------------------------------------------------------------------------------
def edge_image(dtype, shape=(2, 2, 5, 5), seed=0) -> np.ndarray:
    """Random NCHW values with edge values planted: -inf blocks, NaN, +inf, ties and zeros."""
    x = random_array(shape, dtype, seed)
    x[0, 0, :2, :2] = -INF  # a corner window of -inf that touches the padding
    x[0, 1, 2:4, 2:4] = 7.0  # a tie of four maxima
    x[1, 0, 1, 3] = NAN
    x[1, 1, 4, 4] = INF
    x[1, 1, 0, :] = 0.0
    return x


LAYERS = {
    "max_pool_k2s2p1": (lambda x: F.max_pool2d(x, 2, 2, 1),
                        lambda x: TF.max_pool2d(x, 2, 2, 1)),
    "max_pool_k2": (lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2)),
    "max_pool_k3s1p1": (lambda x: F.max_pool2d(x, 3, 1, 1), lambda x: TF.max_pool2d(x, 3, 1, 1)),
    "max_pool_k3s2": (lambda x: F.max_pool2d(x, 3, 2), lambda x: TF.max_pool2d(x, 3, 2)),
    "avg_pool_k2": (lambda x: F.avg_pool2d(x, 2), lambda x: TF.avg_pool2d(x, 2)),
    "avg_pool_k3s1p1": (lambda x: F.avg_pool2d(x, 3, 1, 1), lambda x: TF.avg_pool2d(x, 3, 1, 1)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_pooling_at_edge_values(name, dtype):
    gw_fn, torch_fn = LAYERS[name]
    check_edges(gw_fn, torch_fn, [edge_image(dtype)])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("padding", [0, 1])
def test_conv2d_at_edge_values(padding, dtype):
    x = edge_image(dtype)
    x[~np.isfinite(x)] = 0.0  # BLAS orders sums differently, so inf - inf lands elsewhere
    x[0, 0, 0, 0] = np.finfo(dtype).max / 4
    weight = random_array((3, 2, 3, 3), dtype, 1)
    bias = random_array((3,), dtype, 2)
    check_edges(
        lambda a, w, b: F.conv2d(a, w, b, padding=padding),
        lambda a, w, b: TF.conv2d(a, w, b, padding=padding),
        [x, weight, bias], rtol=1e-4, atol=1e-5,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(1, 2, 1, 1), (2, 1, 3, 3), (2, 2, 1, 4)], ids=str)
def test_conv2d_on_single_pixel_and_single_channel_shapes(shape, dtype):
    x = random_array(shape, dtype)
    weight = random_array((2, shape[1], 1, 1), dtype, 1)
    check_edges(lambda a, w: F.conv2d(a, w), lambda a, w: TF.conv2d(a, w), [x, weight],
                rtol=1e-4, atol=1e-5)


def constant_channels(dtype) -> np.ndarray:
    """(N, C, L) with a constant channel (variance 0), a huge-valued one and a normal one."""
    x = random_array((4, 3, 2), dtype)
    x[:, 0] = 2.5
    x[:, 1] *= 1e4
    return x


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_with_a_constant_channel(training, dtype):
    x = constant_channels(dtype)
    mean, var = np.full(3, 0.5, dtype), np.full(3, 2.0, dtype)
    check_edges(
        lambda a, w, b: F.batch_norm(a, mean.copy(), var.copy(), w, b, training=training),
        lambda a, w, b: TF.batch_norm(a, T.tensor(mean), T.tensor(var), w, b, training=training),
        [x, random_array((3,), dtype, 1), random_array((3,), dtype, 2)], rtol=1e-4, atol=1e-5,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_layer_norm_with_constant_rows(dtype):
    x = constant_channels(dtype).transpose(0, 2, 1).copy()  # (4, 2, 3): last axis normalised
    x[0, 0] = 1.0
    check_edges(
        lambda a, w, b: F.layer_norm(a, 3, w, b),
        lambda a, w, b: TF.layer_norm(a, (3,), w, b),
        [x, random_array((3,), dtype, 1), random_array((3,), dtype, 2)], rtol=1e-4, atol=1e-5,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_embedding_with_repeated_and_empty_indices(dtype):
    weight = edge_matrix(dtype, 5, 3)
    for indices in (np.array([[0, 3, 3], [1, 3, 0]]), np.zeros((0,), dtype=np.int64)):
        check_edges(
            lambda w, i=indices: F.embedding(i, w),
            lambda w, i=indices: TF.embedding(T.tensor(i), w),
            [weight],
        )


# ---- losses -------------------------------------------------------------------------------------
def edge_logits(dtype) -> np.ndarray:
    """(6, 4) logits: ties, huge magnitudes, -inf at a non-target class, zeros."""
    return np.array(
        [[1, 1, 1, 1], [1e4, -1e4, 0, 0], [0, -INF, 2, 1], [0, 0, 0, 0], [-3, 80, 80, -80],
         [0.5, -0.5, 3, -2]], dtype=dtype,
    )


LABELS = np.array([0, 1, 3, 2, 1, -100])
CLASS_WEIGHT = np.array([0.5, 2.0, 1.0, 0.0])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_at_edges_with_every_option(weighted, smoothing, reduction, dtype):
    weight = CLASS_WEIGHT.astype(dtype) if weighted else None
    t_weight = None if weight is None else T.tensor(weight)
    check_edges(
        lambda z: F.cross_entropy(z, LABELS, weight, reduction=reduction,
                                  label_smoothing=smoothing),
        lambda z: TF.cross_entropy(z, T.tensor(LABELS), t_weight, reduction=reduction,
                                   label_smoothing=smoothing),
        [edge_logits(dtype)], rtol=1e-4, atol=1e-5,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_with_weight_and_ignore_index(weighted, reduction, dtype):
    weight = CLASS_WEIGHT.astype(dtype) if weighted else None
    t_weight = None if weight is None else T.tensor(weight)
    log_probs = np.log(np.array([[0.1, 0.2, 0.3, 0.4]] * 6, dtype=dtype))
    log_probs[2, 3] = -INF
    check_edges(
        lambda z: F.nll_loss(z, LABELS, weight, ignore_index=-100, reduction=reduction),
        lambda z: TF.nll_loss(z, T.tensor(LABELS), t_weight, ignore_index=-100,
                              reduction=reduction),
        [log_probs],
    )


BINARY_TARGET = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=np.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_at_0_and_1(weighted, reduction, dtype):
    probs = np.array([[0, 1, 1], [0, 1, 0.5], [1e-30, 1 - 1e-7, 0.25], [0.5, 0.5, 0]], dtype=dtype)
    target = BINARY_TARGET.astype(dtype)
    weight = np.array([1.0, 0.5, 2.0], dtype=dtype) if weighted else None
    t_weight = None if weight is None else T.tensor(weight)
    check_edges(
        lambda p: F.binary_cross_entropy(p, target, weight, reduction=reduction),
        lambda p: TF.binary_cross_entropy(p, T.tensor(target), t_weight, reduction=reduction),
        [probs], rtol=1e-4, atol=1e-5,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weights", ["none", "weight", "pos_weight", "both"])
def test_binary_cross_entropy_with_logits_at_infinities(weights, reduction, dtype):
    logits = np.array([[INF, -INF, 0], [1e4, -1e4, 80], [-80, 0, 3], [-0.0, 1, -1]], dtype=dtype)
    target = BINARY_TARGET.astype(dtype)
    weight = np.array([1.0, 0.5, 2.0], dtype=dtype) if weights in ("weight", "both") else None
    pos = np.array([3.0, 0.5, 1.0], dtype=dtype) if weights in ("pos_weight", "both") else None
    check_edges(
        lambda z: F.binary_cross_entropy_with_logits(z, target, weight, reduction=reduction,
                                                     pos_weight=pos),
        lambda z: TF.binary_cross_entropy_with_logits(
            z, T.tensor(target), None if weight is None else T.tensor(weight),
            reduction=reduction, pos_weight=None if pos is None else T.tensor(pos)),
        [logits], rtol=1e-4, atol=1e-5,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["mse", "l1"])
def test_regression_losses_at_ties_and_infinities(name, dtype):
    x = edge_values(dtype)
    target = np.resize(np.array([0.0, -0.0, 1.0, INF, 3.0], dtype=dtype), x.shape)
    gw_loss = F.mse_loss if name == "mse" else F.l1_loss
    t_loss = TF.mse_loss if name == "mse" else TF.l1_loss
    for reduction in ("none", "sum"):
        check_edges(lambda a, r=reduction: gw_loss(a, target, reduction=r),
                    lambda a, r=reduction: t_loss(a, T.tensor(target), reduction=r), [x])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("ord", ["fro", "nuc", 1, -1, 2, -2, INF, -INF])
def test_matrix_norms(ord, dtype):
    matrices = [random_array((2, 3, 4), dtype), np.zeros((3, 3), dtype),
                np.diag([2.0, 2.0, 1.0]).astype(dtype), np.ones((1, 1), dtype)]
    for x in matrices:
        check_edges(lambda a: gw.linalg.matrix_norm(a, ord),
                    lambda a: T.linalg.matrix_norm(a, ord), [x], rtol=1e-4, atol=1e-5)


# ---- gradient clipping --------------------------------------------------------------------------
CLIP_CASES = {
    "inf_entry": [np.array([INF, 1.0, -2.0], np.float32)],
    "nan_entry": [np.array([NAN, 1.0], np.float32), np.array([3.0, 4.0], np.float32)],
    "norm_overflows_f64": [np.array([1e200, 1e200])],
    "norm_overflows_f32": [np.array([1e30, 1e30], np.float32)],
    "norm_underflows_f32": [np.array([1e-30, -1e-30], np.float32)],
    "zeros": [np.zeros(3, np.float32)],
    "mixed_dtypes": [np.array([3.0, 4.0], np.float32), np.array([[12.0]])],
    "empty_and_scalar": [np.zeros(0, np.float32), np.array(5.0, np.float32)],
    "small_norm": [np.array([0.1, -0.2], np.float32)],
}


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, INF])
@pytest.mark.parametrize("case", list(CLIP_CASES))
def test_clip_grad_norm_matches_torch_at_the_edges(case, norm_type):
    grads = CLIP_CASES[case]
    params = [gw.tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    t_params = [T.zeros(g.shape, dtype=T.from_numpy(g).dtype, requires_grad=True) for g in grads]
    for param, t_param, grad in zip(params, t_params, grads, strict=True):
        param.grad = grad.copy()
        t_param.grad = T.from_numpy(grad.copy())
    try:
        t_total = T.nn.utils.clip_grad_norm_(t_params, 1.0, norm_type=norm_type)
    except RuntimeError:  # the inf-norm of an empty gradient: no identity for max
        with pytest.raises(ValueError, match="empty tensor"):
            gw.nn.utils.clip_grad_norm_(params, 1.0, norm_type=norm_type)
        return
    with np.errstate(all="ignore"):
        total = gw.nn.utils.clip_grad_norm_(params, 1.0, norm_type=norm_type)
    np.testing.assert_allclose(total, t_total.item(), rtol=1e-6, equal_nan=True)
    for param, t_param in zip(params, t_params, strict=True):
        got, expected = np.asarray(param.grad), t_param.grad.numpy()
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0, equal_nan=True)


# ---- layers as modules (weights copied from torch; buffers compared after every step) -----------
def _finite(x: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x) & (np.abs(x) < 1e6), x, 0.0).astype(x.dtype)


MODULES = {
    "Linear": (lambda: (gw.nn.Linear(4, 3), T.nn.Linear(4, 3)),
               lambda: _finite(edge_matrix(np.float32, 5, 4))),
    "Conv2d": (lambda: (gw.nn.Conv2d(2, 3, 3, padding=1), T.nn.Conv2d(2, 3, 3, padding=1)),
               lambda: _finite(edge_image(np.float32))),
    "MaxPool2d": (lambda: (gw.nn.MaxPool2d(2, 2, 1), T.nn.MaxPool2d(2, 2, 1)),
                  lambda: edge_image(np.float32)),
    "MaxPool2d_overlapping": (lambda: (gw.nn.MaxPool2d(3, 1, 1), T.nn.MaxPool2d(3, 1, 1)),
                              lambda: edge_image(np.float32)),
    "AvgPool2d": (lambda: (gw.nn.AvgPool2d(2), T.nn.AvgPool2d(2)),
                  lambda: edge_image(np.float32)),
    "BatchNorm1d": (lambda: (gw.nn.BatchNorm1d(3), T.nn.BatchNorm1d(3)),
                    lambda: constant_channels(np.float32)),
    "BatchNorm2d": (lambda: (gw.nn.BatchNorm2d(2, momentum=None),
                             T.nn.BatchNorm2d(2, momentum=None)),
                    lambda: np.where(np.arange(2)[None, :, None, None] == 0, 3.0,
                                     random_array((4, 2, 3, 3), np.float32)).astype(np.float32)),
    "LayerNorm": (lambda: (gw.nn.LayerNorm(3), T.nn.LayerNorm(3)),
                  lambda: constant_channels(np.float32).transpose(0, 2, 1).copy()),
    "Embedding": (lambda: (gw.nn.Embedding(5, 3), T.nn.Embedding(5, 3)),
                  lambda: np.array([[0, 3, 3], [4, 3, 0]])),
    "ReLU": (lambda: (gw.nn.ReLU(), T.nn.ReLU()), lambda: edge_values(np.float32)),
    "LeakyReLU": (lambda: (gw.nn.LeakyReLU(0.2), T.nn.LeakyReLU(0.2)),
                  lambda: edge_values(np.float32)),
    "GELU": (lambda: (gw.nn.GELU("tanh"), T.nn.GELU("tanh")), lambda: edge_values(np.float32)),
    "Sigmoid": (lambda: (gw.nn.Sigmoid(), T.nn.Sigmoid()), lambda: edge_values(np.float32)),
    "Tanh": (lambda: (gw.nn.Tanh(), T.nn.Tanh()), lambda: edge_values(np.float32)),
    "Softmax": (lambda: (gw.nn.Softmax(1), T.nn.Softmax(1)), lambda: edge_rows(np.float32)),
    "LogSoftmax": (lambda: (gw.nn.LogSoftmax(1), T.nn.LogSoftmax(1)),
                   lambda: edge_rows(np.float32)),
    "Flatten": (lambda: (gw.nn.Flatten(), T.nn.Flatten()), lambda: edge_image(np.float32)),
    "Dropout": (lambda: (gw.nn.Dropout(0.0), T.nn.Dropout(0.0)), lambda: edge_values(np.float32)),
}


# torch's CPU batch norm computes x * (w invstd) + (b - mean w invstd): on a constant channel
# (invstd = 1/sqrt(eps), about 316) that leaves ~3e-5 of rounding where gradwise gives exactly 0
ATOL = {"BatchNorm1d": 1e-4, "BatchNorm2d": 1e-4}


@pytest.mark.parametrize("name", list(MODULES))
def test_layer_modules_at_edge_inputs(name):
    from nn.layer_helpers import assert_layer_matches_torch

    build, inputs = MODULES[name]
    gw_layer, torch_layer = build()
    assert_layer_matches_torch(gw_layer, torch_layer, inputs=inputs(), steps=2,
                               atol=ATOL.get(name, 1e-5))


# ---- empty batches ------------------------------------------------------------------------------
EMPTY_BATCH = {
    "conv2d": (lambda x, w: F.conv2d(x, w, padding=1), lambda x, w: TF.conv2d(x, w, padding=1),
               [(0, 2, 4, 4), (3, 2, 3, 3)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2), [(0, 2, 4, 4)]),
    "max_pool2d_padded": (lambda x: F.max_pool2d(x, 3, 1, 1), lambda x: TF.max_pool2d(x, 3, 1, 1),
                          [(0, 2, 4, 4)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), lambda x: TF.avg_pool2d(x, 2), [(0, 2, 4, 4)]),
    "layer_norm": (lambda x: F.layer_norm(x, 3), lambda x: TF.layer_norm(x, (3,)), [(0, 3)]),
    "batch_norm_eval": (lambda x: F.batch_norm(x, np.zeros(3), np.ones(3)),
                        lambda x: TF.batch_norm(x, T.zeros(3, dtype=x.dtype),
                                                T.ones(3, dtype=x.dtype)), [(0, 3)]),
    "softmax": (lambda x: x.softmax(axis=1), lambda x: x.softmax(dim=1), [(0, 3)]),
    "cross_entropy_sum": (lambda x: F.cross_entropy(x, np.zeros(0, np.int64), reduction="sum"),
                          lambda x: TF.cross_entropy(x, T.zeros(0, dtype=T.int64),
                                                     reduction="sum"), [(0, 3)]),
    "cross_entropy_none": (lambda x: F.cross_entropy(x, np.zeros(0, np.int64), reduction="none"),
                           lambda x: TF.cross_entropy(x, T.zeros(0, dtype=T.int64),
                                                      reduction="none"), [(0, 3)]),
    "nll_sum": (lambda x: F.nll_loss(x, np.zeros(0, np.int64), reduction="sum"),
                lambda x: TF.nll_loss(x, T.zeros(0, dtype=T.int64), reduction="sum"), [(0, 3)]),
    "mse_sum": (lambda x: F.mse_loss(x, np.zeros((0, 3), x.dtype), reduction="sum"),
                lambda x: TF.mse_loss(x, T.zeros((0, 3), dtype=x.dtype), reduction="sum"),
                [(0, 3)]),
    "bce_logits_sum": (
        lambda x: F.binary_cross_entropy_with_logits(x, np.zeros((0, 3), x.dtype),
                                                     reduction="sum"),
        lambda x: TF.binary_cross_entropy_with_logits(x, T.zeros((0, 3), dtype=x.dtype),
                                                      reduction="sum"), [(0, 3)]),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(EMPTY_BATCH))
def test_layers_and_losses_on_an_empty_batch(name, dtype):
    gw_fn, torch_fn, shapes = EMPTY_BATCH[name]
    check_edges(gw_fn, torch_fn, [random_array(shape, dtype, i) for i, shape in enumerate(shapes)])


@pytest.mark.parametrize(
    "loss",
    [lambda x: F.cross_entropy(x, np.zeros(0, np.int64)),
     lambda x: F.nll_loss(x, np.zeros(0, np.int64)),
     lambda x: F.mse_loss(x, np.zeros((0, 3), np.float32)),
     lambda x: F.l1_loss(x, np.zeros((0, 3), np.float32)),
     lambda x: F.binary_cross_entropy(x, np.zeros((0, 3), np.float32)),
     lambda x: F.binary_cross_entropy_with_logits(x, np.zeros((0, 3), np.float32))],
    ids=["cross_entropy", "nll", "mse", "l1", "bce", "bce_logits"],
)
def test_mean_losses_refuse_an_empty_batch(loss):
    # deliberate difference (docs/NUMERICS.md): torch returns NaN, gradwise names the problem
    with pytest.raises(ValueError, match="empty"):
        loss(gw.zeros(0, 3, requires_grad=True))
