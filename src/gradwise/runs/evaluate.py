"""Using a finished run: rebuild its model, score it on its test split, classify pictures."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import gradwise as gw
from gradwise import data as gw_data
from gradwise import nn
from gradwise.imageprep import load_digit_image
from gradwise.recipes import IMAGE_DATASETS, TrainConfig, build_model, load_data
from gradwise.runinfo import check_run_info
from gradwise.runs.layout import (
    LAST_CHECKPOINT,
    RUN_INFO_NAME,
    WEIGHTS_NAME,
    Notify,
    RunError,
    load_weights,
    quiet,
    read_config,
    read_json,
)
from gradwise.runs.training import EVAL_BATCH
from gradwise.train.checkpoint import (
    CheckpointError,
    check_finite_weights,
    check_state_matches,
    load_checkpoint,
)
from gradwise.train.metrics import confusion_matrix

__all__ = [
    "Evaluation",
    "LoadedRun",
    "Prediction",
    "evaluate_run",
    "load_run",
    "predict_images",
]


@dataclass
class LoadedRun:
    """A trained model rebuilt from its run directory, with what it was trained on."""

    run_dir: Path
    config: TrainConfig
    info: dict[str, Any]
    model: nn.Module
    weights: Path


def load_run(run_dir: str | os.PathLike[str], allow_non_finite: bool = False) -> LoadedRun:
    """Rebuild the model from ``config.json`` and load the final weights (or the last
    checkpoint of an unfinished run).

    Args:
        allow_non_finite: load NaN/inf weights (to inspect a diverged run); refused otherwise.

    Raises:
        RunError: the folder, its config, run.json (see :mod:`gradwise.runinfo`) or usable
            weights are missing, invalid, non-finite, of other dtypes, or do not fit.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    info = read_json(run_dir / RUN_INFO_NAME)
    check_run_info(info, str(run_dir / RUN_INFO_NAME), RunError, trained=True)
    try:
        input_shape = tuple(int(n) for n in info["input_shape"])
        n_classes = len(info["classes"])
    except (KeyError, TypeError, ValueError):
        raise RunError(
            f"{run_dir / RUN_INFO_NAME}: lacks the input shape or classes (did training start?)"
        ) from None
    model = build_model(config, input_shape, n_classes)
    weights = run_dir / WEIGHTS_NAME
    if os.path.lexists(weights):  # a FIFO or an outside link is refused when read
        state = load_weights(weights)
        try:
            check_state_matches(model.state_dict(), state, source=weights)
            if not allow_non_finite:
                check_finite_weights(state, weights)
        except CheckpointError as error:
            raise RunError(str(error).splitlines()[0]) from error
        model.load_state_dict(state)
    elif os.path.lexists(run_dir / LAST_CHECKPOINT / "checkpoint.json"):
        weights = run_dir / LAST_CHECKPOINT
        try:
            model.load_state_dict(
                load_checkpoint(weights, model, allow_non_finite=allow_non_finite).model_state
            )
        except CheckpointError as error:
            raise RunError(str(error).splitlines()[0]) from error
    else:
        raise RunError(f"{run_dir}: no {WEIGHTS_NAME} and no checkpoint; nothing to load")
    model.eval()
    return LoadedRun(run_dir, config, info, model, weights)


@dataclass
class Evaluation:
    """Test-set results of a run. ``confusion[i, j]``: samples of class i predicted as j."""

    loss: float
    accuracy: float
    confusion: np.ndarray
    classes: list[str]
    dataset: str
    samples: int


def evaluate_run(run_dir: str | os.PathLike[str], data_dir: str | None = None,
                 notify: Notify = quiet, allow_non_finite: bool = False) -> Evaluation:
    """Rebuild the run's model and score it on the test split of the data it trained on.

    The loss is plain cross-entropy (no label smoothing), as the test loss of ``train_run``.
    ``allow_non_finite``: evaluate NaN/inf weights (see :func:`load_run`).
    """
    run = load_run(run_dir, allow_non_finite=allow_non_finite)
    config = run.config if data_dir is None else run.config.updated({"data_dir": data_dir})
    scaling = (float(run.info.get("mean", 0.0)), float(run.info.get("std", 1.0)))
    data = load_data(config, dataset=run.info.get("dataset"), notify=notify, scaling=scaling)
    x_test, y_test = data.test
    logits = _logits(run.model, x_test)
    labels = gw.tensor(y_test)
    with gw.no_grad():
        loss = nn.functional.cross_entropy(gw.tensor(logits), labels).item()
    predicted = logits.argmax(axis=1)
    matrix = confusion_matrix(logits, y_test, num_classes=len(data.classes))
    return Evaluation(
        loss=float(loss),
        accuracy=float(np.mean(predicted == y_test)),
        confusion=np.asarray(matrix),
        classes=list(run.info.get("classes", data.classes)),
        dataset=data.dataset,
        samples=len(y_test),
    )


@dataclass
class Prediction:
    """The most likely classes for one picture: ``top`` is [(class name, probability), ...]."""

    path: Path
    top: list[tuple[str, float]]


def predict_images(
    run_dir: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]], top_k: int = 3
) -> list[Prediction]:
    """Preprocess each picture as the run's training images were and classify it.

    Raises:
        RunError: the run was not trained on images.
        gradwise.imageprep.ImagePrepError: a picture is missing, unreadable or blank.
    """
    run = load_run(run_dir)
    dataset = run.info.get("dataset", run.config.dataset)
    if dataset not in IMAGE_DATASETS:
        raise RunError(
            f"{run_dir}: this run trained on {dataset} (2-D points), not images; predict needs "
            "an image recipe such as mnist-mlp"
        )
    style = {"digits": "digits", "fashion-mnist": "fashion"}.get(dataset, "mnist")
    images = np.stack([load_digit_image(path, style=style) for path in paths])  # (N, 28, 28)
    mean, std = float(run.info.get("mean", 0.0)), float(run.info.get("std", 1.0))
    x = (gw_data.normalize_images(images) - np.float32(mean)) / np.float32(std)
    logits = _logits(run.model, x[:, None, :, :])
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    classes = list(run.info["classes"])
    results = []
    for path, row in zip(paths, probabilities, strict=True):
        order = np.argsort(row)[::-1][:top_k]
        results.append(Prediction(Path(path), [(classes[i], float(row[i])) for i in order]))
    return results


def _logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Float64 logits of ``model`` in eval mode, ``EVAL_BATCH`` samples at a time."""
    model.eval()
    outputs = []
    with gw.no_grad():
        for start in range(0, len(x), EVAL_BATCH):
            outputs.append(model(gw.tensor(x[start : start + EVAL_BATCH]))._data)
    return np.concatenate(outputs).astype(np.float64)
