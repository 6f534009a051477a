"""The autograd graph as torch shows it (issue 11, second newcomer review): every convolution's
node is ``ConvolutionBackward0``, whatever its rank, groups or transposition (an unbatched input
ends in torch's ``SqueezeBackward1``), and the gradients behind the renamed node stay torch's."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

X = {1: np.linspace(-1, 1, 2 * 4 * 5).reshape(2, 4, 5),
     2: np.linspace(-1, 1, 2 * 4 * 5 * 5).reshape(2, 4, 5, 5),
     3: np.linspace(-1, 1, 2 * 4 * 4 * 4 * 4).reshape(2, 4, 4, 4, 4)}

CASES = {  # name -> (rank, call(F, x, w), weight shape)
    "conv1d": (1, lambda F, x, w: F.conv1d(x, w, padding=1), (3, 4, 3)),
    "conv2d": (2, lambda F, x, w: F.conv2d(x, w, stride=2), (3, 4, 3, 3)),
    "conv3d": (3, lambda F, x, w: F.conv3d(x, w), (3, 4, 2, 2, 2)),
    "conv2d-groups": (2, lambda F, x, w: F.conv2d(x, w, groups=2), (4, 2, 3, 3)),
    "conv1d-groups": (1, lambda F, x, w: F.conv1d(x, w, groups=4), (4, 1, 3)),
    "conv2d-same": (2, lambda F, x, w: F.conv2d(x, w, padding="same"), (3, 4, 2, 2)),
    "conv2d-unbatched": (2, lambda F, x, w: F.conv2d(x[0], w), (3, 4, 3, 3)),
    "conv1d-unbatched": (1, lambda F, x, w: F.conv1d(x[1], w), (3, 4, 3)),
    "conv_transpose2d-unbatched": (2, lambda F, x, w: F.conv_transpose2d(x[0], w), (4, 3, 3, 3)),
    "conv_transpose1d": (1, lambda F, x, w: F.conv_transpose1d(x, w, stride=2), (4, 3, 3)),
    "conv_transpose2d": (2, lambda F, x, w: F.conv_transpose2d(x, w, padding=1), (4, 3, 3, 3)),
    "conv_transpose3d": (3, lambda F, x, w: F.conv_transpose3d(x, w), (4, 3, 2, 2, 2)),
    "conv_transpose2d-groups": (2, lambda F, x, w: F.conv_transpose2d(x, w, groups=2),
                                (4, 1, 3, 3)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_convolution_records_torch_node_name_and_gradients(name):
    rank, call, weight_shape = CASES[name]
    w = np.linspace(-0.5, 0.5, int(np.prod(weight_shape))).reshape(weight_shape)
    results = {}
    for module in (torch, gw):
        x = module.tensor(X[rank], requires_grad=True)
        weight = module.tensor(w, requires_grad=True)
        out = call(module.nn.functional, x, weight)
        (out * out).sum().backward()
        results[module.__name__] = (type(out.grad_fn).__name__, out.detach().numpy(),
                                    np.asarray(x.grad), np.asarray(weight.grad))
    expected, actual = results["torch"], results["gradwise"]
    assert actual[0] == expected[0] == (
        "SqueezeBackward1" if "unbatched" in name else "ConvolutionBackward0")
    for ours, theirs in zip(actual[1:], expected[1:], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("layer", ["Conv1d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d"])
def test_convolution_layers_record_torch_node_name(layer):
    rank = int(layer[-2])
    module = getattr(gw.nn, layer)(4, 4, 2)
    x = gw.tensor(X[rank].astype(np.float32), requires_grad=True)
    assert type(module(x).grad_fn).__name__ == "ConvolutionBackward0"


def _walk(node, leaves):
    """The graph behind a node as nested (torch node name, edges); a leaf's AccumulateGrad
    as ("AccumulateGrad", index of its variable in ``leaves``)."""
    if node is None:
        return None
    if type(node).__name__ == "AccumulateGrad":
        return "AccumulateGrad", next(i for i, leaf in enumerate(leaves) if node.variable is leaf)
    return node.name(), tuple((_walk(child, leaves), index)
                              for child, index in node.next_functions)


GRAPHS = {
    "mul-add-sum": lambda m, a, b: (a * b + a).sum(),
    "constant operand": lambda m, a, b: (a * m.ones(3)).mean(),
    "matmul-relu": lambda m, a, b: m.relu(a.reshape(1, 3) @ b.reshape(3, 1)),
    "exp-div": lambda m, a, b: a.exp() / (b + 1.0),
    "leaf used twice": lambda m, a, b: a * a,
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_next_functions_walk_the_graph_as_torch(name):
    walks = []
    for module in (torch, gw):
        a = module.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = module.tensor([0.5, -1.0, 2.0], requires_grad=True)
        walks.append(_walk(GRAPHS[name](module, a, b).grad_fn, [a, b]))
    assert walks[1] == walks[0]


def test_a_leaf_has_one_accumulate_grad_node_while_referenced():
    a = gw.tensor([1.0, 2.0], requires_grad=True)
    node = (a * a).grad_fn
    first, second = (edge for edge, _ in node.next_functions)
    assert first is second and first.variable is a
    assert first.name() == "torch::autograd::AccumulateGrad" and first.next_functions == ()


def test_node_name_is_the_op_name_and_called_torch_name():
    node = (gw.ones(2, requires_grad=True) @ gw.ones(2)).grad_fn
    assert node.name() == type(node).__name__ == "DotBackward0"
    assert f"{node.name}" == node.name == type(node).op_name
