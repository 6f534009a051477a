"""Training runs on disk: train, resume, evaluate and predict from a run directory.

A run directory holds everything needed to understand and reuse a training run::

    runs/mnist-mlp-20240101-120000/
      config.json            the exact TrainConfig used (usable again with --config)
      run.json               what happened: data set actually used, input scaling, status, result
      metrics.jsonl          one JSON object per epoch (losses, accuracies, lr, time)
      history.json           the full History
      weights.safetensors    the final weights (no pickle)
      learning_curves.png    loss and accuracy per epoch
      report.html            the doctor's findings, curves and test results (with gradwise.viz)
      checkpoints/last/      checkpoint after the latest epoch (or the interrupt): resume from it
      checkpoints/best/      checkpoint of the best validation accuracy

Every file is written atomically. This module prints nothing: messages for people go through
the ``notify`` function a caller passes (the CLI prints them).

Example:
    >>> config = TrainConfig.from_recipe("spiral")                 # doctest: +SKIP
    >>> outcome = train_run(config, "runs/spiral-demo")            # doctest: +SKIP
    >>> evaluate_run("runs/spiral-demo").accuracy                  # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import importlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy as safetensors_numpy

import gradwise as gw
from gradwise import data as gw_data
from gradwise import nn, optim
from gradwise._atomic import atomic_open, atomic_write_bytes
from gradwise.data import datasets as gw_datasets
from gradwise.imageprep import load_digit_image
from gradwise.recipes import IMAGE_DATASETS, TrainConfig, build_model
from gradwise.train.callbacks import (
    Callback,
    EpochSummary,
    JSONLinesLogger,
    ModelCheckpoint,
    ProgressBar,
)
from gradwise.train.checkpoint import CheckpointError, check_state_matches, load_checkpoint
from gradwise.train.history import History
from gradwise.train.metrics import confusion_matrix

__all__ = [
    "CONFIG_NAME",
    "CURVES_NAME",
    "HISTORY_NAME",
    "LAST_CHECKPOINT",
    "METRICS_NAME",
    "REPORT_NAME",
    "RUN_INFO_NAME",
    "WEIGHTS_NAME",
    "Evaluation",
    "Prediction",
    "PreparedData",
    "RunError",
    "StopRequest",
    "TrainOutcome",
    "default_run_dir",
    "evaluate_run",
    "find_learning_rate",
    "load_data",
    "load_run",
    "predict_images",
    "read_config",
    "train_run",
]

CONFIG_NAME = "config.json"
RUN_INFO_NAME = "run.json"
METRICS_NAME = "metrics.jsonl"
HISTORY_NAME = "history.json"
WEIGHTS_NAME = "weights.safetensors"
CURVES_NAME = "learning_curves.png"
REPORT_NAME = "report.html"
CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT = f"{CHECKPOINTS_DIR}/last"
BEST_CHECKPOINT = f"{CHECKPOINTS_DIR}/best"
RUN_FORMAT = "gradwise.run"

TOY_SIZES = {"spiral": (1000, 500), "xor": (800, 400)}
"""(train incl. validation, test) sample counts of the toy data sets."""
EVAL_BATCH = 1000

Notify = Callable[[str], Any]


class RunError(Exception):
    """A run cannot be started, resumed or read; the message names the file or setting."""


def _quiet(message: str) -> None:
    pass


# ---- data -------------------------------------------------------------------------------------
@dataclass
class PreparedData:
    """Float32 arrays ready for the model, split three ways, with what they are.

    Shape:
        images: x (N, 1, 28, 28) float32, standardised with the training ``mean``/``std``;
        points: x (N, 2) float32. y: (N,) int64 everywhere.
    """

    dataset: str
    source: str
    classes: list[str]
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    input_shape: tuple[int, ...]
    mean: float = 0.0
    std: float = 1.0


def load_data(
    config: TrainConfig,
    dataset: str | None = None,
    notify: Notify = _quiet,
    progress: bool = False,
    scaling: tuple[float, float] | None = None,
) -> PreparedData:
    """Load, split and scale the data set ``config`` names (or ``dataset`` when given).

    MNIST that cannot be found or downloaded is replaced by scikit-learn's 8x8 digits, and
    ``notify`` is told so in one line. Other data sets raise instead.

    Args:
        dataset: overrides ``config.dataset`` (a resumed run uses the data it started with).
        scaling: ``(mean, std)`` to use instead of the training set's (evaluation of a run).

    Raises:
        RunError: an image data set is not found (the message says where it looked).
    """
    name = dataset or config.dataset
    if name in TOY_SIZES:
        return _toy_data(config, name)
    image_set = _load_images(name, config.data_dir, notify, progress)
    (x_train, y_train), (x_test, y_test) = image_set.splits()
    rng = np.random.default_rng(config.seed)
    if config.limit_train is not None and config.limit_train < len(x_train):
        keep = rng.permutation(len(x_train))[: config.limit_train]
        x_train, y_train = x_train[keep], y_train[keep]
    train, val = gw_data.train_val_split(
        x_train, y_train, val_fraction=config.val_fraction, seed=rng
    )
    if scaling is None:
        pixels = gw_data.normalize_images(train[0])
        scaling = (float(pixels.mean(dtype=np.float64)), float(pixels.std(dtype=np.float64)))
    mean, std = scaling

    def prepare(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = (gw_data.normalize_images(images) - np.float32(mean)) / np.float32(std)
        return x[:, None, :, :], labels  # (N, 1, 28, 28)

    return PreparedData(
        dataset=image_set.name,
        source=image_set.source,
        classes=list(image_set.classes),
        train=prepare(*train),
        val=prepare(*val),
        test=prepare(x_test, y_test),
        input_shape=(1, *x_test.shape[1:]),
        mean=mean,
        std=std,
    )


def _load_images(
    name: str, data_dir: str | None, notify: Notify, progress: bool
) -> gw_data.Dataset:
    try:
        return gw_data.load_dataset(name, data_dir, download=True, progress=progress)
    except gw_data.DatasetNotFoundError as error:
        tried = _summarise_attempts(error.attempts)
        label = name.upper() if name == "mnist" else name
        if name != "mnist":
            raise RunError(
                f"no {label} files found (tried: {tried}); put the four IDX files in a folder "
                f"and pass it with --data-dir DIR or set {gw_data.DATA_DIR_ENV}=DIR"
            ) from error
        notify(
            f"No {label} files found (tried: {tried}); training on scikit-learn's 8x8 digits "
            f"instead. Provide {label} with --data-dir or {gw_data.DATA_DIR_ENV}."
        )
        return gw_data.load_dataset("digits")


def _summarise_attempts(attempts: Sequence[str]) -> str:
    """One short phrase per kind of place, from DatasetNotFoundError's attempt lines."""
    places: dict[str, list[str]] = {}
    for attempt in attempts:
        label, _, rest = attempt.partition(" ")
        where = rest.split(": ", 1)[0]
        places.setdefault(label, []).append(where)
    parts = []
    for label, wheres in places.items():
        if label == "download":
            parts.append(f"download from {len(wheres)} mirror{'s' * (len(wheres) != 1)}")
        elif label == "system":
            parts.extend(
                str(root) for root in gw_datasets.SYSTEM_DATA_DIRS
                if any(Path(where).is_relative_to(root) for where in wheres)
            )
        else:
            prefix = {"data_dir": "--data-dir ", "cache": ""}.get(label, f"{label}=")
            parts.append(prefix + wheres[0])
    return ", ".join(parts)


def _toy_data(config: TrainConfig, name: str) -> PreparedData:
    maker = {"spiral": gw_data.make_spirals, "xor": gw_data.make_xor}[name]
    n_train, n_test = TOY_SIZES[name]
    if config.limit_train is not None:
        n_train = min(n_train, config.limit_train)
    x, y = maker(n_samples=n_train, seed=config.seed)
    # a different seed stream for the test points, so they are new points from the same task
    x_test, y_test = maker(n_samples=n_test, seed=np.random.default_rng([config.seed, 1]))
    train, val = gw_data.train_val_split(
        x, y, val_fraction=config.val_fraction, seed=config.seed
    )
    classes = ["arm 0", "arm 1"] if name == "spiral" else ["same sign", "different sign"]
    return PreparedData(
        dataset=name,
        source=f"generated: gradwise.data.{maker.__name__}(seed={config.seed})",
        classes=classes,
        train=train,
        val=val,
        test=(x_test, y_test),
        input_shape=(2,),
    )


# ---- building the pieces ----------------------------------------------------------------------
def make_optimizer(config: TrainConfig, model: nn.Module) -> optim.Optimizer:
    """The optimizer ``config.optimizer`` names (SGD uses Nesterov momentum 0.9)."""
    params = list(model.parameters())
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=config.lr, momentum=0.9, nesterov=True,
                         weight_decay=config.weight_decay)
    kinds = {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop}
    return kinds[config.optimizer](params, lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(
    config: TrainConfig, optimizer: optim.Optimizer, steps_per_epoch: int
) -> optim.lr_scheduler.LRScheduler | None:
    """The schedule ``config.schedule`` names, stepped once per optimizer step."""
    total = config.epochs * steps_per_epoch
    schedules = optim.lr_scheduler
    if config.schedule == "step":
        milestones = sorted({max(1, total // 2), max(1, (3 * total) // 4)})
        return schedules.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if config.schedule == "cosine":
        return schedules.CosineAnnealingLR(optimizer, T_max=max(1, total))
    if config.schedule == "onecycle":
        return schedules.OneCycleLR(optimizer, max_lr=config.lr, total_steps=max(2, total))
    return None


def _optional(module: str) -> Any:
    """A gradwise module that may not be installed in this build, or None."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


# ---- training ---------------------------------------------------------------------------------
class StopRequest:
    """A flag the CLI's signal handler sets; training stops at the next step boundary.

    Attributes:
        reason: None until :meth:`request` is called, then e.g. ``"SIGINT"``.
    """

    def __init__(self) -> None:
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        self.reason = reason

    @property
    def requested(self) -> bool:
        return self.reason is not None


_INTERRUPTED = "interrupted by"


class _StopOnRequest(Callback):
    """Ask the trainer to stop after the current step once a :class:`StopRequest` is set."""

    def __init__(self, request: StopRequest):
        self.request = request

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if self.request.requested:
            self.trainer.request_stop(f"{_INTERRUPTED} {self.request.reason}")


@dataclass
class TrainOutcome:
    """What :func:`train_run` did.

    Attributes:
        interrupted: stopped by a :class:`StopRequest`; ``checkpoint`` is then where it saved.
        epoch, step: epochs completed and optimizer steps taken when training ended.
        mid_epoch: training ended inside epoch ``epoch + 1`` (an interrupt).
        diverged: training stopped on a non-finite loss (see ``history.stop_reason``).
        test_loss, test_accuracy: on the test split (None when interrupted).
        findings: the doctor's findings as text ('' when it found nothing or was off).
        missing: parts not written because a gradwise module is not available.
    """

    run_dir: Path
    history: History
    interrupted: bool
    epoch: int
    step: int
    checkpoint: Path | None
    mid_epoch: bool = False
    diverged: bool = False
    test_loss: float | None = None
    test_accuracy: float | None = None
    findings: str = ""
    seconds: float = 0.0
    missing: list[str] = field(default_factory=list)


def default_run_dir(recipe: str, root: str | os.PathLike[str] = "runs") -> Path:
    """``runs/<recipe>-<YYYYmmdd-HHMMSS>``, with a ``-2``, ``-3``... suffix if it exists."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{recipe}-{stamp}"
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def train_run(
    config: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    notify: Notify = _quiet,
    progress: bool = False,
    epoch_lines: bool = True,
    stop: StopRequest | None = None,
) -> TrainOutcome:
    """Train ``config`` into ``run_dir`` (or continue the run there with ``resume=True``).

    Args:
        notify: receives the lines meant for people (per-epoch summaries, data notes).
        progress: show tqdm bars (on stderr).
        epoch_lines: send one summary line per epoch to ``notify``.
        stop: when set during training, stop at the next step, checkpoint and return.

    Raises:
        RunError: the folder already holds a run (fresh start) or has no checkpoint (resume);
            the data are missing.
    """
    from gradwise.train import Trainer

    started = time.perf_counter()
    run_dir = Path(run_dir)
    info = _prepare_run_dir(config, run_dir, resume)
    data = load_data(config, dataset=info.get("dataset"), notify=notify, progress=progress)
    info.update(
        dataset=data.dataset, source=data.source, classes=data.classes,
        input_shape=list(data.input_shape), mean=data.mean, std=data.std,
        samples={"train": len(data.train[1]), "val": len(data.val[1]),
                 "test": len(data.test[1])},
        status="running",
    )
    _write_json(run_dir / RUN_INFO_NAME, info)

    model = build_model(config, data.input_shape, len(data.classes))
    optimizer = make_optimizer(config, model)
    steps_per_epoch = math.ceil(len(data.train[1]) / config.batch_size)
    scheduler = make_scheduler(config, optimizer, steps_per_epoch)
    stop = stop or StopRequest()
    checkpoint = ModelCheckpoint(run_dir / CHECKPOINTS_DIR, monitor="val_accuracy",
                                 save_best_only=True, save_last=True)
    callbacks: list[Callback] = [
        JSONLinesLogger(run_dir / METRICS_NAME), checkpoint, _StopOnRequest(stop)
    ]
    if progress:
        callbacks.append(ProgressBar())
    if epoch_lines:
        callbacks.append(EpochSummary(print_fn=notify))
    doctor = _make_doctor() if config.doctor else None

    trainer = Trainer(
        model,
        nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
        optimizer,
        scheduler=scheduler,
        metrics=["accuracy"],
        callbacks=callbacks,
        clip_grad_norm=config.clip_grad_norm,
        seed=config.seed,
        progress=False,
        doctor=doctor,
        scheduler_interval=None if scheduler is None else "step",
    )
    last = run_dir / LAST_CHECKPOINT
    fit_args: dict[str, Any] = {
        "val_data": data.val, "epochs": config.epochs, "batch_size": config.batch_size,
    }
    if resume and (last / "checkpoint.json").is_file():
        fit_args["resume_from"] = last
    elif resume:
        # killed before its first checkpoint: nothing was kept, so the run starts over
        notify(f"{run_dir} has no checkpoint yet (stopped before its first epoch ended); "
               "starting the run again from the first step")
    if config.detect_anomaly:
        with gw.detect_anomaly():
            history = trainer.fit(data.train, **fit_args)
    else:
        history = trainer.fit(data.train, **fit_args)

    history.save(run_dir / HISTORY_NAME)
    # a signal that arrives after the last step does not undo a finished run
    interrupted = (trainer.stop_reason or "").startswith(_INTERRUPTED)
    outcome = TrainOutcome(
        run_dir=run_dir, history=history, interrupted=interrupted,
        epoch=trainer.epoch, step=trainer.step, checkpoint=None,
        mid_epoch=trainer.batch_in_epoch > 0,
    )
    if doctor is not None:
        outcome.findings = doctor.format_findings()
    if interrupted:
        outcome.checkpoint = trainer.save_checkpoint(last)
        info.update(status="interrupted", interrupted_by=stop.reason,
                    epoch=trainer.epoch, step=trainer.step)
        _write_json(run_dir / RUN_INFO_NAME, info)
        outcome.seconds = time.perf_counter() - started
        return outcome

    outcome.checkpoint = checkpoint.last_path
    last_losses = [trainer.last_loss, *(history.last.get(k) for k in ("loss", "val_loss"))]
    outcome.diverged = history.stop_reason is not None and any(
        isinstance(value, float) and not math.isfinite(value) for value in last_losses
    )
    if _all_finite(model):
        _save_weights(model, run_dir / WEIGHTS_NAME, config)
    else:
        outcome.missing.append(f"{WEIGHTS_NAME} (the weights are not finite; "
                               f"{LAST_CHECKPOINT} holds the last good ones)")
    trainer.loss_fn = nn.CrossEntropyLoss()  # test loss without label smoothing, as evaluate
    test = trainer.evaluate(data.test, batch_size=EVAL_BATCH)
    outcome.test_loss = float(test["loss"])
    outcome.test_accuracy = float(test["accuracy"])
    outcome.missing += _write_figures(run_dir, history, doctor, model, data)
    outcome.seconds = time.perf_counter() - started
    info.update(
        status="finished" if history.stop_reason is None else "stopped",
        stop_reason=history.stop_reason, epoch=trainer.epoch, step=trainer.step,
        test_loss=outcome.test_loss, test_accuracy=outcome.test_accuracy,
        seconds=round(outcome.seconds, 2),
    )
    _write_json(run_dir / RUN_INFO_NAME, info)
    return outcome


def _prepare_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> dict[str, Any]:
    """Create (or check, when resuming) the run folder; return run.json's contents."""
    if resume:
        info_path = run_dir / RUN_INFO_NAME
        info = _read_json(info_path) if info_path.is_file() else _new_run_info(config)
        if info.get("status") == "finished":
            raise RunError(f"{run_dir}: this run already finished; nothing to resume")
        info.pop("interrupted_by", None)
        info["resumed"] = int(info.get("resumed", 0)) + 1
        return info
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"{run_dir} exists and is not a folder")
    if (run_dir / CONFIG_NAME).exists():
        raise RunError(
            f"{run_dir} already holds a run; choose another --out folder, or continue it "
            f"with --resume {run_dir}"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_dir / CONFIG_NAME, config.to_dict())
    return _new_run_info(config)


def _new_run_info(config: TrainConfig) -> dict[str, Any]:
    return {
        "format": RUN_FORMAT,
        "gradwise_version": gw.__version__,
        "recipe": config.recipe,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def _make_doctor() -> Any:
    try:
        from gradwise.doctor import Doctor
    except ImportError:
        return None
    return Doctor()


def _write_figures(
    run_dir: Path, history: History, doctor: Any, model: nn.Module, data: PreparedData
) -> list[str]:
    """The learning curves and the HTML report; names what could not be made."""
    missing = []
    plots = _optional("gradwise.viz.plots")
    if plots is None:
        missing.append(f"{CURVES_NAME} (gradwise.viz.plots is not available)")
    elif len(history) == 0:
        missing.append(f"{CURVES_NAME} (no epoch finished)")
    else:
        plots.plot_learning_curves(history, run_dir / CURVES_NAME)
    report = _optional("gradwise.viz.report")
    if report is None:
        missing.append(f"{REPORT_NAME} (gradwise.viz.report is not available)")
    else:
        report.write_report(run_dir, history=history, doctor=doctor, model=model,
                            test_data=data.test, class_names=data.classes)
    return missing


# ---- reading runs back ------------------------------------------------------------------------
def read_config(run_dir: str | os.PathLike[str]) -> TrainConfig:
    """The TrainConfig saved in ``run_dir/config.json``."""
    path = Path(run_dir) / CONFIG_NAME
    if not Path(run_dir).is_dir():
        raise RunError(f"{run_dir}: no such run folder")
    try:
        return TrainConfig.from_dict(_read_json(path))
    except ValueError as error:
        raise RunError(f"{path}: {error}") from error


@dataclass
class LoadedRun:
    """A trained model rebuilt from its run directory, with what it was trained on."""

    run_dir: Path
    config: TrainConfig
    info: dict[str, Any]
    model: nn.Module
    weights: Path


def load_run(run_dir: str | os.PathLike[str]) -> LoadedRun:
    """Rebuild the model from ``config.json`` and load the final weights (or the last
    checkpoint of an unfinished run).

    Raises:
        RunError: the folder, its config, or usable weights are missing or do not fit.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    info = _read_json(run_dir / RUN_INFO_NAME)
    try:
        input_shape = tuple(int(n) for n in info["input_shape"])
        n_classes = len(info["classes"])
    except (KeyError, TypeError, ValueError):
        raise RunError(
            f"{run_dir / RUN_INFO_NAME}: lacks the input shape or classes (did training start?)"
        ) from None
    model = build_model(config, input_shape, n_classes)
    weights = run_dir / WEIGHTS_NAME
    if weights.is_file():
        state = _load_weights(weights)
        try:
            check_state_matches(model.state_dict(), state, source=weights)
        except CheckpointError as error:
            raise RunError(str(error).splitlines()[0]) from error
        model.load_state_dict(state)
    elif (run_dir / LAST_CHECKPOINT / "checkpoint.json").is_file():
        weights = run_dir / LAST_CHECKPOINT
        try:
            model.load_state_dict(load_checkpoint(weights, model).model_state)
        except CheckpointError as error:
            raise RunError(str(error).splitlines()[0]) from error
    else:
        raise RunError(f"{run_dir}: no {WEIGHTS_NAME} and no checkpoint; nothing to load")
    model.eval()
    return LoadedRun(run_dir, config, info, model, weights)


def _all_finite(model: nn.Module) -> bool:
    return all(
        array.dtype.kind != "f" or bool(np.all(np.isfinite(array)))
        for array in model.state_dict().values()
    )


def _save_weights(model: nn.Module, path: Path, config: TrainConfig) -> None:
    state = {name: np.ascontiguousarray(array) for name, array in model.state_dict().items()}
    bad = [name for name, array in state.items()
           if array.dtype.kind == "f" and not np.all(np.isfinite(array))]
    if bad:
        raise RunError(f"{path}: not written: non-finite values in {', '.join(bad)}")
    metadata = {"format": "gradwise.weights", "recipe": config.recipe}
    atomic_write_bytes(path, safetensors_numpy.save(state, metadata=metadata))


def _load_weights(path: Path) -> dict[str, np.ndarray]:
    try:
        return safetensors_numpy.load(path.read_bytes())
    except OSError as error:
        raise RunError(f"{path}: cannot read: {error}") from error
    except Exception as error:  # safetensors raises its own error types
        raise RunError(f"{path}: not a valid safetensors file: {error}") from error


# ---- evaluate and predict ---------------------------------------------------------------------
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
                 notify: Notify = _quiet) -> Evaluation:
    """Rebuild the run's model and score it on the test split of the data it trained on."""
    run = load_run(run_dir)
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
    model.eval()
    outputs = []
    with gw.no_grad():
        for start in range(0, len(x), EVAL_BATCH):
            outputs.append(model(gw.tensor(x[start : start + EVAL_BATCH])).data)
    return np.concatenate(outputs).astype(np.float64)


# ---- learning-rate finder ---------------------------------------------------------------------
_LR_FIND_SETTINGS = {
    "sgd": ("momentum", "nesterov", "weight_decay"),
    "adam": ("weight_decay",),
    "adamw": ("weight_decay",),
    "rmsprop": ("weight_decay",),
}
"""The optimizer settings the range test keeps from the recipe (the lr is swept)."""

def find_learning_rate(
    config: TrainConfig, plot_path: str | os.PathLike[str] | None, notify: Notify = _quiet,
    **sweep: Any,
) -> tuple[Any, Path | None]:
    """Run the doctor's learning-rate range test on the recipe's model and training data.

    Args:
        sweep: passed to :func:`gradwise.doctor.lr_find` (``start_lr``, ``end_lr``,
            ``num_steps``, ``suggest``, ``progress``; the progress bar is off by default here).

    Returns:
        The result of :func:`gradwise.doctor.lr_find` (``suggested_lr``, ``lrs``, ``losses``)
        and the plot's path (None when not asked for or when plotting is not available).
    """
    from gradwise.doctor import lr_find

    data = load_data(config, notify=notify)
    model = build_model(config, data.input_shape, len(data.classes))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    optimizer = make_optimizer(config, model)
    settings = {key: value for key, value in optimizer.defaults.items()
                if key in _LR_FIND_SETTINGS[config.optimizer]}
    sweep.setdefault("progress", False)
    result = lr_find(model, loss_fn, data.train, optimizer_cls=type(optimizer),
                     batch_size=config.batch_size, seed=config.seed, **sweep, **settings)
    if plot_path is None:
        return result, None
    Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
    try:
        return result, result.plot(plot_path)
    except ImportError:  # the plot needs gradwise.viz
        notify(f"Plot not written to {plot_path}: gradwise.viz is not available")
        return result, None


# ---- JSON files -------------------------------------------------------------------------------
def _write_json(path: Path, value: Any) -> None:
    """Strict JSON, atomically; non-finite numbers (a diverged loss) are written as null."""
    with atomic_open(path, "w") as handle:
        json.dump(_finite_or_none(value), handle, indent=2, allow_nan=False)
        handle.write("\n")


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing (is {path.parent} a gradwise run folder?)") from None
    except RecursionError:
        raise RunError(f"{path}: unreadable: nested too deeply") from None
    except (OSError, ValueError) as error:  # ValueError: bad UTF-8, bad JSON, huge numbers
        raise RunError(f"{path}: unreadable: {str(error).splitlines()[0]}") from None
    if not isinstance(value, dict):
        raise RunError(f"{path}: expected a JSON object")
    return value
