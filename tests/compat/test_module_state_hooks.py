"""Module and data pieces a second newcomer review found missing (issue 11), each run beside
torch: the state-dict hooks (save and load, pre and post), extra state, ``set_submodule``,
``to_empty``, the legacy ``register_backward_hook``, ``nn.init._calculate_fan_in_and_fan_out``,
and ``utils.data.ChainDataset`` / ``StackDataset``."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")


def _state_hook_story(m):
    """What the hooks see, in order, through a save, a load, a load whose post-hook clears an
    unexpected key, and the errors torch raises."""
    log = []

    class Counter(m.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = m.nn.Linear(2, 2)
            self.count = 3

        def get_extra_state(self):
            return {"count": self.count}

        def set_extra_state(self, state):
            self.count = state["count"]

    net = m.nn.Sequential(Counter(), m.nn.ReLU())
    handle = net.register_state_dict_pre_hook(
        lambda mod, prefix, keep: log.append(("pre", type(mod).__name__, prefix, keep)))
    net[0].register_state_dict_pre_hook(
        lambda mod, prefix, keep: log.append(("pre", type(mod).__name__, prefix, keep)))

    def post(mod, state, prefix, metadata):
        log.append(("post", type(mod).__name__, prefix, list(state)))
        state[prefix + "note"] = m.tensor(1.0)
    net[0].register_state_dict_post_hook(post)
    state = net.state_dict(keep_vars=True)
    log.append(("keys", list(state), state["0._extra_state"]))
    del state["0.note"]
    state["0._extra_state"] = {"count": 7}

    def load_pre(mod, state_dict, prefix, metadata, strict, missing, unexpected, errors):
        log.append(("load pre", type(mod).__name__, prefix, strict, sorted(state_dict)))
    net[0].register_load_state_dict_pre_hook(load_pre)
    net.register_load_state_dict_post_hook(lambda mod, keys: log.append(
        ("load post", type(mod).__name__, list(keys.missing_keys), list(keys.unexpected_keys))))
    log.append(("loaded", repr(net.load_state_dict(state)), net[0].count))
    net.register_load_state_dict_post_hook(lambda mod, keys: keys.unexpected_keys.clear())
    log.append(("cleared", repr(net.load_state_dict({**state, "bogus": m.tensor(1.0)}))))
    handle.remove()
    net.state_dict()
    for call in (lambda: m.nn.Linear(2, 2).get_extra_state(),
                 lambda: m.nn.Linear(2, 2).set_extra_state({}),
                 lambda: Counter().load_state_dict({"fc.weight": m.ones(2, 2),
                                                    "fc.bias": m.ones(2)})):
        try:
            call()
        except RuntimeError as error:
            log.append(("error", "_extra_state" in str(error) or "never be called" in str(error)))
    return log


def test_state_dict_hooks_and_extra_state_as_torch():
    assert _state_hook_story(gw) == _state_hook_story(torch)


def test_a_state_dict_post_hook_must_return_none():
    for module in (torch, gw):
        layer = module.nn.Linear(2, 2)
        layer.register_state_dict_post_hook(lambda *args: {})
        with pytest.raises(RuntimeError):
            layer.state_dict()


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("target", ["", "0", "1", "x.y", "0.weight", "0.z"])
def test_set_submodule_as_torch(target, strict):
    outcomes = []
    for module in (torch, gw):
        net = module.nn.Sequential(module.nn.Linear(2, 2))
        try:
            net.set_submodule(target, module.nn.ReLU(), strict=strict)
            outcomes.append(repr(net))
        except (ValueError, AttributeError) as error:
            outcomes.append((type(error).__name__, str(error)))
    assert outcomes[1] == outcomes[0]


def test_to_empty_gives_new_memory_of_the_same_layout():
    net = gw.nn.Sequential(gw.nn.Linear(3, 2), gw.nn.BatchNorm1d(2))
    before = [(t, t._data) for t in [*net.parameters(), *net.buffers()]]
    assert net.to_empty(device="cpu") is net
    for tensor, old in before:
        assert tensor._data is not old
        assert tensor.shape == old.shape and tensor.dtype == old.dtype
    with pytest.raises(RuntimeError, match="to_empty"):
        net.to_empty(device="cuda")


def test_legacy_backward_hook_fires_with_the_output_gradient():
    seen = {}
    for module in (torch, gw):
        layer = module.nn.Linear(3, 2)

        def hook(mod, grad_in, grad_out, name=module.__name__):
            seen[name] = np.asarray(grad_out[0]).copy()
        layer.register_backward_hook(hook)
        x = module.ones(4, 3, requires_grad=True)
        (layer(x) * module.tensor([1.0, 2.0])).sum().backward()
    np.testing.assert_array_equal(seen["gradwise"], seen["torch"])


@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 5), (8, 2, 3, 3), (2, 2, 2, 2, 2), (3,)])
def test_calculate_fan_in_and_fan_out_as_torch(shape):
    outcomes = []
    for module in (torch, gw):
        try:
            outcomes.append(module.nn.init._calculate_fan_in_and_fan_out(module.ones(*shape)))
        except ValueError as error:
            outcomes.append(str(error))
    assert outcomes[1] == outcomes[0]


def _data_story(m):
    data = m.utils.data

    class Count(data.IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n))

        def __len__(self):
            return self.n

    chain = data.ChainDataset([Count(2), Count(3)])
    story = [list(chain), len(chain)]
    try:
        list(data.ChainDataset([Count(1), [1, 2]]))
    except AssertionError as error:
        story.append(str(error))
    stacked = data.StackDataset(data.TensorDataset(m.arange(3)), [10, 11, 12])
    story += [len(stacked), repr(stacked[1]),
              data.StackDataset(a=[1, 2], b=[3, 4])[1]]
    for bad in (lambda: data.StackDataset(), lambda: data.StackDataset([1], [1, 2]),
                lambda: data.StackDataset([1], b=[1])):
        try:
            bad()
        except ValueError as error:
            story.append(str(error))
    loader = data.DataLoader(data.StackDataset(a=m.arange(4.0), b=m.arange(4)), batch_size=2)
    story.append([{key: value.tolist() for key, value in batch.items()} for batch in loader])
    return story


def test_chain_and_stack_datasets_as_torch():
    assert _data_story(gw) == _data_story(torch)
