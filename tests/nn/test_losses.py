"""Loss modules: same values and gradients as PyTorch's, for every reduction."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from helpers import torch

pytestmark = pytest.mark.skipif(torch is None, reason="PyTorch oracle not installed")

rng = np.random.default_rng(0)
LOGITS = rng.standard_normal((6, 4)).astype(np.float32)
LABELS = np.array([0, 3, 1, 1, 2, 0])
PROBS = rng.uniform(0.05, 0.95, (6, 4)).astype(np.float32)
BINARY = rng.integers(0, 2, (6, 4)).astype(np.float32)
VALUES = rng.standard_normal((6, 4)).astype(np.float32)

# (class name in gw.nn and torch.nn, input, target, extra constructor kwargs)
CASES = [
    ("MSELoss", LOGITS, VALUES, {}),
    ("L1Loss", LOGITS, VALUES, {}),
    ("BCELoss", PROBS, BINARY, {}),
    ("BCEWithLogitsLoss", LOGITS, BINARY, {}),
    ("CrossEntropyLoss", LOGITS, LABELS, {}),
    ("CrossEntropyLoss", LOGITS, LABELS, {"label_smoothing": 0.1}),
    ("NLLLoss", np.log(PROBS / PROBS.sum(1, keepdims=True)), LABELS, {}),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("name", "input", "target", "kwargs"), CASES,
                         ids=[f"{c[0]}{'_smooth' if c[3] else ''}" for c in CASES])
def test_loss_module_matches_torch(name, input, target, kwargs, reduction):
    ours = getattr(gw.nn, name)(reduction=reduction, **kwargs)
    theirs = getattr(torch.nn, name)(reduction=reduction, **kwargs)
    x = gw.tensor(input.copy(), requires_grad=True)
    tx = torch.from_numpy(input.copy()).requires_grad_(True)
    out, tout = ours(x, target), theirs(tx, torch.from_numpy(target))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    upstream = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    out.backward(upstream)
    tout.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_loss_arguments_are_checked_up_front():
    with pytest.raises(ValueError, match="reduction"):
        gw.nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        gw.nn.CrossEntropyLoss(label_smoothing=1.5)
    loss = gw.nn.CrossEntropyLoss(label_smoothing=0.1)
    assert loss.label_smoothing == 0.1
    assert repr(loss) == "CrossEntropyLoss()"  # torch prints no loss settings
