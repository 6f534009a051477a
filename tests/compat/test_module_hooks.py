"""Module hooks and state_dict options side by side with torch (issue 11, review 3): a full
backward hook's returned tuple replaces grad_input, full backward pre-hooks see and replace
grad_output, forward (pre-)hooks with ``with_kwargs=True`` and ``prepend``, and
``state_dict(prefix=, keep_vars=, destination=)``."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

W = [[0.5, -1.0], [2.0, 0.25]]


def _linear(m):
    layer = m.nn.Linear(2, 2)
    with m.no_grad():
        layer.weight.copy_(m.tensor(W))
        layer.bias.copy_(m.tensor([0.1, -0.2]))
    return layer


def _run(m, register, x=(1.0, 2.0)):
    layer = _linear(m)
    seen = []
    register(layer, seen)
    inp = m.tensor([list(x)], requires_grad=True)
    (layer(inp) * m.tensor([[1.0, 3.0]])).sum().backward()
    grads = (np.asarray(inp.grad), np.asarray(layer.weight.grad), np.asarray(layer.bias.grad))
    return grads, [np.asarray(s) if hasattr(s, "shape") else s for s in seen]


HOOKS = {
    "backward-zero-grad-input": lambda layer, seen: layer.register_full_backward_hook(
        lambda mod, gi, go: (gi[0] * 0,)),
    "backward-scale-grad-input": lambda layer, seen: layer.register_full_backward_hook(
        lambda mod, gi, go: (gi[0] * 3 + 1,)),
    "backward-observe": lambda layer, seen: layer.register_full_backward_hook(
        lambda mod, gi, go: seen.extend([gi[0].detach(), go[0].detach()])),
    "backward-none-kept": lambda layer, seen: layer.register_full_backward_hook(
        lambda mod, gi, go: None),
    "pre-observe": lambda layer, seen: layer.register_full_backward_pre_hook(
        lambda mod, go: seen.append(go[0].detach())),
    "pre-replace": lambda layer, seen: layer.register_full_backward_pre_hook(
        lambda mod, go: (go[0] * 2,)),
    "pre-then-full": lambda layer, seen: (
        layer.register_full_backward_pre_hook(lambda mod, go: (go[0] - 1,)),
        layer.register_full_backward_hook(
            lambda mod, gi, go: seen.extend([go[0].detach(), gi[0].detach()]))),
    "two-full-hooks": lambda layer, seen: (
        layer.register_full_backward_hook(lambda mod, gi, go: (gi[0] * 2,)),
        layer.register_full_backward_hook(lambda mod, gi, go: seen.append(gi[0].detach()))),
    "forward-with-kwargs": lambda layer, seen: layer.register_forward_hook(
        lambda mod, args, kwargs, out: seen.append(len(kwargs)) or out * 2, with_kwargs=True),
    "forward-pre-with-kwargs": lambda layer, seen: layer.register_forward_pre_hook(
        lambda mod, args, kwargs: ((args[0] * 2,), kwargs), with_kwargs=True),
    "forward-prepend": lambda layer, seen: (
        layer.register_forward_hook(lambda mod, args, out: seen.append("a")),
        layer.register_forward_hook(lambda mod, args, out: seen.append("b"), prepend=True)),
    "forward-pre-prepend": lambda layer, seen: (
        layer.register_forward_pre_hook(lambda mod, args: (args[0] + 1,)),
        layer.register_forward_pre_hook(lambda mod, args: (args[0] * 3,), prepend=True)),
}


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_module_hooks_match_torch(name):
    expected_grads, expected_seen = _run(torch, HOOKS[name])
    grads, seen = _run(gw, HOOKS[name])
    for got, want in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert len(seen) == len(expected_seen)
    for got, want in zip(seen, expected_seen, strict=True):
        if isinstance(want, np.ndarray):
            np.testing.assert_allclose(got, want, rtol=1e-6)
        else:
            assert got == want


def test_full_backward_hook_with_a_wrong_count_is_refused():
    layer = _linear(gw)
    layer.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
    x = gw.ones(1, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match="returned 2 gradients for 1 inputs"):
        layer(x).sum().backward()


@pytest.mark.parametrize("kwargs", [{}, {"prefix": "p."}, {"prefix": "model.", "keep_vars": True},
                                    {"keep_vars": True}])
def test_state_dict_options_match_torch(kwargs):
    def build(m):
        return m.nn.Sequential(m.nn.Linear(2, 3), m.nn.BatchNorm1d(3))

    theirs, ours = build(torch).state_dict(**kwargs), build(gw).state_dict(**kwargs)
    assert list(ours) == list(theirs)
    for key in theirs:
        assert ours[key].requires_grad == theirs[key].requires_grad, key
        assert isinstance(ours[key], gw.nn.Parameter) == isinstance(
            theirs[key], torch.nn.Parameter), key


def test_state_dict_fills_a_given_destination():
    net = gw.nn.Linear(2, 2)
    target = {"other": 1}
    out = net.state_dict(destination=target, prefix="fc.")
    assert out is target and sorted(out) == ["fc.bias", "fc.weight", "other"]
    assert net.state_dict(keep_vars=True)["weight"] is net.weight
