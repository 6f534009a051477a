"""Small synthetic data sets for seeing what a model can and cannot learn.

Every generator takes ``n_samples``, ``noise`` and ``seed`` (an int or a
``numpy.random.Generator``; the same seed always gives the same data), returns float32 inputs
and int64 labels, and shuffles the samples so the classes are interleaved.

Example:
    >>> x, y = make_spirals(n_samples=400, noise=0.05, seed=0)
    >>> x.shape, x.dtype, y.shape, y.dtype
    ((400, 2), dtype('float32'), (400,), dtype('int64'))
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "CUSTOMER_FEATURES",
    "CUSTOMER_RULE",
    "make_blobs",
    "make_circles",
    "make_customers",
    "make_moons",
    "make_spirals",
    "make_xor",
]

Seed = int | np.random.Generator


def make_spirals(
    n_samples: int = 300,
    noise: float = 0.05,
    n_classes: int = 2,
    turns: float = 1.5,
    seed: Seed = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class: not separable by any line.

    Arm ``k`` is the curve ``r(t) = t``, ``angle(t) = 2*pi*(turns*t + k/n_classes)`` for t in
    [0, 1], with Gaussian noise of standard deviation ``noise`` added to each coordinate.

    Shape:
        x: (n_samples, 2) float32 within about [-1, 1]; y: (n_samples,) int64 in [0, n_classes).
    """
    _check_common("make_spirals", n_samples, noise, min_samples=n_classes)
    _check_classes("make_spirals", n_classes)
    if turns <= 0:
        raise ValueError(f"make_spirals: turns must be positive, got {turns}")
    rng = _as_generator(seed)
    counts = _split_evenly(n_samples, n_classes)
    labels = np.repeat(np.arange(n_classes), counts)
    t = rng.uniform(0.0, 1.0, n_samples)
    angle = 2 * math.pi * (turns * t + labels / n_classes)
    points = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)  # (N, 2)
    points += rng.normal(0.0, noise, points.shape) if noise else 0.0
    return _shuffled(points, labels, rng)


def make_moons(
    n_samples: int = 200, noise: float = 0.1, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (class 0 on top, class 1 below and shifted right):
    :func:`sklearn.datasets.make_moons`, with gradwise's dtypes and argument checks.

    Shape:
        x: (n_samples, 2) float32; y: (n_samples,) int64 in {0, 1}.

    Raises:
        TypeError / ValueError: ``n_samples`` below 2 or not an int, ``noise`` negative, ``seed``
            neither an int nor a Generator.
    """
    _check_common("make_moons", n_samples, noise, min_samples=2)
    from sklearn import datasets as sklearn_datasets  # here: scikit-learn takes ~1 s to import

    points, labels = sklearn_datasets.make_moons(n_samples=n_samples, noise=noise or None,
                                                 random_state=_sklearn_seed(seed))
    return _typed(points, labels)


def make_circles(
    n_samples: int = 200, noise: float = 0.05, factor: float = 0.5, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A ring of radius 1 (class 0) around a ring of radius ``factor`` (class 1):
    :func:`sklearn.datasets.make_circles`, with gradwise's dtypes and argument checks.

    Shape:
        x: (n_samples, 2) float32; y: (n_samples,) int64 in {0, 1}.

    Raises:
        TypeError / ValueError: as :func:`make_moons`, and ``factor`` outside (0, 1).
    """
    _check_common("make_circles", n_samples, noise, min_samples=2)
    if not 0.0 < factor < 1.0:
        raise ValueError(f"make_circles: factor must be in (0, 1), got {factor}")
    from sklearn import datasets as sklearn_datasets  # here: scikit-learn takes ~1 s to import

    points, labels = sklearn_datasets.make_circles(
        n_samples=n_samples, noise=noise or None, factor=factor,
        random_state=_sklearn_seed(seed))
    return _typed(points, labels)


def make_xor(
    n_samples: int = 200, noise: float = 0.05, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform in [-1, 1]^2, labelled 1 where the two coordinates differ in sign.

    The label is decided before the noise is added, so with ``noise=0`` it is exactly
    ``(x[:, 0] > 0) != (x[:, 1] > 0)``.

    Shape:
        x: (n_samples, 2) float32; y: (n_samples,) int64 in {0, 1}.
    """
    _check_common("make_xor", n_samples, noise, min_samples=1)
    rng = _as_generator(seed)
    points = rng.uniform(-1.0, 1.0, (n_samples, 2))
    labels = ((points[:, 0] > 0) != (points[:, 1] > 0)).astype(np.int64)
    points += rng.normal(0.0, noise, points.shape) if noise else 0.0
    return _shuffled(points, labels, rng)


def make_blobs(
    n_samples: int = 300,
    noise: float = 0.4,
    n_classes: int | None = None,
    centers: ArrayLike | None = None,
    seed: Seed = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs, one per class, with standard deviation ``noise``:
    :func:`sklearn.datasets.make_blobs`, with gradwise's default centres, dtypes and checks.

    Without ``centers``, ``n_classes`` (default 3) centres sit evenly on a circle of radius 2;
    the classes get ``n_samples`` split as evenly as possible.

    Shape:
        x: (n_samples, D) float32 (D = 2 unless ``centers`` says otherwise);
        y: (n_samples,) int64 in [0, n_classes).
    """
    if centers is None:
        n_classes = 3 if n_classes is None else n_classes
        _check_classes("make_blobs", n_classes)
        angle = 2 * math.pi * np.arange(n_classes) / n_classes
        center_array = 2.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (K, 2)
    else:
        center_array = np.asarray(centers, dtype=np.float64)
        if center_array.ndim != 2 or len(center_array) < 2:
            raise ValueError(
                f"make_blobs: centers must have shape (n_classes >= 2, D), got {center_array.shape}"
            )
        if n_classes is not None and n_classes != len(center_array):
            raise ValueError(
                f"make_blobs: n_classes={n_classes} but {len(center_array)} centers were given"
            )
        n_classes = len(center_array)
    _check_common("make_blobs", n_samples, noise, min_samples=n_classes)
    from sklearn import datasets as sklearn_datasets  # here: scikit-learn takes ~1 s to import

    points, labels = sklearn_datasets.make_blobs(
        n_samples=n_samples, centers=center_array, cluster_std=noise,
        random_state=_sklearn_seed(seed))
    return _typed(points, labels)


CUSTOMER_FEATURES: tuple[str, ...] = (
    "age",
    "income",
    "visits",
    "time_on_site",
    "cart_items",
    "newsletter",
)
"""Column names of :func:`make_customers`' ``x``: years, thousands per year, visits in the last
30 days, minutes per visit, items in the basket, subscribed (0 or 1)."""

CUSTOMER_RULE: dict[str, float] = {
    "intercept": -1.0,
    "age": -0.4,
    "income": 0.5,
    "visits": 0.9,
    "time_on_site": 1.1,
    "cart_items": 0.8,
    "newsletter": 0.6,
}
"""The true model: log-odds of buying = intercept + sum of weight * z-score of each feature
(z-scores use the population means and standard deviations in ``_CUSTOMER_POPULATION``;
``newsletter`` enters as 0 or 1, not standardised)."""

# (mean, standard deviation) of each numeric feature in the generating population
_CUSTOMER_POPULATION: dict[str, tuple[float, float]] = {
    "age": (46.5, 16.7),
    "income": (50.6, 27.1),
    "visits": (3.0, 1.73),
    "time_on_site": (6.0, 4.24),
    "cart_items": (1.0, 1.0),
}


def make_customers(
    n_samples: int = 1000, noise: float = 0.5, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A tabular "will this customer buy?" task with named, differently scaled features.

    Features (see ``CUSTOMER_FEATURES``) are drawn from plausible distributions; the label is
    drawn as Bernoulli(sigmoid(logit + noise * N(0, 1))) where ``logit`` follows the known
    linear rule ``CUSTOMER_RULE``. The features are in their natural units (age in years,
    income in thousands), so standardising them first visibly helps training.

    Returns:
        ``(x, y, feature_names)``.

    Shape:
        x: (n_samples, 6) float32; y: (n_samples,) int64 in {0, 1}.
    """
    _check_common("make_customers", n_samples, noise, min_samples=1)
    rng = _as_generator(seed)
    columns = {
        "age": rng.integers(18, 76, n_samples).astype(np.float64),
        "income": np.clip(rng.lognormal(math.log(45.0), 0.5, n_samples), 10.0, 250.0),
        "visits": rng.poisson(3.0, n_samples).astype(np.float64),
        "time_on_site": rng.gamma(2.0, 3.0, n_samples),
        "cart_items": rng.poisson(1.0, n_samples).astype(np.float64),
        "newsletter": (rng.random(n_samples) < 0.3).astype(np.float64),
    }
    logit = np.full(n_samples, CUSTOMER_RULE["intercept"])
    for name, values in columns.items():
        mean, std = _CUSTOMER_POPULATION.get(name, (0.0, 1.0))
        logit += CUSTOMER_RULE[name] * (values - mean) / std
    logit += rng.normal(0.0, noise, n_samples) if noise else 0.0
    labels = (rng.random(n_samples) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    x = np.stack([columns[name] for name in CUSTOMER_FEATURES], axis=1).astype(np.float32)
    return x, labels, list(CUSTOMER_FEATURES)


def _as_generator(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise TypeError(f"seed must be an int or a numpy.random.Generator, got {type(seed).__name__}")


def _check_common(name: str, n_samples: int, noise: float, min_samples: int) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
        raise TypeError(f"{name}: n_samples must be an int, got {type(n_samples).__name__}")
    if n_samples < min_samples:
        raise ValueError(f"{name}: n_samples must be at least {min_samples}, got {n_samples}")
    if not noise >= 0:  # also rejects NaN
        raise ValueError(f"{name}: noise must be >= 0, got {noise}")


def _check_classes(name: str, n_classes: int) -> None:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise TypeError(f"{name}: n_classes must be an int, got {type(n_classes).__name__}")
    if n_classes < 2:
        raise ValueError(f"{name}: n_classes must be at least 2, got {n_classes}")


def _sklearn_seed(seed: Seed) -> int:
    """scikit-learn takes an int or a legacy RandomState, so it gets one draw from the seed's
    Generator (an int seed and a Generator seeded alike give the same data)."""
    return int(_as_generator(seed).integers(2**32 - 1))


def _typed(points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return points.astype(np.float32), labels.astype(np.int64)


def _split_evenly(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` counts differing by at most one (earlier parts larger)."""
    base, extra = divmod(total, parts)
    return [base + (index < extra) for index in range(parts)]


def _shuffled(
    points: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(points))
    return points[order].astype(np.float32), labels[order].astype(np.int64)
