"""Fused bias+ReLU kernels against their NumPy references, and the fused Linear+ReLU node that
nn.Sequential runs against Linear then ReLU (values, gradients, create_graph, hooks, observers)."""

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd import observe
from gradwise.autograd.kernels import activation as kernels
from gradwise.autograd.kernels._jit import set_jit_enabled


def _edge_matrix(rows, cols, dtype, seed=0):
    """Random values with 0, -0.0, +-inf and NaN planted (when the matrix is big enough)."""
    rng = np.random.default_rng(seed)
    out = rng.standard_normal((rows, cols)).astype(dtype)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=dtype)
    flat = out.reshape(-1)
    flat[: min(flat.size, specials.size)] = specials[: flat.size]
    return out


SHAPES = [(0, 3), (1, 1), (3, 0), (5, 7), (128, 256)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_bias_relu_equals_reference_bitwise(jit_path, shape, dtype, with_bias):
    out = _edge_matrix(*shape, dtype)
    bias = _edge_matrix(1, shape[1], dtype, seed=1)[0] if with_bias else None
    expected = out.copy()
    kernels.bias_relu_reference(expected, bias)
    kernels.bias_relu_(out, bias)
    np.testing.assert_array_equal(out, expected)
    assert np.array_equal(np.signbit(out), np.signbit(expected))  # -0.0 became +0.0 in both
    assert out.dtype == dtype


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("want_bias", [True, False])
def test_relu_backward_equals_reference_bitwise(jit_path, shape, dtype, want_bias):
    out = np.maximum(_edge_matrix(*shape, dtype), 0)
    grad = _edge_matrix(*shape, dtype, seed=2)[::-1].copy()  # specials meet other mask values
    grad_z, grad_b = kernels.relu_backward(grad, out, want_bias)
    ref_z, ref_b = kernels.relu_backward_reference(grad, out, want_bias)
    np.testing.assert_array_equal(grad_z, ref_z)
    assert grad_z.dtype == dtype
    if want_bias:
        np.testing.assert_array_equal(grad_b, ref_b)
        assert grad_b.dtype == dtype and grad_b.shape == (shape[1],)
    else:
        assert grad_b is None
    # a masked position is exactly 0 even under an inf or NaN gradient (threshold_backward)
    assert np.all(grad_z[out == 0] == 0)


@pytest.mark.parametrize("shape", [(1000, 1), (100_000, 1), (9, 1), (1000, 2), (4097, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_bias_sum_in_numpy_order(jit_path, shape, dtype):
    # finite values, so the bias sums compare their order of additions (a NaN would hide it):
    # NumPy sums a single column pairwise and wider ones row after row
    rng = np.random.default_rng(3)
    grad = rng.standard_normal(shape).astype(dtype)
    out = np.maximum(rng.standard_normal(shape), 0).astype(dtype)
    _, grad_b = kernels.relu_backward(grad, out, True)
    np.testing.assert_array_equal(grad_b, np.where(out != 0, grad, 0).sum(axis=0))


def _mlp(seed=0, bias=True):
    return gw.nn.Sequential(gw.nn.Linear(6, 5, bias=bias, rng=seed), gw.nn.ReLU(),
                            gw.nn.Linear(5, 4, bias=bias, rng=seed + 1), gw.nn.ReLU(),
                            gw.nn.Linear(4, 3, bias=bias, rng=seed + 2))


def _unfused(model, x):
    """The same model run module by module (no fusion)."""
    for module in model:
        x = module(x)
    return x


def _grads(model):
    return [np.asarray(p.grad).copy() for p in model.parameters()]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("input_shape", [(8, 6), (6,), (2, 3, 6), (0, 6)])
def test_sequential_fusion_matches_module_by_module(jit_path, bias, input_shape):
    rng = np.random.default_rng(3)
    data = rng.standard_normal(input_shape).astype(np.float32)
    model = _mlp(bias=bias)
    x = gw.tensor(data, requires_grad=True)
    out = model(x)
    assert "LinearReLU" in repr(out.grad_fn) or out.grad_fn.inputs[0].grad_fn.name == "LinearReLU"
    out.sum().backward()
    fused_grads, fused_x = _grads(model), np.asarray(x.grad).copy()
    model.zero_grad()
    x2 = gw.tensor(data, requires_grad=True)
    ref = _unfused(model, x2)
    ref.sum().backward()
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    for got, want in zip(fused_grads, _grads(model), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(fused_x, np.asarray(x2.grad))
    assert out.dtype == np.float32


def _graph_names(t):
    names, stack, seen = set(), [t.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.add(node.name)
        stack.extend(i.grad_fn for i in getattr(node, "inputs", ()) or ())
    return names


def test_fusion_is_used_and_steps_aside_for_hooks_and_observers(jit_path):
    model = _mlp()
    x = gw.randn(4, 6)
    assert "LinearReLU" in _graph_names(model(x).sum())
    handle = model[1].register_forward_hook(lambda m, i, o: None)
    names = _graph_names(model(x).sum())
    assert "ReLU" in names and "Linear" in names  # the hooked pair runs module by module
    handle.remove()
    seen = []
    with observe.observing(lambda kind, arrays, out: seen.append(kind)):
        model(x)
    assert seen.count("relu") == 2  # an observer sees both activations, as before fusion


def test_fused_second_order_gradients_match(jit_path):
    # create_graph through the fused node: the gradient-norm penalty's gradient
    model = _mlp()
    data = np.random.default_rng(4).standard_normal((5, 6)).astype(np.float64)

    def penalty(forward):
        x = gw.tensor(data, requires_grad=True)
        (grad_x,) = gw.autograd.grad(forward(x).pow(2).sum(), [x], create_graph=True)
        return (grad_x * grad_x).sum()

    model.double()
    penalty(model).backward()
    fused = _grads(model)
    model.zero_grad()
    penalty(lambda x: _unfused(model, x)).backward()
    for got, want in zip(fused, _grads(model), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_fused_gradcheck():
    previous = set_jit_enabled(True)
    try:
        rng = np.random.default_rng(5)
        x = gw.tensor(rng.standard_normal((4, 3)), requires_grad=True)
        w = gw.tensor(rng.standard_normal((2, 3)), requires_grad=True)
        b = gw.tensor(rng.standard_normal(2), requires_grad=True)
        assert gw.autograd.gradcheck(lambda x, w, b: gw.nn.functional._linear_relu(x, w, b),
                                     x, w, b)
    finally:
        set_jit_enabled(previous)


def test_fused_shape_error_names_the_layer():
    model = _mlp()
    with pytest.raises(ValueError, match="Linear\\(in_features=6"):
        model(gw.zeros(2, 7))


def test_fused_matches_pytorch():
    torch_ = pytest.importorskip("torch")
    model = _mlp()
    t_model = torch_.nn.Sequential(torch_.nn.Linear(6, 5), torch_.nn.ReLU(),
                                   torch_.nn.Linear(5, 4), torch_.nn.ReLU(),
                                   torch_.nn.Linear(4, 3))
    with torch_.no_grad():
        for p, tp in zip(model.parameters(), t_model.parameters(), strict=True):
            tp.copy_(torch_.from_numpy(np.asarray(p.data)))
    data = np.random.default_rng(6).standard_normal((7, 6)).astype(np.float32)
    out = model(gw.tensor(data))
    out.sum().backward()
    t_out = t_model(torch_.from_numpy(data))
    t_out.sum().backward()
    np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), rtol=1e-5, atol=1e-6)
    for p, tp in zip(model.parameters(), t_model.parameters(), strict=True):
        np.testing.assert_allclose(np.asarray(p.grad), tp.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_fused_node_exports_to_onnx(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = _mlp()
    first, second = model[0], model[2]

    def fused(x):  # a callable has no module hooks, so the fused nodes are what gets traced
        h = gw.nn.functional._linear_relu(x, first.weight, first.bias)
        return gw.nn.functional._linear_relu(h, second.weight, second.bias)

    x = np.random.default_rng(7).standard_normal((3, 6)).astype(np.float32)
    assert "LinearReLU" in _graph_names(fused(gw.tensor(x)).sum())
    path = tmp_path / "fused.onnx"
    gw.onnx.export(fused, gw.tensor(x), path)
    session = onnxruntime.InferenceSession(str(path))
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(got, fused(gw.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)
