"""Reprs a notebook shows, as torch prints them (issue 11, second newcomer review): the
parameter containers, Upsample's float scale factor, and every optimizer's repr and
param_groups with the types torch holds (an int default such as ``momentum: 0`` stays an int).
gradwise prints its own package name where torch prints ``torch.``."""

from __future__ import annotations

import inspect

import pytest

import gradwise as gw

torch = pytest.importorskip("torch")


def _same_repr(build):
    assert repr(build(gw)).replace("gradwise.", "torch.") == repr(build(torch))


CONTAINERS = {
    "dict": lambda m: m.nn.ParameterDict({"a": m.nn.Parameter(m.ones(2, 3)),
                                          "b": m.nn.Parameter(m.zeros(4, dtype=m.float64))}),
    "dict-one": lambda m: m.nn.ParameterDict({"x": m.nn.Parameter(m.tensor(1.0))}),
    "dict-empty": lambda m: m.nn.ParameterDict(),
    "list": lambda m: m.nn.ParameterList([m.nn.Parameter(m.ones(2, 3)),
                                          m.nn.Parameter(m.zeros(4, dtype=m.float64))]),
    "list-scalar": lambda m: m.nn.ParameterList([m.nn.Parameter(m.tensor(1.0))]),
    "list-empty": lambda m: m.nn.ParameterList(),
    "nested": lambda m: m.nn.Sequential(m.nn.Linear(2, 3), m.nn.ParameterList(
        [m.nn.Parameter(m.ones(2))])),
}


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_parameter_containers_print_as_torch(name):
    _same_repr(CONTAINERS[name])


UPSAMPLES = [
    lambda m: m.nn.Upsample(scale_factor=2),
    lambda m: m.nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=True),
    lambda m: m.nn.Upsample(scale_factor=(2, 3)),
    lambda m: m.nn.Upsample(size=4),
    lambda m: m.nn.Upsample(size=(3, 4), scale_factor=None),
    lambda m: m.nn.UpsamplingNearest2d(scale_factor=2),
    lambda m: m.nn.UpsamplingBilinear2d(scale_factor=3),
    lambda m: m.nn.UpsamplingNearest2d(size=(3, 4)),
]


@pytest.mark.parametrize("number", range(len(UPSAMPLES)))
def test_upsample_stores_float_factors_as_torch(number):
    _same_repr(UPSAMPLES[number])
    ours = UPSAMPLES[number](gw)(gw.ones(1, 1, 2, 2))
    assert tuple(ours.shape) == tuple(UPSAMPLES[number](torch)(torch.ones(1, 1, 2, 2)).shape)


def _optimizers() -> list[str]:
    return sorted(name for name, value in vars(gw.optim).items()
                  if inspect.isclass(value) and issubclass(value, gw.optim.Optimizer)
                  and value is not gw.optim.Optimizer and hasattr(torch.optim, name))


def test_the_optimizer_walk_reaches_the_common_ones():
    assert {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"} <= set(_optimizers())


@pytest.mark.parametrize("settings", [{}, {"lr": 1}])
@pytest.mark.parametrize("name", _optimizers())
def test_optimizer_repr_and_groups_as_torch(name, settings):
    def build(m):
        return getattr(m.optim, name)([m.nn.Parameter(m.ones(2))], **settings)
    _same_repr(build)
    ours, theirs = build(gw).param_groups[0], build(torch).param_groups[0]
    kinds = {key: type(value).__name__ for key, value in theirs.items() if key != "params"}
    assert {key: type(ours[key]).__name__ for key in kinds} == kinds
