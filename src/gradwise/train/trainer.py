"""Trainer: the training loop, with events for callbacks, checkpoints and exact resume.

One step (:meth:`Trainer._train_step`) is: forward, loss, ``zero_grad``, ``backward``, (clip),
``optimizer.step``, (scheduler step). Callbacks see it through the events listed in
:mod:`gradwise.train.events`.

Determinism: all of the trainer's randomness (the shuffling of array data, ``trainer.rng``)
comes from Generators derived from ``seed``, so the same seed, model initialisation and data
give bitwise the same weights. A checkpoint stores every Generator state, the optimizer and
scheduler state, the position inside the epoch and every stateful callback's state (see
:mod:`gradwise.train.resume`), so ``fit(..., resume_from=path)`` after an interruption ends
with exactly the weights, history, best checkpoint and stop epoch of an uninterrupted run.

Example:
    >>> model = gw.nn.Sequential(gw.nn.Linear(2, 16, rng=0), gw.nn.ReLU(),
    ...                          gw.nn.Linear(16, 2, rng=1))
    >>> trainer = Trainer(model, gw.nn.CrossEntropyLoss(),
    ...                   gw.optim.Adam(model.parameters(), lr=1e-2), progress=False)
    >>> history = trainer.fit((x, y), val_data=(x_val, y_val), epochs=20)  # doctest: +SKIP
    >>> history["val_accuracy"][-1]                                         # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradwise.autograd.grad_mode import no_grad
from gradwise.autograd.tensor import Tensor, from_numpy
from gradwise.data.loader import ArrayDataset, DataLoader
from gradwise.nn.utils import clip_grad_norm_
from gradwise.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau
from gradwise.train.callbacks import EpochSummary, ProgressBar
from gradwise.train.checkpoint import (
    CheckpointData,
    CheckpointError,
    save_checkpoint,
    to_json_safe,
)
from gradwise.train.events import EVENTS, Callback
from gradwise.train.history import History
from gradwise.train.metrics import Metric, get_metric
from gradwise.train.resume import (
    TRAINER_STATE_VERSION,
    callback_states,
    load_callback_states,
    restore,
)

__all__ = ["DEFAULT_METRICS", "NonFiniteLossWarning", "Trainer", "set_default_doctor"]

DEFAULT_METRICS = ("accuracy",)
"""The default ``metrics``; dropped automatically when the loss is a regression loss."""

_REGRESSION_LOSSES = {"MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "mse_loss", "l1_loss"}
_PROBABILITY_LOSSES = {"BCELoss", "binary_cross_entropy"}  # outputs already went through sigmoid
_STEP_SCHEDULERS = (OneCycleLR,)

_default_doctor: Callable[[], Any] | None = None
"""What ``Trainer(..., doctor=True)`` calls to build its doctor (see set_default_doctor)."""


def set_default_doctor(factory: Callable[[], Any] | None) -> None:
    """Install what ``Trainer(..., doctor=True)`` builds: ``factory()``, a new doctor per
    Trainer (None uninstalls it).

    The doctor sits above the training loop (STYLE.md: train <- doctor; it watches through
    the callback events), so the trainer does not import it. :mod:`gradwise.doctor` installs
    its ``Doctor`` here when it is imported, and ``import gradwise`` imports it, so every
    program that has a Trainer has it installed.

    Raises:
        TypeError: ``factory`` is neither callable nor None.
    """
    global _default_doctor
    if factory is not None and not callable(factory):
        raise TypeError(
            f"set_default_doctor: factory must be callable (e.g. the Doctor class) or None, "
            f"got {type(factory).__name__}"
        )
    _default_doctor = factory


class NonFiniteLossWarning(RuntimeWarning):
    """Training stopped because the loss became NaN or infinite."""


class _EpochTotals:
    """Running sums for the epoch in progress (resumable: part of a mid-epoch checkpoint)."""

    def __init__(self, metrics: list[Metric]):
        self.metrics = metrics
        self.loss_sum = 0.0
        self.samples = 0
        self.batches = 0
        self.seconds = 0.0  # time spent in this epoch before the current fit() call resumed it

    def loss(self) -> float:
        return self.loss_sum / self.samples if self.samples else math.nan

    def logs(self) -> dict[str, float]:
        logs = {"loss": self.loss()}
        for metric in self.metrics:
            logs[metric.name] = metric.compute()
        return logs

    def state_dict(self, elapsed: float) -> dict[str, Any]:
        return {
            "loss_sum": self.loss_sum,
            "samples": self.samples,
            "batches": self.batches,
            "seconds": self.seconds + elapsed,
            "metrics": {metric.name: metric.state_dict() for metric in self.metrics},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loss_sum = float(state["loss_sum"])
        self.samples = int(state["samples"])
        self.batches = int(state["batches"])
        self.seconds = float(state["seconds"])
        saved = state["metrics"]
        for metric in self.metrics:
            if metric.name not in saved:
                raise CheckpointError(
                    f"resume: the checkpoint has no running state for metric {metric.name!r} "
                    f"(it has {sorted(saved)}); use the same metrics as the interrupted run"
                )
            metric.load_state_dict(saved[metric.name])


class Trainer:
    """Fit a model with an optimizer, report metrics, call callbacks, checkpoint and resume.

    Args:
        model: a ``gw.nn.Module`` (anything callable on a Tensor with ``parameters()``,
            ``train()``, ``eval()``, ``state_dict()``, ``load_state_dict()``).
        loss_fn: ``loss_fn(output, target) -> scalar Tensor``, e.g. ``gw.nn.CrossEntropyLoss()``.
        optimizer: a ``gw.optim`` optimizer over the model's parameters.
        scheduler: an optional ``gw.optim.lr_scheduler`` schedule. Stepped once per epoch, or
            once per batch for OneCycleLR (see ``scheduler_interval``); ReduceLROnPlateau is
            stepped with the validation loss (the training loss without validation data).
        metrics: names (``"accuracy"``, ``"top5_accuracy"``, ``"precision"``, ``"recall"``,
            ``"f1"``), :class:`~gradwise.train.metrics.Metric` objects, or functions
            ``fn(output, target) -> float``. The default ``("accuracy",)`` is dropped for
            regression losses (MSE, L1).
        callbacks: :class:`~gradwise.train.events.Callback` objects, called in order.
        clip_grad_norm: clip the gradients' total 2-norm to this value before each step.
        seed: seeds every Generator the trainer uses (the shuffling of array data,
            ``trainer.rng``).
        progress: ``True`` for a tqdm bar per epoch, ``"lines"`` for one plain line per
            epoch on stdout, ``False`` for silence.
        doctor: a training doctor (any object with the callback interface), ``True`` for a
            new ``gradwise.doctor.Doctor()`` (installed by :func:`set_default_doctor`), or
            None. It runs after the other callbacks and is reachable as ``trainer.doctor``.
        scheduler_interval: ``"epoch"`` or ``"step"``; None chooses ``"step"`` for OneCycleLR
            and ``"epoch"`` otherwise.
        distributed: train data-parallel across the ranks of an MPI job (``mpiexec -n N``):
            the model is wrapped in ``DistributedDataParallel``, the data sharded, metrics
            summed over ranks, and only rank 0 prints and writes checkpoints. See
            :mod:`gradwise.train.distributed` and docs/DISTRIBUTED.md.

    Attributes callbacks may read (all of :class:`~gradwise.train.events.TrainerView`):
    ``model``, ``optimizer``, ``scheduler``, ``step`` (optimizer steps taken), ``epoch``
    (epochs completed; the index of the epoch in progress), ``batch_in_epoch``,
    ``batches_per_epoch``, ``epochs_target``, ``history``, ``stop_training``, ``stop_reason``,
    ``last_loss``, ``last_grad_norm`` (before clipping, when ``clip_grad_norm`` is set),
    ``rng``, ``resumed_at`` (``(epoch, step)`` the last ``fit`` resumed from, or None).
    """

    def __init__(
        self,
        model: Any,
        loss_fn: Any,
        optimizer: Any,
        scheduler: Any = None,
        metrics: Sequence[Any] = DEFAULT_METRICS,
        callbacks: Iterable[Callback] = (),
        clip_grad_norm: float | None = None,
        seed: int = 0,
        progress: bool | str = True,
        doctor: Any = None,
        scheduler_interval: str | None = None,
        distributed: bool = False,
    ):
        for role, value in (("model", model), ("optimizer", optimizer),
                            ("scheduler", scheduler)):
            if isinstance(value, type):
                raise TypeError(
                    f"Trainer: {role} is the class {value.__name__}, not an instance; pass "
                    f"one, e.g. {value.__name__}(...)"
                )
        for attribute in ("parameters", "train", "eval", "state_dict", "load_state_dict"):
            if not hasattr(model, attribute) or not callable(model):
                raise TypeError(
                    f"Trainer: model must be a gw.nn.Module (callable, with {attribute}()); "
                    f"got {type(model).__name__}"
                )
        if not callable(loss_fn):
            raise TypeError(f"Trainer: loss_fn must be callable, got {type(loss_fn).__name__}")
        if isinstance(loss_fn, type):
            raise TypeError(
                f"Trainer: loss_fn is the class {loss_fn.__name__}, not a loss; pass an instance, "
                f"e.g. {loss_fn.__name__}()"
            )
        for attribute in ("step", "zero_grad", "param_groups"):
            if not hasattr(optimizer, attribute):
                raise TypeError(
                    f"Trainer: optimizer must be a gw.optim optimizer (with {attribute}); "
                    f"got {type(optimizer).__name__}"
                )
        if clip_grad_norm is not None and not (
            isinstance(clip_grad_norm, (int, float)) and clip_grad_norm > 0
        ):
            raise ValueError(
                f"Trainer: clip_grad_norm must be a positive number or None, got {clip_grad_norm!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"Trainer: seed must be a non-negative int, got {seed!r}")
        if progress not in (True, False, None, "bar", "lines"):
            raise ValueError(
                f"Trainer: progress must be True, False, 'bar' or 'lines', got {progress!r}"
            )
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_interval = self._resolve_interval(scheduler, scheduler_interval)
        self.clip_grad_norm = None if clip_grad_norm is None else float(clip_grad_norm)
        self.seed = int(seed)
        self.progress = progress
        self.callbacks: list[Callback] = list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"Trainer: callbacks must be Callback instances, got {type(callback).__name__}"
                )
        self.doctor = self._resolve_doctor(doctor)
        loss_name = _callable_name(loss_fn)
        self._binary_logits = loss_name not in _PROBABILITY_LOSSES
        if metrics is DEFAULT_METRICS and loss_name in _REGRESSION_LOSSES:
            metrics = ()
        if isinstance(metrics, str):
            metrics = (metrics,)
        self._metric_specs = list(metrics)
        names = [m.name for m in self._new_metrics()]  # validates the specs now
        if len(set(names)) != len(names):
            raise ValueError(f"Trainer: metric names must be unique, got {names}")
        self.metric_names = names

        self.history = History()
        self.rng = self._derived_generator(1)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.batches_per_epoch = 0
        self.epochs_target = 0
        self.stop_training = False
        self.stop_reason: str | None = None
        self.stop_resumable = False
        self.last_loss = math.nan
        self.last_grad_norm: float | None = None
        self._train_loader: Any = None
        self._epoch_start_loader_state: dict[str, Any] | None = None
        self._totals: _EpochTotals | None = None
        self._epoch_started_at = 0.0
        self._in_step = False
        self._data_fingerprint: dict[str, Any] | None = None
        self.resumed_at: tuple[int, int] | None = None
        self._pending_callback_states: tuple[dict[str, Any] | None, Any] | None = None
        self.distributed: Any = None
        if distributed:
            from gradwise.train.distributed import DistributedTraining

            self.distributed = DistributedTraining(self)

    # ---- public API ---------------------------------------------------------------------------
    def _check_optimizer_parameters(self) -> None:
        """Refuse an optimizer that updates tensors the model does not own: training would
        change nothing the model computes with, or change another model (ValueError)."""
        owned = {id(p) for p in self.model.parameters()}
        for index, group in enumerate(self.optimizer.param_groups):
            for position, parameter in enumerate(group.get("params", ())):
                if id(parameter) not in owned:
                    shape = tuple(getattr(parameter, "shape", ()))
                    raise ValueError(
                        f"Trainer.fit: the optimizer's param_groups[{index}] parameter "
                        f"{position} (shape {shape}) is not a parameter of the model "
                        f"({type(self.model).__name__}); build the optimizer from "
                        "model.parameters()"
                    )

    def fit(
        self,
        train_data: Any,
        val_data: Any = None,
        epochs: int = 1,
        batch_size: int = 32,
        shuffle: bool = True,
        resume_from: str | os.PathLike[str] | None = None,
    ) -> History:
        """Train for ``epochs`` epochs (in all, counting those done before a resume).

        Each call without ``resume_from`` starts a new run from the model's current weights:
        epoch and step counters at 0, a fresh History, the shuffling Generator re-seeded.
        To continue a run, checkpoint it and pass ``resume_from``.

        Args:
            train_data: ``(x, y)`` arrays or Tensors, an ``ArrayDataset``, or a ``DataLoader``
                (then ``batch_size`` and ``shuffle`` are the loader's own).
            val_data: the same kinds, evaluated after every epoch (keys ``val_loss``,
                ``val_<metric>``).
            epochs: the total number of epochs; a resumed run continues up to this number.
            batch_size: samples per step, a positive int.
            shuffle: reshuffle the training data every epoch (from the trainer's seed).
            resume_from: a checkpoint directory written by :meth:`save_checkpoint` or
                ``ModelCheckpoint``; weights, optimizer, scheduler, RNG states, history and the
                position in the epoch are restored before training continues.

        Returns:
            The :class:`History`. ``history.stop_reason`` says why training ended early
            (early stopping, a non-finite loss, :meth:`request_stop`), or is None.

        Raises:
            ValueError / TypeError: bad arguments or data (named in the message).
            CheckpointError: ``resume_from`` is missing, damaged or does not fit this run.
        """
        _check_positive_int("fit", "epochs", epochs)
        _check_positive_int("fit", "batch_size", batch_size)
        self._check_optimizer_parameters()
        train_loader = self._make_loader(train_data, "train_data", batch_size, shuffle, True)
        val_loader = None
        if val_data is not None:
            val_loader = self._make_loader(val_data, "val_data", batch_size, False, False)
        self._train_loader = train_loader
        self.batches_per_epoch = len(train_loader)
        self.epochs_target = int(epochs)
        self._data_fingerprint = {
            "samples": _dataset_length(train_loader),
            "batch_size": int(getattr(train_loader, "batch_size", batch_size)),
            "batches_per_epoch": self.batches_per_epoch,
        }
        self.history = History()
        self.rng = self._derived_generator(1)
        self.step = self.epoch = self.batch_in_epoch = 0
        self._totals = None
        self.resumed_at = None
        self._pending_callback_states = None
        resumed_totals: dict[str, Any] | None = None
        if self.distributed is not None:
            self._data_fingerprint = self.distributed.fingerprint(train_loader, batch_size)
        if resume_from is not None:
            restored = restore(self, resume_from, train_loader, self._data_fingerprint)
            resumed_totals = restored.epoch_totals
            self._pending_callback_states = (restored.callback_states, restored.where)
            self.resumed_at = (self.epoch, self.step)
        self.stop_training = False
        self.stop_reason = None
        self.stop_resumable = False

        handlers = self._handlers()
        for handler in handlers["on_train_begin"]:
            handler()
        if self._pending_callback_states is not None:
            # after on_train_begin, which resets the callbacks; a callback may stop here
            saved, where = self._pending_callback_states
            self._pending_callback_states = None
            load_callback_states(self.callbacks, self.doctor, saved, where)
        try:
            while self.epoch < self.epochs_target and not self.stop_training:
                self._run_epoch(train_loader, val_loader, handlers, resumed_totals)
                resumed_totals = None
        finally:
            for handler in handlers["on_train_end"]:
                handler()
        if self.distributed is not None:
            self.distributed.share_doctor(self)
        self.history.stop_reason = self.stop_reason
        return self.history

    def evaluate(self, data: Any, batch_size: int = 256) -> dict[str, float]:
        """Mean loss and metrics over ``data`` in evaluation mode, without gradients.

        Args:
            data: ``(x, y)`` arrays or Tensors, an ``ArrayDataset`` or a ``DataLoader``.

        Returns:
            ``{"loss": ..., "<metric>": ...}``.
        """
        _check_positive_int("evaluate", "batch_size", batch_size)
        loader = self._make_loader(data, "data", batch_size, False, False)
        return self._evaluate_loader(loader)

    def predict(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """The model's outputs for ``x`` in evaluation mode, batched, without gradients.

        Args:
            x: an array or Tensor of inputs (first axis: samples), or a DataLoader whose first
                field is the input.

        Shape:
            x: (N, ...) -> (N, ...) whatever the model outputs per sample.
        """
        _check_positive_int("predict", "batch_size", batch_size)
        if isinstance(x, DataLoader):
            loader = x
        else:
            array = _as_array("predict", "x", x)
            if len(array) == 0:
                raise ValueError("predict: x is empty")
            loader = DataLoader((_float32(array),), batch_size=batch_size)
        outputs = []
        with _eval_mode(self.model), no_grad():
            for batch in loader:
                outputs.append(np.asarray(self.model(Tensor(batch[0]))._data))
        return np.concatenate(outputs)

    def request_stop(self, reason: str = "stop requested", resumable: bool = False) -> None:
        """Stop at the next step boundary (e.g. from a SIGINT handler or a callback).

        After :meth:`fit` returns, :meth:`save_checkpoint` captures the exact position, and
        ``fit(..., resume_from=...)`` continues from the next step.

        Args:
            resumable: the run is paused, not over (an interrupt that will be resumed):
                callbacks then skip what ends a run, e.g. EarlyStopping does not load its
                best weights into the model, so the checkpoint holds the weights training
                will continue from. Read it as ``trainer.stop_resumable``.
        """
        self.stop_training = True
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stop_resumable = bool(resumable)

    def save_checkpoint(self, path: str | os.PathLike[str]) -> Path:
        """Write a checkpoint of the run as it stands to the directory ``path``.

        Call it between steps: from ``on_batch_end`` / ``on_epoch_end`` or after :meth:`fit`
        returns (also after a mid-epoch stop). Returns the directory.

        Raises:
            CheckpointError: the weights are not finite (nothing is written), or the call came
                from inside a step.
        """
        if self._in_step:
            raise CheckpointError(
                "save_checkpoint: called in the middle of a step; call it from on_batch_end, "
                "on_epoch_end or after fit() returns"
            )
        scheduler_state = None
        if self.scheduler is not None:
            scheduler_state = {
                "class": type(self.scheduler).__name__,
                "state": self.scheduler.state_dict(),
            }
        data = CheckpointData(
            model_state=dict(self.model.state_dict()),
            model_class=type(self.model).__name__,
            optimizer_state=self.optimizer.state_dict(),
            scheduler_state=scheduler_state,
            trainer_state=self._trainer_state(),
            history=self.history.to_dict(),
            callbacks_state=callback_states(self.callbacks, self.doctor),
        )
        if self.distributed is not None:
            return self.distributed.save_checkpoint(path, data)
        return save_checkpoint(path, data)

    def running_logs(self) -> dict[str, float]:
        """The epoch in progress so far: mean loss and metrics over the batches done."""
        return {} if self._totals is None else self._totals.logs()

    # ---- the loop -----------------------------------------------------------------------------
    def _run_epoch(
        self,
        loader: Any,
        val_loader: Any,
        handlers: dict[str, list[Any]],
        resumed_totals: dict[str, Any] | None,
    ) -> None:
        epoch = self.epoch
        totals = _EpochTotals(self._new_metrics())
        if resumed_totals is not None:
            totals.load_state_dict(resumed_totals)
        self._totals = totals
        self._epoch_started_at = time.perf_counter()
        if self.distributed is not None:
            self.distributed.set_epoch(loader, epoch)
        if hasattr(loader, "state_dict"):
            self._epoch_start_loader_state = loader.state_dict()
        self.model.train()
        for handler in handlers["on_epoch_begin"]:
            handler(epoch)

        batch_begin, batch_end = handlers["on_batch_begin"], handlers["on_batch_end"]
        for batch in loader:
            x, y = _unpack(batch)
            step = self.step
            logs: dict[str, Any] = {"batch": self.batch_in_epoch, "size": len(x)}
            for handler in batch_begin:
                handler(step, logs)
            logs["loss"] = self._train_step(x, y, totals, handlers)
            for handler in batch_end:
                handler(step, logs)
            if self.distributed is not None:
                self.distributed.agree_stop(self)
            if self.stop_training:
                break
        if self.stop_training and self.batch_in_epoch < self.batches_per_epoch:
            return  # stopped mid-epoch: the epoch is not recorded; a resume finishes it
        self._end_epoch(epoch, totals, val_loader, handlers)

    def _train_step(
        self, x: np.ndarray, y: np.ndarray, totals: _EpochTotals, handlers: dict[str, list[Any]]
    ) -> float:
        """One optimizer step on the batch ``(x, y)``; returns the batch loss.

        Forward, loss, ``zero_grad``, ``backward``, (clip), ``optimizer.step``, (a per-step
        scheduler step), then the running totals. A non-finite loss stops training before the
        update (nothing is applied, nothing counted).
        """
        step = self.step
        self._in_step = True
        # the loader's batches are fresh arrays: wrap them without another copy
        target = from_numpy(y)
        output = self.model(from_numpy(x))
        loss = self.loss_fn(output, target)
        loss_value = _scalar_loss(loss)
        if self.distributed is not None:  # every rank sees the same loss, so all stop together
            loss_value = self.distributed.agree_loss(loss_value)
        self.last_loss = loss_value
        if not math.isfinite(loss_value):
            self._in_step = False
            self._stop_on_non_finite(loss_value, self.epoch, step)
            return loss_value
        self.optimizer.zero_grad()
        loss.backward()
        for handler in handlers["on_after_backward"]:
            handler(step)
        if self.clip_grad_norm is not None:
            parameters = [p for p in self.model.parameters() if p.requires_grad]
            self.last_grad_norm = clip_grad_norm_(parameters, self.clip_grad_norm)
        self.optimizer.step()
        self.step += 1
        for handler in handlers["on_after_step"]:
            handler(step)
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
        size = len(x)
        totals.loss_sum += loss_value * size
        totals.samples += size
        totals.batches += 1
        for metric in totals.metrics:
            metric.update(output._data, y)
        self.batch_in_epoch += 1
        self._in_step = False
        return loss_value

    def _end_epoch(
        self,
        epoch: int,
        totals: _EpochTotals,
        val_loader: Any,
        handlers: dict[str, list[Any]],
    ) -> None:
        if self.distributed is not None:
            self.distributed.reduce_totals(totals)
        record: dict[str, Any] = {"epoch": epoch + 1, **totals.logs()}
        if val_loader is not None:
            val_logs = {f"val_{k}": v for k, v in self._evaluate_loader(val_loader).items()}
            record.update(val_logs)
            for handler in handlers["on_validation_end"]:
                handler(epoch, dict(val_logs))
            if not math.isfinite(val_logs["val_loss"]):
                self._stop_on_non_finite(val_logs["val_loss"], epoch, self.step, "val_loss")
        record["lr"] = float(self.optimizer.param_groups[0]["lr"])
        record["epoch_time"] = totals.seconds + time.perf_counter() - self._epoch_started_at
        record["steps"] = totals.batches
        record["samples"] = totals.samples
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            if isinstance(self.scheduler, ReduceLROnPlateau):
                monitored = record.get("val_loss", record["loss"])
                if math.isfinite(monitored):
                    self.scheduler.step(monitored)
            else:
                self.scheduler.step()
        self.epoch = epoch + 1
        self.batch_in_epoch = 0
        self._totals = None
        self.history.append(record)
        for handler in handlers["on_epoch_end"]:
            handler(epoch, dict(record))

    def _evaluate_loader(self, loader: Any) -> dict[str, float]:
        metrics = self._new_metrics()
        loss_sum, samples = 0.0, 0
        with _eval_mode(self.model), no_grad():
            for batch in loader:
                x, y = _unpack(batch)
                output = self.model(Tensor(x))
                loss_sum += _scalar_loss(self.loss_fn(output, Tensor(y))) * len(x)
                samples += len(x)
                for metric in metrics:
                    metric.update(output._data, y)
        if self.distributed is not None:
            loss_sum, samples = self.distributed.reduce_evaluation(
                loader, loss_sum, samples, metrics
            )
        logs = {"loss": loss_sum / samples}
        for metric in metrics:
            logs[metric.name] = metric.compute()
        return logs

    def _stop_on_non_finite(self, value: float, epoch: int, step: int, what: str = "loss") -> None:
        message = (
            f"training stopped: {what} is {value} at epoch {epoch + 1}, step {step} "
            f"(batch {self.batch_in_epoch} of the epoch); the last update was not applied. "
            "Try a lower learning rate, gradient clipping (clip_grad_norm=1.0), or inputs "
            "scaled to about [-1, 1]"
        )
        self.stop_training = True
        self.stop_reason = message
        warnings.warn(message, NonFiniteLossWarning, stacklevel=3)

    # ---- callbacks ----------------------------------------------------------------------------
    def _handlers(self) -> dict[str, list[Any]]:
        """For each event, the bound methods of the callbacks that override it, in order."""
        callbacks = list(self.callbacks)
        if self.progress in (True, "bar"):
            callbacks.append(ProgressBar())
        elif self.progress == "lines":
            callbacks.append(EpochSummary())
        if self.doctor is not None:
            callbacks.append(self.doctor)
        for callback in callbacks:
            setter = getattr(callback, "set_trainer", None)
            if setter is not None:
                setter(self)
            else:
                callback.trainer = self
        handlers: dict[str, list[Any]] = {event: [] for event in EVENTS}
        # checkpoint writers end each epoch last, so what they save includes every other
        # callback's (and the doctor's) state for that epoch
        savers_last = sorted(callbacks, key=lambda c: bool(getattr(c, "saves_checkpoints", 0)))
        for callback in savers_last:
            for event in EVENTS:
                method = getattr(type(callback), event, None)
                if method is None or method is getattr(Callback, event):
                    continue
                handlers[event].append(getattr(callback, event))
        return handlers

    def _resolve_doctor(self, doctor: Any) -> Any:
        if doctor is None or doctor is False:
            return None
        if doctor is True:
            # the doctor layer sits above train: gradwise.doctor installs its Doctor here
            if _default_doctor is None:
                raise ValueError(
                    "Trainer: doctor=True builds the default doctor, but none is installed "
                    "(gradwise.doctor installs Doctor when imported; set_default_doctor(None) "
                    "removed it); pass a doctor object, e.g. doctor=gradwise.doctor.Doctor()"
                )
            return _default_doctor()
        if not any(hasattr(doctor, event) for event in EVENTS):
            raise TypeError(
                f"Trainer: doctor must have callback methods (on_after_backward, ...), got "
                f"{type(doctor).__name__}"
            )
        return doctor

    # ---- data ---------------------------------------------------------------------------------
    def _make_loader(
        self, data: Any, name: str, batch_size: int, shuffle: bool, training: bool
    ) -> Any:
        if isinstance(data, DataLoader):
            if training:
                _check_dataset_finite(name, data.dataset)
            return data
        if isinstance(data, ArrayDataset):
            arrays = data.arrays
        elif isinstance(data, (tuple, list)):
            arrays = tuple(data)
        else:
            raise TypeError(
                f"{name}: expected (x, y) arrays or Tensors, an ArrayDataset or a DataLoader; "
                f"got {type(data).__name__}"
            )
        if len(arrays) != 2:
            raise ValueError(f"{name}: expected two arrays (x, y), got {len(arrays)}")
        x = _float32(_as_array(name, "x", arrays[0]))
        y = _as_array(name, "y", arrays[1])
        if y.dtype == np.float64:
            y = y.astype(np.float32)
        if len(x) == 0:
            raise ValueError(f"{name}: the data set is empty (x has shape {x.shape})")
        if len(x) != len(y):
            raise ValueError(
                f"{name}: x and y have different numbers of samples: x {x.shape}, y {y.shape}"
            )
        if training or name == "val_data":
            _check_dataset_finite(name, ArrayDataset(x, y))
        if self.distributed is not None:
            return self.distributed.make_loader(x, y, batch_size, shuffle, training, self.seed)
        rng = self._derived_generator(0) if training else None
        return DataLoader((x, y), batch_size=batch_size, shuffle=shuffle and training, seed=rng)

    def _derived_generator(self, index: int) -> np.random.Generator:
        """Generator ``index`` of those spawned from ``seed``: 0 shuffles data, 1 is trainer.rng."""
        children = np.random.SeedSequence(self.seed).spawn(2)
        return np.random.default_rng(children[index])

    def _new_metrics(self) -> list[Metric]:
        metrics = []
        for spec in self._metric_specs:
            if isinstance(spec, Metric):
                metric = copy.deepcopy(spec)
                metric.reset()
            else:
                metric = get_metric(spec, logits=self._binary_logits)
            metrics.append(metric)
        return metrics

    @staticmethod
    def _resolve_interval(scheduler: Any, interval: str | None) -> str:
        if interval is None:
            return "step" if isinstance(scheduler, _STEP_SCHEDULERS) else "epoch"
        if interval not in ("epoch", "step"):
            raise ValueError(
                f"Trainer: scheduler_interval must be 'epoch' or 'step', got {interval!r}"
            )
        if interval == "step" and isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError("Trainer: ReduceLROnPlateau is stepped per epoch with a metric")
        return interval

    # ---- checkpoint state ---------------------------------------------------------------------
    def _trainer_state(self) -> dict[str, Any]:
        loader = self._train_loader
        loader_state = None
        mid_epoch = self._totals is not None and self.batch_in_epoch > 0
        if loader is not None and hasattr(loader, "state_dict"):
            if mid_epoch and self._epoch_start_loader_state is not None:
                # the epoch's permutation is redrawn from its start state, then batches skipped
                loader_state = dict(self._epoch_start_loader_state)
                loader_state["batch_index"] = self.batch_in_epoch
            else:
                loader_state = loader.state_dict()
        totals = None
        if mid_epoch and self._totals is not None:
            totals = self._totals.state_dict(time.perf_counter() - self._epoch_started_at)
        model_rng = self.model.rng_state() if hasattr(self.model, "rng_state") else None
        return to_json_safe(
            {
                "version": TRAINER_STATE_VERSION,
                "seed": self.seed,
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch if mid_epoch else 0,
                "step": self.step,
                "optimizer_class": type(self.optimizer).__name__,
                "metrics": self.metric_names,
                "data": self._data_fingerprint,
                "rng_state": self.rng.bit_generator.state,
                "loader_state": loader_state,
                "model_rng_state": model_rng,
                "epoch_totals": totals,
            }
        )


# ---- helpers ----------------------------------------------------------------------------------
def _callable_name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _check_positive_int(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner}: {name} must be a positive int, got {value!r}")
    if value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value}")


def _as_array(owner: str, name: str, value: Any) -> np.ndarray:
    array = value._data if isinstance(value, Tensor) else np.asarray(value)
    if array.ndim == 0:
        raise ValueError(f"{owner}: {name} is a scalar; it needs a first (sample) axis")
    if array.dtype == object:
        raise TypeError(f"{owner}: {name} must be numeric, got an object array")
    return array


def _float32(array: np.ndarray) -> np.ndarray:
    """Float64 inputs become float32 once, up front (training runs in float32)."""
    return array.astype(np.float32) if array.dtype == np.float64 else array


def _check_dataset_finite(name: str, dataset: Any) -> None:
    """Reject NaN/inf in array data (once per fit; other data sets are not scanned)."""
    arrays = getattr(dataset, "arrays", None)
    if arrays is None:
        return
    for label, array in zip(("x", "y", "field 2", "field 3"), arrays, strict=False):
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            bad = np.argwhere(~np.isfinite(array))
            count = len(bad)
            raise ValueError(
                f"{name}: {label} has {count} non-finite value(s) (NaN or inf), the first at "
                f"index {tuple(int(i) for i in bad[0])}; clean or impute the data first"
            )


def _unpack(batch: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        size = len(batch) if isinstance(batch, (tuple, list)) else type(batch).__name__
        raise ValueError(f"Trainer: each batch must be (x, y), got {size} fields")
    return batch[0], batch[1]


def _scalar_loss(loss: Any) -> float:
    data = getattr(loss, "_data", loss)
    if np.size(data) != 1:
        raise ValueError(
            f"Trainer: loss_fn must return a scalar, got shape {np.shape(data)} "
            "(use reduction='mean')"
        )
    return float(np.asarray(data).reshape(()))


def _dataset_length(loader: Any) -> int | None:
    dataset = getattr(loader, "dataset", None)
    return len(dataset) if dataset is not None else None


class _eval_mode:  # noqa: N801 - used like a function: ``with _eval_mode(model):``
    """Put a model in eval mode for a block and restore its previous mode afterwards."""

    def __init__(self, model: Any):
        self.model = model

    def __enter__(self) -> None:
        self.was_training = getattr(self.model, "training", True)
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)
