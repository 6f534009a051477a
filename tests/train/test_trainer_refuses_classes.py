"""Trainer refuses classes and foreign optimizer parameters (h5fix item 9)."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn
from gradwise.train import Trainer


def _parts():
    model = nn.Linear(2, 2)
    return model, nn.CrossEntropyLoss(), gw.optim.SGD(model.parameters(), lr=0.1)


def test_model_class_is_refused():
    _, loss, optimizer = _parts()
    with pytest.raises(TypeError, match="model is the class Linear"):
        Trainer(nn.Linear, loss, optimizer, progress=False)


def test_optimizer_and_scheduler_classes_are_refused():
    model, loss, optimizer = _parts()
    with pytest.raises(TypeError, match="optimizer is the class SGD"):
        Trainer(model, loss, gw.optim.SGD, progress=False)
    with pytest.raises(TypeError, match="scheduler is the class StepLR"):
        Trainer(model, loss, optimizer, scheduler=gw.optim.lr_scheduler.StepLR,
                progress=False)


def test_optimizer_over_other_parameters_is_refused_at_fit():
    model, loss, _ = _parts()
    other = nn.Linear(2, 2)
    trainer = Trainer(model, loss, gw.optim.SGD(other.parameters(), lr=0.1), progress=False)
    x = np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32)
    y = np.arange(8) % 2
    with pytest.raises(ValueError, match="not a parameter of the model"):
        trainer.fit((x, y), epochs=1, batch_size=4)
