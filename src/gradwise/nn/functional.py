"""Stateless functions over tensors: activations, linear, losses (PyTorch's ``F``).

Activations and losses with a closed-form backward are primitives in ``autograd/ops``; the rest
are composed here from those primitives and need no backward of their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd import random as _random
from gradwise.autograd._args import dim_arg
from gradwise.autograd.kernels import dropout as _dropout_kernels
from gradwise.autograd.ops import _spatial
from gradwise.autograd.ops import conv as _conv
from gradwise.autograd.ops import elementwise as _ew
from gradwise.autograd.ops import linalg as _linalg
from gradwise.autograd.ops import loss as _loss
from gradwise.autograd.ops import norm as _norm
from gradwise.autograd.ops import pool as _pool
from gradwise.autograd.ops import reduce as _reduce
from gradwise.autograd.tensor import Tensor


# ---- activations ------------------------------------------------------------------------------
def relu(x: Tensor) -> Tensor:
    """max(0, x) elementwise, as ``torch.nn.functional.relu``; the gradient at 0 is 0, as torch's.
    """
    return _ew.ReLU.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """max(0, x) + negative_slope * min(0, x) (Maas et al. 2013), as ``torch``'s; shape kept."""
    return _ew.LeakyReLU.apply(x, negative_slope)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """ELU: x where x > 0, else alpha * (exp(x) - 1) (Clevert et al. 2015), as ``torch``'s.

    Shape: any; output like ``x``.
    """
    return _ew.ELU.apply(x, alpha)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x); ``approximate='tanh'`` uses the tanh form."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _ew.GELU.apply(x, approximate)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)) elementwise, computed without overflow for large |x|; shape kept."""
    return _ew.Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent elementwise; the gradient is 1 - tanh(x)^2. Shape kept."""
    return _ew.Tanh.apply(x)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold, as ``torch``'s."""
    return _ew.Softplus.apply(x, beta, threshold)


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x) (SiLU / swish, Elfwing et al. 2017), as ``torch.nn.functional.silu``."""
    return x * x.sigmoid()


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clamped into [min_val, max_val]; gradient 1 inside (bounds included), 0 outside.

    Raises:
        ValueError: ``min_val`` > ``max_val``.
    """
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return x.clamp(min_val, max_val)


def relu6(x: Tensor) -> Tensor:
    """min(max(x, 0), 6) (MobileNet's activation), ``hardtanh(x, 0, 6)``."""
    return hardtanh(x, 0.0, 6.0)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """``input / max(||input||_p over dim, eps)``, as ``torch.nn.functional.normalize``.

    Shape: any -> same; the norm is taken over ``dim`` and broadcast back.
    """
    return input / input.norm(p, dim=dim, keepdim=True).clamp_min(eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between x1 and x2 along ``dim``: each side divided by
    ``max(||x||_2, eps)``, then summed products (PyTorch's formula since 1.12).

    Shape: x1 and x2 broadcastable -> their broadcast shape without ``dim``.
    """
    return (normalize(x1, 2.0, dim, eps) * normalize(x2, 2.0, dim, eps)).sum(dim)


def pad(input: Tensor, pad: Any, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad with a constant, PyTorch's order: ``pad`` is (left, right) for the last dim, then
    (top, bottom) for the one before, and so on; the gradient is the unpadded part.

    Raises:
        ValueError: an odd-length ``pad``, more pairs than dims, a negative width, or a mode
            other than "constant" (reflect/replicate/circular are not implemented).
    """
    pad = tuple(int(p) for p in pad)
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is implemented in gradwise, got {mode!r}")
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: expects pairs for at most {input.ndim} dims, got {pad}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding (cropping) is not supported, got {pad}")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    from gradwise.autograd.functional import pad as _pad_widths
    return _pad_widths(input, tuple(widths), value)


def softmax(x: Tensor, dim: int | None = None, axis: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim`` (NumPy alias ``axis``; default the last axis).

    PyTorch picks an implicit dim (with a warning) when none is given; gradwise always uses -1
    (docs/PORTING.md).
    """
    return _reduce.Softmax.apply(x, axis=dim_arg("softmax", dim, axis, -1))


def log_softmax(x: Tensor, dim: int | None = None, axis: int | None = None) -> Tensor:
    """log(softmax(x)) along ``dim`` (NumPy alias ``axis``; default the last axis), stably."""
    return _reduce.LogSoftmax.apply(x, axis=dim_arg("log_softmax", dim, axis, -1))


# ---- layers -----------------------------------------------------------------------------------
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b.

    Shape:
        x: (..., in), weight: (out, in), bias: (out,) -> (..., out)
    """
    if bias is None:
        return _linalg.Linear.apply(x, weight)
    return _linalg.Linear.apply(x, weight, bias)


def _linear_relu(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """relu(x W^T + b) as one fused node (what ``nn.Sequential`` runs for Linear then ReLU).

    Shape:
        x: (..., in), weight: (out, in), bias: (out,) -> (..., out)
    """
    if bias is None:
        return _linalg.LinearReLU.apply(x, weight)
    return _linalg.LinearReLU.apply(x, weight, bias)


# ---- losses -----------------------------------------------------------------------------------
def _target_array(target: Any) -> np.ndarray:
    return target._data if isinstance(target, Tensor) else np.asarray(target)


def _float_target(target: Any, input: Tensor) -> Any:
    """A probability target in the input's dtype; a Tensor stays in the graph (PyTorch
    differentiates BCE targets), a constant becomes an array."""
    if isinstance(target, Tensor):
        if target._data.dtype == input._data.dtype:
            return target
        return _ew.Cast.apply(target, input._data.dtype)
    return np.asarray(target).astype(input.dtype, copy=False)


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


def _weight_array(weight: Any) -> np.ndarray | None:
    return None if weight is None else _target_array(weight)


def smooth_l1_loss(input: Tensor, target: Any, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """Smooth L1 (Girshick, Fast R-CNN 2015): ``0.5 d^2 / beta`` where ``|d| < beta``, else
    ``|d| - 0.5 beta``, with d = input - target; beta = 0 is the L1 loss (PyTorch's rule).

    Raises:
        ValueError: beta < 0, shapes differ, or an unknown reduction.
    """
    _loss.check_reduction("smooth_l1_loss", reduction)
    _same_shape("smooth_l1_loss", input, target)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    diff = input - target
    size = diff.abs()
    if beta == 0:
        return _reduce_loss(size, reduction)
    from gradwise.autograd.functional import where
    return _reduce_loss(where(size < beta, 0.5 * diff * diff / beta, size - 0.5 * beta),
                        reduction)


def huber_loss(input: Tensor, target: Any, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:
    """Huber loss (Huber 1964): ``0.5 d^2`` where ``|d| < delta``, else
    ``delta (|d| - 0.5 delta)``; equals ``delta * smooth_l1_loss(beta=delta)``.

    Raises:
        ValueError: delta <= 0, shapes differ, or an unknown reduction.
    """
    _loss.check_reduction("huber_loss", reduction)
    _same_shape("huber_loss", input, target)
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    diff = input - target
    size = diff.abs()
    from gradwise.autograd.functional import where
    return _reduce_loss(where(size < delta, 0.5 * diff * diff, delta * (size - 0.5 * delta)),
                        reduction)


def binary_cross_entropy(
    input: Tensor, target: Any, weight: Any = None, reduction: str = "mean"
) -> Tensor:
    """BCE on probabilities in [0, 1]: ``-weight (y log p + (1 - y) log(1 - p))``.

    Each log is clamped at -100 as in PyTorch, so p = 0 or 1 gives a finite loss.

    Args:
        weight: a rescaling weight broadcastable to the input (a constant: it gets no gradient).

    Shape:
        input and target alike -> () or the input's shape for ``reduction="none"``.
    """
    _loss.check_reduction("binary_cross_entropy", reduction)
    _same_shape("binary_cross_entropy", input, target)
    target = _float_target(target, input)
    return _loss.BCE.apply(input, target, reduction, _weight_array(weight))


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Tensor:
    """BCE on logits, fused with the sigmoid: stable for any logit.

    Args:
        weight: a rescaling weight broadcastable to the input.
        pos_weight: the weight of the positive term, broadcastable to the input (one per class
            on the last axis): the loss is ``(1 - y) x + (1 + (pos_weight - 1) y) softplus(-x)``.
            Both weights are constants (no gradient), as they almost always are in PyTorch.

    Shape:
        input and target alike -> () or the input's shape for ``reduction="none"``.
    """
    _loss.check_reduction("binary_cross_entropy_with_logits", reduction)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    target = _float_target(target, input)
    return _loss.BCEWithLogits.apply(
        input, target, reduction, _weight_array(weight), _weight_array(pos_weight)
    )


def cross_entropy(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy of (N, C) logits against integer labels (N,), fused and stable.

    PyTorch's semantics for every combination of the options: rows labelled ``ignore_index``
    add nothing; ``weight`` (C,) scales each row by its label's weight and, with label
    smoothing, each class's share of the smoothing term; ``label_smoothing`` s mixes the
    one-hot target with s / C of every class; 'mean' divides by the total weight of the
    counted rows (their number without ``weight``), NaN when every row is ignored.

    Shape:
        input (N, C), target (N,), weight (C,) -> () or (N,) for ``reduction="none"``.

    Raises:
        ValueError: labels outside [0, C) (other than ``ignore_index``), mismatched shapes,
            a label_smoothing outside [0, 1].
        TypeError: non-integer labels.
    """
    _loss.check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    return _loss.CrossEntropy.apply(
        input, _target_array(target), _weight_array(weight), ignore_index, reduction,
        label_smoothing,
    )


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of integer labels under (N, C) log-probabilities.

    ``weight`` and ``ignore_index`` as in :func:`cross_entropy` (PyTorch's semantics).

    Shape:
        input (N, C), target (N,), weight (C,) -> () or (N,) for ``reduction="none"``.
    """
    _loss.check_reduction("nll_loss", reduction)
    return _loss.NLLLoss.apply(
        input, _target_array(target), _weight_array(weight), ignore_index, reduction
    )


# ---- regularisation and normalisation (nn helper) ----
def dropout(x: Tensor, p: float = 0.5, training: bool = True, rng: Any = None,
            inplace: bool = False, *, generator: Any = None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by 1/(1-p).

    The expected value of every element is unchanged, so evaluation needs no rescaling; with
    ``training=False`` (or ``p=0``) the input is returned as is.

    Args:
        rng: a numpy Generator (advanced by the call) or a seed; ``generator`` is PyTorch's
            name for it (a ``gw.Generator`` too). Neither: the default generator.
        inplace: accepted for PyTorch's signature; the result is always a new tensor.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    uniform = _random.resolve(generator, rng, "dropout").random(x.shape, dtype=np.float32)
    mask = _dropout_kernels.dropout_mask(uniform, p, x.dtype)  # (uniform >= p) / (1 - p)
    return x * Tensor._make(mask, False, None)


def _stat_array(stat: Any) -> np.ndarray | None:
    return stat._data if isinstance(stat, Tensor) else stat


def batch_norm(
    x: Tensor,
    running_mean: Any,
    running_var: Any,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation over every axis but the channel axis 1, PyTorch's semantics.

    In training the batch mean and biased variance normalise the input, and the running
    statistics (if given; Tensors or arrays, updated in place) move towards the batch mean and
    the *unbiased* batch variance by ``momentum``. In evaluation the running statistics are used.

    Shape:
        x: (N, C) or (N, C, *); running stats, weight, bias: (C,) -> same as x
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, ...), got {x.shape}")
    channels = x.shape[1]
    running_mean, running_var = _stat_array(running_mean), _stat_array(running_var)
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != (channels,):
            raise ValueError(
                f"batch_norm: {name} has shape {tuple(value.shape)} but the input {x.shape} "
                f"has {channels} channels"
            )
    if training and x.size // max(channels, 1) <= 1:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, got input "
            f"of shape {x.shape}"
        )
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: evaluation (training=False) needs the running stats")
    return _norm.BatchNorm.apply(
        x, weight, bias, running_mean, running_var, training, momentum, eps
    )


def layer_norm(
    x: Tensor,
    normalized_shape: Any,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` axes of each sample, then scale and shift.

    Shape:
        x: (*, *normalized_shape); weight, bias: normalized_shape -> same as x
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise ValueError(
            f"layer_norm: input of shape {x.shape} does not end with normalized_shape {shape}"
        )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != shape:
            raise ValueError(
                f"layer_norm: {name} has shape {tuple(value.shape)}, expected {shape}"
            )
    return _norm.LayerNorm.apply(x, weight, bias, len(shape), eps)


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` picked by integer indices; repeated indices accumulate gradient.

    Args:
        padding_idx: a row (negative counts from the end) whose lookups send no gradient to
            ``weight``, as PyTorch's (it stays at its value, usually zeros, while training).

    Shape:
        input: (*) integers in [0, num_embeddings); weight: (num_embeddings, dim) -> (*, dim)

    Raises:
        TypeError: non-integer indices. IndexError: an index or padding_idx out of range.
    """
    indices = _target_array(input)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {indices.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num, dim), got shape {weight.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= weight.shape[0]):
        raise IndexError(
            f"embedding: indices must lie in [0, {weight.shape[0]}), got values from "
            f"{indices.min()} to {indices.max()}"
        )
    rows = weight[indices]
    if padding_idx is None:
        return rows
    padding_idx = _padding_row("embedding", padding_idx, weight.shape[0])
    padded = (indices == padding_idx)[..., None]  # (*, 1)
    if not padded.any():
        return rows
    # the padded positions take the row's value as a constant: no gradient reaches it
    constant = Tensor._make(np.where(padded, weight._data[indices], 0).astype(weight.dtype),
                            False, None)
    return rows * Tensor._make((~padded).astype(weight.dtype), False, None) + constant


def _padding_row(name: str, padding_idx: int, num_embeddings: int) -> int:
    """padding_idx as a row number (negative counts from the end, as PyTorch)."""
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise IndexError(
            f"{name}: padding_idx must lie in [-{num_embeddings}, {num_embeddings}), "
            f"got {padding_idx}")
    return padding_idx % num_embeddings


def l2_penalty(params: Any) -> Tensor:
    """sum over tensors of sum(w^2), differentiable (scale it by your weight-decay factor)."""
    total: Tensor | None = None
    for p in params:
        term = (p * p).sum()
        total = term if total is None else total + term
    return total if total is not None else Tensor(0.0)


def l1_penalty(params: Any) -> Tensor:
    """sum over tensors of sum(|w|), differentiable (scale it by your penalty factor)."""
    total: Tensor | None = None
    for p in params:
        term = p.abs().sum()
        total = term if total is None else total + term
    return total if total is not None else Tensor(0.0)


# ---- convolution and pooling (conv helper) ----
IntOrPair = int | tuple[int, int]


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> Tensor:
    """2-D cross-correlation (what deep learning calls convolution), PyTorch's semantics.

    Args:
        stride, padding, dilation: an int for both axes or a pair (height, width); padding adds
            zeros on both sides.

    Shape:
        x: (N, C_in, H, W), weight: (C_out, C_in, kh, kw), bias: (C_out,)
        -> (N, C_out, (H + 2 p - d (kh - 1) - 1) // s + 1, same for W)

    Example:
        >>> y = F.conv2d(x, weight, bias, padding=1)  # 3x3 kernel keeps H and W
    """
    stride = _spatial.pair("conv2d", "stride", stride, 1)
    padding = _spatial.pair("conv2d", "padding", padding, 0)
    dilation = _spatial.pair("conv2d", "dilation", dilation, 1)
    return _conv.Conv2d.apply(
        x, weight, bias, stride=stride, padding=padding, dilation=dilation
    )


def _pool_args(
    op: str, kernel_size: IntOrPair, stride: IntOrPair | None, padding: IntOrPair
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    kernel = _spatial.pair(op, "kernel_size", kernel_size, 1)
    strides = kernel if stride is None else _spatial.pair(op, "stride", stride, 1)
    return kernel, strides, _spatial.pair(op, "padding", padding, 0)


def max_pool2d(
    x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0
) -> Tensor:
    """Maximum over each window; ``stride`` defaults to ``kernel_size``; padding is -inf.

    In a tie the gradient goes to the first maximum of the window in row-major order, the
    element PyTorch picks.

    Shape:
        x: (N, C, H, W) -> (N, C, (H + 2 p - k) // s + 1, same for W)
    """
    kernel, strides, pads = _pool_args("max_pool2d", kernel_size, stride, padding)
    return _pool.MaxPool2d.apply(x, kernel, strides, pads)


def avg_pool2d(
    x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0
) -> Tensor:
    """Mean over each window; ``stride`` defaults to ``kernel_size``; padded zeros count.

    Shape:
        x: (N, C, H, W) -> (N, C, (H + 2 p - k) // s + 1, same for W)
    """
    kernel, strides, pads = _pool_args("avg_pool2d", kernel_size, stride, padding)
    return _pool.AvgPool2d.apply(x, kernel, strides, pads)


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """Integer class labels (any shape) to one-hot int64 rows: shape ``(*labels.shape, C)``,
    C = ``num_classes`` or, when -1, the largest label + 1 (``torch.nn.functional.one_hot``).

    Raises:
        TypeError: labels are not integers.
        ValueError: a negative label, or one >= num_classes (naming it).
    """
    labels = tensor._data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: labels must be an integer tensor, got {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"one_hot: labels must be non-negative, got {int(labels.min())}")
    classes = int(labels.max()) + 1 if num_classes == -1 and labels.size else num_classes
    if num_classes == -1 and not labels.size:
        raise ValueError("one_hot: cannot infer num_classes from empty labels")
    if labels.size and labels.max() >= classes:
        raise ValueError(f"one_hot: label {int(labels.max())} >= num_classes {classes}")
    out = np.zeros((*labels.shape, classes), dtype=np.int64)
    np.put_along_axis(out, labels[..., None].astype(np.int64), 1, axis=-1)
    return Tensor._make(out, False, None)
