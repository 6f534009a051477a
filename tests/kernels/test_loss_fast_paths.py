"""The cross-entropy step's shortcuts (issue 14, branch kernels-mlp2) give what the long way
gives: ``_mean`` is ``ndarray.mean`` bit for bit, the label check's min/max shortcut returns the
same mask and raises the same errors as building the mask first, and F.cross_entropy agrees
with torch for every ignore_index case, both kernel paths."""

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.ops import loss as loss_ops


def _long_way(name, classes, target, ignore_index):
    """The label check as it was before the shortcut: mask first, then min/max of the rest."""
    counted = np.ones(target.shape, dtype=bool) if ignore_index is None else (
        target != ignore_index)
    labels = target if counted.all() else target[counted]
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= classes:
            bad = low if low < 0 else high
            raise ValueError(f"{name}: target label {bad} is out of range for {classes} classes")
    return counted


MEAN_SIZES = [1, 2, 7, 8, 9, 127, 128, 129, 1000, 4097]


@pytest.mark.parametrize("size", MEAN_SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("values", ["normal", "large", "edges"])
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf + -inf, both ways
def test_mean_is_ndarray_mean_bitwise(size, dtype, values):
    rng = np.random.default_rng(size)
    data = rng.standard_normal(size) * (1e4 if values == "large" else 1.0)
    data = data.astype(dtype)
    if values == "edges" and size >= 4:
        data[1], data[2] = np.inf, -np.inf if size > 8 else 0.0
        data[3] = np.nan if size > 100 else -0.0
    for array in (data, data.reshape(1, -1), data[::2] if size > 1 else data):
        got = loss_ops._mean(array)
        expected = np.asarray(array.mean(), dtype=array.dtype)
        assert got.shape == () and got.dtype == array.dtype
        np.testing.assert_array_equal(got, expected)
        assert np.signbit(got) == np.signbit(expected)


TARGETS = {
    "plain": [0, 1, 2, 3, 4, 1],
    "top label": [4, 4, 0],
    "too high": [0, 5, 1],
    "negative": [0, -1, 2],
    "-100 inside": [0, -100, 2],
    "-100 and too high": [-100, 7, 1],
    "-100 and -3": [-100, -3, 1],
    "all -100": [-100, -100],
    "zeros": [0, 0, 0],
    "empty": [],
}


LABEL_CASES = [(name, dtype) for name in sorted(TARGETS) for dtype in (np.int64, np.uint8)
               if dtype == np.int64 or min(TARGETS[name], default=0) >= 0]  # uint8: no negatives


@pytest.mark.parametrize("ignore_index", [None, -100, -1, 0, 3, 10])
@pytest.mark.parametrize("name,dtype", LABEL_CASES)
def test_label_check_shortcut_matches_mask_first(ignore_index, name, dtype):
    target = np.asarray(TARGETS[name], dtype=dtype)
    try:
        expected = _long_way("cross_entropy", 5, target, ignore_index)
    except ValueError as error:
        with pytest.raises(ValueError, match=str(error)):
            loss_ops._class_targets_counted("cross_entropy", 5, target, ignore_index)
        return
    counted, every = loss_ops._class_targets_counted("cross_entropy", 5, target, ignore_index)
    np.testing.assert_array_equal(counted, expected)
    assert counted.dtype == bool and every == bool(expected.all())


@pytest.mark.parametrize("ignore_index", [-100, -1, 0, 2])
@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [0, -100, 2, 2], [0, -1, -1, 3], [2, 2, 2, 2]])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_ignore_cases_match_torch(jit_path, ignore_index, labels, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 4)).astype(dtype)
    target = np.asarray(labels, dtype=np.int64)
    if any(label < 0 and label != ignore_index for label in labels):
        with pytest.raises(ValueError, match="out of range"):
            gw.nn.functional.cross_entropy(gw.tensor(logits), target, ignore_index=ignore_index)
        return
    x = gw.tensor(logits, requires_grad=True)
    loss = gw.nn.functional.cross_entropy(x, target, ignore_index=ignore_index)
    loss.backward()
    tx = torch.tensor(logits, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(target), ignore_index=ignore_index)
    tloss.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss.numpy(), tloss.detach().numpy(), rtol=tolerance,
                               atol=tolerance)
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.numpy(), rtol=tolerance,
                               atol=tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mean_divides_a_count_float32_cannot_hold(dtype):
    # 2**24 + 3 is not a float32: NumPy divides a float32 sum by the count in float64
    values = np.broadcast_to(np.asarray(0.7, dtype), (2**24 + 3,))  # no memory: stride 0
    np.testing.assert_array_equal(loss_ops._mean(values), np.asarray(values.mean(), dtype))
