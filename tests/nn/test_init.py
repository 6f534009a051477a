"""Initialisers: PyTorch's gains and formulas, statistics of the samples, reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradwise as gw
from gradwise.nn import init
from helpers import torch

SHAPE = (256, 128, 3, 3)  # fan_in = 1152, fan_out = 2304


def fresh():
    return gw.nn.Parameter(np.empty(SHAPE, dtype=np.float32))


@pytest.mark.parametrize(
    ("nonlinearity", "param"),
    [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
     ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)],
)
def test_calculate_gain_matches_torch(nonlinearity, param):
    expected = {
        "linear": 1.0, "conv2d": 1.0, "sigmoid": 1.0, "tanh": 5 / 3, "relu": math.sqrt(2),
        "leaky_relu": math.sqrt(2 / (1 + (0.01 if param is None else param) ** 2)), "selu": 0.75,
    }[nonlinearity]
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(expected)
    if torch is not None:
        assert init.calculate_gain(nonlinearity, param) == pytest.approx(
            torch.nn.init.calculate_gain(nonlinearity, param))


# (initialiser, expected (kind, scale)): uniform bound or normal std, from PyTorch's formulas
CASES = [
    (lambda t: init.xavier_uniform_(t, rng=0), "uniform", math.sqrt(6 / (1152 + 2304))),
    (lambda t: init.xavier_normal_(t, gain=2.0, rng=0), "normal", 2 * math.sqrt(2 / 3456)),
    (lambda t: init.kaiming_uniform_(t, nonlinearity="relu", rng=0), "uniform",
     math.sqrt(2) * math.sqrt(3 / 1152)),
    (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5), rng=0), "uniform", 1 / math.sqrt(1152)),
    (lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", rng=0), "normal",
     math.sqrt(2 / 2304)),
    (lambda t: init.normal_(t, 0.0, 0.02, rng=0), "normal", 0.02),
    (lambda t: init.uniform_(t, -0.3, 0.3, rng=0), "uniform", 0.3),
]


@pytest.mark.parametrize(("fill", "kind", "scale"), CASES)
def test_samples_have_the_documented_distribution(fill, kind, scale):
    values = fill(fresh()).data
    assert values.dtype == np.float32
    assert abs(values.mean()) < 0.02 * scale
    if kind == "uniform":
        assert values.min() >= -scale and values.max() <= scale
        assert values.max() > 0.99 * scale
        assert values.std() == pytest.approx(scale / math.sqrt(3), rel=0.01)
    else:
        assert values.std() == pytest.approx(scale, rel=0.01)


def test_same_seed_same_weights_and_generators_advance():
    a, b = init.xavier_uniform_(fresh(), rng=7), init.xavier_uniform_(fresh(), rng=7)
    np.testing.assert_array_equal(a.data, b.data)
    rng = np.random.default_rng(7)
    c, d = init.normal_(fresh(), rng=rng), init.normal_(fresh(), rng=rng)
    assert not np.array_equal(c.data, d.data)
    np.testing.assert_array_equal(
        gw.nn.Linear(8, 4, rng=3).weight.data, gw.nn.Linear(8, 4, rng=3).weight.data)


def test_constant_fills():
    t = fresh()
    assert not init.zeros_(t).data.any()
    assert (init.ones_(t).data == 1).all()
    assert (init.constant_(t, 0.5).data == 0.5).all()


def test_layer_default_init_is_pytorchs():
    layer = gw.nn.Linear(400, 300, rng=0)
    bound = 1 / math.sqrt(400)
    for values in (layer.weight.data, layer.bias.data):
        assert values.min() >= -bound and values.max() <= bound and values.max() > 0.95 * bound
    conv = gw.nn.Conv2d(16, 32, 3, rng=0)
    assert abs(conv.bias.data).max() <= 1 / math.sqrt(16 * 9)
    assert gw.nn.Embedding(1000, 64, rng=0).weight.data.std() == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("name", ["xavier_uniform", "xavier_normal", "kaiming_uniform",
                                  "kaiming_normal", "normal", "zeros"])
def test_named_layer_inits_fill_weight_and_zero_bias(name):
    layer = gw.nn.Linear(64, 32, init=name, rng=0)
    assert not layer.bias.data.any()
    assert layer.weight.data.any() == (name != "zeros")


def test_callable_layer_init_gets_weight_and_generator():
    seen = []
    gw.nn.Conv2d(2, 3, 3, init=lambda w, rng: seen.append((w.shape, type(rng))), rng=0)
    assert seen == [((3, 2, 3, 3), np.random.Generator)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: init.xavier_uniform_(gw.nn.Parameter(np.zeros(5, np.float32))),
         r"xavier_uniform_: .*at least 2 dimensions, got shape \(5,\)"),
        (lambda: init.kaiming_normal_(fresh(), mode="fan_avg"), "mode must be"),
        (lambda: init.calculate_gain("swish"), "unsupported nonlinearity 'swish'"),
        (lambda: init.normal_(fresh(), rng="seed"), "rng must be"),
        (lambda: init.get_initializer("he", "Conv2d"), "Conv2d: unknown init 'he'"),
    ],
)
def test_bad_arguments_raise(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
