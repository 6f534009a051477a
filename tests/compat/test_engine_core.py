"""Issue 11 engine core: .data/.grad as Tensors, dtypes and promotion, dim/keepdim, max(dim).

The dtype table runs against PyTorch as the oracle (skipped without it); the rest states
PyTorch's documented behaviour directly.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest

import gradwise as gw

# ---- .data and .grad share memory ----------------------------------------------------------


def _param_with_grad():
    w = gw.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    (w * w).sum().backward()  # grad = 2w
    return w


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        (lambda g: g.zero_(), lambda g0: g0 * 0),
        (lambda g: g.mul_(0.5), lambda g0: g0 * 0.5),
        (lambda g: g.add_(1.0), lambda g0: g0 + 1),
        (lambda g: g.clamp_(max=3.0), lambda g0: np.minimum(g0, 3)),
        (lambda g: g.fill_(7.0), lambda g0: np.full_like(g0, 7)),
        (lambda g: g.copy_(np.ones((2, 3))), lambda g0: np.ones_like(g0)),
    ],
)
def test_in_place_ops_on_grad_change_the_real_gradient(update, expected):
    w = _param_with_grad()
    before = np.array(w.grad)
    update(w.grad)
    np.testing.assert_array_equal(w._grad, expected(before))


def test_grad_iadd_and_assignment():
    w = _param_with_grad()
    before = np.array(w.grad)
    w.grad += 1.0
    np.testing.assert_array_equal(w._grad, before + 1)
    assert isinstance(w.grad, gw.Tensor) and w.grad.shape == (2, 3)
    w.grad = gw.zeros(2, 3)
    np.testing.assert_array_equal(np.asarray(w.grad), 0)
    w.grad = None
    assert w.grad is None
    with pytest.raises(RuntimeError, match=r"shape \(3,\) but the tensor has shape \(2, 3\)"):
        w.grad = np.zeros(3)


def test_data_is_a_detached_tensor_sharing_memory_and_version():
    w = _param_with_grad()
    d = w.data
    assert isinstance(d, gw.Tensor) and not d.requires_grad and d.grad_fn is None
    d.mul_(2.0)  # allowed: d does not require grad
    np.testing.assert_array_equal(w.numpy(), np.arange(6).reshape(2, 3) * 2)
    assert w._version[0] == 1  # the shared counter saw the change
    w.data = np.zeros((2, 3), np.float32)
    np.testing.assert_array_equal(w.numpy(), 0)
    assert float(w.grad.data.sum()) == pytest.approx(30.0)


def test_numpy_functions_accept_tensors():
    t = gw.tensor([1.0, 2.0, 3.0])
    assert np.asarray(t).dtype == np.float32
    assert np.mean(np.asarray(t)) == pytest.approx(2.0)
    out = np.exp(t)
    assert isinstance(out, gw.Tensor)
    np.testing.assert_allclose(np.asarray(out), np.exp([1.0, 2.0, 3.0]), rtol=1e-6)
    r = np.ones(3, np.float32) + gw.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert isinstance(r, gw.Tensor) and r.requires_grad  # recorded like tensor + ndarray
    with pytest.raises(TypeError, match="numpy.exp on a tensor that requires grad"):
        np.exp(gw.tensor([1.0], requires_grad=True))


# ---- dim / keepdim ----------------------------------------------------------------------------


def test_dim_and_axis_together_is_an_error():
    x = gw.ones(2, 3)
    for call in (lambda: x.sum(dim=0, axis=0), lambda: x.mean(1, keepdim=True, keepdims=True),
                 lambda: gw.cat([x, x], dim=0, axis=0), lambda: x.squeeze(dim=0, axis=0)):
        with pytest.raises(TypeError, match="not both"):
            call()


def test_max_and_min_with_dim_return_values_and_indices():
    x = gw.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], requires_grad=True)
    values, indices = x.max(1)
    np.testing.assert_array_equal(np.asarray(values), [5.0, 6.0])
    assert indices.dtype == np.int64 and indices.tolist() == [1, 2]
    assert x.min(dim=0).indices.tolist() == [0, 1, 0]
    assert x.max().shape == () and float(x.max()) == 6.0
    _, pred = x.max(1)  # the tutorial idiom
    assert pred.tolist() == [1, 2]
    with pytest.raises(TypeError, match="amax"):
        x.max(dim=(0, 1))


def test_max_dim_gradient_goes_to_one_tied_element_and_amax_splits():
    x = gw.tensor([[2.0, 2.0]], requires_grad=True)
    x.max(1).values.sum().backward()
    np.testing.assert_array_equal(np.asarray(x.grad), [[1.0, 0.0]])
    y = gw.tensor([[2.0, 2.0]], requires_grad=True)
    y.amax(1).sum().backward()
    np.testing.assert_array_equal(np.asarray(y.grad), [[0.5, 0.5]])


def test_std_var_are_unbiased_by_default():
    x = gw.tensor([1.0, 2.0, 3.0, 4.0])
    assert float(x.std()) == pytest.approx(1.2909944)
    assert float(x.std(unbiased=False)) == pytest.approx(1.1180340)
    assert float(x.var(correction=0)) == pytest.approx(1.25)
    assert float(x.var(ddof=0)) == pytest.approx(1.25)
    with pytest.raises(TypeError, match="one of correction, unbiased and ddof"):
        x.var(unbiased=True, ddof=0)


# ---- dtypes and promotion against PyTorch ------------------------------------------------------

CREATION = [[[1, 2], [3, 4]], [1.5, 2], [True, False], 3, 2.5, True]

PROMOTION = [
    # (left, right): each either ("t", values, dtype name) for a tensor or a Python/NumPy scalar
    (("t", [1, 2], "int64"), 2),
    (("t", [1, 2], "int64"), 0.5),
    (("t", [1, 2], "int32"), 2),
    (("t", [1.0, 2.0], "float32"), 2.0),
    (("t", [1.0, 2.0], "float32"), 3),
    (("t", [1, 2], "int64"), ("t", [1.5, 2.5], "float32")),
    (("t", [1.0, 2.0], "float32"), ("t", [1.5, 2.5], "float64")),
    (("t", [1, 2], "uint8"), ("t", [1, 2], "int64")),
    (("t", [True, False], "bool"), 2),
    (("t", [True, False], "bool"), 1.5),
    (("t", [True, False], "bool"), ("t", [1, 2], "int32")),
    (("t", [1.0, 2.0], "float16"), 2.5),
    (("t", [1.0, 2.0], "float32"), "np.float64(2.0)"),
    (("t", [1, 2], "int64"), "np.float64(0.5)"),
    (("t", [1.0, 2.0], "float32"), "np.array(2.0)"),
    (2, ("t", [1.0, 2.0], "float32")),
    (1.5, ("t", [1, 2], "int64")),
]
OPS = ["add", "sub", "mul", "truediv", "lt", "eq", "ge"]


def _make(lib, spec):
    if isinstance(spec, tuple):
        _, values, dtype = spec
        return lib.tensor(values, dtype=getattr(lib, dtype))
    if isinstance(spec, str):
        return eval(spec)  # a NumPy scalar or 0-d array, taken as-is by both libraries
    return spec


@pytest.mark.parametrize("data", CREATION, ids=[repr(d) for d in CREATION])
def test_tensor_creation_dtype_matches_torch(data):
    torch = pytest.importorskip("torch")
    assert str(gw.tensor(data).dtype) == str(torch.tensor(data).dtype).removeprefix("torch.")


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(("left", "right"), PROMOTION, ids=[repr(p) for p in PROMOTION])
def test_binary_promotion_matches_torch(left, right, op):
    torch = pytest.importorskip("torch")
    if isinstance(left, str) or isinstance(right, str):
        # torch takes a NumPy scalar like a Python scalar; a 0-d ndarray it cannot take, so the
        # oracle gets the equivalent Python float
        t_right = float(eval(right)) if isinstance(right, str) else right
    else:
        t_right = right
    fn = getattr(operator, op)
    try:
        theirs = fn(_make(torch, left), _make(torch, t_right) if not isinstance(t_right, float)
                    else t_right)
    except RuntimeError:
        pytest.skip("PyTorch refuses this pair (bool subtraction)")
    ours = fn(_make(gw, left), _make(gw, right))
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), (left, right, op)
    np.testing.assert_allclose(np.asarray(ours, dtype=np.float64),
                               theirs.double().numpy(), rtol=1e-3)


def test_dtype_objects_and_default():
    assert gw.float32 == np.float32 and gw.int64 == np.int64 and gw.bool == np.bool_
    assert gw.get_default_dtype() == np.float32
    assert gw.tensor([1, 2]).dtype == gw.int64
    assert (gw.tensor([1, 2]) / gw.tensor([2, 4])).dtype == gw.float32
