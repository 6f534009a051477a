"""The second-order edge grid for the ops of ``test_edges_ops.py`` (issue 12): trigonometric,
hyperbolic and special functions, atan2/hypot/copysign/remainder/fmod, the cumulative
reductions (cumsum, cumprod, logcumsumexp, cummax, cummin), median, prod, nansum/nanmean,
indexed writes, the piecewise and indexing ops of ``test_edges_upstream.py``, einsum and the
linear-algebra functions, run through double backward in float64 against torch.autograd.

Each case takes the first gradient with ``create_graph=True`` and then the gradient of
sum(grad * v) (``helpers.check_second_order_edges``), at inputs holding 0, -0, +-inf, NaN, ties,
huge and tiny values, and on size-0 and size-1 shapes; values and NaN/inf positions must agree.
Where gradwise differs on purpose the case is in ``DIFFERENCES`` with the reason (also in
docs/NUMERICS.md) and the test asserts it still differs, so the list cannot go stale.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradwise as gw
from helpers import check_second_order_edges

T = pytest.importorskip("torch")
edges = pytest.importorskip("autograd.test_edges")
upstream = pytest.importorskip("autograd.test_edges_upstream")
ops = pytest.importorskip("autograd.test_edges_ops")

F64 = np.float64
INF, NAN = math.inf, math.nan


def _negative_integers(arrays):
    a = arrays[0]
    with np.errstate(invalid="ignore"):
        return (a < 0) & (np.floor(a) == a)


def _isnan(arrays):
    return np.isnan(arrays[0])


def _huge(arrays):
    return np.isfinite(arrays[0]) & (np.abs(arrays[0]) > 1e300)


def _rows_with_ties_after_squaring(arrays):
    squared = arrays[0] ** 2
    ordered = np.sort(squared, axis=1)
    return (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)


def _square_underflows(arrays):
    with np.errstate(all="ignore"):
        return sum(a * a for a in arrays) == 0


def _underflowing_nonzero(arrays):
    a = arrays[0]
    return (a != 0) & (np.abs(a) < 1e-150)


_LOOP_DEPENDENT_NAN = ("NaN inputs: torch's kernel gives the gradient 0 or 1 by the element's "
                       "position (vectorised body or scalar tail), gradwise one rule (the "
                       "first-order grid's difference; docs/NUMERICS.md)")

# case id -> (which elements (or rows) differ, given the input arrays; why). The case runs
# without them, where it must agree with torch, and whole, where it must still differ.
# docs/NUMERICS.md ("Second derivatives at the edges") gives each.
DIFFERENCES: dict[str, tuple] = {
    "unary-lgamma": (_negative_integers,
                     "lgamma's second derivative (trigamma) at its poles: gradwise +inf "
                     "(scipy), torch a large finite series value (the first-order difference "
                     "of polygamma(1, x), one order up)"),
    "unary-digamma": (lambda arrays: _negative_integers(arrays) | np.isinf(arrays[0]),
                      "the poles (first derivative: gradwise inf, torch huge or NaN) and "
                      "+inf (second: gradwise polygamma(2, inf) = -0, the limit; torch NaN)"),
    "unary-polygamma_1": (lambda arrays: _negative_integers(arrays) | np.isinf(arrays[0]),
                          "as digamma, one order up"),
    "unary-sinc": (lambda arrays: np.abs(arrays[0]) < 1e-300,
                   "sinc's second derivative at 0: 0 (the guarded branch), torch NaN"),
    "unary-logit": (lambda arrays: _underflowing_nonzero(arrays) & (arrays[0] < 0),
                    "x just below 0 where x^2 underflows: torch's second pass divides by "
                    "(x (1 - x))^2 = 0 (0/0 = NaN); gradwise divides twice (x / b / b) and "
                    "keeps the filled NaN's derivative at -0"),
    "unary-logit_eps": (_underflowing_nonzero, "as logit, on both sides of 0"),
    "unary-log_ndtr": (lambda arrays: arrays[0] < -500,
                       "the far left tail (x = -700): both round a cancelling formula; the "
                       "true second derivative is -0.9999980, gradwise -1.0000208, torch "
                       "-1.0000181"),
    "binary-atan2": (_square_underflows,
                     "atan2's second derivative at the origin (and where y^2 + x^2 "
                     "underflows): 0, the guarded branch, where torch gives NaN "
                     "(docs/NUMERICS.md: no NaN from a point the first derivative defines)"),
    "binary-hypot": (lambda arrays: (np.hypot(*arrays) < 1e-300) & (np.hypot(*arrays) > 0),
                     "a subnormal hypot: gradwise differentiates the ratio a / hypot to "
                     "the exact 0; torch's (grad * a) / hypot rounds to -5e291"),
    "binary-copysign": (lambda arrays: (np.abs(arrays[0]) < 1e-300) | ~np.isfinite(arrays[0]),
                        "d/da of copysign's gradient (a piecewise constant +-1) at a = 0, "
                        "+-inf and NaN: 0, as abs's; torch's result / a differentiates to "
                        "0/0 or inf/inf = NaN there"),
    **{f"piecewise-{name}{power}": (_isnan, _LOOP_DEPENDENT_NAN)
       for name in ("hardtanh", "hardtanh_0_6", "relu6", "hardshrink", "softshrink", "elu_1")
       for power in ("", "^2") if f"{name}{power}" != "elu_1^2"},
    "piecewise-elu_1^2": (lambda arrays: arrays[0] == INF,
                          "elu(x)^2 at +inf: 2 f'^2 + 2 f f'' with f'' = 0 selected exactly "
                          "(2 w v); torch's inf * 0 = NaN"),
    "piecewise-mish": (_huge, "mish's second derivative at x = max/4: 0, the limit; torch "
                              "NaN (an overflowed inf times 0, as gelu in "
                              "test_edges_second_order.py)"),
    "indexing-topk": (_rows_with_ties_after_squaring,
                      "rows with ties: topk picks another of the equal values (docs/NUMERICS.md: "
                      "a stable sort's order; torch documents none)"),
}
#: torch has no second derivative for these (its backward op is not differentiable): the
#: first gradient is compared, and gradwise's second derivative is its value almost everywhere
TORCH_HAS_NO_SECOND = {
    name: "derivative for aten::hardsigmoid_backward is not implemented; gradwise gives "
          "hardsigmoid'' = 0" for name in ("piecewise-hardsigmoid", "piecewise-hardsigmoid^2")}


def check(case_id: str, gw_fn, torch_fn, arrays) -> None:
    if case_id in TORCH_HAS_NO_SECOND:
        with pytest.raises(RuntimeError, match="not implemented"):
            check_second_order_edges(gw_fn, torch_fn, arrays)
        if not case_id.endswith("^2"):  # the second derivative itself: 0 everywhere
            x = gw.tensor(arrays[0].copy(), requires_grad=True)
            (g,) = gw.autograd.grad(gw_fn(x).sum(), x, create_graph=True)
            (second,) = gw.autograd.grad(g.sum(), x)
            assert not np.asarray(second).any()
        return
    if case_id not in DIFFERENCES:
        check_second_order_edges(gw_fn, torch_fn, arrays)
        return
    select, _why = DIFFERENCES[case_id]
    hit = select(arrays)
    check_second_order_edges(gw_fn, torch_fn, [a[~hit] for a in arrays])
    with pytest.raises(AssertionError):
        check_second_order_edges(gw_fn, torch_fn, arrays)


@pytest.mark.parametrize("name", list(ops.UNARY))
def test_unary_second_derivatives_at_edge_values(name):
    gw_fn, torch_fn = ops.UNARY[name]
    check(f"unary-{name}", gw_fn, torch_fn, [edges.edge_values(F64)])


@pytest.mark.parametrize("shape", [(0,), (0, 3), (1,), ()], ids=str)
@pytest.mark.parametrize("name", list(ops.UNARY))
def test_unary_second_derivatives_on_empty_and_single_element_shapes(name, shape):
    gw_fn, torch_fn = ops.UNARY[name]
    check_second_order_edges(gw_fn, torch_fn, [np.full(shape, 0.5)])


@pytest.mark.parametrize("name", list(ops.BINARY))
def test_binary_second_derivatives_at_edge_pairs(name):
    gw_fn, torch_fn = ops.BINARY[name]
    check(f"binary-{name}", gw_fn, torch_fn, list(edges.pair_values(F64)))
    check_second_order_edges(gw_fn, torch_fn, [np.ones((0, 3)), np.ones((1, 3))])


CUMULATIVE = {
    **{name: ops.ROWS[name] for name in ops.ROWS},
    "cumprod_0": (lambda x: x.cumprod(0), lambda x: x.cumprod(0)),
    "logcumsumexp_0": (lambda x: x.logcumsumexp(0), lambda x: x.logcumsumexp(0)),
    "cummax": (lambda x: x.cummax(1)[0] ** 2, lambda x: x.cummax(1)[0] ** 2),
    "cummin": (lambda x: x.cummin(1)[0] ** 2, lambda x: x.cummin(1)[0] ** 2),
    "median_dim": (lambda x: x.median(1)[0] ** 2, lambda x: x.median(1)[0] ** 2),
    "cumsum_squared": (lambda x: (x * x).cumsum(1), lambda x: (x * x).cumsum(1)),
}


@pytest.mark.parametrize("name", list(CUMULATIVE))
def test_row_op_second_derivatives_over_edge_rows(name):
    gw_fn, torch_fn = CUMULATIVE[name]
    rows = edges.edge_rows(F64)
    if name == "median_all":
        for row in rows:
            check(f"rows-{name}", gw_fn, torch_fn, [row.copy()])
    else:
        check(f"rows-{name}", gw_fn, torch_fn, [rows])
    for shape in ((2, 1), (1, 3), (0, 3), (3, 0)):
        if name == "median_all" and 0 in shape:
            continue  # torch refuses the median of nothing; the first-order grid checks it
        check(f"rows-{name}", gw_fn, torch_fn, [edges.random_array(shape, F64)])


@pytest.mark.parametrize("name", list(upstream.PIECEWISE))
def test_piecewise_second_derivatives_at_their_kinks_and_edges(name):
    gw_fn, torch_fn = upstream.PIECEWISE[name]
    check(f"piecewise-{name}", gw_fn, torch_fn, [upstream.piecewise_values(F64)])
    # squared: the second derivative 2 f'(x)^2 + 2 f f'' meets the kinks
    check(f"piecewise-{name}^2", lambda x: gw_fn(x) ** 2, lambda x: torch_fn(x) ** 2,
          [upstream.piecewise_values(F64)])


@pytest.mark.parametrize("name", list(upstream.INDEXING))
def test_indexing_second_derivatives_over_edge_rows(name):
    gw_fn, torch_fn = upstream.INDEXING[name]
    check(f"indexing-{name}", lambda x: gw_fn(x * x), lambda x: torch_fn(x * x),
          [edges.edge_rows(F64)])


@pytest.mark.parametrize("name", list(ops.LINALG))
def test_linear_algebra_second_derivatives_at_zero_singular_and_empty_matrices(name):
    gw_fn, torch_fn = ops.LINALG[name]
    for i, x in enumerate(ops._matrices(F64)):
        tied = i in (0, 1, 4) and name in ops.VALUES_ONLY_AT_TIES
        singular = i in (0, 1) and name in ops.AT_SINGULAR
        if tied or singular:
            continue  # a convention of the first derivative there (test_edges_ops.py)
        check_second_order_edges(gw_fn, torch_fn, [x], rtol=1e-6, atol=1e-8)
    for shape in ((0, 0), (2, 0, 0), (1, 1)):
        if name in ops.EMPTY_RAISES and 0 in shape:
            continue  # raises (test_edges_ops.py)
        check_second_order_edges(gw_fn, torch_fn, [np.full(shape, 2.0)], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", list(ops.QR_SVD_EIGH))
def test_decomposition_second_derivatives_at_signed_zeros_and_one_by_one(name):
    gw_fn, torch_fn = ops.QR_SVD_EIGH[name]
    for x in (np.array([[3.0, -0.0], [0.0, 1.0], [0.5, 0.0]]), np.array([[2.0]]),
              np.array([[2.0, 1.0], [0.0, -1.0]])):
        x = x if name != "eigh_projector" or x.shape[0] == x.shape[1] else x[:2]
        check_second_order_edges(gw_fn, torch_fn, [x], rtol=1e-6, atol=1e-8)


# ---- which create_graph gradients carry a graph (issue 12, item d) -------------------------------
#: torch's rule is structural: a gradient requires grad where its backward read a tensor that
#: requires grad, so the gradient of x * 3 is a constant and relu's (threshold_backward reads x)
#: is not. Cases where gradwise's structure differs, with the reason (docs/NUMERICS.md):
STRUCTURE_DIFFERS = {
    "hardsigmoid": "torch's hardsigmoid_backward has no derivative (differentiating it again "
                   "raises); gradwise gives its 0",
    **{name: "a composite of where in gradwise (torch's own backward node reads x): the "
             "gradient is a constant, so differentiating it again raises where torch gives 0"
       for name in ("threshold", "hardshrink", "softshrink")},
    "batch_norm_eval": "an affine map of x in gradwise (its gradient a constant); torch's "
                       "native_batch_norm_backward reads x, so its gradient requires grad",
}
_W, _B = np.linspace(-1, 1, 16).reshape(2, 8), np.array([0.25, -0.5])
LAYERS = {
    "linear_relu_fused": (
        lambda x: gw.nn.functional._linear_relu(x.reshape(2, 8), gw.tensor(_W), gw.tensor(_B)),
        lambda x: T.relu(T.nn.functional.linear(x.reshape(2, 8), T.tensor(_W), T.tensor(_B)))),
    "max_pool2d": (lambda x: gw.nn.functional.max_pool2d(x.reshape(1, 1, 4, 4), 2),
                   lambda x: T.nn.functional.max_pool2d(x.reshape(1, 1, 4, 4), 2)),
    "avg_pool2d": (lambda x: gw.nn.functional.avg_pool2d(x.reshape(1, 1, 4, 4), 2),
                   lambda x: T.nn.functional.avg_pool2d(x.reshape(1, 1, 4, 4), 2)),
    "batch_norm_eval": (
        lambda x: gw.nn.functional.batch_norm(x.reshape(2, 2, 4), np.zeros(2), np.ones(2),
                                              training=False),
        lambda x: T.nn.functional.batch_norm(x.reshape(2, 2, 4), T.zeros(2, dtype=T.float64),
                                             T.ones(2, dtype=T.float64), training=False)),
}
STRUCTURE_TABLES = {
    "unary": (edges.UNARY, 1, (6,)), "binary": (edges.BINARY, 2, (6,)),
    "reduce": (edges.REDUCE, 1, (3, 4)), "piecewise": (upstream.PIECEWISE, 1, (6,)),
    "indexing": (upstream.INDEXING, 1, (10, 4)), "ops_unary": (ops.UNARY, 1, (6,)),
    "ops_binary": (ops.BINARY, 2, (6,)), "rows": (ops.ROWS, 1, (3, 4)),
    "layers": (LAYERS, 1, (16,)),
}
STRUCTURE_CASES = [(table, name) for table, (cases, _n, _s) in STRUCTURE_TABLES.items()
                   for name in cases]


def _structure(xs, out, w, grad, n_inputs):
    """(first gradients' requires_grad, their None-ness, and for the first that requires grad,
    which inputs its own gradient reaches (None-ness), or 'raises')."""
    first = grad(out, xs, w, create_graph=True, allow_unused=True)
    requires = [g is not None and g.requires_grad for g in first]
    second = None
    if any(requires):
        g = first[requires.index(True)]
        second = [s is None for s in grad(g.sum(), xs, allow_unused=True)]
    return requires, [g is None for g in first], second


@pytest.mark.parametrize(("table", "name"), STRUCTURE_CASES, ids=[f"{t}-{n}" for t, n in
                                                                   STRUCTURE_CASES])
def test_create_graph_gradients_require_grad_where_torchs_do(table, name):
    cases, n_inputs, shape = STRUCTURE_TABLES[table]
    gw_fn, torch_fn = cases[name]
    arrays = [edges.random_array(shape, F64, i) for i in range(n_inputs)]
    arrays = [np.abs(a) + 0.25 if name in ("sqrt", "log", "acosh", "lgamma", "digamma")
              else a / 2 for a in arrays]  # inside every op's domain, away from its kinks
    xs = [gw.tensor(a.copy(), requires_grad=True) for a in arrays]
    t_xs = [T.tensor(a.copy(), requires_grad=True) for a in arrays]
    out, t_out = gw_fn(*xs), torch_fn(*t_xs)
    w = np.linspace(0.5, 1.5, int(np.prod(t_out.shape))).reshape(tuple(t_out.shape))
    try:
        expected = _structure(t_xs, t_out, T.tensor(w), T.autograd.grad, n_inputs)
    except RuntimeError as error:  # torch cannot differentiate that backward again
        assert name in STRUCTURE_DIFFERS, error
        return
    got = _structure(xs, out, gw.tensor(w), gw.autograd.grad, n_inputs)
    if name in STRUCTURE_DIFFERS:
        assert got != expected, f"{name}: agrees with torch now; take it off STRUCTURE_DIFFERS"
    else:
        assert got == expected, (name, "gradwise", got, "torch", expected)


def test_gradient_that_does_not_reach_the_input_is_none_or_an_error_as_torch():
    # d(x * w)/dx = w: differentiating it again with respect to x meets an unused input
    for grad, make in ((gw.autograd.grad, gw.tensor), (T.autograd.grad, T.tensor)):
        x = make(np.array([1.0, 2.0]), requires_grad=True)
        w = make(np.array([3.0, -1.0]), requires_grad=True)
        (g,) = grad((x * w).sum(), x, create_graph=True)
        with pytest.raises(RuntimeError, match="not used|not been used|allow_unused"):
            grad(g.sum(), x, retain_graph=True)
        assert grad(g.sum(), [x, w], allow_unused=True, retain_graph=True)[0] is None
        zeros, ones = grad(g.sum(), [x, w], materialize_grads=True, retain_graph=True)
        np.testing.assert_array_equal(np.asarray(zeros.detach()), [0.0, 0.0])
        np.testing.assert_array_equal(np.asarray(ones.detach()), [1.0, 1.0])
        # the gradient of x * 3 is a constant: no graph, so no second derivative at all
        (c,) = grad((x * 3).sum(), x, create_graph=True)
        assert not c.requires_grad
        with pytest.raises(RuntimeError, match="does not require grad"):
            grad(c.sum(), x)


def test_relu_family_gradients_differentiate_to_zeros_not_none():
    x = np.array([-1.0, 0.5, 2.0])
    for fn in (lambda t: t.relu(), lambda t: t.abs(), lambda t: t.clamp(-1, 1) * 1,
               lambda t: gw.nn.functional.leaky_relu(t, 0.1)
               if isinstance(t, gw.Tensor) else T.nn.functional.leaky_relu(t, 0.1)):
        got = []
        for grad, make in ((gw.autograd.grad, gw.tensor), (T.autograd.grad, T.tensor)):
            t = make(x.copy(), requires_grad=True)
            (g,) = grad(fn(t).sum(), t, create_graph=True)
            if not g.requires_grad:
                got.append("constant")
                continue
            (second,) = grad(g.sum(), t, allow_unused=True)
            if isinstance(second, T.Tensor):  # torch may answer with a ZeroTensor
                second = second.detach().numpy(force=True)
            got.append(None if second is None else np.asarray(second).tolist())
        assert got[0] == got[1]


# ---- cumprod and logcumsumexp at every position of NaN, 0 and +-inf (issue 12, items b, c) ----
def _planted_rows():
    """1-d rows of four with one or two special values planted at every position (a zero
    beside a NaN or an inf too)."""
    base = np.array([2.0, -0.5, 3.0, 1.5])
    specials = [NAN, 0.0, INF, -INF]
    rows = []
    for first in specials:
        for i in range(4):
            row = base.copy()
            row[i] = first
            rows.append(row)
            for second in (0.0, NAN, INF):
                for j in range(4):
                    if j != i:
                        pair = row.copy()
                        pair[j] = second
                        rows.append(pair)
    return np.array(rows)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("op", ["cumprod", "logcumsumexp"])
def test_running_op_second_derivatives_with_nan_zero_and_inf_at_every_position(op, dim):
    rows = _planted_rows()  # (n_cases, 4)

    def run(axis):
        return lambda t: getattr(t, op)(axis)

    for row in rows:  # 1-d, one slice (torch's zero test is per tensor, so one at a time)
        check_second_order_edges(run(0), run(0), [row])
    for start in range(0, len(rows) - 15, 16):  # 2-d: slices with and without zeros together
        grid = rows[start:start + 16].reshape(8, 8)
        for x in (grid, np.where(grid == 0, 0.75, grid)):  # the second has no zero at all
            check_second_order_edges(run(dim), run(dim), [x])
