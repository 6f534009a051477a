"""Gradients of gradients: backward(create_graph=True), gw.autograd.grad, the functional API
(jacobian, hessian, hvp, vjp, jvp) and gradgradcheck.

Each op's second derivative is checked two ways in float64: against PyTorch (a Hessian-vector
product through ``grad(..., create_graph=True)`` on both sides) and against finite differences of
the first gradient (``gradgradcheck``). Layers (``LAYER_CASES``) are built in both libraries with
the same weights and checked with respect to their inputs and every parameter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gradwise as gw
import gradwise.nn.functional as F
from gradwise.autograd import functional as AF

RNG = np.random.default_rng(7)


def _positive(*shape):
    return RNG.uniform(0.5, 2.0, size=shape)


def _signed(*shape, rng=None):
    # away from 0 and from each other, so kinks (relu, abs, max) are not hit by the differences
    rng = RNG if rng is None else rng
    values = rng.uniform(0.3, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return values


_RNG4 = np.random.default_rng(124)  # review 4's cases: their own stream, the others' unchanged


TARGET = np.array([2, 0, 1])
BCE_TARGET = np.array([[1.0, 0.0], [0.3, 1.0], [0.0, 0.8]])

# name -> (gradwise fn, torch fn (given the torch module and tensors), input makers)
CASES = {
    "add": (lambda a, b: (a + b).tanh(), lambda t, a, b: (a + b).tanh(),
            [_signed(3, 4), _signed(4)]),
    "add_linear": (lambda a, b: a + b, lambda t, a, b: a + b, [_signed(3, 4), _signed(4)]),
    "sub": (lambda a, b: (a - b) ** 2, lambda t, a, b: (a - b) ** 2,
            [_signed(3, 4), _signed(3, 1)]),
    "mul": (lambda a, b: a * b, lambda t, a, b: a * b, [_signed(3, 4), _signed(4)]),
    "div": (lambda a, b: a / b, lambda t, a, b: a / b, [_signed(3, 4), _positive(3, 1)]),
    "neg": (lambda a: -a * a, lambda t, a: -a * a, [_signed(5)]),
    "pow_scalar": (lambda a: a**3, lambda t, a: a**3, [_signed(5)]),
    "pow_fraction": (lambda a: a**2.5, lambda t, a: a**2.5, [_positive(5)]),
    "pow_tensor": (lambda a, b: a**b, lambda t, a, b: a**b, [_positive(3, 2), _signed(2)]),
    "exp": (lambda a: a.exp(), lambda t, a: a.exp(), [_signed(5)]),
    "sin": (lambda a: a.sin(), lambda t, a: a.sin(), [_signed(5)]),
    "cos": (lambda a: a.cos(), lambda t, a: a.cos(), [_signed(5)]),
    "log1p": (lambda a: a.log1p(), lambda t, a: a.log1p(), [_positive(5)]),
    "expm1": (lambda a: a.expm1(), lambda t, a: a.expm1(), [_signed(5)]),
    "log": (lambda a: a.log(), lambda t, a: a.log(), [_positive(5)]),
    "sqrt": (lambda a: a.sqrt(), lambda t, a: a.sqrt(), [_positive(5)]),
    "abs": (lambda a: a.abs() * a, lambda t, a: a.abs() * a, [_signed(5)]),
    "clamp": (lambda a: a.clamp(-1.0, 1.0) * a, lambda t, a: a.clamp(-1.0, 1.0) * a,
              [_signed(6)]),
    "maximum": (lambda a, b: gw.maximum(a, b) * a, lambda t, a, b: t.maximum(a, b) * a,
                [_signed(5), _signed(5)]),
    "where": (lambda a, b: gw.where(a._data > 0, a * a, b * b * b),
              lambda t, a, b: t.where(a > 0, a * a, b * b * b), [_signed(6), _signed(6)]),
    "relu": (lambda a: F.relu(a) * a, lambda t, a: t.relu(a) * a, [_signed(6)]),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.1) * a,
                   lambda t, a: t.nn.functional.leaky_relu(a, 0.1) * a, [_signed(6)]),
    "elu": (lambda a: F.elu(a), lambda t, a: t.nn.functional.elu(a), [_signed(6)]),
    "sigmoid": (lambda a: F.sigmoid(a), lambda t, a: t.sigmoid(a), [_signed(6)]),
    "tanh": (lambda a: F.tanh(a), lambda t, a: t.tanh(a), [_signed(6)]),
    "softplus": (lambda a: F.softplus(a), lambda t, a: t.nn.functional.softplus(a),
                 [_signed(6)]),
    "gelu": (lambda a: F.gelu(a), lambda t, a: t.nn.functional.gelu(a), [_signed(6)]),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"),
                  lambda t, a: t.nn.functional.gelu(a, approximate="tanh"), [_signed(6)]),
    "matmul": (lambda a, b: a @ b, lambda t, a, b: a @ b, [_signed(3, 4), _signed(4, 2)]),
    "matmul_vector": (lambda a, b: (a @ b) * (a @ b), lambda t, a, b: (a @ b) * (a @ b),
                      [_signed(4), _signed(4, 3)]),
    "matmul_batched": (lambda a, b: (a @ b).tanh(), lambda t, a, b: (a @ b).tanh(),
                       [_signed(2, 3, 4), _signed(4, 2)]),
    "linear": (lambda x, w, b: F.linear(x, w, b).tanh(),
               lambda t, x, w, b: t.nn.functional.linear(x, w, b).tanh(),
               [_signed(3, 4), _signed(2, 4), _signed(2)]),
    "sum": (lambda a: a.sum(dim=1) ** 2, lambda t, a: a.sum(dim=1) ** 2, [_signed(3, 4)]),
    "mean": (lambda a: a.mean(dim=0, keepdim=True) ** 2,
             lambda t, a: a.mean(dim=0, keepdim=True) ** 2, [_signed(3, 4)]),
    "hypot": (lambda a, b: a.hypot(b), lambda t, a, b: t.hypot(a, b),
              [_signed(3, 4), _signed(4)]),
    "copysign": (lambda a, b: a.copysign(b) * a, lambda t, a, b: t.copysign(a, b) * a,
                 [_signed(3, 4, rng=_RNG4), _signed(4, rng=_RNG4)]),
    "logaddexp": (lambda a, b: a.logaddexp(b), lambda t, a, b: t.logaddexp(a, b),
                  [_signed(3, 4, rng=_RNG4), _signed(4, rng=_RNG4)]),
    "sinc": (lambda a: a.sinc(), lambda t, a: t.sinc(a), [_signed(3, 4, rng=_RNG4)]),
    "median_all": (lambda a: a.median() * a, lambda t, a: t.median(a) * a, [_signed(5)]),
    "cumsum": (lambda a: (a.cumsum(1) * a).tanh(),
               lambda t, a: (a.cumsum(1) * a).tanh(), [_signed(3, 4)]),
    "amax": (lambda a: a.amax(dim=1) * a.sum(dim=1),
             lambda t, a: a.amax(dim=1) * a.sum(dim=1), [_signed(3, 4)]),
    "var": (lambda a: a.var(dim=1), lambda t, a: a.var(dim=1), [_signed(3, 4)]),
    "std": (lambda a: a.std(), lambda t, a: a.std(), [_signed(3, 4)]),
    "norm": (lambda a: a.norm(dim=1), lambda t, a: a.norm(dim=1), [_signed(3, 4)]),
    "reshape": (lambda a: a.reshape(6, 2).tanh(), lambda t, a: a.reshape(6, 2).tanh(),
                [_signed(3, 4)]),
    "transpose": (lambda a: (a.T @ a), lambda t, a: (a.T @ a), [_signed(3, 4)]),
    "getitem": (lambda a: a[1:, ::2] * a[0], lambda t, a: a[1:, ::2] * a[0],
                [_signed(3, 2)]),
    "getitem_fancy": (lambda a: a[[0, 2, 0]] ** 2, lambda t, a: a[[0, 2, 0]] ** 2,
                      [_signed(3, 2)]),
    "broadcast": (lambda a: a.expand(3, 4) * a, lambda t, a: a.expand(3, 4) * a,
                  [_signed(1, 4)]),
    "cat": (lambda a, b: gw.cat([a, b * b], dim=1).tanh(),
            lambda t, a, b: t.cat([a, b * b], dim=1).tanh(), [_signed(2, 3), _signed(2, 1)]),
    "stack": (lambda a, b: gw.stack([a, a * b]).tanh(),
              lambda t, a, b: t.stack([a, a * b]).tanh(), [_signed(2, 3), _signed(2, 3)]),
    "softmax": (lambda a: F.softmax(a, dim=1), lambda t, a: t.softmax(a, dim=1),
                [_signed(3, 4)]),
    "log_softmax": (lambda a: F.log_softmax(a, dim=1), lambda t, a: t.log_softmax(a, dim=1),
                    [_signed(3, 4)]),
    "logsumexp": (lambda a: a.logsumexp(dim=1), lambda t, a: a.logsumexp(dim=1),
                  [_signed(3, 4)]),
    "cross_entropy": (lambda a: F.cross_entropy(a, TARGET),
                      lambda t, a: t.nn.functional.cross_entropy(a, t.tensor(TARGET)),
                      [_signed(3, 4)]),
    "cross_entropy_options": (
        lambda a: F.cross_entropy(a, np.array([2, -100, 1]), weight=np.array([1.0, 2, 0.5, 1]),
                                  label_smoothing=0.1),
        lambda t, a: t.nn.functional.cross_entropy(
            a, t.tensor([2, -100, 1]), weight=t.tensor([1.0, 2, 0.5, 1], dtype=t.float64),
            label_smoothing=0.1),
        [_signed(3, 4)]),
    "cross_entropy_sum": (lambda a: F.cross_entropy(a, TARGET, reduction="none"),
                          lambda t, a: t.nn.functional.cross_entropy(a, t.tensor(TARGET),
                                                                     reduction="none"),
                          [_signed(3, 4)]),
    "nll": (lambda a: F.nll_loss(F.log_softmax(a, dim=1), np.array([2, -100, 1]),
                                 weight=np.array([1.0, 2, 0.5, 1])),
            lambda t, a: t.nn.functional.nll_loss(
                t.log_softmax(a, dim=1), t.tensor([2, -100, 1]),
                weight=t.tensor([1.0, 2, 0.5, 1], dtype=t.float64)),
            [_signed(3, 4)]),
    "bce_with_logits": (
        lambda a: F.binary_cross_entropy_with_logits(a, BCE_TARGET,
                                                     pos_weight=np.array([2.0, 0.5])),
        lambda t, a: t.nn.functional.binary_cross_entropy_with_logits(
            a, t.tensor(BCE_TARGET), pos_weight=t.tensor([2.0, 0.5], dtype=t.float64)),
        [_signed(3, 2)]),
    "bce_with_logits_weight": (
        lambda a: F.binary_cross_entropy_with_logits(a, BCE_TARGET, reduction="sum",
                                                     weight=np.array([1.5, 0.5])),
        lambda t, a: t.nn.functional.binary_cross_entropy_with_logits(
            a, t.tensor(BCE_TARGET), reduction="sum",
            weight=t.tensor([1.5, 0.5], dtype=t.float64)),
        [_signed(3, 2)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (4,), w, b).tanh(),
                   lambda t, x, w, b: t.nn.functional.layer_norm(x, (4,), w, b).tanh(),
                   [_signed(3, 4), _signed(4), _signed(4)]),
    "layer_norm_plain": (lambda x: F.layer_norm(x, (2, 3)) ** 3,
                         lambda t, x: t.nn.functional.layer_norm(x, (2, 3)) ** 3,
                         [_signed(2, 2, 3)]),
    "mse": (lambda a, b: F.mse_loss(a.tanh(), b), lambda t, a, b: t.nn.functional.mse_loss(
        a.tanh(), b), [_signed(3, 4), _signed(3, 4)]),
}


def _torch_dropout_mask(p, seed, shape):
    # the mask gradwise's dropout draws (its generator, not torch's), so both sides drop the same
    keep = np.random.default_rng(seed).random(shape, dtype=np.float32) >= p
    return keep / (1 - p)


def _sync_batch_norm(x, w, b):
    # the SyncBatchNorm op in a group of one process (the statistics all-reduce to this rank's)
    from gradwise.nn.parallel.sync_batchnorm import _SyncBatchNormFunction

    gw.distributed.init()
    return _SyncBatchNormFunction.apply(x, w, b, None, None, 0.1, 1e-5).tanh()


def _hooked_linear(x, w):
    # a module backward hook wraps the module's input and output in identity nodes
    class Scaled(gw.nn.Module):
        def forward(self, x):
            return F.linear(x, w)

    layer = Scaled()
    layer.register_full_backward_hook(lambda module, grad_in, grad_out: None)
    return layer(x).tanh()


def _fused_linear_relu(x, w, b):
    from gradwise.autograd.ops.linalg import LinearReLU

    return LinearReLU.apply(x, w, b)


RUNNING_MEAN, RUNNING_VAR = _signed(3), _positive(3)
EMBEDDING_INDEX = np.array([[0, 2], [2, 3]])

# the convolution, pooling and normalisation ops, the remaining functions of F and the ops only
# they reach; each with stride/padding/dilation or options that take different code paths
CASES.update({  # issue 11: the trigonometric and hyperbolic ops (ops/trig.py)
    "tan": (lambda a: (a * 0.8).tan(), lambda t, a: (a * 0.8).tan(), [_signed(5)]),
    "asin": (lambda a: (a.tanh() * 0.9).asin(), lambda t, a: (a.tanh() * 0.9).asin(),
             [_signed(5)]),
    "acos": (lambda a: (a.tanh() * 0.9).acos(), lambda t, a: (a.tanh() * 0.9).acos(),
             [_signed(5)]),
    "atan": (lambda a: a.atan() * a, lambda t, a: a.atan() * a, [_signed(5)]),
    "sinh": (lambda a: a.sinh(), lambda t, a: a.sinh(), [_signed(5)]),
    "cosh": (lambda a: a.cosh(), lambda t, a: a.cosh(), [_signed(5)]),
    "asinh": (lambda a: a.asinh() * a, lambda t, a: a.asinh() * a, [_signed(5)]),
    "acosh": (lambda a: (a + 1).acosh(), lambda t, a: (a + 1).acosh(), [_positive(5)]),
    "atanh": (lambda a: (a.tanh() * 0.9).atanh(), lambda t, a: (a.tanh() * 0.9).atanh(),
              [_signed(5)]),
    "atan2": (lambda a, b: gw.atan2(a, b), lambda t, a, b: t.atan2(a, b),
              [_signed(3, 4), _signed(4)]),
})

# issue 12: the decompositions, einsum, scatter and the special functions (ops/decompositions.py,
# einsum.py, scatter.py, special.py). Eigenvectors and singular vectors are defined up to sign,
# and LAPACK's choice need not be torch's: their cases read sign-free functions of them
_EYE3 = np.eye(3)
SCATTER_INDEX = np.array([[0, 1, 2, 0], [2, 0, 1, 1]])  # no position written twice
REDUCE_INDEX = np.array([[0, 1, 2, 0], [0, 0, 1, 1], [2, 1, 1, 0]])  # repeats
STEP_VALUES = np.array([-1.3, -0.4, 0.2, 0.45, 0.9, 1.7])
CUMPROD_ZEROS = np.array([[0.5, 0.0, 1.5, -0.7], [1.2, -0.8, 0.0, 0.0], [0.0, 0.9, -1.1, 1.3]])


SINGULAR = _signed(3, 2) @ _signed(2, 3)  # rank 2


def _well_conditioned(*shape):
    return _signed(*shape) + 3 * np.eye(shape[-1])


def _spd(t, x):
    return x @ x.mT + t.tensor(_EYE3) if t is not None else x @ x.mT + gw.tensor(_EYE3)


def _special(name):
    """(gradwise fn, torch fn) of torch.special.<name>."""
    return (lambda a: getattr(gw.special, name)(a),
            lambda t, a: getattr(t.special, name)(a))


# cases where torch is the less exact side, and by how much the tolerance widens: its
# trigamma (polygamma(1, x), digamma's derivative) is a series good to ~5e-10 relative, while
# scipy's is exact to rounding (test_trigamma_is_exact checks both against mpmath)
TORCH_LESS_EXACT = {"digamma": 1e4, "gammaln": 1e4}

CASES.update({
    **{name: (*_special(name), [values]) for name, values in [
        ("erf", _signed(5)), ("erfc", _signed(5)), ("erfcx", _signed(5)),
        ("erfinv", RNG.uniform(-0.9, 0.9, size=5)), ("gammaln", _positive(5)),
        ("digamma", _positive(5)), ("ndtr", _signed(5)), ("log_ndtr", _signed(5) * 3),
        ("ndtri", RNG.uniform(0.05, 0.95, size=5)), ("i0", _signed(5) * 2),
        ("i0e", _signed(5) * 2), ("i1", _signed(5) * 2), ("i1e", _signed(5) * 2),
        ("entr", _positive(5))]},
    "polygamma": (lambda a: gw.special.polygamma(2, a),
                  lambda t, a: t.special.polygamma(2, a), [_positive(5)]),
    "fmod": (lambda a, b: a.fmod(b) * a, lambda t, a, b: t.fmod(a, b) * a,
             [_signed(3, 4) * 3, _positive(4)]),
    # fixed values (not drawn from RNG, so the cases after these keep their inputs)
    "logit": (lambda a: a.logit(), lambda t, a: a.logit(), [np.array([0.07, 0.3, 0.5, 0.8, 0.93])]),
    "logit_eps": (lambda a: a.logit(eps=0.2), lambda t, a: a.logit(eps=0.2),
                  [np.array([0.05, 0.3, 0.5, 0.7, 0.95])]),
    "prod_all": (lambda a: a.prod(), lambda t, a: a.prod(), [STEP_VALUES.reshape(2, 3)]),
    "prod_dim": (lambda a: a.prod(1, keepdim=True) * a, lambda t, a: a.prod(1, keepdim=True) * a,
                 [STEP_VALUES.reshape(3, 2)]),
    "prod_zeros": (lambda a: a.prod(0), lambda t, a: a.prod(0), [CUMPROD_ZEROS]),
    "nansum": (lambda a: a.nansum(1, keepdim=True) * a, lambda t, a: a.nansum(1, keepdim=True) * a,
               [STEP_VALUES.reshape(2, 3)]),
    **{f"step_{name}": (lambda a, n=name: getattr(a, n)() * a * a,
                        lambda t, a, n=name: getattr(a, n)() * a * a, [STEP_VALUES * 3])
       for name in ("sign", "floor", "ceil", "round", "trunc")},
    "cumprod": (lambda a: a.cumprod(1), lambda t, a: a.cumprod(1), [_signed(3, 4)]),
    "cumprod_zeros": (lambda a: a.cumprod(1) * a, lambda t, a: a.cumprod(1) * a,
                      [CUMPROD_ZEROS]),
    "cumprod_dim0": (lambda a: a.cumprod(0).tanh(), lambda t, a: a.cumprod(0).tanh(),
                     [_signed(4, 2)]),
    "logcumsumexp": (lambda a: a.logcumsumexp(1) * a, lambda t, a: a.logcumsumexp(1) * a,
                     [_signed(3, 4)]),
    "logcumsumexp_dim0": (lambda a: a.logcumsumexp(0).tanh(),
                          lambda t, a: a.logcumsumexp(0).tanh(), [_signed(4, 2)]),
    "scatter": (lambda x, s: x.scatter(0, SCATTER_INDEX, s) ** 2,
                lambda t, x, s: x.scatter(0, t.tensor(SCATTER_INDEX), s) ** 2,
                [_signed(3, 4), _signed(2, 4)]),
    **{f"scatter_reduce_{reduce}{'' if include else '_exclude_self'}": (
        lambda x, s, reduce=reduce, include=include: x.scatter_reduce(
            0, REDUCE_INDEX, s, reduce, include_self=include) * x,
        lambda t, x, s, reduce=reduce, include=include: x.scatter_reduce(
            0, t.tensor(REDUCE_INDEX), s, reduce, include_self=include) * x,
        [_signed(3, 4), _signed(3, 4)])
       for reduce in ("sum", "mean", "prod", "amax", "amin") for include in (True, False)},
    "scatter_add_dim1": (
        lambda x, s: x.scatter_add(1, np.array([[0, 2], [1, 1]]), s).tanh(),
        lambda t, x, s: x.scatter_add(1, t.tensor([[0, 2], [1, 1]]), s).tanh(),
        [_signed(2, 3), _signed(2, 2)]),
    "einsum_bilinear": (lambda x, a, y: gw.einsum("i,ij,j->", x, a, y) ** 2,
                        lambda t, x, a, y: t.einsum("i,ij,j->", x, a, y) ** 2,
                        [_signed(3), _signed(3, 4), _signed(4)]),
    "einsum_batched": (lambda a, b: gw.einsum("bij,bjk->bik", a, b).tanh(),
                       lambda t, a, b: t.einsum("bij,bjk->bik", a, b).tanh(),
                       [_signed(2, 3, 4), _signed(2, 4, 2)]),
    "einsum_ellipsis_broadcast": (
        lambda a, b: gw.einsum("...ij,jk->...ik", a, b) ** 2,
        lambda t, a, b: t.einsum("...ij,jk->...ik", a, b) ** 2,
        [_signed(2, 1, 3, 4), _signed(4, 2)]),
    "einsum_diagonal": (lambda a: gw.einsum("iij->ij", a) * gw.einsum("iij->j", a),
                        lambda t, a: t.einsum("iij->ij", a) * t.einsum("iij->j", a),
                        [_signed(3, 3, 2)]),
    "einsum_outer_sum": (lambda a, b: gw.einsum("ij,k->ik", a, b).tanh(),
                         lambda t, a, b: t.einsum("ij,k->ik", a, b).tanh(),
                         [_signed(2, 3), _signed(4)]),
    "inv": (lambda a: gw.linalg.inv(a), lambda t, a: t.linalg.inv(a),
            [_well_conditioned(2, 3, 3)]),
    "det": (lambda a: gw.linalg.det(a), lambda t, a: t.linalg.det(a),
            [_well_conditioned(2, 3, 3)]),
    "slogdet": (lambda a: gw.linalg.slogdet(a).logabsdet,
                lambda t, a: t.linalg.slogdet(a).logabsdet, [_well_conditioned(2, 3, 3)]),
    "solve": (lambda a, b: gw.linalg.solve(a, b), lambda t, a, b: t.linalg.solve(a, b),
              [_well_conditioned(2, 3, 3), _signed(3, 2)]),
    "solve_vector": (lambda a, b: gw.linalg.solve(a, b) ** 2,
                     lambda t, a, b: t.linalg.solve(a, b) ** 2,
                     [_well_conditioned(3, 3), _signed(3)]),
    "solve_right": (lambda a, b: gw.linalg.solve(a, b, left=False),
                    lambda t, a, b: t.linalg.solve(a, b, left=False),
                    [_well_conditioned(3, 3), _signed(2, 3)]),
    "cholesky": (lambda x: gw.linalg.cholesky(_spd(None, x)),
                 lambda t, x: t.linalg.cholesky(_spd(t, x)), [_signed(2, 3, 3)]),
    "cholesky_upper": (lambda x: gw.linalg.cholesky(_spd(None, x), upper=True),
                       lambda t, x: t.linalg.cholesky(_spd(t, x), upper=True),
                       [_signed(3, 3)]),
    "eigvalsh": (lambda a: gw.linalg.eigvalsh(a + a.mT), lambda t, a: t.linalg.eigvalsh(a + a.mT),
                 [_signed(2, 3, 3)]),
    "eigh_vectors": (lambda a: gw.linalg.eigh(a + a.mT).eigenvectors ** 2,
                     lambda t, a: t.linalg.eigh(a + a.mT).eigenvectors ** 2, [_signed(3, 3)]),
    "eigh_symmetric": (lambda a: gw.linalg.eigh(a + a.mT, UPLO="U").eigenvectors.tanh(),
                       lambda t, a: t.linalg.eigh(a + a.mT, UPLO="U").eigenvectors.tanh(),
                       [_signed(2, 3, 3)]),
    "svdvals": (lambda a: gw.linalg.svdvals(a), lambda t, a: t.linalg.svdvals(a),
                [_signed(2, 4, 3)]),
    "svd_u_tall": (lambda a: gw.linalg.svd(a, full_matrices=False).U ** 2,
                   lambda t, a: t.linalg.svd(a, full_matrices=False).U ** 2, [_signed(4, 3)]),
    "svd_vh_wide": (lambda a: gw.linalg.svd(a, full_matrices=False).Vh ** 2,
                    lambda t, a: t.linalg.svd(a, full_matrices=False).Vh ** 2,
                    [_signed(2, 3, 4)]),
    "svd_u_wide": (lambda a: gw.linalg.svd(a, full_matrices=False).U ** 2,
                   lambda t, a: t.linalg.svd(a, full_matrices=False).U ** 2, [_signed(3, 4)]),
    "svd_vh_tall": (lambda a: gw.linalg.svd(a, full_matrices=False).Vh ** 2,
                    lambda t, a: t.linalg.svd(a, full_matrices=False).Vh ** 2,
                    [_signed(4, 3)]),
    "qr_q": (lambda a: gw.linalg.qr(a).Q, lambda t, a: t.linalg.qr(a).Q, [_signed(4, 3)]),
    "qr_r": (lambda a: gw.linalg.qr(a).R, lambda t, a: t.linalg.qr(a).R, [_signed(2, 3, 3)]),
    "pinv": (lambda a: gw.linalg.pinv(a), lambda t, a: t.linalg.pinv(a), [_signed(4, 3)]),
    "matrix_norm_nuc": (lambda a: gw.linalg.matrix_norm(a, ord="nuc"),
                        lambda t, a: t.linalg.matrix_norm(a, ord="nuc"), [_signed(2, 3, 4)]),
    "matrix_norm_2": (lambda a: gw.linalg.matrix_norm(a, ord=2) * a.sum(),
                      lambda t, a: t.linalg.matrix_norm(a, ord=2) * a.sum(), [_signed(4, 3)]),
    "matrix_norm_minus_2": (lambda a: gw.linalg.matrix_norm(a, ord=-2),
                            lambda t, a: t.linalg.matrix_norm(a, ord=-2), [_signed(3, 3)]),
    # edge points: det at a rank-2 and a rank-1 matrix (the adjugate through the SVD), in a
    # batch beside an invertible one and the identity (repeated singular values, the inverse
    # path); i1 / i1e at 0 and below eps (the limit 1/2); einsum of a 0-d operand
    "det_singular": (lambda a: gw.linalg.det(a), lambda t, a: t.linalg.det(a), [SINGULAR]),
    "det_rank_one": (lambda a: gw.linalg.det(a), lambda t, a: t.linalg.det(a),
                     [np.outer(_signed(3), _signed(3))]),
    "det_mixed_batch": (lambda a: gw.linalg.det(a) ** 2, lambda t, a: t.linalg.det(a) ** 2,
                        [np.stack([SINGULAR, np.eye(3), _well_conditioned(3, 3)])]),
    # near-singular (condition ~1e4): large derivatives, still torch's to rounding
    "inv_near_singular": (lambda a: gw.linalg.inv(a), lambda t, a: t.linalg.inv(a),
                          [SINGULAR + 1e-3 * np.eye(3)]),
    "solve_near_singular": (lambda a, b: gw.linalg.solve(a, b), lambda t, a, b: t.linalg.solve(
        a, b), [SINGULAR + 1e-3 * np.eye(3), _signed(3, 2)]),
    "i1_at_zero": (lambda a: gw.special.i1(a) * a, lambda t, a: t.special.i1(a) * a,
                   [np.array([0.0, 1e-20, -0.7])]),
    "i1e_at_zero": (lambda a: gw.special.i1e(a) * a, lambda t, a: t.special.i1e(a) * a,
                    [np.array([0.0, -1e-20, 0.7])]),
    # an empty axis summed away: its operand's gradient is empty, the other's 0
    "einsum_empty_axis": (lambda a, b: gw.einsum("i,jk->k", a, b) ** 2 + b.sum(),
                          lambda t, a, b: t.einsum("i,jk->k", a, b) ** 2 + b.sum(),
                          [np.zeros(0), _signed(2, 3)]),
    "einsum_scalar_operand": (lambda s, v: gw.einsum(",i->i", s, v) ** 2,
                              lambda t, s, v: t.einsum(",i->i", s, v) ** 2,
                              [np.array(1.5), _signed(3)]),
})


def _setitem_case(a, b):
    y = a * 1
    y[1:, ::2] = b * b  # a recorded in-place write (issue 11): SetItem, value broadcast
    return y.tanh()


def _copy_case(a, b):
    y = a * 1
    y.copy_(b.tanh())  # copy_ as SetItem over everything, b broadcast to y's shape
    return y * a


CASES.update({
    "setitem": (_setitem_case, lambda t, a, b: _setitem_case(a, b), [_signed(3, 4), _signed(2)]),
    "copy_": (_copy_case, lambda t, a, b: _copy_case(a, b), [_signed(3, 4), _signed(4)]),
})


CASES.update({
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, dilation=2).tanh(),
               lambda t, x, w, b: t.nn.functional.conv2d(x, w, b, stride=2, padding=1,
                                                          dilation=2).tanh(),
               [_signed(2, 3, 7, 6), _signed(4, 3, 2, 3), _signed(4)]),
    "conv2d_plain": (lambda x, w: F.conv2d(x, w) ** 2,
                     lambda t, x, w: t.nn.functional.conv2d(x, w) ** 2,
                     [_signed(1, 2, 4, 4), _signed(3, 2, 3, 3)]),
    "conv2d_strided_unread": (  # stride 3 leaves the last input rows unread
        lambda x, w: F.conv2d(x, w, stride=3).tanh(),
        lambda t, x, w: t.nn.functional.conv2d(x, w, stride=3).tanh(),
        [_signed(2, 2, 8, 7), _signed(2, 2, 2, 2)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2) ** 2,
                   lambda t, x: t.nn.functional.max_pool2d(x, 2) ** 2, [_signed(2, 2, 4, 5)]),
    "max_pool2d_padded": (lambda x: F.max_pool2d(x, 3, 2, 1) ** 3,
                          lambda t, x: t.nn.functional.max_pool2d(x, 3, 2, 1) ** 3,
                          [_signed(1, 2, 5, 6)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1) ** 2,
                   lambda t, x: t.nn.functional.avg_pool2d(x, 3, 2, 1) ** 2,
                   [_signed(1, 2, 5, 6)]),
    "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True).tanh(),
                   lambda t, x, w, b: t.nn.functional.batch_norm(x, None, None, w, b,
                                                                 training=True).tanh(),
                   [_signed(4, 3, 2, 2), _signed(3), _signed(3)]),
    "batch_norm_plain": (lambda x: F.batch_norm(x, None, None, training=True) ** 3,
                         lambda t, x: t.nn.functional.batch_norm(x, None, None,
                                                                 training=True) ** 3,
                         [_signed(5, 3)]),
    "batch_norm_eval": (
        lambda x, w, b: F.batch_norm(x, gw.tensor(RUNNING_MEAN), gw.tensor(RUNNING_VAR), w, b,
                                     training=False).tanh(),
        lambda t, x, w, b: t.nn.functional.batch_norm(
            x, t.tensor(RUNNING_MEAN), t.tensor(RUNNING_VAR), w, b, training=False).tanh(),
        [_signed(4, 3, 2), _signed(3), _signed(3)]),
    "sync_batch_norm": (
        _sync_batch_norm,
        lambda t, x, w, b: t.nn.functional.batch_norm(x, None, None, w, b,
                                                      training=True).tanh(),
        [_signed(4, 3, 2), _signed(3), _signed(3)]),
    "bce": (lambda p, y: F.binary_cross_entropy(p, y, weight=np.array([1.5, 0.5])),
            lambda t, p, y: t.nn.functional.binary_cross_entropy(
                p, y, weight=t.tensor([1.5, 0.5], dtype=t.float64)),
            [RNG.uniform(0.1, 0.9, size=(3, 2)), RNG.uniform(0, 1, size=(3, 2))]),
    "bce_none": (lambda p, y: F.binary_cross_entropy(p, y, reduction="none"),
                 lambda t, p, y: t.nn.functional.binary_cross_entropy(p, y, reduction="none"),
                 [RNG.uniform(0.1, 0.9, size=(4,)), RNG.uniform(0, 1, size=(4,))]),
    "remainder": (lambda a, b: (a % b) * a, lambda t, a, b: t.remainder(a, b) * a,
                  [_signed(3, 4) * 3, _positive(4)]),
    "silu": (F.silu, lambda t, a: t.nn.functional.silu(a), [_signed(6)]),
    "mish": (F.mish, lambda t, a: t.nn.functional.mish(a), [_signed(6)]),
    "hardswish": (lambda a: F.hardswish(a * 2) * a,
                  lambda t, a: t.nn.functional.hardswish(a * 2) * a, [_signed(6)]),
    # torch has no double backward for hardsigmoid (and its create_graph path uses a float32
    # 1/6): the oracle is the same function written with torch.where
    "hardsigmoid": (lambda a: F.hardsigmoid(a * 2) * a,
                    lambda t, a: t.where((a * 2 > -3) & (a * 2 < 3), a * 2 / 6 + 0.5,
                                         (a * 2 >= 3).to(a.dtype)) * a, [_signed(6)]),
    "hardtanh": (lambda a: F.hardtanh(a * 2) * a,
                 lambda t, a: t.nn.functional.hardtanh(a * 2) * a, [_signed(6)]),
    "relu6": (lambda a: F.relu6(a * 5) * a, lambda t, a: t.nn.functional.relu6(a * 5) * a,
              [_signed(6)]),
    "normalize": (lambda a: F.normalize(a, dim=1), lambda t, a: t.nn.functional.normalize(a),
                  [_signed(3, 4)]),
    "cosine_similarity": (F.cosine_similarity, lambda t, a, b: t.nn.functional.cosine_similarity(
        a, b), [_signed(3, 4), _signed(3, 4)]),
    "l1_loss": (lambda a, b: F.l1_loss(a * a, b), lambda t, a, b: t.nn.functional.l1_loss(
        a * a, b), [_signed(3, 4), _signed(3, 4)]),
    "smooth_l1_loss": (lambda a, b: F.smooth_l1_loss(a, b, beta=0.8),
                       lambda t, a, b: t.nn.functional.smooth_l1_loss(a, b, beta=0.8),
                       [_signed(3, 4), _signed(3, 4)]),
    "huber_loss": (lambda a, b: F.huber_loss(a, b, delta=0.7),
                   lambda t, a, b: t.nn.functional.huber_loss(a, b, delta=0.7),
                   [_signed(3, 4), _signed(3, 4)]),
    "embedding": (lambda w: F.embedding(EMBEDDING_INDEX, w, padding_idx=3) ** 2,
                  lambda t, w: t.nn.functional.embedding(t.tensor(EMBEDDING_INDEX), w,
                                                         padding_idx=3) ** 2,
                  [_signed(4, 3)]),
    "pad": (lambda a: F.pad(a, (0, 2, 1, 0)) ** 2,
            lambda t, a: t.nn.functional.pad(a, (0, 2, 1, 0)) ** 2, [_signed(2, 3)]),
    "l2_penalty": (lambda a, b: F.l2_penalty([a, b]),
                   lambda t, a, b: (a * a).sum() + (b * b).sum(), [_signed(3), _signed(2, 2)]),
    "l1_penalty": (lambda a, b: F.l1_penalty([a, b]) * F.l1_penalty([a]),
                   lambda t, a, b: (a.abs().sum() + b.abs().sum()) * a.abs().sum(),
                   [_signed(3), _signed(2, 2)]),
    "dropout": (lambda a: F.dropout(a, 0.4, rng=5) ** 2,
                lambda t, a: (a * t.tensor(_torch_dropout_mask(0.4, 5, a.shape))) ** 2,
                [_signed(3, 4)]),
    "vector_norm_p3": (lambda a: gw.linalg.vector_norm(a, ord=3, dim=1),
                       lambda t, a: t.linalg.vector_norm(a, ord=3, dim=1), [_signed(3, 4)]),
    "vector_norm_p_half": (lambda a: gw.linalg.vector_norm(a, ord=0.5),
                           lambda t, a: t.linalg.vector_norm(a, ord=0.5), [_signed(5)]),
    "vector_norm_p_negative": (lambda a: gw.linalg.vector_norm(a, ord=-1.5, dim=0),
                               lambda t, a: t.linalg.vector_norm(a, ord=-1.5, dim=0),
                               [_signed(3, 2)]),
    "matrix_norm_1": (lambda a: gw.linalg.matrix_norm(a, ord=1) * a.sum(),
                      lambda t, a: t.linalg.matrix_norm(a, ord=1) * a.sum(), [_signed(3, 4)]),
    "matrix_norm_fro": (lambda a: gw.linalg.matrix_norm(a.tanh()),
                        lambda t, a: t.linalg.matrix_norm(a.tanh()), [_signed(2, 3, 4)]),
    "minimum": (lambda a, b: gw.minimum(a, b) * b, lambda t, a, b: t.minimum(a, b) * b,
                [_signed(5), _signed(5)]),
    "amin": (lambda a: a.amin(dim=0) * a.sum(dim=0), lambda t, a: a.amin(dim=0) * a.sum(dim=0),
             [_signed(3, 4)]),
    "min_dim": (lambda a: a.min(dim=1).values ** 2, lambda t, a: a.min(dim=1).values ** 2,
                [_signed(3, 4)]),
    "clone": (lambda a: a.clone() * a, lambda t, a: a.clone() * a, [_signed(4)]),
    # dyadic inputs: the float32 round trip is exact, on both sides
    "cast": (lambda a: (a.float() * a.float()).double() * a,
             lambda t, a: (a.float() * a.float()).double() * a,
             [np.array([0.5, -1.25, 2.0, 0.75])]),
    # nn.Sequential fuses Linear then ReLU into one LinearReLU node
    "sequential_linear_relu": (
        lambda x, w, b: _fused_linear_relu(x, w, b) * x.sum(dim=1, keepdim=True),
        lambda t, x, w, b: t.relu(t.nn.functional.linear(x, w, b)) * x.sum(dim=1, keepdim=True),
        [_signed(3, 4), _signed(2, 4), _signed(2)]),
    "hooked_module": (_hooked_linear, lambda t, x, w: t.nn.functional.linear(x, w).tanh(),
                      [_signed(3, 4), _signed(2, 4)]),
})


# ---- issue 12 B: the F functions merged after this walk (activations, losses, normalisation,
# recurrent cells, attention, random layers); each case composes the function with a smooth
# op where it is piecewise linear, so its second derivative is not trivially 0
SIGNS = np.array([1.0, -1.0, -1.0, 1.0])
PROBABILITIES = np.array([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0], [0.3, 0.3, 0.4]])
MULTI_HOT = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
COUNTS = np.array([[0.0, 1.0, 3.0], [2.0, 0.5, 4.0]])
BAG_INDEX = np.array([1, 2, 4, 5, 4, 3, 2])
BAG_OFFSETS = np.array([0, 2, 2, 5])  # an empty bag in the middle


def _torch_sdpa(t, q, k, v, **kwargs):
    # torch's fused CPU attention kernel has no double backward; its math backend is the
    # reference form scaled_dot_product_attention documents
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        return t.nn.functional.scaled_dot_product_attention(q, k, v, **kwargs)


def _torch_rnn_step(t, gates, h, w_hh, b_hh, nonlinearity):
    pre = gates + t.nn.functional.linear(h, w_hh, b_hh)
    return pre.tanh() if nonlinearity == "tanh" else t.relu(pre)


def _torch_lstm_step(t, gates, h, c, w_hh, b_hh):
    i, f, g, o = (gates + t.nn.functional.linear(h, w_hh, b_hh)).chunk(4, -1)
    c_next = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return t.stack([o.sigmoid() * c_next.tanh(), c_next])


def _torch_gru_step(t, gates, h, w_hh, b_hh):
    x_r, x_z, x_n = gates.chunk(3, -1)
    h_r, h_z, h_n = t.nn.functional.linear(h, w_hh, b_hh).chunk(3, -1)
    r, z = (x_r + h_r).sigmoid(), (x_z + h_z).sigmoid()
    n = (x_n + r * h_n).tanh()
    return (1 - z) * n + z * h


def _feature_mask(p, seed, shape):
    # the channel mask gradwise's dropout1d/2d/3d draw from the seeded generator
    keep = np.random.default_rng(seed).random(shape, dtype=np.float32) >= p
    return keep / (1 - p)


def _torch_alpha_dropout(t, x, p, seed, shape):
    # the affine map torch's alpha_dropout applies, with the keep mask gradwise draws
    saturation = 1.7580993408473766  # SELU_SCALE * SELU_ALPHA
    keep = (np.random.default_rng(seed).random(shape) >= p).astype(np.float64)
    a = 1.0 / np.sqrt((saturation**2 * p + 1) * (1 - p))
    shift = (keep - 1) * (saturation * a) + saturation * a * p
    return x * t.tensor(keep * a) + t.tensor(shift)


def _gumbels(seed, shape):
    return -np.log(np.random.default_rng(seed).exponential(size=shape))


def _torch_gumbel_softmax(t, logits, seed, tau, hard):
    soft = t.softmax((logits + t.tensor(_gumbels(seed, logits.shape))) / tau, -1)
    if not hard:
        return soft
    one_hot = t.nn.functional.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
    return one_hot - soft.detach() + soft


def _torch_rrelu_train(t, x, seed, lower, upper):
    slopes = np.random.default_rng(seed).uniform(lower, upper, x.shape)
    return t.where(x >= 0, x, x * t.tensor(slopes))


def _torch_multi_margin(t, x, target, p, margin, weight):
    # torch's multi_margin_loss has no double backward: its formula, written in torch ops
    rows = t.arange(x.shape[0])
    hinge = t.relu(x - x[rows, target].unsqueeze(1) + margin) ** p
    others = t.ones_like(x)
    others[rows, target] = 0
    return (hinge * others * weight[target].unsqueeze(1)).sum(1) / x.shape[1]


def _torch_embedding_bag(t, weight, bags, mode, per_sample_weights=None, padding_idx=None):
    # torch's embedding_bag has no double backward (_embedding_bag_backward): each bag's rows
    # gathered and reduced in torch ops; padding rows left out, an empty bag gives zeros
    pooled = []
    for members in bags:
        members = [i for i in members if i != padding_idx]
        if not members:
            pooled.append(t.zeros(weight.shape[1], dtype=weight.dtype))
            continue
        rows = weight[t.tensor(members)]
        if per_sample_weights is not None:
            rows = rows * per_sample_weights[t.tensor(members)].unsqueeze(1)
        pooled.append({"sum": rows.sum(0), "mean": rows.mean(0),
                       "max": rows.amax(0)}[mode])
    return t.stack(pooled)


def _offset_bags(index, offsets):
    ends = [*offsets[1:], len(index)]
    return [list(index[start:end]) for start, end in zip(offsets, ends, strict=True)]


def _torch_pdist(t, x, p):
    # torch's pdist has no double backward (_pdist_backward): the pairwise norms it computes
    rows, cols = np.triu_indices(x.shape[0], 1)
    return t.linalg.vector_norm(x[rows] - x[cols], ord=p, dim=1)


CASES.update({
    "softsign": (lambda a: F.softsign(a), lambda t, a: t.nn.functional.softsign(a),
                 [_signed(6)]),
    "tanhshrink": (F.tanhshrink, lambda t, a: t.nn.functional.tanhshrink(a), [_signed(6)]),
    "logsigmoid": (F.logsigmoid, lambda t, a: t.nn.functional.logsigmoid(a), [_signed(6) * 3]),
    "softmin": (lambda a: F.softmin(a, dim=0), lambda t, a: t.nn.functional.softmin(a, dim=0),
                [_signed(3, 4)]),
    "threshold": (lambda a: F.threshold(a, 0.1, 2.0) * a,
                  lambda t, a: t.nn.functional.threshold(a, 0.1, 2.0) * a, [_signed(6)]),
    "hardshrink": (lambda a: F.hardshrink(a, 0.7) * a,
                   lambda t, a: t.nn.functional.hardshrink(a, 0.7) * a, [_signed(8)]),
    "softshrink": (lambda a: F.softshrink(a, 0.7) * a,
                   lambda t, a: t.nn.functional.softshrink(a, 0.7) * a, [_signed(8)]),
    # torch's celu carries 1 / alpha rounded to float32 (tests/nn/test_torch_layers.py): the
    # oracle is its definition, alpha * elu(x / alpha), in float64
    "celu": (lambda a: F.celu(a, 0.7), lambda t, a: t.nn.functional.elu(a / 0.7) * 0.7,
             [_signed(6)]),
    "selu": (F.selu, lambda t, a: t.nn.functional.selu(a), [_signed(6)]),
    "glu": (lambda a: F.glu(a, 1), lambda t, a: t.nn.functional.glu(a, 1), [_signed(3, 4, 2)]),
    "prelu": (lambda x, w: F.prelu(x, w) * x, lambda t, x, w: t.nn.functional.prelu(x, w) * x,
              [_signed(2, 3, 4), _positive(3) / 4]),
    "prelu_shared": (lambda x, w: F.prelu(x, w).tanh(),
                     lambda t, x, w: t.nn.functional.prelu(x, w).tanh(),
                     [_signed(3, 4), _positive(1) / 4]),
    # evaluation: the fixed slope (lower + upper) / 2
    "rrelu": (lambda a: F.rrelu(a, 0.1, 0.3) * a,
              lambda t, a: t.nn.functional.rrelu(a, 0.1, 0.3, training=False) * a,
              [_signed(6)]),
    # training: the slopes gradwise draws from the seeded generator, given to torch as is
    "rrelu_train": (lambda a: F.rrelu(a, 0.1, 0.3, training=True, generator=3) * a,
                    lambda t, a: _torch_rrelu_train(t, a, 3, 0.1, 0.3) * a, [_signed(6)]),
    "kl_div": (lambda a: F.kl_div(F.log_softmax(a, dim=1), PROBABILITIES,
                                  reduction="batchmean"),
               lambda t, a: t.nn.functional.kl_div(t.log_softmax(a, dim=1),
                                                   t.tensor(PROBABILITIES),
                                                   reduction="batchmean"), [_signed(3, 3)]),
    "kl_div_log_target": (
        lambda a, b: F.kl_div(a.tanh(), b, reduction="none", log_target=True),
        lambda t, a, b: t.nn.functional.kl_div(a.tanh(), b, reduction="none", log_target=True),
        [_signed(3, 3), _signed(3, 3)]),
    "margin_ranking_loss": (
        lambda a, b: F.margin_ranking_loss(a.tanh(), b * b, SIGNS, margin=0.2),
        lambda t, a, b: t.nn.functional.margin_ranking_loss(a.tanh(), b * b, t.tensor(SIGNS),
                                                            margin=0.2),
        [_signed(4), _signed(4)]),
    "hinge_embedding_loss": (
        lambda a: F.hinge_embedding_loss(a * a, SIGNS, margin=1.5, reduction="none"),
        lambda t, a: t.nn.functional.hinge_embedding_loss(a * a, t.tensor(SIGNS), margin=1.5,
                                                          reduction="none"), [_signed(4)]),
    "soft_margin_loss": (
        lambda a: F.soft_margin_loss(a, SIGNS),
        lambda t, a: t.nn.functional.soft_margin_loss(a, t.tensor(SIGNS)), [_signed(4)]),
    "multilabel_soft_margin_loss": (
        lambda a: F.multilabel_soft_margin_loss(a, MULTI_HOT, weight=np.array([0.5, 1.0, 2.0])),
        lambda t, a: t.nn.functional.multilabel_soft_margin_loss(
            a, t.tensor(MULTI_HOT), weight=t.tensor([0.5, 1.0, 2.0], dtype=t.float64)),
        [_signed(2, 3)]),
    "cosine_embedding_loss": (
        lambda a, b: F.cosine_embedding_loss(a, b, SIGNS, margin=-0.5),
        lambda t, a, b: t.nn.functional.cosine_embedding_loss(a, b, t.tensor(SIGNS),
                                                              margin=-0.5),
        [_signed(4, 5), _signed(4, 5)]),
    "pairwise_distance": (
        lambda a, b: F.pairwise_distance(a, b, p=3.0, keepdim=True),
        lambda t, a, b: t.nn.functional.pairwise_distance(a, b, p=3.0, keepdim=True),
        [_signed(4, 5), _signed(4, 5)]),
    "pdist": (lambda a: F.pdist(a), lambda t, a: _torch_pdist(t, a, 2.0), [_signed(4, 3)]),
    "pdist_p1_5": (lambda a: F.pdist(a, 1.5), lambda t, a: _torch_pdist(t, a, 1.5),
                   [_signed(3, 5)]),
    "triplet_margin_loss": (
        lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=3.0),
        lambda t, a, p, n: t.nn.functional.triplet_margin_loss(a, p, n, margin=3.0),
        [_signed(4, 5), _signed(4, 5), _signed(4, 5)]),
    "triplet_margin_loss_swap_p3": (
        lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=3.0, p=3.0, swap=True,
                                              reduction="sum"),
        lambda t, a, p, n: t.nn.functional.triplet_margin_loss(a, p, n, margin=3.0, p=3.0,
                                                               swap=True, reduction="sum"),
        [_signed(4, 5), _signed(4, 5), _signed(4, 5)]),
    "triplet_margin_with_distance_loss": (
        lambda a, p, n: F.triplet_margin_with_distance_loss(
            a, p, n, distance_function=lambda x, y: 1.0 - F.cosine_similarity(x, y),
            margin=2.5, swap=True),
        lambda t, a, p, n: t.nn.functional.triplet_margin_with_distance_loss(
            a, p, n, distance_function=lambda x, y: 1.0 - t.nn.functional.cosine_similarity(
                x, y), margin=2.5, swap=True),
        [_signed(4, 5), _signed(4, 5), _signed(4, 5)]),
    "poisson_nll_loss": (
        lambda a: F.poisson_nll_loss(a, COUNTS),
        lambda t, a: t.nn.functional.poisson_nll_loss(a, t.tensor(COUNTS)), [_signed(2, 3)]),
    "poisson_nll_loss_rate_full": (
        lambda a: F.poisson_nll_loss(a, COUNTS, log_input=False, full=True, reduction="sum"),
        lambda t, a: t.nn.functional.poisson_nll_loss(a, t.tensor(COUNTS), log_input=False,
                                                      full=True, reduction="sum"),
        [_positive(2, 3)]),
    # a Tensor target is differentiated through Stirling's term too (it was a constant: the
    # target's first and second derivatives missed it); targets on both sides of 1
    "poisson_nll_loss_full_target": (
        lambda a, y: F.poisson_nll_loss(a, y * 1.5, full=True, reduction="none"),
        lambda t, a, y: t.nn.functional.poisson_nll_loss(a, y * 1.5, full=True,
                                                         reduction="none"),
        [_signed(2, 3), _positive(2, 3)]),
    "gaussian_nll_loss": (
        lambda a, y, v: F.gaussian_nll_loss(a, y, v, full=True),
        lambda t, a, y, v: t.nn.functional.gaussian_nll_loss(a, y, v, full=True),
        [_signed(4, 2), _signed(4, 2), _positive(4, 2)]),
    "gaussian_nll_loss_shared_var": (
        lambda a, v: F.gaussian_nll_loss(a, np.ones((4, 2)), v, reduction="none"),
        lambda t, a, v: t.nn.functional.gaussian_nll_loss(a, t.ones(4, 2, dtype=t.float64), v,
                                                          reduction="none"),
        [_signed(4, 2), _positive(4)]),
    "multi_margin_loss": (
        lambda a: F.multi_margin_loss(a * a, np.array([0, 2, 1, 2]), margin=2.0),
        lambda t, a: _torch_multi_margin(t, a * a, t.tensor([0, 2, 1, 2]), 1, 2.0,
                                         t.ones(3, dtype=t.float64)).mean(), [_signed(4, 3)]),
    "multi_margin_loss_p2": (
        lambda a: F.multi_margin_loss(a, np.array([0, 2, 1, 2]), p=2, margin=2.0,
                                      weight=np.array([0.5, 1.0, 2.0]), reduction="none"),
        lambda t, a: _torch_multi_margin(t, a, t.tensor([0, 2, 1, 2]), 2, 2.0,
                                         t.tensor([0.5, 1.0, 2.0], dtype=t.float64)),
        [_signed(4, 3)]),
    "group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b).tanh(),
                   lambda t, x, w, b: t.nn.functional.group_norm(x, 2, w, b).tanh(),
                   [_signed(3, 4, 5), _signed(4), _signed(4)]),
    "group_norm_plain": (lambda x: F.group_norm(x, 1) ** 3,
                         lambda t, x: t.nn.functional.group_norm(x, 1) ** 3,
                         [_signed(2, 4, 2, 2)]),
    "instance_norm": (lambda x, w, b: F.instance_norm(x, weight=w, bias=b).tanh(),
                      lambda t, x, w, b: t.nn.functional.instance_norm(x, weight=w,
                                                                       bias=b).tanh(),
                      [_signed(2, 3, 5), _signed(3), _signed(3)]),
    "instance_norm_running_eval": (
        lambda x: F.instance_norm(x, RUNNING_MEAN.copy(), RUNNING_VAR.copy(),
                                  use_input_stats=False) ** 3,
        lambda t, x: t.nn.functional.instance_norm(
            x, t.tensor(RUNNING_MEAN), t.tensor(RUNNING_VAR), use_input_stats=False) ** 3,
        [_signed(2, 3, 4)]),
    "rms_norm": (lambda x, w: F.rms_norm(x, (4,), w).tanh(),
                 lambda t, x, w: t.nn.functional.rms_norm(x, (4,), w).tanh(),
                 [_signed(3, 4), _signed(4)]),
    "rms_norm_plain_eps": (lambda x: F.rms_norm(x, (2, 3), eps=1e-3) ** 3,
                           lambda t, x: t.nn.functional.rms_norm(x, (2, 3), eps=1e-3) ** 3,
                           [_signed(2, 2, 3)]),
    "local_response_norm": (
        lambda x: F.local_response_norm(x, 3, alpha=0.5, k=1.5),
        lambda t, x: t.nn.functional.local_response_norm(x, 3, alpha=0.5, k=1.5),
        [_signed(2, 5, 3)]),
    "channel_shuffle": (lambda x: F.channel_shuffle(x, 2) * x,
                        lambda t, x: t.nn.functional.channel_shuffle(x, 2) * x,
                        [_signed(2, 6, 2)]),
    "bilinear": (lambda a, b, w, bias: F.bilinear(a, b, w, bias).tanh(),
                 lambda t, a, b, w, bias: t.nn.functional.bilinear(a, b, w, bias).tanh(),
                 [_signed(3, 2), _signed(3, 4), _signed(2, 2, 4), _signed(2)]),
    "embedding_bag": (
        lambda w: F.embedding_bag(BAG_INDEX, w, BAG_OFFSETS) ** 2,
        lambda t, w: _torch_embedding_bag(t, w, _offset_bags(BAG_INDEX, BAG_OFFSETS),
                                          "mean") ** 2,
        [_signed(6, 3)]),
    # per_sample_weights index the flat input, so the oracle's bags hold positions in it
    "embedding_bag_sum_weights": (
        lambda w, s: F.embedding_bag(BAG_INDEX, w, BAG_OFFSETS, mode="sum",
                                     per_sample_weights=s).tanh(),
        lambda t, w, s: _torch_embedding_bag(
            t, w[t.tensor(BAG_INDEX)], _offset_bags(np.arange(7), BAG_OFFSETS), "sum",
            s).tanh(),
        [_signed(6, 3), _signed(7)]),
    "embedding_bag_max_padding": (
        lambda w: F.embedding_bag(EMBEDDING_INDEX, w, mode="max", padding_idx=3) ** 2,
        lambda t, w: _torch_embedding_bag(t, w, EMBEDDING_INDEX.tolist(), "max",
                                          padding_idx=3) ** 2,
        [_signed(4, 3)]),
    "rnn_tanh_cell": (
        lambda *a: F.rnn_tanh_cell(*a), lambda t, *a: t.rnn_tanh_cell(*a),
        [_signed(2, 3), _signed(2, 4), _signed(4, 3), _signed(4, 4), _signed(4), _signed(4)]),
    "rnn_relu_cell": (
        lambda *a: F.rnn_relu_cell(*a) * a[1], lambda t, *a: t.rnn_relu_cell(*a) * a[1],
        [_signed(2, 3), _signed(2, 4), _signed(4, 3), _signed(4, 4), _signed(4), _signed(4)]),
    "lstm_cell": (
        lambda x, h, c, w_ih, w_hh, b_ih, b_hh: gw.stack(F.lstm_cell(x, (h, c), w_ih, w_hh,
                                                                     b_ih, b_hh)),
        lambda t, x, h, c, w_ih, w_hh, b_ih, b_hh: t.stack(t.lstm_cell(x, (h, c), w_ih, w_hh,
                                                                       b_ih, b_hh)),
        [_signed(2, 3), _signed(2, 2), _signed(2, 2), _signed(8, 3), _signed(8, 2), _signed(8),
         _signed(8)]),
    "gru_cell": (
        lambda *a: F.gru_cell(*a), lambda t, *a: t.gru_cell(*a),
        [_signed(2, 3), _signed(2, 2), _signed(6, 3), _signed(6, 2), _signed(6), _signed(6)]),
    "rnn_step": (lambda g, h, w, b: F.rnn_step(g, h, w, b, "tanh"),
                 lambda t, g, h, w, b: _torch_rnn_step(t, g, h, w, b, "tanh"),
                 [_signed(2, 4), _signed(2, 4), _signed(4, 4), _signed(4)]),
    "rnn_step_relu": (lambda g, h, w, b: F.rnn_step(g, h, w, b, "relu") * h,
                      lambda t, g, h, w, b: _torch_rnn_step(t, g, h, w, b, "relu") * h,
                      [_signed(2, 4), _signed(2, 4), _signed(4, 4), _signed(4)]),
    "lstm_step": (lambda g, h, c, w, b: gw.stack(F.lstm_step(g, (h, c), w, b)),
                  _torch_lstm_step,
                  [_signed(2, 8), _signed(2, 2), _signed(2, 2), _signed(8, 2), _signed(8)]),
    "gru_step": (lambda g, h, w, b: F.gru_step(g, h, w, b), _torch_gru_step,
                 [_signed(2, 6), _signed(2, 2), _signed(6, 2), _signed(6)]),
    "scaled_dot_product_attention": (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
        lambda t, q, k, v: _torch_sdpa(t, q, k, v),
        [_signed(2, 3, 4), _signed(2, 5, 4), _signed(2, 5, 2)]),
    "scaled_dot_product_attention_causal": (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.7),
        lambda t, q, k, v: _torch_sdpa(t, q, k, v, is_causal=True, scale=0.7),
        [_signed(1, 2, 4, 3), _signed(1, 2, 4, 3), _signed(1, 2, 4, 2)]),
    "scaled_dot_product_attention_masks": (
        lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
        lambda t, q, k, v, m: _torch_sdpa(t, q, k, v, attn_mask=m),
        [_signed(2, 3, 4), _signed(2, 5, 4), _signed(2, 5, 2), _signed(3, 5)]),
    # the masks gradwise draws from the seeded generator (one per channel), given to torch
    "dropout1d": (lambda a: F.dropout1d(a, 0.4, generator=4) ** 2,
                  lambda t, a: (a * t.tensor(_feature_mask(0.4, 4, (3, 4, 1)))) ** 2,
                  [_signed(3, 4, 2)]),
    "dropout2d": (lambda a: F.dropout2d(a, 0.5, generator=5) ** 2,
                  lambda t, a: (a * t.tensor(_feature_mask(0.5, 5, (2, 4, 1, 1)))) ** 2,
                  [_signed(2, 4, 2, 2)]),
    "dropout3d": (lambda a: F.dropout3d(a, 0.3, generator=6).tanh(),
                  lambda t, a: (a * t.tensor(_feature_mask(0.3, 6, (2, 3, 1, 1, 1)))).tanh(),
                  [_signed(2, 3, 2, 1, 2)]),
    "dropout2d_eval": (lambda a: F.dropout2d(a, 0.5, training=False) ** 2,
                       lambda t, a: t.nn.functional.dropout2d(a, 0.5, training=False) ** 2,
                       [_signed(2, 3, 2, 2)]),
    "alpha_dropout": (lambda a: F.alpha_dropout(a, 0.3, training=True, generator=7) ** 2,
                      lambda t, a: _torch_alpha_dropout(t, a, 0.3, 7, a.shape) ** 2,
                      [_signed(3, 4)]),
    "alpha_dropout_eval": (lambda a: F.alpha_dropout(a, 0.3) ** 2,
                           lambda t, a: t.nn.functional.alpha_dropout(a, 0.3) ** 2,
                           [_signed(3, 4)]),
    "feature_alpha_dropout": (
        lambda a: F.feature_alpha_dropout(a, 0.4, training=True, generator=8).tanh(),
        lambda t, a: _torch_alpha_dropout(t, a, 0.4, 8, (2, 3, 1)).tanh(),
        [_signed(2, 3, 4)]),
    "gumbel_softmax": (lambda a: F.gumbel_softmax(a, tau=0.7, generator=9),
                       lambda t, a: _torch_gumbel_softmax(t, a, 9, 0.7, False),
                       [_signed(3, 4)]),
    "gumbel_softmax_hard": (lambda a: F.gumbel_softmax(a, hard=True, generator=10) * a,
                            lambda t, a: _torch_gumbel_softmax(t, a, 10, 1.0, True) * a,
                            [_signed(3, 4)]),
})


# max_unpool's indices, from pooling fixed inputs with kernel 2 (each rank's output (1, 2, 3...))
UNPOOL_INDEX = {
    rank: np.asarray(getattr(F, f"max_pool{rank}d")(
        gw.tensor(np.random.default_rng(11).permutation(2 * 6 ** rank) * 1.0).reshape(
            (1, 2) + (6,) * rank), 2, return_indices=True)[1])
    for rank in (1, 2, 3)
}


CASES.update({
    # issue 11 A: every conv/pool/unfold/fold/upsample function, with torch's options
    # (after every other case, so that the cases above keep their random inputs)
    "conv1d": (lambda x, w, b: F.conv1d(x, w, b, 2, 1, 2, 2).tanh(),
               lambda t, x, w, b: t.nn.functional.conv1d(x, w, b, 2, 1, 2, 2).tanh(),
               [_signed(2, 4, 9), _signed(4, 2, 3), _signed(4)]),
    "conv3d": (lambda x, w, b: F.conv3d(x, w, b, (1, 2, 1), 1, 1, 2).tanh(),
               lambda t, x, w, b: t.nn.functional.conv3d(x, w, b, (1, 2, 1), 1, 1, 2).tanh(),
               [_signed(1, 2, 3, 4, 3), _signed(2, 1, 2, 2, 2), _signed(2)]),
    "conv_transpose1d": (lambda x, w, b: F.conv_transpose1d(x, w, b, 2, 1, 1, 2).tanh(),
                         lambda t, x, w, b: t.nn.functional.conv_transpose1d(
                             x, w, b, 2, 1, 1, 2).tanh(),
                         [_signed(1, 2, 4), _signed(2, 2, 3), _signed(4)]),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 0, 1, 2, 1).tanh(),
                         lambda t, x, w, b: t.nn.functional.conv_transpose2d(
                             x, w, b, 2, 0, 1, 2, 1).tanh(),
                         [_signed(1, 2, 3, 2), _signed(2, 1, 2, 3), _signed(2)]),
    "conv_transpose3d": (lambda x, w: F.conv_transpose3d(x, w, None, 2, 1, 0, 1, (1, 2, 1)) ** 2,
                         lambda t, x, w: t.nn.functional.conv_transpose3d(
                             x, w, None, 2, 1, 0, 1, (1, 2, 1)) ** 2,
                         [_signed(1, 2, 2, 3, 2), _signed(2, 1, 2, 2, 2)]),
    "max_pool1d": (lambda x: F.max_pool1d(x, 3, 2, 1, 2, True) ** 2,
                   lambda t, x: t.nn.functional.max_pool1d(x, 3, 2, 1, 2, True) ** 2,
                   [_signed(2, 2, 9)]),
    "max_pool1d_with_indices": (lambda x: F.max_pool1d_with_indices(x, 2)[0] ** 3,
                                lambda t, x: t.nn.functional.max_pool1d_with_indices(
                                    x, 2)[0] ** 3, [_signed(1, 2, 7)]),
    "max_pool2d_with_indices": (lambda x: F.max_pool2d_with_indices(x, 3, 2, 1)[0] ** 2,
                                lambda t, x: t.nn.functional.max_pool2d_with_indices(
                                    x, 3, 2, 1)[0] ** 2, [_signed(1, 2, 5, 4)]),
    "max_pool2d_dilated_ceil": (lambda x: F.max_pool2d(x, 2, 2, 1, 2, True) ** 3,
                                lambda t, x: t.nn.functional.max_pool2d(x, 2, 2, 1, 2, True) ** 3,
                                [_signed(1, 2, 6, 5)]),
    "max_pool3d": (lambda x: F.max_pool3d(x, 2, (1, 2, 2), ceil_mode=True) ** 2,
                   lambda t, x: t.nn.functional.max_pool3d(x, 2, (1, 2, 2), ceil_mode=True) ** 2,
                   [_signed(1, 2, 3, 4, 5)]),
    "max_pool3d_with_indices": (lambda x: F.max_pool3d_with_indices(x, 2, padding=1)[0] ** 2,
                                lambda t, x: t.nn.functional.max_pool3d_with_indices(
                                    x, 2, padding=1)[0] ** 2, [_signed(2, 3, 2, 3)]),
    "avg_pool1d": (lambda x: F.avg_pool1d(x, 3, 2, 1, True, False) ** 2,
                   lambda t, x: t.nn.functional.avg_pool1d(x, 3, 2, 1, True, False) ** 2,
                   [_signed(2, 2, 8)]),
    "avg_pool2d_options": (lambda x: F.avg_pool2d(x, 3, 2, 1, True, False) ** 2,
                           lambda t, x: t.nn.functional.avg_pool2d(x, 3, 2, 1, True, False) ** 2,
                           [_signed(1, 2, 6, 5)]),
    "avg_pool3d": (lambda x: F.avg_pool3d(x, 2, 2, 1, True, True, 3) ** 2,
                   lambda t, x: t.nn.functional.avg_pool3d(x, 2, 2, 1, True, True, 3) ** 2,
                   [_signed(1, 2, 3, 4, 3)]),
    "lp_pool1d": (lambda x: F.lp_pool1d(x, 3.0, 2, 1, True),
                  lambda t, x: t.nn.functional.lp_pool1d(x, 3.0, 2, 1, True), [_positive(2, 5)]),
    "lp_pool2d": (lambda x: F.lp_pool2d(x, 2.0, 2),
                  lambda t, x: t.nn.functional.lp_pool2d(x, 2.0, 2), [_positive(1, 2, 4, 5)]),
    "lp_pool3d": (lambda x: F.lp_pool3d(x, 2.0, (1, 2, 2), ceil_mode=True),
                  lambda t, x: t.nn.functional.lp_pool3d(x, 2.0, (1, 2, 2), ceil_mode=True),
                  [_positive(1, 2, 3, 3)]),
    "adaptive_avg_pool1d": (lambda x: F.adaptive_avg_pool1d(x, 3) ** 2,
                            lambda t, x: t.nn.functional.adaptive_avg_pool1d(x, 3) ** 2,
                            [_signed(2, 2, 7)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (2, 3)) ** 2,
                            lambda t, x: t.nn.functional.adaptive_avg_pool2d(x, (2, 3)) ** 2,
                            [_signed(1, 2, 5, 4)]),
    "adaptive_avg_pool3d": (lambda x: F.adaptive_avg_pool3d(x, (2, None, 3)) ** 2,
                            lambda t, x: t.nn.functional.adaptive_avg_pool3d(
                                x, (2, None, 3)) ** 2, [_signed(1, 2, 3, 2, 4)]),
    "adaptive_max_pool1d": (lambda x: F.adaptive_max_pool1d(x, 3) ** 2,
                            lambda t, x: t.nn.functional.adaptive_max_pool1d(x, 3) ** 2,
                            [_signed(2, 2, 7)]),
    "adaptive_max_pool2d": (lambda x: F.adaptive_max_pool2d(x, (2, 3)) ** 2,
                            lambda t, x: t.nn.functional.adaptive_max_pool2d(x, (2, 3)) ** 2,
                            [_signed(1, 2, 5, 4)]),
    "adaptive_max_pool3d": (lambda x: F.adaptive_max_pool3d(x, 2) ** 2,
                            lambda t, x: t.nn.functional.adaptive_max_pool3d(x, 2) ** 2,
                            [_signed(1, 2, 3, 3, 4)]),
    "adaptive_max_pool1d_with_indices": (
        lambda x: F.adaptive_max_pool1d_with_indices(x, 2)[0] ** 2,
        lambda t, x: t.nn.functional.adaptive_max_pool1d_with_indices(x, 2)[0] ** 2,
        [_signed(2, 5)]),
    "adaptive_max_pool2d_with_indices": (
        lambda x: F.adaptive_max_pool2d_with_indices(x, 2)[0] ** 2,
        lambda t, x: t.nn.functional.adaptive_max_pool2d_with_indices(x, 2)[0] ** 2,
        [_signed(2, 3, 5)]),
    "adaptive_max_pool3d_with_indices": (
        lambda x: F.adaptive_max_pool3d_with_indices(x, 2)[0] ** 2,
        lambda t, x: t.nn.functional.adaptive_max_pool3d_with_indices(x, 2)[0] ** 2,
        [_signed(2, 3, 3, 2)]),
    "max_unpool1d": (lambda x: F.max_unpool1d(x, UNPOOL_INDEX[1], 2) ** 2,
                     lambda t, x: t.nn.functional.max_unpool1d(x, t.tensor(UNPOOL_INDEX[1]),
                                                               2) ** 2, [_signed(1, 2, 3)]),
    "max_unpool2d": (lambda x: F.max_unpool2d(x, UNPOOL_INDEX[2], 2) ** 2,
                     lambda t, x: t.nn.functional.max_unpool2d(x, t.tensor(UNPOOL_INDEX[2]),
                                                               2) ** 2, [_signed(1, 2, 3, 3)]),
    "max_unpool3d": (lambda x: F.max_unpool3d(x, UNPOOL_INDEX[3], 2) ** 2,
                     lambda t, x: t.nn.functional.max_unpool3d(x, t.tensor(UNPOOL_INDEX[3]),
                                                               2) ** 2, [_signed(1, 2, 3, 3, 3)]),
    "unfold": (lambda x: F.unfold(x, 2, 2, 1, 2) ** 2,
               lambda t, x: t.nn.functional.unfold(x, 2, 2, 1, 2) ** 2, [_signed(1, 2, 5, 4)]),
    "fold": (lambda x: F.fold(x, (4, 5), 2, 1, 1, 2) ** 2,
             lambda t, x: t.nn.functional.fold(x, (4, 5), 2, 1, 1, 2) ** 2,
             [_signed(1, 8, 9)]),
    "interpolate": (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear") ** 2,
                    lambda t, x: t.nn.functional.interpolate(x, scale_factor=2,
                                                             mode="bilinear") ** 2,
                    [_signed(1, 2, 3, 2)]),
    "upsample": (lambda x: F.upsample(x, size=5, mode="linear", align_corners=True) ** 2,
                 lambda t, x: t.nn.functional.upsample(x, size=5, mode="linear",
                                                       align_corners=True) ** 2,
                 [_signed(1, 2, 3)]),
    "upsample_bilinear": (lambda x: F.upsample_bilinear(x, scale_factor=2) ** 2,
                          lambda t, x: t.nn.functional.upsample_bilinear(x, scale_factor=2) ** 2,
                          [_signed(1, 1, 3, 2)]),
    "pixel_shuffle": (lambda x: F.pixel_shuffle(x, 2) ** 3,
                      lambda t, x: t.nn.functional.pixel_shuffle(x, 2) ** 3,
                      [_signed(1, 8, 2, 3)]),
    "pixel_unshuffle": (lambda x: F.pixel_unshuffle(x, 2) ** 3,
                        lambda t, x: t.nn.functional.pixel_unshuffle(x, 2) ** 3,
                        [_signed(1, 2, 4, 6)]),
    "upsample_nearest": (lambda x: F.upsample_nearest(x, size=(4, 5)) ** 2,
                         lambda t, x: t.nn.functional.upsample_nearest(x, size=(4, 5)) ** 2,
                         [_signed(1, 2, 2, 3)]),
    "pad_reflect": (lambda a: F.pad(a, (1, 2, 2, 1), mode="reflect") ** 2,
                    lambda t, a: t.nn.functional.pad(a, (1, 2, 2, 1), mode="reflect") ** 2,
                    [_signed(1, 3, 4)]),
    "pad_replicate_3d": (lambda a: F.pad(a, (1, 0, 0, 2, 1, 1), mode="replicate") ** 3,
                         lambda t, a: t.nn.functional.pad(a, (1, 0, 0, 2, 1, 1),
                                                          mode="replicate") ** 3,
                         [_signed(1, 2, 2, 3)]),
    "pad_circular": (lambda a: F.pad(a, (2, 1), mode="circular") ** 2,
                     lambda t, a: t.nn.functional.pad(a, (2, 1), mode="circular") ** 2,
                     [_signed(2, 3)]),
})
CASES.update({  # issue 12, edges-fix5: a strided diagonal view and a flipping copy (own RNG,
    # so the inputs of the cases above stay as they were)
    "diagonal": (lambda a: a.diagonal(1, 0, 2) ** 3, lambda t, a: a.diagonal(1, 0, 2) ** 3,
                 [_signed(3, 2, 4, rng=np.random.default_rng(12))]),
    "flip": (lambda a: a.flip(0, 2) ** 3, lambda t, a: a.flip(0, 2) ** 3,
             [_signed(3, 2, 4, rng=np.random.default_rng(13))]),
})
CASES.update({  # issue 12, edges-fix6a: unfold is a view op, overlapping and gapped windows
    "unfold": (lambda a: a.unfold(1, 3, 2) ** 3, lambda t, a: a.unfold(1, 3, 2) ** 3,
               [_signed(3, 7, rng=np.random.default_rng(14))]),
})
CASES.update({  # repeat is one op (ONNX Tile): its copies' gradients add up at every order
    "repeat": (lambda a: a.repeat(2, 1, 3) ** 3, lambda t, a: a.repeat(2, 1, 3) ** 3,
               [_signed(3, 2, rng=np.random.default_rng(15))]),
})


def _gw_inputs(arrays):
    return [gw.tensor(a.copy(), dtype=np.float64, requires_grad=True) for a in arrays]


def _gw_second(fn, arrays, w, v):
    xs = _gw_inputs(arrays)
    out = fn(*xs)
    grads = gw.autograd.grad(out, xs, gw.tensor(w), create_graph=True)
    projection = sum((g * gw.tensor(vi)).sum() for g, vi in zip(grads, v, strict=True))
    if not projection.requires_grad:  # a linear function: the second derivative is 0
        return [np.asarray(g) for g in grads], [np.zeros_like(a) for a in arrays]
    second = gw.autograd.grad(projection, xs, allow_unused=True)
    return [np.asarray(g) for g in grads], [
        np.zeros_like(a) if s is None else np.asarray(s) for a, s in zip(arrays, second,
                                                                          strict=True)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_derivative_matches_torch(name):
    _check_second_derivative_against_torch(name, *CASES[name])


def _check_second_derivative_against_torch(name, fn, torch_fn, arrays):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    out_shape = fn(*_gw_inputs(arrays)).shape
    w = rng.uniform(0.5, 1.5, size=out_shape)
    v = [rng.normal(size=a.shape) for a in arrays]
    first, second = _gw_second(fn, arrays, w, v)

    xs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = torch_fn(torch, *xs)
    grads = torch.autograd.grad(out, xs, torch.tensor(w), create_graph=True)
    projection = sum((g * torch.tensor(vi)).sum() for g, vi in zip(grads, v, strict=True))
    expected = (torch.autograd.grad(projection, xs, allow_unused=True)
                if projection.requires_grad else [None] * len(xs))
    loose = TORCH_LESS_EXACT.get(name, 1.0)
    for ours, theirs in zip(first, grads, strict=True):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10 * loose,
                                   atol=1e-12)
    for ours, theirs, a in zip(second, expected, arrays, strict=True):
        theirs = np.zeros_like(a) if theirs is None else theirs.numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-9 * loose, atol=1e-11, err_msg=name)


# straight-through estimators: the forward's value (a one-hot) is not the function whose
# gradient flows (the soft sample, through detach), so finite differences of the recorded
# gradient measure something else; torch's second derivative is the check for these
STRAIGHT_THROUGH = {"gumbel_softmax_hard"}


@pytest.mark.parametrize("name", sorted(set(CASES) - STRAIGHT_THROUGH))
def test_gradgradcheck(name):
    fn, _, arrays = CASES[name]
    # a float32 step inside: central differences are only as exact as float32
    tolerance = {"eps": 1e-3, "atol": 1e-3, "rtol": 1e-3} if name == "cast" else {}
    assert gw.gradgradcheck(fn, *_gw_inputs(arrays), **tolerance)


# ---- layers with parameters or their own forward logic (issue 12 B): second derivatives with
# respect to the inputs and to every parameter, against torch with the same weights (copied from
# gradwise into torch with strict keys). A case is ``build(nn) -> module or (call, module)`` and
# the shapes of its inputs, all differentiable (masks and other constants live in the build).
def _library_tensor(nn, array):
    """``array`` as a tensor of the library whose ``nn`` this is (masks, weights)."""
    array = np.asarray(array)
    if nn is gw.nn:
        return gw.tensor(array)
    import torch

    return torch.from_numpy(array.copy())


def _called(module, **kwargs):
    """(the module called with ``kwargs``, the module whose parameters are checked)."""
    return (lambda *inputs: module(*inputs, **kwargs)), module


def _with_masks(module, *names):
    """(the module called as ``module(q, k, v, name=mask, ...)`` with the masks as trailing
    inputs, so they are differentiated, the module)."""
    def call(query, key, value, *masks):
        return module(query, key, value, **dict(zip(names, masks, strict=True)))
    return call, module


def _then_tanh(layer):
    """(tanh of the layer's output, the layer): a smooth op after a (bi)linear one."""
    return (lambda *inputs: layer(*inputs).tanh()), layer


def _same_mask(gw_layer, torch_mask_of):
    """A randomized gradwise layer in training, seeded; torch multiplies by the mask (and adds
    the shift) gradwise draws, so both compute the same function of the input."""
    def build(nn):
        if nn is gw.nn:
            return gw_layer()
        import torch

        return lambda x: torch_mask_of(torch, x)
    return build


def _parameter_containers(nn):
    """A module whose parameters live in a ParameterList and a ParameterDict (their values
    copied from gradwise into torch with the rest of the state)."""
    class ScaleShift(nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn.ParameterList([nn.Parameter(_library_tensor(nn, np.ones(3)))
                                            for _ in range(2)])
            self.shifts = nn.ParameterDict({"bias": nn.Parameter(_library_tensor(
                nn, np.linspace(-0.5, 0.5, 3)))})

        def forward(self, x):
            return (x * self.scales[0] * self.scales[1] + self.shifts["bias"]).tanh()

    module = ScaleShift()
    if nn is gw.nn:  # distinct values, so each parameter's derivatives differ
        module.scales[0]._data[...] = [0.5, -1.2, 0.8]
        module.scales[1]._data[...] = [1.1, 0.7, -0.6]
    return module


def _packed(nn, layer, lengths, batch_first=False):
    """(the layer run on pack_padded_sequence(x, lengths): the padded output and the final
    state, the layer)."""
    utils = nn.utils.rnn

    def call(x):
        packed = utils.pack_padded_sequence(x, lengths, batch_first=batch_first,
                                            enforce_sorted=False)
        out, state = layer(packed)
        return utils.pad_packed_sequence(out, batch_first=batch_first)[0], state
    return call, layer


def _lstm_with_state(layer):
    """(a call taking x, h_0, c_0 as separate inputs, the LSTM or LSTMCell)."""
    return (lambda x, h, c: layer(x, (h, c))), layer


CAUSAL = np.triu(np.full((4, 4), -np.inf), 1)
KEY_PADDING = np.array([[False, False, True, True], [False, False, False, True]])  # (N=2, S=4)
ATTEND = np.array([[True, False, True, True], [True, True, False, False],
                   [True, True, True, False]])  # (L=3, S=4), True = may attend (SDPA's)

LAYER_CASES = {
    "prelu_channels": (lambda nn: nn.PReLU(3, init=0.2), [(2, 3, 4)]),
    "prelu_shared_tanh": (lambda nn: nn.Sequential(nn.PReLU(), nn.Tanh()), [(3, 4)]),
    "rrelu_eval": (lambda nn: nn.Sequential(nn.RReLU(0.1, 0.3), nn.Tanh()).eval(),
                   [(3, 4)]),
    "softmax2d": (lambda nn: nn.Softmax2d(), [(2, 3, 2, 2)]),
    "softmin": (lambda nn: nn.Softmin(1), [(2, 3, 2)]),
    "glu": (lambda nn: nn.GLU(1), [(2, 4, 3)]),
    "unflatten_softmax": (lambda nn: nn.Sequential(nn.Unflatten(1, (2, -1)), nn.Softmax(-1)),
                          [(3, 6)]),
    "channel_shuffle_layer_norm": (lambda nn: nn.Sequential(nn.ChannelShuffle(2),
                                                            nn.LayerNorm(3)),
                                   [(2, 4, 3)]),
    "bilinear": (lambda nn: nn.Bilinear(3, 2, 2), [(4, 3), (4, 2)]),
    "bilinear_tanh_no_bias": (lambda nn: _then_tanh(nn.Bilinear(2, 3, 2, bias=False)),
                              [(2, 4, 2), (2, 4, 3)]),
    "lazy_linear": (lambda nn: nn.Sequential(nn.LazyLinear(3), nn.Tanh()), [(4, 5)]),
    "parameter_containers": (_parameter_containers, [(2, 3)]),
    "cosine_similarity": (lambda nn: nn.CosineSimilarity(dim=1), [(3, 4), (3, 4)]),
    "pairwise_distance": (lambda nn: nn.PairwiseDistance(p=1.5, keepdim=True),
                          [(3, 4), (3, 4)]),
    "group_norm": (lambda nn: nn.Sequential(nn.GroupNorm(2, 4), nn.Tanh()), [(3, 4, 5)]),
    "group_norm_2d_input": (lambda nn: nn.Sequential(nn.GroupNorm(2, 4), nn.Tanh()),
                            [(3, 4)]),
    "instance_norm1d_unbatched": (lambda nn: nn.Sequential(nn.InstanceNorm1d(3, affine=True),
                                                           nn.Tanh()), [(3, 4)]),
    "group_norm_no_affine": (lambda nn: nn.GroupNorm(1, 4, affine=False), [(2, 4, 2, 2)]),
    "instance_norm1d_affine": (lambda nn: nn.Sequential(nn.InstanceNorm1d(3, affine=True),
                                                        nn.Tanh()), [(2, 3, 5)]),
    "instance_norm2d_running": (lambda nn: nn.Sequential(
        nn.InstanceNorm2d(2, affine=True, track_running_stats=True), nn.Tanh()),
        [(2, 2, 3, 2)]),
    "instance_norm2d_running_eval": (lambda nn: nn.Sequential(
        nn.InstanceNorm2d(2, affine=True, track_running_stats=True), nn.Tanh()).eval(),
        [(2, 2, 3, 2)]),
    "instance_norm3d": (lambda nn: nn.Sequential(nn.InstanceNorm3d(2, affine=True),
                                                 nn.Tanh()), [(2, 2, 2, 2, 2)]),
    "batch_norm3d": (lambda nn: nn.Sequential(nn.BatchNorm3d(2), nn.Tanh()),
                     [(2, 2, 2, 1, 2)]),
    "batch_norm3d_eval": (lambda nn: nn.Sequential(nn.BatchNorm3d(2), nn.Tanh()).eval(),
                          [(2, 2, 2, 1, 2)]),
    "rms_norm": (lambda nn: nn.Sequential(nn.RMSNorm(4), nn.Tanh()), [(3, 4)]),
    "rms_norm_no_affine": (lambda nn: nn.RMSNorm((2, 3), eps=1e-3, elementwise_affine=False),
                           [(2, 2, 3)]),
    "local_response_norm": (lambda nn: nn.LocalResponseNorm(2, alpha=0.5, k=1.5),
                            [(2, 4, 3)]),
    "dropout1d_train": (_same_mask(lambda: gw.nn.Dropout1d(0.4, rng=4),
                                   lambda t, x: x * t.tensor(_feature_mask(0.4, 4, (3, 4, 1)))),
                        [(3, 4, 2)]),
    "dropout2d_train": (_same_mask(lambda: gw.nn.Dropout2d(0.5, rng=5),
                                   lambda t, x: x * t.tensor(_feature_mask(0.5, 5,
                                                                           (2, 4, 1, 1)))),
                        [(2, 4, 2, 2)]),
    "dropout3d_eval": (lambda nn: nn.Sequential(nn.Dropout3d(0.3), nn.Tanh()).eval(),
                       [(2, 3, 2, 1, 2)]),
    "alpha_dropout_train": (_same_mask(lambda: gw.nn.AlphaDropout(0.3, rng=7),
                                       lambda t, x: _torch_alpha_dropout(t, x, 0.3, 7,
                                                                         x.shape)),
                            [(3, 4)]),
    "feature_alpha_dropout_train": (
        _same_mask(lambda: gw.nn.FeatureAlphaDropout(0.4, rng=8),
                   lambda t, x: _torch_alpha_dropout(t, x, 0.4, 8, (2, 3, 1))),
        [(2, 3, 4)]),
    "feature_alpha_dropout_eval": (lambda nn: nn.Sequential(nn.FeatureAlphaDropout(0.4),
                                                            nn.Tanh()).eval(),
                                   [(2, 3, 4)]),
    "rnn_tanh_two_layers_h0": (lambda nn: nn.RNN(3, 2, num_layers=2),
                               [(3, 2, 3), (2, 2, 2)]),
    "rnn_relu_bidirectional_batch_first": (
        lambda nn: nn.RNN(2, 3, nonlinearity="relu", bidirectional=True, batch_first=True),
        [(2, 3, 2)]),
    "lstm_h0_c0": (lambda nn: _lstm_with_state(nn.LSTM(3, 2)),
                   [(3, 2, 3), (1, 2, 2), (1, 2, 2)]),
    "lstm_proj_bidirectional_batch_first": (
        lambda nn: nn.LSTM(2, 3, proj_size=2, bidirectional=True, batch_first=True),
        [(2, 3, 2)]),
    "lstm_packed_unsorted_bidirectional": (lambda nn: _packed(nn, nn.LSTM(2, 2, num_layers=2,
                                                                          bidirectional=True),
                                                              [2, 3, 1]),
                                           [(3, 3, 2)]),
    "gru_packed_batch_first": (lambda nn: _packed(nn, nn.GRU(2, 3, batch_first=True), [3, 1],
                                                  batch_first=True), [(2, 3, 2)]),
    "lstm_proj_h0_c0_unbatched": (lambda nn: _lstm_with_state(nn.LSTM(2, 3, proj_size=2)),
                                  [(3, 2), (1, 2), (1, 3)]),
    "rnn_unbatched_h0": (lambda nn: nn.RNN(2, 3, bias=False), [(3, 2), (1, 3)]),
    "gru_two_layers_no_bias": (lambda nn: nn.GRU(2, 3, num_layers=2, bias=False),
                               [(3, 2, 2)]),
    "gru_bidirectional_h0_unbatched": (lambda nn: nn.GRU(2, 2, bidirectional=True),
                                       [(3, 2), (2, 2)]),
    "rnn_cell": (lambda nn: nn.RNNCell(3, 2), [(2, 3), (2, 2)]),
    "rnn_cell_relu_no_h": (lambda nn: nn.RNNCell(3, 2, nonlinearity="relu"), [(2, 3)]),
    "lstm_cell": (lambda nn: _lstm_with_state(nn.LSTMCell(3, 2)),
                  [(2, 3), (2, 2), (2, 2)]),
    "gru_cell_unbatched": (lambda nn: nn.GRUCell(3, 2), [(3,), (2,)]),
    "multihead_attention": (lambda nn: nn.MultiheadAttention(4, 2),
                            [(3, 2, 4), (4, 2, 4), (4, 2, 4)]),
    "multihead_attention_masks_batch_first": (
        lambda nn: _called(nn.MultiheadAttention(4, 2, batch_first=True),
                           key_padding_mask=_library_tensor(nn, KEY_PADDING),
                           attn_mask=_library_tensor(nn, ~ATTEND),
                           average_attn_weights=False),
        [(2, 3, 4), (2, 4, 4), (2, 4, 4)]),
    "multihead_attention_kdim_vdim_causal": (
        lambda nn: _called(nn.MultiheadAttention(4, 1, kdim=3, vdim=2, bias=False),
                           attn_mask=_library_tensor(nn, CAUSAL)),
        [(4, 2, 4), (4, 2, 3), (4, 2, 2)]),
    # learned float masks (a relative-position bias passed as attn_mask, as T5 does) are
    # differentiated: a 3-D (N * heads, L, S) mask, and an unbatched float key_padding_mask
    "multihead_attention_learned_bias": (
        lambda nn: _with_masks(nn.MultiheadAttention(4, 2), "attn_mask"),
        [(3, 2, 4), (4, 2, 4), (4, 2, 4), (4, 3, 4)]),
    "multihead_attention_unbatched_float_padding": (
        lambda nn: _with_masks(nn.MultiheadAttention(4, 2), "key_padding_mask"),
        [(3, 4), (4, 4), (4, 4), (4,)]),
    "transformer_encoder_layer_masks": (
        lambda nn: _called(nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0,
                                                      batch_first=True),
                           src_mask=_library_tensor(nn, CAUSAL),
                           src_key_padding_mask=_library_tensor(nn, KEY_PADDING)),
        [(2, 4, 4)]),
    "transformer_encoder_norm_first_gelu": (
        lambda nn: nn.TransformerEncoder(nn.TransformerEncoderLayer(
            4, 2, dim_feedforward=6, dropout=0.0, activation="gelu", norm_first=True), 2,
            norm=nn.LayerNorm(4)), [(3, 2, 4)]),
    "transformer_encoder_layer_callable_activation_unbatched": (
        lambda nn: nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0,
                                              activation=nn.functional.silu),
        [(3, 4)]),
    "transformer_decoder_memory_masks": (
        lambda nn: _called(nn.TransformerDecoderLayer(4, 2, dim_feedforward=6, dropout=0.0,
                                                      batch_first=True),
                           memory_mask=_library_tensor(nn, ~ATTEND),
                           tgt_key_padding_mask=_library_tensor(nn, KEY_PADDING[:, :3]),
                           memory_key_padding_mask=_library_tensor(nn, KEY_PADDING)),
        [(2, 3, 4), (2, 4, 4)]),
    "transformer_decoder_layer": (
        lambda nn: nn.TransformerDecoderLayer(4, 2, dim_feedforward=6, dropout=0.0),
        [(3, 2, 4), (4, 2, 4)]),
    "transformer_decoder_norm_first": (
        lambda nn: _called(nn.TransformerDecoder(nn.TransformerDecoderLayer(
            4, 2, dim_feedforward=6, dropout=0.0, norm_first=True, batch_first=True), 1),
            tgt_mask=_library_tensor(nn, CAUSAL[:3, :3])),
        [(2, 3, 4), (2, 4, 4)]),
    "transformer": (
        lambda nn: _called(nn.Transformer(4, 2, 1, 1, 6, dropout=0.0, batch_first=True),
                           tgt_mask=_library_tensor(nn, CAUSAL[:3, :3]),
                           src_key_padding_mask=_library_tensor(nn, KEY_PADDING)),
        [(2, 4, 4), (2, 3, 4)]),
}


def _outputs(value):
    """The tensors in a (nested) output, in order; None entries dropped."""
    if isinstance(value, tuple | list):
        return [t for item in value for t in _outputs(item)]
    return [] if value is None else [value]


def _built(built):
    """(call, module or None) from what a case's build returns."""
    if isinstance(built, tuple):
        return built
    return built, (built if hasattr(built, "named_parameters") else None)


def _layer_inputs(shapes, seed=3):
    """Float64 inputs away from 0 (kinks) and from each other."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.3, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
            for shape in shapes]


def _second_derivatives(call, module, arrays, make_tensor, grad, seed=4):
    """With respect to the inputs then every parameter: the first gradient g (create_graph) of
    sum(outputs * w), the gradient of its projection v . g (a Hessian-vector product), and the
    gradient of the penalty sum(g^2) (a nonlinear function of g, as a gradient penalty)."""
    rng = np.random.default_rng(seed)
    inputs = [make_tensor(a, True) for a in arrays]
    params = [p for _, p in sorted(module.named_parameters())] if module is not None else []
    leaves = inputs + params
    outputs = [o for o in _outputs(call(*inputs)) if o.requires_grad]
    scalar = sum((o * make_tensor(rng.uniform(0.5, 1.5, size=tuple(o.shape)), False)).sum()
                 for o in outputs)
    first = grad(scalar, leaves, create_graph=True, allow_unused=True)
    used = [g for g in first if g is not None]
    projection = sum((g * make_tensor(rng.normal(size=tuple(g.shape)), False)).sum()
                     for g in used)
    if not projection.requires_grad:
        return first, [None] * len(leaves), [None] * len(leaves), leaves
    hessian_vector = grad(projection, leaves, retain_graph=True, allow_unused=True)
    penalty = grad(sum((g * g).sum() for g in used), leaves, allow_unused=True)
    return first, hessian_vector, penalty, leaves


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_layer_second_derivative_matches_torch(name):
    torch = pytest.importorskip("torch")
    build, shapes = LAYER_CASES[name]
    arrays = _layer_inputs(shapes)
    call, module = _built(build(gw.nn))
    theirs_call, theirs_module = _built(build(torch.nn))
    if module is not None:
        module.double()
        if any(getattr(m, "has_uninitialized_params", lambda: False)() for m in module.modules()):
            call(*[gw.tensor(a) for a in arrays])  # a lazy layer takes its shape
    if theirs_module is not None:
        theirs_module.double()
        if any(hasattr(m, "has_uninitialized_params") for m in theirs_module.modules()):
            theirs_call(*[torch.from_numpy(a.copy()) for a in arrays])
        theirs_module.load_state_dict({k: torch.from_numpy(np.array(v))
                                       for k, v in module.state_dict().items()})

    def gw_tensor(array, requires_grad):
        return gw.tensor(np.array(array, dtype=np.float64), requires_grad=requires_grad)

    def torch_tensor(array, requires_grad):
        return torch.tensor(np.array(array, dtype=np.float64), requires_grad=requires_grad)

    ours = _second_derivatives(call, module, arrays, gw_tensor, gw.autograd.grad)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):  # torch's fused CPU attention has no double backward
        theirs = _second_derivatives(theirs_call, theirs_module, arrays, torch_tensor,
                                     torch.autograd.grad)
    names = [f"input {i}" for i in range(len(arrays))]
    parameter_names = [n for n, _ in sorted(module.named_parameters())] if module else []
    if theirs_module is not None:
        assert parameter_names == [n for n, _ in sorted(theirs_module.named_parameters())]
    names += parameter_names
    kinds = ("first derivative", "Hessian-vector product", "gradient-penalty gradient")
    for kind, ours_grads, theirs_grads in zip(kinds, ours[:3], theirs[:3], strict=True):
        for what, o, t, leaf in zip(names, ours_grads, theirs_grads, ours[3], strict=True):
            o = np.zeros(leaf.shape) if o is None else np.asarray(o.detach())
            t = np.zeros(tuple(leaf.shape)) if t is None else t.detach().numpy()
            np.testing.assert_allclose(o, t, rtol=1e-9, atol=1e-11,
                                       err_msg=f"{name}: {kind} of {what}")


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_layer_gradgradcheck(name):
    """Finite differences of the recorded first gradient, with respect to the inputs (the
    parameters held at their values; torch checks their second derivatives above)."""
    build, shapes = LAYER_CASES[name]
    call, module = _built(build(gw.nn))
    if module is not None:
        module.double()
    inputs = [gw.tensor(a, requires_grad=True) for a in _layer_inputs(shapes)]
    call(*inputs)  # a lazy layer takes its shape

    def outputs(*xs):
        if module is None or not list(module.parameters()):
            call_now = _built(build(gw.nn))[0]  # a seeded random layer draws the same mask
        else:
            call_now = call
        parts = [o for o in _outputs(call_now(*xs)) if o.requires_grad]
        return gw.cat([o.double().reshape(-1) for o in parts])

    assert gw.gradgradcheck(outputs, *inputs)


# weights torch does not differentiate: read as constants they took a silent zero gradient
# (first and second order); now refused as torch refuses them: (op, argument, call)
_LABELS = np.array([1, 0, 3])
NOT_DIFFERENTIATED = [
    ("binary_cross_entropy", "weight",
     lambda x, w: F.binary_cross_entropy(x.sigmoid(), np.eye(3, 4), weight=w)),
    ("binary_cross_entropy_with_logits", "weight",
     lambda x, w: F.binary_cross_entropy_with_logits(x, np.eye(3, 4), weight=w)),
    ("binary_cross_entropy_with_logits", "pos_weight",
     lambda x, w: F.binary_cross_entropy_with_logits(x, np.eye(3, 4), pos_weight=w)),
    ("cross_entropy", "weight",
     lambda x, w: F.cross_entropy(x, _LABELS, weight=w, label_smoothing=0.1)),
    ("nll_loss", "weight", lambda x, w: F.nll_loss(x, _LABELS, weight=w)),
    ("multi_margin_loss", "weight", lambda x, w: F.multi_margin_loss(x, _LABELS, weight=w)),
    ("batch_norm", "running_mean", lambda x, w: F.batch_norm(x, w, gw.ones(4).double())),
    ("batch_norm", "running_var",
     lambda x, w: F.batch_norm(x, gw.zeros(4).double(), w, training=True)),
    ("instance_norm", "running_mean", lambda x, w: F.instance_norm(
        x.reshape(3, 4, 1).expand(3, 4, 2), w, gw.ones(4).double(), use_input_stats=False)),
]


@pytest.mark.parametrize(("op", "argument", "call"), NOT_DIFFERENTIATED,
                         ids=[f"{op}-{argument}" for op, argument, _ in NOT_DIFFERENTIATED])
def test_weights_torch_does_not_differentiate_are_refused_not_zeroed(op, argument, call):
    x = gw.tensor(_signed(3, 4), requires_grad=True)
    weight = gw.tensor(_positive(4), requires_grad=True)
    with pytest.raises(RuntimeError, match=f"{op}: not differentiable with respect to argument "
                       f"'{argument}', which requires grad"):
        call(x, weight)
    expected = call(x, weight.detach())  # detached, or without grad mode, it is a constant
    with gw.no_grad():
        np.testing.assert_array_equal(np.asarray(call(x, weight)), np.asarray(expected))


def test_gradgradcheck_catches_a_wrong_second_derivative():
    class Cube(gw.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.x = x
            return x**3

        @staticmethod
        def backward(ctx, grad):
            return (grad * 3 * ctx.x**2,)

        @staticmethod
        def backward_graph(ctx, grad):
            (x,) = ctx.inputs
            return (grad * x * x * 2,)  # wrong: 3 x^2 is the derivative

    x = gw.tensor([0.5, 1.5], dtype=np.float64, requires_grad=True)
    with pytest.raises(gw.GradcheckError):
        gw.gradgradcheck(lambda t: Cube.apply(t), x)


class _FirstOrderOnly(gw.Function):
    """An op with a NumPy backward and no backward_graph (every gradwise op has one now)."""

    no_backward_graph = "its second derivative is not written"

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return x * x

    @staticmethod
    def backward(ctx, grad):
        return (grad * 2 * ctx.x,)


def test_op_without_differentiable_backward_is_named():
    x = gw.tensor(RNG.normal(size=(3, 4)), requires_grad=True)
    with pytest.raises(RuntimeError, match="create_graph: _FirstOrderOnly has no differentiable "
                       r"backward \(its second derivative is not written; see docs/NUMERICS"):
        gw.autograd.grad(_FirstOrderOnly.apply(x).sum(), x, create_graph=True)
    # the first derivative alone still works
    (g,) = gw.autograd.grad(_FirstOrderOnly.apply(x).sum(), x)
    np.testing.assert_allclose(np.asarray(g), 2 * x._data)


def test_grad_leaves_dot_grad_alone_and_follows_torch_arguments():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    unused = gw.tensor([3.0], requires_grad=True)
    x.grad = np.array([10.0, 10.0], dtype=np.float32)
    y = (x * x).sum()
    (g,) = gw.autograd.grad(y, x)
    np.testing.assert_allclose(np.asarray(g), [2.0, 4.0])
    np.testing.assert_allclose(np.asarray(x.grad), [10.0, 10.0])
    assert not g.requires_grad
    with pytest.raises(RuntimeError, match="freed"):  # retain_graph defaults to create_graph
        gw.autograd.grad(y, x)
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        gw.autograd.grad(y, [x, unused], retain_graph=True)
    g, none = gw.autograd.grad(y, [x, unused], allow_unused=True)
    assert none is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        gw.autograd.grad(y, gw.tensor([1.0]))
    with pytest.raises(RuntimeError, match="one-element"):
        gw.autograd.grad(x * 2, x)
    (g,) = gw.autograd.grad(x * 2, x, grad_outputs=gw.tensor([1.0, 3.0]))
    np.testing.assert_allclose(np.asarray(g), [2.0, 6.0])


def test_backward_create_graph_accumulates_like_torch():
    torch = pytest.importorskip("torch")
    values = [0.5, -1.0, 2.0]
    x = gw.tensor(values, dtype=np.float64, requires_grad=True)
    (x.exp() * x.sin()).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (x.grad * x.grad).sum().backward()
    tx = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    (tx.exp() * tx.sin()).sum().backward(create_graph=True)
    (tx.grad * tx.grad).sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.detach().numpy(), rtol=1e-12)


def test_plain_backward_still_leaves_graph_free_grads():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert not x.grad.requires_grad
    np.testing.assert_allclose(np.asarray(x.grad), [2.0, 4.0])


def _cubic(x, y):
    return (x * x * y + y.exp() * x).sum()


def test_functional_api_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.autograd import functional as TF

    a, b = _signed(3), _signed(3)
    v = _signed(3)
    ga, gb = (gw.tensor(a, dtype=np.float64), gw.tensor(b, dtype=np.float64))
    ta, tb = torch.tensor(a), torch.tensor(b)
    gv, tv = gw.tensor(v, dtype=np.float64), torch.tensor(v)

    def check(ours, theirs):
        if isinstance(theirs, tuple):
            for o, t in zip(ours, theirs, strict=True):
                check(o, t)
        else:
            np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), rtol=1e-10,
                                       atol=1e-12)

    check(AF.hessian(_cubic, (ga, gb)), TF.hessian(_cubic, (ta, tb)))
    check(AF.hessian(lambda x: (x.tanh() ** 2).sum(), ga),
          TF.hessian(lambda x: (x.tanh() ** 2).sum(), ta))
    check(AF.jacobian(lambda x: x.tanh() * x.sum(), ga),
          TF.jacobian(lambda x: x.tanh() * x.sum(), ta))
    check(AF.jacobian(lambda x, y: x * y, (ga, gb)), TF.jacobian(lambda x, y: x * y, (ta, tb)))
    check(AF.hvp(lambda x: (x.tanh() ** 2).sum(), ga, gv),
          TF.hvp(lambda x: (x.tanh() ** 2).sum(), ta, tv))
    check(AF.hvp(_cubic, (ga, gb), (gv, gv)), TF.hvp(_cubic, (ta, tb), (tv, tv)))
    check(AF.vjp(lambda x: x.exp() * x, ga, gv), TF.vjp(lambda x: x.exp() * x, ta, tv))
    check(AF.jvp(lambda x: x.exp() * x, ga, gv), TF.jvp(lambda x: x.exp() * x, ta, tv))
    check(AF.jvp(lambda x, y: (x * y).tanh(), (ga, gb), (gv, gv)),
          TF.jvp(lambda x, y: (x * y).tanh(), (ta, tb), (tv, tv)))


def test_functional_api_leaves_inputs_alone():
    x = gw.tensor([1.0, 2.0], dtype=np.float64)
    h = AF.hessian(lambda t: (t**3).sum(), x)
    np.testing.assert_allclose(np.asarray(h), np.diag([6.0, 12.0]))
    assert not x.requires_grad and x.grad is None


def test_gradient_penalty_reaches_the_parameters_like_torch():
    """The WGAN-GP penalty (||d score / d x|| - 1)^2, differentiated into the weights."""
    torch = pytest.importorskip("torch")
    w_values, x_values = _signed(4, 3), _signed(5, 3)
    w = gw.tensor(w_values, dtype=np.float64, requires_grad=True)
    x = gw.tensor(x_values, dtype=np.float64, requires_grad=True)
    score = F.linear(x, w).tanh().sum()
    (g,) = gw.autograd.grad(score, x, create_graph=True)
    penalty = ((g.norm(dim=1) - 1) ** 2).mean()
    penalty.backward()

    tw = torch.tensor(w_values, requires_grad=True)
    tx = torch.tensor(x_values, requires_grad=True)
    tscore = torch.nn.functional.linear(tx, tw).tanh().sum()
    (tg,) = torch.autograd.grad(tscore, tx, create_graph=True)
    expected_penalty = ((tg.norm(dim=1) - 1) ** 2).mean()
    expected_penalty.backward()
    np.testing.assert_allclose(float(penalty), float(expected_penalty.detach()))
    np.testing.assert_allclose(np.asarray(w.grad), tw.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.numpy(), rtol=1e-10)


def test_readme_example_runs_and_matches_torch(capsys):
    from pathlib import Path

    torch = pytest.importorskip("torch")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Gradients of gradients", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    np.testing.assert_allclose(np.asarray(namespace["hv"]), [3.0, 1.0])
    np.testing.assert_allclose(np.asarray(namespace["g"].detach()), [3.0, 9.0])

    weight = torch.tensor([[0.5, -0.3], [0.2, 0.8]], requires_grad=True)
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5]], requires_grad=True)
    (dx,) = torch.autograd.grad(torch.nn.functional.linear(x, weight).tanh().sum(), x,
                                create_graph=True)
    penalty = ((dx.norm(dim=1) - 1) ** 2).mean()
    penalty.backward()
    np.testing.assert_allclose(float(namespace["penalty"]), penalty.item(), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(namespace["weight"].grad), weight.grad.numpy(),
                               rtol=1e-5)

    kernel = (torch.arange(18.0).reshape(2, 1, 3, 3) / 20 - 0.4).requires_grad_()
    images = (torch.arange(32.0).reshape(2, 1, 4, 4) / 16 - 1).requires_grad_()
    critic = torch.nn.functional.max_pool2d(
        torch.nn.functional.conv2d(images, kernel, padding=1).tanh(), 2).sum()
    (d_images,) = torch.autograd.grad(critic, images, create_graph=True)
    cnn_penalty = ((d_images.flatten(1).norm(dim=1) - 1) ** 2).mean()
    cnn_penalty.backward()
    np.testing.assert_allclose(float(namespace["cnn_penalty"]), cnn_penalty.item(), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(namespace["kernel"].grad), kernel.grad.numpy(),
                               rtol=1e-4, atol=1e-6)


# ---- coverage: every op, F function and layer has a second derivative or a documented refusal

# ops that refuse create_graph on purpose: class name -> a call that reaches the op. Each must
# lack backward_graph, say why in ``no_backward_graph`` and be listed in docs/NUMERICS.md.
# (SingularValueNorm was here until its backward_graph went through the SVD's, issue 12.)
REFUSED: dict = {}
# ops without backward_graph yet, so create_graph raises naming them (never a wrong value);
# docs/NUMERICS.md lists them under "Not covered yet". The test fails when one of them gains a
# case (take it off this list) or a new op appears without one. (Empty since issue 12 gave the
# decompositions, einsum, scatter and the special functions theirs.)
NOT_YET: set = set()
# the convolution, pooling, padding and resampling functions and layers merged from main
# (torch-layers) after this walk was written: built from ops that have second derivatives, but
# no case checks them against torch yet (docs/NUMERICS.md, "Not covered yet"); the test keeps
# both lists exact
F_NOT_YET: set[str] = set()  # issue 11 A covered the last ones (conv, pool, pad, resampling)
LAYERS_NOT_YET: set[str] = set()
# F functions without a gradient to take (integer outputs, helpers)
NOT_DIFFERENTIABLE = {"one_hot", "dim_arg"}
# F function -> its CASES entry where the names differ
CASE_OF_FUNCTION = {"binary_cross_entropy": "bce", "binary_cross_entropy_with_logits":
                    "bce_with_logits", "nll_loss": "nll", "mse_loss": "mse"}
# layers -> the F function they compute through (containers only compose other layers)
LAYER_FUNCTION = {
    "AvgPool2d": "avg_pool2d", "BCELoss": "binary_cross_entropy",
    "BCEWithLogitsLoss": "binary_cross_entropy_with_logits", "BatchNorm1d": "batch_norm",
    "BatchNorm2d": "batch_norm", "Conv2d": "conv2d", "CrossEntropyLoss": "cross_entropy",
    "Dropout": "dropout", "ELU": "elu", "Embedding": "embedding", "GELU": "gelu",
    "Hardtanh": "hardtanh", "HuberLoss": "huber_loss", "L1Loss": "l1_loss",
    "LayerNorm": "layer_norm", "LeakyReLU": "leaky_relu", "Linear": "linear",
    "LogSoftmax": "log_softmax", "MSELoss": "mse_loss", "MaxPool2d": "max_pool2d",
    "NLLLoss": "nll_loss", "ReLU": "relu", "ReLU6": "relu6", "SiLU": "silu",
    "Sigmoid": "sigmoid", "SmoothL1Loss": "smooth_l1_loss", "Softmax": "softmax",
    "Softplus": "softplus", "Tanh": "tanh", "SyncBatchNorm": "batch_norm",
    "CELU": "celu", "Hardshrink": "hardshrink", "Hardsigmoid": "hardsigmoid",
    "Hardswish": "hardswish", "LogSigmoid": "logsigmoid", "Mish": "mish", "SELU": "selu",
    "Softshrink": "softshrink", "Softsign": "softsign", "Tanhshrink": "tanhshrink",
    "Threshold": "threshold", "CosineEmbeddingLoss": "cosine_embedding_loss",
    "GaussianNLLLoss": "gaussian_nll_loss", "HingeEmbeddingLoss": "hinge_embedding_loss",
    "KLDivLoss": "kl_div", "MarginRankingLoss": "margin_ranking_loss",
    "MultiLabelSoftMarginLoss": "multilabel_soft_margin_loss",
    "MultiMarginLoss": "multi_margin_loss", "PoissonNLLLoss": "poisson_nll_loss",
    "SoftMarginLoss": "soft_margin_loss", "TripletMarginLoss": "triplet_margin_loss",
    "TripletMarginWithDistanceLoss": "triplet_margin_with_distance_loss",
    # torch's embedding_bag has no double backward: the F case's oracle is written in torch ops
    "EmbeddingBag": "embedding_bag",
}
# issue 11 A: the conv, pool, pad, fold and upsample layers
LAYER_FUNCTION.update({
    "Conv1d": "conv1d", "Conv3d": "conv3d", "ConvTranspose1d": "conv_transpose1d",
    "ConvTranspose2d": "conv_transpose2d", "ConvTranspose3d": "conv_transpose3d",
    "MaxPool1d": "max_pool1d", "MaxPool3d": "max_pool3d", "AvgPool1d": "avg_pool1d",
    "AvgPool3d": "avg_pool3d", "LPPool1d": "lp_pool1d", "LPPool2d": "lp_pool2d",
    "LPPool3d": "lp_pool3d", "MaxUnpool1d": "max_unpool1d", "MaxUnpool2d": "max_unpool2d",
    "MaxUnpool3d": "max_unpool3d", "AdaptiveAvgPool1d": "adaptive_avg_pool1d",
    "AdaptiveAvgPool2d": "adaptive_avg_pool2d", "AdaptiveAvgPool3d": "adaptive_avg_pool3d",
    "AdaptiveMaxPool1d": "adaptive_max_pool1d", "AdaptiveMaxPool2d": "adaptive_max_pool2d",
    "AdaptiveMaxPool3d": "adaptive_max_pool3d", "Fold": "fold", "Unfold": "unfold",
    "Upsample": "interpolate", "UpsamplingBilinear2d": "interpolate",
    "UpsamplingNearest2d": "interpolate",
    "PixelShuffle": "pixel_shuffle", "PixelUnshuffle": "pixel_unshuffle",
    **{f"{kind}Pad{rank}d": "pad" for kind in ("Constant", "Zero", "Reflection", "Replication",
                                                "Circular") for rank in (1, 2, 3)},
})
CONTAINERS = {"Module", "Sequential", "ModuleList", "ModuleDict", "Identity", "Flatten",
              "DistributedDataParallel"}


def _layers_the_layer_cases_reach():
    """Every layer class (and base class) in the modules LAYER_CASES build for gradwise."""
    reached = set()
    for build, _ in LAYER_CASES.values():
        _, module = _built(build(gw.nn))
        for part in module.modules() if module is not None else ():
            reached |= {cls.__name__ for cls in type(part).__mro__}
    return reached


def _all_function_classes():
    """Every concrete Function subclass defined in gradwise (all its modules imported)."""
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(gw.__path__, "gradwise."):
        importlib.import_module(module.name)

    def below(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    # a per-call subclass that only carries torch's node name (MmBackward0) is its op's
    # class; a private base that only its subclasses instantiate (_Unary, _SvdPart, _QrPart) is
    # never a node of its own: its subclasses are the ops the walk checks
    return {cls for cls in below(gw.Function) if cls.__module__.startswith("gradwise.")
            and cls.forward is not gw.Function.forward and not cls.__dict__.get("_is_variant")
            and not (cls.op_name.startswith("_") and cls.__subclasses__())}


def _graph_classes(tensors):
    """The Function classes of every node that made ``tensors``."""
    found, seen, stack = set(), set(), [t for t in tensors if t is not None]
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        node = tensor.grad_fn
        if node is not None:
            kind = type(node)
            found.add(kind.__mro__[1] if kind.__dict__.get("_is_variant") else kind)
            stack.extend(node.inputs)
    return found


def _classes_the_cases_reach():
    reached = set()
    for fn, _, arrays in CASES.values():
        xs = _gw_inputs(arrays)
        out = fn(*xs)
        grads = gw.autograd.grad(out, xs, gw.ones_like(out), create_graph=True,
                                 allow_unused=True)
        reached |= _graph_classes([out, *grads])
    return reached


def test_every_op_has_a_second_derivative_or_a_documented_refusal():
    ops = _all_function_classes()
    reached = _classes_the_cases_reach()
    numerics = (Path(__file__).parents[2] / "docs" / "NUMERICS.md").read_text()
    by_name = {cls.op_name: cls for cls in ops}
    for name, call in REFUSED.items():
        cls = by_name[name]
        assert not hasattr(cls, "backward_graph") and cls.no_backward_graph, name
        assert name in numerics, f"{name} refuses create_graph but docs/NUMERICS.md omits it"
        x = gw.tensor(RNG.normal(size=(3, 4)), requires_grad=True)
        with pytest.raises(RuntimeError, match=f"create_graph: {name} has no differentiable"):
            gw.autograd.grad(call(x), x, create_graph=True)
    untested = sorted(cls.op_name for cls in ops - reached
                      if cls.op_name not in REFUSED and cls.op_name not in NOT_YET)
    assert not untested, f"ops no second-derivative case reaches: {untested}"
    pending = {cls.op_name for cls in ops - reached} & NOT_YET
    assert pending == NOT_YET, f"now reached by a case, take off NOT_YET: {NOT_YET - pending}"
    for name in NOT_YET:
        assert not hasattr(by_name[name], "backward_graph"), name
        assert name in numerics, f"{name} lacks a second derivative but NUMERICS.md omits it"
    missing = sorted(cls.op_name for cls in reached if not hasattr(cls, "backward_graph"))
    assert not missing, f"ops without backward_graph reached by the cases: {missing}"


def test_every_function_and_layer_has_a_second_derivative_case():
    import inspect

    names = {name for name, value in vars(F).items() if not name.startswith("_")
             and inspect.isfunction(value) and value.__module__.startswith("gradwise")}
    uncovered = {name for name in names - NOT_DIFFERENTIABLE
                 if CASE_OF_FUNCTION.get(name, name) not in CASES}
    assert uncovered <= F_NOT_YET, (
        f"F functions without a second-derivative case: {sorted(uncovered - F_NOT_YET)}")
    assert uncovered >= F_NOT_YET, f"now covered, take off F_NOT_YET: {F_NOT_YET - uncovered}"
    from gradwise.nn.parallel import DistributedDataParallel, SyncBatchNorm

    layers = {name for name, value in vars(gw.nn).items()
              if inspect.isclass(value) and issubclass(value, gw.nn.Module)}
    layers |= {DistributedDataParallel.__name__, SyncBatchNorm.__name__}
    unmapped = layers - CONTAINERS - set(LAYER_FUNCTION) - _layers_the_layer_cases_reach()
    assert unmapped <= LAYERS_NOT_YET, (
        f"layers without a second-derivative case: {sorted(unmapped - LAYERS_NOT_YET)}")
    assert unmapped >= LAYERS_NOT_YET, (
        f"now covered, take off LAYERS_NOT_YET: {LAYERS_NOT_YET - unmapped}")
    assert set(LAYER_FUNCTION.values()) <= names


# ---- issue 12 (part A): the decompositions, einsum, scatter and special functions at their edges

# torch as the oracle where gradgradcheck cannot be: eigh reading one triangle of a non-symmetric
# matrix (torch's gradient is the symmetric one, not the derivative of what was read)
TORCH_ONLY = {
    "eigh_one_triangle": (
        lambda a: gw.linalg.eigh(a, UPLO="U").eigenvectors ** 2
        * gw.linalg.eigh(a, UPLO="U").eigenvalues,
        lambda t, a: t.linalg.eigh(a, UPLO="U").eigenvectors ** 2
        * t.linalg.eigh(a, UPLO="U").eigenvalues, [_signed(3, 3)]),
    "eigvalsh_one_triangle": (lambda a: gw.linalg.eigvalsh(a) ** 2,
                              lambda t, a: t.linalg.eigvalsh(a) ** 2, [_signed(2, 3, 3)]),
}


@pytest.mark.parametrize("name", sorted(TORCH_ONLY))
def test_second_derivative_matches_torch_where_only_torch_can_say(name):
    _check_second_derivative_against_torch(name, *TORCH_ONLY[name])


def _hessian_vector(fn, arrays, w, v, module):
    """(first gradient, Hessian-vector product) of ``sum(w * fn(x))`` in gradwise or torch."""
    if module is gw:
        return _gw_second(fn, arrays, w, v)
    xs = [module.tensor(a, requires_grad=True) for a in arrays]
    grads = module.autograd.grad(fn(*xs), xs, module.tensor(w), create_graph=True)
    projection = sum((g * module.tensor(vi)).sum() for g, vi in zip(grads, v, strict=True))
    second = module.autograd.grad(projection, xs, allow_unused=True)
    return ([g.detach().numpy() for g in grads],
            [np.zeros_like(a) if g is None else g.numpy() for a, g in zip(arrays, second,
                                                                          strict=True)])


# where the first derivative is ill-defined, the second is too: torch's NaN, matched NaN for NaN
REPEATED = {
    "eigvalsh": (lambda m, a: m.linalg.eigvalsh(a), np.diag([1.0, 1.0, 2.0])),
    "eigh_vectors": (lambda m, a: m.linalg.eigh(a).eigenvectors ** 2, np.diag([1.0, 1.0, 2.0])),
    "svdvals": (lambda m, a: m.linalg.svdvals(a), np.eye(3)),
    "nuclear_norm": (lambda m, a: m.linalg.matrix_norm(a, ord="nuc"), np.eye(3)),
    "spectral_norm_tie": (lambda m, a: m.linalg.matrix_norm(a, ord=2), np.diag([2.0, 2.0, 1.0])),
    "det_zero_matrix": (lambda m, a: m.linalg.det(a), np.zeros((3, 3))),
}


@pytest.mark.parametrize("name", sorted(REPEATED))
def test_repeated_eigenvalues_and_singular_values_give_torchs_nan(name):
    torch = pytest.importorskip("torch")
    fn, matrix = REPEATED[name]
    rng = np.random.default_rng(2)
    w = rng.uniform(0.5, 1.5, size=fn(gw, gw.tensor(matrix)).shape)
    v = [rng.normal(size=matrix.shape)]
    with np.errstate(all="ignore"):
        ours = _hessian_vector(lambda a: fn(gw, a), [matrix], w, v, gw)
    theirs = _hessian_vector(lambda a: fn(torch, a), [matrix], w, v, torch)
    for mine, expected in zip([*ours[0], *ours[1]], [*theirs[0], *theirs[1]], strict=True):
        np.testing.assert_allclose(mine, expected, rtol=1e-9, atol=1e-11, equal_nan=True,
                                   err_msg=name)
    assert np.isnan(ours[1][0]).any(), f"{name}: the second derivative is defined here?"


EMPTY_BATCH = {
    "inv": lambda m, a: m.linalg.inv(a),
    "det": lambda m, a: m.linalg.det(a),
    "slogdet": lambda m, a: m.linalg.slogdet(a).logabsdet,
    "cholesky": lambda m, a: m.linalg.cholesky(a),
    "eigvalsh": lambda m, a: m.linalg.eigvalsh(a),
    "eigh_vectors": lambda m, a: m.linalg.eigh(a).eigenvectors,
    "svdvals": lambda m, a: m.linalg.svdvals(a),
    "svd_u": lambda m, a: m.linalg.svd(a, full_matrices=False).U,
    "svd_vh": lambda m, a: m.linalg.svd(a, full_matrices=False).Vh,
    "qr_q": lambda m, a: m.linalg.qr(a).Q,
    "qr_r": lambda m, a: m.linalg.qr(a).R,
    "pinv": lambda m, a: m.linalg.pinv(a),
    "nuclear_norm": lambda m, a: m.linalg.matrix_norm(a, ord="nuc"),
    "solve": lambda m, a: m.linalg.solve(a, a),
    "einsum": lambda m, a: m.einsum("bij,bjk->bik", a, a),
}


@pytest.mark.parametrize("name", sorted(EMPTY_BATCH))
def test_empty_batch_second_derivatives_are_empty(name):
    fn = EMPTY_BATCH[name]
    matrix = np.zeros((0, 3, 3))
    w = np.zeros(fn(gw, gw.tensor(matrix)).shape)
    first, second = _hessian_vector(lambda a: fn(gw, a), [matrix], w, [matrix], gw)
    assert first[0].shape == second[0].shape == (0, 3, 3)


def test_trigamma_is_exact_where_torchs_is_not():
    """digamma's derivative (and lgamma's second) comes from scipy's polygamma, exact to
    rounding against mpmath; torch's trigamma is ~5e-10 off (TORCH_LESS_EXACT says so)."""
    mpmath = pytest.importorskip("mpmath")
    x = np.array([0.3, 0.7, 1.3, 4.5, 30.0])
    exact = np.array([float(mpmath.polygamma(1, v)) for v in x])
    xs = gw.tensor(x, requires_grad=True)
    (slope,) = gw.autograd.grad(gw.special.digamma(xs).sum(), xs, create_graph=True)
    np.testing.assert_allclose(np.asarray(slope.detach()), exact, rtol=1e-15)
    (curvature,) = gw.autograd.grad(slope.sum(), xs)
    np.testing.assert_allclose(np.asarray(curvature),
                               [float(mpmath.polygamma(2, v)) for v in x], rtol=1e-14)
    (lgamma_slope,) = gw.autograd.grad(gw.special.gammaln(xs).sum(), xs, create_graph=True)
    (lgamma_curvature,) = gw.autograd.grad(lgamma_slope.sum(), xs)
    np.testing.assert_allclose(np.asarray(lgamma_curvature), exact, rtol=1e-15)
    with pytest.raises(ValueError, match="polygamma: n must be a non-negative integer"):
        gw.special.polygamma(-1, xs)


def test_scatter_with_src_larger_than_index():
    """Only the index's corner of src is read: its gradient is that of the corner alone (the
    cases above, torch-checked, pass a src shaped like the index), the rest of src gets 0, and
    the second derivative agrees with finite differences. Torch raises here even at first order
    (its backward returns the index's shape for src)."""
    x, src = _signed(3, 4), _signed(3, 5)

    def fn(a, b):
        return a.scatter(0, SCATTER_INDEX, b) ** 2 + a.scatter_add(1, SCATTER_INDEX[:, :2], b)

    assert gw.gradgradcheck(fn, *_gw_inputs([x, src]))
    xs = _gw_inputs([x, src])
    _, grad_src = gw.autograd.grad(fn(*xs).sum(), xs)
    corner = gw.tensor(src[:2, :4], requires_grad=True)
    x_again = gw.tensor(x)
    (grad_corner,) = gw.autograd.grad(
        (x_again.scatter(0, SCATTER_INDEX, corner) ** 2).sum()
        + x_again.scatter_add(1, SCATTER_INDEX[:, :2], corner[:, :2]).sum(), corner)
    expected = np.zeros_like(src)
    expected[:2, :4] = np.asarray(grad_corner)
    np.testing.assert_allclose(np.asarray(grad_src), expected, rtol=1e-14)


def test_scatter_prod_refuses_second_derivative_at_two_zeros_like_torch():
    x = gw.tensor(_signed(3, 4), requires_grad=True)
    src_values = _signed(3, 4)
    src_values[0, 0] = src_values[1, 0] = 0.0  # both go to position (0, 0)
    src = gw.tensor(src_values, requires_grad=True)
    out = x.scatter_reduce(0, REDUCE_INDEX, src, "prod").sum()
    with pytest.raises(RuntimeError, match=r"scatter_reduce\(reduce='prod'\).*two or more zeros"):
        gw.autograd.grad(out, [x, src], create_graph=True)
    first = gw.autograd.grad(x.scatter_reduce(0, REDUCE_INDEX, src, "prod").sum(), [x, src])
    assert all(np.isfinite(np.asarray(g)).all() for g in first)  # the first derivative stays


def test_einsum_gradient_over_an_empty_axis_is_empty():
    """Regression (issue 12): a label of size 0 that only one operand has ("i->" of an empty
    vector) was broadcast to size 1 in backward, which then raised."""
    x = gw.tensor(np.zeros(0), requires_grad=True)
    gw.einsum("i->", x).backward()
    assert x.grad.shape == (0,)


def test_einsum_of_a_zero_dim_operand_has_a_zero_dim_gradient():
    """Regression (issue 12): the gradient of a 0-d einsum operand came back 1-d and backward
    raised ("returned a gradient of shape (1,) for an input of shape ()")."""
    s = gw.tensor(2.0, requires_grad=True)
    v = gw.tensor([1.0, -3.0], requires_grad=True)
    gw.einsum(",i->i", s, v).sum().backward()
    assert s.grad.shape == ()
    np.testing.assert_allclose(np.asarray(s.grad), -2.0)
    np.testing.assert_allclose(np.asarray(v.grad), [2.0, 2.0])


HESSIANS = {
    # log det of a covariance: slogdet through the inverse
    "log_det_covariance": (
        lambda m, x: m.linalg.slogdet((x - x.mean(0, keepdim=True)).mT
                                      @ (x - x.mean(0, keepdim=True)) / 4
                                      + 0.1 * m.eye(3, dtype=x.dtype)).logabsdet,
        [_signed(5, 3)]),
    # the least-squares solution's squared norm, through the normal equations and a Cholesky
    "least_squares": (
        lambda m, a, b: (m.linalg.solve(a.mT @ a, a.mT @ b) ** 2).sum()
        + m.linalg.cholesky(a.mT @ a).diagonal(dim1=-2, dim2=-1).log().sum(),
        [_signed(4, 3) + np.eye(4, 3), _signed(4)]),
    # an einsum bilinear form with a quadratic term
    "einsum_bilinear_form": (
        lambda m, x, a, y: m.einsum("i,ij,j->", x, a, y) * m.einsum("i,i->", x, x)
        + m.einsum("ij,ij->", a, a).sqrt(),
        [_signed(3), _signed(3, 2), _signed(2)]),
}


@pytest.mark.parametrize("name", sorted(HESSIANS))
def test_hessian_of_composite_functions_matches_torch(name):
    torch = pytest.importorskip("torch")
    from torch.autograd import functional as TF

    fn, arrays = HESSIANS[name]
    ours = AF.hessian(lambda *xs: fn(gw, *xs), tuple(gw.tensor(a) for a in arrays))
    theirs = TF.hessian(lambda *xs: fn(torch, *xs), tuple(torch.tensor(a) for a in arrays))
    for row_ours, row_theirs in zip(ours, theirs, strict=True):
        for block_ours, block_theirs in zip(row_ours, row_theirs, strict=True):
            np.testing.assert_allclose(np.asarray(block_ours), block_theirs.numpy(),
                                       rtol=1e-9, atol=1e-12, err_msg=name)


THIRD_ORDER = {  # backward_graphs built from the op itself, so every order is recorded
    "cumprod_zeros": (lambda m, a: a.cumprod(1), CUMPROD_ZEROS),
    "einsum_diagonal": (lambda m, a: m.einsum("iij->j", a) ** 2, _signed(3, 3, 2)),
    "digamma": (lambda m, a: m.special.digamma(a), _positive(4)),
    "i1": (lambda m, a: m.special.i1(a), _signed(4) * 2),
    "inv": (lambda m, a: m.linalg.inv(a), _well_conditioned(3, 3)),
    "det": (lambda m, a: m.linalg.det(a), _well_conditioned(3, 3)),
    "svdvals": (lambda m, a: m.linalg.svdvals(a), _signed(4, 3)),
}


def _third(module, fn, values, seed=4):
    """d/dx (v . d/dx (u . d sum(fn(x))/dx)) in gradwise or torch, as an array."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=values.shape), rng.normal(size=values.shape)
    x = module.tensor(values, requires_grad=True)
    (g,) = module.autograd.grad(fn(module, x).sum(), x, create_graph=True)
    (h,) = module.autograd.grad((g * module.tensor(u)).sum(), x, create_graph=True)
    (t,) = module.autograd.grad((h * module.tensor(v)).sum(), x)
    return np.asarray(t) if module is gw else t.numpy()


@pytest.mark.parametrize("name", sorted(THIRD_ORDER))
def test_third_derivative_matches_torch(name):
    torch = pytest.importorskip("torch")
    fn, values = THIRD_ORDER[name]
    ours, theirs = _third(gw, fn, values), _third(torch, fn, values)
    rtol = 1e-5 if name == "digamma" else 1e-9  # torch's polygamma series (see above)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-10, err_msg=name)


def test_det_third_derivative_at_a_singular_matrix_is_the_constant_one():
    """det of a 3x3 matrix is a cubic, so its third derivative is the same everywhere. Through
    the SVD at a singular matrix gradwise gives that constant; torch's third derivative there
    differs (its singular-case double backward; docs/NUMERICS.md), so torch is asked at an
    invertible matrix instead."""
    torch = pytest.importorskip("torch")

    def det(module, a):
        return module.linalg.det(a)

    constant = _third(torch, det, _well_conditioned(3, 3))
    np.testing.assert_allclose(_third(gw, det, SINGULAR), constant, rtol=1e-9)
    # in a batch beside the identity (the inverse path): the same constants, batch by batch
    batch_constant = _third(torch, det, np.stack([_well_conditioned(3, 3)] * 2))
    np.testing.assert_allclose(_third(gw, det, np.stack([SINGULAR, np.eye(3)])),
                               batch_constant, rtol=1e-9)
    assert not np.allclose(_third(torch, det, SINGULAR), constant, rtol=1e-3)


# a wider sweep, against torch only (second derivatives and first): broadcasting shapes of solve,
# einsum equations (diagonals, permutations, ellipses, outer products, size-1 broadcast), every
# scatter reduction along every dim with and without the original entries, cumprod with zeros
# along every dim, tall/wide/batched SVD, pinv and QR, 1x1 and 2x2 singular determinants
_SWEEP_RNG = np.random.default_rng(11)


def _sweep_cases():
    r = _SWEEP_RNG
    cases = {}

    def add(name, fn, arrays):
        cases[name] = (lambda *xs: fn(gw, *xs), lambda t, *xs: fn(t, *xs), arrays)

    for a_shape, b_shape in [((3, 3), (2, 3, 4)), ((2, 1, 3, 3), (4, 3, 1)), ((2, 3, 3), (3,)),
                             ((2, 3, 3), (2, 3)), ((4, 3, 3), (1, 3, 1))]:
        add(f"solve{a_shape}{b_shape}", lambda m, a, b: m.linalg.solve(a, b) ** 2,
            [r.normal(size=a_shape) + 3 * np.eye(3), r.normal(size=b_shape)])
    for equation, shapes in [("ij,jk->ik", [(2, 3), (3, 4)]), ("i,i->", [(3,), (3,)]),
                             ("ii", [(3, 3)]), ("ij->ji", [(2, 3)]), ("bij->bj", [(2, 3, 4)]),
                             ("ij,ij,ij->i", [(2, 3)] * 3), ("...i,...i->...", [(2, 3, 4), (3, 4)]),
                             ("ijk,jil->kl", [(2, 3, 4), (3, 2, 5)]), ("iji->j", [(2, 3, 2)]),
                             ("ij,kl->ijkl", [(2, 2), (2, 3)]), ("ab,b->a", [(3, 1), (4,)]),
                             ("i,j", [(2,), (3,)]), ("ii->i", [(3, 3)])]:
        add(f"einsum {equation}", lambda m, *xs, e=equation: m.einsum(e, *xs).tanh(),
            [r.normal(size=s) for s in shapes])
    for dim in (0, 1, -1):
        x, src = r.normal(size=(2, 3, 4)), r.normal(size=(2, 3, 4))
        index = r.integers(0, x.shape[dim], size=x.shape)
        for reduce in ("sum", "mean", "prod", "amax", "amin"):
            for include in (True, False):
                add(f"scatter_reduce {dim} {reduce} {include}",
                    lambda m, a, s, d=dim, i=index, red=reduce, inc=include: a.scatter_reduce(
                        d, i if m is gw else m.tensor(i), s, red, include_self=inc) * a,
                    [x, src])
        add(f"cumprod {dim}", lambda m, a, d=dim: a.cumprod(d) * a,
            [x * (r.random(x.shape) > 0.2)])
    for shape in [(3, 5), (5, 3), (2, 4, 2), (2, 2, 4)]:
        add(f"pinv {shape}", lambda m, a: m.linalg.pinv(a), [r.normal(size=shape)])
        add(f"svd {shape}", lambda m, a: _svd_mix(*m.linalg.svd(a, full_matrices=False)),
            [r.normal(size=shape)])
    for shape in [(4, 4), (5, 3), (2, 3, 3), (3, 1)]:
        add(f"qr {shape}", lambda m, a: _qr_mix(*m.linalg.qr(a)), [r.normal(size=shape)])
    add("det 1x1 zero", lambda m, a: m.linalg.det(a), [np.zeros((1, 1))])
    add("det 2x2 singular batch", lambda m, a: m.linalg.det(a),
        [np.array([[[1.0, 2.0], [2.0, 4.0]], [[0.0, 1.0], [0.0, 0.0]]])])
    return cases


def _svd_mix(u, s, vh):  # sign-free in the singular vectors
    return (u * u).sum() * s.sum() + (vh ** 4).sum()


def _qr_mix(q, r):
    return q.tanh().sum() * r


SWEEP = _sweep_cases()


@pytest.mark.parametrize("name", sorted(SWEEP))
def test_second_derivative_sweep_matches_torch(name):
    _check_second_derivative_against_torch(name, *SWEEP[name])
