"""Training recipes: a named, tested set of choices (data, model, optimizer, schedule, epochs).

A :class:`Recipe` is the starting point; :class:`TrainConfig` is the exact configuration of one
run (the recipe's values, overridden by a config file and by command-line flags) and is what
``config.json`` in a run directory holds. :func:`build_model` turns a config into a model, so a
run directory is enough to rebuild what was trained.

Example:
    >>> config = TrainConfig.from_recipe("fashion-mlp").updated({"epochs": 3})
    >>> model = build_model(config, input_shape=(1, 28, 28), n_classes=10)
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradwise import nn
from gradwise._shown import short_repr, shown

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli is tomllib's own backport (a dependency there)
    import tomli as tomllib

__all__ = [
    "DEFAULT_RECIPE",
    "IMAGE_DATASETS",
    "OPTIMIZERS",
    "RECIPES",
    "SCHEDULES",
    "TOY_DATASETS",
    "ConfigError",
    "Recipe",
    "TrainConfig",
    "build_model",
    "did_you_mean",
    "get_recipe",
    "read_config_file",
]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("none", "step", "cosine", "onecycle")
MODEL_KINDS = ("mlp", "cnn")
IMAGE_DATASETS = ("mnist", "fashion-mnist", "kmnist", "digits")
TOY_DATASETS = ("spiral", "xor")


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names it and what is allowed."""


#: upper bounds on a config's model size (see TrainConfig.validate)
MAX_LAYERS = 64
MAX_WIDTH = 65536
MAX_EPOCHS = 100_000
MAX_CONFIG_BYTES = 1 << 20
"""Largest --config file read (a real one is a few hundred bytes)."""
MAX_BATCH = 1 << 20
MODEL_MEMORY_FACTOR = 4
"""Bytes of float32 state per parameter while training: weights, gradients and two Adam
moments (SGD with momentum needs 3); activations come on top."""

@dataclass(frozen=True)
class Recipe:
    """A named training setup. Field meanings are those of :class:`TrainConfig`."""

    name: str
    description: str
    """The task in words (the data), never the settings: the model and the training are
    described from the settings that run (:meth:`TrainConfig.describe_model`,
    :meth:`TrainConfig.describe_training`), so a flag cannot make the description wrong."""
    dataset: str
    model: str
    hidden: tuple[int, ...]
    optimizer: str
    lr: float
    epochs: int
    batch_size: int
    schedule: str = "cosine"
    channels: tuple[int, ...] = ()
    dropout: float = 0.0
    batch_norm: bool = False
    weight_decay: float = 0.0
    clip_grad_norm: float | None = None
    label_smoothing: float = 0.0


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            "mnist-mlp",
            "handwritten digits (offline: scikit-learn's 8x8 digits)",
            dataset="mnist", model="mlp", hidden=(512, 256), dropout=0.2,
            optimizer="adamw", lr=1e-3, weight_decay=1e-2, schedule="cosine",
            epochs=15, batch_size=128,
        ),
        Recipe(
            "mnist-cnn",
            "handwritten digits (offline: scikit-learn's 8x8 digits)",
            dataset="mnist", model="cnn", channels=(32, 64), hidden=(128,), dropout=0.25,
            batch_norm=True, optimizer="adamw", lr=2e-3, weight_decay=1e-2,
            schedule="onecycle", epochs=12, batch_size=128,
        ),
        Recipe(
            "fashion-mlp",
            "Zalando's Fashion-MNIST clothing images",
            dataset="fashion-mnist", model="mlp", hidden=(1024, 512), dropout=0.3,
            optimizer="adamw", lr=1e-3, weight_decay=1e-2, schedule="cosine",
            epochs=25, batch_size=128, label_smoothing=0.1,
        ),
        Recipe(
            "fashion-cnn",
            "Zalando's Fashion-MNIST clothing images",
            dataset="fashion-mnist", model="cnn", channels=(32, 64), hidden=(256,),
            dropout=0.3, batch_norm=True, optimizer="adamw", lr=2e-3, weight_decay=1e-2,
            schedule="onecycle", epochs=15, batch_size=128, label_smoothing=0.1,
        ),
        Recipe(
            "digits-mlp",
            "scikit-learn's 8x8 digits (no files needed)",
            dataset="digits", model="mlp", hidden=(128,), dropout=0.1,
            optimizer="adam", lr=1e-3, schedule="cosine", epochs=20, batch_size=64,
        ),
        Recipe(
            "spiral",
            "two interleaved spirals (2-D points): a non-linear boundary",
            dataset="spiral", model="mlp", hidden=(64, 64), optimizer="adam", lr=1e-2,
            schedule="none", epochs=60, batch_size=32,
        ),
        Recipe(
            "xor",
            "the XOR problem (2-D points): the smallest task a line cannot solve",
            dataset="xor", model="mlp", hidden=(16,), optimizer="adam", lr=2e-2,
            schedule="none", epochs=30, batch_size=32,
        ),
    )
}
DEFAULT_RECIPE = "mnist-mlp"


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to ``value``, or ``''`` when none is close.

    Closeness is difflib's ratio (cutoff 0.6, its default), the rule Python uses for its own
    "Did you mean" hints on names.
    """
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``.

    Raises:
        ConfigError: no such recipe; the message suggests the closest name and lists them all.
    """
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(
            f"unknown recipe {short_repr(name)}{did_you_mean(name, RECIPES)}; choose from "
            f"{', '.join(RECIPES)}"
        ) from None


@dataclass
class TrainConfig:
    """The exact configuration of one training run (what ``config.json`` holds).

    Attributes:
        recipe: the recipe it started from.
        dataset: ``mnist``, ``fashion-mnist``, ``kmnist``, ``digits``, ``spiral`` or ``xor``.
        model: ``mlp`` or ``cnn``.
        hidden: MLP hidden widths; for a CNN, the widths of the dense layers after the convs.
        channels: CNN only: output channels of each conv block (conv 3x3, BN, ReLU, pool 2).
        dropout: dropout probability after each hidden layer.
        batch_norm: CNN only: batch normalisation after each conv.
        optimizer: ``sgd`` (momentum 0.9, Nesterov), ``adam``, ``adamw``, ``rmsprop`` or
            ``adagrad``.
        lr: learning rate (the peak rate for ``onecycle``).
        weight_decay: L2 (sgd, adam, rmsprop) or decoupled (adamw) weight decay.
        schedule: ``none``, ``step`` (x0.1 at 50% and 75% of the epochs), ``cosine`` (to 0 by
            the last step) or ``onecycle`` (warm up for 30% of the steps, then anneal).
        epochs, batch_size: as usual.
        clip_grad_norm: clip the global gradient norm to this value; None to not clip.
        label_smoothing: for the cross-entropy loss.
        val_fraction: fraction of the training data held out for validation.
        seed: seeds the data split, the initial weights, dropout and the batch order.
        limit_train: train on this many samples only (a quick run); None for all.
        data_dir: where to look for image data sets first; None for the default places.
        doctor: watch training and report problems at the end.
        detect_anomaly: trace NaN/Inf to the op that made it (slow).
    """

    recipe: str
    dataset: str
    model: str
    hidden: list[int]
    optimizer: str
    lr: float
    epochs: int
    batch_size: int
    schedule: str = "cosine"
    channels: list[int] = field(default_factory=list)
    dropout: float = 0.0
    batch_norm: bool = False
    weight_decay: float = 0.0
    clip_grad_norm: float | None = None
    label_smoothing: float = 0.0
    val_fraction: float = 0.1
    seed: int = 0
    limit_train: int | None = None
    data_dir: str | None = None
    doctor: bool = True
    detect_anomaly: bool = False

    @classmethod
    def from_recipe(cls, recipe: str | Recipe) -> TrainConfig:
        """The recipe's settings with the defaults for everything a recipe does not fix."""
        if isinstance(recipe, str):
            recipe = get_recipe(recipe)
        values = {f.name: getattr(recipe, f.name) for f in dataclasses.fields(Recipe)}
        values.pop("name")
        values.pop("description")
        values["hidden"] = list(values["hidden"])
        values["channels"] = list(values["channels"])
        return cls(recipe=recipe.name, **values)

    def describe_model(self) -> str:
        """The model these settings build, in words, e.g. ``784-1024-512-10 MLP, dropout
        0.3`` or ``CNN: conv blocks of 32, 64 channels with batch norm, dense 256, dropout
        0.3``: from the settings themselves (after a config file and flags), never from the
        recipe's description, so it always says what will be built."""
        if self.model == "cnn":
            norm = " with batch norm" if self.batch_norm else ""
            dense = f", dense {', '.join(map(str, self.hidden))}" if self.hidden else ""
            text = (f"CNN: conv blocks of {', '.join(map(str, self.channels))} channels{norm}"
                    f"{dense}")
        else:
            inputs, classes = (2, 2) if self.dataset in TOY_DATASETS else (784, 10)
            text = "-".join(map(str, (inputs, *self.hidden, classes))) + " MLP"
        return text + (f", dropout {self.dropout:g}" if self.dropout else "")

    def describe_training(self) -> str:
        """The update rule, learning-rate schedule and loss these settings train with, e.g.
        ``adamw lr 0.001, weight decay 0.01, cosine schedule, label smoothing 0.1``; a constant
        rate says ``constant lr``."""
        parts = [f"{self.optimizer} lr {self.lr:g}"]
        if self.weight_decay:
            parts.append(f"weight decay {self.weight_decay:g}")
        parts.append("constant lr" if self.schedule == "none" else f"{self.schedule} schedule")
        if self.label_smoothing:
            parts.append(f"label smoothing {self.label_smoothing:g}")
        if self.clip_grad_norm is not None:
            parts.append(f"gradient norm clipped to {self.clip_grad_norm:g}")
        return ", ".join(parts)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The setting names, in order (the keys of ``config.json`` and of config files)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def updated(self, values: Mapping[str, Any], labels: Mapping[str, str] | None = None
                ) -> TrainConfig:
        """A copy with ``values`` applied, converted to the field types and validated.

        Args:
            values: field name to new value; unknown names raise :class:`ConfigError`.
            labels: how to name a field in an error (e.g. ``{"lr": "--lr"}``); default: the
                field name.

        Raises:
            ConfigError: an unknown key, a value of the wrong type, or an invalid value.
        """
        labels = dict(labels or {})
        unknown = [key for key in values if key not in self.field_names()]
        if unknown:
            raise ConfigError(
                f"unknown setting {short_repr(unknown[0])}; known settings: "
                f"{', '.join(self.field_names())}"
            )
        changes = {
            key: _convert(key, value, labels.get(key, key)) for key, value in values.items()
        }
        config = dataclasses.replace(self, **changes)
        config.validate(labels)
        return config

    def validate(self, labels: Mapping[str, str] | None = None) -> None:
        """Raise :class:`ConfigError` for the first invalid setting, named as in ``labels``."""
        labels = labels or {}

        def fail(key: str, rule: str) -> None:
            raise ConfigError(f"{labels.get(key, key)} {rule}, got {_show(getattr(self, key))}")

        choices = {
            "dataset": IMAGE_DATASETS + TOY_DATASETS,
            "model": MODEL_KINDS,
            "optimizer": OPTIMIZERS,
            "schedule": SCHEDULES,
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                hint = did_you_mean(getattr(self, key), allowed) if isinstance(
                    getattr(self, key), str) else ""
                fail(key, f"must be one of {', '.join(allowed)}{hint}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            fail("lr", "must be > 0")
        for key, most in (("epochs", MAX_EPOCHS), ("batch_size", MAX_BATCH)):
            if getattr(self, key) < 1:
                fail(key, "must be >= 1")
            if getattr(self, key) > most:
                fail(key, f"must be at most {most}")
        if self.limit_train is not None and self.limit_train < 2:
            fail("limit_train", "must be >= 2")
        if self.limit_train is not None and self.limit_train > 10**9:
            fail("limit_train", "must be at most 10^9")
        if not (math.isfinite(self.lr) and self.lr <= 1e6):
            fail("lr", "must be finite and at most 1e6")
        if self.data_dir is not None:
            if len(self.data_dir) > 4096 or not self.data_dir:
                fail("data_dir", "must be a folder path of 1 to 4096 characters")
            try:
                self.data_dir.encode("utf-8")
            except UnicodeEncodeError:
                fail("data_dir", "must be valid UTF-8 (it is saved in config.json)")
        if len(self.recipe) > 200:
            fail("recipe", "must be at most 200 characters")
        if not 0.0 <= self.dropout < 1.0:
            fail("dropout", "must be in [0, 1)")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            fail("weight_decay", "must be >= 0")
        if self.clip_grad_norm is not None and not (
            math.isfinite(self.clip_grad_norm) and self.clip_grad_norm > 0
        ):
            fail("clip_grad_norm", "must be > 0")
        if not 0.0 <= self.label_smoothing < 1.0:
            fail("label_smoothing", "must be in [0, 1)")
        if not 0.0 < self.val_fraction < 1.0:
            fail("val_fraction", "must be in (0, 1)")
        if self.seed < 0:
            fail("seed", "must be >= 0")
        if self.seed >= 2**63:
            fail("seed", "must be below 2^63")
        if any(width < 1 for width in self.hidden):
            fail("hidden", "must be a list of positive widths")
        if self.model == "cnn" and (not self.channels or any(c < 1 for c in self.channels)):
            fail("channels", "must be a non-empty list of positive channel counts for a CNN")
        # caps far above any sensible model, so a typo fails here and not as a MemoryError later
        if len(self.hidden) > MAX_LAYERS or any(width > MAX_WIDTH for width in self.hidden):
            fail("hidden", f"allows at most {MAX_LAYERS} layers of at most {MAX_WIDTH} units")
        if len(self.channels) > MAX_LAYERS or any(c > MAX_WIDTH for c in self.channels):
            fail("channels", f"allows at most {MAX_LAYERS} layers of at most {MAX_WIDTH} channels")
        if self.model == "cnn" and self.dataset in TOY_DATASETS:
            fail("model", f"cnn needs image data; {self.dataset} is 2-D points, use mlp")
        # before any data is loaded: the data set fixes the input shape and the classes
        toy = self.dataset in TOY_DATASETS
        _check_model_fits(self, (2,) if toy else (1, 28, 28), 2 if toy else 10)

    def to_dict(self) -> dict[str, Any]:
        """Every setting as plain JSON types (what ``config.json`` holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Rebuild a config saved with :meth:`to_dict` (e.g. from a run's ``config.json``).

        The recipe must be one ``gradwise train`` knows, as when training: a run folder
        naming another (``"recipe": "nope"``) is refused by evaluate, predict, export and
        resume alike, instead of being rebuilt from whatever fields it holds.

        Raises:
            ConfigError: no recipe, an unknown recipe, or an invalid setting.
        """
        if not isinstance(data, Mapping) or "recipe" not in data:
            raise ConfigError("not a gradwise training config (no 'recipe' key)")
        if not isinstance(data["recipe"], str):
            raise ConfigError(f"recipe must be a string, got {_show(data['recipe'])}")
        base = cls.from_recipe(get_recipe(data["recipe"]))
        return base.updated(dict(data))


_TYPES: dict[str, type] = {
    "recipe": str, "dataset": str, "model": str, "optimizer": str, "schedule": str,
    "lr": float, "dropout": float, "weight_decay": float, "label_smoothing": float,
    "val_fraction": float, "epochs": int, "batch_size": int, "seed": int,
    "batch_norm": bool, "doctor": bool, "detect_anomaly": bool,
}
_OPTIONAL: dict[str, type] = {"clip_grad_norm": float, "limit_train": int, "data_dir": str}


def _show(value: Any) -> str:
    """A value as a user would have typed it: ``-1`` rather than ``-1.0``, strings quoted, cut
    to 80 characters; safe for ints of any size (see :func:`gradwise._shown.short_repr`)."""
    if isinstance(value, float):
        return f"{value:g}"
    return short_repr(value)


def _convert(key: str, value: Any, label: str) -> Any:
    """Check and convert one setting read from JSON/TOML or the command line."""
    if key in ("hidden", "channels"):
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"{label} must be a list of integers, got {_show(value)}")
        return [int(v) for v in value]
    kind = _OPTIONAL.get(key)
    if kind is not None and value is None:
        return None
    kind = kind or _TYPES[key]
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true or false, got {_show(value)}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            # a float as the file wrote it (1.0, not "1", which reads like a valid value)
            shown_value = repr(value) if isinstance(value, float) else _show(value)
            raise ConfigError(f"{label} must be an integer, got {shown_value}")
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise ConfigError(f"{label} must be a number, got {_show(value)}")
        try:
            return float(value)
        except OverflowError:  # an int past 1.8e308 (a TOML 0x... literal of any length)
            raise ConfigError(f"{label} must be a finite number, got {_show(value)}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{label} must be a string, got {_show(value)}")
    return value


def build_model(config: TrainConfig, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """The model ``config`` describes, initialised from ``config.seed``.

    Args:
        input_shape: one sample's shape: ``(1, 28, 28)`` for images, ``(2,)`` for points.
        n_classes: the output width (logits).

    Every layer gets its own Generator derived from the seed, so the same config always
    gives the same initial weights and the same dropout masks.
    """
    _check_model_fits(config, input_shape, n_classes)
    seeds = np.random.SeedSequence(config.seed).spawn(64)
    next_seed = iter(seeds).__next__
    layers: list[nn.Module] = []

    def dense_stack(in_features: int) -> int:
        for width in config.hidden:
            layers.append(nn.Linear(in_features, width, rng=np.random.default_rng(next_seed())))
            layers.append(nn.ReLU())
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout, rng=np.random.default_rng(next_seed())))
            in_features = width
        return in_features

    if config.model == "cnn":
        if len(input_shape) != 3:
            raise ConfigError(f"a cnn needs (C, H, W) images, got samples of shape {input_shape}")
        channels, height, width = input_shape
        for out_channels in config.channels:
            layers.append(nn.Conv2d(channels, out_channels, 3, padding=1,
                                    rng=np.random.default_rng(next_seed())))
            if config.batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU())
            layers.append(nn.MaxPool2d(2))
            channels, height, width = out_channels, height // 2, width // 2
        layers.append(nn.Flatten())
        features = dense_stack(channels * height * width)
    else:
        layers.append(nn.Flatten())
        features = dense_stack(int(np.prod(input_shape)))
    layers.append(nn.Linear(features, n_classes, rng=np.random.default_rng(next_seed())))
    return nn.Sequential(*layers)


def model_parameter_count(config: TrainConfig, input_shape: tuple[int, ...],
                          n_classes: int) -> int:
    """Parameters of the model :func:`build_model` would build, counted without building it."""
    count = 0
    if config.model == "cnn" and len(input_shape) == 3:
        channels, height, width = input_shape
        for out_channels in config.channels:
            count += out_channels * channels * 9 + out_channels
            count += 2 * out_channels if config.batch_norm else 0
            channels, height, width = out_channels, height // 2, width // 2
        features = channels * height * width
    else:
        features = math.prod(input_shape)
    for width in config.hidden:
        count += features * width + width
        features = width
    return count + features * n_classes + n_classes


def _check_model_fits(config: TrainConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
    """Refuse, before allocating, a model whose training state cannot fit in memory."""
    from gradwise.safetensors_io import available_memory

    parameters = model_parameter_count(config, input_shape, n_classes)
    need = parameters * 4 * MODEL_MEMORY_FACTOR
    have = available_memory()
    if need > have:
        raise ConfigError(
            f"the model has {parameters:,} parameters and needs about {need / 2**30:.1f} GiB to "
            f"train (weights, gradients, optimizer state); {have / 2**30:.1f} GiB is available. "
            "Use smaller hidden widths"
        )


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Settings from a JSON or TOML file, keys as in TrainConfig.

    Dashes in keys are read as underscores (``batch-size`` = ``batch_size``). The values are
    not checked here; :meth:`TrainConfig.updated` does that and rejects unknown keys.

    Raises:
        ConfigError: the file cannot be read or parsed, or does not hold a table of settings.
    """
    from gradwise.safefile import read_untrusted

    path = Path(path)
    if not os.path.lexists(path):
        raise ConfigError(f"{shown(path)}: no such config file")
    payload = read_untrusted(path, max_bytes=MAX_CONFIG_BYTES, error=ConfigError,
                             what="config file")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{shown(path)}: cannot read: not UTF-8 text ({error.reason})") from None
    if path.suffix.lower() == ".toml":
        try:
            values = tomllib.loads(text)
        except (ValueError, RecursionError) as error:  # TOMLDecodeError is a ValueError
            raise ConfigError(f"{shown(path)}: invalid TOML: {_parse_problem(error)}") from None
    else:
        try:
            values = json.loads(text)
        except (ValueError, RecursionError) as error:  # also numbers with too many digits
            raise ConfigError(f"{shown(path)}: invalid JSON: {_parse_problem(error)}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{shown(path)}: expected a table of settings, got "
                          f"{type(values).__name__}")
    return {str(key).replace("-", "_"): value for key, value in values.items()}


def _parse_problem(error: Exception) -> str:
    """What a JSON/TOML parser objected to, in one line."""
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error).splitlines()[0] if str(error) else type(error).__name__
