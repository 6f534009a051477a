"""Using a finished run: rebuild its model, score it on its test split, classify pictures."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gradwise import data as gw_data
from gradwise import nn
from gradwise.imageprep import load_digit_image
from gradwise.recipes import IMAGE_DATASETS, TrainConfig, build_model, load_data
from gradwise.runinfo import check_run_info
from gradwise.runs.layout import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    RUN_INFO_NAME,
    WEIGHTS_NAME,
    Notify,
    RunError,
    load_checkpoint_weights,
    load_weights,
    quiet,
    read_config,
    read_json,
)
from gradwise.runs.scoring import batched_logits, score
from gradwise.train.checkpoint import CheckpointError, check_finite_weights, check_state_matches
from gradwise.train.metrics import confusion_matrix

__all__ = [
    "WEIGHT_CHOICES",
    "Evaluation",
    "LoadedRun",
    "Prediction",
    "evaluate_run",
    "load_run",
    "predict_images",
]


WEIGHT_CHOICES = ("best", "last")
"""``best``: checkpoints/best (the best validation accuracy); ``last``: the final weights."""


@dataclass
class LoadedRun:
    """A trained model rebuilt from its run directory, with what it was trained on.

    Attributes:
        weights: the file or checkpoint folder the weights came from.
        weights_note: which weights those are, for people (e.g. ``best: epoch 3 of 5``).
    """

    run_dir: Path
    config: TrainConfig
    info: dict[str, Any]
    model: nn.Module
    weights: Path
    weights_note: str = ""


def load_run(run_dir: str | os.PathLike[str], weights: str = "best",
             allow_non_finite: bool = False) -> LoadedRun:
    """Rebuild the model from ``config.json`` and load its weights.

    Args:
        weights: ``"best"`` loads ``checkpoints/best`` (the epoch with the best validation
            accuracy) when the run has one, else the final weights; ``"last"`` loads the final
            weights (``weights.safetensors``, or the last checkpoint of an unfinished run).
        allow_non_finite: load NaN/inf weights instead of refusing them (a diverged run).

    Args:
        allow_non_finite: load NaN/inf weights (to inspect a diverged run); refused otherwise.

    Raises:
        ValueError: ``weights`` is neither ``"best"`` nor ``"last"``.
        RunError: the folder, its config, run.json (see :mod:`gradwise.runinfo`) or usable
            weights are missing, invalid, non-finite, of other dtypes, or do not fit.
    """
    if weights not in WEIGHT_CHOICES:
        raise ValueError(f"load_run: weights must be 'best' or 'last', got {weights!r}")
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
    of_epochs = f" of {info['epoch']}" if isinstance(info.get("epoch"), int) else ""
    final = run_dir / WEIGHTS_NAME
    best = run_dir / BEST_CHECKPOINT
    if weights == "best" and os.path.lexists(best / "checkpoint.json"):
        epoch = load_checkpoint_weights(model, best, allow_non_finite)
        source, note = best, f"best: epoch {epoch}{of_epochs} ({BEST_CHECKPOINT})"
    elif os.path.lexists(final):  # a FIFO or an outside link is refused when read
        state = load_weights(final)
        try:
            check_state_matches(model.state_dict(), state, source=final)
            if not allow_non_finite:
                check_finite_weights(state, final)
        except CheckpointError as error:
            raise RunError(str(error).splitlines()[0]) from error
        model.load_state_dict(state)
        source, note = final, f"last: the final weights ({WEIGHTS_NAME})"
    elif os.path.lexists(run_dir / LAST_CHECKPOINT / "checkpoint.json"):
        epoch = load_checkpoint_weights(model, run_dir / LAST_CHECKPOINT, allow_non_finite)
        source = run_dir / LAST_CHECKPOINT
        note = f"last: epoch {epoch} ({LAST_CHECKPOINT}; the run is not finished)"
    else:
        raise RunError(f"{run_dir}: no {WEIGHTS_NAME} and no checkpoint; nothing to load")
    model.eval()
    return LoadedRun(run_dir, config, info, model, source, note)


@dataclass
class Evaluation:
    """Test-set results of a run. ``confusion[i, j]``: samples of class i predicted as j."""

    loss: float
    accuracy: float
    confusion: np.ndarray
    classes: list[str]
    dataset: str
    samples: int
    weights_note: str = ""


def evaluate_run(run_dir: str | os.PathLike[str], data_dir: str | None = None,
                 notify: Notify = quiet, weights: str = "best",
                 progress: bool = False, allow_non_finite: bool = False) -> Evaluation:
    """Rebuild the run's model and score it on the test split of the data it trained on.

    The loss is plain cross-entropy (no label smoothing), as the test loss of ``train_run``.

    Args:
        weights: ``"best"`` or ``"last"``, as for :func:`load_run`.
        progress: show a bar on stderr while scoring.
        allow_non_finite: evaluate NaN/inf weights (see :func:`load_run`).
    """
    run = load_run(run_dir, weights, allow_non_finite=allow_non_finite)
    config = run.config if data_dir is None else run.config.updated({"data_dir": data_dir})
    scaling = (float(run.info.get("mean", 0.0)), float(run.info.get("std", 1.0)))
    data = load_data(config, dataset=run.info.get("dataset"), notify=notify, scaling=scaling)
    x_test, y_test = data.test
    result = score(run.model, x_test, y_test, progress)
    matrix = confusion_matrix(result.logits, y_test, num_classes=len(data.classes))
    return Evaluation(
        loss=result.loss,
        accuracy=result.accuracy,
        confusion=np.asarray(matrix),
        classes=list(run.info.get("classes", data.classes)),
        dataset=data.dataset,
        samples=len(y_test),
        weights_note=run.weights_note,
    )


@dataclass
class Prediction:
    """The most likely classes for one picture: ``top`` is [(class name, probability), ...]."""

    path: Path
    top: list[tuple[str, float]]


def predict_images(
    run_dir: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]], top_k: int = 3,
    weights: str = "best",
) -> list[Prediction]:
    """Preprocess each picture as the run's training images were and classify it.

    Args:
        weights: ``"best"`` or ``"last"``, as for :func:`load_run`.

    Raises:
        RunError: the run was not trained on images.
        gradwise.imageprep.ImagePrepError: a picture is missing, unreadable or blank.
    """
    run = load_run(run_dir, weights)
    dataset = run.info.get("dataset", run.config.dataset)
    if dataset not in IMAGE_DATASETS:
        raise RunError(
            f"{run_dir}: this run trained on {dataset} (2-D points), not images; predict needs "
            "an image recipe such as mnist-mlp"
        )
    styles: dict[str, Literal["mnist", "digits", "fashion"]] = {
        "digits": "digits", "fashion-mnist": "fashion"}
    style = styles.get(dataset, "mnist")
    images = np.stack([load_digit_image(path, style=style) for path in paths])  # (N, 28, 28)
    mean, std = float(run.info.get("mean", 0.0)), float(run.info.get("std", 1.0))
    x = (gw_data.normalize_images(images) - np.float32(mean)) / np.float32(std)
    logits = batched_logits(run.model, x[:, None, :, :])
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    classes = list(run.info["classes"])
    results = []
    for path, row in zip(paths, probabilities, strict=True):
        order = np.argsort(row)[::-1][:top_k]
        results.append(Prediction(Path(path), [(classes[i], float(row[i])) for i in order]))
    return results

