"""Normalisation primitives with fused backwards: batch norm and layer norm.

Composing these from mean/var/sub/div would record about ten nodes and keep as many intermediate
arrays alive; the closed-form backward below needs only the normalised input and 1/std.

With xhat = (x - mean) * invstd over the m values of each group, and dxhat = grad * weight,
the gradient with respect to x is

    dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

(the two means come from mean and var depending on every x of the group).
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd.function import Function
from gradwise.autograd.kernels import norm as _norm_kernels
from gradwise.autograd.ops.elementwise import PowScalar
from gradwise.autograd.ops.reduce import Mean, Sum, require_floating
from gradwise.autograd.ops.shape import Reshape


class BatchNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel (axis 1), PyTorch's semantics.

    In training (``training=True``) the batch mean and biased variance normalise the input, the
    backward flows through them, and the running statistics (arrays, or None) are updated in
    place towards the batch mean and the *unbiased* variance by ``momentum``. In evaluation the
    running statistics are constants and the op is a per-channel affine map.

    The work is done on an (N, C, L) view with ``einsum`` reductions and in-place updates: on
    large NCHW batches the cost is dominated by allocating full-size temporaries, and this keeps
    them to two in the forward and one in the backward.

    Local derivative (training): dx = w invstd (g - mean(g) - xhat mean(g xhat)) per channel,
    dweight = sum(g xhat), dbias = sum(g); in evaluation dx = w invstd g.
    Shape: x (N, C, *) -> same; weight, bias, running stats (C,).
    """
    torch_name = "NativeBatchNorm"
    owns_grads = True

    saves_inputs = False

    tensor_args = (0, 1, 2)

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        n, c = x.shape[0], x.shape[1]
        x3 = x.reshape(n, c, int(np.prod(x.shape[2:])))  # (N, C, L); -1 fails for N = 0
        count = n * x3.shape[2]
        if training:
            mean, var = _norm_kernels.batch_norm_stats(x3)  # (C,), (C,)
            centered = x3 - mean[:, None]
            if running_mean is not None:
                running_mean *= 1.0 - momentum
                running_mean += momentum * mean
            if running_var is not None:
                running_var *= 1.0 - momentum
                running_var += (momentum * count / max(count - 1, 1)) * var
        else:
            mean, var = running_mean, running_var
            centered = x3 - mean.astype(x.dtype, copy=False)[:, None]
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)  # (C,)
        xhat = centered
        xhat *= invstd[:, None]
        out = xhat * weight[:, None] if weight is not None else xhat.copy()
        if bias is not None:
            out += bias[:, None]
        ctx.xhat, ctx.invstd, ctx.weight, ctx.training = xhat, invstd, weight, training
        ctx.has_weight, ctx.has_bias = weight is not None, bias is not None
        # what an exporter (gradwise.onnx) reads back from the recorded graph
        ctx.eps, ctx.running_stats = eps, None if training else (running_mean, running_var)
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        xhat = ctx.xhat
        g3 = grad.reshape(xhat.shape)  # (N, C, L)
        needs = ctx.needs_input_grad
        scale = ctx.invstd if ctx.weight is None else ctx.weight * ctx.invstd  # (C,)
        # dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat)) in training, w invstd g in eval;
        # sum_gx = dL/dweight, sum_g = dL/dbias (autograd/kernels/norm.py)
        grad_x, sum_gx, sum_g = _norm_kernels.batch_norm_backward(
            g3, xhat, scale, ctx.training, needs[0])
        if grad_x is not None:
            grad_x = grad_x.reshape(grad.shape)
        out = [grad_x]
        if ctx.has_weight:
            out.append(sum_gx if needs[1] else None)
        if ctx.has_bias:
            out.append(sum_g if needs[-1] else None)
        return tuple(out)

    @staticmethod
    def backward_graph(ctx, grad):
        # backward's formula in recorded ops, on the (N, C, L) view; xhat (and in training the
        # batch statistics) are recomputed from x so that their dependence on x is differentiated
        x = ctx.inputs[0]
        weight = ctx.inputs[1] if ctx.has_weight else None
        n, c = x.shape[0], x.shape[1]
        x3 = Reshape.apply(x, (n, c, int(np.prod(x.shape[2:]))))  # (N, C, L)
        g3 = Reshape.apply(grad, x3.shape)  # (N, C, L)
        if ctx.training:
            centered = x3 - Mean.apply(x3, (0, 2), True)
            invstd = PowScalar.apply(Mean.apply(centered * centered, (0, 2), True) + ctx.eps,
                                     -0.5)  # (1, C, 1)
        else:
            running_mean, running_var = ctx.running_stats
            centered = x3 - running_mean.astype(x.dtype, copy=False)[:, None]
            invstd = np.asarray(ctx.invstd[:, None])  # a constant: the running variance's
        xhat = centered * invstd  # (N, C, L)
        needs = ctx.needs_input_grad
        grad_x = None
        if needs[0]:
            scale = invstd if weight is None else invstd * Reshape.apply(weight, (c, 1))
            if ctx.training:
                grad_x = (g3 - Mean.apply(g3, (0, 2), True)
                          - xhat * Mean.apply(g3 * xhat, (0, 2), True)) * scale
            else:
                grad_x = g3 * scale
            grad_x = Reshape.apply(grad_x, x.shape)
        out = [grad_x]
        if ctx.has_weight:
            out.append(Sum.apply(g3 * xhat, (0, 2)) if needs[1] else None)
        if ctx.has_bias:
            out.append(Sum.apply(g3, (0, 2)) if needs[-1] else None)
        return tuple(out)


class LayerNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last ``ndim`` axes.

    Works on an (M, D) view, D the normalised size, with the same einsum / in-place scheme as
    BatchNorm.

    Local derivative: dx = invstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) per row, with
    dxhat = g w (see the module docstring); dweight = sum(g xhat), dbias = sum(g).
    Shape: x (*, *normalized_shape) -> same; weight, bias: normalized_shape.
    """
    torch_name = "NativeLayerNorm"
    owns_grads = True

    saves_inputs = False

    tensor_args = (0, 1, 2)

    @staticmethod
    def forward(ctx, x, weight, bias, ndim, eps):
        require_floating("layer_norm", x)
        size = int(np.prod(x.shape[x.ndim - ndim :]))
        x2 = x.reshape(-1, size)  # (M, D)
        w2 = None if weight is None else weight.reshape(-1)
        out, xhat, invstd = _norm_kernels.layer_norm_forward(
            x2, w2, None if bias is None else bias.reshape(-1), eps)
        ctx.xhat, ctx.invstd, ctx.weight = xhat, invstd, w2
        ctx.has_weight, ctx.has_bias = weight is not None, bias is not None
        ctx.param_shape = x.shape[x.ndim - ndim :]
        ctx.eps = eps  # read back by gradwise.onnx
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        xhat, needs = ctx.xhat, ctx.needs_input_grad
        g2 = grad.reshape(xhat.shape)  # (M, D)
        want_weight = ctx.has_weight and needs[1]
        want_bias = ctx.has_bias and needs[-1]
        grad_x, grad_w, grad_b = _norm_kernels.layer_norm_backward(
            g2, xhat, ctx.invstd, ctx.weight, needs[0], want_weight, want_bias)
        out = [None if grad_x is None else grad_x.reshape(grad.shape)]
        if ctx.has_weight:
            out.append(None if grad_w is None else grad_w.reshape(ctx.param_shape))
        if ctx.has_bias:
            out.append(None if grad_b is None else grad_b.reshape(ctx.param_shape))
        return tuple(out)

    @staticmethod
    def backward_graph(ctx, grad):
        # the same formula as backward, in recorded ops; xhat and invstd are recomputed from x
        # so that their own dependence on x is differentiated too
        x = ctx.inputs[0]
        weight = ctx.inputs[1] if ctx.has_weight else None
        size = int(np.prod(ctx.param_shape))
        x2 = Reshape.apply(x, (-1, size))  # (M, D)
        centered = x2 - Mean.apply(x2, 1, True)
        invstd = PowScalar.apply(Mean.apply(centered * centered, 1, True) + ctx.eps, -0.5)
        xhat = centered * invstd  # (M, D)
        g2 = Reshape.apply(grad, (-1, size))  # (M, D)
        needs = ctx.needs_input_grad
        grad_x = None
        if needs[0]:
            dxhat = g2 * Reshape.apply(weight, (1, size)) if weight is not None else g2
            grad_x = (dxhat - Mean.apply(dxhat, 1, True)
                      - xhat * Mean.apply(dxhat * xhat, 1, True)) * invstd
            grad_x = Reshape.apply(grad_x, x.shape)
        out = [grad_x]
        if ctx.has_weight:
            out.append(Reshape.apply(Sum.apply(g2 * xhat, 0), ctx.param_shape)
                       if needs[1] else None)
        if ctx.has_bias:
            out.append(Reshape.apply(Sum.apply(g2, 0), ctx.param_shape) if needs[-1] else None)
        return tuple(out)


