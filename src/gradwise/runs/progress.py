"""What a person sees while a run trains in a terminal: one bar at a time, never wider than the
terminal (at most 100 columns), cleared when its epoch ends so the epoch's summary line is the
only record of it. Off a terminal (a pipe, a log file, CI) the CLI shows no bars, only lines.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from tqdm import tqdm

from gradwise.train.callbacks import Callback

__all__ = ["MAX_COLUMNS", "EpochBar", "bar_columns", "progress_bar", "running_numbers"]

MAX_COLUMNS = 100
"""Bars never grow wider than this, however wide the terminal."""

_BAR_FORMAT = ("{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
               "[{elapsed}<{remaining}]{postfix}")


def bar_columns(file: IO[str] | None = None) -> int:
    """The width for a bar: the terminal's columns (80 when unknown), at most MAX_COLUMNS."""
    return min(MAX_COLUMNS, shutil.get_terminal_size((80, 24)).columns)


@contextmanager
def progress_bar(total: int, desc: str, file: IO[str] | None = None,
                 columns: int | None = None, disable: bool = False) -> Iterator[Any]:
    """A transient tqdm bar fitted to ``columns`` (default :func:`bar_columns`); closed and
    cleared on exit; ``disable`` gives a bar that shows nothing."""
    bar = tqdm(total=total, desc=desc, leave=False, ncols=columns or bar_columns(file),
               file=file if file is not None else sys.stderr, bar_format=_BAR_FORMAT,
               mininterval=0.25, disable=disable)
    try:
        yield bar
    finally:
        bar.close()


class EpochBar(Callback):
    """One transient bar per epoch with the running loss (and accuracy when measured).

    The bar is cleared at the epoch's end; the CLI prints the epoch's summary line instead, so
    nothing is shown twice.

    Args:
        file: where the bars go (default stderr).
        columns: the bar's width (default :func:`bar_columns`).
        refresh_seconds: how often the running numbers are recomputed.
    """

    def __init__(self, file: IO[str] | None = None, columns: int | None = None,
                 refresh_seconds: float = 0.25):
        self.file, self.columns, self.refresh_seconds = file, columns, refresh_seconds
        self._bar: Any = None
        self._last = 0.0

    def on_epoch_begin(self, epoch: int) -> None:
        """Open the epoch's bar (at the resumed position after a mid-epoch resume)."""
        trainer = self.trainer
        if trainer is None:
            return
        self._bar = tqdm(
            total=trainer.batches_per_epoch, initial=trainer.batch_in_epoch,
            desc=f"epoch {epoch + 1}/{trainer.epochs_target}", leave=False,
            ncols=self.columns or bar_columns(self.file), bar_format=_BAR_FORMAT,
            file=self.file if self.file is not None else sys.stderr,
            mininterval=self.refresh_seconds,
        )
        self._last = time.perf_counter()

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        """Advance the bar; refresh the running loss every ``refresh_seconds``."""
        if self._bar is None or self.trainer is None:
            return
        self._bar.update(1)
        now = time.perf_counter()
        if now - self._last >= self.refresh_seconds:
            self._last = now
            self._bar.set_postfix_str(running_numbers(self.trainer.running_logs()), refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """Clear the epoch's bar (its summary line follows)."""
        self._close()

    def on_train_end(self) -> None:
        """Clear a bar left open by a stop inside an epoch."""
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def running_numbers(logs: dict[str, Any]) -> str:
    """`` loss 0.4213 acc 87.1%``: the two numbers that fit beside a bar at 80 columns."""
    parts = []
    if isinstance(logs.get("loss"), float):
        parts.append(f"loss {logs['loss']:.4f}")
    if isinstance(logs.get("accuracy"), float):
        parts.append(f"acc {logs['accuracy']:.1%}")
    return " " + " ".join(parts) if parts else ""
