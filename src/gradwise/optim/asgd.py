"""ASGD: stochastic gradient descent with a decaying step and a running average of the weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.optim.optimizer import Optimizer, ParamsArg


class ASGD(Optimizer):
    r"""Averaged SGD (Polyak & Juditsky, 1992; the step schedule of Bottou, 2012, "Stochastic
    Gradient Descent Tricks"), PyTorch's update rule.

    For each parameter ``p`` with gradient ``g`` at step ``t`` (``gamma`` = lr, ``eta`` starts
    at lr, ``mu`` at 1, the average ``ax`` at 0)::

        g = -g if maximize else g
        g = g + weight_decay * p                   (if weight_decay != 0)
        p = p * (1 - lambd * eta) - eta * g
        ax = p if mu == 1 else ax + mu * (p - ax)
        eta = gamma / (1 + lambd * gamma * t) ** alpha
        mu = 1 / max(1, t - t0)

    ``eta`` and ``mu`` are kept rounded to float32, as torch keeps them in 0-d float32
    tensors. The average ``ax`` is in the state (``optimizer.state[p]["ax"]``); the parameters
    themselves follow the plain iterate, as in torch.

    Args:
        params: Tensors, or dicts of param groups (see :class:`Optimizer`).
        lr: learning rate, >= 0.
        lambd: decay term, >= 0.
        alpha: power of the eta update, >= 0.
        t0: the step at which averaging starts, >= 0.
        weight_decay: L2 penalty added to the gradient, >= 0.
        foreach, differentiable, capturable: torch's implementation switches (see
            :meth:`Optimizer._validate`).
        maximize: ascend the objective instead of descending it.

    State per parameter: ``step`` (int), ``eta``, ``mu`` (floats), ``ax``.

    Example:
        >>> opt = gw.optim.ASGD(model.parameters(), lr=0.01, t0=100)
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-2, lambd: float = 1e-4,
                 alpha: float = 0.75, t0: float = 1e6, weight_decay: float = 0,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        for name in ("lr", "lambd", "alpha", "t0", "weight_decay"):
            self._check_number(group, name)
        self._check_bool(group, "maximize")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
        weight_decay, maximize = group["weight_decay"], group["maximize"]
        for param, grad, state in self._params_with_grad(group):
            data = param._data
            if not state:
                state["step"] = 0
                state["eta"] = float(np.float32(lr))
                state["mu"] = 1.0
                state["ax"] = np.zeros_like(data)
            state["step"] += 1
            step = state["step"]
            g = self._effective_grad(data, grad, weight_decay, maximize)
            eta = state["eta"]
            data *= 1 - lambd * eta
            data -= eta * g
            ax = state["ax"]
            if state["mu"] != 1:
                ax += (data - ax) * data.dtype.type(state["mu"])
            else:
                ax[...] = data
            state["eta"] = float(np.float32(lr / (1 + lambd * lr * step) ** alpha))
            state["mu"] = float(np.float32(1 / max(1, step - t0)))
