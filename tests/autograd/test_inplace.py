"""In-place ops under autograd, side by side with PyTorch (issue 11).

Each case runs the same one-liner on gradwise and on torch and compares the values, the
gradients and whether the in-place tensor kept its identity; the refusals (a leaf that requires
grad, a tensor that backward saved and that was changed since) are compared by torch's wording.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

W = [0.5, -1.2, 2.0]
V = [1.5, 0.3, -0.7]


def _mask(lib, values):
    return lib.tensor(values)


def _long(lib, values):
    return lib.tensor(values, dtype=lib.int64)


# name -> f(lib, w, v) returning the tensor whose sum of squares is the loss
CASES = {
    "setitem_int_grad_value": lambda L, w, v: _seti(L.zeros(3), 0, w[1] * 3) * w,
    "setitem_slice": lambda L, w, v: _seti(L.zeros(3), slice(1, None), v[:2]) * w,
    "setitem_int_list": lambda L, w, v: _seti(L.zeros(3), [0, 2], w[:2] * 2) * v,
    "setitem_bool_mask": lambda L, w, v: _seti(w * 1, _mask(L, [True, False, True]), v[:2]),
    "setitem_nonleaf_const": lambda L, w, v: _seti(w * 2, 0, 5.0) * v,
    "setitem_row_broadcast": lambda L, w, v: _seti(L.zeros(2, 3), 0, w) + v,
    "setitem_scalar_grad": lambda L, w, v: _seti(w * 1, 1, v[2]),
    "setitem_tensor_index": lambda L, w, v: _seti(L.zeros(3), _long(L, [2, 0]), v[:2]) * w,
    "setitem_loop": lambda L, w, v: _loop(L, w),
    "copy_": lambda L, w, v: L.zeros(3).copy_(w * 3) * w,
    "copy_broadcast": lambda L, w, v: L.zeros(2, 3).copy_(w) * v,
    "copy_nonleaf": lambda L, w, v: (v * 1).copy_(w) * v,
    "add_plain": lambda L, w, v: L.zeros(3).add_(w) * v,
    "add_alpha": lambda L, w, v: (w * 1).add_(v, alpha=2),
    "add_scalar": lambda L, w, v: (w * 1).add_(1),
    "sub_": lambda L, w, v: (w * 1).sub_(v),
    "mul_tensor": lambda L, w, v: (w + 0).mul_(v),
    "mul_scalar": lambda L, w, v: (w + 0).mul_(3),
    "div_": lambda L, w, v: (w + 0).div_(v),
    "clamp_": lambda L, w, v: (w * 1).clamp_(-1, 1),
    "zero_clone": lambda L, w, v: w.clone().zero_() + w,
    "fill_": lambda L, w, v: (w * 1).fill_(2.0) * v,
    "masked_fill_": lambda L, w, v: (w * 1).masked_fill_(_mask(L, [True, False, False]), 0.0),
    "index_add_": lambda L, w, v: (w * 1).index_add_(0, _long(L, [0, 0]), v[:2]),
    "scatter_": lambda L, w, v: (w * 1).scatter_(0, _long(L, [2, 0]), v[:2]),
    "scatter_add_": lambda L, w, v: (w * 1).scatter_add_(0, _long(L, [2, 2]), v[:2]),
    "relu_": lambda L, w, v: (w * 1).relu_(),
    "sigmoid_": lambda L, w, v: (w * 1).sigmoid_(),
    "tanh_": lambda L, w, v: (w * 1).tanh_(),
    "neg_": lambda L, w, v: (w * 1).neg_(),
    "exp_": lambda L, w, v: (w * 1).exp_(),
    "abs_": lambda L, w, v: (w * 1).abs_(),
    "addcmul_": lambda L, w, v: (w * 1).addcmul_(v, w, value=0.5),
    "addcdiv_": lambda L, w, v: (w * 1).addcdiv_(w, v + 3, value=2),
    "lerp_": lambda L, w, v: (w * 1).lerp_(v, 0.25),
    "iadd": lambda L, w, v: _iop(w * 1, "__iadd__", v),
    "isub": lambda L, w, v: _iop(w * 1, "__isub__", v),
    "imul": lambda L, w, v: _iop(w + 0, "__imul__", v),
    "itruediv": lambda L, w, v: _iop(w + 0, "__itruediv__", v + 3),
    "iadd_plain_grad_value": lambda L, w, v: _iop(L.zeros(3), "__iadd__", w) * v,
    "stale_edge": lambda L, w, v: _stale(w),
    "chain": lambda L, w, v: _seti((w * 1).add_(1).mul_(v), 0, v[2]),
    "same_tensor_operand": lambda L, w, v: _self_add(w),
}


def _seti(t, index, value):
    t[index] = value
    return t


def _loop(L, w):
    out = L.zeros(3, 3)
    for t in range(3):
        out[t] = w * t
    return out


def _iop(t, op, other):
    before = t
    result = getattr(t, op)(other)
    assert result is before  # += changes the tensor, it does not rebind the name
    return result


def _stale(w):
    y = w * 1
    z = y + 2  # recorded before y changes: its gradient goes to y's earlier history
    y.mul_(3)
    return z + y


def _self_add(w):
    y = w + 0
    y.add_(y)
    return y


def _run(lib, case):
    w = lib.tensor(W, requires_grad=True)
    v = lib.tensor(V, requires_grad=True)
    out = CASES[case](lib, w, v)
    (out * out).sum().backward()
    grads = [None if t.grad is None else np.asarray(t.grad.detach().numpy() if lib is torch
                                                    else t.grad) for t in (w, v)]
    return np.asarray(out.detach().numpy()), grads, out.requires_grad


@pytest.mark.parametrize("case", sorted(CASES))
def test_inplace_matches_torch(case):
    got, got_grads, got_rg = _run(gw, case)
    want, want_grads, want_rg = _run(torch, case)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert got_rg == want_rg
    for g, t in zip(got_grads, want_grads, strict=True):
        if t is None or not np.any(t):
            assert g is None or not np.any(g)
        else:
            np.testing.assert_allclose(g, t, rtol=1e-5, atol=1e-6)


def test_iadd_updates_every_name():
    w = gw.tensor(W, requires_grad=True)
    y = w * 1
    z = y
    y += 1
    assert y is z
    np.testing.assert_allclose(np.asarray(z.detach()), np.asarray(W, np.float32) + 1)
    assert type(y.grad_fn).__name__ == "AddBackward0"  # torch's node name


def test_version_counter_moves_once_per_recorded_op():
    w = gw.tensor(W, requires_grad=True)
    y = w * 1
    before = y._version[0]
    y.add_(1)
    y[0] = 2.0
    assert y._version[0] == before + 2


# refusals: torch's words, and gradwise must refuse where torch does
def _leaf_add(L):
    L.tensor(W, requires_grad=True).add_(1)


def _leaf_setitem(L):
    w = L.tensor(W, requires_grad=True)
    w[0] = 1.0


def _leaf_iadd(L):
    w = L.tensor(W, requires_grad=True)
    w += 1


def _leaf_view(L):
    L.tensor(W, requires_grad=True)[:2].mul_(2)


def _saved_output(L):
    w = L.tensor(W, requires_grad=True)
    y = w.exp()
    y.add_(1)
    y.sum().backward()


def _saved_output_relu(L):
    w = L.tensor(W, requires_grad=True)
    y = w * 1
    y.relu_()
    y.mul_(2)
    y.sum().backward()


def _saved_input(L):
    w = L.tensor(W, requires_grad=True)
    y = w * 1
    z = y.sin()
    y.add_(1)
    z.sum().backward()


REFUSALS = {
    _leaf_add: "a leaf Variable that requires grad is being used in an in-place operation",
    _leaf_setitem: "a leaf Variable that requires grad is being used in an in-place operation",
    _leaf_iadd: "a leaf Variable that requires grad is being used in an in-place operation",
    _leaf_view: "a view of a leaf Variable that requires grad is being used in an in-place",
    _saved_output: "modified by an inplace operation",
    _saved_output_relu: "modified by an inplace operation",
    _saved_input: "modified by an inplace operation",
}


@pytest.mark.parametrize("fn", list(REFUSALS), ids=lambda f: f.__name__)
def test_refusals_match_torch(fn):
    with pytest.raises(RuntimeError, match=REFUSALS[fn]):
        fn(torch)
    with pytest.raises(RuntimeError, match=REFUSALS[fn]):
        fn(gw)


def test_no_grad_inplace_on_leaf_is_not_recorded():
    w = gw.tensor(W, requires_grad=True)
    with gw.no_grad():
        w.add_(1)
        w[0] = 0.0
        w += 1
    assert w.grad_fn is None and w.requires_grad
    np.testing.assert_allclose(np.asarray(w.detach()), [1.0, 0.8, 4.0], rtol=1e-6)


def test_view_of_nonleaf_is_recorded_through_its_base():
    # torch rebases the base's history through the view (CopySlices); so does gradwise now
    # (issue 12, review 5: the grid is in test_edge_regressions_review5.py)
    results = []
    for lib in (torch, gw):
        w = lib.tensor(W, requires_grad=True)
        y = w * 1
        y[:2].add_(1)
        h = lib.zeros(3)
        h[:2].copy_(w[:2] * 2)
        ((y * y).sum() + (h * h).sum()).backward()
        results.append((np.asarray(y.detach()), np.asarray(h.detach()), np.asarray(w.grad)))
    for ours, theirs in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


@pytest.mark.parametrize("case", ["mul_tensor", "setitem_slice", "copy_", "add_alpha"])
def test_create_graph_through_inplace(case):
    def second(lib):
        w = lib.tensor(W, requires_grad=True)
        v = lib.tensor(V, requires_grad=True)
        out = CASES[case](lib, w, v)
        (g,) = lib.autograd.grad((out * out * out).sum(), w, create_graph=True)
        (g * g).sum().backward()
        return np.asarray(w.grad.detach().numpy() if lib is torch else w.grad)

    np.testing.assert_allclose(second(gw), second(torch), rtol=1e-4, atol=1e-5)


# ---- views, casts that return self, dtype refusals, Parameter copies (issue 11) -------------
def test_view_of_a_transposed_tensor_raises_like_torch():
    for lib in (torch, gw):
        x = lib.ones(2, 3)
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            x.t().view(-1)
        assert tuple(x.t().reshape(-1).shape) == (6,)
    x = gw.zeros(2, 3)
    x.view(-1)[4] = 7.0  # a real view: the write reaches x
    assert x.tolist()[1][1] == 7.0
    x.t().view(3, 2)  # a transposed layout that can be viewed without a copy is fine


@pytest.mark.parametrize("method", ["float", "contiguous", "cpu", "to_same", "double_f64"])
def test_casts_to_the_same_dtype_return_self_like_torch(method):
    calls = {"float": lambda t: t.float(), "contiguous": lambda t: t.contiguous(),
             "cpu": lambda t: t.cpu(), "to_same": lambda t: t.to(t.dtype),
             "double_f64": lambda t: t.double()}
    for lib in (torch, gw):
        x = lib.ones(2, 2) if method != "double_f64" else lib.ones(2, 2, dtype=lib.float64)
        assert calls[method](x) is x
    y = gw.ones(2).double()
    assert y.dtype == gw.float64 and y.float().dtype == gw.float32


@pytest.mark.parametrize("call", [
    lambda lib: lib.ones(2, 2) @ lib.ones(2, 2, dtype=lib.float64),
    lambda lib: lib.ones(2, 2, dtype=lib.float64) @ lib.ones(2, 2),
    lambda lib: lib.nn.Conv2d(1, 1, 3)(lib.ones(1, 1, 4, 4, dtype=lib.float64)),
], ids=["matmul_f32_f64", "matmul_f64_f32", "conv2d_f64"])
def test_no_promotion_in_matmul_and_conv(call):
    with pytest.raises(RuntimeError):
        call(torch)
    # conv2d's own check raises TypeError (kept: its tests document it); the others as torch
    with pytest.raises((RuntimeError, TypeError), match=r"(matmul|conv2d).*(dtype|type)"):
        call(gw)


def test_deepcopy_of_a_parameter_drops_grad_like_torch():
    import copy
    for lib in (torch, gw):
        model = lib.nn.Linear(3, 2)
        model(lib.ones(1, 3)).sum().backward()
        clone = copy.deepcopy(model)
        assert model.weight.grad is not None
        assert clone.weight.grad is None and clone.weight.requires_grad
        assert type(clone.weight) is type(model.weight)
        clone.weight.data.mul_(0)
        assert float(model.weight.detach().abs().sum()) > 0  # own memory
