"""``gradwise.utils.data`` samplers, IterableDataset and get_worker_info against
``torch.utils.data`` (issue 11): deterministic ones equal torch's output; random ones are
checked for their distribution's properties and for reproducibility under ``gw.manual_seed``
(the random streams differ from torch's on purpose: docs/PORTING.md)."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise.utils import data as gdata

torch = pytest.importorskip("torch")
tdata = torch.utils.data


@pytest.mark.parametrize("n", [0, 1, 7])
@pytest.mark.parametrize(("batch_size", "drop_last"), [(1, False), (3, False), (3, True),
                                                       (8, False), (8, True)])
def test_sequential_and_batch_samplers_equal_torch(n, batch_size, drop_last):
    data = list(range(n))
    ours = gdata.BatchSampler(gdata.SequentialSampler(data), batch_size, drop_last)
    theirs = tdata.BatchSampler(tdata.SequentialSampler(data), batch_size, drop_last)
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)
    assert list(gdata.SequentialSampler(data)) == list(tdata.SequentialSampler(data))


def test_random_sampler_is_a_permutation_and_reproducible():
    data = list(range(10))
    gw.manual_seed(3)
    first = list(gdata.RandomSampler(data))
    gw.manual_seed(3)
    assert list(gdata.RandomSampler(data)) == first
    assert sorted(first) == data and len(gdata.RandomSampler(data)) == 10
    more = list(gdata.RandomSampler(data, num_samples=25))  # whole permutations, then a cut
    assert len(more) == 25 and sorted(more[:10]) == data and sorted(more[10:20]) == data
    drawn = list(gdata.RandomSampler(data, replacement=True, num_samples=50,
                                     generator=gw.Generator().manual_seed(0)))
    assert len(drawn) == 50 and set(drawn) <= set(data) and len(set(drawn)) < 50
    with pytest.raises(ValueError, match="RandomSampler: num_samples"):
        gdata.RandomSampler(data, num_samples=0)


def test_subset_random_sampler_permutes_the_subset():
    indices = [4, 9, 2, 7]
    got = list(gdata.SubsetRandomSampler(indices))
    assert sorted(got) == sorted(indices) and len(gdata.SubsetRandomSampler(indices)) == 4


def test_weighted_random_sampler_follows_the_weights():
    weights = [0.0, 1.0, 3.0, 0.0]
    drawn = np.array(list(gdata.WeightedRandomSampler(weights, 4000)))
    assert set(drawn.tolist()) == {1, 2}  # zero weights are never drawn, as torch
    assert abs((drawn == 2).mean() - 0.75) < 0.04
    once = list(gdata.WeightedRandomSampler(weights, 2, replacement=False))
    assert sorted(once) == [1, 2]
    assert len(list(tdata.WeightedRandomSampler(weights, 2, replacement=False))) == len(once)
    for bad, match in (([-1.0, 1.0], "weights"), ([0.0, 0.0], "weights"),
                       ([1.0, float("nan")], "weights")):
        with pytest.raises(ValueError, match=f"WeightedRandomSampler: {match}"):
            gdata.WeightedRandomSampler(bad, 2)
    with pytest.raises(ValueError, match="without replacement"):
        gdata.WeightedRandomSampler(weights, 3, replacement=False)


def test_dataloader_takes_sampler_and_batch_sampler_like_torch():
    x = np.arange(10.0).reshape(10, 1).astype(np.float32)
    for lib, data in ((gdata, gw), (tdata, torch)):
        ds = lib.TensorDataset(data.tensor(x))
        sampler = lib.BatchSampler(lib.SequentialSampler(range(10)), 4, drop_last=False)
        batches = [b[0].shape[0] for b in lib.DataLoader(ds, batch_sampler=sampler)]
        assert batches == [4, 4, 2]
        assert len(lib.DataLoader(ds, batch_sampler=sampler)) == 3
        with pytest.raises(ValueError, match="mutually exclusive"):
            lib.DataLoader(ds, batch_sampler=sampler, batch_size=2)


def test_iterable_dataset_batches_its_stream_like_torch():
    def make(lib):
        class Stream(lib.IterableDataset):
            def __iter__(self):
                return iter(range(7))
        return Stream()

    for batch_size, drop_last in ((3, False), (3, True), (None, False)):
        ours = [np.asarray(b).tolist() for b in gdata.DataLoader(
            make(gdata), batch_size=batch_size, drop_last=drop_last)]
        theirs = [np.asarray(b).tolist() for b in tdata.DataLoader(
            make(tdata), batch_size=batch_size, drop_last=drop_last)]
        assert ours == theirs
    with pytest.raises(ValueError, match="IterableDataset"):
        gdata.DataLoader(make(gdata), shuffle=True)
    assert gdata.get_worker_info() is None and tdata.get_worker_info() is None
