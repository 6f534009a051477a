"""Scoring a model on a test split, in batches, with an optional progress bar: the one place the
test numbers of ``train`` and ``evaluate`` come from, so the two always agree."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import gradwise as gw
from gradwise import nn
from gradwise.runs.progress import progress_bar

__all__ = ["EVAL_BATCH", "TestScore", "batched_logits", "score"]

EVAL_BATCH = 1000
"""Samples per forward pass when scoring a test split."""


@dataclass
class TestScore:
    """Plain cross-entropy (no label smoothing) and accuracy; ``logits`` is (N, C) float64."""

    loss: float
    accuracy: float
    logits: np.ndarray


def batched_logits(model: nn.Module, x: np.ndarray, progress: bool = False,
                   desc: str = "test") -> np.ndarray:
    """Float64 logits of ``model`` in eval mode, ``EVAL_BATCH`` samples at a time.

    Shape:
        x: (N, ...) as the model takes it -> (N, C).
    """
    model.eval()
    outputs = []
    batches = range(0, len(x), EVAL_BATCH)
    with progress_bar(len(batches), desc, disable=not progress) as bar, gw.no_grad():
        for start in batches:
            outputs.append(model(gw.tensor(x[start : start + EVAL_BATCH]))._data)
            bar.update(1)
    return np.concatenate(outputs).astype(np.float64)


def score(model: nn.Module, x: np.ndarray, y: np.ndarray, progress: bool = False) -> TestScore:
    """Loss and accuracy of ``model`` on ``(x, y)``, with a bar on stderr when ``progress``.

    Shape:
        x: (N, ...); y: (N,) integer labels.
    """
    logits = batched_logits(model, x, progress)
    with gw.no_grad():
        loss = nn.functional.cross_entropy(gw.tensor(logits), gw.tensor(y)).item()
    accuracy = float(np.mean(logits.argmax(axis=1) == y))
    return TestScore(float(loss), accuracy, logits)
