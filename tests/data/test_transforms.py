"""Preprocessing helpers: standardize, normalize_images, train_val_split."""

from __future__ import annotations

import numpy as np
import pytest

from gradwise.data.transforms import normalize_images, standardize, train_val_split


def test_standardize_gives_zero_mean_unit_std_in_float32() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal([100.0, -3.0, 0.5], [20.0, 0.1, 1.0], (500, 3))
    z, mean, std = standardize(x)
    assert z.dtype == mean.dtype == std.dtype == np.float32
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-4)


def test_standardize_reuses_training_statistics() -> None:
    train = np.array([[0.0, 10.0], [2.0, 30.0]])
    _, mean, std = standardize(train)
    z, mean_again, _ = standardize(np.array([[1.0, 20.0]]), mean, std)
    np.testing.assert_allclose(z, [[0.0, 0.0]])
    np.testing.assert_array_equal(mean_again, mean)


def test_standardize_constant_feature_is_centred_not_divided_by_zero() -> None:
    z, _, std = standardize(np.array([[5.0, 1.0], [5.0, 3.0]]))
    assert np.isfinite(z).all() and std[0] == 1.0
    np.testing.assert_array_equal(z[:, 0], [0.0, 0.0])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((np.zeros((0, 2)),), "at least one sample"),
        ((np.ones((2, 2)), np.zeros(2), None), "both mean and std"),
        ((np.ones((2, 2)), np.zeros(2), np.zeros(2)), "positive"),
        ((np.ones((2, 2)), np.zeros(3), np.ones(3)), "shape"),
    ],
)
def test_standardize_errors(args, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        standardize(*args)


def test_normalize_images() -> None:
    images = np.array([[0, 128, 255]], dtype=np.uint8)
    scaled = normalize_images(images)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, [[0.0, 128 / 255, 1.0]])
    with pytest.raises(TypeError, match="uint8"):
        normalize_images(scaled)


def test_train_val_split_keeps_pairs_together_and_is_deterministic() -> None:
    x = np.arange(100).reshape(50, 2)
    y = np.arange(50)
    (x_train, y_train), (x_val, y_val) = train_val_split(x, y, val_fraction=0.2, seed=1)
    assert len(x_val) == 10 and len(x_train) == 40
    np.testing.assert_array_equal(x_train[:, 0] // 2, y_train)  # rows still match labels
    np.testing.assert_array_equal(x_val[:, 0] // 2, y_val)
    assert set(y_train).isdisjoint(y_val) and len(set(y_train) | set(y_val)) == 50
    again = train_val_split(x, y, val_fraction=0.2, seed=1)
    np.testing.assert_array_equal(again[1][1], y_val)
    assert not np.array_equal(train_val_split(x, y, val_fraction=0.2, seed=2)[1][1], y_val)
    assert y_train.dtype == y.dtype


@pytest.mark.parametrize(
    ("args", "kwargs", "fragment"),
    [
        ((), {}, "at least one array"),
        ((np.arange(5),), {"val_fraction": 0.0}, "val_fraction"),
        ((np.arange(5),), {"val_fraction": 1.0}, "val_fraction"),
        ((np.arange(5), np.arange(4)), {}, "different lengths"),
        ((np.arange(1),), {}, "at least 2 samples"),
    ],
)
def test_train_val_split_errors(args, kwargs, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        train_val_split(*args, **kwargs)


def test_tiny_split_keeps_one_sample_each_side() -> None:
    (train,), (val,) = train_val_split(np.arange(2), val_fraction=0.9)
    assert len(train) == len(val) == 1
