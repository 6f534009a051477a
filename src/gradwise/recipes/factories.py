"""The optimizer and learning-rate schedule a :class:`~gradwise.recipes.TrainConfig` names."""

from __future__ import annotations

from gradwise import nn, optim
from gradwise.recipes.config import TrainConfig

__all__ = ["make_optimizer", "make_scheduler"]


def make_optimizer(config: TrainConfig, model: nn.Module) -> optim.Optimizer:
    """The optimizer ``config.optimizer`` names, at ``config.lr`` and ``config.weight_decay``.

    SGD uses Nesterov momentum 0.9; the others keep their PyTorch defaults.
    """
    params = list(model.parameters())
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=config.lr, momentum=0.9, nesterov=True,
                         weight_decay=config.weight_decay)
    kinds = {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop,
             "adagrad": optim.Adagrad}
    return kinds[config.optimizer](params, lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(
    config: TrainConfig, optimizer: optim.Optimizer, steps_per_epoch: int
) -> optim.lr_scheduler.LRScheduler | None:
    """The schedule ``config.schedule`` names, stepped once per optimizer step."""
    total = config.epochs * steps_per_epoch
    schedules = optim.lr_scheduler
    if config.schedule == "step":
        milestones = sorted({max(1, total // 2), max(1, (3 * total) // 4)})
        return schedules.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if config.schedule == "cosine":
        return schedules.CosineAnnealingLR(optimizer, T_max=max(1, total))
    if config.schedule == "onecycle":
        return schedules.OneCycleLR(optimizer, max_lr=config.lr, total_steps=max(2, total))
    return None
