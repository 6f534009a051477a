"""Optimizer updates bump the parameters' version counters, as torch's in-place updates do, so a
graph that saved the old weights refuses its backward instead of silently using the new ones."""

from __future__ import annotations

import pytest

import gradwise as gw

OPTIMIZERS = {
    "SGD": lambda p: gw.optim.SGD(p, lr=0.1, momentum=0.9),
    "Adam": lambda p: gw.optim.Adam(p, lr=0.1),
    "AdamW": lambda p: gw.optim.AdamW(p, lr=0.1),
    "RMSprop": lambda p: gw.optim.RMSprop(p, lr=0.1),
    "Adagrad": lambda p: gw.optim.Adagrad(p, lr=0.1),
    "Adadelta": lambda p: gw.optim.Adadelta(p),
    "NAdam": lambda p: gw.optim.NAdam(p),
    "RAdam": lambda p: gw.optim.RAdam(p),
    "Adamax": lambda p: gw.optim.Adamax(p),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_step_between_forward_and_backward_is_refused(name) -> None:
    weight = gw.nn.Parameter(gw.ones(2, 3))
    optimizer = OPTIMIZERS[name]([weight])
    (weight * weight).sum().backward()
    saved = (weight * weight).sum()  # Mul saves the weight as it is now
    version = weight._version[0]
    optimizer.step()
    assert weight._version[0] == version + 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        saved.backward()


def test_parameters_without_gradient_keep_their_version() -> None:
    used, unused = gw.nn.Parameter(gw.ones(2)), gw.nn.Parameter(gw.ones(2))
    optimizer = gw.optim.SGD([used, unused], lr=0.1)
    used.sum().backward()
    optimizer.step()
    assert (used._version[0], unused._version[0]) == (1, 0)


def test_torch_refuses_the_same_program() -> None:
    torch = pytest.importorskip("torch")
    weight = torch.nn.Parameter(torch.ones(2, 3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    (weight * weight).sum().backward()
    saved = (weight * weight).sum()
    optimizer.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        saved.backward()
