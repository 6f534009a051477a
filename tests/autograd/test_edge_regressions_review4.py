"""The fourth reviewer's reports on the engine's edges (issue 12, edges-fix4), each compared with
torch 2.13 on the reported case and on a small grid of its family (float32 and float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")
TF = torch.nn.functional
INF, NAN = math.inf, math.nan
DTYPES = ["float32", "float64"]


def _tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}


# ---- 1. index_put is recorded ---------------------------------------------------------------
INDEX_CASES = [
    # (self shape, indices, values shape)
    ((5,), ([0, 2, 2],), (3,)),
    ((5,), ([1, 1, 4],), ()),
    ((3, 4), ([0, 2], [1, 1]), (2,)),
    ((3, 4), ([2, 0, 2],), (3, 4)),
    ((3, 4), ([1, 1],), (4,)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("how", ["method", "function", "inplace"])
@pytest.mark.parametrize("case", range(len(INDEX_CASES)))
def test_index_put_gradients_match_torch(dtype, accumulate, how, case):
    shape, idx, vshape = INDEX_CASES[case]
    if not accumulate and any(len(set(i)) < len(i) for i in idx):
        idx = tuple(sorted(set(i)) for i in idx[:1]) + idx[1:]
        if len(idx) > 1:
            pytest.skip("non-accumulating repeated index: torch's result is undefined")
        vshape = vshape if vshape in [(), shape[1:]] else (len(idx[0]), *shape[1:])
    rng = np.random.default_rng(case)
    xs, vs = rng.standard_normal(shape).astype(dtype), rng.standard_normal(vshape).astype(dtype)
    up = rng.standard_normal(shape).astype(dtype)
    results = []
    for lib in (torch, gw):
        x = lib.tensor(xs, requires_grad=True)
        v = lib.tensor(vs, requires_grad=True)
        index = tuple(lib.tensor(i) for i in idx)
        if how == "method":
            y = x.index_put(index, v, accumulate=accumulate)
        elif how == "function":
            y = lib.index_put(x, index, v, accumulate=accumulate)
        else:
            y = (x * 1).index_put_(index, v, accumulate=accumulate)
        assert y.requires_grad
        (y * lib.tensor(up)).sum().backward()
        results.append([np.asarray(t.detach()) for t in (y, x.grad, v.grad)])
    for mine, theirs in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(mine, theirs, **_tol(dtype))


def test_index_put_without_grad_stays_outside_the_graph():
    y = gw.zeros(4).index_put((gw.tensor([1, 1]),), gw.tensor(2.0), accumulate=True)
    assert not y.requires_grad
    np.testing.assert_array_equal(np.asarray(y), [0, 4, 0, 0])


# ---- 2. scaled_dot_product_attention with a row that may attend nowhere ---------------------
SDPA_MASKS = ["bool-row", "float-row", "bool-all", "bool-batch-broadcast", "causal-like-float"]


def _sdpa_mask(kind, lib, dtype):
    bool_mask = np.ones((3, 4), dtype=bool)
    if kind == "bool-row":
        bool_mask[1] = False
    elif kind == "bool-all":
        bool_mask[:] = False
    elif kind == "bool-batch-broadcast":
        bool_mask = np.ones((2, 1, 3, 4), dtype=bool)
        bool_mask[0, 0, 2] = False
        bool_mask[1, 0, 0, 1:] = False
    if kind.startswith("bool"):
        return lib.tensor(bool_mask)
    mask = np.zeros((3, 4), dtype=dtype)
    mask[0] = -INF
    mask[2, 1:] = -INF
    return lib.tensor(mask)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", SDPA_MASKS)
def test_sdpa_fully_masked_row_is_zero_with_finite_gradients(dtype, kind):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((2, 2, shape, 5)).astype(dtype) for shape in (3, 4, 4)]
    up = rng.standard_normal((2, 2, 3, 5)).astype(dtype)
    results = []
    for lib, fn in ((torch, TF.scaled_dot_product_attention),
                    (gw, gw.nn.functional.scaled_dot_product_attention)):
        q, k, v = (lib.tensor(a, requires_grad=True) for a in arrays)
        out = fn(q, k, v, attn_mask=_sdpa_mask(kind, lib, dtype))
        (out * lib.tensor(up)).sum().backward()
        results.append([np.asarray(t.detach()) for t in (out, q.grad, k.grad, v.grad)])
    for mine, theirs in zip(results[1], results[0], strict=True):
        assert np.isfinite(mine).all()
        np.testing.assert_allclose(mine, theirs, **_tol(dtype))


# ---- shared: first and second derivatives of an elementwise op vs torch ------------------------
def _derivatives(lib, fn, arrays, second):
    """fn's value, gradients and (``second``) the gradients of sum(first gradients)."""
    inputs = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = fn(lib, *inputs)
    grads = lib.autograd.grad(out.sum(), inputs, create_graph=second)
    found = [out, *grads]
    if second:
        total = sum(g.sum() for g in grads)
        found += list(lib.autograd.grad(total, inputs, allow_unused=True))
    return [None if t is None else np.asarray(t.detach()) for t in found]


def _compare(fn, arrays, dtype, second=False):
    """Values, gradients and (float64, ``second``) second derivatives against torch; the
    second derivatives to 1e-9 (each library rounds its own composed formula)."""
    theirs = _derivatives(torch, fn, arrays, second)
    mine = _derivatives(gw, fn, arrays, second)
    for index, (m, t) in enumerate(zip(mine, theirs, strict=True)):
        t = np.zeros_like(mine[0]) if t is None else t  # torch's unused (None) second derivatives
        tol = _tol(dtype) if index <= len(arrays) else {"rtol": 1e-9, "atol": 1e-9}
        np.testing.assert_allclose(m, t, equal_nan=True, err_msg=f"result {index}", **tol)


# ---- 3. hypot and sinc at subnormal inputs ------------------------------------------------
def _edge_values(dtype):
    info = np.finfo(dtype)
    sub = float(info.smallest_subnormal) * 8
    return [0.0, sub, -sub, float(info.tiny), 1e-20, -0.5, 1.5, 3.0, INF, NAN]


@pytest.mark.parametrize("dtype", DTYPES)
def test_hypot_gradients_at_subnormal_and_edge_inputs(dtype):
    values = _edge_values(dtype)
    a, b = (np.array(v, dtype=dtype).reshape(-1) for v in np.meshgrid(values, values))
    _compare(lambda lib, x, y: lib.hypot(x, y), [a, b], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sinc_gradients_at_subnormal_and_edge_inputs(dtype):
    x = np.array(_edge_values(dtype) + [1.0, -2.0, 1e-3], dtype=dtype)
    _compare(lambda lib, t: lib.sinc(t), [x], dtype)


def test_sinc_second_derivative_matches_torch():
    """Away from 0 (gradwise's documented 0 there, torch's NaN: review 3's test) and 1e-20
    (both round their cancelling formula differently: docs/NUMERICS.md)."""
    x = np.array([-0.5, 1.5, 3.0, 1.0, -2.0, 1e-3, INF, NAN])
    _compare(lambda lib, t: lib.sinc(t), [x], "float64", second=True)


def test_hypot_second_derivatives_match_torch():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 6))
    a[0], b[0] = 1e-310, 0.0
    _compare(lambda lib, x, y: lib.hypot(x, y), [a, b], "float64", second=True)


# ---- 4. copysign: zeros for other, 0 at self == 0 --------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_copysign_gradients_match_torch(dtype):
    values = [0.0, -0.0, 2.0, -3.0, INF, -INF, NAN, 1e-310 if dtype == "float64" else 1e-40]
    a, b = (np.array(v, dtype=dtype).reshape(-1) for v in np.meshgrid(values, values))
    _compare(lambda lib, x, y: lib.copysign(x, y), [a, b], dtype)


def test_copysign_other_gets_zeros_not_none_and_broadcasts():
    for lib in (torch, gw):
        a = lib.tensor([[0.0, 2.0, -1.0]], requires_grad=True)
        b = lib.tensor([[1.0], [-1.0]], requires_grad=True)
        ga, gb = lib.autograd.grad(lib.copysign(a, b).sum(), [a, b])
        np.testing.assert_array_equal(np.asarray(ga), [[0.0, 0.0, 0.0]])
        np.testing.assert_array_equal(np.asarray(gb), [[0.0], [0.0]])
    x = gw.tensor([1.0, -2.0], dtype=gw.float64, requires_grad=True)
    (g,) = gw.autograd.grad(gw.copysign(x, gw.tensor([-1.0, 1.0])).sum(), x, create_graph=True)
    np.testing.assert_array_equal(np.asarray(g.detach()), [-1.0, -1.0])


# ---- 5. logaddexp at infinities: torch's derivatives ---------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_logaddexp_gradients_match_torch(dtype):
    values = [-INF, -2.0, 0.0, 1.0, 30.0, INF, NAN]
    a, b = (np.array(v, dtype=dtype).reshape(-1) for v in np.meshgrid(values, values))
    both_neg_inf = (a == -INF) & (b == -INF)  # gradwise 0, torch NaN (documented)
    a, b = a[~both_neg_inf], b[~both_neg_inf]
    _compare(lambda lib, x, y: lib.logaddexp(x, y), [a, b], dtype, second=dtype == "float64")


def test_logaddexp_of_two_minus_infinities_has_zero_gradient():
    a = gw.tensor([-INF], requires_grad=True)
    b = gw.tensor([-INF], requires_grad=True)
    gw.logaddexp(a, b).sum().backward()
    assert np.asarray(a.grad).tolist() == [0.0] and np.asarray(b.grad).tolist() == [0.0]


# ---- 6. cummax / cummin on empty tensors ----------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["cummax", "cummin"])
@pytest.mark.parametrize(("shape", "dim"), [((3, 0), 1), ((3, 0), 0), ((0,), 0), ((0, 2), -1)])
def test_cumulative_extremes_of_empty_tensors_match_torch(dtype, op, shape, dim):
    results = []
    for lib in (torch, gw):
        x = lib.tensor(np.zeros(shape, dtype=dtype), requires_grad=True)
        values, indices = getattr(x, op)(dim)
        values.sum().backward()
        results.append((values.shape, indices.shape, str(indices.dtype).split(".")[-1],
                        tuple(x.grad.shape)))
    assert tuple(results[1][0]) == tuple(results[0][0])
    assert tuple(results[1][1]) == tuple(results[0][1])
    assert results[1][2:] == results[0][2:]


# ---- 9. clip_grad_norm_ with norm_type 0, -inf and negative orders --------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", [0.0, -INF, -1.0, 0.5, 1.0, 2.0, INF])
@pytest.mark.parametrize("grads", [[[3.0, -4.0], [0.0, 1.0]], [[0.3, -0.2], [0.1, 0.05]],
                                   [[0.0, 0.0], [0.0, 0.0]]])
def test_clip_grad_norm_orders_match_torch(dtype, norm_type, grads):
    results = []
    for lib in (torch, gw):
        params = [lib.zeros(2, dtype=getattr(lib, dtype), requires_grad=True) for _ in grads]
        for p, g in zip(params, grads, strict=True):
            p.grad = lib.tensor(np.array(g, dtype=dtype))
        total = lib.nn.utils.clip_grad_norm_(params, 0.5, norm_type=norm_type)
        results.append([float(total)] + [np.asarray(p.grad) for p in params])
    for mine, theirs in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(mine, theirs, **_tol(dtype))


# ---- 7. quantile with NaN: the gradient reaches the NaN, as torch -----------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["quantile", "nanquantile"])
@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "nearest", "midpoint"])
def test_quantile_with_nan_gradients_match_torch(dtype, op, interpolation):
    x = np.array([[1.0, NAN, 2.0, 0.5], [NAN, NAN, 2.0, 3.0], [3.0, 1.0, 2.0, 4.0],
                  [NAN, NAN, NAN, NAN]], dtype=dtype)
    results = []
    for lib in (torch, gw):
        t = lib.tensor(x, requires_grad=True)
        q = lib.tensor(np.array([0.0, 0.3, 0.5, 1.0], dtype=dtype))
        out = getattr(lib, op)(t, q, dim=1, interpolation=interpolation)
        (g,) = lib.autograd.grad(out.sum(), t)
        whole = getattr(lib, op)(t, 0.5)
        (g_all,) = lib.autograd.grad(whole, t)
        results.append([np.asarray(v.detach()) for v in (out, g, whole, g_all)])
    for mine, theirs in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(mine, theirs, equal_nan=True, **_tol(dtype))


# ---- 10. the differences documented in docs/NUMERICS.md (fourth review), pinned --------------
def test_documented_differences_still_hold():
    # xlogy: d/dx at (0, inf) and d/dy at (0, 0) are 0 (torch inf and NaN)
    for lib, want_dx, want_dy in ((gw, 0.0, 0.0), (torch, INF, NAN)):
        x = lib.tensor([0.0, 0.0], dtype=lib.float64, requires_grad=True)
        y = lib.tensor([INF, 0.0], dtype=lib.float64, requires_grad=True)
        lib.xlogy(x, y).sum().backward()
        np.testing.assert_equal(np.asarray(x.grad)[0], want_dx)
        np.testing.assert_equal(np.asarray(y.grad)[1], want_dy)
    # binary_cross_entropy's target gradient at p = 0 and 1: +-100 / N (clamped logs), torch inf
    for lib, fn, want in ((gw, gw.nn.functional.binary_cross_entropy, 100 / 2),
                          (torch, TF.binary_cross_entropy, INF)):
        t = lib.tensor([0.3, 0.3], dtype=lib.float64, requires_grad=True)
        fn(lib.tensor([0.0, 1.0], dtype=lib.float64), t).backward()
        np.testing.assert_allclose(np.asarray(t.grad), [want, -want])
    # topk among ties: a stable order in gradwise; the values agree with torch
    ties = [1.0, 1.0, 2.0, 1.0]
    mine, theirs = gw.tensor(ties).topk(2), torch.tensor(ties).topk(2)
    assert np.asarray(mine.indices).tolist() == [2, 0]
    np.testing.assert_array_equal(np.asarray(mine.values), theirs.values.numpy())
