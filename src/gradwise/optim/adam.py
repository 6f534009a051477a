"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay, and AMSGrad."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradwise.autograd.kernels import optim as _kernels
from gradwise.optim.optimizer import Optimizer, ParamsArg


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), PyTorch's update rule.

    For each parameter ``p`` with gradient ``g`` at step ``t`` (``gamma`` = lr,
    ``lambda`` = weight_decay)::

        g = -g if maximize else g
        p = p * (1 - gamma * lambda)                (decoupled_weight_decay, i.e. AdamW)
        g = g + lambda * p                          (otherwise, if weight_decay != 0)
        m = beta1 * m + (1 - beta1) * g             (m0 = 0)
        v = beta2 * v + (1 - beta2) * g * g         (v0 = 0)
        v_max = max(v_max, v)                       (amsgrad; the denominator uses v_max)
        denom = sqrt(v) / sqrt(1 - beta2 ** t) + eps
        p = p - gamma / (1 - beta1 ** t) * m / denom

    Args:
        params: Tensors, or dicts of param groups (see :class:`Optimizer`).
        lr: learning rate, >= 0.
        betas: decay rates (beta1, beta2) of the first and second moment, each in [0, 1).
        eps: added to the denominator for stability, > 0.
        weight_decay: decay coefficient, >= 0 (L2 added to the gradient for Adam).
        amsgrad: use the running maximum of ``v`` (Reddi et al., 2018).
        maximize: ascend the objective instead of descending it.
        decoupled_weight_decay: shrink the weights directly instead (what AdamW does).

    State per parameter: ``step`` (int), ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``
    (amsgrad only).

    Speed: with the numba kernels on, a group whose arrays stay the same from step to step is
    updated by one kernel call per 8 parameters (``Optimizer._planned_grads``), bitwise the
    per-parameter path; over the 784-256-128-10 MLP's six parameters (1 thread, CPU time, busy
    machine) ``step()`` took 0.65x the time of one call per parameter
    (benchmarks/optim_flat.py).

    Raises:
        ValueError: at construction, a setting outside its range above (a negative or
            non-finite lr, a beta outside [0, 1), eps <= 0, a negative weight_decay, a flag
            that is not a bool), named as ``Adam: lr must be >= 0, got -1``.

    Example:
        >>> opt = gw.optim.Adam(model.parameters(), lr=3e-4)
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        check_adam_arguments(self, group)
        self._check_bool(group, "amsgrad")
        self._check_bool(group, "maximize")
        self._check_bool(group, "decoupled_weight_decay")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group[
            "maximize"]
        decoupled = group["decoupled_weight_decay"]
        keys = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
        planned = self._planned_grads(group, keys)
        if planned is not None:
            # the same arrays as last step: one group kernel call per chunk of parameters,
            # bitwise the per-parameter calls below (each parameter keeps its own step count)
            plan, grads = planned
            step_sizes, corrections = [], []
            for state in plan.states:
                state["step"] += 1
                step = state["step"]
                step_sizes.append(-lr / (1 - beta1**step))
                corrections.append(math.sqrt(1 - beta2**step))
            scalar = plan.dtype.type
            settings = (scalar(eps), scalar(weight_decay), weight_decay != 0 and not decoupled,
                        scalar(1 - lr * weight_decay), bool(decoupled and weight_decay != 0),
                        bool(maximize), bool(amsgrad))
            for arrays, chunk_grads, (chunk_steps, chunk_corrections) in zip(
                    plan.chunks, grads, _kernels.chunked([step_sizes, corrections], plan.dtype),
                    strict=True):
                _kernels.adam_group_kernel(
                    arrays[0], chunk_grads, arrays[1], arrays[2], arrays[3 if amsgrad else 2],
                    chunk_steps, scalar(1 - beta1), scalar(beta2), scalar(1 - beta2),
                    chunk_corrections, *settings)
            return
        for param, grad, state in self._params_with_grad(group):
            data = param._data
            if not state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(data)
                state["exp_avg_sq"] = np.zeros_like(data)
            state["step"] += 1
            step = state["step"]
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            max_sq = None
            if amsgrad:
                max_sq = state.get("max_exp_avg_sq")
                if max_sq is None:
                    max_sq = state["max_exp_avg_sq"] = np.zeros_like(data)
            if _kernels.usable(data, grad, exp_avg, exp_avg_sq, max_sq):
                # the fused loop (autograd/kernels/optim.py), bitwise the NumPy code below
                scalar = data.dtype.type
                flat_v = exp_avg_sq.reshape(-1)
                _kernels.adam_kernel(
                    data.reshape(-1), grad.reshape(-1), exp_avg.reshape(-1), flat_v,
                    flat_v if max_sq is None else max_sq.reshape(-1),
                    scalar(-lr / (1 - beta1**step)), scalar(1 - beta1), scalar(beta2),
                    scalar(1 - beta2), scalar(math.sqrt(1 - beta2**step)), scalar(eps),
                    scalar(weight_decay), weight_decay != 0 and not decoupled,
                    scalar(1 - lr * weight_decay), bool(decoupled and weight_decay != 0),
                    bool(maximize), bool(amsgrad))
                continue
            if decoupled and weight_decay != 0:
                data *= 1 - lr * weight_decay
            g = self._effective_grad(data, grad, 0.0 if decoupled else weight_decay, maximize)
            tmp = self._scratch(data, 1)

            # exp_avg.lerp_(g, 1 - beta1)
            np.subtract(g, exp_avg, out=tmp)
            tmp *= 1 - beta1
            exp_avg += tmp
            # exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g * g
            exp_avg_sq *= beta2
            np.multiply(g, 1 - beta2, out=tmp)
            tmp *= g
            exp_avg_sq += tmp

            second = exp_avg_sq
            if max_sq is not None:
                np.maximum(max_sq, exp_avg_sq, out=max_sq)
                second = max_sq
            np.sqrt(second, out=tmp)
            tmp /= math.sqrt(1 - beta2**step)
            tmp += eps  # tmp is now the denominator
            np.divide(exp_avg, tmp, out=tmp)
            tmp *= -lr / (1 - beta1**step)
            data += tmp
        self._plan_group(group, keys)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), PyTorch's update rule.

    Same as :class:`Adam` except that weight decay shrinks the weights directly,
    ``p = p * (1 - lr * weight_decay)``, before the moment update, instead of adding
    ``weight_decay * p`` to the gradient; the default weight_decay is 1e-2.

    Example:
        >>> opt = gw.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)


def check_adam_arguments(optimizer: Optimizer, group: dict[str, Any]) -> None:
    """The checks every Adam-family optimizer shares, as torch's: lr >= 0, betas a pair in
    [0, 1), eps > 0, weight_decay >= 0.

    Raises:
        ValueError / TypeError: naming the optimizer and the argument (``Optimizer._check*``).
    """
    optimizer._check_number(group, "lr")
    betas = group["betas"]
    optimizer._check(isinstance(betas, tuple | list) and len(betas) == 2, "betas",
                     "a pair (beta1, beta2)", betas)
    for i, beta in enumerate(betas):
        optimizer._check_number({f"betas[{i}]": beta}, f"betas[{i}]", high=1.0,
                                high_inclusive=False)
    optimizer._check_number(group, "eps", low_inclusive=False)
    optimizer._check_number(group, "weight_decay")
