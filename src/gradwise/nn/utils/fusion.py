"""Folding an evaluation-mode BatchNorm into the convolution or linear layer before it, as
``torch.nn.utils.fusion``: ``y = bn(conv(x))`` becomes one layer with

    w' = w * gamma / sqrt(running_var + eps)            (per output channel)
    b' = (b - running_mean) * gamma / sqrt(running_var + eps) + beta

(the standard inference-time fold; e.g. Jacob et al., 2018, "Quantization and Training of
Neural Networks for Efficient Integer-Arithmetic-Only Inference", section 3.2).
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

import numpy as np

from gradwise.autograd.tensor import Tensor
from gradwise.nn.module import Module, Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval",
           "fuse_linear_bn_weights"]

ModuleT = TypeVar("ModuleT", bound=Module)


def _array(value: Any) -> np.ndarray:
    return value._data if isinstance(value, Tensor) else np.asarray(value)


def _requires_grad(value: Any) -> bool:
    return bool(getattr(value, "requires_grad", True))


def fuse_conv_bn_weights(conv_w: Tensor, conv_b: Tensor | None, bn_rm: Tensor, bn_rv: Tensor,
                         bn_eps: float, bn_w: Tensor | None, bn_b: Tensor | None,
                         transpose: bool = False) -> tuple[Parameter, Parameter]:
    """The folded (weight, bias) as new Parameters, in the conv weight's (bias') dtype.

    Shape: conv_w (C_out, C_in/groups, *k), or (C_in, C_out/groups, *k) with ``transpose``;
    the BatchNorm vectors (C_out,).
    """
    weight = _array(conv_w)
    mean, var = _array(bn_rm), _array(bn_rv)
    bias_dtype = weight.dtype if conv_b is None else _array(conv_b).dtype
    bias = np.zeros_like(mean) if conv_b is None else _array(conv_b)
    gamma = np.ones_like(mean) if bn_w is None else _array(bn_w)
    beta = np.zeros_like(mean) if bn_b is None else _array(bn_b)
    var_rsqrt = 1 / np.sqrt(var + bn_eps)
    shape = [1, -1] if transpose else [-1, 1]
    shape += [1] * (weight.ndim - 2)
    fused_w = (weight * (gamma * var_rsqrt).reshape(shape)).astype(weight.dtype)
    fused_b = ((bias - mean) * var_rsqrt * gamma + beta).astype(bias_dtype)
    return (Parameter(fused_w, requires_grad=_requires_grad(conv_w)),
            Parameter(fused_b, requires_grad=conv_b is None or _requires_grad(conv_b)))


def fuse_conv_bn_eval(conv: ModuleT, bn: Module, transpose: bool = False) -> ModuleT:
    """A new convolution computing ``bn(conv(x))`` of the two in evaluation mode (both are left
    as they are).

    Raises:
        AssertionError: either module is in training mode, or ``bn`` has no running statistics
            (torch's errors).
    """
    if conv.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    if getattr(bn, "running_mean", None) is None or getattr(bn, "running_var", None) is None:
        raise AssertionError("bn.running_mean and bn.running_var must not be None")
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias,
        transpose)
    return fused


def fuse_linear_bn_weights(linear_w: Tensor, linear_b: Tensor | None, bn_rm: Tensor,
                           bn_rv: Tensor, bn_eps: float, bn_w: Tensor,
                           bn_b: Tensor) -> tuple[Parameter, Parameter]:
    """The folded (weight, bias) of a Linear followed by a BatchNorm over its outputs.

    Shape: linear_w (out, in); the BatchNorm vectors (out,) or (1,).
    """
    weight = _array(linear_w)
    mean, var = _array(bn_rm), _array(bn_rv)
    bias_dtype = weight.dtype if linear_b is None else _array(linear_b).dtype
    bias = np.zeros_like(mean) if linear_b is None else _array(linear_b)
    scale = _array(bn_w) / np.sqrt(var + bn_eps)
    fused_w = weight * scale[:, None].astype(weight.dtype)
    fused_b = ((bias - mean) * scale + _array(bn_b)).astype(bias_dtype)
    return (Parameter(fused_w, requires_grad=_requires_grad(linear_w)),
            Parameter(fused_b, requires_grad=linear_b is None or _requires_grad(linear_b)))


def fuse_linear_bn_eval(linear: ModuleT, bn: Module) -> ModuleT:
    """A new Linear computing ``bn(linear(x))`` of the two in evaluation mode.

    Raises:
        AssertionError: training mode, no running statistics, or ``bn.num_features`` neither
            ``linear.out_features`` nor 1 (torch's errors).
    """
    if linear.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise AssertionError(
            "To fuse, linear.out_features == bn.num_features or bn.num_features == 1, got "
            f"linear.out_features={linear.out_features} and bn.num_features={bn.num_features}")
    if getattr(bn, "running_mean", None) is None or getattr(bn, "running_var", None) is None:
        raise AssertionError("bn.running_mean and bn.running_var must not be None")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    return fused
