"""Training recipes and everything a recipe needs before training starts.

- :mod:`~gradwise.recipes.config`: :class:`Recipe` (a named, tested set of choices),
  :class:`TrainConfig` (the exact settings of one run) and :func:`build_model`.
- :mod:`~gradwise.recipes.data`: :func:`load_data`, the data a config names, split and scaled.
- :mod:`~gradwise.recipes.factories`: :func:`make_optimizer` and :func:`make_scheduler`.

Example:
    >>> config = TrainConfig.from_recipe("fashion-mlp").updated({"epochs": 3})
    >>> model = build_model(config, input_shape=(1, 28, 28), n_classes=10)
"""

from gradwise.recipes.config import (
    DEFAULT_RECIPE,
    IMAGE_DATASETS,
    OPTIMIZERS,
    RECIPES,
    SCHEDULES,
    TOY_DATASETS,
    ConfigError,
    Recipe,
    TrainConfig,
    build_model,
    did_you_mean,
    get_recipe,
    read_config_file,
)
from gradwise.recipes.data import TOY_SIZES, PreparedData, load_data
from gradwise.recipes.factories import make_optimizer, make_scheduler

__all__ = [
    "DEFAULT_RECIPE",
    "IMAGE_DATASETS",
    "OPTIMIZERS",
    "RECIPES",
    "SCHEDULES",
    "TOY_DATASETS",
    "TOY_SIZES",
    "ConfigError",
    "PreparedData",
    "Recipe",
    "TrainConfig",
    "build_model",
    "did_you_mean",
    "get_recipe",
    "load_data",
    "make_optimizer",
    "make_scheduler",
    "read_config_file",
]
