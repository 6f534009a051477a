"""Adagrad: per-coordinate learning rates from the sum of all past squared gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd.kernels import optim as _kernels
from gradwise.optim.optimizer import Optimizer, ParamsArg


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), PyTorch's update rule.

    For each parameter ``p`` with gradient ``g`` at step ``t`` (``gamma`` = lr,
    ``eta`` = lr_decay, ``lambda`` = weight_decay)::

        g = -g if maximize else g
        g = g + lambda * p                          (if weight_decay != 0)
        clr = gamma / (1 + (t - 1) * eta)
        s = s + g * g                               (s0 = initial_accumulator_value)
        p = p - clr * g / (sqrt(s) + eps)

    Args:
        params: Tensors, or dicts of param groups (see :class:`Optimizer`).
        lr: learning rate, >= 0.
        lr_decay: learning-rate decay per step, >= 0.
        weight_decay: L2 penalty added to the gradient, >= 0.
        initial_accumulator_value: starting value of the sum of squares, >= 0.
        eps: added to the denominator for stability, > 0.
        maximize: ascend the objective instead of descending it.

    State per parameter: ``step`` (int), ``sum``.

    Example:
        >>> opt = gw.optim.Adagrad(model.parameters(), lr=0.1)
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        fused=fused)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        self._check_number(group, "lr")
        self._check_number(group, "lr_decay")
        self._check_number(group, "weight_decay")
        self._check_number(group, "initial_accumulator_value")
        self._check_number(group, "eps", low_inclusive=False)
        self._check_bool(group, "maximize")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
        weight_decay, maximize = group["weight_decay"], group["maximize"]
        planned = self._planned_grads(group, ("sum",))
        if planned is not None:
            # the same arrays as last step: one group kernel call per chunk of parameters,
            # bitwise the per-parameter calls below (each parameter keeps its own step count)
            plan, grads = planned
            neg_clrs = []
            for state in plan.states:
                state["step"] += 1
                neg_clrs.append(-(lr / (1 + (state["step"] - 1) * lr_decay)))
            scalar = plan.dtype.type
            for arrays, chunk_grads, (chunk_clrs,) in zip(
                    plan.chunks, grads, _kernels.chunked([neg_clrs], plan.dtype), strict=True):
                _kernels.adagrad_group_kernel(arrays[0], chunk_grads, arrays[1], chunk_clrs,
                                              scalar(eps), scalar(weight_decay),
                                              weight_decay != 0, bool(maximize))
            return
        for param, grad, state in self._params_with_grad(group):
            data = param._data
            if not state:
                state["step"] = 0
                state["sum"] = np.full_like(data, group["initial_accumulator_value"])
            state["step"] += 1
            clr = lr / (1 + (state["step"] - 1) * lr_decay)
            square_sum = state["sum"]
            if _kernels.usable(data, grad, square_sum):
                # the fused loop (autograd/kernels/optim.py), bitwise the NumPy code below
                scalar = data.dtype.type
                _kernels.adagrad_kernel(
                    data.reshape(-1), grad.reshape(-1), square_sum.reshape(-1), scalar(-clr),
                    scalar(eps), scalar(weight_decay), weight_decay != 0, bool(maximize))
                continue
            g = self._effective_grad(data, grad, weight_decay, maximize)
            tmp = self._scratch(data, 1)

            np.multiply(g, g, out=tmp)
            square_sum += tmp
            np.sqrt(square_sum, out=tmp)
            tmp += eps
            np.divide(g, tmp, out=tmp)
            tmp *= -clr
            data += tmp
        self._plan_group(group, ("sum",))
