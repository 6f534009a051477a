"""``gradwise.utils.data``: PyTorch's data API (Dataset, TensorDataset, Subset, random_split,
DataLoader) yielding gradwise Tensors.

``gw.data.DataLoader`` stays the NumPy, resumable loader the Trainer uses; this one follows
``torch.utils.data.DataLoader``'s signature so tutorial code runs unchanged. Workers: gradwise
loads in the calling process; ``num_workers > 0`` is accepted and runs in-process, with a note
printed once (docs/PORTING.md).

Example:
    >>> from gradwise.utils.data import DataLoader, TensorDataset
    >>> loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    >>> for xb, yb in loader: ...
"""

from __future__ import annotations

import bisect
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any

import numpy as np

from gradwise.autograd import random as _random
from gradwise.autograd.tensor import Tensor
from gradwise.data.sampler import DistributedSampler

__all__ = [
    "BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
    "IterableDataset", "RandomSampler", "Sampler", "SequentialSampler", "StackDataset", "Subset",
    "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "default_collate",
    "default_convert",
    "get_worker_info", "random_split",
]


class Dataset:
    """Base class of map-style datasets: subclasses define ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Tensors (or arrays) sharing their first dimension; item ``i`` is ``(t[i] for t)``.

    Raises:
        ValueError: no tensors, or different first dimensions (naming the shapes).
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor._make(np.asarray(t), False,
                                                                          None)
                             for t in tensors)
        lengths = {t.shape[0] if t.ndim else None for t in self.tensors}
        if len(lengths) != 1 or None in lengths:
            shapes = ", ".join(str(t.shape) for t in self.tensors)
            raise ValueError(f"TensorDataset: size mismatch between tensors: shapes {shapes}")

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The items of ``dataset`` at ``indices``."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, list):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[int(index)]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Several datasets one after the other."""

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: needs at least one dataset")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]))

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = 0 if which == 0 else int(self.cumulative_sizes[which - 1])
        return self.datasets[which][index - start]


def random_split(dataset: Any, lengths: Sequence[float], generator: Any = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random Subsets of the given lengths, or of the
    given fractions (summing to 1; remainders go round-robin to the first splits, as PyTorch).

    Raises:
        ValueError: the lengths do not sum to ``len(dataset)`` (or the fractions to 1).
    """
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(
            f"random_split: lengths {list(lengths)} sum to {sum(lengths)}, not the dataset's "
            f"length {n}"
        )
    order = _random.resolve(generator, None, "random_split").permutation(n)
    splits, start = [], 0
    for length in lengths:
        splits.append(Subset(dataset, order[start:start + int(length)].tolist()))
        start += int(length)
    return splits


class Sampler:
    """Base class of index samplers: iterating yields dataset indices (a batch sampler
    yields lists of them)."""

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """The indices 0 .. len(data_source) - 1 in order (``torch.utils.data.SequentialSampler``).
    """

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


def _stream(generator: Any, caller: str) -> np.random.Generator:
    return _random.resolve(generator, None, caller)


class RandomSampler(Sampler):
    """A random order of the indices each epoch (``replacement``: ``num_samples`` independent
    uniform draws), from ``generator`` or the default one (``gw.manual_seed``), as
    ``torch.utils.data.RandomSampler`` (the stream differs from torch's: docs/PORTING.md).

    Raises:
        ValueError: ``num_samples`` not a positive int.
    """

    def __init__(self, data_source: Sized, replacement: bool = False,
                 num_samples: int | None = None, generator: Any = None) -> None:
        if num_samples is not None and (isinstance(num_samples, bool) or
                                        not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples must be a positive int, got "
                             f"{num_samples!r}")
        self.data_source, self.replacement = data_source, bool(replacement)
        self._num_samples, self.generator = num_samples, generator

    @property
    def num_samples(self) -> int:
        """How many indices one epoch yields (default: the dataset's length)."""
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n, stream = len(self.data_source), _stream(self.generator, "RandomSampler")
        if self.replacement:
            return iter(stream.integers(0, n, size=self.num_samples).tolist())
        rounds = -(-self.num_samples // max(n, 1))
        parts = [stream.permutation(n) for _ in range(rounds)] or [np.zeros(0, np.int64)]
        order = np.concatenate(parts)
        return iter(order[:self.num_samples].astype(np.int64).tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order each epoch
    (``torch.utils.data.SubsetRandomSampler``)."""

    def __init__(self, indices: Sequence[int], generator: Any = None) -> None:
        self.indices, self.generator = indices, generator

    def __iter__(self) -> Iterator[int]:
        order = _stream(self.generator, "SubsetRandomSampler").permutation(len(self.indices))
        return (self.indices[int(i)] for i in order)

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probability proportional to ``weights`` (with
    ``replacement``, or each at most once), as ``torch.utils.data.WeightedRandomSampler``.

    Raises:
        ValueError: weights not a 1-d sequence of finite non-negative numbers with a positive
            sum, ``num_samples`` not positive, or more samples than nonzero weights without
            replacement.
    """

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator: Any = None) -> None:
        w = np.asarray(weights._data if isinstance(weights, Tensor) else weights, np.float64)
        if w.ndim != 1 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be a 1-d sequence of finite, "
                             f"non-negative numbers with a positive sum, got {weights!r:.80}")
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
            raise ValueError(f"WeightedRandomSampler: num_samples must be a positive int, got "
                             f"{num_samples!r}")
        if not replacement and num_samples > np.count_nonzero(w):
            raise ValueError(f"WeightedRandomSampler: cannot draw {num_samples} samples without "
                             f"replacement from {np.count_nonzero(w)} nonzero weights")
        self.weights, self.num_samples = w, num_samples
        self.replacement, self.generator = bool(replacement), generator

    def __iter__(self) -> Iterator[int]:
        stream = _stream(self.generator, "WeightedRandomSampler")
        drawn = stream.choice(len(self.weights), size=self.num_samples,
                              replace=self.replacement, p=self.weights / self.weights.sum())
        return iter(drawn.astype(np.int64).tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices from ``sampler`` (the last one shorter unless
    ``drop_last``), as ``torch.utils.data.BatchSampler``; a DataLoader takes it as
    ``batch_sampler=``.

    Raises:
        ValueError: batch_size not a positive int.
    """

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size must be a positive int, got "
                             f"{batch_size!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, bool(drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(int(index))
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class IterableDataset(Dataset):
    """A dataset that is a stream: subclasses define ``__iter__`` (no ``__getitem__`` or
    length needed), as ``torch.utils.data.IterableDataset``; a DataLoader batches what it
    yields, in order (``shuffle`` and samplers do not apply)."""

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__}: an IterableDataset defines __iter__")


class ChainDataset(IterableDataset):
    """Several IterableDatasets one after the other, as ``torch.utils.data.ChainDataset``:
    iterating yields every item of the first, then of the next; ``len()`` is the sum of
    theirs.

    Raises:
        AssertionError: a member that is not an IterableDataset, when iterated or measured
            (torch's check and message).
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = datasets

    def __iter__(self) -> Iterator[Any]:
        for dataset in self.datasets:
            assert isinstance(dataset, IterableDataset), \
                "ChainDataset only supports IterableDataset"
            yield from dataset

    def __len__(self) -> int:
        total = 0
        for dataset in self.datasets:
            assert isinstance(dataset, IterableDataset), \
                "ChainDataset only supports IterableDataset"
            total += len(dataset)  # type: ignore[arg-type]  # TypeError if it has no len, as torch
        return total


class StackDataset(Dataset):
    """Datasets of equal length side by side, as ``torch.utils.data.StackDataset``: item i
    is the tuple of their items i (positional datasets) or a dict by keyword
    (``StackDataset(image=images, label=labels)[0] == {"image": ..., "label": ...}``).

    Raises:
        ValueError: no dataset, both positional and keyword datasets, or lengths that differ
            (torch's messages).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args and kwargs:
            raise ValueError("Supported either ``tuple``- (via ``args``) or``dict``- (via "
                             "``kwargs``) like input/output, but both types are given.")
        if args:
            self._length = len(args[0])
            if any(self._length != len(dataset) for dataset in args):
                raise ValueError("Size mismatch between datasets")
            self.datasets: Any = args
        elif kwargs:
            tmp = list(kwargs.values())
            self._length = len(tmp[0])
            if any(self._length != len(dataset) for dataset in tmp):
                raise ValueError("Size mismatch between datasets")
            self.datasets = kwargs
        else:
            raise ValueError("At least one dataset should be passed")

    def __getitem__(self, index: int) -> Any:
        if isinstance(self.datasets, dict):
            return {key: dataset[index] for key, dataset in self.datasets.items()}
        return tuple(dataset[index] for dataset in self.datasets)

    def __len__(self) -> int:
        return self._length


def get_worker_info() -> None:
    """Information about the current loader worker process, as
    ``torch.utils.data.get_worker_info``: always None, since gradwise loads in the calling
    process (what torch returns in the main process too)."""
    return None


def _stack(values: Sequence[Any]) -> Any:
    first = values[0]
    if isinstance(first, Tensor):
        return Tensor._make(np.stack([v._data for v in values]), False, None)
    if isinstance(first, np.ndarray | np.generic):
        if first.dtype.kind in "USO":  # torch leaves NumPy strings and objects as they are
            return list(values) if isinstance(first, np.generic) else _stack(
                [v.tolist() for v in values])
        return Tensor._make(np.stack(values), False, None)
    if isinstance(first, bool):
        return Tensor._make(np.array(values, dtype=np.bool_), False, None)
    if isinstance(first, int):
        return Tensor._make(np.array(values, dtype=np.int64), False, None)
    if isinstance(first, float):  # PyTorch's default_collate makes float64 from Python floats
        return Tensor._make(np.array(values, dtype=np.float64), False, None)
    if isinstance(first, str | bytes):
        return values  # as torch: the batch's own sequence (a tuple inside a collated tuple)
    if isinstance(first, Mapping):
        fields = {key: _stack([v[key] for v in values]) for key in first}
        mapping_type: Any = type(first)  # a concrete mapping class (dict, OrderedDict...)
        try:
            return mapping_type(fields)
        except TypeError:  # a mapping type that cannot be built from a dict
            return fields
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # a namedtuple keeps its type
        return type(first)(*(_stack(field) for field in zip(*values, strict=True)))
    if isinstance(first, Sequence):
        if any(len(v) != len(first) for v in values):
            raise RuntimeError("each element in list of batch should be of equal size")
        batched = [_stack(field) for field in zip(*values, strict=True)]
        if isinstance(first, tuple | list):
            return batched  # torch: a list, for tuples too (its "backwards compatibility")
        sequence_type: Any = type(first)
        try:
            return sequence_type(batched)
        except TypeError:
            return batched
    raise TypeError(f"default_collate: cannot batch items of type {type(first).__name__}")


def default_collate(batch: list[Any]) -> Any:
    """Stack a list of samples into a batch, as ``torch.utils.data.default_collate``:
    tensors/arrays stacked along a new dim 0, ints to int64, floats to float64, bools to bool,
    strings kept as a list; dicts (keeping their mapping type) and namedtuples (keeping their
    type) field by field; other sequences (tuples and lists alike) become a list of batched
    fields, as torch's.

    Raises:
        ValueError: an empty batch.
        RuntimeError: samples whose sequences differ in length (torch's message).
        TypeError: an item type that cannot be batched.
    """
    if not batch:
        raise ValueError("default_collate: empty batch")
    return _stack(list(batch))


def default_convert(data: Any) -> Any:
    """NumPy arrays and scalars in ``data`` as Tensors (same dtype, no new dim), recursing
    into dicts, namedtuples and sequences, as ``torch.utils.data.default_convert`` (the
    collate of ``batch_size=None`` loaders): tuples become lists as in torch; strings,
    NumPy string arrays and other objects are returned as they are."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray | np.generic):
        if data.dtype.kind in "USO":
            return data
        return Tensor._make(np.array(data), False, None)
    if isinstance(data, Mapping):
        fields = {key: default_convert(value) for key, value in data.items()}
        mapping_type: Any = type(data)
        try:
            return mapping_type(fields)
        except TypeError:
            return fields
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        converted = [default_convert(d) for d in data]
        sequence_type: Any = type(data)
        try:
            return sequence_type(converted)
        except TypeError:
            return converted
    return data


_WORKER_NOTE_SHOWN = [False]


class DataLoader:
    """Batches of a dataset as Tensors, with ``torch.utils.data.DataLoader``'s arguments.

    Args:
        dataset: anything with ``__len__`` and ``__getitem__`` (a TensorDataset is batched by
            one indexing per tensor, with no per-sample loop).
        batch_size: samples per batch (None: single samples, uncollated).
        shuffle: a new order each epoch, drawn from ``generator`` (default: the default
            generator, so ``gw.manual_seed`` makes it reproducible).
        sampler: an iterable of indices used instead of shuffle (e.g. a DistributedSampler).
        num_workers: accepted; any value loads in this process (a note says so once).
        collate_fn: turns a list of samples into a batch (default :func:`default_collate`).
        drop_last: drop a final smaller batch.
        pin_memory, timeout, worker_init_fn, prefetch_factor, persistent_workers: accepted
            for the signature; they have no effect on the CPU in one process.

    Raises:
        ValueError: batch_size < 1, or shuffle together with a sampler.
    """

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Iterable[int] | None = None, batch_sampler: Any = None,
                 num_workers: int = 0, collate_fn: Callable[[list[Any]], Any] | None = None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Any = None, multiprocessing_context: Any = None,
                 generator: Any = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "") -> None:
        if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if shuffle and sampler is not None:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                             "batch_size, shuffle, sampler, and drop_last")
        if isinstance(dataset, IterableDataset) and (shuffle or sampler is not None or
                                                     batch_sampler is not None):
            raise ValueError("DataLoader: an IterableDataset takes no shuffle, sampler or "
                             "batch_sampler (it yields its own order)")
        if num_workers and num_workers > 0 and not _WORKER_NOTE_SHOWN[0]:
            _WORKER_NOTE_SHOWN[0] = True
            warnings.warn(
                f"DataLoader: num_workers={num_workers} runs in the main process in gradwise "
                "(no worker processes); results are the same", stacklevel=2)
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.drop_last = bool(drop_last)
        self.generator = generator

    def _indices(self) -> Iterable[int]:
        if self.sampler is not None:
            return self.sampler
        n = len(self.dataset)
        if self.shuffle:
            return _random.resolve(self.generator, None, "DataLoader").permutation(n)
        return range(n)

    def _iterable_batches(self) -> Iterator[Any]:
        if self.batch_size is None:
            for item in self.dataset:
                yield item if self.collate_fn is None else self.collate_fn(item)
            return
        batch: list[Any] = []
        for item in self.dataset:
            batch.append(item)
            if len(batch) == self.batch_size:
                yield (self.collate_fn or default_collate)(batch)
                batch = []
        if batch and not self.drop_last:
            yield (self.collate_fn or default_collate)(batch)

    def _batches(self) -> Iterator[list[int]]:
        if self.batch_sampler is not None:
            yield from (list(batch) for batch in self.batch_sampler)
            return
        batch: list[int] = []
        for index in self._indices():
            batch.append(int(index))
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __iter__(self) -> Iterator[Any]:
        if isinstance(self.dataset, IterableDataset):
            yield from self._iterable_batches()
            return
        if self.batch_size is None and self.batch_sampler is None:
            for index in self._indices():
                item = self.dataset[int(index)]
                # torch converts single samples with default_convert (arrays -> Tensors)
                yield default_convert(item) if self.collate_fn is None else self.collate_fn(item)
            return
        for batch in self._batches():
            if self.collate_fn is None and isinstance(self.dataset, TensorDataset):
                rows = np.asarray(batch)
                yield [Tensor._make(t._data[rows], False, None) for t in self.dataset.tensors]
                continue
            samples = [self.dataset[i] for i in batch]
            yield (self.collate_fn or default_collate)(samples)

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        if self.sampler is not None and not isinstance(self.sampler, Sized):
            raise TypeError(f"DataLoader: len() needs a sampler with a length; "
                            f"{type(self.sampler).__name__} has none")
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
