"""Normalisation primitives with fused backwards: batch norm and layer norm.

Composing these from mean/var/sub/div would record about ten nodes and keep as many intermediate
arrays alive; the closed-form backward below needs only the normalised input and 1/std.

With xhat = (x - mean) * invstd over the m values of each group, and dxhat = grad * weight,
the gradient of the normalised output with respect to x is

    dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

(the two means come from mean and var depending on every x of the group).
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd.function import Function


def _param_grads(ctx, grad: np.ndarray, xhat: np.ndarray, axes: tuple[int, ...], shape):
    """Gradients of the affine weight (sum grad * xhat) and bias (sum grad), where needed."""
    out = []
    needs = ctx.needs_input_grad
    position = 1
    if ctx.has_weight:
        out.append((grad * xhat).sum(axis=axes).reshape(shape) if needs[position] else None)
        position += 1
    if ctx.has_bias:
        out.append(grad.sum(axis=axes).reshape(shape) if needs[position] else None)
    return out


class BatchNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel (axis 1).

    ``mean`` and ``var`` are arrays given by the caller: the batch statistics in training
    (``training=True``: the backward then flows through them) or the running statistics in
    evaluation (constants: the op is a per-channel affine map).
    """

    saves_inputs = False

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, eps, training):
        stat_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)  # broadcast over (N, C, ...)
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False).reshape(stat_shape)
        xhat = (x - mean.astype(x.dtype, copy=False).reshape(stat_shape)) * invstd
        out = xhat
        if weight is not None:
            out = out * weight.reshape(stat_shape)
        if bias is not None:
            out = out + bias.reshape(stat_shape)
        ctx.xhat, ctx.invstd, ctx.training = xhat, invstd, training
        ctx.weight = None if weight is None else weight.reshape(stat_shape)
        ctx.has_weight, ctx.has_bias = weight is not None, bias is not None
        ctx.axes = (0,) + tuple(range(2, x.ndim))
        ctx.param_shape = (x.shape[1],)
        return out

    @staticmethod
    def backward(ctx, grad):
        xhat, invstd, axes = ctx.xhat, ctx.invstd, ctx.axes
        grad_x = None
        if ctx.needs_input_grad[0]:
            dxhat = grad if ctx.weight is None else grad * ctx.weight
            if ctx.training:
                mean_dxhat = dxhat.mean(axis=axes, keepdims=True)
                mean_dxhat_xhat = (dxhat * xhat).mean(axis=axes, keepdims=True)
                grad_x = invstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)
            else:
                grad_x = dxhat * invstd
        return (grad_x, *_param_grads(ctx, grad, xhat, axes, ctx.param_shape))


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last ``ndim`` axes."""

    saves_inputs = False

    @staticmethod
    def forward(ctx, x, weight, bias, ndim, eps):
        norm_axes = tuple(range(x.ndim - ndim, x.ndim))
        mean = x.mean(axis=norm_axes, keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(axis=norm_axes, keepdims=True)
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        xhat = centered * invstd
        out = xhat
        if weight is not None:
            out = out * weight
        if bias is not None:
            out = out + bias
        ctx.xhat, ctx.invstd, ctx.weight, ctx.norm_axes = xhat, invstd, weight, norm_axes
        ctx.has_weight, ctx.has_bias = weight is not None, bias is not None
        ctx.batch_axes = tuple(range(x.ndim - ndim))
        ctx.param_shape = x.shape[x.ndim - ndim :]
        return out

    @staticmethod
    def backward(ctx, grad):
        xhat, invstd, norm_axes = ctx.xhat, ctx.invstd, ctx.norm_axes
        grad_x = None
        if ctx.needs_input_grad[0]:
            dxhat = grad if ctx.weight is None else grad * ctx.weight
            mean_dxhat = dxhat.mean(axis=norm_axes, keepdims=True)
            mean_dxhat_xhat = (dxhat * xhat).mean(axis=norm_axes, keepdims=True)
            grad_x = invstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)
        return (grad_x, *_param_grads(ctx, grad, xhat, ctx.batch_axes, ctx.param_shape))
