"""Training runs that fail on purpose (and healthy ones), each watched by a Doctor.

Each builder returns ``(model, optimizer, train_data, val_data, epochs)``; :func:`run` trains it
with the real Trainer and returns the Doctor. The runs are small so the whole catalogue trains in
a few seconds, yet each failure is the textbook one.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import numpy as np

from gradwise import nn
from gradwise.data import load_dataset, make_spirals
from gradwise.doctor import Doctor, DoctorConfig
from gradwise.optim import SGD, Adam
from gradwise.train import Trainer


@cache
def digits(small: bool = False) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]:
    """The real digits (scikit-learn's, MNIST-shaped), scaled to [0, 1] and flattened.

    ``small`` undoes the fallback's 3x upsampling: 8x8 = 64 features, for the slow scenarios.
    """
    data = load_dataset("digits", fallback=True, progress=False)
    x_train, x_test = data.x_train, data.x_test
    if small:
        x_train, x_test = x_train[:, 2:26:3, 2:26:3], x_test[:, 2:26:3, 2:26:3]
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / 255.0
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / 255.0
    return (x_train, data.y_train), (x_test, data.y_test)


def mlp(sizes: list[int], activation: type = nn.ReLU, seed: int = 0) -> nn.Sequential:
    layers: list[Any] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], rng=seed + i))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def _set_weights(model: nn.Module, std: float, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for param in model.parameters():
        if param.ndim == 2:
            param.data[...] = rng.normal(0.0, std, param.shape)


def healthy_adam():
    model = mlp([784, 128, 64, 10])
    train, test = digits()
    return model, Adam(model.parameters(), lr=1e-3), train, test, 4


def healthy_sgd():
    model = mlp([784, 128, 64, 10], seed=3)
    train, test = digits()
    return model, SGD(model.parameters(), lr=0.1, momentum=0.9), train, test, 4


def healthy_spirals():
    x, y = make_spirals(1000, noise=0.05, seed=0)
    model = mlp([2, 64, 64, 2])
    return model, Adam(model.parameters(), lr=3e-3), (x[:800], y[:800]), (x[800:], y[800:]), 25


def vanishing():
    """10 sigmoid layers with small weights: each sigmoid passes back at most 1/4."""
    model = mlp([784] + [32] * 9 + [10], activation=nn.Sigmoid)
    _set_weights(model, 0.01)
    return model, SGD(model.parameters(), lr=0.1), digits()[0], None, 2


def exploding():
    """A deep ReLU net with N(0, 1) weights (40x too large), lr 10 and no clipping."""
    model = mlp([784] + [64] * 6 + [10])
    _set_weights(model, 1.0)
    return model, SGD(model.parameters(), lr=10.0), digits()[0], None, 1


def dead_relus():
    """Hidden biases at -5: no pixel sum in [0, 1]-scaled digits gets a unit above zero."""
    model = mlp([784, 128, 64, 10])
    for name, param in model.named_parameters():
        if name in ("0.bias", "2.bias"):
            param.data[...] = -5.0
    return model, Adam(model.parameters(), lr=1e-3), digits()[0], None, 2


def lr_too_low():
    model = mlp([784, 128, 64, 10])
    return model, SGD(model.parameters(), lr=1e-6), digits()[0], None, 2


def lr_too_high():
    """Adam at lr 0.1: 100x its usual rate."""
    model = mlp([784, 128, 64, 10])
    return model, Adam(model.parameters(), lr=0.1), digits()[0], None, 2


def overfitting():
    """A 64-512-512-10 MLP (300k weights) on 500 training digits for 30 epochs at lr 1e-2."""
    (x, y), test = digits(small=True)
    model = mlp([64, 512, 512, 10])
    optimizer = Adam(model.parameters(), lr=1e-2)
    return model, optimizer, (x[:500], y[:500]), test, 30


def plateau():
    """Labels that are pure noise: nothing to learn, the loss stays at log(2)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 20)).astype(np.float32)
    y = rng.integers(0, 2, 1000)
    model = mlp([20, 16, 2])
    return model, SGD(model.parameters(), lr=0.05), (x, y), None, 5


def saturated():
    """A sigmoid MLP fed pixels 50x too large: pre-activations in the hundreds."""
    (x, y), _ = digits()
    model = mlp([784, 128, 10], activation=nn.Sigmoid)
    return model, SGD(model.parameters(), lr=0.1), (x * 50.0, y), None, 2


def run(builder, config: DoctorConfig | None = None, batch_size: int = 64) -> Doctor:
    """Train the scenario with the real Trainer and a Doctor; return the Doctor."""
    model, optimizer, train, val, epochs = builder()
    doctor = Doctor(config)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, progress=False, doctor=doctor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exploding run stops on a NaN loss, with a warning
        trainer.fit(train, val, epochs=epochs, batch_size=batch_size)
    return doctor
