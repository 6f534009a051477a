"""Stateless functions over tensors: activations, linear, losses (PyTorch's ``F``).

Activations and losses with a closed-form backward are primitives in ``autograd/ops``; the rest
are composed here from those primitives and need no backward of their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd.ops import elementwise as _ew
from gradwise.autograd.ops import linalg as _linalg
from gradwise.autograd.ops import loss as _loss
from gradwise.autograd.ops import reduce as _reduce
from gradwise.autograd.tensor import Tensor


# ---- activations ------------------------------------------------------------------------------
def relu(x: Tensor) -> Tensor:
    return _ew.ReLU.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return _ew.LeakyReLU.apply(x, negative_slope)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    return _ew.ELU.apply(x, alpha)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x); ``approximate='tanh'`` uses the tanh form."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _ew.GELU.apply(x, approximate)


def sigmoid(x: Tensor) -> Tensor:
    return _ew.Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    return _ew.Tanh.apply(x)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return _ew.Softplus.apply(x, beta, threshold)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return _reduce.Softmax.apply(x, axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return _reduce.LogSoftmax.apply(x, axis=axis)


# ---- layers -----------------------------------------------------------------------------------
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b.

    Shape:
        x: (..., in), weight: (out, in), bias: (out,) -> (..., out)
    """
    if bias is None:
        return _linalg.Linear.apply(x, weight)
    return _linalg.Linear.apply(x, weight, bias)


# ---- losses -----------------------------------------------------------------------------------
def _target_array(target: Any) -> np.ndarray:
    return target.data if isinstance(target, Tensor) else np.asarray(target)


def _same_shape(name: str, input: Tensor, target: Any) -> None:
    target_shape = target.shape if hasattr(target, "shape") else np.shape(target)
    if tuple(input.shape) != tuple(target_shape):
        raise ValueError(
            f"{name}: input shape {tuple(input.shape)} and target shape {tuple(target_shape)} "
            "differ; broadcasting them would silently compare every pair"
        )


def _reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error: mean((input - target)^2)."""
    _loss.check_reduction("mse_loss", reduction)
    _same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce_loss(diff * diff, reduction)


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean absolute error: mean(|input - target|)."""
    _loss.check_reduction("l1_loss", reduction)
    _same_shape("l1_loss", input, target)
    return _reduce_loss((input - target).abs(), reduction)


def binary_cross_entropy(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """BCE on probabilities in [0, 1]; logs are clamped at -100 as in PyTorch."""
    _loss.check_reduction("binary_cross_entropy", reduction)
    _same_shape("binary_cross_entropy", input, target)
    target = _target_array(target).astype(input.dtype, copy=False)
    return _loss.BCE.apply(input, target, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """BCE on logits, fused with the sigmoid: stable for any logit."""
    _loss.check_reduction("binary_cross_entropy_with_logits", reduction)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    target = _target_array(target).astype(input.dtype, copy=False)
    return _loss.BCEWithLogits.apply(input, target, reduction)


def cross_entropy(
    input: Tensor, target: Any, reduction: str = "mean", label_smoothing: float = 0.0
) -> Tensor:
    """Softmax cross-entropy of (N, C) logits against integer labels (N,), fused and stable."""
    _loss.check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    return _loss.CrossEntropy.apply(input, _target_array(target), reduction, label_smoothing)


def nll_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer labels under (N, C) log-probabilities."""
    _loss.check_reduction("nll_loss", reduction)
    return _loss.NLLLoss.apply(input, _target_array(target), reduction)
