"""DistributedSampler: each rank's share of a data set's indices, reshuffled every epoch.

The order of epoch ``e`` is one permutation of the whole data set drawn from
``SeedSequence([seed, e])`` (independent of the number of ranks); rank ``r`` of ``N`` takes
positions ``r, r + N, r + 2N, ...`` of it, as ``torch.utils.data.DistributedSampler`` does. So
the first ``k`` samples of every rank are together the first ``k * N`` samples of the
permutation, and a run can resume mid-epoch with a different number of ranks: the next
positions of the same permutation are dealt out to the new ranks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["DistributedSampler"]


class DistributedSampler:
    """Indices of this rank's shard of a data set, seeded and epoch-aware, resumable.

    Args:
        dataset: the data set (anything with ``len()``) or its length as an int.
        num_replicas: the number of ranks; default the world size of ``gw.distributed.init()``
            (which joins the MPI job when started by a launcher, as DistributedDataParallel
            does, so a forgotten ``init()`` cannot leave each rank training on all the data).
        rank: this rank, 0..num_replicas-1; default the process group's rank.
        shuffle: a new permutation every epoch (set with :meth:`set_epoch`); otherwise
            the natural order.
        seed: the permutation's seed, the same on every rank.
        drop_last: drop the tail so every rank gets ``floor(n / N)`` samples. Otherwise
            (PyTorch's default) the order is padded with its own first indices up to a
            multiple of N, so every rank gets ``ceil(n / N)`` samples and a few samples are
            seen twice in that epoch.

    Every sample is seen exactly once per epoch across the ranks, plus the padding (at most
    N-1 repeats), or minus the dropped tail (at most N-1 samples) with ``drop_last``.

    Call ``set_epoch(epoch)`` before each epoch (Trainer does), or every epoch repeats the
    first epoch's order, as in PyTorch.

    Raises:
        ValueError: a rank outside 0..num_replicas-1, a bad count, an empty data set, or
            ``drop_last`` with fewer samples than ranks.
    """

    def __init__(
        self,
        dataset: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            # the one place the data layer asks the process group (lazily: NumPy-only otherwise)
            from gradwise import distributed

            # init() (a no-op when done, a group of one without a launcher), as
            # DistributedDataParallel does: under mpiexec a forgotten init() must not leave
            # every rank "0 of 1", training alone on all the data
            group = distributed.init()
            num_replicas = group.world_size if num_replicas is None else num_replicas
            rank = group.rank if rank is None else rank
        for name, value in (("num_replicas", num_replicas), ("rank", rank), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"DistributedSampler: {name} must be an int, got {value!r}")
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be >= 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(
                f"DistributedSampler: rank {rank} is outside 0..{num_replicas - 1}"
            )
        length = dataset if isinstance(dataset, (int, np.integer)) else len(dataset)
        if length <= 0:
            raise ValueError("DistributedSampler: the data set is empty")
        if drop_last and length < num_replicas:
            raise ValueError(
                f"DistributedSampler: drop_last=True with {length} samples and {num_replicas} "
                "ranks leaves no sample for some ranks"
            )
        self.length = int(length)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self.start_index = 0  # positions of this epoch's order already consumed (by any ranks)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation the next iteration uses.

        A start position restored by :meth:`load_state_dict` is kept when the epoch is the
        restored one, and cleared for any other epoch.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(
                f"DistributedSampler.set_epoch: epoch must be an int >= 0, got {epoch!r}"
            )
        if int(epoch) != self.epoch:
            self.start_index = 0
        self.epoch = int(epoch)

    def order(self) -> np.ndarray:
        """This epoch's permutation of all ``length`` indices (the same on every rank)."""
        if not self.shuffle:
            return np.arange(self.length)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch]))
        return rng.permutation(self.length)

    def _shard_size(self) -> int:
        remaining = max(self.length - self.start_index, 0)
        if self.drop_last:
            return remaining // self.num_replicas
        return math.ceil(remaining / self.num_replicas)

    def __len__(self) -> int:
        return self._shard_size()

    def __iter__(self) -> Iterator[int]:
        order = self.order()
        rest = order[self.start_index :]
        per_rank = self._shard_size()
        total = per_rank * self.num_replicas
        if total > len(rest):  # pad with the order's first indices, as PyTorch does
            padding = total - len(rest)
            repeats = math.ceil(padding / len(order))
            rest = np.concatenate([rest, np.tile(order, repeats)[:padding]])
        else:
            rest = rest[:total]
        return iter(rest[self.rank : total : self.num_replicas].tolist())

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable: the epoch, the start position and the layout it was dealt for."""
        return {
            "epoch": self.epoch,
            "start_index": self.start_index,
            "seed": self.seed,
            "length": self.length,
            "num_replicas": self.num_replicas,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: dict[str, Any], samples_done: int = 0) -> int:
        """Restore :meth:`state_dict`'s output, possibly saved with another number of ranks.

        Args:
            state: the saved state.
            samples_done: samples each rank had taken from that iteration when it was saved.

        Returns:
            How many samples the caller should still skip on this rank: ``samples_done`` with
            the same number of ranks (the iteration is redealt as before); 0 with another
            number, because then the start position moves past the ``samples_done * N_saved``
            positions the saved ranks consumed and the rest is dealt to the new ranks.

        Raises:
            ValueError: the state is malformed or belongs to another data set, seed, shuffle
                or drop_last setting.
        """
        try:
            epoch, start = int(state["epoch"]), int(state["start_index"])
            saved_replicas = int(state["num_replicas"])
            saved = {key: state[key] for key in ("seed", "length", "shuffle", "drop_last")}
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"DistributedSampler.load_state_dict: malformed state ({error!r})"
                             ) from error
        mine = {"seed": self.seed, "length": self.length, "shuffle": self.shuffle,
                "drop_last": self.drop_last}
        if saved != mine:
            raise ValueError(
                f"DistributedSampler.load_state_dict: the state is for {saved}, this sampler "
                f"is {mine}"
            )
        if not (0 <= start <= self.length and saved_replicas >= 1 and samples_done >= 0):
            raise ValueError(
                f"DistributedSampler.load_state_dict: start_index {start}, num_replicas "
                f"{saved_replicas}, samples_done {samples_done} are out of range"
            )
        self.epoch = epoch
        if saved_replicas == self.num_replicas:
            self.start_index = start
            return int(samples_done)
        self.start_index = min(start + samples_done * saved_replicas, self.length)
        return 0

    def __repr__(self) -> str:
        return (
            f"DistributedSampler(samples={self.length}, rank={self.rank}/{self.num_replicas}, "
            f"shuffle={self.shuffle}, seed={self.seed}, epoch={self.epoch}, "
            f"drop_last={self.drop_last})"
        )
