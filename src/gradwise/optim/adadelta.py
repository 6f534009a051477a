"""Adadelta: step sizes from running averages of squared gradients and squared updates."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.optim.optimizer import Optimizer, ParamsArg


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012, arXiv:1212.5701), PyTorch's update rule.

    For each parameter ``p`` with gradient ``g`` (``gamma`` = lr, ``lambda`` = weight_decay)::

        g = -g if maximize else g
        g = g + lambda * p                                  (if weight_decay != 0)
        v = rho * v + (1 - rho) * g * g                     (v0 = 0)
        delta = sqrt(u + eps) / sqrt(v + eps) * g           (u0 = 0)
        u = rho * u + (1 - rho) * delta * delta
        p = p - gamma * delta

    Args:
        params: Tensors, or dicts of param groups (see :class:`Optimizer`).
        lr: coefficient scaling delta before it is applied, >= 0 (default 1.0).
        rho: decay of the running averages, in [0, 1].
        eps: added inside both square roots, >= 0.
        weight_decay: L2 penalty added to the gradient, >= 0.
        maximize: ascend the objective instead of descending it.

    State per parameter: ``step`` (int), ``square_avg`` (v), ``acc_delta`` (u).

    Example:
        >>> opt = gw.optim.Adadelta(model.parameters(), lr=1.0)
    """

    def __init__(self, params: ParamsArg, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False) -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        self._check_number(group, "lr")
        self._check_number(group, "rho", high=1.0)
        self._check_number(group, "eps")
        self._check_number(group, "weight_decay")
        self._check_bool(group, "maximize")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        weight_decay, maximize = group["weight_decay"], group["maximize"]
        for param, grad, state in self._params_with_grad(group):
            data = param._data
            if not state:
                state["step"] = 0
                state["square_avg"] = np.zeros_like(data)
                state["acc_delta"] = np.zeros_like(data)
            g = self._effective_grad(data, grad, weight_decay, maximize)
            state["step"] += 1
            square_avg, acc_delta = state["square_avg"], state["acc_delta"]
            square_avg *= rho
            square_avg += (1 - rho) * g * g
            delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * g
            acc_delta *= rho
            acc_delta += (1 - rho) * delta * delta
            data -= lr * delta
