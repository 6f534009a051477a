"""Callbacks: the ones gradwise ships (early stopping, checkpoints, loggers, progress).

The events, their order and arguments, the :class:`Callback` base, what a callback may use of
the trainer (``self.trainer``: ``model``, ``optimizer``, ``step``, ``epoch``, ``history``,
``stop_training``, ``request_stop``, ``save_checkpoint`` ...) and how a stateful callback is
saved and resumed are in :mod:`gradwise.train.events`; ``Callback`` and ``EVENTS`` are
re-exported here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from gradwise._atomic import atomic_open
from gradwise.train.checkpoint import CheckpointError
from gradwise.train.events import EVENTS, Callback

__all__ = [
    "EVENTS",
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "EpochSummary",
    "JSONLinesLogger",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ProgressBar",
    "TerminateOnNaN",
    "format_epoch_summary",
]


def _resolve_mode(name: str, monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{name}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    higher_is_better = ("acc", "f1", "precision", "recall")
    return "max" if any(word in monitor for word in higher_is_better) else "min"


def _monitored_value(name: str, monitor: str, logs: dict[str, Any]) -> float:
    if monitor not in logs:
        hint = " (pass val_data to fit, or monitor 'loss')" if monitor.startswith("val_") else ""
        raise ValueError(
            f"{name}: monitored value {monitor!r} is not in the epoch logs{hint}; "
            f"available: {', '.join(sorted(logs))}"
        )
    return float(logs[monitor])


class _Improvement:
    """Tracks the best value of a monitored quantity under a mode and a min_delta."""

    def __init__(self, mode: str, min_delta: float):
        self.mode = mode
        self.min_delta = abs(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def load_best(self, owner: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ValueError(f"{owner}: saved best {value!r} is not a number")
        self.best = float(value)

    def improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop when a monitored value has not improved for ``patience`` epochs.

    Args:
        monitor: a key of the epoch logs, e.g. ``"val_loss"`` or ``"val_accuracy"``.
        patience: epochs without improvement before stopping.
        min_delta: the smallest change that counts as an improvement.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy/f1/precision/recall).
        restore_best_weights: when training ends (stopped or not), load the weights of the
            best epoch back into the model; not when the run is only paused
            (``request_stop(..., resumable=True)``: an interrupt to be resumed).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 3,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = float(min_delta)
        self.mode = _resolve_mode("EarlyStopping", monitor, mode)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self) -> None:
        self._tracker = _Improvement(self.mode, self.min_delta)
        self.wait = 0
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self._stop_reason: str | None = None
        self._best_weights: dict[str, np.ndarray] | None = None

    @property
    def best(self) -> float:
        """The best monitored value so far (inf for mode "min", -inf for "max" before the first
        epoch).
        """
        return self._tracker.best

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        value = _monitored_value("EarlyStopping", self.monitor, logs)
        if self._tracker.improved(value):
            self._tracker.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                state = self.trainer.model.state_dict()
                self._best_weights = {k: np.array(v, copy=True) for k, v in state.items()}
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            best = "none" if self.best_epoch is None else f"{self.best:.6g} at epoch "
            best += "" if self.best_epoch is None else str(self.best_epoch + 1)
            self._stop_reason = (
                f"early stopping: {self.monitor} did not improve for {self.wait} epochs "
                f"(best {best})"
            )
            self.trainer.request_stop(self._stop_reason)

    def on_train_end(self) -> None:
        if self.trainer.stop_resumable:  # paused, not over: training continues from here
            return
        if self._best_weights is not None and self.best_epoch != self.trainer.epoch - 1:
            self.trainer.model.load_state_dict(self._best_weights)

    def state_dict(self) -> dict[str, Any]:
        """Best value and epoch, epochs waited, the stop decision, the best weights if kept."""
        return {
            "best": self._tracker.best,
            "wait": self.wait,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "stop_reason": self._stop_reason,
            "best_weights": self._best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; a saved stop decision stops the resumed run again.

        Raises:
            ValueError / KeyError: a field is missing or out of range (named).
        """
        self._tracker.load_best("EarlyStopping", state["best"])
        self.wait = _optional_count("EarlyStopping", "wait", state["wait"], allow_none=False) or 0
        self.best_epoch = _optional_count("EarlyStopping", "best_epoch", state["best_epoch"])
        self.stopped_epoch = _optional_count("EarlyStopping", "stopped_epoch",
                                             state["stopped_epoch"])
        weights = state["best_weights"]
        if weights is not None and not isinstance(weights, dict):
            raise ValueError("EarlyStopping: saved best_weights is not a state dict")
        self._best_weights = weights
        reason = state["stop_reason"]
        self._stop_reason = reason if isinstance(reason, str) else None
        if self.stopped_epoch is not None and self.trainer is not None:
            self.trainer.request_stop(self._stop_reason or "early stopping")


def _optional_count(owner: str, name: str, value: Any, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise ValueError(f"{owner}: saved {name} {value!r} is not a count >= 0")
    return value


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss (or the validation loss) is NaN or infinite.

    The trainer already refuses to step on a non-finite loss; this callback makes the rule
    explicit and also watches ``val_loss``.
    """

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            self.trainer.request_stop(f"TerminateOnNaN: loss is {loss} at step {step}")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        loss = logs.get("val_loss")
        if loss is not None and not math.isfinite(loss):
            self.trainer.request_stop(f"TerminateOnNaN: val_loss is {loss} after epoch {epoch + 1}")


class LearningRateScheduler(Callback):
    """Set every parameter group's learning rate to ``schedule(epoch)`` at each epoch start.

    Args:
        schedule: a pure function of the 0-based epoch index returning the learning rate (pure,
            so a resumed run gets the same rates).
    """

    def __init__(self, schedule: Callable[[int], float]):
        if not callable(schedule):
            raise TypeError("LearningRateScheduler: schedule must be a function epoch -> lr")
        self.schedule = schedule

    def on_epoch_begin(self, epoch: int) -> None:
        lr = float(self.schedule(epoch))
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(
                f"LearningRateScheduler: schedule({epoch}) returned {lr}; a learning rate must "
                "be finite and >= 0"
            )
        for group in self.trainer.optimizer.param_groups:
            group["lr"] = lr


class ModelCheckpoint(Callback):
    """Save checkpoints during training (see :mod:`gradwise.train.checkpoint` for the format).

    Args:
        dirpath: the folder for the checkpoints. ``save_best_only=False`` writes
            ``dirpath/epoch-0003`` every ``every_n_epochs`` epochs; ``save_best_only=True``
            keeps one ``dirpath/best`` that is replaced whenever ``monitor`` improves.
        monitor, mode: what "best" means (as in :class:`EarlyStopping`).
        save_last: also keep ``dirpath/last``, replaced every epoch (what to resume from).

    A model whose weights are not finite is never saved: the callback warns and skips.
    Attributes ``best_path`` and ``last_path`` name the latest saves. The best value and
    epoch are part of :meth:`state_dict`, so a resumed run replaces ``best`` only when the
    uninterrupted run would have; ``last`` is written after ``best``, holding the new best.
    """

    saves_checkpoints = True

    def __init__(
        self,
        dirpath: str | os.PathLike[str],
        monitor: str = "val_loss",
        save_best_only: bool = False,
        every_n_epochs: int = 1,
        mode: str = "auto",
        save_last: bool = False,
    ):
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) or (
            every_n_epochs < 1
        ):
            raise ValueError(
                f"ModelCheckpoint: every_n_epochs must be an int >= 1, got {every_n_epochs!r}"
            )
        self.dirpath = Path(dirpath)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.every_n_epochs = every_n_epochs
        self.mode = _resolve_mode("ModelCheckpoint", monitor, mode)
        self.save_last = save_last
        self.best_path: Path | None = None
        self.last_path: Path | None = None
        self.best_epoch: int | None = None

    def on_train_begin(self) -> None:
        self._tracker = _Improvement(self.mode, 0.0)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if (epoch + 1) % self.every_n_epochs == 0:
            if not self.save_best_only:
                self._save(self.dirpath / f"epoch-{epoch + 1:04d}")
            else:
                self._save_if_best(epoch, logs)
        if self.save_last:
            self.last_path = self._save(self.dirpath / "last") or self.last_path

    def _save_if_best(self, epoch: int, logs: dict[str, Any]) -> None:
        value = _monitored_value("ModelCheckpoint", self.monitor, logs)
        if not self._tracker.improved(value):
            return
        previous = (self._tracker.best, self.best_epoch)
        # the new best goes into the state before the save, so best/ holds its own record
        self._tracker.best, self.best_epoch = value, epoch
        saved = self._save(self.dirpath / "best")
        if saved is None:
            self._tracker.best, self.best_epoch = previous
        else:
            self.best_path = saved

    def state_dict(self) -> dict[str, Any]:
        """The best monitored value and its epoch (paths follow from ``dirpath``)."""
        return {"best": self._tracker.best, "best_epoch": self.best_epoch,
                "saved_last": self.last_path is not None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`.

        Raises:
            ValueError / KeyError: a field is missing or not a number/count.
        """
        self._tracker.load_best("ModelCheckpoint", state["best"])
        self.best_epoch = _optional_count("ModelCheckpoint", "best_epoch", state["best_epoch"])
        self.best_path = None if self.best_epoch is None else self.dirpath / "best"
        if state.get("saved_last") and self.save_last:
            self.last_path = self.dirpath / "last"

    def _save(self, path: Path) -> Path | None:
        try:
            return self.trainer.save_checkpoint(path)
        except CheckpointError as error:
            warnings.warn(f"ModelCheckpoint: not saved: {error}", RuntimeWarning, stacklevel=2)
            return None


class _HistoryFileLogger(Callback):
    """Rewrites a file from the full history after every epoch, atomically.

    Rewriting (rather than appending) keeps the file right across resumed runs and new
    columns, and a crash never leaves a half-written line.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        with atomic_open(self.path, "w") as handle:
            handle.write(self.render(self.trainer.history.epochs))

    def render(self, records: list[dict[str, Any]]) -> str:
        raise NotImplementedError


class CSVLogger(_HistoryFileLogger):
    """Write the history as CSV, one row per epoch, columns as first seen."""

    def render(self, records: list[dict[str, Any]]) -> str:
        """The records as CSV text: a header with every key seen, one row per epoch, blanks where
        absent.
        """
        columns: dict[str, None] = {}
        for record in records:
            columns.update(dict.fromkeys(record))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue()


class JSONLinesLogger(_HistoryFileLogger):
    """Write the history as JSON Lines, one object per epoch (non-finite numbers as null)."""

    def render(self, records: list[dict[str, Any]]) -> str:
        """The records as JSON Lines: one object per epoch, non-finite numbers written as strings.
        """
        lines = []
        for record in records:
            clean = {
                key: None if isinstance(value, float) and not math.isfinite(value) else value
                for key, value in record.items()
            }
            lines.append(json.dumps(clean) + "\n")
        return "".join(lines)


# ---- progress output --------------------------------------------------------------------------
def _format_value(key: str, value: Any) -> str:
    if key == "lr":
        return f"{value:.3g}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


_SHORT_NAMES = {"accuracy": "acc", "val_accuracy": "val_acc"}


def format_epoch_summary(record: dict[str, Any], epochs: int | None = None,
                         width: int | None = None, start: int = 0) -> str:
    """One line for one epoch's History record, e.g.
    ``epoch 3/10  loss 0.4123  accuracy 0.8712  val_loss 0.4512  lr 0.001  2.31s  5123 samples/s``.

    Args:
        record: the epoch's logs (``epoch``, metrics, ``lr``, ``epoch_time``, ``samples``).
        epochs: the run's epoch count, shown as ``epoch 3/10``.
        width: the columns the line must fit (a terminal's width), or None for no limit. A
            longer line is made shorter step by step until it fits: ``accuracy`` is written
            ``acc``, then samples/s, the learning rate and the epoch time are left out, then
            whole metrics from the end, replaced by ``...``. The metrics are never cut
            mid-number; every value stays in the run's metrics.jsonl and history.
        start: skip the first ``start`` of those forms (0: the full line, 1: short names,
            ...): :class:`EpochSummary` picks it once per run, so the columns stay the same
            from one epoch to the next.
    """
    return _fitted(_summary_forms(record, epochs), width, start)


def _fitted(forms: list[str], width: int | None, start: int = 0) -> str:
    return next((form for form in forms[start:] if width is None or len(form) <= width),
                forms[-1])


def _fitting_form(forms: list[str], width: int) -> int:
    """The index of the first of ``forms`` that fits ``width`` (the last when none does)."""
    return next((i for i, form in enumerate(forms) if len(form) <= width), len(forms) - 1)


def _summary_forms(record: dict[str, Any], epochs: int | None) -> list[str]:
    """:func:`format_epoch_summary`'s line in every form, longest first, the last the bare
    ``epoch N/M``."""
    epoch = record.get("epoch", "?")
    head = f"epoch {epoch}/{epochs}" if epochs else f"epoch {epoch}"
    metrics: list[tuple[str, str]] = []
    learning_rate = None
    for key, value in record.items():
        if key in ("epoch", "epoch_time", "steps", "samples") or value is None:
            continue
        if key == "lr":
            learning_rate = f"lr {_format_value(key, value)}"
            continue
        metrics.append((key, _format_value(key, value)))
    timing: list[str] = []
    seconds = record.get("epoch_time")
    if seconds is not None:
        timing.append(f"{seconds:.2f}s")
        samples = record.get("samples")
        if samples and seconds > 0:
            timing.append(f"{samples / seconds:.0f} samples/s")

    def line(names: dict[str, str], lr: bool, times: int, kept: int | None = None) -> str:
        shown = metrics if kept is None else metrics[:kept]
        parts = [head, *(f"{names.get(key, key)} {text}" for key, text in shown)]
        if kept is not None and kept < len(metrics):
            parts.append("...")
        if lr and learning_rate is not None:
            parts.append(learning_rate)
        return "  ".join(parts + timing[:times])

    forms = [line({}, True, 2)]
    for names, lr, times in ((_SHORT_NAMES, True, 2), (_SHORT_NAMES, True, 1),
                             (_SHORT_NAMES, False, 1), (_SHORT_NAMES, False, 0)):
        forms.append(line(names, lr, times))
    forms += [line(_SHORT_NAMES, False, 0, kept) for kept in range(len(metrics) - 1, -1, -1)]
    return [*forms, head]


_WIDEST = {"lr": 1.23e-05, "epoch_time": 999.99, "samples": 99_999 * 999.99}
"""Values as wide as an epoch line's varying parts get (lr in ``.3g``: ``1.23e-05``; the
time and the samples per second), for choosing the line's form once."""


class EpochSummary(Callback):
    """Print one plain line per epoch (no bars, no carriage returns): logs, CI, the CLI.

    Args:
        print_fn: called with each line; defaults to printing to stdout.
        width: the columns each line must fit (a terminal's width; see
            :func:`format_epoch_summary`), or None for the full line.
    """

    def __init__(self, print_fn: Callable[[str], Any] | None = None, width: int | None = None):
        self.print_fn = print_fn or (lambda line: print(line, flush=True))
        self.width = width
        self._form: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        epochs = self.trainer.epochs_target
        if self.width is not None and self._form is None:
            # the columns are chosen once, for the widest values the lr, epoch time and
            # samples/s take, so a column (lr, say) never comes and goes between epochs
            widest = {key: (_WIDEST[key] if key in _WIDEST and logs[key] is not None
                            else value) for key, value in logs.items()}
            widest["epoch"] = epochs or logs.get("epoch")  # as many digits as the last
            self._form = _fitting_form(_summary_forms(widest, epochs), self.width)
        self.print_fn(format_epoch_summary(logs, epochs, self.width, self._form or 0))


class ProgressBar(Callback):
    """A tqdm bar per epoch showing the running loss, metrics and samples per second.

    Args:
        file: where the bars go (default stderr).
        refresh_seconds: how often the numbers on the bar are recomputed; between refreshes a
            batch costs one counter increment.
    """

    def __init__(self, file: IO[str] | None = None, refresh_seconds: float = 0.25):
        self.file = file
        self.refresh_seconds = refresh_seconds
        self._bar: Any = None

    def on_epoch_begin(self, epoch: int) -> None:
        from tqdm.auto import tqdm

        trainer = self.trainer
        epochs = trainer.epochs_target
        self._bar = tqdm(
            total=trainer.batches_per_epoch,
            initial=trainer.batch_in_epoch,
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="batch",
            file=self.file if self.file is not None else sys.stderr,
            leave=True,
            dynamic_ncols=True,
        )
        self._start = time.perf_counter()
        self._last_refresh = self._start
        self._samples = 0

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        self._samples += logs["size"]
        self._bar.update(1)
        now = time.perf_counter()
        if now - self._last_refresh >= self.refresh_seconds:
            self._last_refresh = now
            self._bar.set_postfix_str(self._postfix(self.trainer.running_logs(), now), False)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        shown = {k: v for k, v in logs.items() if k not in ("epoch", "epoch_time", "steps")}
        self._bar.set_postfix_str(self._postfix(shown, time.perf_counter()), False)
        self._close()

    def on_train_end(self) -> None:
        self._close()

    def _postfix(self, logs: dict[str, Any], now: float) -> str:
        parts = [
            f"{key} {_format_value(key, value)}"
            for key, value in logs.items()
            if key != "samples" and value is not None
        ]
        elapsed = now - self._start
        if elapsed > 0 and self._samples:
            parts.append(f"{self._samples / elapsed:.0f} samples/s")
        return "  ".join(parts)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
