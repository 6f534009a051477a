"""The edge grid's ops beyond test_edges.py (issue 12, part C): trigonometric, hyperbolic and
special functions, the binary ops atan2/hypot/remainder/fmod, cumulative reductions, median,
indexed writes, einsum and the linear-algebra functions, at the edge values and under
non-finite upstream gradients, in float32 and float64 against torch.

The registry walk (``test_every_function_class_is_in_an_edge_grid``) runs every case of the
edge grids once and fails when a ``Function`` subclass of gradwise is reached by none of them
and is not listed in ``OPS_NOT_IN_GRID`` with its reason.
"""

from __future__ import annotations

import importlib
import math
import pkgutil

import numpy as np
import pytest

import gradwise as gw
from helpers import check_edges

T = pytest.importorskip("torch")
edges = pytest.importorskip("autograd.test_edges")
upstream = pytest.importorskip("autograd.test_edges_upstream")

DTYPES = [np.float32, np.float64]
INF, NAN = math.inf, math.nan
TS = T.special

UNARY = {
    "sin": (lambda x: x.sin(), lambda x: x.sin()),
    "cos": (lambda x: x.cos(), lambda x: x.cos()),
    "tan": (lambda x: x.tan(), lambda x: x.tan()),
    "asin": (lambda x: x.asin(), lambda x: x.asin()),
    "acos": (lambda x: x.acos(), lambda x: x.acos()),
    "atan": (lambda x: x.atan(), lambda x: x.atan()),
    "sinh": (lambda x: x.sinh(), lambda x: x.sinh()),
    "cosh": (lambda x: x.cosh(), lambda x: x.cosh()),
    "asinh": (lambda x: x.asinh(), lambda x: x.asinh()),
    "acosh": (lambda x: x.acosh(), lambda x: x.acosh()),
    "atanh": (lambda x: x.atanh(), lambda x: x.atanh()),
    "expm1": (lambda x: x.expm1(), lambda x: x.expm1()),
    "log1p": (lambda x: x.log1p(), lambda x: x.log1p()),
    "erf": (lambda x: x.erf(), lambda x: x.erf()),
    "erfc": (lambda x: x.erfc(), lambda x: x.erfc()),
    "erfinv": (lambda x: x.erfinv(), lambda x: x.erfinv()),
    "sinc": (lambda x: x.sinc(), lambda x: x.sinc()),
    "lgamma": (lambda x: x.lgamma(), lambda x: x.lgamma()),
    "digamma": (lambda x: x.digamma(), lambda x: x.digamma()),
    "polygamma_1": (lambda x: gw.special.polygamma(1, x), lambda x: T.polygamma(1, x)),
    "i0": (lambda x: gw.special.i0(x), lambda x: TS.i0(x)),
    "i0e": (lambda x: gw.special.i0e(x), lambda x: TS.i0e(x)),
    "i1": (lambda x: gw.special.i1(x), lambda x: TS.i1(x)),
    "i1e": (lambda x: gw.special.i1e(x), lambda x: TS.i1e(x)),
    "ndtr": (lambda x: gw.special.ndtr(x), lambda x: TS.ndtr(x)),
    "log_ndtr": (lambda x: gw.special.log_ndtr(x), lambda x: TS.log_ndtr(x)),
    "ndtri": (lambda x: gw.special.ndtri(x), lambda x: TS.ndtri(x)),
    "erfcx": (lambda x: gw.special.erfcx(x), lambda x: TS.erfcx(x)),
    "entr": (lambda x: gw.special.entr(x), lambda x: TS.entr(x)),
    "logit": (lambda x: x.logit(), lambda x: x.logit()),
    "logit_eps": (lambda x: x.logit(0.1), lambda x: x.logit(0.1)),
    **{name: (lambda x, n=name: getattr(x, n)(), lambda x, n=name: getattr(x, n)())
       for name in ("sign", "floor", "ceil", "round", "trunc")},
}

BINARY = {
    "atan2": (lambda a, b: a.atan2(b), lambda a, b: a.atan2(b)),
    "hypot": (lambda a, b: a.hypot(b), lambda a, b: a.hypot(b)),
    "copysign": (lambda a, b: a.copysign(b), lambda a, b: a.copysign(b)),
    "remainder": (lambda a, b: a.remainder(b), lambda a, b: a.remainder(b)),
    "fmod": (lambda a, b: a.fmod(b), lambda a, b: a.fmod(b)),
}

ROWS = {
    "cumsum": (lambda x: x.cumsum(1), lambda x: x.cumsum(1)),
    "cumprod": (lambda x: x.cumprod(1), lambda x: x.cumprod(1)),
    "logcumsumexp": (lambda x: x.logcumsumexp(1), lambda x: x.logcumsumexp(1)),
    "median_all": (lambda x: x.median(), lambda x: x.median()),
    "prod": (lambda x: x.prod(1), lambda x: x.prod(1)),
    "prod_all": (lambda x: x.prod(), lambda x: x.prod()),
    "nansum": (lambda x: x.nansum(1), lambda x: x.nansum(1)),
    "nanmean": (lambda x: x.nanmean(1), lambda x: x.nanmean(1)),
    "setitem": (lambda x: _set_row(x, 1), lambda x: _set_row(x, 1)),
    # one op since the ONNX work (Tile); the copies' gradients add up
    "repeat": (lambda x: x.repeat(2, 1, 3), lambda x: x.repeat(2, 1, 3)),
}


def _set_row(x, row):
    """x * 2 with row ``row`` overwritten by x's first row (an indexed write, SetItem)."""
    y = x * 2
    y[row] = x[0]
    return y


def _negative_integers(arrays):
    x = arrays[0]
    with np.errstate(invalid="ignore"):
        return (x < 0) & (np.floor(x) == x)


def _huge_over_tiny(arrays):
    a, b = arrays
    return np.isfinite(a) & (np.abs(a) > 1e30) & (np.abs(b) < 1e-30) & (b != 0)


# Deliberate differences (docs/NUMERICS.md, "Layers, losses and models at the edges"):
# case -> (which elements differ, given the input arrays; why). Each must still differ.
DIFFERENCES: dict[str, tuple] = {
    **{f"digamma-{tag}": (_negative_integers, "the poles at -1, -2, ... (and -inf): torch's "
                          "reflection formula gives huge finite values or NaN, gradwise inf")
       for tag in ("f32", "f64")},
    **{f"polygamma_1-{tag}": (lambda arrays: _negative_integers(arrays) | (arrays[0] == INF),
                              "as digamma; and at +inf the gradient's limit -0 where torch "
                              "gives NaN") for tag in ("f32", "f64")},
    "logit-f64": (lambda arrays: (arrays[0] == 0) & np.signbit(arrays[0]),
                  "the slope at -0: torch's float64 kernel gives +inf or -inf by the element's "
                  "position (vectorised body or scalar tail); gradwise +inf, the limit from "
                  "inside [0, 1]"),
    "logit_eps-f64": (lambda arrays: np.isnan(arrays[0]), "at NaN with eps: torch's float64 "
                      "kernel gives 0 or NaN by the element's position; gradwise NaN"),
    "log_ndtr-f32": (lambda arrays: arrays[0] < -50, "the gradient in the far left tail in "
                     "float32 (-80, -700): both round; the true values are 80.0125 and "
                     "700.0014, gradwise 80.004 and 697.1, torch 80.005 and 688.3"),
    **{f"{name}-{tag}": (_huge_over_tiny, "fmod(8.9e307, 2.2e-308) is exactly 0 (every float "
                         "that large is a multiple of the smallest normal); torch's "
                         "a - trunc(a / b) b overflows to NaN")
       for name in ("remainder", "fmod") for tag in ("f32", "f64")},
}


#: binary ops whose gradient under a huge (half the largest) upstream gradient differs
HUGE_UPSTREAM_DIFFERS = {
    "atan2": "an intermediate product of torch's formula overflows to inf; gradwise's "
             "gradient (grad times a slope of at most 1 / |b|) stays finite",
    "hypot": "as atan2",
}


def _check(name, gw_fn, torch_fn, arrays, **options):
    if name not in DIFFERENCES:
        check_edges(gw_fn, torch_fn, arrays, **options)
        return
    select, _why = DIFFERENCES[name]
    hit = select(arrays)
    check_edges(gw_fn, torch_fn, [a[~hit] for a in arrays], **options)
    with pytest.raises(AssertionError):
        check_edges(gw_fn, torch_fn, arrays, **options)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_ops_at_edge_values_and_upstreams(name, dtype):
    gw_fn, torch_fn = UNARY[name]
    _check(f"{name}-{edges.tag(dtype)}", gw_fn, torch_fn, [edges.edge_values(dtype)],
           rtol=1e-4 if dtype == np.float32 else 1e-7)
    finite = np.array([-0.5, 0.0, -0.0, 0.25, 0.75], dtype)
    upstream.check_upstreams(gw_fn, torch_fn, [finite], name=name)
    for shape in ((0,), (1,), (), (0, 3)):
        check_edges(gw_fn, torch_fn, [np.full(shape, 0.5, dtype)])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_ops_at_edge_pairs_and_upstreams(name, dtype):
    gw_fn, torch_fn = BINARY[name]
    a, b = edges.pair_values(dtype)
    _check(f"{name}-{edges.tag(dtype)}", gw_fn, torch_fn, [a, b])
    finite = [np.array([-1.5, 0.0, 2.0, 3.0], dtype), np.array([2.0, 1.0, -0.75, 0.5], dtype)]
    if name in HUGE_UPSTREAM_DIFFERS:  # that pattern must still differ, every other agree
        upstream._compare(gw_fn, torch_fn, finite, skip="huge")
    else:
        upstream.check_upstreams(gw_fn, torch_fn, finite, name=name)
    check_edges(gw_fn, torch_fn, [np.ones((0, 3), dtype), np.ones((1, 3), dtype)])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(ROWS))
def test_row_ops_at_edge_rows_and_upstreams(name, dtype):
    gw_fn, torch_fn = ROWS[name]
    rows = edges.edge_rows(dtype)
    if name == "median_all":  # one value for the whole tensor: one row at a time
        for row in rows:
            check_edges(gw_fn, torch_fn, [row.copy()])
    else:
        check_edges(gw_fn, torch_fn, [rows])
        upstream.check_upstreams(gw_fn, torch_fn, [np.arange(12.0).reshape(3, 4).astype(dtype)
                                                   - 5], name=name)
    check_edges(gw_fn, torch_fn, [np.ones((2, 1), dtype)])


def _matrices(dtype):
    """Square matrices where linear algebra is delicate: zero, singular, with a zero
    eigenvalue, identity-like with signed zeros, 1x1, and a batch."""
    return [np.zeros((3, 3), dtype), np.array([[1.0, 2.0], [2.0, 4.0]], dtype),
            np.array([[2.0, -0.0], [0.0, 1.0]], dtype), np.array([[4.0]], dtype),
            np.stack([np.eye(2), [[2.0, 1.0], [1.0, 2.0]]]).astype(dtype)]


def _sym(x):
    return (x + x.mT) / 2


LINALG = {
    "det": (lambda x: gw.linalg.det(x), lambda x: T.linalg.det(x)),
    "slogdet": (lambda x: gw.linalg.slogdet(x).logabsdet, lambda x: T.linalg.slogdet(x)[1]),
    "inv": (lambda x: gw.linalg.inv(x), lambda x: T.linalg.inv(x)),
    "solve": (lambda x: gw.linalg.solve(x, x.mT @ x + 1.0),
              lambda x: T.linalg.solve(x, x.mT @ x + 1.0)),
    "cholesky": (lambda x: gw.linalg.cholesky(_sym(x)), lambda x: T.linalg.cholesky(_sym(x))),
    "eigvalsh": (lambda x: gw.linalg.eigvalsh(_sym(x)), lambda x: T.linalg.eigvalsh(_sym(x))),
    "svdvals": (lambda x: gw.linalg.svdvals(x), lambda x: T.linalg.svdvals(x)),
    "pinv": (lambda x: gw.linalg.pinv(x), lambda x: T.linalg.pinv(x)),
    "matrix_norm_2": (lambda x: gw.linalg.matrix_norm(x, 2), lambda x: T.linalg.matrix_norm(x, 2)),
    "einsum_trace": (lambda x: gw.einsum("...ii->...", x), lambda x: T.einsum("...ii->...", x)),
    "einsum_outer": (lambda x: gw.einsum("...ij,...kj->...ik", x, x),
                     lambda x: T.einsum("...ij,...kj->...ik", x, x)),
}
#: gradients whose value at a repeated or zero singular value/eigenvalue is a convention of the
#: decomposition's derivative (1 / (s_i - s_j)): only values are compared there
VALUES_ONLY_AT_TIES = {"eigvalsh", "svdvals", "pinv", "matrix_norm_2"}
#: deliberate differences at the singular matrices (docs/NUMERICS.md): values compared only
AT_SINGULAR = {
    "det": "gradwise's gradient is the adjugate (the derivative; test_torch_functions.py), "
           "torch's SVD-based one gives 0 for a rank-1 2x2",
    "slogdet": "log|det| = -inf has no gradient: gradwise's backward raises naming the "
               "singular matrix; torch returns inf/NaN",
}
#: empty matrices where gradwise raises and torch returns a value (docs/NUMERICS.md)
EMPTY_RAISES = {"matrix_norm_2": "the largest singular value of no singular values: gradwise "
                                 "raises (as for the inf-norm of an empty vector), torch gives 0"}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(LINALG))
def test_linear_algebra_at_singular_zero_and_empty_matrices(name, dtype):
    gw_fn, torch_fn = LINALG[name]
    for i, x in enumerate(_matrices(dtype)):
        tied = i in (0, 1, 4) and name in VALUES_ONLY_AT_TIES
        singular = i in (0, 1) and name in AT_SINGULAR
        check_edges(gw_fn, torch_fn, [x], rtol=1e-4, atol=1e-5, grad=not (tied or singular))
    for shape in ((0, 0), (2, 0, 0), (1, 1)):
        x = np.full(shape, 2.0, dtype)
        if name in EMPTY_RAISES and 0 in shape:
            with pytest.raises(ValueError, match="non-empty"):
                gw_fn(gw.tensor(x, requires_grad=True))
            continue
        check_edges(gw_fn, torch_fn, [x], rtol=1e-4, atol=1e-5)


QR_SVD_EIGH = {
    "qr_q": (lambda x: gw.linalg.qr(x).Q, lambda x: T.linalg.qr(x).Q),
    "qr_r": (lambda x: gw.linalg.qr(x).R, lambda x: T.linalg.qr(x).R),
    "svd_projector_u": (lambda x: (lambda u: u[:, :1] @ u[:, :1].mT)(
        gw.linalg.svd(x, full_matrices=False).U),
        lambda x: (lambda u: u[:, :1] @ u[:, :1].mT)(T.linalg.svd(x, full_matrices=False).U)),
    "svd_projector_vh": (lambda x: (lambda v: v[:1].mT @ v[:1])(
        gw.linalg.svd(x, full_matrices=False).Vh),
        lambda x: (lambda v: v[:1].mT @ v[:1])(T.linalg.svd(x, full_matrices=False).Vh)),
    "eigh_projector": (lambda x: (lambda v: v[:, :1] @ v[:, :1].mT)(
        gw.linalg.eigh(_sym(x)).eigenvectors),
        lambda x: (lambda v: v[:, :1] @ v[:, :1].mT)(T.linalg.eigh(_sym(x)).eigenvectors)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(QR_SVD_EIGH))
def test_decompositions_at_signed_zeros_and_one_by_one(name, dtype):
    # distinct singular values/eigenvalues (the derivative exists), with signed zeros, and 1x1
    gw_fn, torch_fn = QR_SVD_EIGH[name]
    for x in (np.array([[3.0, -0.0], [0.0, 1.0], [0.5, 0.0]], dtype), np.array([[2.0]], dtype),
              np.array([[2.0, 1.0], [0.0, -1.0]], dtype)):
        x = x if name != "eigh_projector" or x.shape[0] == x.shape[1] else x[:2]
        check_edges(gw_fn, torch_fn, [x], rtol=1e-4, atol=1e-5)


# ---- the registry walk --------------------------------------------------------------------------
#: Function classes no edge grid reaches, with the reason. Exactly these: a new op fails the
#: walk until it has a case here or in test_edges.py, test_edges_upstream.py or
#: tests/nn/test_layer_edges.py; an op a case reaches must come off the list.
OPS_NOT_IN_GRID = {
    "_QrPart": "a base class (QrQ, QrR are in the grid)",
    "_SvdPart": "a base class (SvdU, SvdS, SvdVh are in the grid)",
    "_Unary": "a base class of the special functions",
    "_PiecewiseConstant": "a base class (Sign, Floor, Ceil, Round, Trunc are in the grid)",
    "Logaddexp": "its grid is in test_edge_regressions_review4.py, without (-inf, -inf), where "
                 "gradwise gives a zero gradient and torch NaN (docs/NUMERICS.md)",
    "_AllReduceSum": "SyncBatchNorm's collective: needs a process group (tests/distributed)",
    "_SyncBatchNormFunction": "needs a process group (tests/distributed)",
    "_BackwardHookIdentity": "a module's backward hook, no arithmetic",
    "ZeroLink": "joins a create_graph gradient to its input with a zero (only in backward_graph)",
    "NormalCDF": "only inside GELU's create_graph backward (test_higher_order.py)",
    "DiagonalScatter": "only inside Diagonal's create_graph backward "
                       "(test_edge_regressions_review5.py)",
    "UnfoldBackward": "only inside Unfold's create_graph backward "
                      "(test_edge_regressions_review6.py)",
}


def _all_function_classes() -> dict[str, type]:
    for module in pkgutil.walk_packages(gw.__path__, "gradwise."):
        importlib.import_module(module.name)

    def below(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    # op_name: the class's own name (its __name__ is torch's node name, MmBackward0); a per-call
    # subclass carrying only such a name is its op's class
    return {cls.op_name: cls for cls in below(gw.Function)
            if cls.__module__.startswith("gradwise.") and cls.forward is not gw.Function.forward
            and not cls.__dict__.get("_is_variant")}


def _reached_classes() -> set[str]:
    from nn import test_layer_edges as layers

    reached: set[str] = set()

    def run(fn, arrays):
        xs = [gw.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        try:
            with np.errstate(all="ignore"):
                out = fn(*xs)
        except (ValueError, RuntimeError, IndexError, TypeError):
            return
        reached.update(cls.op_name for cls in layers._function_classes(layers._outputs(out)))

    f64 = np.float64
    tables = [(edges.UNARY, [edges.edge_values(f64)]), (edges.BINARY, list(edges.pair_values(f64))),
              (edges.REDUCE, [edges.edge_rows(f64)]), (edges.SHAPE_OPS, [edges.edge_matrix(f64)]),
              (edges.LAYERS, [edges.edge_image(f64)]),
              (upstream.PIECEWISE, [upstream.piecewise_values(f64)]),
              (upstream.INDEXING, [edges.edge_rows(f64)]), (UNARY, [np.full(3, 0.5)]),
              (BINARY, [np.full(3, 0.5), np.full(3, 2.0)]), (ROWS, [edges.edge_rows(f64)])]
    for table, arrays in tables:
        for gw_fn, _torch_fn in table.values():
            run(gw_fn, arrays)
    for gw_fn, _torch_fn, shapes in edges.MATMUL.values():
        run(gw_fn, [edges.random_array(shape, f64, i) for i, shape in enumerate(shapes)])
    for table in (LINALG, QR_SVD_EIGH):
        for gw_fn, _torch_fn in table.values():
            run(gw_fn, [np.array([[3.0, 1.0], [1.0, 2.0]])])
    for build, specs in layers.CASES.values():
        call, _, _, _ = layers._build_both(build, f64)
        run(call, [a for _g, a in layers._arrays(specs, f64, "plain")])
    return reached


def test_every_function_class_is_in_an_edge_grid():
    ops = _all_function_classes()
    reached = _reached_classes()
    missing = sorted(set(ops) - reached - set(OPS_NOT_IN_GRID))
    assert not missing, f"Function classes no edge-grid case reaches: {missing}"
    now_reached = sorted(set(OPS_NOT_IN_GRID) & reached)
    assert not now_reached, f"reached now, take off OPS_NOT_IN_GRID: {now_reached}"
    assert set(OPS_NOT_IN_GRID) <= set(ops), "OPS_NOT_IN_GRID names an op that does not exist"
