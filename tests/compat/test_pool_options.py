"""Pooling with all of torch's options, swept over a grid against torch (values, output shapes,
gradients, indices and errors): ceil_mode (with torch's rule that the last window starts inside
the input or the left padding), dilation, count_include_pad, divisor_override, return_indices,
1-d, 2-d and 3-d, batched and unbatched, float32 and float64, ties, -inf and NaN."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gradwise as gw
import gradwise.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

SIZES = {1: [(5,), (7,), (4,)], 2: [(5, 6), (7, 4), (2, 3)], 3: [(5, 4, 6), (3, 5, 4), (2, 2, 2)]}
KERNELS = {1: [1, 2, 3], 2: [2, 3, (3, 2)], 3: [2, (3, 2, 2)]}
STRIDES = {1: [None, 1, 2, 3], 2: [None, 1, 2, (2, 3)], 3: [None, 2, (1, 2, 3)]}


def _values(shape, dtype, rng, special=None):
    # small integers: many ties, so the tie rule is exercised everywhere
    x = rng.integers(-3, 4, size=shape).astype(dtype)
    if special is not None:
        flat = x.reshape(-1)
        flat[rng.choice(flat.size, size=max(1, flat.size // 4), replace=False)] = special
    return x


def _compare(gw_fn, torch_fn, x, rng, label, exact=True):
    """Run both; the same error or the same values, shapes, gradients (and indices)."""
    xt = torch.tensor(x, requires_grad=True)
    try:
        want = torch_fn(xt)
    except RuntimeError as error:
        with pytest.raises((ValueError, TypeError)):
            gw_fn(gw.tensor(x, requires_grad=True))
        return f"error: {error}"
    xg = gw.tensor(x, requires_grad=True)
    got = gw_fn(xg)
    if isinstance(want, tuple):
        (want, want_index), (got, got_index) = want, got
        np.testing.assert_array_equal(np.asarray(got_index), want_index.numpy(), err_msg=label)
        assert np.asarray(got_index).dtype == np.int64, label
    assert tuple(got.shape) == tuple(want.shape), label
    assert np.asarray(got).dtype == x.dtype, label
    tol = dict(rtol=0, atol=0) if exact else dict(rtol=2e-6 if x.dtype == np.float32 else 1e-12,
                                                   atol=1e-6 if x.dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(np.asarray(got), want.detach().numpy(), err_msg=label, **tol)
    upstream = rng.standard_normal(tuple(want.shape)).astype(x.dtype)
    (want * torch.tensor(upstream)).sum().backward()
    (got * gw.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(np.asarray(xg.grad), xt.grad.numpy(), err_msg=label,
                               rtol=2e-6 if x.dtype == np.float32 else 1e-12,
                               atol=1e-6 if x.dtype == np.float32 else 1e-12)
    return "ok"


def _grid(rank):
    return itertools.product(SIZES[rank], KERNELS[rank], STRIDES[rank], [0, 1], [False, True])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_max_pool_grid_matches_torch(rank, dtype):
    rng = np.random.default_rng(rank)
    ours, theirs = getattr(F, f"max_pool{rank}d"), getattr(TF, f"max_pool{rank}d")
    outcomes = []
    for size, kernel, stride, padding, ceil_mode in _grid(rank):
        for dilation, return_indices, batch in ((1, False, (2, 3)), (2, True, (3,)),
                                                (1, True, (2, 1))):
            kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                          ceil_mode=ceil_mode, return_indices=return_indices)
            x = _values(batch + size, dtype, rng)
            label = f"{batch + size} {kwargs}"
            outcomes.append(_compare(lambda t, kw=kwargs: ours(t, **kw),
                                     lambda t, kw=kwargs: theirs(t, **kw), x, rng, label))
    # the grid reaches both outcomes, so neither side of the comparison is vacuous
    assert outcomes.count("ok") > len(outcomes) // 2
    assert any(o.startswith("error") for o in outcomes)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_avg_pool_grid_matches_torch(rank, dtype):
    rng = np.random.default_rng(10 + rank)
    ours, theirs = getattr(F, f"avg_pool{rank}d"), getattr(TF, f"avg_pool{rank}d")
    outcomes = []
    for size, kernel, stride, padding, ceil_mode in _grid(rank):
        for count_include_pad, divisor in ((True, None), (False, None), (True, 5), (False, 3)):
            if rank == 1 and divisor is not None:
                continue  # avg_pool1d has no divisor_override in torch
            kwargs = dict(kernel_size=kernel, stride=stride, padding=padding,
                          ceil_mode=ceil_mode, count_include_pad=count_include_pad)
            if divisor is not None:
                kwargs["divisor_override"] = divisor
            batch = (2, 2) if count_include_pad else (3,)
            x = rng.standard_normal(batch + size).astype(dtype)
            label = f"{batch + size} {kwargs}"
            outcomes.append(_compare(lambda t, kw=kwargs: ours(t, **kw),
                                     lambda t, kw=kwargs: theirs(t, **kw), x, rng, label,
                                     exact=False))
    assert outcomes.count("ok") > len(outcomes) // 2
    assert any(o.startswith("error") for o in outcomes)


@pytest.mark.parametrize("special", [-np.inf, np.nan, np.inf])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_max_pool_special_values_pick_torchs_element(rank, special):
    # -inf windows pick their first real element (never padding), NaN windows their last NaN
    rng = np.random.default_rng(20 + rank)
    ours, theirs = getattr(F, f"max_pool{rank}d"), getattr(TF, f"max_pool{rank}d")
    size = SIZES[rank][0]
    for kernel, padding, dilation, ceil_mode in ((2, 1, 1, True), (3, 1, 2, False),
                                                 (3, 0, 1, True), (2, 0, 1, False)):
        kwargs = dict(kernel_size=kernel, stride=2, padding=padding, dilation=dilation,
                      ceil_mode=ceil_mode, return_indices=True)
        x = _values((2, 2) + size, np.float64, rng, special)
        if special == -np.inf:
            x[0, 0] = -np.inf  # a whole plane of -inf
        assert _compare(lambda t, kw=kwargs: ours(t, **kw), lambda t, kw=kwargs: theirs(t, **kw),
                        x, rng, f"{special} {kwargs}") == "ok"


def test_default_options_keep_the_fast_ops():
    # the everyday calls still record the 2-d ops (numba kernels), options the N-d op
    x = gw.zeros(2, 8, 6, 6, requires_grad=True)
    assert F.max_pool2d(x, 2).grad_fn.name == "MaxPool2d"
    assert F.max_pool2d(x, 3, 3, ceil_mode=True).grad_fn.name == "MaxPool2d"
    assert F.max_pool2d(x, 2, 2, ceil_mode=True).grad_fn.name == "MaxPool2d"
    assert F.avg_pool2d(x, 3, 1, 1).grad_fn.name == "AvgPool2d"
    assert F.max_pool2d(x, 2, dilation=2).grad_fn.name == "MaxPoolNd"
    assert F.max_pool2d(x, 3, 2, ceil_mode=True).grad_fn.name == "MaxPoolNd"
    assert F.avg_pool2d(x, 3, 1, 1, count_include_pad=False).grad_fn.name == \
        "AvgPoolNd"


@pytest.mark.parametrize(("call", "message"), [
    (lambda x: F.max_pool2d(x, 2, padding=2), "at most half"),
    (lambda x: F.max_pool2d(x, 9), "Output size is too small"),
    (lambda x: F.max_pool1d(x[0], 2, padding=2), "max_pool1d: pad should be at most half"),
    (lambda x: F.max_pool2d(x, 9, ceil_mode=True, dilation=2), "Output size is too small"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), "not zero"),
    (lambda x: F.max_pool3d(x[0, 0], 2), r"\(N, C, D, H, W\)"),
    (lambda x: F.max_pool2d(x, (2, 2, 2)), "pair of ints"),
    (lambda x: F.avg_pool2d(x, 2, stride=0), "at least 1"),
])
def test_pool_errors_name_the_op_and_argument(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(gw.zeros(1, 2, 5, 5))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_lp_pool_matches_torch_with_ceil_mode(rank):
    rng = np.random.default_rng(30 + rank)
    ours, theirs = getattr(F, f"lp_pool{rank}d"), getattr(TF, f"lp_pool{rank}d")
    size = SIZES[rank][0]
    for norm_type, kernel, stride, ceil_mode in ((2.0, 2, None, False), (3.0, 3, 2, True),
                                                 (1.0, 2, 1, True), (2.0, 3, None, True)):
        x = rng.uniform(0.5, 2.0, size=(2, 3) + size)
        args = (norm_type, kernel, stride, ceil_mode)
        assert _compare(lambda t, a=args: ours(t, *a), lambda t, a=args: theirs(t, *a), x, rng,
                        f"{norm_type} {kernel} {stride} {ceil_mode}", exact=False) == "ok"


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_max_unpool_inverts_pooling_as_torch(rank):
    rng = np.random.default_rng(40 + rank)
    pool, unpool = f"max_pool{rank}d", f"max_unpool{rank}d"
    size = SIZES[rank][1]
    for kernel, stride, padding, ceil_mode, output_size in (
            (2, None, 0, False, None), (3, 2, 1, True, None), (2, 2, 1, False, "input"),
            (3, 3, 0, True, None)):
        x = rng.standard_normal((2, 2) + size)
        values, indices = getattr(TF, pool)(torch.tensor(x), kernel, stride, padding,
                                            ceil_mode=ceil_mode, return_indices=True)
        ours_values, ours_indices = getattr(F, pool)(gw.tensor(x), kernel, stride, padding,
                                                     ceil_mode=ceil_mode, return_indices=True)
        np.testing.assert_array_equal(np.asarray(ours_indices), indices.numpy())
        wanted = x.shape if output_size == "input" else None
        try:
            want = getattr(TF, unpool)(values, indices, kernel, stride, padding, wanted)
        except (RuntimeError, ValueError):
            with pytest.raises(ValueError):
                getattr(F, unpool)(ours_values, ours_indices, kernel, stride, padding, wanted)
            continue
        got = getattr(F, unpool)(ours_values, ours_indices, kernel, stride, padding, wanted)
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_array_equal(np.asarray(got), want.numpy())


def test_max_unpool_output_size_out_of_range_is_refused_as_torch():
    x = torch.zeros(1, 1, 2, 2)
    indices = torch.zeros(1, 1, 2, 2, dtype=torch.int64)
    with pytest.raises(ValueError, match="invalid output_size"):
        TF.max_unpool2d(x, indices, 2, output_size=(6, 6))
    with pytest.raises(ValueError, match=r"invalid output_size .*dim 0 must be between 2 and 6"):
        F.max_unpool2d(gw.zeros(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.int64), 2,
                       output_size=(6, 6))
    with pytest.raises(TypeError, match="integers"):
        F.max_unpool2d(gw.zeros(1, 1, 2, 2), np.zeros((1, 1, 2, 2)), 2)


@pytest.mark.parametrize("output_size", [1, 2, (3, None, 2), (4, 3, 5)])
def test_adaptive_3d_pools_match_torch(output_size):
    rng = np.random.default_rng(50)
    x = rng.standard_normal((2, 3, 5, 4, 6))
    assert _compare(lambda t: F.adaptive_avg_pool3d(t, output_size),
                    lambda t: TF.adaptive_avg_pool3d(t, output_size), x, rng, "avg",
                    exact=False) == "ok"
    assert _compare(lambda t: F.adaptive_max_pool3d(t, output_size, True),
                    lambda t: TF.adaptive_max_pool3d(t, output_size, True), x[0], rng,
                    "max") == "ok"


@pytest.mark.parametrize("call", [
    lambda x: F.max_pool3d(x, 2, ceil_mode=True), lambda x: F.avg_pool3d(x, 2, 1, 1),
    lambda x: F.max_pool2d(x[0], 2, dilation=2), lambda x: F.avg_pool2d(x[0], 2, 1, 1, True),
    lambda x: F.lp_pool3d(x, 2, 2), lambda x: F.adaptive_avg_pool3d(x, 2),
    lambda x: F.adaptive_max_pool3d(x, 2), lambda x: F.max_pool3d(x, 2, return_indices=True)[0],
])
def test_functions_take_an_ndarray_as_a_constant(call):
    x = np.random.default_rng(60).standard_normal((2, 3, 4, 5, 4))
    np.testing.assert_array_equal(np.asarray(call(x)), np.asarray(call(gw.tensor(x))))
