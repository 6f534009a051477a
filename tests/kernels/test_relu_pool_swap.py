"""nn.Sequential runs ReLU then MaxPool2d as max-pooling then ReLU (issue 14): the same values
and gradients bit for bit as module by module, on edge values (ties, zeros, -0.0, NaN, +-inf,
inf/NaN gradients), every pooling geometry, both kernel paths; and it steps aside for hooks,
observers and ``return_indices``."""

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd import observe


def _edge_images(shape, seed):
    """Random values rounded to a coarse grid (many ties, exact zeros) with -0.0, +-inf and NaN
    planted."""
    rng = np.random.default_rng(seed)
    values = np.round(rng.standard_normal(shape) * 2) / 2
    flat = values.reshape(-1)
    picks = rng.choice(flat.size, size=min(flat.size, 12), replace=False)
    flat[picks] = np.array([-0.0, -0.0, 0.0, np.inf, -np.inf, np.nan] * 2)[: picks.size]
    return values


def _model(pool: gw.nn.Module, channels: int) -> gw.nn.Sequential:
    return gw.nn.Sequential(gw.nn.Conv2d(channels, channels, 1, rng=0), gw.nn.ReLU(), pool,
                            gw.nn.Flatten())


def _run(model, data, grad, by_module: bool):
    x = gw.tensor(data, requires_grad=True)
    out = x
    if by_module:
        for module in model:
            out = module(out)
    else:
        out = model(x)
    out.backward(gw.tensor(grad))
    grads = [np.asarray(p.grad).copy() for p in model.parameters()]
    model.zero_grad()
    return out.numpy(), np.asarray(x.grad).copy(), grads


POOLS = [
    dict(kernel_size=2),  # tiles (the CNN's pooling)
    dict(kernel_size=3, stride=1, padding=1),  # overlapping windows with padding
    dict(kernel_size=(2, 3), stride=(1, 2)),
    dict(kernel_size=3, stride=2, padding=1),
]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the NaNs
@pytest.mark.parametrize("pool_args", POOLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 3, 8, 16])  # below and above the pool kernel's limit
def test_swapped_relu_pool_equals_module_by_module_bitwise(jit_path, pool_args, dtype,
                                                           channels):
    model = _model(gw.nn.MaxPool2d(**pool_args), channels)
    if dtype == np.float64:
        model.double()
    data = _edge_images((2, channels, 7, 6), seed=channels).astype(dtype)
    with gw.no_grad():
        out_shape = model(gw.tensor(data)).shape
    grad = _edge_images(out_shape, seed=1).astype(dtype)  # inf/NaN gradients too
    got = _run(model, data, grad, by_module=False)
    want = _run(model, data, grad, by_module=True)
    np.testing.assert_array_equal(got[0], want[0])
    assert np.array_equal(np.signbit(got[0]), np.signbit(want[0]))  # relu gives +0.0 in both
    assert got[0].dtype == dtype
    np.testing.assert_array_equal(got[1], want[1])
    for fused, plain in zip(got[2], want[2], strict=True):
        np.testing.assert_array_equal(fused, plain)


def _graph_names(t):
    names, stack, seen = [], [t.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.append(node.name)
        stack.extend(i.grad_fn for i in getattr(node, "inputs", ()) or ())
    return names


def _relu_input_size(model, x):
    """Elements of the tensor the ReLU node reads (the pooled one when the swap ran)."""
    out = model(x)
    stack = [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if node.name in ("ReLU", "Relu"):
            return int(np.prod(node.inputs[0].shape))
        stack.extend(i.grad_fn for i in getattr(node, "inputs", ()) or ())
    raise AssertionError(f"no ReLU node in {_graph_names(out)}")


def test_swap_runs_and_steps_aside_for_hooks_observers_and_indices(jit_path):
    model = _model(gw.nn.MaxPool2d(2), 4)
    x = gw.randn(2, 4, 8, 8, requires_grad=True)
    full, pooled = 2 * 4 * 8 * 8, 2 * 4 * 4 * 4
    assert _relu_input_size(model, x) == pooled
    handle = model[1].register_forward_hook(lambda m, i, o: None)
    assert _relu_input_size(model, x) == full  # a hooked ReLU sees the conv's output
    handle.remove()
    handle = model[2].register_forward_pre_hook(lambda m, i: None)
    assert _relu_input_size(model, x) == full  # a hooked pool sees the ReLU's output
    handle.remove()
    seen = []
    with observe.observing(lambda kind, arrays, out: seen.append((kind, arrays[0].shape))):
        model(x)
    assert ("relu", (2, 4, 8, 8)) in seen  # the doctor's view: relu of the full activation
    with_indices = gw.nn.Sequential(gw.nn.ReLU(), gw.nn.MaxPool2d(2, return_indices=True))
    values, indices = with_indices(x)
    assert values.shape == (2, 4, 4, 4) and indices.shape == (2, 4, 4, 4)
    # a 3-D input is torch's unbatched (C, H, W): it runs module by module, same values
    single = gw.randn(4, 8, 8)
    np.testing.assert_array_equal(np.asarray(model[1:3](single)),
                                  np.asarray(model[1:3](single.unsqueeze(0)).squeeze(0)))
    with pytest.raises(ValueError, match=r"max_pool2d: expected input of shape \(N, C, H, W\)"):
        model[1:](gw.randn(8, 8))
    # a dilated pool is not swapped: its windows may hold no input element (-inf, not relu's 0)
    dilated = gw.nn.Sequential(gw.nn.ReLU(), gw.nn.MaxPool2d(2, 1, 1, dilation=3))
    assert _relu_input_size(dilated, x) == full
