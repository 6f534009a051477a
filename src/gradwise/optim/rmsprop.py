"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd.kernels import optim as _kernels
from gradwise.optim.optimizer import Optimizer, ParamsArg


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, 2012), PyTorch's update rule.

    For each parameter ``p`` with gradient ``g`` (``gamma`` = lr, ``lambda`` = weight_decay,
    ``mu`` = momentum)::

        g = -g if maximize else g
        g = g + lambda * p                          (if weight_decay != 0)
        v = alpha * v + (1 - alpha) * g * g         (v0 = 0)
        g_avg = alpha * g_avg + (1 - alpha) * g     (centered; g_avg0 = 0)
        denom = sqrt(v - g_avg ** 2) + eps          (centered)
        denom = sqrt(v) + eps                       (otherwise)
        b = mu * b + g / denom; p = p - gamma * b   (if momentum > 0; b0 = 0)
        p = p - gamma * g / denom                   (otherwise)

    Args:
        params: Tensors, or dicts of param groups (see :class:`Optimizer`).
        lr: learning rate, >= 0.
        alpha: smoothing constant of the squared-gradient average, in [0, 1].
        eps: added to the denominator for stability, > 0.
        weight_decay: L2 penalty added to the gradient, >= 0.
        momentum: momentum factor, >= 0.
        centered: normalise by an estimate of the gradient's variance instead of its second
            moment.
        maximize: ascend the objective instead of descending it.

    State per parameter: ``step`` (int), ``square_avg``, ``momentum_buffer`` (momentum > 0),
    ``grad_avg`` (centered).

    Example:
        >>> opt = gw.optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9)
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, capturable: bool = False, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, capturable=capturable,
                        foreach=foreach, maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        self._check_number(group, "lr")
        self._check_number(group, "alpha", high=1.0)
        self._check_number(group, "eps", low_inclusive=False)
        self._check_number(group, "weight_decay")
        self._check_number(group, "momentum", high=1.0, high_inclusive=False)
        self._check_bool(group, "centered")
        self._check_bool(group, "maximize")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        weight_decay, momentum = group["weight_decay"], group["momentum"]
        centered, maximize = group["centered"], group["maximize"]
        keys = (("square_avg",) + (("grad_avg",) if centered else ())
                + (("momentum_buffer",) if momentum > 0 else ()))
        planned = self._planned_grads(group, keys)
        if planned is not None:
            # the same arrays as last step: one group kernel call per chunk of parameters,
            # bitwise the per-parameter calls below
            plan, grads = planned
            for state in plan.states:
                state["step"] += 1
            scalar = plan.dtype.type
            settings = (scalar(-lr), scalar(alpha), scalar(1 - alpha), scalar(eps),
                        scalar(weight_decay), weight_decay != 0, bool(maximize), bool(centered),
                        scalar(momentum), momentum > 0)
            for arrays, chunk_grads in zip(plan.chunks, grads, strict=True):
                square_avgs = arrays[1]
                grad_avgs = arrays[2] if centered else square_avgs
                bufs = arrays[-1] if momentum > 0 else square_avgs
                _kernels.rmsprop_group_kernel(arrays[0], chunk_grads, square_avgs, grad_avgs,
                                              bufs, *settings)
            return
        for param, grad, state in self._params_with_grad(group):
            data = param._data
            if not state:
                state["step"] = 0
                state["square_avg"] = np.zeros_like(data)
            state["step"] += 1
            square_avg = state["square_avg"]
            grad_avg = buf = None
            if centered:
                grad_avg = state.get("grad_avg")
                if grad_avg is None:
                    grad_avg = state["grad_avg"] = np.zeros_like(data)
            if momentum > 0:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.zeros_like(data)
            if _kernels.usable(data, grad, square_avg, grad_avg, buf):
                # the fused loop (autograd/kernels/optim.py), bitwise the NumPy code below
                scalar = data.dtype.type
                flat_s = square_avg.reshape(-1)
                _kernels.rmsprop_kernel(
                    data.reshape(-1), grad.reshape(-1), flat_s,
                    flat_s if grad_avg is None else grad_avg.reshape(-1),
                    flat_s if buf is None else buf.reshape(-1), scalar(-lr), scalar(alpha),
                    scalar(1 - alpha), scalar(eps), scalar(weight_decay), weight_decay != 0,
                    bool(maximize), bool(centered), scalar(momentum), momentum > 0)
                continue
            g = self._effective_grad(data, grad, weight_decay, maximize)
            tmp = self._scratch(data, 1)

            square_avg *= alpha
            np.multiply(g, 1 - alpha, out=tmp)
            tmp *= g
            square_avg += tmp
            if grad_avg is not None:
                # grad_avg.lerp_(g, 1 - alpha)
                np.subtract(g, grad_avg, out=tmp)
                tmp *= 1 - alpha
                grad_avg += tmp
                np.multiply(grad_avg, grad_avg, out=tmp)
                np.subtract(square_avg, tmp, out=tmp)
                # torch computes square_avg - grad_avg^2 with one fused multiply-add, so an
                # overflowed square_avg (inf) minus a finite grad_avg^2 that overflowed too stays
                # inf (the step is then 0) instead of inf - inf = NaN (issue 14: grad 1e30 in
                # float32 kept torch's weight at 1.0)
                broken = np.isnan(tmp)
                if broken.any():
                    keep = broken & np.isposinf(square_avg) & np.isfinite(grad_avg)
                    tmp[keep] = square_avg[keep]
                np.sqrt(tmp, out=tmp)
            else:
                np.sqrt(square_avg, out=tmp)
            tmp += eps  # tmp is now the denominator

            np.divide(g, tmp, out=tmp)
            if buf is not None:
                buf *= momentum
                buf += tmp
                np.multiply(buf, -lr, out=tmp)
            else:
                tmp *= -lr
            data += tmp
        self._plan_group(group, keys)
