"""SGD: stochastic gradient descent with optional momentum, Nesterov momentum and L2 decay."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd.kernels import optim as _kernels
from gradwise.optim.optimizer import Optimizer, ParamsArg


class SGD(Optimizer):
    r"""Stochastic gradient descent, PyTorch's update rule.

    For each parameter ``p`` with gradient ``g`` at step ``t`` (``mu`` = momentum,
    ``tau`` = dampening, ``lambda`` = weight_decay, ``gamma`` = lr)::

        g = -g if maximize else g
        g = g + lambda * p                          (if weight_decay != 0)
        if mu != 0:
            b = g                                   (t = 1)
            b = mu * b + (1 - tau) * g              (t > 1)
            g = g + mu * b if nesterov else b
        p = p - gamma * g

    Args:
        params: Tensors, or dicts of param groups (see :class:`Optimizer`).
        lr: learning rate, >= 0.
        momentum: momentum factor, >= 0.
        dampening: dampening for momentum, in [0, 1].
        weight_decay: L2 penalty added to the gradient, >= 0.
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening == 0).
        maximize: ascend the objective instead of descending it.

    State per parameter: ``momentum_buffer`` (only when momentum != 0).

    Example:
        >>> opt = gw.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        self._check_number(group, "lr")
        self._check_number(group, "momentum", high=1.0, high_inclusive=False)
        self._check_number(group, "dampening", high=1.0)
        self._check_number(group, "weight_decay")
        self._check_bool(group, "nesterov")
        self._check_bool(group, "maximize")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{self._name}: nesterov=True needs momentum > 0 and "
                             f"dampening == 0, got momentum={group['momentum']!r}, "
                             f"dampening={group['dampening']!r}")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group[
            "maximize"]
        for param, grad, state in self._params_with_grad(group):
            data = param._data
            buf = state.get("momentum_buffer") if momentum != 0 else None
            if _kernels.usable(data, grad, buf):
                # the fused loop (autograd/kernels/optim.py), bitwise the NumPy code below
                first = momentum != 0 and buf is None
                if first:
                    buf = state["momentum_buffer"] = np.empty_like(data)
                scalar = data.dtype.type
                _kernels.sgd_kernel(
                    data.reshape(-1), grad.reshape(-1), (data if buf is None else buf).reshape(-1),
                    scalar(-lr), scalar(weight_decay), weight_decay != 0, bool(maximize),
                    scalar(momentum), momentum != 0, scalar(1 - dampening), dampening != 0,
                    bool(nesterov), first)
                continue
            step_dir = self._effective_grad(data, grad, weight_decay, maximize)
            if momentum != 0:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = step_dir.copy()
                else:
                    buf *= momentum
                    if dampening != 0:
                        tmp = self._scratch(data, 1)
                        np.multiply(step_dir, 1 - dampening, out=tmp)
                        buf += tmp
                    else:
                        buf += step_dir
                if nesterov:
                    tmp = self._scratch(data, 1)
                    np.multiply(buf, momentum, out=tmp)
                    tmp += step_dir
                    step_dir = tmp
                else:
                    step_dir = buf
            tmp = self._scratch(data, 1)
            np.multiply(step_dir, -lr, out=tmp)
            data += tmp
