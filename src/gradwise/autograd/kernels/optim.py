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

from typing import Any

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


# ---- one call per param group -----------------------------------------------------------------
# The per-parameter kernels above cost ~4 us of Python and numba dispatch per parameter, more
# than the arithmetic of a bias vector. The group kernels below take the arrays of up to
# GROUP_CHUNK parameters as tuples and run the very same per-parameter kernel on each, so the
# result is bitwise the per-parameter path's, in one call. A fixed tuple length (padded with
# empty arrays) keeps one compiled signature per dtype, whatever the number of parameters.
# Measured (benchmarks/optim_flat.py): SGD momentum over the MLP's 6 parameters 49 -> 31 us per
# step, the same as one call over flat buffers would take, without moving any parameter's
# memory (so p.data replacement, state_dict, model.to(dtype) and zero_grad keep their meaning).
# Adam/AdamW, RMSprop and Adagrad have group kernels too; their step-dependent scalars (bias
# corrections, Adagrad's decayed lr) come per parameter as arrays, since step counts are.

GROUP_CHUNK = 8


def chunked(columns: list[list], dtype: np.dtype):
    """Split per-parameter ``columns`` into argument tuples of :data:`GROUP_CHUNK` entries.

    Args:
        columns: one list per argument, each with one entry per parameter: an ndarray (passed
            flattened, padded with empty arrays), a bool (padded with False) or a number
            (gathered into an array of ``dtype``, padded with 0).
        dtype: the parameters' dtype (all entries' arrays share it).

    Yields:
        a list of arguments per chunk, in the order of ``columns``.
    """
    count = len(columns[0])
    empty = np.empty(0, dtype=dtype)
    for start in range(0, count, GROUP_CHUNK):
        stop = min(start + GROUP_CHUNK, count)
        pad = GROUP_CHUNK - (stop - start)
        arguments: list[Any] = []
        for column in columns:
            first = column[start]
            if isinstance(first, np.ndarray):
                arguments.append(tuple(a.reshape(-1) for a in column[start:stop]) + (empty,) * pad)
            elif isinstance(first, bool):
                arguments.append(tuple(column[start:stop]) + (False,) * pad)
            else:
                values = np.zeros(GROUP_CHUNK, dtype=dtype)
                values[: stop - start] = column[start:stop]
                arguments.append(values)
        yield arguments


@kernel()
def sgd_group_kernel(datas, grads, bufs, firsts, neg_lr, weight_decay, has_weight_decay,
                     maximize, momentum, has_momentum, dampening_keep, has_dampening,
                     nesterov):  # pragma: no cover - numba
    """:func:`sgd_kernel` on each parameter of a tuple (``firsts[k]``: its first momentum step)."""
    for k in range(len(datas)):
        sgd_kernel(datas[k], grads[k], bufs[k], neg_lr, weight_decay, has_weight_decay,
                   maximize, momentum, has_momentum, dampening_keep, has_dampening, nesterov,
                   firsts[k])


@kernel()
def adam_group_kernel(datas, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, neg_step_sizes,
                      one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrts, eps,
                      weight_decay, has_weight_decay, decoupled_shrink, decoupled, maximize,
                      amsgrad):  # pragma: no cover - numba
    """:func:`adam_kernel` on each parameter of a tuple; ``neg_step_sizes[k]`` and
    ``bias_correction2_sqrts[k]`` hold parameter k's step-dependent scalars (step counts are
    per parameter, as in torch)."""
    for k in range(len(datas)):
        adam_kernel(datas[k], grads[k], exp_avgs[k], exp_avg_sqs[k], max_exp_avg_sqs[k],
                    neg_step_sizes[k], one_minus_beta1, beta2, one_minus_beta2,
                    bias_correction2_sqrts[k], eps, weight_decay, has_weight_decay,
                    decoupled_shrink, decoupled, maximize, amsgrad)


@kernel()
def rmsprop_group_kernel(datas, grads, square_avgs, grad_avgs, bufs, neg_lr, alpha,
                         one_minus_alpha, eps, weight_decay, has_weight_decay, maximize,
                         centered, momentum, has_momentum):  # pragma: no cover - numba
    """:func:`rmsprop_kernel` on each parameter of a tuple (``grad_avgs``/``bufs``: any
    tuple of arrays of the right sizes when ``centered``/``has_momentum`` is False)."""
    for k in range(len(datas)):
        rmsprop_kernel(datas[k], grads[k], square_avgs[k], grad_avgs[k], bufs[k], neg_lr, alpha,
                       one_minus_alpha, eps, weight_decay, has_weight_decay, maximize, centered,
                       momentum, has_momentum)


@kernel()
def adagrad_group_kernel(datas, grads, square_sums, neg_clrs, eps, weight_decay,
                         has_weight_decay, maximize):  # pragma: no cover - numba
    """:func:`adagrad_kernel` on each parameter of a tuple; ``neg_clrs[k]`` is parameter k's
    decayed learning rate (its own step count), negated."""
    for k in range(len(datas)):
        adagrad_kernel(datas[k], grads[k], square_sums[k], neg_clrs[k], eps, weight_decay,
                       has_weight_decay, maximize)
