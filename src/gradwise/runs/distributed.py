"""Running a training run as one rank of an MPI job: rank 0 writes, the others follow.

``gradwise train --distributed`` runs :func:`~gradwise.runs.training.train_run` on every rank.
Files (the run folder, run.json, the history, weights, figures) are rank 0's alone; these
helpers let the other ranks wait for rank 0's work and learn its result or its error, so no rank
reads a half-written file and no rank waits forever for one that failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradwise as gw
from gradwise.runs.layout import RunError

__all__ = ["is_writer", "on_rank_zero", "rank_zero_first"]


def is_writer(distributed: bool) -> bool:
    """Whether this process writes the run's files: always alone, rank 0 in an MPI job."""
    return not distributed or gw.distributed.init().rank == 0


def on_rank_zero(distributed: bool, work: Callable[[], Any]) -> Any:
    """Run ``work`` on rank 0 alone and hand its JSON result (or its RunError) to every rank.

    The broadcast doubles as a barrier: no rank goes on before rank 0 has finished writing.

    Raises:
        RunError: ``work`` raised it on rank 0 (raised on every rank, with its message).
    """
    if not distributed:
        return work()
    outcome: dict[str, Any] = {}
    if gw.distributed.get_rank() == 0:
        try:
            outcome = {"value": work()}
        except RunError as error:
            outcome = {"error": str(error)}
    outcome = gw.distributed.broadcast_json(outcome)
    if "error" in outcome:
        raise RunError(outcome["error"])
    return outcome["value"]


def rank_zero_first(distributed: bool, work: Callable[[], Any]) -> Any:
    """Run ``work`` on rank 0, then (if it succeeded) on the others: e.g. a download happens once.

    Raises:
        RunError: on the other ranks, when ``work`` failed on rank 0 (which raises its own error).
    """
    if not distributed:
        return work()
    if gw.distributed.get_rank() == 0:
        try:
            result = work()
        except Exception as error:
            gw.distributed.broadcast_json({"error": f"{type(error).__name__}: {error}"})
            raise
        gw.distributed.broadcast_json({})
        return result
    status = gw.distributed.broadcast_json(None)
    if "error" in status:
        raise RunError(f"rank 0 stopped: {status['error']}")
    return work()
