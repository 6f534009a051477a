"""The edge grid's second axis: the gradient that arrives from above (issue 12, lead's family).

test_edges.py varies each op's inputs; here every op, layer and loss of that grid (and the
piecewise ops it lacked) also receives upstream gradients holding +-inf, NaN, 0, -0 and huge
values. torch's masked backward formulas *select* (``grad if active else 0``), so an inf or NaN
arriving where an op is flat (clipped, inactive, the losing side of a max) stays 0 there; a
product ``grad * mask`` would give inf * 0 = NaN. Each case compares gradients with torch in
float32 and float64 for every upstream pattern; a failure names the pattern.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels._jit import jit_enabled
from gradwise.nn import functional as F
from helpers import check_edges

T = pytest.importorskip("torch")
TF = T.nn.functional
edges = pytest.importorskip("autograd.test_edges")

DTYPES = [np.float32, np.float64]
INF, NAN = math.inf, math.nan


def _filled(value):
    return lambda shape, dtype: np.full(shape, value, dtype)


def _huge(shape, dtype):
    return np.full(shape, np.finfo(dtype).max / 2, dtype)


def _mixed(shape, dtype):
    cycle = np.array([1.0, INF, -INF, NAN, 0.0, -0.0, float(np.finfo(dtype).max) / 2, -1.5],
                     dtype)
    return np.resize(cycle, shape)


#: the upstream gradients sent into every case: name -> (shape, dtype) -> array
UPSTREAMS = {
    "ones": _filled(1.0), "inf": _filled(INF), "-inf": _filled(-INF), "nan": _filled(NAN),
    "zeros": _filled(0.0), "-zeros": _filled(-0.0), "huge": _huge, "mixed": _mixed,
}


def _huge_or_tiny(a):
    magnitude = np.abs(a)
    return np.isfinite(a) & ((magnitude > 1e30) | ((magnitude < 1e-30) & (magnitude > 0)))


def _nan(a):
    return np.isnan(a)


# Deliberate differences under a non-finite or huge upstream gradient: case name -> (which
# entries (rows) of the inputs differ, why). They are left out of the comparison, and with them
# put back some upstream pattern must still disagree, so this list cannot go stale.
# docs/NUMERICS.md ("Gradients arriving as inf or NaN") explains each.
UPSTREAM_DIFFERENCES = {
    "div_by": (lambda x: _huge_or_tiny(x[0]),
               "torch forms -grad a / (b b): b b overflows or underflows near the dtype's "
               "limits and gives NaN; gradwise divides twice, -grad (a / b) / b"),
    "div": (lambda x: _huge_or_tiny(x[1]) | _huge_or_tiny(x[0]), "as div_by"),
    "softplus": (lambda x: np.abs(x[0]) < 20,
                 "torch's grad e^x / (e^x + 1) overflows for a huge gradient; gradwise's "
                 "grad sigmoid(x) does not"),
    "softplus_beta": (lambda x: np.abs(x[0]) < 20, "as softplus"),
    "norm_half": (lambda x: (x[0] == 0).all(axis=1),
                  "the p < 1 norm of a zero row: gradwise selects 0 (norm'(0) = 0) for any "
                  "upstream gradient; torch multiplies and gives NaN under an inf one"),
    "nan_to_num": (lambda x: ~np.isfinite(x[0]).all(axis=1),
                   "torch's backward is grad * isfinite(x), NaN where an inf gradient meets a "
                   "replaced value; gradwise selects (0 there), as for every piecewise op"),
    # torch's own vectorised and scalar loops disagree at a NaN input (float64: 0 from the
    # vectorised loop, the gradient from the scalar tail); gradwise passes the gradient on
    "hardtanh-f64": (lambda x: _nan(x[0]), "torch's gradient at NaN depends on its loop"),
    "hardtanh_0_6-f64": (lambda x: _nan(x[0]), "as hardtanh"),
    "relu6-f64": (lambda x: _nan(x[0]), "as hardtanh"),
    "hardshrink-f64": (lambda x: _nan(x[0]), "as hardtanh"),
    "softshrink-f64": (lambda x: _nan(x[0]), "as hardtanh"),
    "elu_1": (lambda x: _nan(x[0]), "as hardtanh, both dtypes (test_edges.DIFFERENCES: elu-f32)"),
}


# Deliberate differences for one upstream pattern as a whole: case -> (pattern, why)
UPSTREAM_PATTERN_DIFFERENCES = {
    "softmax-f64": ("huge", "a constant gradient has softmax gradient 0: gradwise's "
                            "s (g - sum(g s)) gives exactly 0; torch's g s - s sum(g s) leaves "
                            "rounding residue of ~1e290 from a 9e307 gradient"),
    "var-f64": ("huge", "9e307 times (x - mean) overflows in a different order than torch's"),
}
# differences that come from the numba kernel's running sum: with GRADWISE_JIT=0 these cases
# must match torch instead
KERNEL_ROUNDING = {"softmax-f64"}


def _compare(gw_fn, torch_fn, arrays, skip=None, **options) -> None:
    for name, upstream in UPSTREAMS.items():
        if name == skip:
            with pytest.raises(AssertionError):
                check_edges(gw_fn, torch_fn, arrays, upstream=upstream, **options)
            continue
        try:
            check_edges(gw_fn, torch_fn, arrays, upstream=upstream, **options)
        except AssertionError as error:
            error.add_note(f"upstream gradient: {name}")
            raise


def check_upstreams(gw_fn, torch_fn, arrays, case_id=None, name=None, **options) -> None:
    """check_edges once per upstream pattern; rows listed in test_edges.DIFFERENCES are left out
    (they differ on purpose, whatever the upstream), and so are those of UPSTREAM_DIFFERENCES,
    which must still differ when put back."""
    if case_id in edges.DIFFERENCES:
        hit = edges.DIFFERENCES[case_id][0](arrays[0])
        arrays = [arrays[0][~hit], *arrays[1:]]
    skip = UPSTREAM_PATTERN_DIFFERENCES.get(case_id, (None,))[0]
    if case_id in KERNEL_ROUNDING and not jit_enabled():
        skip = None  # the NumPy reference sums pairwise, as torch does: torch's residue exactly
    if f"{name}-f64" in UPSTREAM_DIFFERENCES:
        name = f"{name}-{edges.tag(arrays[0].dtype)}"
    if name not in UPSTREAM_DIFFERENCES:
        _compare(gw_fn, torch_fn, arrays, skip, **options)
        return
    hit = UPSTREAM_DIFFERENCES[name][0](arrays)
    _compare(gw_fn, torch_fn, [a[~hit] for a in arrays], **options)
    with pytest.raises(AssertionError):
        _compare(gw_fn, torch_fn, arrays, **options)


def piecewise_values(dtype) -> np.ndarray:
    """The brief's probe (both sides of every clip point, the points themselves) and the edges."""
    probe = np.array([-7.0, -3.0, -1.0, -0.5, 0.0, -0.0, 0.5, 1.0, 3.0, 6.0, 7.0], dtype)
    return np.concatenate([probe, edges.edge_values(dtype)])


PIECEWISE = {
    "clamp": (lambda x: x.clamp(-1.0, 1.0), lambda x: x.clamp(-1.0, 1.0)),
    "clamp_min": (lambda x: x.clamp_min(0.5), lambda x: x.clamp_min(0.5)),
    "clamp_max": (lambda x: x.clamp_max(0.5), lambda x: x.clamp_max(0.5)),
    "hardtanh": (lambda x: F.hardtanh(x), lambda x: TF.hardtanh(x)),
    "hardtanh_0_6": (lambda x: F.hardtanh(x, 0.0, 6.0), lambda x: TF.hardtanh(x, 0.0, 6.0)),
    "relu6": (lambda x: F.relu6(x), lambda x: TF.relu6(x)),
    "hardsigmoid": (lambda x: F.hardsigmoid(x), lambda x: TF.hardsigmoid(x)),
    "hardswish": (lambda x: F.hardswish(x), lambda x: TF.hardswish(x)),
    "threshold": (lambda x: F.threshold(x, 0.5, -2.0), lambda x: TF.threshold(x, 0.5, -2.0)),
    "hardshrink": (lambda x: F.hardshrink(x), lambda x: TF.hardshrink(x)),
    "softshrink": (lambda x: F.softshrink(x), lambda x: TF.softshrink(x)),
    "relu": (lambda x: F.relu(x), lambda x: TF.relu(x)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1)),
    "elu_1": (lambda x: F.elu(x), lambda x: TF.elu(x)),
    "abs": (lambda x: x.abs(), lambda x: x.abs()),
    "maximum_0": (lambda x: gw.maximum(x, gw.zeros_like(x)),
                  lambda x: T.maximum(x, T.zeros_like(x))),
    "minimum_0": (lambda x: gw.minimum(x, gw.zeros_like(x)),
                  lambda x: T.minimum(x, T.zeros_like(x))),
    "masked_fill": (lambda x: x.masked_fill(x.detach() > 0.5, 2.0),
                    lambda x: x.masked_fill(x.detach() > 0.5, 2.0)),
    "dropout_eval": (lambda x: F.dropout(x, 0.5, training=False),
                     lambda x: TF.dropout(x, 0.5, training=False)),
    # smooth, but composed in gradwise once: one factor each, as torch's backward
    "silu": (lambda x: F.silu(x), lambda x: TF.silu(x)),
    "mish": (lambda x: F.mish(x), lambda x: TF.mish(x)),
    "softsign": (lambda x: F.softsign(x), lambda x: TF.softsign(x)),
    "logsigmoid": (lambda x: F.logsigmoid(x), lambda x: TF.logsigmoid(x)),
    "tanhshrink": (lambda x: F.tanhshrink(x), lambda x: TF.tanhshrink(x)),
}


#: softsign is x / (|x| + 1) composed: its gradient is a difference of two terms, which under
#: a 1.7e38 float32 gradient at x = 700 keeps 6e-5 of rounding where torch's one factor does not
PIECEWISE_RTOL = {"softsign": 1e-4}
#: the smooth ones are checked at first order only (their second derivatives are not selections)
SMOOTH = {"silu", "mish", "softsign", "logsigmoid", "tanhshrink"}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(PIECEWISE))
def test_piecewise_ops_select_the_upstream_gradient(name, dtype):
    gw_fn, torch_fn = PIECEWISE[name]
    check_upstreams(gw_fn, torch_fn, [piecewise_values(dtype)], name=name,
                    rtol=PIECEWISE_RTOL.get(name, 1e-5))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(edges.UNARY))
def test_unary_ops_under_non_finite_upstream_gradients(name, dtype):
    gw_fn, torch_fn = edges.UNARY[name]
    check_upstreams(gw_fn, torch_fn, [edges.edge_values(dtype)], f"{name}-{edges.tag(dtype)}",
                    name)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(edges.BINARY))
def test_binary_ops_under_non_finite_upstream_gradients(name, dtype):
    gw_fn, torch_fn = edges.BINARY[name]
    check_upstreams(gw_fn, torch_fn, list(edges.pair_values(dtype)), name=name)


TENSOR_BOUNDS = {
    "where_both": (lambda a, b, c: gw.where(a > c, a, b), lambda a, b, c: T.where(a > c, a, b)),
    # clamp with tensor bounds (lo > hi at some places: torch's min(max(x, lo), hi) gives hi);
    # the bounds receive gradients too
    "clamp_tensors": (lambda x, lo, hi: x.clamp(lo, hi), lambda x, lo, hi: x.clamp(lo, hi)),
    "clamp_min_tensor": (lambda x, lo, hi: x.clamp(min=lo), lambda x, lo, hi: x.clamp(min=lo)),
    "clamp_max_tensor": (lambda x, lo, hi: x.clamp(max=hi), lambda x, lo, hi: x.clamp(max=hi)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(TENSOR_BOUNDS))
def test_ops_with_tensor_operands_under_non_finite_upstream_gradients(name, dtype):
    gw_fn, torch_fn = TENSOR_BOUNDS[name]
    x = piecewise_values(dtype)
    lo = np.resize(np.array([-1.0, 0.0, -INF, 0.5], dtype), x.shape)
    hi = np.resize(np.array([1.0, 0.0, 3.0, INF, 6.0], dtype), x.shape)
    check_upstreams(gw_fn, torch_fn, [x, lo, hi])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(edges.REDUCE))
def test_reductions_under_non_finite_upstream_gradients(name, dtype):
    gw_fn, torch_fn = edges.REDUCE[name]
    check_upstreams(gw_fn, torch_fn, [edges.edge_rows(dtype)], f"{name}-{edges.tag(dtype)}",
                    name)


INDEXING = {
    "sort": (lambda x: x.sort(dim=1)[0], lambda x: x.sort(dim=1)[0]),
    "topk": (lambda x: x.topk(2, dim=1)[0], lambda x: x.topk(2, dim=1)[0]),
    "gather": (lambda x: x.gather(1, gw.tensor(np.array([[0, 0]] * 10))),
               lambda x: x.gather(1, T.tensor(np.array([[0, 0]] * 10)))),
    "index_select": (lambda x: x.index_select(1, gw.tensor(np.array([3, 1, 3]))),
                     lambda x: x.index_select(1, T.tensor(np.array([3, 1, 3])))),
    "scatter": (lambda x: x.scatter(1, gw.tensor(np.array([[0]] * 10)), 5.0),
                lambda x: x.scatter(1, T.tensor(np.array([[0]] * 10)), 5.0)),
    "take_along_dim": (lambda x: gw.take_along_dim(x, gw.tensor(np.array([[2, 2, 0]] * 10)), 1),
                       lambda x: T.take_along_dim(x, T.tensor(np.array([[2, 2, 0]] * 10)), 1)),
    "masked_select": (lambda x: x.masked_select(x.detach() > 0),
                      lambda x: x.masked_select(x.detach() > 0)),
    "nan_to_num": (lambda x: x.nan_to_num(), lambda x: x.nan_to_num()),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(INDEXING))
def test_indexing_ops_under_non_finite_upstream_gradients(name, dtype):
    gw_fn, torch_fn = INDEXING[name]
    rows = edges.edge_rows(dtype)
    if name == "topk":  # torch does not promise which of tied values topk returns
        rows = rows[[1, 2, 3]]
    check_upstreams(gw_fn, torch_fn, [rows], name=name)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(edges.SHAPE_OPS))
def test_shape_ops_under_non_finite_upstream_gradients(name, dtype):
    gw_fn, torch_fn = edges.SHAPE_OPS[name]
    check_upstreams(gw_fn, torch_fn, [edges.edge_matrix(dtype)])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(edges.LAYERS))
def test_pooling_under_non_finite_upstream_gradients(name, dtype):
    gw_fn, torch_fn = edges.LAYERS[name]
    check_upstreams(gw_fn, torch_fn, [edges.edge_image(dtype)])


# ---- create_graph=True: the differentiable backward selects the same way ------------------------
def _second_order(lib, fn, arrays, upstream, v):
    """First gradients with a differentiable backward, then the gradient of their projection on
    ``v`` with respect to the inputs and to the upstream gradient itself (float64)."""
    if lib is gw:
        xs = [gw.tensor(a.copy(), requires_grad=True) for a in arrays]
        up = gw.tensor(upstream.copy(), requires_grad=True)
        grad = gw.autograd.grad
    else:
        xs = [T.tensor(a.copy(), requires_grad=True) for a in arrays]
        up = T.tensor(upstream.copy(), requires_grad=True)
        grad = T.autograd.grad
    with np.errstate(all="ignore"):
        firsts = grad(fn(*xs), xs, up, create_graph=True, allow_unused=True)
        terms = [(g * lib.tensor(vi)).sum() for g, vi in zip(firsts, v, strict=True)
                 if g is not None and g.requires_grad]
        try:
            seconds = grad(sum(terms), [*xs, up], allow_unused=True) if terms else [None] * (
                len(xs) + 1)
        except RuntimeError as error:  # torch: "derivative for ... is not implemented"
            if lib is gw or "not implemented" not in str(error):
                raise
            seconds = None
    as_array = (lambda t: np.asarray(t)) if lib is gw else (
        lambda t: t.detach().numpy(force=True))
    if seconds is None:
        return [as_array(g) for g in firsts], None
    shapes = [a.shape for a in arrays] + [upstream.shape]
    return ([np.zeros(a.shape) if g is None else as_array(g) for g, a in zip(firsts, arrays,
                                                                               strict=True)],
            [np.zeros(s) if g is None else as_array(g) for g, s in zip(seconds, shapes,
                                                                        strict=True)])


# Deliberate differences of the create_graph path: case -> (which entries differ at second
# order, which upstream patterns (None: all), why). Left out, they must still differ when put
# back (docs/NUMERICS.md).
SECOND_ORDER_DIFFERENCES = {
    "elu_1": (lambda x: x[0] >= 0, {"inf", "-inf", "nan", "mixed"},
              "elu'' at x >= 0 under an inf or NaN gradient: torch's double "
              "backward multiplies grad by the mask (x <= 0), NaN; gradwise selects, 0"),
    "binary_div": (lambda x: np.ones(x[0].shape, bool), {"huge"},
                   "as div in UPSTREAM_DIFFERENCES: b b overflows in torch"),
}
#: torch computes hardsigmoid's create_graph backward with a float32 1/6 even in float64
SECOND_ORDER_RTOL = {"hardsigmoid": 1e-7}
SECOND_ORDER = {**{k: v for k, v in PIECEWISE.items() if k not in SMOOTH},
                **{f"binary_{k}": v for k, v in edges.BINARY.items()}}


def _second_order_mismatches(name, gw_fn, torch_fn, arrays, patterns, orders) -> list[str]:
    v = [np.random.default_rng(i).uniform(0.5, 1.5, a.shape) for i, a in enumerate(arrays)]
    rtol = SECOND_ORDER_RTOL.get(name, 1e-10)
    found = []
    for pattern in patterns:
        upstream = UPSTREAMS[pattern](arrays[0].shape, np.float64)
        ours = _second_order(gw, gw_fn, arrays, upstream, v)
        theirs = _second_order(T, torch_fn, arrays, upstream, v)
        for order in orders:
            if theirs[order - 1] is None:  # torch has no double backward here (hardsigmoid)
                continue
            pairs = zip(ours[order - 1], theirs[order - 1], strict=True)
            for i, (got, want) in enumerate(pairs):
                try:
                    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12, equal_nan=True)
                except AssertionError as error:
                    found.append(f"order {order}, input {i}, upstream {pattern}: {error}")
    return found


@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_create_graph_backward_selects_like_torch_float64(name):
    gw_fn, torch_fn = SECOND_ORDER[name]
    if name.startswith("binary_"):
        arrays = list(edges.pair_values(np.float64))
        case = name.removeprefix("binary_")
    else:
        arrays, case = [piecewise_values(np.float64)], name
    if f"{case}-f64" in UPSTREAM_DIFFERENCES:
        case = f"{case}-f64"
    if case in UPSTREAM_DIFFERENCES:
        hit = UPSTREAM_DIFFERENCES[case][0](arrays)
        arrays = [a[~hit] for a in arrays]
    select, patterns, _why = SECOND_ORDER_DIFFERENCES.get(name, (None, None, ""))
    patterns = set(patterns or UPSTREAMS)
    found = _second_order_mismatches(name, gw_fn, torch_fn, arrays, list(UPSTREAMS), (1,))
    if select is None:
        found += _second_order_mismatches(name, gw_fn, torch_fn, arrays, list(UPSTREAMS), (2,))
        assert not found, "\n".join(found[:3])
        return
    hit = select(arrays)
    others = [p for p in UPSTREAMS if p not in patterns]
    found += _second_order_mismatches(name, gw_fn, torch_fn, arrays, others, (2,))
    found += _second_order_mismatches(name, gw_fn, torch_fn, [a[~hit] for a in arrays],
                                      sorted(patterns), (2,))
    assert not found, "\n".join(found[:3])
    assert _second_order_mismatches(name, gw_fn, torch_fn, arrays, sorted(patterns), (2,)), (
        f"{name}: the deliberate difference is gone; update SECOND_ORDER_DIFFERENCES")
