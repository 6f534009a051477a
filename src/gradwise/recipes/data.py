"""The data a :class:`~gradwise.recipes.TrainConfig` names: loaded, split and scaled.

MNIST that cannot be found or downloaded is replaced by scikit-learn's 8x8 digits and the caller
is told so; every other data set that is missing raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradwise import data as gw_data
from gradwise.data import datasets as gw_datasets
from gradwise.recipes.config import ConfigError, TrainConfig

MIN_PIXEL_STD = 1e-6
"""Training images whose pixel std (on the 0..1 scale) is at most this are refused: they carry
no signal and dividing by it would make inf/NaN inputs. 1e-6 is far below one grey level
(1/255 ~ 0.004) spread over a single pixel of a 28x28 set."""

__all__ = ["TOY_SIZES", "PreparedData", "load_data"]

TOY_SIZES = {"spiral": (1000, 500), "xor": (800, 400)}
"""(train incl. validation, test) sample counts of the toy data sets."""

Notify = Callable[[str], Any]


def _quiet(message: str) -> None:
    pass


@dataclass
class PreparedData:
    """Float32 arrays ready for the model, split three ways, with what they are.

    Shape:
        images: x (N, 1, 28, 28) float32, standardised with the training ``mean``/``std``;
        points: x (N, 2) float32. y: (N,) int64 everywhere.
    """

    dataset: str
    source: str
    classes: list[str]
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    input_shape: tuple[int, ...]
    mean: float = 0.0
    std: float = 1.0
    fallback: str | None = None
    """Set when another data set replaced the one asked for: the sentence saying so."""


def load_data(
    config: TrainConfig,
    dataset: str | None = None,
    notify: Notify = _quiet,
    progress: bool = False,
    scaling: tuple[float, float] | None = None,
) -> PreparedData:
    """Load, split and scale the data set ``config`` names (or ``dataset`` when given).

    MNIST that cannot be found or downloaded is replaced by scikit-learn's 8x8 digits, and
    ``notify`` is told so in one line, only when neither ``dataset`` nor ``config.data_dir``
    is given (the default search of a fresh run). Other data sets, a named ``data_dir`` and
    a run's own data set (evaluate, resume) raise instead.

    Args:
        dataset: overrides ``config.dataset`` (a resumed run uses the data it started with).
        scaling: ``(mean, std)`` to use instead of the training set's (evaluation of a run).

    Raises:
        gradwise.data.DatasetNotFoundError: an image data set other than MNIST is not found
            (the message says where it looked).
    """
    name = dataset or config.dataset
    if name in TOY_SIZES:
        return _toy_data(config, name)
    # only the default search may fall back to the 8x8 digits: not a data_dir the user named,
    # and not a run (evaluate, resume) that trained on MNIST itself
    may_fall_back = dataset is None and config.data_dir is None
    image_set, fallback = _load_images(name, config.data_dir, notify, progress, may_fall_back)
    (x_train, y_train), (x_test, y_test) = image_set.splits()
    if len(x_train) < 2 or len(x_test) < 1:
        raise ConfigError(
            f"{image_set.name} from {image_set.source}: {len(x_train)} training and "
            f"{len(x_test)} test images; training needs at least 2 and 1"
        )
    rng = np.random.default_rng(config.seed)
    if config.limit_train is not None and config.limit_train < len(x_train):
        keep = rng.permutation(len(x_train))[: config.limit_train]
        x_train, y_train = x_train[keep], y_train[keep]
    train, val = gw_data.train_val_split(
        x_train, y_train, val_fraction=config.val_fraction, seed=rng
    )
    if scaling is None:
        pixels = gw_data.normalize_images(train[0])
        scaling = (float(pixels.mean(dtype=np.float64)), float(pixels.std(dtype=np.float64)))
        if not (np.isfinite(scaling[0]) and np.isfinite(scaling[1])
                and scaling[1] > MIN_PIXEL_STD):
            # every pixel the same (all-zero images): standardising would divide by 0
            raise gw_datasets.DatasetRefusedError(
                f"{image_set.name} from {image_set.source}: the training images' pixel "
                f"standard deviation is {scaling[1]:.3g} (mean {scaling[0]:.3g}); every pixel "
                "is the same (blank or corrupted images?), so they cannot be standardised"
            )
    mean, std = scaling

    def prepare(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = (gw_data.normalize_images(images) - np.float32(mean)) / np.float32(std)
        return x[:, None, :, :], labels  # (N, 1, 28, 28)

    return PreparedData(
        dataset=image_set.name,
        source=image_set.source,
        classes=list(image_set.classes),
        train=prepare(*train),
        val=prepare(*val),
        test=prepare(x_test, y_test),
        input_shape=(1, *x_test.shape[1:]),
        mean=mean,
        std=std,
        fallback=fallback,
    )


def _load_images(
    name: str, data_dir: str | None, notify: Notify, progress: bool, may_fall_back: bool = True
) -> tuple[gw_data.Dataset, str | None]:
    """The image set ``name``, or (``may_fall_back``) the 8x8 digits in MNIST's place with the
    sentence saying so."""
    try:
        # a --data-dir the user named is used as it is: never filled by a download unasked
        return gw_data.load_dataset(name, data_dir, download=data_dir is None,
                                    progress=progress), None
    except gw_data.DatasetNotFoundError as error:
        tried = _summarise_attempts(error.attempts)
        if error.refused:  # files were there but refused: say why, do not hide it
            tried += f"; refused: {error.refused[0]}"
        label = name.upper() if name == "mnist" else name
        if name != "mnist" or not may_fall_back:
            raise gw_data.DatasetNotFoundError(
                f"no {label} files found (tried: {tried}); put the four IDX files in a folder "
                f"and pass it with --data-dir DIR or set {gw_data.DATA_DIR_ENV}=DIR",
                error.attempts,
            ) from error
        fallback = (
            f"No {label} files found (tried: {tried}); training on scikit-learn's 8x8 digits "
            f"instead. Provide {label} with --data-dir or {gw_data.DATA_DIR_ENV}."
        )
        notify(fallback)
        return gw_data.load_dataset("digits"), fallback


def _summarise_attempts(attempts: Sequence[str]) -> str:
    """One short phrase per kind of place, from DatasetNotFoundError's attempt lines."""
    places: dict[str, list[str]] = {}
    for attempt in attempts:
        label, _, rest = attempt.partition(" ")
        where = rest.split(": ", 1)[0]
        places.setdefault(label, []).append(where)
    parts = []
    for label, wheres in places.items():
        if label == "download":
            urls = len(dict.fromkeys(wheres))  # a URL retried after a timeout counts once
            parts.append(f"download from {urls} mirror{'s' * (urls != 1)}")
        elif label == "system":
            parts.extend(
                str(root) for root in gw_datasets.SYSTEM_DATA_DIRS
                if any(Path(where).is_relative_to(root) for where in wheres)
            )
        else:
            prefix = {"data_dir": "--data-dir ", "cache": ""}.get(label, f"{label}=")
            parts.append(prefix + wheres[0])
    return ", ".join(parts)


def _toy_data(config: TrainConfig, name: str) -> PreparedData:
    makers: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
        "spiral": gw_data.make_spirals, "xor": gw_data.make_xor}
    maker = makers[name]
    n_train, n_test = TOY_SIZES[name]
    if config.limit_train is not None:
        n_train = min(n_train, config.limit_train)
    x, y = maker(n_samples=n_train, seed=config.seed)
    # a different seed stream for the test points, so they are new points from the same task
    x_test, y_test = maker(n_samples=n_test, seed=np.random.default_rng([config.seed, 1]))
    (x_train, y_train), (x_val, y_val) = gw_data.train_val_split(
        x, y, val_fraction=config.val_fraction, seed=config.seed
    )
    classes = ["arm 0", "arm 1"] if name == "spiral" else ["same sign", "different sign"]
    return PreparedData(
        dataset=name,
        source=f"generated: gradwise.data.{maker.__name__}(seed={config.seed})",
        classes=classes,
        train=(x_train, y_train),
        val=(x_val, y_val),
        test=(x_test, y_test),
        input_shape=(2,),
    )
