"""SyncBatchNorm: batch normalisation with statistics over the whole batch of all ranks.

Plain BatchNorm under DistributedDataParallel normalises each rank's B samples with their own
mean and variance. SyncBatchNorm gathers every rank's (count, mean, sum of squared deviations)
and combines them (Chan, Golub and LeVeque, "Algorithms for computing the sample variance",
1983: M2 = sum M2_r + sum n_r (mean_r - mean)^2), so each rank normalises with the statistics of
all N*B samples, as one process with batch N*B would. The backward pass needs two sums over all
samples per channel, sum(dy) and sum(dy * xhat), reduced with one allreduce:

    dx = weight * invstd * (dy - sum(dy) / M - xhat * sum(dy * xhat) / M),  M = all samples

(each rank's dy is the gradient of its own mean loss; DistributedDataParallel's division by N
then makes the parameters' gradients those of the mean over all N*B samples). This is
PyTorch's ``torch.nn.SyncBatchNorm`` (which gathers mean and inverse std the same way).
"""

from __future__ import annotations

import numpy as np

from gradwise import distributed as dist
from gradwise.autograd.function import Function
from gradwise.autograd.tensor import Tensor
from gradwise.nn.layers.norm import _BatchNorm
from gradwise.nn.module import Module

__all__ = ["SyncBatchNorm"]


class _SyncBatchNormFunction(Function):
    owns_grads = True
    tensor_args = (0, 1, 2)  # x, weight, bias; the running statistics are buffers
    saves_inputs = False

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps):
        n, c = x.shape[0], x.shape[1]
        x3 = x.reshape(n, c, -1)  # (N, C, L)
        count = n * x3.shape[2]
        local_mean = np.einsum("ncl->c", x3, dtype=np.float64) / max(count, 1)
        centered = x3 - local_mean[:, None].astype(x.dtype)
        local_m2 = np.einsum("ncl,ncl->c", centered, centered, dtype=np.float64)
        stats = np.concatenate([[float(count)], local_mean, local_m2])  # (1 + 2C,)
        everyone = dist.all_gather_array(stats)  # (ranks, 1 + 2C)
        counts, means, m2s = everyone[:, 0], everyone[:, 1 : 1 + c], everyone[:, 1 + c :]
        total = counts.sum()
        if total <= 1:
            raise ValueError(
                f"SyncBatchNorm: expected more than 1 value per channel over all ranks when "
                f"training, got {int(total)}"
            )
        mean = (counts[:, None] * means).sum(axis=0) / total
        m2 = m2s.sum(axis=0) + (counts[:, None] * (means - mean) ** 2).sum(axis=0)
        var = m2 / total  # biased, for normalising
        if running_mean is not None:
            running_mean *= 1.0 - momentum
            running_mean += (momentum * mean).astype(running_mean.dtype)
        if running_var is not None:
            running_var *= 1.0 - momentum
            running_var += (momentum * m2 / max(total - 1, 1)).astype(running_var.dtype)
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)  # (C,)
        xhat = x3 - mean.astype(x.dtype)[:, None]
        xhat *= invstd[:, None]
        out = xhat * weight[:, None] if weight is not None else xhat.copy()
        if bias is not None:
            out += bias[:, None]
        ctx.xhat, ctx.invstd, ctx.weight, ctx.total = xhat, invstd, weight, total
        ctx.eps = eps
        ctx.has_weight, ctx.has_bias = weight is not None, bias is not None
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        xhat = ctx.xhat
        g3 = grad.reshape(xhat.shape)
        sum_g = np.einsum("ncl->c", g3)  # this rank's dL/dbias
        sum_gx = np.einsum("ncl,ncl->c", g3, xhat)  # this rank's dL/dweight
        needs = ctx.needs_input_grad
        grad_x = None
        if needs[0]:
            sums = np.concatenate([sum_g, sum_gx]).astype(np.float64)
            dist.all_reduce_array(sums, check_shapes=False)  # every rank: the same graph
            channels = len(sum_g)
            all_g = (sums[:channels] / ctx.total).astype(grad.dtype)
            all_gx = (sums[channels:] / ctx.total).astype(grad.dtype)
            scale = ctx.invstd if ctx.weight is None else ctx.weight * ctx.invstd
            grad_x = xhat * all_gx[:, None]
            np.subtract(g3, grad_x, out=grad_x)
            grad_x -= all_g[:, None]
            grad_x *= scale[:, None]
            grad_x = grad_x.reshape(grad.shape)
        out = [grad_x]
        if ctx.has_weight:
            out.append(sum_gx if needs[1] else None)
        if ctx.has_bias:
            out.append(sum_g if needs[-1] else None)
        return tuple(out)

    @staticmethod
    def backward_graph(ctx, grad):
        # backward's formula in recorded ops, the statistics recomputed from x so that their
        # dependence on x is differentiated too; every sum over all ranks' samples is a recorded
        # all-reduce (_AllReduceSum), so a second backward communicates as the first one does
        x = ctx.inputs[0]
        weight = ctx.inputs[1] if ctx.has_weight else None
        n, c = x.shape[0], x.shape[1]
        x3 = x.reshape(n, c, -1)  # (N, C, L)
        g3 = grad.reshape(x3.shape)  # (N, C, L)
        total = np.asarray(ctx.total, dtype=x.dtype)
        centered = x3 - _AllReduceSum.apply(x3.sum(dim=(0, 2), keepdim=True)) / total
        var = _AllReduceSum.apply((centered * centered).sum(dim=(0, 2), keepdim=True)) / total
        invstd = (var + ctx.eps) ** -0.5  # (1, C, 1)
        xhat = centered * invstd
        sum_g = g3.sum(dim=(0, 2), keepdim=True)  # this rank's, (1, C, 1)
        sum_gx = (g3 * xhat).sum(dim=(0, 2), keepdim=True)
        needs = ctx.needs_input_grad
        grad_x = None
        if needs[0]:
            scale = invstd if weight is None else invstd * weight.reshape(c, 1)
            grad_x = (g3 - _AllReduceSum.apply(sum_g) / total
                      - xhat * (_AllReduceSum.apply(sum_gx) / total)) * scale
            grad_x = grad_x.reshape(x.shape)
        out = [grad_x]
        if ctx.has_weight:
            out.append(sum_gx.reshape(c) if needs[1] else None)
        if ctx.has_bias:
            out.append(sum_g.reshape(c) if needs[-1] else None)
        return tuple(out)


class _AllReduceSum(Function):
    """The sum of ``x`` over all ranks, every rank getting it, as a recorded op.

    Local derivative: with y = sum_r x_r on every rank and the loss the sum of the ranks'
    losses, dL/dx_r = sum_q dL/dy_q, so the backward is the same all-reduce of the gradient
    (and the op is linear, so that is its backward_graph too). Every rank must run it in the
    same order. Shape: x -> same.
    """

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, x):
        return dist.all_reduce_array(np.array(x, copy=True, order="C"), check_shapes=False)

    @staticmethod
    def backward(ctx, grad):
        return (dist.all_reduce_array(np.array(grad, copy=True, order="C"), check_shapes=False),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (_AllReduceSum.apply(grad),)


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation whose training statistics cover every rank's batch.

    The same arguments, parameters and buffers as ``BatchNorm1d``/``BatchNorm2d`` (state dicts
    are interchangeable); inputs (N, C) or (N, C, *). In evaluation, or in a group of one
    process, it is exactly BatchNorm. Every rank must call it in the same order (it
    communicates in forward and backward). Convert a model with :meth:`convert_sync_batchnorm`.

    Raises:
        ValueError: a wrong number of channels, or one value per channel over all ranks.
    """

    ranks = (2, 3, 4, 5)
    layout = "(N, {C}) or (N, {C}, ...)"

    def forward(self, x: Tensor) -> Tensor:
        if dist.get_world_size() == 1 or not self.training:
            return super().forward(x)
        if x.ndim not in self.ranks or x.shape[1] != self.num_features:
            raise ValueError(
                f"SyncBatchNorm({self.num_features}): expected input of shape "
                f"{self.layout.format(C=self.num_features)}, got {tuple(x.shape)}"
            )
        momentum = self.momentum
        if self.track_running_stats:
            self.num_batches_tracked._data[...] += 1
            if momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked._data)
        return _SyncBatchNormFunction.apply(
            x, self.weight, self.bias,
            None if self.running_mean is None else self.running_mean._data,
            None if self.running_var is None else self.running_var._data,
            0.0 if momentum is None else momentum, self.eps,
        )

    @classmethod
    def convert_sync_batchnorm(cls, module: Module) -> Module:
        """Replace every BatchNorm1d/2d inside ``module`` by a SyncBatchNorm with its state.

        Returns the module (a new SyncBatchNorm if ``module`` itself is a BatchNorm).
        """
        if isinstance(module, _BatchNorm) and not isinstance(module, cls):
            has_bias = module.bias is not None or not module.affine
            sync = cls(module.num_features, module.eps, module.momentum, module.affine,
                       module.track_running_stats, bias=has_bias)
            sync.load_state_dict(module.state_dict())
            sync.train(module.training)
            return sync
        for name, child in list(module._modules.items()):
            if child is not None:
                module._modules[name] = cls.convert_sync_batchnorm(child)  # keeps the order
        return module
