"""The training loop's events and the Callback base that receives them.

This module sits below everything that fires or receives events: the trainer
(:mod:`gradwise.train.trainer`) fires them, the callbacks (:mod:`gradwise.train.callbacks`,
:mod:`gradwise.train.tensorboard`, the run folder's callbacks in :mod:`gradwise.runs`) and the
doctor (:mod:`gradwise.doctor`) receive them. It imports neither side, so the arrows run one
way: trainer -> events <- callbacks, doctor. A callback reaches the run through
``self.trainer``, typed as :class:`TrainerView`, the Trainer's attributes and methods that a
callback may use (the :class:`~gradwise.train.trainer.Trainer` has all of them).

Events, in the order one epoch fires them::

    on_train_begin()
      on_epoch_begin(epoch)                      epoch: 0-based index
        on_batch_begin(step, logs)               step: 0-based index of this optimizer step;
                                                 logs: {"batch", "size"}
          on_after_backward(step)                gradients are in p.grad; nothing clipped or
                                                 applied yet (the doctor reads gradients here)
          on_after_step(step)                    the optimizer has updated the weights
        on_batch_end(step, logs)                 logs gain "loss" (this batch's loss)
        on_validation_end(epoch, logs)           logs: {"val_loss", "val_<metric>", ...}
      on_epoch_end(epoch, logs)                  logs: the epoch's History record
    on_train_end()

The trainer calls only the methods a callback overrides, so an idle callback costs nothing
per step.

State: a callback whose decisions depend on what it has seen (a best value, a patience count)
defines ``state_dict()`` (JSON data, NumPy arrays allowed) and ``load_state_dict(state)``; the
trainer saves it in every checkpoint and restores it on resume, after ``on_train_begin`` (see
:mod:`gradwise.train.resume`). Callbacks with ``saves_checkpoints = True`` (ModelCheckpoint)
get ``on_epoch_end`` after every other callback and the doctor, so the checkpoints they write
hold the epoch's final state of everything else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gradwise.train.history import History

__all__ = ["EVENTS", "Callback", "TrainerView"]

EVENTS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_batch_begin",
    "on_batch_end",
    "on_after_backward",
    "on_after_step",
    "on_validation_end",
)

class TrainerView(Protocol):
    """The Trainer as a callback sees it (``self.trainer``): what a callback may read, set
    and call. :class:`~gradwise.train.trainer.Trainer` is the one implementation; the Protocol
    lets callbacks, the doctor and :mod:`gradwise.train.resume` name that type without
    importing the trainer (which imports them).

    Attributes:
        model, loss_fn, optimizer, scheduler: the run's objects, as given to the Trainer
            (``model`` is wrapped in DistributedDataParallel under ``distributed=True``).
        scheduler_interval: ``"epoch"`` or ``"step"``.
        seed: the seed every Generator of the trainer derives from.
        step: optimizer steps taken; epoch: epochs completed (the index of the epoch in
            progress); batch_in_epoch, batches_per_epoch, epochs_target: the position in and
            the length of the epoch, and the ``epochs`` asked of ``fit``.
        history: the :class:`~gradwise.train.history.History` so far.
        stop_training, stop_reason, stop_resumable: whether, why and how the run will stop
            (set through :meth:`request_stop`).
        last_loss: the last batch's loss; last_grad_norm: its gradient norm before clipping
            (None without ``clip_grad_norm``).
        rng: the trainer's own Generator; resumed_at: ``(epoch, step)`` the last ``fit``
            resumed from, or None.
        doctor: the training doctor, or None; distributed: the distributed side, or None.
    """

    model: Any
    loss_fn: Any
    optimizer: Any
    scheduler: Any
    scheduler_interval: str
    seed: int
    step: int
    epoch: int
    batch_in_epoch: int
    batches_per_epoch: int
    epochs_target: int
    history: History
    stop_training: bool
    stop_reason: str | None
    stop_resumable: bool
    last_loss: float
    last_grad_norm: float | None
    rng: np.random.Generator
    resumed_at: tuple[int, int] | None
    doctor: Any
    distributed: Any

    def request_stop(self, reason: str = "stop requested", resumable: bool = False) -> None:
        """Stop at the next step boundary, saying why (``resumable``: paused, not over)."""
        ...

    def save_checkpoint(self, path: str | os.PathLike[str]) -> Path:
        """Write a checkpoint of the run as it stands to the directory ``path``."""
        ...

    def running_logs(self) -> dict[str, float]:
        """The epoch in progress so far: mean loss and metrics over the batches done."""
        ...


class Callback:
    """Base class with a no-op method for every event; override the ones you need."""

    # set by set_trainer before any event; None until then (not part of any event's contract)
    trainer: TrainerView = None  # type: ignore[assignment]
    saves_checkpoints = False
    """True for callbacks that write checkpoints at epoch end (they run after the others)."""

    def set_trainer(self, trainer: TrainerView) -> None:
        """Attach the Trainer whose events this callback receives (``self.trainer``); called by
        ``fit``.
        """
        self.trainer = trainer

    def on_train_begin(self) -> None:
        """Called once when ``fit`` starts, before the first epoch (also when resuming)."""
        pass

    def on_train_end(self) -> None:
        """Called once when ``fit`` ends: normally, on a stop request, or as an error escapes."""
        pass

    def on_epoch_begin(self, epoch: int) -> None:
        """Called before epoch ``epoch`` (0-based) draws its first batch."""
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """Called after epoch ``epoch`` (0-based) and its validation.

        Args:
            epoch: the epoch just finished.
            logs: that epoch's record: ``loss``, ``val_loss`` and each metric (``val_``-prefixed for
                validation), ``lr``, ``epoch_time``; a callback may add keys.
        """
        pass

    def on_batch_begin(self, step: int, logs: dict[str, Any]) -> None:
        """Called before the training step ``step`` (global, 0-based) with the batch's ``logs``."""
        pass

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        """Called after training step ``step``; ``logs["loss"]`` is that batch's loss (a float)."""
        pass

    def on_after_backward(self, step: int) -> None:
        """Called between ``loss.backward()`` and ``optimizer.step()``: gradients are in ``.grad``.
        """
        pass

    def on_after_step(self, step: int) -> None:
        """Called right after ``optimizer.step()`` of step ``step``: parameters hold their new
        values.
        """
        pass

    def on_validation_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """Called after the validation pass of epoch ``epoch`` with its ``val_*`` logs."""
        pass
