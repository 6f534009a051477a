"""Preprocessing helpers: standardising features, scaling images, splitting off validation data."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["normalize_images", "standardize", "train_val_split"]


def standardize(
    x: ArrayLike, mean: ArrayLike | None = None, std: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale each feature (column) to zero mean and unit standard deviation.

    Compute ``mean`` and ``std`` on the training data and pass them back in for validation and
    test data, so every split is scaled the same way. A feature with zero spread gets a
    standard deviation of 1 (it is centred, not divided by zero).

    Returns:
        ``(x_standardized, mean, std)``, all float32.

    Shape:
        x: (N, ...) ; mean, std: x.shape[1:].
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"standardize: need at least one sample, got shape {x.shape}")
    if (mean is None) != (std is None):
        raise ValueError("standardize: pass both mean and std, or neither")
    if mean is None:
        # accumulate in float64: float32 sums over many samples lose digits
        mean_array = x.mean(axis=0, dtype=np.float64).astype(np.float32)
        std_array = x.std(axis=0, dtype=np.float64).astype(np.float32)
        std_array[std_array == 0] = 1.0
    else:
        mean_array = np.asarray(mean, dtype=np.float32)
        std_array = np.asarray(std, dtype=np.float32)
        if np.any(std_array <= 0):
            raise ValueError("standardize: std must be positive everywhere")
        for label, array in (("mean", mean_array), ("std", std_array)):
            if array.shape != x.shape[1:] and array.ndim != 0:
                raise ValueError(
                    f"standardize: {label} has shape {array.shape}, expected {x.shape[1:]}"
                )
    return (x - mean_array) / std_array, mean_array, std_array


def normalize_images(images: ArrayLike) -> np.ndarray:
    """uint8 pixels (0..255) to float32 in [0, 1]."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"normalize_images: expected uint8 pixels, got {images.dtype}")
    return images.astype(np.float32) / np.float32(255.0)


def train_val_split(
    *arrays: ArrayLike, val_fraction: float = 0.1, seed: int | np.random.Generator = 0
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Shuffle and split arrays of equal length into training and validation parts.

    Returns ``((a_train, b_train, ...), (a_val, b_val, ...))``, the same nesting as the
    data set loaders. Dtypes are kept. The validation part has ``round(N * val_fraction)``
    samples (at least 1) and the training part keeps at least one.

    Example:
        >>> (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, val_fraction=0.1)
        ... # doctest: +SKIP
    """
    if not arrays:
        raise ValueError("train_val_split: needs at least one array")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"train_val_split: val_fraction must be in (0, 1), got {val_fraction}")
    converted = [np.asarray(array) for array in arrays]
    if any(array.ndim == 0 for array in converted):
        raise ValueError("train_val_split: every array needs a first dimension")
    lengths = {len(array) for array in converted}
    if len(lengths) != 1:
        shapes = ", ".join(str(array.shape) for array in converted)
        raise ValueError(f"train_val_split: arrays have different lengths: shapes {shapes}")
    n_samples = lengths.pop()
    if n_samples < 2:
        raise ValueError(f"train_val_split: need at least 2 samples, got {n_samples}")
    n_val = min(max(1, round(n_samples * val_fraction)), n_samples - 1)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    order = rng.permutation(n_samples)
    train_index, val_index = order[n_val:], order[:n_val]
    train = tuple(array[train_index] for array in converted)
    val = tuple(array[val_index] for array in converted)
    return train, val
