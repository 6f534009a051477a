"""Adam's relatives with PyTorch's names, defaults and update rules: Adamax, NAdam, RAdam.

Plain NumPy updates (no fused kernel): each formula is written once, in the class docstring and
in ``_step_group``, in the order ``torch.optim`` applies it (torch/optim/{adamax,nadam,radam}.py,
single-tensor path), so trajectories match PyTorch's to float rounding.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradwise.optim.adam import check_adam_arguments
from gradwise.optim.optimizer import Optimizer, ParamsArg


class _AdamFamily(Optimizer):
    """Shared argument checks: lr, betas in [0, 1), eps > 0, weight_decay >= 0, maximize."""

    def _validate_group(self, group: dict[str, Any]) -> None:
        check_adam_arguments(self, group)
        self._check_bool(group, "maximize")

    @staticmethod
    def _grad(param_data: np.ndarray, grad: np.ndarray, group: dict[str, Any],
              decoupled: bool = False) -> np.ndarray:
        """The gradient as the update reads it: negated for ``maximize``; L2 weight decay
        added, or (``decoupled``) applied to the parameter in place as AdamW does."""
        g = -grad if group["maximize"] else grad
        wd = group["weight_decay"]
        if wd != 0:
            if decoupled:
                param_data *= 1 - group["lr"] * wd
            else:
                g = g + wd * param_data
        return g


class Adamax(_AdamFamily):
    r"""Adamax (Kingma & Ba 2015, section 7.1: Adam with the infinity norm), PyTorch's rule.

    For each parameter ``p`` with gradient ``g`` at step ``t``::

        g = -g if maximize else g;  g = g + weight_decay * p
        m = beta1 m + (1 - beta1) g                  (m0 = 0)
        u = max(beta2 u, |g| + eps)                  (u0 = 0)
        p = p - lr / (1 - beta1^t) * m / u

    Args:
        params: Tensors or param-group dicts. lr: >= 0 (2e-3). betas: (beta1, beta2) in
        [0, 1). eps: > 0. weight_decay: L2 penalty >= 0. maximize: ascend instead.

    State per parameter: ``step`` (int), ``exp_avg``, ``exp_inf``.

    Raises:
        ValueError: a hyperparameter out of range (naming it).
    """

    def __init__(self, params: ParamsArg, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable,
                                      capturable=capturable))

    def _step_group(self, group: dict[str, Any]) -> None:
        (beta1, beta2), eps, lr = group["betas"], group["eps"], group["lr"]
        for param, grad, state in self._params_with_grad(group):
            data = param._data
            if not state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(data)
                state["exp_inf"] = np.zeros_like(data)
            state["step"] += 1
            g = self._grad(data, grad, group)
            exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
            exp_avg += (1 - beta1) * (g - exp_avg)  # torch's lerp
            np.maximum(exp_inf * beta2, np.abs(g) + eps, out=exp_inf)
            clr = lr / (1 - beta1 ** state["step"])
            data -= (clr * exp_avg / exp_inf).astype(data.dtype, copy=False)


class NAdam(_AdamFamily):
    r"""NAdam (Dozat 2016: Adam with Nesterov momentum), PyTorch's rule with its momentum
    schedule.

    For each parameter at step ``t`` (``psi`` = momentum_decay)::

        g = -g if maximize else g
        p = p (1 - lr weight_decay)  if decoupled_weight_decay  else  g = g + weight_decay p
        mu_t = beta1 (1 - 0.5 * 0.96^(t psi));  mu_{t+1} likewise;  P_t = prod_{i<=t} mu_i
        m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
        d = sqrt(v / (1 - beta2^t)) + eps
        p = p - lr (1 - mu_t) / (1 - P_t) g / d - lr mu_{t+1} / (1 - P_t mu_{t+1}) m / d

    Args:
        params, lr (2e-3), betas, eps, weight_decay, maximize: as :class:`Adamax`.
        momentum_decay: psi >= 0 (4e-3). decoupled_weight_decay: AdamW-style decay.

    State per parameter: ``step`` (int), ``mu_product`` (float), ``exp_avg``, ``exp_avg_sq``.

    Raises:
        ValueError: a hyperparameter out of range (naming it).
    """

    def __init__(self, params: ParamsArg, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable))

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        self._check_number(group, "momentum_decay")
        self._check_bool(group, "decoupled_weight_decay")

    def _step_group(self, group: dict[str, Any]) -> None:
        (beta1, beta2), eps, lr = group["betas"], group["eps"], group["lr"]
        psi = group["momentum_decay"]
        for param, grad, state in self._params_with_grad(group):
            data = param._data
            if not state:
                state["step"] = 0
                state["mu_product"] = 1.0
                state["exp_avg"] = np.zeros_like(data)
                state["exp_avg_sq"] = np.zeros_like(data)
            state["step"] += 1
            t = state["step"]
            g = self._grad(data, grad, group, group["decoupled_weight_decay"])
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
            state["mu_product"] *= mu
            mu_product = state["mu_product"]
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg += (1 - beta1) * (g - exp_avg)
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * g * g
            denom = np.sqrt(exp_avg_sq / (1 - beta2 ** t)) + eps
            step = (lr * (1 - mu) / (1 - mu_product)) * g / denom
            step += (lr * mu_next / (1 - mu_product * mu_next)) * exp_avg / denom
            data -= step.astype(data.dtype, copy=False)


class RAdam(_AdamFamily):
    r"""RAdam (Liu et al. 2020: Adam with the variance of the adaptive rate rectified),
    PyTorch's rule.

    For each parameter at step ``t``::

        g = -g if maximize else g
        p = p (1 - lr weight_decay)  if decoupled_weight_decay  else  g = g + weight_decay p
        m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
        rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        m_hat = m / (1 - beta1^t)
        if rho_t > 5:
            r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            p = p - lr m_hat r sqrt(1 - beta2^t) / (sqrt(v) + eps)
        else:
            p = p - lr m_hat                          (the first steps: SGD with momentum)

    Args:
        params, lr (1e-3), betas, eps, weight_decay, maximize: as :class:`Adamax`.
        decoupled_weight_decay: AdamW-style decay.

    State per parameter: ``step`` (int), ``exp_avg``, ``exp_avg_sq``.

    Raises:
        ValueError: a hyperparameter out of range (naming it).
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, maximize=maximize,
                                      foreach=foreach, capturable=capturable,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      differentiable=differentiable))

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        self._check_bool(group, "decoupled_weight_decay")

    def _step_group(self, group: dict[str, Any]) -> None:
        (beta1, beta2), eps, lr = group["betas"], group["eps"], group["lr"]
        rho_inf = 2 / (1 - beta2) - 1
        for param, grad, state in self._params_with_grad(group):
            data = param._data
            if not state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(data)
                state["exp_avg_sq"] = np.zeros_like(data)
            state["step"] += 1
            t = state["step"]
            g = self._grad(data, grad, group, group["decoupled_weight_decay"])
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg += (1 - beta1) * (g - exp_avg)
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * g * g
            correction2 = 1 - beta2 ** t
            m_hat = exp_avg / (1 - beta1 ** t)
            rho_t = rho_inf - 2 * t * beta2 ** t / correction2
            if rho_t > 5.0:
                rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                                 / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                step = m_hat * lr * rect * math.sqrt(correction2) / (np.sqrt(exp_avg_sq) + eps)
            else:
                step = m_hat * lr
            data -= step.astype(data.dtype, copy=False)
