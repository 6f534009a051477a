"""Module and Parameter: registration, traversal, modes, state_dict, hooks, rng state, repr."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn
from helpers import torch


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3, rng=0)
        self.norm = nn.BatchNorm1d(3)
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))

    def forward(self, x):
        return self.norm(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.drop = nn.Dropout(0.5, rng=1)
        self.head = nn.Linear(3, 2, rng=2)

    def forward(self, x):
        return self.head(self.drop(self.block(x)))


def test_registration_keeps_assignment_order_and_qualified_names():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "block.scale", "block.fc.weight", "block.fc.bias", "block.norm.weight",
        "block.norm.bias", "head.weight", "head.bias",
    ]
    assert [n for n, _ in net.named_children()] == ["block", "drop", "head"]
    assert [n for n, _ in net.named_modules()] == [
        "", "block", "block.fc", "block.norm", "drop", "head"]
    assert len(list(net.parameters(recurse=False))) == 0
    assert [n for n, _ in net.named_buffers()] == [
        "block.norm.running_mean", "block.norm.running_var", "block.norm.num_batches_tracked"]


def test_parameter_names_prefer_the_outermost_model():
    inner = nn.Sequential(nn.Linear(2, 2))
    list(inner.parameters())
    assert inner[0].weight.name == "0.weight"
    outer = nn.Sequential(nn.Linear(2, 2), inner)
    list(outer.parameters())
    assert inner[0].weight.name == "1.0.weight"
    list(inner.parameters())  # asking the sub-module again keeps the longer name
    assert inner[0].weight.name == "1.0.weight"


def test_shared_parameters_are_listed_once():
    a = nn.Linear(3, 3)
    model = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(model.parameters())) == 2


def test_parameter_requires_grad_and_defaults_to_float32():
    p = nn.Parameter([1, 2, 3])
    assert p.requires_grad and p.dtype == np.float32
    assert nn.Parameter(np.zeros(2, dtype=np.int64)).dtype == np.float32
    assert nn.Parameter(np.zeros(2)).dtype == np.float64  # float64 kept for gradcheck
    t = gw.zeros(2)
    assert nn.Parameter(t)._data is t._data
    assert repr(p).startswith("Parameter containing:")


def test_assignment_errors_name_the_attribute():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"Linear.weight: cannot assign ndarray to a parameter"):
        lin.weight = np.zeros((2, 2))

    class Forgetful(nn.Module):
        def __init__(self) -> None:
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Forgetful()


def test_train_eval_reach_every_submodule():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    net = Net()
    net(gw.randn(4, 4, rng=0)).sum().backward()
    net.zero_grad(set_to_none=set_to_none)
    for p in net.parameters():
        if set_to_none:
            assert p.grad is None
        else:
            assert p.grad is not None and not p.grad.any()


def test_state_dict_holds_detached_shared_tensors_in_pytorch_order_and_round_trips():
    net = Net()
    state = net.state_dict()
    assert list(state) == [
        "block.scale", "block.fc.weight", "block.fc.bias", "block.norm.weight", "block.norm.bias",
        "block.norm.running_mean", "block.norm.running_var", "block.norm.num_batches_tracked",
        "head.weight", "head.bias",
    ]
    assert all(isinstance(v, gw.Tensor) and not v.requires_grad and v.grad_fn is None
               for v in state.values())
    assert state["block.norm.num_batches_tracked"].dtype == np.int64
    # as in torch: the values share memory with the parameters; clone() keeps a snapshot
    snapshot = {k: v.clone() for k, v in state.items()}
    version = net.head.bias._version[0]
    state["head.bias"].fill_(100.0)
    assert (net.head.bias.data == 100.0).all() and net.head.bias._version[0] > version
    assert not (snapshot["head.bias"] == 100.0).any()
    state = snapshot
    other = Net()
    other.block.fc.reset_parameters(rng=99)
    result = other.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, state[key])


def test_load_state_dict_reports_every_problem_and_loads_nothing():
    net = Net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = Net().state_dict()
    del state["head.bias"]
    state["extra.weight"] = np.zeros(1)
    state["block.fc.weight"] = np.zeros((5, 4))
    state["block.scale"] = np.full(3, 7.0)
    with pytest.raises(nn.StateDictError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert "missing key(s): head.bias" in message
    assert "unexpected key(s): extra.weight" in message
    assert "block.fc.weight: checkpoint has (5, 4), model has (3, 4)" in message
    assert info.value.missing_keys == ["head.bias"]
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_load_state_dict_non_strict_skips_keys_but_not_shape_mismatches():
    net = Net()
    state = {"head.bias": np.full(2, 3.0), "other": np.zeros(1)}
    result = net.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(net.head.bias.data, [3.0, 3.0])
    assert result.unexpected_keys == ["other"] and "head.weight" in result.missing_keys
    with pytest.raises(nn.StateDictError, match="head.bias: checkpoint has"):
        net.load_state_dict({"head.bias": np.zeros(5)}, strict=False)


@pytest.mark.skipif(torch is None, reason="PyTorch oracle not installed")
def test_state_dict_loads_into_and_from_torch():
    model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.BatchNorm1d(3), nn.Linear(3, 2, rng=1))
    twin = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3),
                               torch.nn.Linear(3, 2))
    twin.load_state_dict({k: torch.from_numpy(np.asarray(v))
                        for k, v in model.state_dict().items()})
    model.load_state_dict(twin.state_dict())


def test_non_persistent_buffers_stay_out_of_state_dict():
    module = nn.Module()
    module.register_buffer("kept", np.zeros(2))
    module.register_buffer("scratch", np.zeros(2), persistent=False)
    assert list(module.state_dict()) == ["kept"]
    assert [n for n, _ in module.named_buffers()] == ["kept", "scratch"]


def test_forward_hooks_fire_with_shapes_and_handles_remove_them():
    net = Net()
    seen = []
    pre = net.head.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].shape))
    post = net.head.register_forward_hook(lambda m, inputs, out: seen.append(out.shape))
    net(gw.zeros(5, 4))
    assert seen == [(5, 3), (5, 2)]
    pre.remove()
    post.remove()
    net(gw.zeros(5, 4))
    assert len(seen) == 2


def test_forward_hooks_may_replace_inputs_and_output():
    relu = nn.ReLU()
    relu.register_forward_pre_hook(lambda m, inputs: (inputs[0] - 1,))
    relu.register_forward_hook(lambda m, inputs, out: out * 10)
    np.testing.assert_array_equal(relu(gw.tensor([0.5, 3.0])).data, [0.0, 20.0])


def test_backward_hook_sees_output_and_input_gradients():
    model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.Tanh(), nn.Linear(3, 2, rng=1))
    x = gw.randn(5, 4, rng=0, requires_grad=True)
    calls = {}

    def record(module, grad_input, grad_output):
        calls[type(module).__name__ + str(len(calls))] = (grad_input, grad_output)

    handles = [m.register_full_backward_hook(record) for m in model]
    hidden = []
    model[1].register_forward_hook(lambda m, i, out: hidden.append(out))
    out = model(x)
    out.sum().backward()
    assert list(calls) == ["Linear0", "Tanh1", "Linear2"]  # in backward order
    (grad_in,), (grad_out,) = calls["Linear0"]
    assert grad_out.shape == (5, 2) and np.allclose(grad_out.data, 1.0)
    assert grad_in.shape == (5, 3)
    tanh_in, tanh_out = calls["Tanh1"]
    np.testing.assert_allclose(tanh_in[0].data, tanh_out[0].data * (1 - hidden[0].data ** 2),
                               rtol=1e-6)
    first_in, first_out = calls["Linear2"]
    np.testing.assert_allclose(first_in[0].data, x.grad, rtol=1e-6)
    np.testing.assert_allclose(first_out[0].data, tanh_in[0].data, rtol=1e-6)
    for handle in handles:
        handle.remove()
    calls.clear()
    model(x).sum().backward()
    assert calls == {}


def test_backward_hook_gives_none_for_inputs_without_grad_and_skips_no_grad():
    layer = nn.Linear(3, 2, rng=0)
    seen = []
    layer.register_full_backward_hook(lambda m, gin, gout: seen.append((gin, gout[0].shape)))
    layer(gw.zeros(4, 3)).sum().backward()
    assert seen == [((None,), (4, 2))]
    with gw.no_grad():
        layer(gw.zeros(4, 3))
    assert len(seen) == 1


def test_rng_state_is_json_serialisable_and_restores_dropout_masks():
    net = Net()
    state = json.loads(json.dumps(net.rng_state()))
    assert list(state) == ["drop"]
    first = net.drop(gw.ones(100)).data
    net.set_rng_state(state)
    np.testing.assert_array_equal(net.drop(gw.ones(100)).data, first)
    with pytest.raises(KeyError, match="generators"):
        net.set_rng_state({})


def test_nested_repr_shows_structure_and_extra_repr():
    text = repr(Net())
    assert text.startswith("Net(\n  (block): Block(\n    (fc): Linear(in_features=4")
    assert "    (norm): BatchNorm1d(3, eps=1e-05, momentum=0.1" in text
    assert ("  (drop): Dropout(p=0.5, inplace=False)\n"
            "  (head): Linear(in_features=3, out_features=2") in text


def test_containers_index_iterate_and_append():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    seq.append(nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert seq(gw.zeros(4, 2)).shape == (4, 1)
    with pytest.raises(IndexError, match="index 3 is out of range for 3 modules"):
        seq[3]
    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    blocks.append(nn.Linear(2, 2))
    assert len(blocks) == 4 and len(list(blocks.parameters())) == 8
    with pytest.raises(TypeError, match="expected a Module"):
        blocks.append(lambda x: x)


def test_deepcopy_gives_an_independent_trainable_model():
    net = Net()
    twin = copy.deepcopy(net)
    assert isinstance(twin.head.weight, nn.Parameter) and twin.head.weight.requires_grad
    twin.head.weight.data[...] = 0
    assert net.head.weight.data.any()
    twin(gw.ones(4, 4)).sum().backward()
    assert twin.head.weight.grad is not None and net.head.weight.grad is None
