"""lr_find: the range test sweeps geometrically, suggests a sensible lr and restores the model."""

from __future__ import annotations

import numpy as np
import pytest

from doctor import planted
from gradwise import nn
from gradwise.data import DataLoader
from gradwise.doctor import lr_find
from gradwise.optim import SGD, Adam


def _setup():
    (x, y), _ = planted.digits(small=True)
    return planted.mlp([64, 64, 10]), nn.CrossEntropyLoss(), (x, y)


def test_sweep_suggestion_and_restored_weights(tmp_path):
    model, loss_fn, data = _setup()
    before = model.state_dict()
    result = lr_find(model, loss_fn, data, num_steps=100, start_lr=1e-5, end_lr=10.0)
    lrs = np.array(result.lrs)
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], (10.0 / 1e-5) ** (1 / 99), rtol=1e-6)
    assert result.stopped_early, "SGD with momentum diverges well before lr 10"
    # a good SGD lr for this MLP is around 0.01-0.5
    assert 1e-3 < result.suggested_lr < 1.0
    assert len(result.losses) == len(result.lrs) == len(result.raw_losses)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name], err_msg=name)
    assert all(p.grad is None for p in model.parameters())
    path = result.plot(tmp_path / "lr.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_suggested_lr_trains_well():
    model, loss_fn, data = _setup()
    result = lr_find(model, loss_fn, data, optimizer_cls=Adam, num_steps=100, end_lr=1.0)
    assert 1e-4 < result.suggested_lr < 0.1


def test_accepts_a_data_loader_and_optimizer_kwargs():
    model, loss_fn, (x, y) = _setup()
    loader = DataLoader((x.astype(np.float32), y), batch_size=32, shuffle=True, seed=0)
    result = lr_find(model, loss_fn, loader, optimizer_cls=SGD, num_steps=30, momentum=0.5)
    assert len(result.lrs) >= 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_lr": 1.0, "end_lr": 0.1}, "start_lr < end_lr"),
        ({"num_steps": 1}, "num_steps must be an int >= 2"),
        ({"batch_size": 0}, "batch_size must be a positive int"),
        ({"smooth": 1.0}, r"smooth must be in \[0, 1\)"),
    ],
)
def test_bad_arguments(kwargs, message):
    model, loss_fn, data = _setup()
    with pytest.raises(ValueError, match=message):
        lr_find(model, loss_fn, data, **kwargs)


def test_bad_data():
    model, loss_fn, (x, y) = _setup()
    with pytest.raises(ValueError, match="x has 1438 samples but y has 10"):
        lr_find(model, loss_fn, (x, y[:10]))
    with pytest.raises(TypeError, match="data must be"):
        lr_find(model, loss_fn, 42)
