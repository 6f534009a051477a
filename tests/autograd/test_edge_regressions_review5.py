"""The fifth reviewer's reports on the engine's edges (issue 12, edges-fix5): views and copies,
broadcasting in the similarity family, index bounds, attention masks, ties. Each case runs the
same program in torch 2.13 and gradwise (float32 and float64) and compares what a user sees."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")
INF = math.inf
DTYPES = ["float32", "float64"]


def _tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-11, "atol": 1e-12}


class Raised(tuple):
    """(error type name, message) of a program that raised."""


def _run(program, lib):
    """``program(lib)``, or a :class:`Raised` when it raises."""
    try:
        return program(lib)
    except (RuntimeError, IndexError, ValueError, TypeError) as error:
        return Raised((type(error).__name__, str(error)))


def _plain(value):
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "detach"):
        return np.asarray(value.detach().numpy() if hasattr(value, "numpy") else value)
    return value


def _same(program, dtype=None, error_type=True, **tol):
    """Run ``program`` in torch and gradwise; equal values, or both raise (same error type)."""
    theirs, ours = _run(program, torch), _run(program, gw)
    if isinstance(theirs, Raised):
        assert isinstance(ours, Raised), f"torch raises {theirs}; gradwise gives {ours}"
        if error_type:
            assert ours[0] == theirs[0], (ours, theirs)
        return ours
    assert not isinstance(ours, Raised), f"gradwise raises {ours}; torch gives {theirs}"
    theirs, ours = _plain(theirs), _plain(ours)
    tol = tol or (_tol(dtype) if dtype else {"rtol": 1e-6, "atol": 1e-7})
    _assert_close(ours, theirs, tol)
    return ours


def _assert_close(ours, theirs, tol):
    if isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), (ours, theirs)
        for a, b in zip(ours, theirs, strict=True):
            _assert_close(a, b, tol)
    elif isinstance(theirs, np.ndarray):
        assert np.asarray(ours).shape == theirs.shape
        np.testing.assert_allclose(np.asarray(ours, dtype=np.float64),
                                   theirs.astype(np.float64), equal_nan=True, **tol)
    else:
        assert ours == theirs or (isinstance(theirs, float) and math.isclose(
            ours, theirs, rel_tol=tol["rtol"], abs_tol=tol["atol"])), (ours, theirs)


# ---- 1. torch's copies are copies, torch's views are views ----------------------------------
COPIES = {
    "flip": lambda x: x.flip(0),
    "flip_both": lambda x: x.flip(0, 1),
    "fliplr": lambda x: x.fliplr(),
    "flipud": lambda x: x.flipud(),
    "rot90": lambda x: x.rot90(),
    "rot90_2": lambda x: x.rot90(2),
    "rot90_0": lambda x: x.rot90(0),
    "rot90_4": lambda x: x.rot90(4),
    "tile_1": lambda x: x.tile((1,)),
    "tile_11": lambda x: x.tile((1, 1)),
    "repeat_11": lambda x: x.repeat(1, 1),
    "diag": lambda x: x.diag(),
    "clone": lambda x: x.clone(),
    "reshape_noncontiguous": lambda x: x.t().reshape(6),
    "flatten_noncontiguous": lambda x: x.t().flatten(),
    "contiguous_noncontiguous": lambda x: x.t().contiguous(),
}
VIEWS = {
    "diagonal": lambda x: x.diagonal(),
    "diagonal_offset": lambda x: x.diagonal(1),
    "element": lambda x: x[0, 1],
    "row": lambda x: x[1],
    "select": lambda x: x.select(1, 2),
    "unbind": lambda x: x.unbind(1)[2],
    "narrow": lambda x: x.narrow(1, 1, 2),
    "expand": lambda x: x[:1].expand(2, 3),
    "movedim": lambda x: x.movedim(0, 1),
    "reshape": lambda x: x.reshape(6),
    "flatten": lambda x: x.flatten(),
    "t": lambda x: x.t(),
    "split": lambda x: x.split(1)[1],
}


def _shares(op, lib):
    x = lib.arange(6.0).reshape(2, 3)
    return bool(np.shares_memory(x.detach().numpy(), op(x).detach().numpy()))


@pytest.mark.parametrize("name", list(COPIES) + list(VIEWS))
def test_memory_sharing_matches_torch(name):
    op = {**COPIES, **VIEWS}[name]
    assert _shares(op, gw) == _shares(op, torch) == (name in VIEWS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(COPIES)[:12])
def test_a_copy_keeps_its_values_and_gradient_after_the_input_changes(name, dtype):
    # the reported case: y = x * 1; z = y.flip(0); y[0] = 10 gave x.grad [20, 4, 6]
    def program(lib):
        x = lib.tensor(np.arange(1.0, 7.0, dtype=dtype).reshape(2, 3), requires_grad=True)
        y = x * 1
        z = COPIES[name](y)
        with lib.no_grad():
            y[0] = 10.0
            z.reshape(-1)[-1:].fill_(-5.0)  # a write into the copy leaves y alone
        (z * z).sum().backward()
        return z, y, x.grad
    _same(program, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_flip_node_gradients_twice(dtype):
    def program(lib):
        x = lib.tensor(np.arange(6.0, dtype=dtype).reshape(2, 3), requires_grad=True)
        (g,) = lib.autograd.grad((x.flip(1, 0) ** 3).sum(), x, create_graph=True)
        (h,) = lib.autograd.grad((g * g).sum(), x)
        return g, h, type(x.flip(0).grad_fn).__name__
    _same(program, dtype)


def test_flip_refuses_a_dim_named_twice():
    error = _same(lambda lib: lib.zeros(2, 2).flip(0, -2))
    assert "dim 0 appears multiple times in the list of dims" in error[1]


# ---- 3. element and diagonal views write back -------------------------------------------------
WRITES = {
    "bias_element_fill": lambda lib, t: t[0].fill_(7.0),
    "element_add": lambda lib, t: t[0].add_(1.0),
    "element_mul": lambda lib, t: t[2].mul_(2.0),
    "element_2d": lambda lib, t: t.reshape(2, 2)[1, 0].sub_(3.0),
    "select_fill": lambda lib, t: t.reshape(2, 2).select(0, 1).fill_(2.0),
    "select_1d_fill": lambda lib, t: t.select(0, 1).fill_(2.0),
    "unbind_add": lambda lib, t: t.unbind()[3].add_(1.0),
    "diagonal_fill": lambda lib, t: t.reshape(2, 2).diagonal().fill_(7.0),
    "diagonal_offset_mul": lambda lib, t: t.reshape(2, 2).diagonal(-1).mul_(3.0),
    "diagonal_3d": lambda lib, t: t.reshape(1, 2, 2).diagonal(0, 1, 2).zero_(),
    "element_copy": lambda lib, t: t[1].copy_(lib.tensor(9.0)),
}


@pytest.mark.parametrize("name", list(WRITES))
@pytest.mark.parametrize("dtype", DTYPES)
def test_writes_through_element_and_diagonal_views_reach_the_base(name, dtype):
    def program(lib):
        t = lib.tensor(np.arange(1.0, 5.0, dtype=dtype))
        with lib.no_grad():
            WRITES[name](lib, t)
        return t
    _same(program, dtype)


def test_parameter_element_and_diagonal_writes_under_no_grad():
    def program(lib):
        lib.manual_seed(0)
        m = lib.nn.Linear(2, 2)
        with lib.no_grad():
            m.bias[0].fill_(7.0)
            m.weight.diagonal().fill_(7.0)
        return m.bias[0].item(), m.weight.diagonal().tolist()
    assert _same(program) == [7.0, [7.0, 7.0]]


def test_an_element_read_before_a_write_sees_the_write():
    assert _same(lambda lib: (lambda x, y: (x.__setitem__(0, 5.0), float(y))[1])(
        *(lambda x: (x, x[0]))(lib.zeros(3)))) == 5.0


def test_in_place_on_an_element_of_a_leaf_is_torchs_view_of_a_leaf_error():
    def program(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        x[0].mul_(2)
    error = _same(program)
    assert "a view of a leaf Variable that requires grad" in error[1]


@pytest.mark.parametrize("view", ["element", "diagonal", "row"])
def test_a_write_into_a_view_bumps_the_bases_version(view):
    pick = {"element": lambda y: y[0, 0], "diagonal": lambda y: y.diagonal(),
            "row": lambda y: y[1]}[view]

    def program(lib):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        y = x * 1
        z = y.sin()  # saves y
        with lib.no_grad():
            pick(y).mul_(2)
        z.sum().backward()
    error = _same(program)
    assert "modified by an inplace operation" in error[1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [(0, 0, 1), (1, 0, 1), (-1, 0, 1), (2, 1, 0), (0, 2, 0),
                                  (5, 0, 1)])
def test_diagonal_values_and_gradients_twice(case, dtype):
    offset, dim1, dim2 = case

    def program(lib):
        x = lib.tensor(np.arange(24.0, dtype=dtype).reshape(2, 3, 4) / 7, requires_grad=True)
        d = x.diagonal(offset, dim1, dim2)
        (g,) = lib.autograd.grad((d ** 3).sum(), x, create_graph=True)
        (h,) = lib.autograd.grad((g * g).sum(), x)
        return d, g, h
    _same(program, dtype)


# ---- 4. index bounds: torch's rule per op -----------------------------------------------------
def _index(lib, bad):
    return lib.tensor(np.array([[bad, 0], [1, 2]]))


def _row(lib, bad):
    return lib.tensor([bad, 0])


INDEX_OPS = {
    "gather": lambda lib, bad: lib.arange(6.0).reshape(2, 3).gather(1, _index(lib, bad)),
    "scatter": lambda lib, bad: lib.zeros(2, 3).scatter(1, _index(lib, bad), lib.ones(2, 2)),
    "scatter_value": lambda lib, bad: lib.zeros(2, 3).scatter(1, _index(lib, bad), 2.0),
    "scatter_": lambda lib, bad: lib.zeros(2, 3).scatter_(1, _index(lib, bad), lib.ones(2, 2)),
    "scatter_add": lambda lib, bad: lib.zeros(2, 3).scatter_add(1, _index(lib, bad),
                                                                 lib.ones(2, 2)),
    "scatter_add_": lambda lib, bad: lib.zeros(2, 3).scatter_add_(1, _index(lib, bad),
                                                                   lib.ones(2, 2)),
    "scatter_reduce": lambda lib, bad: lib.zeros(2, 3).scatter_reduce(
        1, _index(lib, bad), lib.ones(2, 2), "amax"),
    "index_select": lambda lib, bad: lib.arange(6.0).reshape(2, 3).index_select(1, _row(lib, bad)),
    "index_add": lambda lib, bad: lib.zeros(2, 3).index_add(1, _row(lib, bad), lib.ones(2, 2)),
    "index_add_": lambda lib, bad: lib.zeros(2, 3).index_add_(1, _row(lib, bad), lib.ones(2, 2)),
    "index_copy": lambda lib, bad: lib.zeros(2, 3).index_copy(1, _row(lib, bad), lib.ones(2, 2)),
    "index_copy_": lambda lib, bad: lib.zeros(2, 3).index_copy_(1, _row(lib, bad), lib.ones(2, 2)),
    # these count negative indices from the end in torch too
    "index_fill": lambda lib, bad: lib.zeros(2, 3).index_fill(1, _row(lib, bad), 1.0),
    "take": lambda lib, bad: lib.arange(6.0).reshape(2, 3).take(_row(lib, 2 * bad)),
    "put_": lambda lib, bad: lib.zeros(2, 3).put_(_row(lib, 2 * bad), lib.ones(2)),
    "getitem_tensor": lambda lib, bad: lib.arange(6.0).reshape(2, 3)[_row(lib, bad)],
    "index_put": lambda lib, bad: lib.zeros(2, 3).index_put((_row(lib, bad),), lib.ones(3)),
}


@pytest.mark.parametrize("bad", [-1, 3, -4])
@pytest.mark.parametrize("name", list(INDEX_OPS))
def test_index_bounds_follow_torch(name, bad):
    if name in ("index_put", "getitem_tensor") and bad == 3:
        bad = 2  # in range for dim 0 of size 2 only as -2; 3 is checked below
    _same(lambda lib: INDEX_OPS[name](lib, bad), error_type=False)


@pytest.mark.parametrize("name", ["gather", "scatter", "scatter_add", "index_add", "index_select"])
def test_a_negative_index_is_named_in_the_error(name):
    error = _same(lambda lib: INDEX_OPS[name](lib, -1), error_type=False)
    assert "index -1 is out of bounds for dimension 1 with size 3" in error[1]


# ---- 2. the similarity family broadcasts before it reduces ------------------------------------
PAIRS = {
    "(3,4)x(1,4)": ((3, 4), (1, 4)),
    "(3,4)x(3,1)": ((3, 4), (3, 1)),
    "(3,1)x(3,4)": ((3, 1), (3, 4)),
    "(3,4)x(4,)": ((3, 4), (4,)),
    "(2,1,4)x(3,4)": ((2, 1, 4), (3, 4)),
}


def _grads_of(fn, shapes, dtype, scale=1.0):
    def program(lib):
        rng = np.random.default_rng(0)
        xs = [lib.tensor(rng.standard_normal(s).astype(dtype) * scale, requires_grad=True)
              for s in shapes]
        y = fn(lib, *xs)
        up = lib.tensor(rng.standard_normal(tuple(y.shape)).astype(dtype))
        grads = lib.autograd.grad((y * up).sum(), xs, allow_unused=True)
        return [y, *grads]
    return program


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [1, -1, 0])
@pytest.mark.parametrize("pair", list(PAIRS))
@pytest.mark.parametrize("scale", [1.0, 1e-5])
def test_cosine_similarity_broadcasts_first(pair, dim, dtype, scale):
    # scale 1e-5 with eps 1e-3: the clamp is active, and torch's gradient ignores it
    eps = 1e-3 if scale < 1 else 1e-8
    fn = lambda lib, a, b: lib.nn.functional.cosine_similarity(a, b, dim=dim, eps=eps)  # noqa: E731
    _same(_grads_of(fn, PAIRS[pair], dtype, scale), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, INF])
@pytest.mark.parametrize("pair", list(PAIRS))
def test_distances_and_losses_broadcast_as_torch(pair, p, dtype):
    def pick(lib):
        return lib.nn.functional
    for fn in (lambda lib, a, b: pick(lib).pairwise_distance(a, b, p=p, keepdim=True),
               lambda lib, a, b: pick(lib).triplet_margin_loss(a, b, b * 0.5, p=p),
               lambda lib, a, b: pick(lib).normalize(a * b, p=p, dim=-1)):
        _same(_grads_of(fn, PAIRS[pair], dtype), dtype)


# ---- 7. inf-norm ties: per op, as torch ---------------------------------------------------------
TIES = {
    "cdist": lambda lib, a, b: lib.cdist(a, b, p=INF),
    "pdist": lambda lib, a, b: lib.nn.functional.pdist(lib.cat([a, b]), p=INF),
    "pairwise_distance": lambda lib, a, b: lib.nn.functional.pairwise_distance(a, b, p=INF),
    "vector_norm": lambda lib, a, b: lib.linalg.vector_norm(a - b, INF, dim=1),
    "norm": lambda lib, a, b: (a - b).norm(INF, dim=1),
    "dist": lambda lib, a, b: lib.dist(a, b, p=INF),
    "linalg_norm": lambda lib, a, b: lib.linalg.norm(a - b, INF, dim=1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(TIES))
def test_inf_norm_ties_give_torchs_gradient(name, dtype):
    def program(lib):
        # rows whose differences tie: |(1, -1, 1)| and |(2, 2, 0)|
        a = lib.tensor(np.array([[1.0, 0.0, 1.0], [2.0, 3.0, 0.0]], dtype=dtype),
                       requires_grad=True)
        b = lib.tensor(np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype),
                       requires_grad=True)
        y = TIES[name](lib, a, b)
        return [y, *lib.autograd.grad(y.sum(), (a, b))]
    _same(program, dtype)


# ---- 5. attention over a fully padded row ------------------------------------------------------
def _copy_weights(source, target):
    target.load_state_dict({k: gw.tensor(v.detach().numpy().copy())
                            for k, v in source.state_dict().items()})


@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_multihead_attention_with_a_fully_padded_row(need_weights, dtype):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 3, 4)).astype(dtype)
    padding = np.array([[True, True, True], [False, True, False]])
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(4, 2, batch_first=True).to(getattr(torch, dtype))
    ours = gw.nn.MultiheadAttention(4, 2, batch_first=True).to(getattr(gw, dtype))
    _copy_weights(theirs, ours)
    results = []
    for lib, module in ((torch, theirs), (gw, ours)):
        x = lib.tensor(q, requires_grad=True)
        out, _ = module(x, x, x, key_padding_mask=lib.tensor(padding), need_weights=need_weights)
        out.sum().backward()
        results.append((out.detach().numpy(), x.grad.numpy()))
    (t_out, t_grad), (g_out, g_grad) = results
    # torch: NaN with the weights, 0 attention (finite) without
    assert np.isnan(t_out).any() == need_weights
    np.testing.assert_allclose(g_out, t_out, equal_nan=True, **_tol(dtype))
    np.testing.assert_allclose(g_grad, t_grad, equal_nan=True, **_tol(dtype))


def test_transformer_encoder_layer_with_a_fully_padded_row_stays_finite():
    rng = np.random.default_rng(1)
    src = rng.standard_normal((2, 3, 4)).astype("float64")
    padding = np.array([[True, True, True], [False, False, True]])
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True).double()
    ours = gw.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True).to(gw.float64)
    _copy_weights(theirs, ours)
    results = []
    for lib, module in ((torch, theirs), (gw, ours)):
        x = lib.tensor(src, requires_grad=True)
        out = module(x, src_key_padding_mask=lib.tensor(padding))
        out.sum().backward()
        results.append((out.detach().numpy(), x.grad.numpy()))
    assert np.isfinite(results[1][0]).all() and np.isfinite(results[1][1]).all()
    np.testing.assert_allclose(results[1][0], results[0][0], **_tol("float64"))
    np.testing.assert_allclose(results[1][1], results[0][1], **_tol("float64"))


# ---- 6. scatter_reduce amax/amin ties count x's entry as torch does ----------------------------
SCATTER_TIES = [
    # (x, src, index, dim)
    ([[1.0, 5.0, 2.0], [3.0, 3.0, 0.0]], [[1.0, 1.0, 4.0], [3.0, 2.0, 3.0]],
     [[0, 0, 2], [1, 1, 1]], 1),
    ([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]],
     [[0, 0, 1], [0, 1, 1]], 0),
    ([[2.0, -1.0], [0.0, 4.0]], [[2.0, 2.0], [-1.0, 4.0]], [[0, 0], [1, 1]], 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("include_self", [False, True])
@pytest.mark.parametrize("reduce", ["amax", "amin"])
@pytest.mark.parametrize("case", range(len(SCATTER_TIES)))
def test_scatter_reduce_ties_split_as_torch(case, reduce, include_self, dtype):
    x, src, index, dim = SCATTER_TIES[case]

    def program(lib):
        a = lib.tensor(np.array(x, dtype=dtype), requires_grad=True)
        b = lib.tensor(np.array(src, dtype=dtype), requires_grad=True)
        y = a.scatter_reduce(dim, lib.tensor(index), b, reduce, include_self=include_self)
        up = lib.tensor(np.arange(1.0, 1.0 + y.numel(), dtype=dtype).reshape(tuple(y.shape)))
        return [y, *lib.autograd.grad((y * up).sum(), (a, b))]
    _same(program, dtype)


# ---- 8. prelu's (and softplus's) second derivative at the kink ------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["one_weight", "channels", "all_zero", "nan"])
def test_prelu_second_derivative_at_zero(case, dtype):
    x = {"one_weight": [[-1.0, 0.0, 2.0], [0.0, -0.0, 3.0]],
         "channels": [[-1.0, 0.0, 2.0], [0.0, -0.0, 3.0]],
         "all_zero": [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
         "nan": [[math.nan, 0.0, -2.0], [1.0, 0.0, 3.0]]}[case]
    w = [0.25] if case == "one_weight" else [0.1, 0.2, 0.3]

    def program(lib):
        a = lib.tensor(np.array(x, dtype=dtype), requires_grad=True)
        b = lib.tensor(np.array(w, dtype=dtype), requires_grad=True)
        y = lib.nn.functional.prelu(a, b)
        up = lib.tensor(np.arange(1.0, 7.0, dtype=dtype).reshape(2, 3))
        ga, gb = lib.autograd.grad((y * up).sum(), (a, b), create_graph=True)
        v = lib.tensor(np.array([[0.5, -1.0, 2.0], [1.5, 1.0, -0.5]], dtype=dtype))
        ha, hb = lib.autograd.grad((ga * v).sum() + gb.sum() * 0.7, (a, b), allow_unused=True)
        return [y, ga, gb, ha, hb]
    _same(program, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta,threshold", [(1.0, 0.0), (2.0, 1.0), (1.0, 20.0)])
def test_softplus_second_derivative_at_its_threshold(beta, threshold, dtype):
    def program(lib):
        a = lib.tensor(np.array([threshold / beta, -1.0, 0.0, threshold / beta + 1.0],
                                dtype=dtype), requires_grad=True)
        y = lib.nn.functional.softplus(a, beta=beta, threshold=threshold)
        (g,) = lib.autograd.grad(y.sum(), a, create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), a)
        return [y, g, h]
    _same(program, dtype)


# ---- also: legacy types, source dtypes, out= -------------------------------------------------
@pytest.mark.parametrize("kind", ["DoubleTensor", "LongTensor", "FloatTensor", "ByteTensor"])
def test_type_takes_a_legacy_type_or_its_name(kind):
    def program(lib):
        x = lib.tensor([1.5, -2.0])
        return [str(x.type(getattr(lib, kind)).dtype).split(".")[-1],
                str(x.type(f"torch.{kind}").dtype).split(".")[-1]]
    _same(program)
    assert gw.zeros(2).type(gw.zeros(2).type(gw.DoubleTensor).type()).dtype == gw.float64


def test_type_refuses_an_unknown_name():
    _same(lambda lib: lib.zeros(2).type("torch.NoSuchTensor"))


SOURCE_DTYPE_OPS = {
    "index_add": lambda lib, s: lib.zeros(3).index_add(0, lib.tensor([0]), s),
    "index_add_": lambda lib, s: lib.zeros(3).index_add_(0, lib.tensor([0]), s),
    "scatter_add": lambda lib, s: lib.zeros(3).scatter_add(0, lib.tensor([0]), s),
    "scatter_add_": lambda lib, s: lib.zeros(3).scatter_add_(0, lib.tensor([0]), s),
    "scatter": lambda lib, s: lib.zeros(3).scatter(0, lib.tensor([0]), s),
    "scatter_reduce": lambda lib, s: lib.zeros(3).scatter_reduce(0, lib.tensor([0]), s, "sum"),
    "index_copy": lambda lib, s: lib.zeros(3).index_copy(0, lib.tensor([0]), s),
    "index_copy_": lambda lib, s: lib.zeros(3).index_copy_(0, lib.tensor([0]), s),
    "put_": lambda lib, s: lib.zeros(3).put_(lib.tensor([0]), s),
    "masked_scatter": lambda lib, s: lib.zeros(3).masked_scatter(
        lib.tensor([True, False, False]), s),
    "index_put": lambda lib, s: lib.zeros(3).index_put((lib.tensor([0]),), s),
}


@pytest.mark.parametrize("source", ["float64", "int64", "float32"])
@pytest.mark.parametrize("name", list(SOURCE_DTYPE_OPS))
def test_a_source_of_another_dtype_is_refused_as_torch(name, source):
    _same(lambda lib: SOURCE_DTYPE_OPS[name](lib, lib.ones(1, dtype=getattr(lib, source))))


OUT_CASES = {
    "add": (lambda lib, o: lib.add(lib.ones(2), lib.tensor([1.0, 2.0]), out=o), (2,)),
    "exp": (lambda lib, o: lib.exp(lib.tensor([0.0, 1.0]), out=o), (2,)),
    "sum_dim": (lambda lib, o: lib.sum(lib.ones(2, 3), 1, out=o), (2,)),
    "mean": (lambda lib, o: lib.mean(lib.ones(2, 3), out=o), ()),
    "matmul": (lambda lib, o: lib.matmul(lib.ones(2, 3), lib.ones(3, 2), out=o), (2, 2)),
    "clamp": (lambda lib, o: lib.clamp(lib.tensor([-1.0, 3.0]), 0.0, 1.0, out=o), (2,)),
    "cumsum": (lambda lib, o: lib.cumsum(lib.tensor([1.0, 2.0]), 0, out=o), (2,)),
}


@pytest.mark.parametrize("out_dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("name", list(OUT_CASES))
def test_out_writes_into_the_given_tensor(name, out_dtype):
    fn, shape = OUT_CASES[name]

    def program(lib):
        out = lib.zeros(shape, dtype=getattr(lib, out_dtype))
        returned = fn(lib, out)
        return [returned is out, out, str(out.dtype).split(".")[-1]]
    _same(program)


@pytest.mark.parametrize("name", ["add", "exp", "sum_dim"])
def test_out_refuses_inputs_that_require_grad(name):
    def program(lib):
        x = lib.ones(2, 3, requires_grad=True)
        calls = {"add": lambda o: lib.add(x, 1.0, out=o), "exp": lambda o: lib.exp(x, out=o),
                 "sum_dim": lambda o: lib.sum(x, 1, out=o)}
        calls[name](lib.zeros(2, 3))
    error = _same(program)
    assert "functions with out=... arguments don't support automatic differentiation" in error[1]


def test_out_under_no_grad_and_with_a_resize():
    def program(lib):
        x = lib.ones(2, 3, requires_grad=True)
        empty = lib.zeros(0)
        with lib.no_grad():
            lib.mul(x, 2.0, out=empty)
        return [empty, empty.requires_grad]
    _same(program)


# ---- 3 (end). writes into an expanded tensor: fills pass, the rest is torch's overlap error ----
EXPAND_WRITES = {
    "fill_": lambda e, lib: e.fill_(5.0),
    "zero_": lambda e, lib: e.zero_(),
    "setitem_element": lambda e, lib: e.__setitem__((0, 0), 5.0),
    "setitem_row": lambda e, lib: e.__setitem__(0, lib.tensor([7.0, 8.0, 9.0])),
    "masked_fill_": lambda e, lib: e.masked_fill_(lib.ones(2, 3, dtype=lib.bool), 3.0),
    "mul_": lambda e, lib: e.mul_(2.0),
    "add_": lambda e, lib: e.add_(1.0),
    "iadd": lambda e, lib: e.__iadd__(1.0),
    "copy_": lambda e, lib: e.copy_(lib.ones(2, 3)),
    "setitem_all": lambda e, lib: e.__setitem__(slice(None), 5.0),
    "setitem_column": lambda e, lib: e.__setitem__((slice(None), 0), 5.0),
    "clamp_": lambda e, lib: e.clamp_(0.0, 1.0),
    "exp_": lambda e, lib: e.exp_(),
    "uniform_": lambda e, lib: e.uniform_(),
    "addcmul_": lambda e, lib: e.addcmul_(lib.ones(2, 3), lib.ones(2, 3)),
    "scatter_": lambda e, lib: e.scatter_(1, lib.tensor([[0], [1]]), 4.0),
    "index_add_": lambda e, lib: e.index_add_(1, lib.tensor([0]), lib.ones(2, 1)),
    "put_": lambda e, lib: e.put_(lib.tensor([0]), lib.ones(1)),
}


@pytest.mark.filterwarnings("ignore:Use of")
@pytest.mark.parametrize("name", list(EXPAND_WRITES))
def test_writes_into_an_expanded_tensor_follow_torch(name):
    def program(lib):
        t = lib.tensor([[1.0, 2.0, 3.0]])
        with lib.no_grad():
            EXPAND_WRITES[name](t.expand(2, 3), lib)
        return t
    error = _same(program)
    if isinstance(error, Raised):
        assert "more than one element of the written-to tensor refers to a single" in error[1]


def test_tril_into_an_expanded_tensor_is_refused_deliberately():
    # torch writes each row's triangle into the shared row (the last row wins); gradwise
    # refuses (docs/PORTING.md)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        gw.tensor([[1.0, 2.0, 3.0]]).expand(2, 3).tril_()


def test_an_expanded_gradient_is_not_accumulated_into_in_place():
    x = gw.zeros(3, requires_grad=True)
    x.grad = gw.ones(1).expand(3)
    (x * gw.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(np.asarray(x.grad), [2.0, 3.0, 4.0])


# ---- 3 (end). in-place ops on views of non-leaves are recorded through the base ---------------
VIEW_INPLACE = {
    "element_mul": lambda lib, y, w: y[0].mul_(2),
    "diagonal_mul": lambda lib, y, w: y.reshape(2, 2).diagonal().mul_(3),
    "chain_add": lambda lib, y, w: y.reshape(2, 2).t()[1:, 0].add_(w[:1]),
    "slice_copy": lambda lib, y, w: y[1:3].copy_(w * 3),
    "row_setitem": lambda lib, y, w: y.reshape(2, 2)[1].__setitem__(0, w[1]),
    "select_fill": lambda lib, y, w: y.select(0, 3).fill_(w[0]),
    "narrow_relu": lambda lib, y, w: y.narrow(0, 1, 2).relu_(),
    "twice": lambda lib, y, w: (y[:2].mul_(w), y[1:].add_(w[0])),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(VIEW_INPLACE))
def test_in_place_on_a_view_of_a_non_leaf_is_recorded(name, dtype):
    def program(lib):
        x = lib.tensor(np.array([1.0, -2.0, 3.0, 4.0], dtype=dtype), requires_grad=True)
        w = lib.tensor(np.array([10.0, 20.0], dtype=dtype), requires_grad=True)
        y = x * 1
        VIEW_INPLACE[name](lib, y, w)
        (y * y).sum().backward()
        return [y, x.grad, w.grad if w.grad is not None else lib.zeros(2, dtype=y.dtype)]
    _same(program, dtype)


def test_in_place_through_a_view_makes_a_constant_base_require_grad():
    def program(lib):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        h = lib.zeros(4)
        h[0:2].copy_(w * 3)
        h.sum().backward()
        return [h, w.grad, h.requires_grad]
    _same(program)


def test_a_view_read_after_its_base_changed_in_place_sees_the_new_history():
    # torch regenerates the view's grad_fn; the old one would give x.grad [0, 8, 12]
    def program(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 1
        v = y[1:]
        y.mul_(2)
        (v * v).sum().backward()
        return [v, x.grad]
    assert _same(program)[1].tolist() == [0.0, 16.0, 24.0]


def test_a_stale_view_used_under_no_grad_is_still_replayed_later():
    def program(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 1
        v = y[1:]
        y.mul_(3)
        with lib.no_grad():
            seen = (v * 1).tolist()
        (v * v).sum().backward()
        return [seen, x.grad]
    _same(program)


# ---- also: p = 0 norms send no gradient (torch's undefined gradient) -------------------------
ZERO_NORMS = {
    "norm": lambda lib, a, b: a.norm(0, dim=-1),
    "vector_norm": lambda lib, a, b: lib.linalg.vector_norm(a, 0),
    "linalg_norm": lambda lib, a, b: lib.linalg.norm(a, 0, dim=1),
    "pairwise_distance": lambda lib, a, b: lib.nn.functional.pairwise_distance(a, b, p=0),
    "cdist": lambda lib, a, b: lib.cdist(a, b, p=0),
    "pdist": lambda lib, a, b: lib.nn.functional.pdist(a, p=0),
    "mixed": lambda lib, a, b: a.norm(0, dim=-1) + (a * b).sum(-1),
}


@pytest.mark.parametrize("name", list(ZERO_NORMS))
def test_p0_norms_send_no_gradient(name):
    def program(lib):
        a = lib.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]], requires_grad=True)
        b = lib.tensor([[1.0, 1.0, 2.0], [0.0, 1.0, 3.0]], requires_grad=True)
        grads = lib.autograd.grad(ZERO_NORMS[name](lib, a, b).sum(), (a, b), allow_unused=True)
        return [g is None for g in grads] + [g for g in grads if g is not None]
    _same(program)


def test_backward_through_a_p0_norm_leaves_grad_none():
    x = gw.tensor([1.0, 0.0, 2.0], requires_grad=True)
    x.norm(0).backward()
    assert x.grad is None
