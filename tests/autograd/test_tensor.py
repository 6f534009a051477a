"""Tensor creation, the backward pass, grad modes, hooks and the in-place version check."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise.nn import functional as F


# ---- creation and dtypes ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "dtype"),
    [
        (3, np.int64),
        (2.5, np.float32),
        ([1, 2, 3], np.int64),
        ([1, 2.5], np.float32),
        ([[1.0, 2.0]], np.float32),
        (np.arange(3, dtype=np.float64), np.float64),
        (np.arange(3, dtype=np.int64), np.int64),
        ([True, False], np.bool_),
    ],
)
def test_tensor_dtype_rules(data, dtype):
    assert gw.tensor(data).dtype == dtype


def test_tensor_copies_numpy_input():
    array = np.zeros(3, dtype=np.float32)
    t = gw.tensor(array)
    array[0] = 5
    assert t.data[0] == 0


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating point and complex dtype can require"):
        gw.tensor(np.arange(3), requires_grad=True)


def test_factories_shapes_dtypes_and_seeded_rng():
    assert gw.zeros(2, 3).shape == (2, 3) and gw.zeros((2, 3)).dtype == np.float32
    assert gw.ones(4).data.sum() == 4
    assert gw.arange(5).dtype == np.int64 and gw.arange(0.0, 1.0, 0.25).shape == (4,)
    assert gw.zeros_like(gw.ones(2, 2)).data.sum() == 0
    np.testing.assert_array_equal(gw.randn(3, 4, rng=7).data, gw.randn(3, 4, rng=7).data)
    assert not np.array_equal(gw.randn(3, rng=1).data, gw.randn(3, rng=2).data)
    r = gw.rand(1000, rng=np.random.default_rng(0)).data
    assert r.dtype == np.float32 and r.min() >= 0 and r.max() < 1


def test_properties_and_repr():
    t = gw.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    assert (t.shape, t.ndim, t.size, t.is_leaf) == ((1, 3), 2, 3, True)
    assert "requires_grad=True" in repr(t)
    y = t * 2
    assert "grad_fn=<MulBackward0>" in repr(y) and not y.is_leaf
    assert gw.tensor(4.0).item() == 4.0
    assert isinstance(t.numpy(), np.ndarray)
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None


def test_float32_stays_float32_through_ops_and_gradients():
    w = gw.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    x = gw.tensor(np.ones((4, 3), np.float32))
    out = (F.relu(x @ w) * 0.5 + 1).exp().mean()
    assert out.dtype == np.float32
    out.backward()
    assert w.grad.dtype == np.float32


# ---- backward -----------------------------------------------------------------------------
def test_single_neuron_backprop_matches_hand_computation():
    """The example people learn backprop from: sigmoid neuron, BCE against y = 1."""
    x = gw.tensor([1.0, 2.0])
    w = gw.tensor([0.5, 0.3], requires_grad=True)
    b = gw.tensor(0.1, requires_grad=True)
    z = (w * x).sum() + b
    a = F.sigmoid(z)
    loss = F.binary_cross_entropy(a, gw.tensor(1.0))
    loss.backward()
    assert round(z.item(), 4) == 1.2
    assert round(a.item(), 4) == 0.7685
    assert round(loss.item(), 4) == 0.2633
    dz = a.item() - 1.0  # dL/dz = a - y
    np.testing.assert_allclose(w.grad, dz * np.array([1.0, 2.0]), atol=1e-4)
    assert round(float(b.grad), 4) == round(dz, 4) == -0.2315


def test_default_grad_only_for_one_element_tensors():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one-element.*shape \(2,\)"):
        (x * 2).backward()
    (x * 2).backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_backward_grad_shape_must_match():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Mismatch in shape: grad has shape"):
        (x * 2).backward(np.ones(3))


def test_backward_on_tensor_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        gw.tensor(1.0).backward()


def test_tensor_used_twice_gets_summed_gradient_and_leaves_accumulate():
    x = gw.tensor(3.0, requires_grad=True)
    (x * x + x).backward()
    assert x.grad == pytest.approx(7.0)
    (x * 2).backward()
    assert x.grad == pytest.approx(9.0)


def test_graph_is_freed_unless_retained():
    x = gw.tensor(2.0, requires_grad=True)
    y = (x * x).exp()
    y.backward(retain_graph=True)
    first = float(x.grad)
    y.backward()
    assert float(x.grad) == pytest.approx(2 * first)
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        y.backward()


def test_deep_chain_uses_no_recursion():
    x = gw.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 0.0
    y.backward()
    assert x.grad == 1.0


def test_leaf_grad_is_a_private_copy():
    """Add hands one array to both inputs; clipping one leaf's grad must not touch the other."""
    a = gw.tensor([1.0, 1.0], requires_grad=True)
    b = gw.tensor([1.0, 1.0], requires_grad=True)
    (a + b).backward(np.array([1.0, 1.0], np.float32))
    a.grad *= 0
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_no_grad_requires_grad_propagation_and_enable_grad():
    w = gw.tensor([1.0], requires_grad=True)
    assert (w * 2).requires_grad
    assert not (gw.tensor([1.0]) * 2).requires_grad
    with gw.no_grad():
        y = w * 2
        assert not y.requires_grad and y.grad_fn is None
        assert not gw.is_grad_enabled()
        with gw.enable_grad():
            assert (w * 2).requires_grad
    assert gw.is_grad_enabled()

    @gw.no_grad()
    def evaluate():
        return w * 3

    assert not evaluate().requires_grad


def test_retain_grad_keeps_intermediate_gradients():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, [6.0, 12.0])
    np.testing.assert_allclose(x.grad, [18.0, 36.0])


def test_hooks_see_and_can_replace_gradients():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    handle = x.register_hook(lambda g: g * 10)
    h.sum().backward()
    np.testing.assert_array_equal(seen[0], [1.0, 1.0])
    np.testing.assert_array_equal(x.grad, [20.0, 20.0])
    handle.remove()
    x.grad = None
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


# ---- in-place changes and the version counter ---------------------------------------------
def test_inplace_change_of_saved_input_is_caught():
    w = gw.tensor([1.0, 2.0], requires_grad=True)
    x = gw.tensor([3.0, 4.0])
    y = (w * x).sum()
    x.add_(1.0)  # Mul saved x for dL/dw
    with pytest.raises(RuntimeError, match=r"Mul: input 1 .*modified in place"):
        y.backward()


def test_inplace_change_of_saved_output_is_caught():
    w = gw.tensor([1.0, 2.0], requires_grad=True)
    e = w.exp()
    loss = e.sum()
    with gw.no_grad():
        e.mul_(2.0)  # Exp's backward reads its output
    with pytest.raises(RuntimeError, match="Exp: its output .*modified in place"):
        loss.backward()


def test_inplace_change_through_a_view_is_caught():
    w = gw.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = gw.tensor([[1.0, 2.0, 3.0]])
    row = x[0]  # basic index: a view sharing x's memory
    loss = (w * row.reshape(3)).sum()
    x.mul_(0.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_inplace_on_unsaved_input_is_fine():
    w = gw.tensor([1.0, 2.0], requires_grad=True)
    x = gw.tensor([3.0, 4.0])
    y = (w + x).sum()  # Add saves nothing
    x.add_(1.0)
    y.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 1.0])


def test_inplace_on_leaf_requiring_grad_needs_no_grad():
    w = gw.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        w.sub_(1.0)
    with pytest.raises(RuntimeError, match="no_grad"):
        w -= 1.0
    with gw.no_grad():
        w -= 1.0
    np.testing.assert_array_equal(w.data, [0.0, 1.0])
    assert w.requires_grad and w.is_leaf


# ---- errors name the op and the shapes ----------------------------------------------------
@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda: gw.zeros(32, 784) @ gw.zeros(128, 10),
         r"matmul: shapes \(32, 784\) and \(128, 10\) do not align \(784 != 128\)"),
        (lambda: gw.zeros(2, 3) + gw.zeros(4, 3), r"add: shapes \(2, 3\) and \(4, 3\)"),
        (lambda: gw.zeros(2, 3) * gw.zeros(3, 2), r"mul: shapes"),
        (lambda: gw.zeros(2, 3).reshape(4, 2), r"reshape: cannot reshape .*\(2, 3\)"),
        (lambda: gw.zeros(2, 3).sum(axis=2), r"sum: axis 2 is out of range"),
        (lambda: gw.zeros(2, 3).squeeze(0), r"squeeze: dim 0 has size 2"),
        (lambda: gw.cat([gw.zeros(2, 3), gw.zeros(3, 2)], axis=0), r"cat: tensor 1 has shape"),
        (lambda: gw.stack([gw.zeros(2), gw.zeros(3)]), r"stack: tensor 1 has shape"),
        (lambda: F.linear(gw.zeros(4, 5), gw.zeros(3, 6)), r"linear: input of shape \(4, 5\)"),
        (lambda: F.cross_entropy(gw.zeros(2, 10), np.array([1, 10])),
         r"cross_entropy: target label 10 is out of range for 10 classes"),
        (lambda: F.cross_entropy(gw.zeros(2, 3), np.array([1, 0, 1])), r"does not match input"),
        (lambda: F.mse_loss(gw.zeros(4, 1), gw.zeros(4)), r"mse_loss: input shape \(4, 1\)"),
        (lambda: F.binary_cross_entropy(gw.tensor([1.5]), gw.tensor([1.0])), r"probabilities"),
        (lambda: F.cross_entropy(gw.zeros(2, 3), np.array([0, 1]), reduction="avg"),
         r"reduction must be one of"),
        (lambda: gw.zeros(3)[5], r"getitem: .*index 5"),
    ],
)
def test_errors_name_the_problem(fn, message):
    with pytest.raises((ValueError, TypeError, IndexError), match=message):
        fn()


def test_float_class_labels_raise_torch_runtime_error_naming_the_op():
    with pytest.raises(RuntimeError, match=r"cross_entropy: .*Long or Byte, but got Double"):
        F.cross_entropy(gw.zeros(2, 3), np.array([1.0, 0.0]))


def test_missing_gradient_fails_loudly_with_the_op_name():
    class Broken(gw.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return (None,)

    x = gw.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="backward of Broken returned no gradient"):
        Broken.apply(x).sum().backward()


# ---- numerical stability --------------------------------------------------------------------
def test_activations_and_losses_are_stable_for_huge_logits():
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]], np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no overflow, no NaN
        x = gw.tensor(logits, requires_grad=True)
        outputs = [
            F.sigmoid(x).sum(),
            F.softmax(x).sum(),
            F.log_softmax(x)[:, 2].sum(),
            F.cross_entropy(x, np.array([1, 0])),
            F.binary_cross_entropy_with_logits(x, np.ones_like(logits)),
            F.softplus(x).sum(),
            F.elu(x).sum(),
            x.logsumexp(axis=1).sum(),
            F.binary_cross_entropy(F.sigmoid(x), np.ones_like(logits)),
        ]
        for out in outputs:
            x.grad = None
            out.backward()
            assert np.isfinite(out.data).all() and np.isfinite(x.grad).all(), out.grad_fn
    assert F.cross_entropy(x, np.array([1, 0])).item() == pytest.approx(2000.0)


def test_leaves_that_keep_fresh_gradients_still_hold_private_arrays():
    """Ops that allocate their gradients hand them to leaves uncopied; each leaf's is its own."""
    x = gw.tensor(np.ones((4, 3), np.float32), requires_grad=True)
    w = gw.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    b = gw.tensor(np.zeros(2, np.float32), requires_grad=True)
    s = gw.tensor([2.0], requires_grad=True)
    (F.linear(x, w, b).sum() + (s * s).sum()).backward()
    grads = [x._grad, w._grad, b._grad, s._grad]
    assert all(g.flags.writeable for g in grads)
    assert all(not np.shares_memory(a, c) for i, a in enumerate(grads) for c in grads[i + 1 :])
    np.testing.assert_allclose(s.grad, [4.0])  # s used twice: both uses summed
    seen = []
    w.grad = None
    w.register_hook(lambda g: seen.append(g.data))
    F.linear(x, w).sum().backward()
    w.grad *= 0  # must not change what the hook saw
    np.testing.assert_array_equal(seen[0], np.full((2, 3), 4.0))


def test_from_numpy_shares_memory_and_checks_its_argument():
    array = np.zeros(3, dtype=np.float32)
    t = gw.from_numpy(array)
    array[0] = 5
    assert t.data[0] == 5 and not t.requires_grad and t.dtype == np.float32
    with pytest.raises(TypeError, match="from_numpy: expected an np.ndarray, got list"):
        gw.from_numpy([1.0])
