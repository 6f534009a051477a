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

    Speed: with the numba kernels on, a group whose parameters, gradients and buffers share
    one float dtype and are C-contiguous is updated by one kernel call per 8 parameters over
    the parameters' own arrays (``Optimizer._planned_grads``), bitwise the per-parameter path.
    Measured on the 784-256-128-10 MLP (235k float32, 1 thread, CPU time, busy machine):
    ``step()`` 0.80-0.89x of one call per parameter (52 -> 41-44 us), ~0.85x inside a training
    step; the whole step 0.98-1.0x (within the noise). Laying the parameters out in one flat
    buffer was measured too and not kept: it gains only if backward writes gradients into the
    flat views (0.57x), and copying them there costs what it saves (0.95x)
    (benchmarks/optim_flat.py, benchmarks/README.md).

    Example:
        >>> opt = gw.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
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
        keys = ("momentum_buffer",) if momentum != 0 else ()
        planned = self._planned_grads(group, keys)
        if planned is not None:
            # the same arrays as last step: one call per chunk, no per-parameter checks
            plan, grads = planned
            scalar = plan.dtype.type
            settings = (scalar(-lr), scalar(weight_decay), weight_decay != 0, bool(maximize),
                        scalar(momentum), momentum != 0, scalar(1 - dampening), dampening != 0,
                        bool(nesterov))
            firsts = (False,) * _kernels.GROUP_CHUNK
            for arrays, chunk_grads in zip(plan.chunks, grads, strict=True):
                bufs = arrays[1] if keys else arrays[0]
                _kernels.sgd_group_kernel(arrays[0], chunk_grads, bufs, firsts, *settings)
            return
        # kernel-ready parameters, per dtype: (data, grad, momentum buffer or data, first)
        batches: dict[np.dtype, list[list]] = {}
        for param, grad, state in self._params_with_grad(group):
            data = param._data
            buf = state.get("momentum_buffer") if momentum != 0 else None
            if _kernels.usable(data, grad, buf):
                # the fused loop (autograd/kernels/optim.py), bitwise the NumPy code below,
                # run for the whole group at once after this loop
                first = momentum != 0 and buf is None
                if first:
                    buf = state["momentum_buffer"] = np.empty_like(data)
                columns = batches.setdefault(data.dtype, [[], [], [], []])
                for column, value in zip(columns, (data, grad, data if buf is None else buf,
                                                   first), strict=True):
                    column.append(value)
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
        for dtype, columns in batches.items():
            scalar = dtype.type
            settings = (scalar(-lr), scalar(weight_decay), weight_decay != 0, bool(maximize),
                        scalar(momentum), momentum != 0, scalar(1 - dampening), dampening != 0,
                        bool(nesterov))
            group_kernel: Any = _kernels.sgd_group_kernel  # (datas, grads, bufs, firsts, ...)
            for arrays in _kernels.chunked(columns, dtype):
                group_kernel(*arrays, *settings)
        self._plan_group(group, keys)
