"""Toy data sets: shapes, determinism, and the geometric facts each one is meant to show."""

from __future__ import annotations

import numpy as np
import pytest

from gradwise.data.toy import (
    CUSTOMER_FEATURES,
    make_blobs,
    make_circles,
    make_customers,
    make_moons,
    make_spirals,
    make_xor,
)

GENERATORS_2D = (make_spirals, make_moons, make_circles, make_xor, make_blobs)


def nearest_neighbour_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out 1-NN accuracy: high when classes form coherent regions."""
    distances = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    return float((y[distances.argmin(1)] == y).mean())


def linear_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """Training accuracy of a least-squares linear classifier (one-vs-rest)."""
    features = np.hstack([x, np.ones((len(x), 1))])
    targets = np.eye(y.max() + 1)[y]
    weights, *_ = np.linalg.lstsq(features, targets, rcond=None)
    return float(((features @ weights).argmax(1) == y).mean())


@pytest.mark.parametrize("generator", GENERATORS_2D, ids=lambda f: f.__name__)
def test_shapes_dtypes_and_determinism(generator) -> None:
    x, y = generator(n_samples=101, seed=3)
    assert x.shape == (101, 2) and x.dtype == np.float32
    assert y.shape == (101,) and y.dtype == np.int64
    x_again, y_again = generator(n_samples=101, seed=3)
    np.testing.assert_array_equal(x, x_again)
    np.testing.assert_array_equal(y, y_again)
    x_other, _ = generator(n_samples=101, seed=4)
    assert not np.array_equal(x, x_other)
    x_gen, _ = generator(n_samples=101, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(x, x_gen)  # a Generator seeded alike gives the same data


@pytest.mark.parametrize("generator", GENERATORS_2D, ids=lambda f: f.__name__)
def test_classes_are_balanced_and_shuffled(generator) -> None:
    _, y = generator(n_samples=200, seed=0)
    counts = np.bincount(y)
    allowed_gap = 30 if generator is make_xor else 1  # xor labels come from random positions
    assert counts.max() - counts.min() <= allowed_gap
    assert len(np.unique(y[:20])) > 1  # not sorted by class


@pytest.mark.parametrize("generator", [make_spirals, make_moons, make_circles, make_xor])
def test_nonlinear_sets_defeat_a_linear_model_but_not_nearest_neighbours(generator) -> None:
    x, y = generator(n_samples=400, seed=0)
    assert nearest_neighbour_accuracy(x, y) > 0.9
    assert linear_accuracy(x, y) < 0.9


def test_blobs_are_linearly_separable() -> None:
    x, y = make_blobs(n_samples=300, seed=0)
    assert linear_accuracy(x, y) > 0.95


def test_spirals_have_one_arm_per_class() -> None:
    x, y = make_spirals(n_samples=600, n_classes=3, noise=0.0, seed=0)
    assert set(np.unique(y)) == {0, 1, 2}
    assert np.abs(x).max() <= 1.0 + 1e-6
    assert nearest_neighbour_accuracy(x, y) > 0.97


def test_circles_inner_ring_has_the_smaller_radius() -> None:
    x, y = make_circles(n_samples=400, noise=0.0, factor=0.3, seed=0)
    radius = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(radius[y == 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(radius[y == 1], 0.3, atol=1e-6)


def test_xor_label_is_the_sign_rule_without_noise() -> None:
    x, y = make_xor(n_samples=500, noise=0.0, seed=0)
    np.testing.assert_array_equal(y, ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(np.int64))


def test_blobs_with_explicit_centers() -> None:
    centers = [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]]
    x, y = make_blobs(n_samples=50, noise=0.1, centers=centers, seed=0)
    assert x.shape == (50, 3)
    np.testing.assert_allclose(x[y == 1].mean(0), centers[1], atol=0.1)
    with pytest.raises(ValueError, match="n_classes=3 but 2 centers"):
        make_blobs(centers=centers, n_classes=3)


def test_customers_follow_the_documented_rule() -> None:
    x, y, names = make_customers(n_samples=4000, seed=0)
    assert names == list(CUSTOMER_FEATURES) and x.shape == (4000, len(names))
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert 0.2 < y.mean() < 0.6
    column = dict(zip(names, x.T, strict=True))
    buyers, others = y == 1, y == 0
    for feature in ("time_on_site", "visits", "income", "cart_items", "newsletter"):
        assert column[feature][buyers].mean() > column[feature][others].mean(), feature
    assert column["age"][buyers].mean() < column["age"][others].mean()
    assert column["age"].min() >= 18 and column["income"].min() >= 10


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: make_moons(n_samples=0), ValueError),
        (lambda: make_moons(n_samples=2.5), TypeError),
        (lambda: make_circles(noise=-0.1), ValueError),
        (lambda: make_circles(factor=1.5), ValueError),
        (lambda: make_spirals(n_classes=1), ValueError),
        (lambda: make_xor(noise=float("nan")), ValueError),
        (lambda: make_blobs(seed="zero"), TypeError),
        (lambda: make_customers(seed=None), TypeError),
    ],
)
def test_bad_arguments_are_refused(call, error) -> None:
    with pytest.raises(error):
        call()
