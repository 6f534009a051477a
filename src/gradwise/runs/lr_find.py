"""The learning-rate range test on a recipe's model and training data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gradwise import nn
from gradwise.doctor import lr_find
from gradwise.recipes import TrainConfig, build_model, load_data, make_optimizer
from gradwise.runs.layout import Notify, quiet

__all__ = ["find_learning_rate"]

_LR_FIND_SETTINGS = {
    "sgd": ("momentum", "nesterov", "weight_decay"),
    "adam": ("weight_decay",),
    "adamw": ("weight_decay",),
    "rmsprop": ("weight_decay",),
    "adagrad": ("weight_decay",),
}
"""The optimizer settings the range test keeps from the recipe (the lr is swept)."""


def find_learning_rate(
    config: TrainConfig, plot_path: str | os.PathLike[str] | None, notify: Notify = quiet,
    **sweep: Any,
) -> tuple[Any, Path | None]:
    """Run the doctor's learning-rate range test on the recipe's model and training data.

    Args:
        sweep: passed to :func:`gradwise.doctor.lr_find` (``start_lr``, ``end_lr``,
            ``num_steps``, ``suggest``, ``progress``; the progress bar is off by default here).

    Returns:
        The result of :func:`gradwise.doctor.lr_find` (``suggested_lr``, ``lrs``, ``losses``)
        and the plot's path (None when not asked for).
    """
    data = load_data(config, notify=notify)
    model = build_model(config, data.input_shape, len(data.classes))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    optimizer = make_optimizer(config, model)
    settings = {key: value for key, value in optimizer.defaults.items()
                if key in _LR_FIND_SETTINGS[config.optimizer]}
    sweep.setdefault("progress", False)
    result = lr_find(model, loss_fn, data.train, optimizer_cls=type(optimizer),
                     batch_size=config.batch_size, seed=config.seed, **sweep, **settings)
    if plot_path is None:
        return result, None
    Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
    return result, result.plot(Path(plot_path))
