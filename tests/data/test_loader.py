"""DataLoader: batching, seeded shuffling, bitwise resume from state_dict, argument checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradwise.data.loader import ArrayDataset, DataLoader


def make_arrays(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return x, y


def epoch_labels(loader: DataLoader) -> list[list[int]]:
    return [batch[-1].tolist() for batch in loader]


class ListDataset:
    """A generic dataset: no arrays to index, only __len__ and __getitem__."""

    def __init__(self, n: int, pairs: bool = True):
        self.n, self.pairs = n, pairs

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        image = np.full((2, 2), index, dtype=np.float32)
        return (image, index) if self.pairs else image


def test_batches_in_order_without_shuffle() -> None:
    x, y = make_arrays(10)
    loader = DataLoader((x, y), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [b[0].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    assert batches[0][1].dtype == np.int64


def test_drop_last() -> None:
    loader = DataLoader(make_arrays(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [len(b[1]) for b in loader] == [4, 4]


def test_batches_are_copies() -> None:
    x, y = make_arrays(4)
    for batch_x, _ in DataLoader(ArrayDataset(x, y), batch_size=2):
        batch_x[:] = -1
    assert x.min() >= 0


def test_shuffle_is_a_new_permutation_each_epoch_and_deterministic_per_seed() -> None:
    loader = DataLoader(make_arrays(50), batch_size=8, shuffle=True, seed=0)
    first, second = epoch_labels(loader), epoch_labels(loader)
    assert sorted(sum(first, [])) == list(range(50))
    assert first != second
    twin = DataLoader(make_arrays(50), batch_size=8, shuffle=True, seed=0)
    assert [epoch_labels(twin), epoch_labels(twin)] == [first, second]
    other = DataLoader(make_arrays(50), batch_size=8, shuffle=True, seed=1)
    assert epoch_labels(other) != first


def test_accepts_a_generator_and_leaves_global_state_alone() -> None:
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    rng = np.random.default_rng(5)
    labels = epoch_labels(DataLoader(make_arrays(20), batch_size=5, shuffle=True, seed=rng))
    assert np.random.random() == before
    same = epoch_labels(
        DataLoader(make_arrays(20), batch_size=5, shuffle=True, seed=np.random.default_rng(5))
    )
    assert labels == same


def test_resume_at_epoch_boundary_through_json() -> None:
    loader = DataLoader(make_arrays(30), batch_size=7, shuffle=True, seed=42)
    epoch_labels(loader)
    state = json.loads(json.dumps(loader.state_dict()))
    expected = [epoch_labels(loader), epoch_labels(loader)]

    resumed = DataLoader(make_arrays(30), batch_size=7, shuffle=True, seed=999)
    resumed.load_state_dict(state)
    assert [epoch_labels(resumed), epoch_labels(resumed)] == expected
    assert resumed.state_dict() == loader.state_dict()


def test_resume_mid_epoch_gives_the_remaining_batches_bitwise() -> None:
    loader = DataLoader(make_arrays(30), batch_size=4, shuffle=True, seed=7)
    iterator = iter(loader)
    seen = [next(iterator)[1].tolist() for _ in range(3)]
    state = json.loads(json.dumps(loader.state_dict()))
    assert state["batch_index"] == 3
    rest = [batch[1].tolist() for batch in iterator]
    next_epoch = epoch_labels(loader)

    resumed = DataLoader(make_arrays(30), batch_size=4, shuffle=True, seed=0)
    resumed.load_state_dict(state)
    assert epoch_labels(resumed) == rest
    assert epoch_labels(resumed) == next_epoch
    assert sorted(sum(seen + rest, [])) == list(range(30))


def test_generic_datasets_are_stacked_per_field() -> None:
    batches = list(DataLoader(ListDataset(5), batch_size=2))
    images, labels = batches[0]
    assert images.shape == (2, 2, 2) and labels.tolist() == [0, 1]
    (single,) = next(iter(DataLoader(ListDataset(5, pairs=False), batch_size=3)))
    assert single.shape == (3, 2, 2)


def test_single_array_yields_one_tuples() -> None:
    (batch,) = next(iter(DataLoader(np.arange(6), batch_size=4)))
    assert batch.tolist() == [0, 1, 2, 3]


def test_array_dataset_indexing() -> None:
    x, y = make_arrays(5)
    dataset = ArrayDataset(x, y)
    assert len(dataset) == 5
    sample_x, sample_y = dataset[2]
    np.testing.assert_array_equal(sample_x, x[2])
    assert sample_y == 2


@pytest.mark.parametrize(
    ("make", "error", "fragment"),
    [
        (lambda: DataLoader(make_arrays(), batch_size=0), ValueError, "positive"),
        (lambda: DataLoader(make_arrays(), batch_size=-3), ValueError, "positive"),
        (lambda: DataLoader(make_arrays(), batch_size=2.0), TypeError, "int"),
        (lambda: DataLoader(make_arrays(), batch_size=True), TypeError, "int"),
        (lambda: DataLoader((np.zeros(3), np.zeros(4))), ValueError, "different lengths"),
        (lambda: DataLoader((np.zeros((0, 2)),)), ValueError, "empty"),
        (lambda: DataLoader(()), ValueError, "empty"),
        (lambda: DataLoader(make_arrays(3), batch_size=4, drop_last=True), ValueError, "no batch"),
        (lambda: DataLoader(42), TypeError, "data must be"),
        (lambda: ArrayDataset(), ValueError, "at least one"),
        (lambda: ArrayDataset(np.float32(1.0)), ValueError, "scalar"),
    ],
)
def test_bad_arguments_give_clear_errors(make, error, fragment) -> None:
    with pytest.raises(error, match=fragment):
        make()


def test_load_state_dict_refuses_foreign_or_malformed_state() -> None:
    loader = DataLoader(make_arrays(), batch_size=2, shuffle=True, seed=0)
    with pytest.raises(ValueError, match="malformed"):
        loader.load_state_dict({"epoch": 1})
    state = loader.state_dict()
    with pytest.raises(ValueError, match="outside"):
        loader.load_state_dict({**state, "batch_index": 99})
    mt_loader = DataLoader(
        make_arrays(), batch_size=2, seed=np.random.Generator(np.random.MT19937(0))
    )
    with pytest.raises(ValueError, match="MT19937"):
        loader.load_state_dict(mt_loader.state_dict())
    json.dumps(mt_loader.state_dict())  # other bit generators serialise too
    mt_loader.load_state_dict(json.loads(json.dumps(mt_loader.state_dict())))
