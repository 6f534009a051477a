"""The sixth reviewer's reports on the engine's edges (issue 12, edges-fix6a): in-place ops
through views of 0-d tensors, views made under no_grad and changed in place with grad on, and
saved outputs changed between a create_graph gradient and its own gradient. Each case runs the
same program in torch 2.13 and gradwise (float32 and float64) and compares what a user sees."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")
DTYPES = ["float32", "float64"]


def _tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}


def _run(program, lib):
    """``program(lib)`` as a list of arrays, or ("raised", type name, message)."""
    try:
        out = program(lib)
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        return ("raised", type(error).__name__, str(error))
    return [np.zeros(tuple(v.shape)) if getattr(v, "_is_zerotensor", lambda: False)()
            else np.asarray(v.detach().numpy() if hasattr(v, "detach") else v) for v in out]


def _same(program, dtype):
    """Run ``program`` in torch and gradwise: equal shapes and values, or both raise
    RuntimeError; returns gradwise's result."""
    theirs, ours = _run(program, torch), _run(program, gw)
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple), f"torch raises {theirs}; gradwise gives {ours}"
        assert ours[1] == theirs[1], (ours, theirs)
        return ours
    assert not isinstance(ours, tuple), f"gradwise raises {ours}; torch gives {theirs}"
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape, (a.shape, b.shape)
        np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), **_tol(dtype))
    return ours


# ---- 1. in-place ops through every view of a 0-d tensor write through ------------------------
# A 0-d result of a NumPy ufunc or reduction is a NumPy scalar, not an array: a tensor holding
# one had views that shared no memory (writes lost) or no item assignment (errors).
ZERO_D_VIEWS = {
    "index_empty": lambda y: y[()],
    "index_ellipsis": lambda y: y[...],
    "index_none": lambda y: y[None],
    "view_1": lambda y: y.view(1),
    "view_0d": lambda y: y.view(()),
    "view_neg1": lambda y: y.view(-1),
    "view_as": lambda y: y.view_as(y),
    "reshape_0d": lambda y: y.reshape(()),
    "reshape_1": lambda y: y.reshape(1),
    "flatten": lambda y: y.flatten(),
    "squeeze": lambda y: y.squeeze(),
    "unsqueeze": lambda y: y.unsqueeze(0),
    "unsqueeze_squeeze": lambda y: y.unsqueeze(0).squeeze(0),
    "T": lambda y: y.T,
    "t": lambda y: y.t(),
    "transpose": lambda y: y.unsqueeze(0).unsqueeze(0).transpose(0, 1),
    "permute": lambda y: y.unsqueeze(0).permute(0),
    "movedim": lambda y: y.unsqueeze(0).movedim(0, 0),
    "expand_element": lambda y: y.expand(3)[0],
    "expand_1": lambda y: y.expand(1),
    "select": lambda y: y.unsqueeze(0).select(0, 0),
    "element": lambda y: y.unsqueeze(0)[0],
    "narrow": lambda y: y.unsqueeze(0).narrow(0, 0, 1),
    "diagonal": lambda y: y.unsqueeze(0).unsqueeze(0).diagonal(),
    "view_element": lambda y: y.view(-1)[0],
}
IN_PLACE = {
    "mul_": lambda v, lib: v.mul_(3),
    "add_": lambda v, lib: v.add_(1.5),
    "sub_": lambda v, lib: v.sub_(1),
    "div_": lambda v, lib: v.div_(4),
    "pow_": lambda v, lib: v.pow_(2),
    "copy_": lambda v, lib: v.copy_(lib.tensor(5.0, dtype=v.dtype)),
    "fill_": lambda v, lib: v.fill_(7),
    "zero_": lambda v, lib: v.zero_(),
    "clamp_": lambda v, lib: v.clamp_(max=1.0),
    "masked_fill_": lambda v, lib: v.masked_fill_(lib.ones(v.shape, dtype=lib.bool), 4.0),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("view", list(ZERO_D_VIEWS))
def test_in_place_through_a_view_of_a_0d_tensor_matches_torch(view, dtype):
    for op in IN_PLACE.values():
        for requires_grad in (True, False):
            def program(lib, op=op, requires_grad=requires_grad):
                x = lib.tensor(2.0, dtype=getattr(lib, dtype), requires_grad=requires_grad)
                y = x * 1
                v = ZERO_D_VIEWS[view](y)
                op(v, lib)
                out = [y.detach().clone(), v.detach().clone()]
                if requires_grad:
                    (y ** 2).backward()
                    out.append(x.grad.clone())
                return out
            _same(program, dtype)


def test_the_reported_0d_case_without_torch():
    # the review's program: torch gives y = 6 and x.grad = 2 * 6 * 3 = 36
    x = gw.tensor(2.0, requires_grad=True)
    y = x * 1
    y[()].mul_(3)
    (y ** 2).backward()
    assert float(y) == 6.0 and float(np.asarray(x.grad)) == 36.0


@pytest.mark.parametrize("make", ["sum", "mul", "exp", "mean", "dot"])
def test_a_0d_result_holds_an_array(make):
    a = gw.tensor([1.0, 2.0], requires_grad=True)
    out = {"sum": lambda: a.sum(), "mul": lambda: a.sum() * 2, "exp": lambda: a.sum().exp(),
           "mean": lambda: a.mean(), "dot": lambda: a.dot(a)}[make]()
    assert type(out._data) is np.ndarray and out._data.shape == ()


def test_the_0d_leaf_gradient_is_an_array_that_in_place_ops_change():
    x = gw.tensor(2.0, requires_grad=True)
    (x * 3).backward()
    assert type(x._grad) is np.ndarray
    x.grad.mul_(2)  # torch: the gradient itself becomes 6
    assert float(np.asarray(x.grad)) == 6.0
    (x * 3).backward()  # accumulates into the same array
    assert type(x._grad) is np.ndarray and float(np.asarray(x.grad)) == 9.0


# ---- 8. create_graph gradients keep the version checks of the outputs they read ------------
# Ops that save their output (exp, sigmoid, softmax, ...) recomputed it from the input in their
# recorded backward: an input changed in place after the forward gave a silently wrong
# create_graph gradient, and an output changed in place between the two gradients went unseen.
SAVED_OUTPUT_OPS = {
    "exp": lambda lib, x: x.exp(),
    "sqrt": lambda lib, x: x.sqrt(),
    "sigmoid": lambda lib, x: x.sigmoid(),
    "tanh": lambda lib, x: x.tanh(),
    "expm1": lambda lib, x: x.expm1(),
    "softmax": lambda lib, x: x.softmax(0),
    "log_softmax": lambda lib, x: x.log_softmax(0),
    "logsumexp": lambda lib, x: x.logsumexp(0),
    "relu": lambda lib, x: x.relu(),
    "std": lambda lib, x: x.std(),
    "std_dim": lambda lib, x: x.reshape(2, 3).std(1),
    "norm": lambda lib, x: x.norm(),
    "norm_1": lambda lib, x: x.norm(p=1),
    "norm_3": lambda lib, x: x.norm(p=3),
    "norm_inf": lambda lib, x: x.norm(p=float("inf")),
    "prod": lambda lib, x: x.prod(),
    "prod_dim": lambda lib, x: x.reshape(2, 3).prod(1),
    "elu": lambda lib, x: lib.nn.functional.elu(x),
    "max_pool2d": lambda lib, x: lib.nn.functional.max_pool2d(x.reshape(1, 1, 2, 3), 2, 1),
    "linear_relu": lambda lib, x: lib.nn.functional.relu(
        lib.nn.functional.linear(x.reshape(2, 3), x.reshape(2, 3) * 0.5 + 0.25)),
}
X = np.array([0.5, 1.25, 2.0, 0.75, 1.5, 0.3])


# std: torch's backward saves x as well and refuses; gradwise's saves the centred values, so
# its (right) gradient stands (docs/NUMERICS.md)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", [op for op in SAVED_OUTPUT_OPS if not op.startswith("std")])
def test_a_create_graph_gradient_reads_the_saved_output_not_a_changed_input(op, dtype):
    def program(lib):
        x = lib.tensor(X, dtype=getattr(lib, dtype), requires_grad=True)
        xx = x * 1
        y = SAVED_OUTPUT_OPS[op](lib, xx)
        xx.mul_(3)  # after the forward: the op saved its output, the input may change
        g, = lib.autograd.grad((y * y).sum(), x, create_graph=True)
        h, = lib.autograd.grad(g.sum(), x)
        return [g, h]
    _same(program, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", list(SAVED_OUTPUT_OPS))
def test_an_output_changed_between_the_two_gradients_is_refused_as_torch(op, dtype):
    def program(lib, recorded):
        x = lib.tensor(X, dtype=getattr(lib, dtype), requires_grad=True)
        y = SAVED_OUTPUT_OPS[op](lib, x)
        g, = lib.autograd.grad(y.sum(), x, create_graph=True)
        if recorded:
            y.mul_(2)
        else:
            with lib.no_grad():
                y.mul_(2)
        h, = lib.autograd.grad(g.sum(), x, allow_unused=True)
        return [g, lib.zeros(x.shape) if h is None else h * 1]
    for recorded in (True, False):
        _same(lambda lib, recorded=recorded: program(lib, recorded), dtype)


def test_the_reported_sigmoid_case_without_torch():
    x = gw.tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = x.sigmoid()
    g, = gw.autograd.grad(y.sum(), x, create_graph=True)
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*Sigmoid"):
        gw.autograd.grad(g.sum(), x)


def test_an_unchanged_output_still_gives_the_second_derivative():
    # sigmoid'' = s (1 - s) (1 - 2 s); the recorded gradient now reads the output itself
    x = gw.tensor([0.5, -1.0, 2.0], dtype=gw.float64, requires_grad=True)
    g, = gw.autograd.grad(x.sigmoid().sum(), x, create_graph=True)
    h, = gw.autograd.grad(g.sum(), x)
    s = 1 / (1 + np.exp(-np.array([0.5, -1.0, 2.0])))
    np.testing.assert_allclose(np.asarray(h), s * (1 - s) * (1 - 2 * s), rtol=1e-12)


# ---- 7. a view made under no_grad, changed in place with grad on, is refused as torch -------
NO_GRAD_VIEWS = {
    "element": lambda y: y[0],
    "slice": lambda y: y[1:],
    "view": lambda y: y.view(-1),
    "T": lambda y: y.T,
    "unsqueeze": lambda y: y.unsqueeze(0),
    "expand": lambda y: y.expand(2, 3),
    "narrow": lambda y: y.narrow(1, 0, 2),
    "diagonal": lambda y: y.diagonal(),
    "select": lambda y: y.select(0, 1),
    "detach": lambda y: y.detach(),  # not a view autograd tracks: torch allows it
}
NO_GRAD_WRITES = {
    "mul_": lambda v, o: v.mul_(2),
    "add_": lambda v, o: v.add_(o.sum()),
    "copy_": lambda v, o: v.copy_(o.sum().expand(v.shape)),
    "setitem": lambda v, o: v.__setitem__(..., o.sum()),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("base", ["requires_grad", "constant"])
@pytest.mark.parametrize("view", list(NO_GRAD_VIEWS))
def test_a_view_made_under_no_grad_changed_in_place_with_grad_on(view, base, dtype):
    for write in NO_GRAD_WRITES.values():
        for operand_grad in (False, True):
            def program(lib, write=write, operand_grad=operand_grad):
                kind = getattr(lib, dtype)
                x = lib.tensor(np.arange(6.0).reshape(2, 3) + 1, dtype=kind, requires_grad=True)
                o = lib.tensor([1.5], dtype=kind, requires_grad=operand_grad)
                y = x * 1 if base == "requires_grad" else x.detach().clone()
                with lib.no_grad():
                    v = NO_GRAD_VIEWS[view](y)
                write(v, o)
                out = [y.detach().clone()]
                loss = (y ** 2).sum() + (v ** 2).sum()
                if loss.requires_grad:
                    loss.backward()
                    out += [lib.zeros(()) if g is None else g.clone() for g in (x.grad, o.grad)]
                return out
            _same(program, dtype)


@pytest.mark.parametrize("base", ["leaf", "nonleaf"])
def test_a_view_of_a_no_grad_view_is_refused_too(base):
    x = gw.ones(2, 3, requires_grad=True)
    y = x if base == "leaf" else x * 1
    with gw.no_grad():
        v = y[0]
    w = v.view(3)  # made with grad on, from a view made under no_grad
    with pytest.raises(RuntimeError, match="view of a view which was created in no_grad mode"):
        w.mul_(2)
    with pytest.raises(RuntimeError, match="A view was created in no_grad mode"):
        v.mul_(2)
    with gw.no_grad():  # both inside no_grad: allowed, not tracked
        v.mul_(2)
    assert float(np.asarray(y.detach())[0, 0]) == 2.0


# ---- 1 (the sweep's last view): unfold is a view, as torch's --------------------------------
UNFOLDS = [((), 0, 1, 1), ((), 0, 0, 1), ((5,), 0, 2, 1), ((5,), 0, 2, 2), ((5,), 0, 3, 2),
           ((5,), 0, 0, 2), ((5,), 0, 5, 1), ((3, 4), 1, 2, 1), ((3, 4), -1, 3, 3),
           ((2, 3, 4), 1, 2, 1), ((1,), 0, 1, 1), ((4,), 0, 1, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", UNFOLDS)
def test_unfold_is_a_view_with_torchs_shape_gradients_and_writes(case, dtype):
    shape, dim, size, step = case
    values = np.arange(1, 1 + int(np.prod(shape))).reshape(shape) / 3

    def gradients(lib):
        x = lib.tensor(values, dtype=getattr(lib, dtype), requires_grad=True)
        u = x.unfold(dim, size, step)
        w = lib.tensor(np.linspace(-1, 2, u.numel()).reshape(tuple(u.shape)),
                       dtype=getattr(lib, dtype))
        g, = lib.autograd.grad((u * u * w).sum(), x, create_graph=True)
        h, = lib.autograd.grad((g * g).sum(), x)
        return [u, g, h]

    def writes(lib):
        x = lib.tensor(values, dtype=getattr(lib, dtype), requires_grad=True)
        y = x * 1
        u = y.unfold(dim, size, step)
        if size and step >= size:
            u.mul_(3)  # windows apart: every element once
        elif u.numel():
            u.fill_(0.5)
        (y * y).sum().backward()
        return [y, x.grad]
    _same(gradients, dtype)
    _same(writes, dtype)
    y = gw.tensor(values, dtype=getattr(gw, dtype))
    u = y.unfold(dim, size, step)
    assert u.numel() == 0 or np.shares_memory(y._data, u._data)
