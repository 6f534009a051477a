"""Optimizer updates in one pass over memory per parameter: SGD (momentum, dampening, Nesterov),
Adam/AdamW (amsgrad), RMSprop (centered, momentum), Adagrad.

The NumPy reference of each update is the optimizer's own ``_step_group`` in ``gradwise.optim``
(PyTorch's rule, written as a few in-place ufunc passes over scratch arrays); a kernel here does
the same arithmetic, operation by operation in the same order and in the parameter's dtype, for
one element at a time, so the result is bitwise the reference's (tests/optim/test_kernels.py runs
every optimizer both ways). NumPy rounds each Python-float hyperparameter to the array's dtype
before using it (NEP 50), so the callers pass every scalar already converted with
``dtype.type(...)``; fastmath is off, so no fused multiply-add changes a rounding.

What the loops gain: the reference reads and writes each element ~8-12 times (one pass per ufunc),
a kernel once; SGD with momentum on the 235k parameters of a 784-256-128-10 MLP goes from ~0.10
to ~0.03 ms per step on one core (benchmarks/README.md).

:func:`usable` says whether a kernel may run on the arrays of one parameter: numba on, one float
dtype, one shape, all C-contiguous (anything else takes the reference).
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd.kernels._jit import kernel, kernel_ready


def usable(data: np.ndarray, *arrays: np.ndarray | None) -> bool:
    """Whether the fused update may run on ``data`` and its gradient/state ``arrays``."""
    if not kernel_ready(data, *arrays, writeable=True):
        return False
    return all(array is None or array.shape == data.shape for array in arrays)


@kernel()
def _effective_grad(param, grad, weight_decay, has_weight_decay, maximize):  # pragma: no cover
    # (-grad if maximize else grad) + weight_decay * param, in the reference's order
    if has_weight_decay:
        decay = param * weight_decay
        return decay - grad if maximize else decay + grad
    return -grad if maximize else grad


@kernel()
def sgd_kernel(data, grad, buf, neg_lr, weight_decay, has_weight_decay, maximize, momentum,
               has_momentum, dampening_keep, has_dampening, nesterov,
               first):  # pragma: no cover - numba
    """SGD update of one flattened parameter (see ``optim.SGD``); ``buf`` is the momentum buffer
    (any array when ``has_momentum`` is False), overwritten with ``d`` when ``first``."""
    for i in range(data.size):
        d = _effective_grad(data[i], grad[i], weight_decay, has_weight_decay, maximize)
        if has_momentum:
            if first:
                b = d
            else:
                b = buf[i] * momentum
                b = b + d * dampening_keep if has_dampening else b + d
            buf[i] = b
            step = b * momentum + d if nesterov else b
        else:
            step = d
        data[i] = data[i] + step * neg_lr


@kernel()
def adam_kernel(data, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, neg_step_size, one_minus_beta1,
                beta2, one_minus_beta2, bias_correction2_sqrt, eps, weight_decay,
                has_weight_decay, decoupled_shrink, decoupled, maximize,
                amsgrad):  # pragma: no cover - numba
    """Adam/AdamW update of one flattened parameter (see ``optim.Adam``)."""
    for i in range(data.size):
        p = data[i]
        if decoupled:
            p = p * decoupled_shrink
        g = _effective_grad(p, grad[i], weight_decay, has_weight_decay, maximize)
        m = exp_avg[i]
        m = m + (g - m) * one_minus_beta1  # exp_avg.lerp_(g, 1 - beta1)
        exp_avg[i] = m
        v = exp_avg_sq[i] * beta2
        v = v + (g * one_minus_beta2) * g
        exp_avg_sq[i] = v
        second = v
        if amsgrad:
            previous = max_exp_avg_sq[i]
            # np.maximum: a NaN on either side wins, ties keep the second argument
            second = previous if (previous != previous or previous > v) else v
            max_exp_avg_sq[i] = second
        denom = np.sqrt(second) / bias_correction2_sqrt + eps
        data[i] = p + (m / denom) * neg_step_size


@kernel()
def rmsprop_kernel(data, grad, square_avg, grad_avg, buf, neg_lr, alpha, one_minus_alpha, eps,
                   weight_decay, has_weight_decay, maximize, centered, momentum,
                   has_momentum):  # pragma: no cover - numba
    """RMSprop update of one flattened parameter (see ``optim.RMSprop``)."""
    for i in range(data.size):
        g = _effective_grad(data[i], grad[i], weight_decay, has_weight_decay, maximize)
        s = square_avg[i] * alpha
        s = s + (g * one_minus_alpha) * g
        square_avg[i] = s
        if centered:
            a = grad_avg[i]
            a = a + (g - a) * one_minus_alpha  # grad_avg.lerp_(g, 1 - alpha)
            grad_avg[i] = a
            v = s - a * a
            if s == np.inf and np.isfinite(a):
                v = s  # as torch's fused multiply-add: inf - (finite a)^2 stays inf, not NaN
            denom = np.sqrt(v) + eps
        else:
            denom = np.sqrt(s) + eps
        step = g / denom
        if has_momentum:
            b = buf[i] * momentum + step
            buf[i] = b
            step = b
        data[i] = data[i] + step * neg_lr


@kernel()
def adagrad_kernel(data, grad, square_sum, neg_clr, eps, weight_decay, has_weight_decay,
                   maximize):  # pragma: no cover - numba
    """Adagrad update of one flattened parameter (see ``optim.Adagrad``)."""
    for i in range(data.size):
        g = _effective_grad(data[i], grad[i], weight_decay, has_weight_decay, maximize)
        s = square_sum[i] + g * g
        square_sum[i] = s
        data[i] = data[i] + (g / (np.sqrt(s) + eps)) * neg_clr
