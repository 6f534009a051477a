"""``default_collate``/``default_convert`` and DataLoader batches keep torch's container types
(issue 11, review 3): lists for tuples and lists of samples, namedtuples and dict types kept,
strings as lists, NumPy arrays converted; compared with torch."""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np
import pytest

import gradwise as gw
import gradwise.utils.data as gdata

torch = pytest.importorskip("torch")
tdata = torch.utils.data

Point = namedtuple("Point", ["x", "y"])


def _plain(value):
    """A comparable form: container type names, tensors as (dtype, shape, values)."""
    if isinstance(value, torch.Tensor | gw.Tensor):
        array = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        return ("tensor", str(value.dtype).replace("torch.", ""), tuple(value.shape),
                array.tolist())
    if isinstance(value, np.ndarray):
        return ("ndarray", str(value.dtype), value.tolist())
    if isinstance(value, dict):
        return (type(value).__name__, {k: _plain(v) for k, v in value.items()})
    if isinstance(value, tuple | list):
        return (type(value).__name__, [_plain(v) for v in value])
    return (type(value).__name__, value)


def _samples(m):
    return {
        "tuples": [(1, 2.5), (3, 4.5)],
        "lists": [[1, 2], [3, 4]],
        "namedtuples": [Point(1, 2.0), Point(3, 4.0)],
        "dicts": [{"a": 1, "b": [1.0, 2.0]}, {"a": 2, "b": [3.0, 4.0]}],
        "ordered": [OrderedDict(a=np.ones(2)), OrderedDict(a=np.zeros(2))],
        "strings": [("cat", 0), ("dog", 1)],
        "arrays": [np.arange(3, dtype=np.int32), np.arange(3, dtype=np.int32) + 1],
        "numpy-scalars": [np.float32(1.5), np.float32(2.5)],
        "bools": [True, False],
        "tensors": [(m.tensor([1.0, 2.0]), m.tensor(0)), (m.tensor([3.0, 4.0]), m.tensor(1))],
        "nested": [{"x": (np.ones(2), [1, 2])}, {"x": (np.zeros(2), [3, 4])}],
    }


@pytest.mark.parametrize("kind", sorted(_samples(torch)))
def test_default_collate_matches_torch(kind):
    expected = tdata.default_collate(_samples(torch)[kind])
    assert _plain(gdata.default_collate(_samples(gw)[kind])) == _plain(expected)


@pytest.mark.parametrize("value", [np.ones(2), np.float64(2.0), (np.ones(2), 3), [np.ones(2)],
                                   {"a": np.arange(2)}, Point(np.ones(1), "s"), "text",
                                   np.array(["a", "b"]), 5])
def test_default_convert_matches_torch(value):
    assert _plain(gdata.default_convert(value)) == _plain(tdata.default_convert(value))


def test_unequal_sequences_are_refused_as_torch():
    for module in (tdata, gdata):
        with pytest.raises(RuntimeError, match="each element in list of batch should be of "
                                               "equal size"):
            module.default_collate([[1, 2], [3]])


@pytest.mark.parametrize("batch_size", [2, None])
def test_dataloader_batches_have_torchs_types(batch_size):
    def batches(m, data):
        x = m.arange(8.0).reshape(4, 2)
        y = m.arange(4)
        tensor_batches = list(data.DataLoader(data.TensorDataset(x, y), batch_size=batch_size))
        pairs = list(data.DataLoader([(np.ones(2) * i, i) for i in range(3)],
                                     batch_size=batch_size))
        return _plain(tensor_batches), _plain(pairs)

    assert batches(gw, gdata) == batches(torch, tdata)
