"""Optimizer state in a checkpoint is validated at load (h5fix item 5): non-finite values and
negative second moments are refused, naming the tensor."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn
from gradwise.train.checkpoint import (
    CheckpointData,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)


def _adam_state():
    gw.manual_seed(0)
    model = nn.Linear(2, 2)
    optimizer = gw.optim.Adam(model.parameters())
    model(gw.randn(3, 2)).sum().backward()
    optimizer.step()
    return model, optimizer.state_dict()


@pytest.mark.parametrize("entry, value, fragment", [
    ("exp_avg_sq", np.nan, "non-finite"),
    ("exp_avg", np.inf, "non-finite"),
    ("exp_avg_sq", -1.0, "negative"),
])
def test_bad_optimizer_state_is_refused_naming_the_tensor(tmp_path, entry, value, fragment):
    model, state = _adam_state()
    array = np.array(state["state"][0][entry], copy=True)
    array.flat[0] = value
    state["state"][0][entry] = array
    save_checkpoint(tmp_path / "ck", CheckpointData(model_state=model.state_dict(),
                                                    optimizer_state=state))
    with pytest.raises(CheckpointError, match=fragment) as info:
        load_checkpoint(tmp_path / "ck", model)
    assert entry in str(info.value)
    # the inspection flag still lets a diverged run be read
    load_checkpoint(tmp_path / "ck", model, allow_non_finite=True)


def test_good_optimizer_state_loads(tmp_path):
    model, state = _adam_state()
    save_checkpoint(tmp_path / "ck", CheckpointData(model_state=model.state_dict(),
                                                    optimizer_state=state))
    assert load_checkpoint(tmp_path / "ck", model).optimizer_state is not None
