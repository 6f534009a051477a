"""What ``Trainer(distributed=True)`` adds: sharded data, agreed decisions, rank-0 files.

The Trainer calls these hooks at a handful of points; everything distributed lives here:

- the model is wrapped in :class:`~gradwise.nn.parallel.DistributedDataParallel`;
- training data go through a :class:`~gradwise.data.DistributedSampler` (seeded with the
  trainer's seed, reshuffled per epoch), validation data are split ``rank::world_size``;
- every step the ranks agree on the loss (its mean over ranks: a NaN anywhere stops every rank
  before backward) and, at the batch's end, on stopping (one rank's early stopping, Ctrl-C or
  non-finite loss stops them all after the same step);
- epoch metrics and evaluations are summed over ranks, so every rank records the same history;
- only rank 0 prints (progress bars, epoch lines, file loggers) and writes checkpoints; the
  others wait for it (the write's outcome is broadcast, so a failed write fails every rank and
  no rank reads a half-written checkpoint);
- a checkpoint stores every rank's dropout Generator; a resume with the same number of ranks
  continues each rank exactly, one with a different number redeals the rest of the epoch to
  the new ranks (see :class:`~gradwise.data.DistributedSampler`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from gradwise import distributed as dist
from gradwise.data.loader import DataLoader
from gradwise.data.sampler import DistributedSampler
from gradwise.nn.parallel import DistributedDataParallel
from gradwise.train.callbacks import CSVLogger, EpochSummary, JSONLinesLogger, ProgressBar
from gradwise.train.checkpoint import CheckpointData, CheckpointError, save_checkpoint
from gradwise.train.tensorboard import TensorBoardLogger

__all__ = ["DistributedTraining"]

_RANK0_ONLY = (CSVLogger, JSONLinesLogger, ProgressBar, EpochSummary, TensorBoardLogger)
"""Callbacks that print or write files: kept on rank 0 only."""


class DistributedTraining:
    """The Trainer's distributed side (created by ``Trainer(distributed=True)``).

    Args:
        trainer: the Trainer being built; its model is wrapped, its callbacks filtered.
        bucket_cap_mb: passed to DistributedDataParallel.
    """

    def __init__(self, trainer: Any, bucket_cap_mb: float = 25.0) -> None:
        group = dist.init()
        self.rank = group.rank
        self.world_size = group.world_size
        if not isinstance(trainer.model, DistributedDataParallel):
            trainer.model = DistributedDataParallel(trainer.model, bucket_cap_mb=bucket_cap_mb)
        if self.rank != 0:
            trainer.progress = False
            trainer.doctor = None  # rank 0 watches; its findings arrive after fit (share_doctor)
            trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, _RANK0_ONLY)]

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that prints, checkpoints and writes reports."""
        return self.rank == 0

    # ---- data ---------------------------------------------------------------------------------
    def make_loader(
        self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, training: bool,
        seed: int,
    ) -> DataLoader:
        """A training loader over this rank's shard, or this rank's slice of evaluation data."""
        if training:
            sampler = DistributedSampler(len(x), self.world_size, self.rank, shuffle, seed)
            return DataLoader((x, y), batch_size=batch_size, sampler=sampler)
        if len(x) < self.world_size:  # too few to split: every rank evaluates everything
            return DataLoader((x, y), batch_size=batch_size)
        loader = DataLoader((x[self.rank :: self.world_size], y[self.rank :: self.world_size]),
                            batch_size=batch_size)
        loader.sharded_across_ranks = True
        return loader

    def fingerprint(self, loader: Any, batch_size: int) -> dict[str, Any]:
        """The data fingerprint a checkpoint must match: the same at any number of ranks."""
        sampler = getattr(loader, "sampler", None)
        if not isinstance(sampler, DistributedSampler):
            if self.world_size > 1:
                raise ValueError(
                    "Trainer(distributed=True): the training DataLoader has no "
                    "DistributedSampler, so every rank would train on all the data; pass "
                    "DataLoader(data, sampler=DistributedSampler(data)) or the arrays"
                )
            return {"samples": len(loader.dataset), "batch_size": int(batch_size),
                    "distributed": True}
        return {"samples": sampler.length, "batch_size": int(batch_size), "distributed": True}

    @staticmethod
    def set_epoch(loader: Any, epoch: int) -> None:
        """Tell ``loader``'s sampler the epoch (a DistributedSampler reshuffles by it); else do
        nothing.
        """
        sampler = getattr(loader, "sampler", None)
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    # ---- agreement ----------------------------------------------------------------------------
    def agree_loss(self, loss_value: float) -> float:
        """The mean of the ranks' losses (NaN if any rank's is): every rank stops together."""
        value = np.array([loss_value], dtype=np.float64)
        dist.all_reduce_array(value, dist.ReduceOp.SUM, check_shapes=False)
        return float(value[0] / self.world_size)

    def agree_stop(self, trainer: Any) -> None:
        """If any rank wants to stop after this step, every rank stops, with that reason."""
        flag = np.array([1.0 if trainer.stop_training else 0.0])
        dist.all_reduce_array(flag, dist.ReduceOp.MAX, check_shapes=False)
        if flag[0] == 0:
            return
        reasons = dist.all_gather_json(trainer.stop_reason)
        reason = next((r for r in reasons if r), "stop requested by another rank")
        trainer.stop_training = True
        trainer.stop_reason = reason

    def share_doctor(self, trainer: Any) -> None:
        """After fit: every rank gets rank 0's findings, so ``trainer.doctor.format_findings()``
        works on every rank (one small broadcast; the other ranks hold a read-only copy)."""
        report = None
        if self.is_main and trainer.doctor is not None and hasattr(trainer.doctor, "to_dict"):
            report = {"text": trainer.doctor.format_findings(overhead=False),
                      "state": _jsonable(trainer.doctor.to_dict())}
        report = dist.broadcast_json(report)
        if not self.is_main and report is not None:
            trainer.doctor = RankZeroFindings(report["text"], report["state"])

    # ---- metrics ------------------------------------------------------------------------------
    def reduce_totals(self, totals: Any) -> None:
        """Sum the epoch's loss, sample counts and metric states over the ranks, in place."""
        sums = np.array([totals.loss_sum, float(totals.samples)])
        dist.all_reduce_array(sums, dist.ReduceOp.SUM, check_shapes=False)
        totals.loss_sum, totals.samples = float(sums[0]), int(round(sums[1]))
        for metric in totals.metrics:
            metric.load_state_dict(self._summed_state(metric.state_dict()))

    def reduce_evaluation(
        self, loader: Any, loss_sum: float, samples: int, metrics: list[Any]
    ) -> tuple[float, int]:
        """Sum an evaluation over the ranks when each rank saw its own slice of the data."""
        if not getattr(loader, "sharded_across_ranks", False):
            return loss_sum, samples
        sums = np.array([loss_sum, float(samples)])
        dist.all_reduce_array(sums, dist.ReduceOp.SUM, check_shapes=False)
        for metric in metrics:
            metric.load_state_dict(self._summed_state(metric.state_dict()))
        return float(sums[0]), int(round(sums[1]))

    @staticmethod
    def _summed_state(state: dict[str, Any]) -> dict[str, Any]:
        """A metric state with every number summed over ranks (metric states are counts).

        Arrays of different shapes (a confusion matrix that has seen fewer classes on one
        rank) are zero-padded to the largest shape first.
        """
        everyone = dist.all_gather_json(_jsonable(state))
        return _sum_states(everyone)

    # ---- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self, path: Any, data: CheckpointData) -> Any:
        """Rank 0 writes ``data`` (with every rank's Generators); all ranks wait for the result.

        Raises:
            CheckpointError: rank 0 could not write (on every rank, with rank 0's message).
        """
        model_rngs = dist.all_gather_json(_jsonable(data.trainer_state.get("model_rng_state")))
        state = dict(data.trainer_state)
        state["distributed"] = {"world_size": self.world_size, "model_rng_states": model_rngs}
        totals = state.get("epoch_totals")
        if totals is not None:
            totals = dict(totals)
            # each rank's own loss sum too: a resume on as many ranks restores them, so the
            # epoch's sums are added in the uninterrupted run's order (float addition is not
            # associative; a global partial sum on rank 0 changed the last bit of the loss)
            state["distributed"]["rank_loss_sums"] = [
                float(value) for value in dist.all_gather_json(float(totals["loss_sum"]))]
            sums = np.array([totals["loss_sum"], float(totals["samples"])])
            dist.all_reduce_array(sums, dist.ReduceOp.SUM, check_shapes=False)
            totals["loss_sum"], totals["samples"] = float(sums[0]), int(round(sums[1]))
            totals["metrics"] = {
                name: self._summed_state(metric_state)
                for name, metric_state in sorted(totals["metrics"].items())
            }
            state["epoch_totals"] = totals
        data.trainer_state = state
        outcome: dict[str, Any] = {}
        written = None
        if self.is_main:
            try:
                written = save_checkpoint(path, data)
                outcome = {"path": str(written)}
            except Exception as error:  # every rank must learn that the write failed
                outcome = {"error": f"{type(error).__name__}: {error}"}
                failure = error
        outcome = dist.broadcast_json(outcome)  # also the barrier: the file is complete
        if "error" in outcome:
            if self.is_main:
                raise failure
            raise CheckpointError(f"rank 0 could not write the checkpoint: {outcome['error']}")
        return written if written is not None else Path(outcome["path"])

    def restore(
        self, trainer: Any, state: dict[str, Any], epoch_totals: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """After the Trainer restored rank 0's view: give each rank its own Generators and share.

        With another number of ranks than the checkpoint's, the data sampler has moved its
        start past the samples already taken, so the epoch's batch counter restarts at 0.
        """
        saved = state.get("distributed") or {}
        saved_world = int(saved.get("world_size", 1))
        if saved_world != self.world_size and trainer.scheduler is not None and (
            trainer.scheduler_interval == "step"
        ):
            raise CheckpointError(
                f"resume: the checkpoint was taken on {saved_world} rank(s) with a per-step "
                f"schedule ({type(trainer.scheduler).__name__}) sized for that many steps per "
                f"epoch; this job has {self.world_size} rank(s). Resume it with mpiexec -n "
                f"{saved_world}"
            )
        rngs = saved.get("model_rng_states") or []
        model = trainer.model
        if saved_world == self.world_size and len(rngs) == self.world_size and rngs[self.rank]:
            model.set_rng_state(rngs[self.rank])
        elif rngs and rngs[0]:
            model.jump_rng_streams(rngs[0])
        if saved_world != self.world_size:
            trainer.batch_in_epoch = 0
            trainer.batches_per_epoch = len(trainer._train_loader)
        rank_sums = saved.get("rank_loss_sums")
        rank_sums_list: list[Any] = rank_sums if isinstance(rank_sums, list) else []
        same_ranks = (saved_world == self.world_size and len(rank_sums_list) == self.world_size
                      and all(isinstance(v, float) and math.isfinite(v) for v in rank_sums_list))
        if epoch_totals is not None and self.rank != 0:
            # rank 0 carries the epoch's sums over all ranks; the others start from zero
            epoch_totals = dict(epoch_totals)
            epoch_totals["loss_sum"], epoch_totals["samples"] = 0.0, 0
            epoch_totals["metrics"] = {m.name: m.state_dict() for m in trainer._new_metrics()}
        if epoch_totals is not None and same_ranks:
            # the same loss total, split over the ranks as it was, so each rank goes on adding
            # to its own sum and the epoch-end all-reduce adds what the uninterrupted run added
            epoch_totals = dict(epoch_totals)
            epoch_totals["loss_sum"] = float(rank_sums_list[self.rank])
        return epoch_totals


class RankZeroFindings:
    """What ``trainer.doctor`` is on ranks other than 0 after a distributed fit: rank 0's
    findings, read-only (only rank 0 watches the model; the replicas are identical).

    Attributes:
        findings: rank 0's findings as dicts (``Finding`` fields).
    """

    def __init__(self, text: str, state: dict[str, Any]) -> None:
        self._text = text
        self._state = state
        self.findings: list[dict[str, Any]] = list(state.get("findings") or [])

    def format_findings(self, width: int = 100, overhead: bool = True) -> str:
        """Rank 0's findings as text (as rank 0 formatted them, without its overhead)."""
        return self._text

    def to_dict(self) -> dict[str, Any]:
        """Rank 0's ``Doctor.to_dict()``."""
        return self._state


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def _sum_states(states: list[Any]) -> Any:
    first = states[0]
    if isinstance(first, dict):
        return {key: _sum_states([s[key] for s in states]) for key in first}
    if isinstance(first, bool) or first is None or isinstance(first, str):
        return first
    if isinstance(first, (int, float)):
        return sum(states[1:], first)
    arrays = [np.asarray(s) for s in states]
    arrays = [a for a in arrays if a.size] or arrays[:1]  # an empty matrix adds nothing
    shape = tuple(max(sizes) for sizes in zip(*(a.shape for a in arrays), strict=True))
    total = np.zeros(shape, dtype=np.result_type(*arrays))
    for array in arrays:
        total[tuple(slice(0, n) for n in array.shape)] += array
    return total.tolist()
