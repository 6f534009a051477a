"""DistributedSampler: shards cover the data once per epoch, match PyTorch, resume anywhere."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gradwise.data import DataLoader, DistributedSampler

GRID = list(itertools.product(range(1, 14), (1, 2, 3, 4), (False, True), (False, True)))


def _shards(n: int, ranks: int, shuffle: bool, drop_last: bool, epoch: int = 0,
            seed: int = 0) -> list[list[int]]:
    samplers = [DistributedSampler(n, ranks, rank, shuffle, seed, drop_last)
                for rank in range(ranks)]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    return [list(sampler) for sampler in samplers]


@pytest.mark.parametrize(("n", "ranks", "shuffle", "drop_last"), GRID)
def test_every_sample_once_per_epoch_plus_padding_or_minus_the_tail(
    n: int, ranks: int, shuffle: bool, drop_last: bool
) -> None:
    if drop_last and n < ranks:
        with pytest.raises(ValueError, match="drop_last"):
            DistributedSampler(n, ranks, 0, drop_last=True)
        return
    shards = _shards(n, ranks, shuffle, drop_last, epoch=3)
    sizes = {len(shard) for shard in shards}
    assert len(sizes) == 1, "every rank takes the same number of steps"
    taken = [i for shard in shards for i in shard]
    if drop_last:
        assert len(taken) == n - n % ranks and len(set(taken)) == len(taken)
    else:
        assert sorted(set(taken)) == list(range(n))
        assert len(taken) == -(-n // ranks) * ranks  # padded up to a multiple of the ranks


@pytest.mark.parametrize(("n", "ranks", "drop_last"),
                         [(n, r, d) for n, r, _, d in GRID if not (d and n < r)][::3])
def test_unshuffled_shards_equal_pytorchs(n: int, ranks: int, drop_last: bool) -> None:
    torch_data = pytest.importorskip("torch.utils.data")
    expected = [list(torch_data.DistributedSampler(range(n), ranks, rank, shuffle=False,
                                                   drop_last=drop_last))
                for rank in range(ranks)]
    assert _shards(n, ranks, False, drop_last) == expected


def test_epochs_and_seeds_reshuffle_reproducibly() -> None:
    first = _shards(20, 2, True, False, epoch=0)
    assert _shards(20, 2, True, False, epoch=0) == first
    assert _shards(20, 2, True, False, epoch=1) != first
    assert _shards(20, 2, True, False, epoch=0, seed=1) != first


@pytest.mark.parametrize(("saved_ranks", "new_ranks"), [(2, 2), (3, 2), (2, 3), (4, 1), (1, 3)])
@pytest.mark.parametrize("batches_done", [0, 1, 2])
def test_a_loader_resumes_mid_epoch_with_any_number_of_ranks(
    saved_ranks: int, new_ranks: int, batches_done: int
) -> None:
    n, batch = 23, 3
    x = np.arange(n)

    def loaders(ranks: int) -> list[DataLoader]:
        return [DataLoader((x,), batch_size=batch, sampler=DistributedSampler(n, ranks, r))
                for r in range(ranks)]

    before = loaders(saved_ranks)
    for loader in before:
        loader.sampler.set_epoch(5)
    iterators = [iter(loader) for loader in before]
    seen = [int(i) for _ in range(batches_done) for it in iterators for i in next(it)[0]]
    state = before[0].state_dict()
    after = loaders(new_ranks)
    for loader in after:
        loader.load_state_dict(state)
        loader.sampler.set_epoch(5)  # as Trainer does at the epoch's start: keeps the position
    rest = [int(i) for loader in after for batch_ in loader for i in batch_[0]]
    assert sorted(set(seen + rest)) == list(range(n)), "a sample was lost"
    assert len(seen + rest) - n < saved_ranks + new_ranks, "too many repeats"
    if saved_ranks == new_ranks:  # the same ranks continue exactly where they were
        full = loaders(saved_ranks)
        for loader in full:
            loader.sampler.set_epoch(5)
        remaining = [[int(i) for b in loader for i in b[0]][batches_done * batch:]
                     for loader in full]
        assert rest == [i for shard in remaining for i in shard]


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="rank 2 is outside 0..1"):
        DistributedSampler(10, 2, 2)
    with pytest.raises(ValueError, match="empty"):
        DistributedSampler(0, 1, 0)
    with pytest.raises(TypeError, match="num_replicas"):
        DistributedSampler(10, 2.0, 0)
    sampler = DistributedSampler(10, 2, 0)
    with pytest.raises(ValueError, match="seed"):
        sampler.load_state_dict({**sampler.state_dict(), "seed": 9})
    with pytest.raises(ValueError, match="sampler and shuffle"):
        DataLoader((np.arange(10),), sampler=sampler, shuffle=True)
    plain = DataLoader((np.arange(10),), batch_size=2)
    with pytest.raises(ValueError, match="sampler"):
        plain.load_state_dict(DataLoader((np.arange(10),), sampler=sampler).state_dict())


def test_defaults_come_from_the_process_group() -> None:
    sampler = DistributedSampler(range(7))  # no launcher: a group of one
    assert (sampler.num_replicas, sampler.rank, len(sampler)) == (1, 0, 7)
