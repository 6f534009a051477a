"""Rprop: resilient backpropagation, a per-weight step size driven by the gradient's sign."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.optim.optimizer import Optimizer, ParamsArg


class Rprop(Optimizer):
    r"""Resilient backpropagation (Riedmiller & Braun, 1993), PyTorch's update rule.

    Only the sign of the gradient is used. For each parameter ``p`` with gradient ``g``
    (``eta-, eta+`` = etas, ``[s_min, s_max]`` = step_sizes, ``s`` starts at lr everywhere,
    ``g_prev`` at 0)::

        g = -g if maximize else g
        f = eta+ where g * g_prev > 0, eta- where g * g_prev < 0, 1 elsewhere
        s = clip(s * f, s_min, s_max)
        g = 0 where f == eta-                       (a sign change: skip this entry once)
        p = p - sign(g) * s
        g_prev = g

    Args:
        params: Tensors, or dicts of param groups (see :class:`Optimizer`).
        lr: initial step size, >= 0.
        etas: (eta-, eta+), the factors a step size is multiplied by after a sign change and
            after a repeated sign; 0 < eta- < 1 < eta+.
        step_sizes: (s_min, s_max), the bounds of every step size; 0 <= s_min <= s_max.
        capturable, foreach, differentiable: torch's implementation switches (see
            :meth:`Optimizer._validate`).
        maximize: ascend the objective instead of descending it.

    State per parameter: ``step`` (int), ``prev`` (g_prev), ``step_size`` (s).

    Raises:
        ValueError: a setting outside the ranges above, named as ``Rprop: etas ...``.

    Example:
        >>> opt = gw.optim.Rprop(model.parameters(), lr=0.01)
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-2,
                 etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        self._check_number(group, "lr")
        self._check_bool(group, "maximize")
        for name in ("etas", "step_sizes"):
            pair = group[name]
            self._check(isinstance(pair, tuple | list) and len(pair) == 2, name, "a pair", pair)
            for i, value in enumerate(pair):
                self._check_number({f"{name}[{i}]": value}, f"{name}[{i}]")
        eta_minus, eta_plus = group["etas"]
        # torch: "Invalid eta values"
        self._check(0 < eta_minus < 1 < eta_plus, "etas", "(eta-, eta+) with 0 < eta- < 1 < eta+",
                    group["etas"])
        low, high = group["step_sizes"]
        self._check(low <= high, "step_sizes", "(s_min, s_max) with s_min <= s_max",
                    group["step_sizes"])

    def _step_group(self, group: dict[str, Any]) -> None:
        eta_minus, eta_plus = group["etas"]
        low, high = group["step_sizes"]
        for param, grad, state in self._params_with_grad(group):
            data = param._data
            if not state:
                state["step"] = 0
                state["prev"] = np.zeros_like(data)
                state["step_size"] = np.full_like(data, group["lr"])
            state["step"] += 1
            prev, step_size = state["prev"], state["step_size"]
            g = -grad if group["maximize"] else grad.copy()
            # the factor is computed in the parameter's dtype, as torch's sign tensor is
            factor = np.sign(g * prev)
            factor[factor > 0] = eta_plus
            factor[factor < 0] = eta_minus
            factor[factor == 0] = 1
            step_size *= factor
            np.clip(step_size, low, high, out=step_size)
            g[factor == data.dtype.type(eta_minus)] = 0
            data -= np.sign(g) * step_size
            prev[...] = g
