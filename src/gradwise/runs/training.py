"""Training a run into its folder, as a few short steps: start, build the trainer, fit, finish.

Example:
    >>> config = TrainConfig.from_recipe("spiral")                 # doctest: +SKIP
    >>> outcome = train_run(config, "runs/spiral-demo")            # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import gradwise as gw
from gradwise import nn
from gradwise._atomic import remove_leftover_temp_files
from gradwise._shown import shown
from gradwise.doctor import Doctor, DoctorConfig
from gradwise.recipes import (
    PreparedData,
    TrainConfig,
    build_model,
    load_data,
    make_optimizer,
    make_scheduler,
)
from gradwise.runs.distributed import is_writer, on_rank_zero, rank_zero_first
from gradwise.runs.layout import (
    BEST_CHECKPOINT,
    CHECKPOINT_DIGESTS_KEY,
    CHECKPOINTS_DIR,
    CONFIG_NAME,
    CURVES_NAME,
    HISTORY_NAME,
    LAST_CHECKPOINT,
    METRICS_NAME,
    RUN_INFO_NAME,
    WEIGHTS_DIGEST_KEY,
    WEIGHTS_NAME,
    Notify,
    RunError,
    all_finite,
    checkpoint_digests,
    load_checkpoint_weights,
    prepare_run_dir,
    quiet,
    save_weights,
    write_json,
)
from gradwise.runs.progress import EpochBar
from gradwise.runs.scoring import EVAL_BATCH, score
from gradwise.train import Trainer
from gradwise.train.callbacks import (
    Callback,
    EpochSummary,
    JSONLinesLogger,
    ModelCheckpoint,
)
from gradwise.train.history import History
from gradwise.viz import plots, report

__all__ = [
    "EVAL_BATCH", "StopRequest", "TrainOutcome", "describe_model", "train_run", "versions",
]



class StopRequest:
    """A flag the CLI's signal handler sets; training stops at the next step boundary.

    Attributes:
        reason: None until :meth:`request` is called, then e.g. ``"SIGINT"``.
    """

    def __init__(self) -> None:
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        """Ask training to stop; ``reason`` (e.g. ``"SIGINT"``) is reported with the stop."""
        self.reason = reason

    @property
    def requested(self) -> bool:
        """Whether :meth:`request` was called."""
        return self.reason is not None


_INTERRUPTED = "interrupted by"


class _StopOnRequest(Callback):
    """Ask the trainer to stop after the current step once a :class:`StopRequest` is set."""

    def __init__(self, request: StopRequest):
        self.request = request

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        if self.request.requested and self.trainer is not None:
            self.trainer.request_stop(f"{_INTERRUPTED} {self.request.reason}", resumable=True)


@dataclass
class TrainOutcome:
    """What :func:`train_run` did.

    Attributes:
        interrupted: stopped by a :class:`StopRequest`; ``checkpoint`` is then where it saved.
        epoch, step: epochs completed and optimizer steps taken when training ended.
        mid_epoch: training ended inside epoch ``epoch + 1`` (an interrupt).
        diverged: training stopped on a non-finite loss (see ``history.stop_reason``).
        test_loss, test_accuracy: on the test split (None when interrupted), scored with the
            best epoch's weights (``checkpoints/best``) when there is one, as ``evaluate``.
        test_weights: which weights were scored, e.g. ``best: epoch 3 of 5``.
        findings: the doctor's findings as text ('' when it found nothing or was off).
        seconds: wall time of this call (this session).
        total_seconds: wall time of every session of the run (run.json's ``seconds``): equal
            to ``seconds`` for a fresh run, more after a resume.
        resumed: the run has been resumed at least once (run.json's ``resumed`` count).
        missing: files not written, each with the reason.
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
    test_weights: str = ""
    findings: str = ""
    seconds: float = 0.0
    total_seconds: float = 0.0
    resumed: bool = False
    missing: list[str] = field(default_factory=list)


def train_run(
    config: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    notify: Notify = quiet,
    progress: bool = False,
    epoch_lines: bool = True,
    line_width: int | None = None,
    stop: StopRequest | None = None,
    distributed: bool = False,
    extra_callbacks: Sequence[Callback] = (),
    ignore_digest: bool = False,
) -> TrainOutcome:
    """Train ``config`` into ``run_dir`` (or continue the run there with ``resume=True``).

    Args:
        notify: receives the lines meant for people (per-epoch summaries, data notes).
        progress: show tqdm bars (on stderr).
        epoch_lines: send one summary line per epoch to ``notify``.
        line_width: the columns those lines must fit (the terminal's), or None: full lines.
        stop: when set during training, stop at the next step, checkpoint and return.
        distributed: one rank of an MPI job (``mpiexec -n N gradwise train --distributed``):
            data-parallel training with ``batch_size`` samples per rank; only rank 0 writes
            the run folder and notifies, the others wait for it (docs/DISTRIBUTED.md).
        extra_callbacks: more callbacks for the Trainer (``--tensorboard``'s logger).
        ignore_digest: resuming, load ``checkpoints/last`` even when its SHA-256 differs from
            the one run.json pinned (a warning instead of a RunError).

    Raises:
        RunError: the folder already holds a run (fresh start) or has finished (resume).
        gradwise.data.DatasetNotFoundError: the data are missing.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    stop = stop or StopRequest()
    writer = is_writer(distributed)
    if not writer:
        notify, progress = quiet, False
    info, data, extend_from = _start(config, run_dir, resume, notify, progress, distributed,
                                     ignore_digest)
    if resume and writer:
        def record() -> None:
            if extend_from is not None:
                write_json(run_dir / CONFIG_NAME, config.to_dict())
            write_json(run_dir / RUN_INFO_NAME, info)

        extra_callbacks = [_RecordResume(record), *extra_callbacks]
    trainer, checkpoint, doctor = _build_trainer(
        config, data, run_dir, stop, progress=progress, epoch_lines=epoch_lines, notify=notify,
        line_width=line_width, extend_from=extend_from, distributed=distributed,
        extra_callbacks=extra_callbacks,
    )
    info.update(describe_model(getattr(trainer.model, "module", trainer.model), data.input_shape))
    history = _fit(trainer, config, data, run_dir, resume, notify, writer)
    # a signal that arrives after the last step does not undo a finished run
    interrupted = (trainer.stop_reason or "").startswith(_INTERRUPTED)
    outcome = TrainOutcome(
        run_dir=run_dir, history=history, interrupted=interrupted,
        epoch=trainer.epoch, step=trainer.step, checkpoint=None,
        mid_epoch=trainer.batch_in_epoch > 0,
        # wrapped once, to the terminal's width when there is one (the CLI then leaves the
        # lines alone) instead of at 100 and then again by the terminal's width
        findings=(doctor.format_findings(width=line_width or 100)
                  if doctor is not None else ""),
    )
    if interrupted:
        outcome.checkpoint = trainer.save_checkpoint(run_dir / LAST_CHECKPOINT)
        info.update(status="interrupted", interrupted_by=stop.reason,
                    epoch=trainer.epoch, step=trainer.step)
        if writer:
            info[CHECKPOINT_DIGESTS_KEY] = checkpoint_digests(run_dir)
    elif not writer:  # the test evaluation is shared; files and figures are rank 0's
        _share_scored_weights(getattr(trainer.model, "module", trainer.model), None)
        trainer.loss_fn = nn.CrossEntropyLoss()
        trainer.evaluate(data.test, batch_size=EVAL_BATCH)
    else:
        outcome.checkpoint = checkpoint.last_path
        _finish(outcome, trainer, config, data, doctor, info, progress)
    outcome.seconds = time.perf_counter() - started
    # wall time over every session of the run (a resumed run adds to what it had)
    info["seconds"] = round(float(info.get("seconds") or 0.0) + outcome.seconds, 2)
    outcome.total_seconds = max(info["seconds"], outcome.seconds)
    outcome.resumed = int(info.get("resumed") or 0) > 0
    if writer:
        # the derived files first, run.json's new status last: a kill between them leaves the
        # run "running", and its resume finishes it again (figures included); the other order
        # left a "finished" run without report.html or curves, which resume refused forever
        if not interrupted:
            _write_figures(outcome, doctor, getattr(trainer.model, "module", trainer.model),
                           data, info)
        write_json(run_dir / RUN_INFO_NAME, info)
    if distributed:
        # the ranks leave together: one that finished early would exit (and, unlike rank 0,
        # no longer catch Ctrl-C, which mpiexec forwards to all) while rank 0 still writes
        # the weights, figures and run.json
        gw.distributed.barrier()
    return outcome


def _start(
    config: TrainConfig, run_dir: Path, resume: bool, notify: Notify, progress: bool,
    distributed: bool = False, ignore_digest: bool = False,
) -> tuple[dict[str, Any], PreparedData, int | None]:
    """Create or check the folder, load the data, and record in run.json what was loaded.

    Returns run.json's contents, the data, and the epochs a finished run had when this call
    extends it (else None).
    """
    def load(dataset: str | None) -> PreparedData:
        # rank 0 loads (and maybe downloads) first; then the others read the cached files
        return rank_zero_first(distributed, lambda: load_data(
            config, dataset=dataset, notify=notify, progress=progress))

    if not resume:
        # the data are checked (found, decodable, not blank) before the folder exists: bad
        # data leave no half-made run behind
        data = load(None)
    info = on_rank_zero(distributed, lambda: prepare_run_dir(
        config, run_dir, resume, ignore_digest, notify))
    extend_from = int(info["epoch"]) if info.get("status") == "finished" else None
    if resume:  # a kill in the middle of a write leaves .NAME.XXXX.tmp files: not ours to keep
        on_rank_zero(distributed, lambda: len(remove_leftover_temp_files(run_dir)))
        data = load(info.get("dataset"))
    info.update(
        dataset=data.dataset, source=data.source, fallback=data.fallback,
        classes=data.classes, input_shape=list(data.input_shape), mean=data.mean, std=data.std,
        samples={"train": len(data.train[1]), "val": len(data.val[1]),
                 "test": len(data.test[1])},
        hyperparameters=config.to_dict(), seed=config.seed, versions=versions(),
        status="running",
    )
    if distributed:  # batch_size is per rank
        ranks = gw.distributed.get_world_size()
        info.update(ranks=ranks, global_batch_size=config.batch_size * ranks)
    if data.dataset != config.dataset:
        # config.json keeps the settings as asked (a rerun tries MNIST again); say here that
        # another data set ran instead, so the two files do not seem to disagree
        info["dataset_requested"] = config.dataset
    if is_writer(distributed) and not resume:
        write_json(run_dir / RUN_INFO_NAME, info)
    return info, data, extend_from


class _RecordResume(Callback):
    """Resuming: write run.json (status running; config.json too when extending) at the first
    epoch or batch, i.e. once the checkpoint and the callbacks' states have loaded. A resume
    refused before that (a damaged or mismatched checkpoint) leaves every file untouched."""

    def __init__(self, write: Callable[[], None]):
        self._write: Callable[[], None] | None = write

    def _once(self) -> None:
        if self._write is not None:
            write, self._write = self._write, None
            write()

    def on_epoch_begin(self, epoch: int) -> None:
        self._once()

    def on_batch_begin(self, step: int, logs: dict[str, Any]) -> None:
        self._once()


class _WarmRestart(Callback):
    """Extending a finished run: its schedule has run out (a cosine schedule ends at lr 0), so
    the extra epochs get a fresh one from the config's lr, as a warm restart (SGDR, Loshchilov
    and Hutter 2017). Runs after the checkpoint is restored; an interrupted extension resumes
    the fresh schedule from its own checkpoint instead.
    """

    def __init__(self, config: TrainConfig, from_epoch: int, steps_per_epoch: int):
        self.config, self.from_epoch, self.steps_per_epoch = config, from_epoch, steps_per_epoch

    def on_train_begin(self) -> None:
        trainer = self.trainer
        if trainer is None or trainer.epoch != self.from_epoch or trainer.batch_in_epoch:
            return
        for group in trainer.optimizer.param_groups:
            group["lr"] = group["initial_lr"] = self.config.lr
        extra = self.config.updated({"epochs": self.config.epochs - self.from_epoch})
        trainer.scheduler = make_scheduler(extra, trainer.optimizer, self.steps_per_epoch)


def versions() -> dict[str, str]:
    """Versions of Python, gradwise and the libraries that decide the numbers, and the OS."""
    import matplotlib
    import safetensors
    import sklearn

    return {
        "python": platform.python_version(),
        "gradwise": gw.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "safetensors": safetensors.__version__,
        "matplotlib": matplotlib.__version__,
        "platform": platform.platform(terse=True),
    }


def describe_model(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """run.json's model entries: class name, parameter count and the layer table."""
    return {
        "model": type(model).__name__,
        "parameters": int(sum(p.size for p in model.parameters())),
        "model_summary": nn.utils.summary(model, (1, *input_shape), print_fn=None),
    }


def _build_trainer(
    config: TrainConfig,
    data: PreparedData,
    run_dir: Path,
    stop: StopRequest,
    *,
    progress: bool,
    epoch_lines: bool,
    notify: Notify,
    line_width: int | None = None,
    extend_from: int | None = None,
    distributed: bool = False,
    extra_callbacks: Sequence[Callback] = (),
) -> tuple[Trainer, ModelCheckpoint, Doctor | None]:
    """The model, optimizer, schedule and callbacks of ``config``, wired into a Trainer
    (``extend_from``: the epochs of a finished run being extended)."""
    model = build_model(config, data.input_shape, len(data.classes))
    optimizer = make_optimizer(config, model)
    ranks = gw.distributed.get_world_size() if distributed else 1  # batch_size is per rank
    steps_per_epoch = math.ceil(math.ceil(len(data.train[1]) / ranks) / config.batch_size)
    scheduler = make_scheduler(config, optimizer, steps_per_epoch)
    checkpoint = ModelCheckpoint(run_dir / CHECKPOINTS_DIR, monitor="val_accuracy",
                                 save_best_only=True, save_last=True)
    callbacks: list[Callback] = [
        JSONLinesLogger(run_dir / METRICS_NAME), checkpoint, _StopOnRequest(stop)
    ]
    if progress:
        callbacks.append(EpochBar())
    if epoch_lines:
        callbacks.append(EpochSummary(print_fn=notify, width=line_width))
    if extend_from is not None:
        callbacks.append(_WarmRestart(config, extend_from, steps_per_epoch))
    callbacks.extend(extra_callbacks)
    doctor = (Doctor(config=DoctorConfig(advice_style="cli"))
              if config.doctor and is_writer(distributed) else None)
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
        distributed=distributed,
    )
    return trainer, checkpoint, doctor


def _fit(
    trainer: Trainer,
    config: TrainConfig,
    data: PreparedData,
    run_dir: Path,
    resume: bool,
    notify: Notify,
    writer: bool = True,
) -> History:
    """Train (from the last checkpoint when resuming) and save the history."""
    last = run_dir / LAST_CHECKPOINT
    fit_args: dict[str, Any] = {
        "val_data": data.val, "epochs": config.epochs, "batch_size": config.batch_size,
    }
    if resume and os.path.lexists(last / "checkpoint.json"):
        fit_args["resume_from"] = last
    elif resume and os.path.lexists(run_dir / BEST_CHECKPOINT / "checkpoint.json"):
        # epochs were done (best/ is written at an epoch's end) but last/ is gone: starting
        # over would throw that work away while claiming nothing had been kept
        raise RunError(
            f"{shown(run_dir)}: cannot resume: {last / 'checkpoint.json'} is missing, but the run "
            f"has {BEST_CHECKPOINT} from epochs already trained; restore {last} or start "
            "a new run"
        )
    elif resume:
        # killed before its first checkpoint: nothing was kept, so the run starts over
        notify(f"{shown(run_dir)} has no checkpoint yet (stopped before its first epoch ended); "
               "starting the run again from the first step")
    if config.detect_anomaly:
        # forward results too: the run stops at the op that first made a NaN or Inf
        with gw.detect_anomaly(check_forward=True):
            history = trainer.fit(data.train, **fit_args)
    else:
        history = trainer.fit(data.train, **fit_args)
    if trainer.resumed_at is not None and trainer.resumed_at[0] >= config.epochs:
        # killed after its last checkpoint but before it was marked finished
        done = "The 1 epoch was" if config.epochs == 1 else f"All {config.epochs} epochs were"
        notify(f"{done} done before the interruption; finishing the run (final weights, test "
               "score, report)")
    if writer:
        history.save(run_dir / HISTORY_NAME)
    return history


def _finish(
    outcome: TrainOutcome,
    trainer: Trainer,
    config: TrainConfig,
    data: PreparedData,
    doctor: Doctor | None,
    info: dict[str, Any],
    progress: bool = False,
) -> None:
    """After the last epoch: save the weights, score the test split (with a bar when
    ``progress``), update run.json."""
    # the bare model (not its DistributedDataParallel wrapper) for the weights and the report
    run_dir, history = outcome.run_dir, outcome.history
    model = getattr(trainer.model, "module", trainer.model)
    last_losses = [trainer.last_loss, *(history.last.get(k) for k in ("loss", "val_loss"))]
    outcome.diverged = history.stop_reason is not None and any(
        isinstance(value, float) and not math.isfinite(value) for value in last_losses
    )
    info.pop(WEIGHTS_DIGEST_KEY, None)
    if all_finite(model):
        info[WEIGHTS_DIGEST_KEY] = save_weights(model, run_dir / WEIGHTS_NAME, config)
    else:
        outcome.missing.append(f"{WEIGHTS_NAME} (the weights are not finite; "
                               f"{LAST_CHECKPOINT} holds the last good ones)")
    # the test score is that of the weights evaluate and predict use by default: the best epoch's
    best = run_dir / BEST_CHECKPOINT
    if (best / "checkpoint.json").is_file():
        epoch = load_checkpoint_weights(model, best)
        outcome.test_weights = f"best: epoch {epoch} of {trainer.epoch}"
    else:
        outcome.test_weights = f"last: epoch {trainer.epoch}"
    if trainer.distributed is not None:
        # every rank takes part in this evaluation (see train_run): all score rank 0's choice
        _share_scored_weights(model, outcome.test_weights)
        trainer.loss_fn = nn.CrossEntropyLoss()  # no label smoothing, as evaluate
        logs = trainer.evaluate(data.test, batch_size=EVAL_BATCH)
        outcome.test_loss, outcome.test_accuracy = float(logs["loss"]), float(logs["accuracy"])
    else:
        test = score(model, *data.test, progress=progress)  # no label smoothing, as evaluate
        outcome.test_loss, outcome.test_accuracy = test.loss, test.accuracy
    info.update(test_weights=outcome.test_weights)
    info[CHECKPOINT_DIGESTS_KEY] = checkpoint_digests(run_dir)
    info.update(
        status="finished" if history.stop_reason is None else "stopped",
        stop_reason=history.stop_reason, epoch=trainer.epoch, step=trainer.step,
        best_epoch=report.best_epoch(history),
        test_loss=outcome.test_loss, test_accuracy=outcome.test_accuracy,
    )


def _share_scored_weights(model: nn.Module, chosen: str | None) -> str:
    """Under --distributed, give every rank the weights rank 0 scores (the best epoch's, which
    only rank 0 loaded from its checkpoint), so the shared test evaluation scores the same
    weights as ``evaluate``; ``chosen``: rank 0's description of them (None on the others).
    Returns that description on every rank."""
    chosen = gw.distributed.broadcast_json(chosen)
    for value in model.state_dict().values():  # parameters and buffers, sharing memory
        gw.distributed.broadcast(value, src=0)
    return chosen


def _write_figures(
    outcome: TrainOutcome, doctor: Doctor | None, model: nn.Module, data: PreparedData,
    info: dict[str, Any],
) -> None:
    """The learning curves and the HTML report (with run.json's ``info`` as what ran)."""
    history, run_dir = outcome.history, outcome.run_dir
    best = report.best_epoch(history)
    if len(history) == 0:
        outcome.missing.append(f"{CURVES_NAME} (no epoch finished)")
    else:
        plots.save_figure(plots.learning_curves_figure(history, best_epoch=best),
                          run_dir / CURVES_NAME)
    report.write_report(run_dir, history=history, doctor=doctor, model=model,
                        test_data=data.test, class_names=data.classes, run_info=info,
                        title=f"gradwise training report: {info.get('recipe', 'run')}")
