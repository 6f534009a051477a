"""Builders shared by the gw.train tests: small models, trainers and recording callbacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import gradwise as gw
from gradwise.train import Callback, Trainer


def mlp(
    sizes: Sequence[int],
    activation: type = gw.nn.ReLU,
    init: str = "default",
    seed: int = 0,
    dropout: float = 0.0,
) -> gw.nn.Sequential:
    """Linear layers of the given widths with ``activation`` (and Dropout) between them."""
    layers: list[Any] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(gw.nn.Linear(fan_in, fan_out, init=init, rng=seed * 100 + index))
        if index < len(sizes) - 2:
            layers.append(activation())
            if dropout:
                layers.append(gw.nn.Dropout(dropout, rng=seed * 100 + 50 + index))
    return gw.nn.Sequential(*layers)


def classifier_trainer(
    model: gw.nn.Module | None = None,
    lr: float = 0.01,
    optimizer: str = "adam",
    scheduler: str | None = None,
    **kwargs: Any,
) -> Trainer:
    """A quiet Trainer with cross-entropy, an optimizer and an optional schedule."""
    model = model if model is not None else mlp([2, 16, 2])
    if optimizer == "adam":
        opt = gw.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = gw.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    sched = None
    if scheduler == "step":
        sched = gw.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    elif scheduler == "onecycle":
        sched = gw.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=kwargs.pop("steps"))
    elif scheduler == "plateau":
        sched = gw.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    kwargs.setdefault("progress", False)
    return Trainer(model, gw.nn.CrossEntropyLoss(), opt, scheduler=sched, **kwargs)


def weights(model: gw.nn.Module) -> dict[str, np.ndarray]:
    return {name: np.array(value) for name, value in model.state_dict().items()}


def assert_same_weights(a: gw.nn.Module, b: gw.nn.Module) -> None:
    """Bitwise equality of every parameter and buffer."""
    left, right = weights(a), weights(b)
    assert left.keys() == right.keys()
    for name in left:
        assert left[name].tobytes() == right[name].tobytes(), f"{name} differs"


class Recorder(Callback):
    """Records every event with its argument, for checking order and counts."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_train_begin(self) -> None:
        self.events.append(("train_begin", None))

    def on_train_end(self) -> None:
        self.events.append(("train_end", None))

    def on_epoch_begin(self, epoch: int) -> None:
        self.events.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.events.append(("epoch_end", epoch))

    def on_batch_begin(self, step: int, logs: dict[str, Any]) -> None:
        self.events.append(("batch_begin", step))

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        self.events.append(("batch_end", step))

    def on_after_backward(self, step: int) -> None:
        self.events.append(("after_backward", step))

    def on_after_step(self, step: int) -> None:
        self.events.append(("after_step", step))

    def on_validation_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.events.append(("validation_end", epoch))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


class StopAtStep(Callback):
    """Requests a stop after the given global step, as the CLI's SIGINT handler does."""

    def __init__(self, step: int) -> None:
        self.stop_step = step

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if step == self.stop_step:
            self.trainer.request_stop("interrupted", resumable=True)
