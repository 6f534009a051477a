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
from gradwise._shown import shown
from gradwise.imageprep import ImagePrepError, load_digit_image
from gradwise.recipes import IMAGE_DATASETS, TrainConfig, build_model, load_data
from gradwise.runinfo import check_run_info
from gradwise.runs.layout import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    RUN_INFO_NAME,
    WEIGHTS_DIGEST_KEY,
    WEIGHTS_NAME,
    Notify,
    RunError,
    check_checkpoint_digest,
    check_digest,
    check_digest_fields,
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


WEIGHT_CHOICES = ("best", "last", "last-checkpoint")
"""``best``: checkpoints/best (the best validation accuracy); ``last``: the final weights
(``weights.safetensors``; an unfinished run's ``checkpoints/last``); ``last-checkpoint``:
``checkpoints/last`` itself."""


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
             allow_non_finite: bool = False, ignore_digest: bool = False,
             notify: Notify = quiet) -> LoadedRun:
    """Rebuild the model from ``config.json`` and load its weights.

    Every weights file is checked against the SHA-256 run.json recorded for it
    (``weights_sha256``, and ``checkpoint_sha256`` for the checkpoints' manifests) before it is
    loaded. A finished run whose ``weights.safetensors`` is gone is an error, never silently
    replaced by a checkpoint: ``weights="last-checkpoint"`` (or ``"best"``) asks for one.

    Args:
        weights: ``"best"`` loads ``checkpoints/best`` (the epoch with the best validation
            accuracy) when the run has one, else the final weights; ``"last"`` loads the final
            weights (``weights.safetensors``, or the last checkpoint of a run that has not
            finished); ``"last-checkpoint"`` loads ``checkpoints/last``.
        allow_non_finite: load NaN/inf weights (to inspect a diverged run); refused otherwise.
        ignore_digest: load weights whose SHA-256 differs from run.json's, with a warning
            through ``notify`` (to inspect a modified run; PyTorch has no such check).

    Raises:
        ValueError: ``weights`` is not one of :data:`WEIGHT_CHOICES`.
        RunError: the folder, its config, run.json (see :mod:`gradwise.runinfo`) or usable
            weights are missing, altered (digest mismatch), invalid, non-finite, of other
            dtypes, or do not fit.
    """
    if weights not in WEIGHT_CHOICES:
        raise ValueError(f"load_run: weights must be one of {', '.join(map(repr, WEIGHT_CHOICES))}"
                         f", got {weights!r}")
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    info_path = run_dir / RUN_INFO_NAME
    info = read_json(info_path)
    check_run_info(info, str(info_path), RunError, trained=True)
    check_digest_fields(info, str(info_path))
    try:
        input_shape = tuple(int(n) for n in info["input_shape"])
        n_classes = len(info["classes"])
    except (KeyError, TypeError, ValueError):
        raise RunError(
            f"{shown(info_path)}: lacks the input shape or classes (did training start?)"
        ) from None
    model = build_model(config, input_shape, n_classes)
    of_epochs = f" of {info['epoch']}" if isinstance(info.get("epoch"), int) else ""
    final = run_dir / WEIGHTS_NAME
    best = run_dir / BEST_CHECKPOINT
    last = run_dir / LAST_CHECKPOINT
    # the run wrote its final weights: they must be there (the digest says so, or "finished")
    wrote_final = WEIGHTS_DIGEST_KEY in info or info.get("status") == "finished"
    if weights == "best" and os.path.lexists(best / "checkpoint.json"):
        check_checkpoint_digest(run_dir, "best", info, ignore_digest, notify)
        epoch = load_checkpoint_weights(model, best, allow_non_finite)
        source, note = best, f"best: epoch {epoch}{of_epochs} ({BEST_CHECKPOINT})"
    elif weights != "last-checkpoint" and os.path.lexists(final):
        # read with every cap first (a FIFO, an outside link, a 3 GiB sparse file are refused
        # before a byte is hashed), then compared with the digest run.json recorded
        state = load_weights(final)
        check_digest(final, info.get(WEIGHTS_DIGEST_KEY), run_dir, ignore_digest, notify,
                     max_bytes=final.stat().st_size)
        try:
            check_state_matches(model.state_dict(), state, source=final)
            if not allow_non_finite:
                check_finite_weights(state, final)
        except CheckpointError as error:
            raise RunError(str(error).splitlines()[0]) from error
        model.load_state_dict(state)
        source, note = final, f"last: the final weights ({WEIGHTS_NAME})"
    elif weights != "last-checkpoint" and wrote_final:
        others = [f"--weights {name} ({folder})" for name, folder in
                  (("best", BEST_CHECKPOINT), ("last-checkpoint", LAST_CHECKPOINT))
                  if os.path.lexists(run_dir / folder / "checkpoint.json")]
        instead = (f"to use other weights pass {' or '.join(others)}" if others
                   else "the run has no checkpoint to use instead")
        raise RunError(f"{shown(final)} is missing: the run finished and wrote its final weights "
                       f"there ({RUN_INFO_NAME} says so); nothing was loaded in its place. Restore "
                       f"the file, or {instead}")
    elif os.path.lexists(last / "checkpoint.json"):
        check_checkpoint_digest(run_dir, "last", info, ignore_digest, notify)
        epoch = load_checkpoint_weights(model, last, allow_non_finite)
        source = last
        unfinished = "" if wrote_final else "; the run is not finished"
        note = f"last: epoch {epoch} ({LAST_CHECKPOINT}{unfinished})"
    elif weights == "last-checkpoint":
        raise RunError(f"{shown(last)}: no checkpoint there (checkpoint.json is missing)")
    else:
        raise RunError(f"{shown(run_dir)}: no {WEIGHTS_NAME} and no checkpoint; nothing to load")
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
                 progress: bool = False, allow_non_finite: bool = False,
                 ignore_digest: bool = False) -> Evaluation:
    """Rebuild the run's model and score it on the test split of the data it trained on.

    The loss is plain cross-entropy (no label smoothing), as the test loss of ``train_run``.

    Args:
        weights: ``"best"`` or ``"last"``, as for :func:`load_run`.
        progress: show a bar on stderr while scoring.
        allow_non_finite: evaluate NaN/inf weights (see :func:`load_run`).
        ignore_digest: evaluate weights whose SHA-256 differs from run.json's (see
            :func:`load_run`).
    """
    run = load_run(run_dir, weights, allow_non_finite=allow_non_finite,
                   ignore_digest=ignore_digest, notify=notify)
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
    """The most likely classes for one picture: ``top`` is [(class name, probability), ...].

    ``error``: why the picture was refused (``top`` is then empty); only with
    ``predict_images(..., skip_bad=True)``.
    """

    path: Path
    top: list[tuple[str, float]]
    error: str | None = None


def predict_images(
    run_dir: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]], top_k: int = 3,
    weights: str = "best", ignore_digest: bool = False, notify: Notify = quiet,
    skip_bad: bool = False,
) -> list[Prediction]:
    """Preprocess each picture as the run's training images were and classify it.

    Args:
        weights: one of :data:`WEIGHT_CHOICES`, as for :func:`load_run`.
        ignore_digest: as for :func:`load_run`.
        skip_bad: a picture that is missing, unreadable, too large or blank gets a
            :class:`Prediction` with its ``error`` (one line) instead of raising, and the
            others are still classified, in the order given.

    Raises:
        RunError: the run was not trained on images.
        gradwise.imageprep.ImagePrepError: a picture is missing, unreadable or blank (only
            without ``skip_bad``).
    """
    run = load_run(run_dir, weights, ignore_digest=ignore_digest, notify=notify)
    dataset = run.info.get("dataset", run.config.dataset)
    if dataset not in IMAGE_DATASETS:
        raise RunError(
            f"{shown(run_dir)}: this run trained on {dataset} (2-D points), not images; predict "
            "needs "
            "an image recipe such as mnist-mlp"
        )
    styles: dict[str, Literal["mnist", "digits", "fashion"]] = {
        "digits": "digits", "fashion-mnist": "fashion"}
    style = styles.get(dataset, "mnist")
    loaded: list[np.ndarray] = []
    results: list[Prediction] = []
    for path in paths:
        try:
            loaded.append(load_digit_image(path, style=style))  # (28, 28)
        except ImagePrepError as error:
            if not skip_bad:
                raise
            results.append(Prediction(Path(path), [], str(error).splitlines()[0]))
            continue
        results.append(Prediction(Path(path), []))
    if not loaded:
        return results
    images = np.stack(loaded)  # (N, 28, 28)
    mean, std = float(run.info.get("mean", 0.0)), float(run.info.get("std", 1.0))
    x = (gw_data.normalize_images(images) - np.float32(mean)) / np.float32(std)
    logits = batched_logits(run.model, x[:, None, :, :])
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = iter(shifted / shifted.sum(axis=1, keepdims=True))
    classes = list(run.info["classes"])
    for result in results:
        if result.error is None:
            row = next(probabilities)
            order = np.argsort(row)[::-1][:top_k]
            result.top = [(classes[i], float(row[i])) for i in order]
    return results

