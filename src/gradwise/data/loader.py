"""Mini-batches from arrays: ArrayDataset and a resumable, seeded DataLoader.

When the data are arrays (an :class:`ArrayDataset`, or a tuple of arrays) each batch is cut
with one fancy-indexing operation per array, with no per-sample Python loop. Any other object
with ``__len__`` and ``__getitem__`` works too; its samples are stacked field by field.

Example:
    >>> loader = DataLoader((x_train, y_train), batch_size=64, shuffle=True, seed=0)
    ... # doctest: +SKIP
    >>> for x_batch, y_batch in loader:   # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = ["ArrayDataset", "DataLoader"]


class SizedDataset(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


class ArrayDataset:
    """Arrays that share their first dimension; item ``i`` is ``(a[i], b[i], ...)``.

    Raises:
        ValueError: no arrays, a 0-d array, or arrays of different lengths.
    """

    def __init__(self, *arrays: Any):
        if not arrays:
            raise ValueError("ArrayDataset: needs at least one array")
        converted = tuple(np.asarray(array) for array in arrays)
        for position, array in enumerate(converted):
            if array.ndim == 0:
                raise ValueError(f"ArrayDataset: array {position} is a scalar; it needs a length")
        lengths = [len(array) for array in converted]
        if len(set(lengths)) != 1:
            shapes = ", ".join(str(array.shape) for array in converted)
            raise ValueError(f"ArrayDataset: arrays have different lengths: shapes {shapes}")
        self.arrays = converted

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: Any) -> tuple[np.ndarray, ...]:
        return tuple(array[index] for array in self.arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{array.shape} {array.dtype}" for array in self.arrays)
        return f"ArrayDataset({shapes})"


class DataLoader:
    """Iterate over a data set in mini-batches, optionally reshuffled each epoch.

    Args:
        data: an :class:`ArrayDataset`, a tuple or list of arrays of equal length, a single
            array, or any object with ``__len__`` and ``__getitem__``.
        batch_size: samples per batch, a positive int.
        shuffle: draw a new permutation at the start of every epoch.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        seed: an int or a ``numpy.random.Generator`` for the shuffling; the loader keeps its
            own Generator, so iteration order never depends on global state.
        sampler: an iterable of sample indices with ``len()`` that chooses the order instead
            (e.g. :class:`~gradwise.data.sampler.DistributedSampler`); then ``shuffle`` must be
            False. Its ``state_dict()``, if it has one, is part of the loader's.

    Every batch is a tuple of arrays, one per field (copies, safe to modify in place).
    ``len(loader)`` is the number of batches per epoch. :meth:`state_dict` captures the
    Generator state (and how far into an epoch iteration got) as plain JSON-serialisable data,
    so a resumed run sees exactly the batches the interrupted run would have seen.
    """

    def __init__(
        self,
        data: ArrayDataset | Sequence[Any] | np.ndarray | SizedDataset,
        batch_size: int = 32,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | np.random.Generator | None = None,
        sampler: Any = None,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"DataLoader: batch_size must be an int, got {batch_size!r}")
        if batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be positive, got {batch_size}")
        self.dataset = _as_dataset(data)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if sampler is not None and self.shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True exclude each other")
        self.sampler = sampler
        n_samples = len(self.dataset)
        if n_samples == 0:
            raise ValueError("DataLoader: the dataset is empty")
        if self.drop_last and n_samples < self.batch_size:
            raise ValueError(
                f"DataLoader: drop_last=True with {n_samples} samples and batch_size "
                f"{self.batch_size} would give no batches"
            )
        if isinstance(seed, np.random.Generator):
            self._rng = seed
        else:
            self._rng = np.random.default_rng(seed)
        self._epoch = 0  # epochs started so far
        self._batches_done = 0  # batches yielded in the epoch in progress
        self._epoch_start_state: Mapping[str, Any] | None = None  # rng state before this epoch
        self._epoch_start_sampler: dict[str, Any] | None = None  # sampler state, likewise
        # True when each rank holds its own slice of the data (set by DistributedTraining), so
        # an evaluation over this loader is summed across the ranks
        self.sharded_across_ranks = False
        self._resume_at = 0  # batches to skip at the next epoch start (set by load_state_dict)

    def __len__(self) -> int:
        n_samples = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.drop_last:
            return n_samples // self.batch_size
        return math.ceil(n_samples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, ...]]:
        n_samples = len(self.dataset)
        self._epoch_start_state = self._rng.bit_generator.state
        self._epoch_start_sampler = _sampler_state(self.sampler)
        if self.sampler is not None:
            order = np.fromiter(self.sampler, dtype=np.int64)
        else:
            order = self._rng.permutation(n_samples) if self.shuffle else np.arange(n_samples)
        self._epoch += 1
        first, self._resume_at = self._resume_at, 0
        self._batches_done = first
        for batch in range(first, len(self)):
            indices = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            items = self._gather(indices)
            self._batches_done = batch + 1
            yield items
        self._epoch_start_state = None
        self._batches_done = 0

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: the Generator's state and the position in the epoch."""
        if self._epoch_start_state is not None:
            # mid-epoch: resuming must redraw this epoch's permutation, then skip ahead
            rng_state, epoch, position = (
                self._epoch_start_state,
                self._epoch - 1,
                self._batches_done,
            )
            sampler_state = self._epoch_start_sampler
        else:
            rng_state, epoch, position = self._rng.bit_generator.state, self._epoch, 0
            sampler_state = _sampler_state(self.sampler)
        state = {
            "rng_state": _to_json_safe(copy.deepcopy(rng_state)),
            "epoch": epoch,
            "batch_index": position,
        }
        if sampler_state is not None:
            state["sampler"] = sampler_state
            state["batch_size"] = self.batch_size
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; the next iteration continues from there."""
        try:
            rng_state = state["rng_state"]
            epoch = int(state["epoch"])
            position = int(state["batch_index"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"DataLoader.load_state_dict: malformed state ({error!r})") from error
        if (state.get("sampler") is None) != (_sampler_state(self.sampler) is None):
            raise ValueError(
                "DataLoader.load_state_dict: the state "
                f"{'has no' if state.get('sampler') is None else 'has a'} sampler state and this "
                f"loader {'has a sampler with state' if self.sampler is not None else 'has none'}"
            )
        if state.get("sampler") is not None:
            # a sampler dealt for another number of ranks moves its start and skips nothing
            saved_batch = int(state.get("batch_size", self.batch_size))
            skip = self.sampler.load_state_dict(state["sampler"], position * saved_batch)
            position = int(skip) // self.batch_size
        if not 0 <= position <= len(self):
            raise ValueError(
                f"DataLoader.load_state_dict: batch_index {position} is outside 0..{len(self)}"
            )
        expected = type(self._rng.bit_generator).__name__
        if rng_state.get("bit_generator") != expected:
            raise ValueError(
                f"DataLoader.load_state_dict: state is for {rng_state.get('bit_generator')!r}, "
                f"this loader uses {expected!r}"
            )
        self._rng.bit_generator.state = copy.deepcopy(rng_state)
        self._epoch = epoch
        self._resume_at = position
        self._batches_done = 0
        self._epoch_start_state = None

    def __repr__(self) -> str:
        return (
            f"DataLoader(samples={len(self.dataset)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, batches={len(self)})"
        )

    def _gather(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        if isinstance(self.dataset, ArrayDataset):
            return tuple(array[indices] for array in self.dataset.arrays)
        samples = [self.dataset[int(index)] for index in indices]
        if isinstance(samples[0], tuple):
            return tuple(np.stack(field) for field in zip(*samples, strict=True))
        return (np.stack(samples),)


def _sampler_state(sampler: Any) -> dict[str, Any] | None:
    state_dict = getattr(sampler, "state_dict", None)
    return None if state_dict is None else state_dict()


def _as_dataset(data: Any) -> ArrayDataset | SizedDataset:
    if isinstance(data, ArrayDataset):
        return data
    if isinstance(data, np.ndarray):
        return ArrayDataset(data)
    if isinstance(data, (tuple, list)):
        if not data:
            raise ValueError("DataLoader: got an empty tuple/list of arrays")
        return ArrayDataset(*data)
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        return data
    raise TypeError(
        "DataLoader: data must be an ArrayDataset, a tuple of arrays, an array, or an object "
        f"with __len__ and __getitem__; got {type(data).__name__}"
    )


def _to_json_safe(value: Any) -> Any:
    """Turn numpy arrays and scalars inside a bit-generator state into plain Python values."""
    if isinstance(value, dict):
        return {key: _to_json_safe(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
