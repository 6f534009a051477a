"""Stateless functions over tensors: activations, linear, losses (PyTorch's ``F``).

Activations and losses with a closed-form backward are primitives in ``autograd/ops``; the rest
are composed here from those primitives and need no backward of their own.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from gradwise.autograd import grad_mode as _grad_mode
from gradwise.autograd import random as _random
from gradwise.autograd._args import dim_arg
from gradwise.autograd.graph import name_node as _name_node
from gradwise.autograd.kernels import dropout as _dropout_kernels
from gradwise.autograd.ops import _spatial
from gradwise.autograd.ops import conv as _conv
from gradwise.autograd.ops import elementwise as _ew
from gradwise.autograd.ops import linalg as _linalg
from gradwise.autograd.ops import loss as _loss
from gradwise.autograd.ops import norm as _norm
from gradwise.autograd.ops import pool as _pool
from gradwise.autograd.ops import pool_nd as _pool_nd
from gradwise.autograd.ops import reduce as _reduce
from gradwise.autograd.tensor import Tensor, _as_array, _dtype_name


# ---- activations ------------------------------------------------------------------------------
def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """max(0, x) elementwise, as ``torch.nn.functional.relu``; the gradient at 0 is 0, as torch's.

    ``inplace`` is accepted for torch's signature; the result is always a new tensor and ``x``
    is left unchanged (docs/PORTING.md; the same holds for every activation's ``inplace``).
    """
    return _ew.ReLU.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """max(0, x) + negative_slope * min(0, x) (Maas et al. 2013), as ``torch``'s; shape kept.
    ``inplace``: accepted, result always new (see :func:`relu`)."""
    return _ew.LeakyReLU.apply(x, negative_slope)


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """ELU: x where x > 0, else alpha * (exp(x) - 1) (Clevert et al. 2015), as ``torch``'s.
    ``inplace``: accepted, result always new (see :func:`relu`).

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


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (SiLU / swish, Elfwing et al. 2017), as ``torch.nn.functional.silu``.
    ``inplace``: accepted, result always new (see :func:`relu`)."""
    return _ew.SiLU.apply(x)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clamped into [min_val, max_val]; gradient 1 strictly inside, 0 at the bounds and
    beyond (torch's ``hardtanh_backward``; ``clamp`` keeps the bounds), NaN passes it on.
    ``inplace``: accepted, result always new (see :func:`relu`).

    Raises:
        ValueError: ``min_val`` > ``max_val``.
    """
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return _ew.Hardtanh.apply(x, min_val, max_val)


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6) (MobileNet's activation), ``hardtanh(x, 0, 6)``.
    ``inplace``: accepted, result always new (see :func:`relu`)."""
    return hardtanh(x, 0.0, 6.0)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """``input / max(||input||_p over dim, eps)``, as ``torch.nn.functional.normalize``.

    Shape: any -> same; the norm is taken over ``dim`` and broadcast back.
    """
    return input / input.norm(p, dim=dim, keepdim=True).clamp_min(eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between x1 and x2 along ``dim``: both broadcast to one shape first,
    each divided by ``max(||x||_2, eps)``, then summed products (PyTorch's formula since 1.12,
    aten ``cosine_similarity``). As there, the clamp to ``eps`` is applied to the norm's value
    only (under no_grad): the gradient flows through the unclamped norm.

    Shape: x1 and x2 broadcastable -> their broadcast shape without ``dim`` (``dim`` counts in
    the broadcast shape).

    Raises:
        ValueError: the shapes do not broadcast, or ``dim`` is out of range.
    """
    from gradwise.autograd.functional import promoted
    from gradwise.autograd.namespace import broadcast_tensors

    x1, x2 = broadcast_tensors(*promoted(x1, x2))
    norms = []
    for x in (x1, x2):
        norm = x.norm(2.0, dim=dim, keepdim=True).clone()  # its own memory, clamped below
        with _grad_mode.no_grad():
            norm.clamp_(min=eps)
        norms.append(norm)
    return ((x1 / norms[0]) * (x2 / norms[1])).sum(dim)


def _pad_entries(pad: Any) -> tuple[int, ...]:
    """``pad`` as a tuple of ints, by torch's rule for an ``int[]`` argument: Python and NumPy
    ints and integer 0-d tensors pass (through ``__index__``); a float (even 1.0), a bool or a
    string raises torch's TypeError."""
    entries = []
    for position, entry in enumerate(pad):
        if isinstance(entry, bool) or not hasattr(type(entry), "__index__"):
            kind = type(entry)
            name = kind.__name__ if kind.__module__ == "builtins" else (
                f"{kind.__module__}.{kind.__name__}")
            raise TypeError(f"pad(): argument 'pad' (position 2) must be tuple of ints, but "
                            f"found element of type {name} at pos {position}")
        entries.append(int(entry.__index__()))
    return tuple(entries)


def pad(input: Tensor, pad: Any, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad, PyTorch's order: ``pad`` is (left, right) for the last dim, then (top, bottom) for
    the one before, and so on.

    Modes (torch's): "constant" fills ``value``; "reflect" mirrors without repeating the edge
    (width < size); "replicate" repeats the edge; "circular" wraps around (width <= size). The
    non-constant modes pick input elements by index, so the gradient of a padded element flows
    back to the element it copies (accumulated), as in torch.

    ``value=None`` (the default, as torch's) fills 0 in the input's dtype; a value is cast to
    the input's dtype (2.5 pads an int tensor with 2, as torch).

    Raises:
        TypeError: a ``pad`` entry that is not an int (1.5, 1.0, True: torch's message).
        ValueError: an odd-length ``pad``, more pairs than dims, a negative width, an unknown
            mode, or a reflect/circular width too large for the dim.
        RuntimeError: a non-zero ``value`` with a non-constant mode (torch's message).
        NotImplementedError: a non-constant mode whose pad length does not fit the input's
            dims (torch's rule and message: 2 pads a 2-D/3-D input, 4 a 3-D/4-D, 6 a 4-D/5-D).
    """
    pad = _pad_entries(pad)
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ValueError(
            f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if mode != "constant" and value is not None and value != 0:
        raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
    if value is None:
        value = 0
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: expects pairs for at most {input.ndim} dims, got {pad}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding (cropping) is not supported, got {pad}")
    if mode != "constant":
        # torch pads by index over the last 1, 2 or 3 dims of a batched or unbatched input only
        if input.ndim not in {len(pad) // 2 + 1, len(pad) // 2 + 2} or len(pad) > 6:
            raise NotImplementedError(
                f"Padding size {len(pad)} is not supported for {input.ndim}D input tensor.\n"
                "Supported combinations for non-constant padding:\n"
                "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
                "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
                "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
        return _pad_by_index(input, pad, mode)
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    from gradwise.autograd.functional import pad as _pad_widths
    return _pad_widths(input, tuple(widths), value)


def _as_tensor(x: Any) -> Tensor:
    """An array-like argument as a constant Tensor (the ops' own rule for constants)."""
    return x if isinstance(x, Tensor) else Tensor._make(_as_array(x), False, None)


def softmax(x: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None, *,
            axis: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim`` (NumPy alias ``axis``; default the last axis);
    ``dtype``: x is cast to it first (a recorded cast), as ``torch.nn.functional.softmax``.

    PyTorch picks an implicit dim (with a warning) when none is given; gradwise always uses -1
    (docs/PORTING.md). ``_stacklevel`` is torch's warning detail, accepted and unused.
    """
    return _as_tensor(x).softmax(dim_arg("softmax", dim, axis, -1), dtype)


def log_softmax(x: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None, *,
                axis: int | None = None) -> Tensor:
    """log(softmax(x)) along ``dim`` (NumPy alias ``axis``; default the last axis), stably;
    ``dtype`` as :func:`softmax`."""
    return _as_tensor(x).log_softmax(dim_arg("log_softmax", dim, axis, -1), dtype)


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


def _reduce_loss(name: str, loss: Tensor, reduction: str) -> Tensor:
    """The loss reduced as ``reduction`` says; a 'mean' over an empty batch raises the
    ValueError docs/NUMERICS.md documents, naming the loss (``_loss.check_not_empty``)."""
    if reduction == "mean":
        _loss.check_not_empty(name, loss._data.size, reduction)
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error: mean((input - target)^2)."""
    _loss.check_reduction("mse_loss", reduction)
    _same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce_loss("mse_loss", diff * diff, reduction)


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean absolute error: mean(|input - target|)."""
    _loss.check_reduction("l1_loss", reduction)
    _same_shape("l1_loss", input, target)
    return _reduce_loss("l1_loss", (input - target).abs(), reduction)


def _weight_array(op: str, name: str, weight: Any) -> np.ndarray | None:
    """A weight the loss does not differentiate (class weights, ``pos_weight``, running
    statistics) as a constant array; None stays None.

    Raises:
        RuntimeError: ``weight`` is a Tensor that requires grad while grad mode is on. Read as
            a constant it would get a silent zero gradient; torch refuses it the same way ("not
            differentiable with respect to argument").
    """
    if weight is None:
        return None
    if isinstance(weight, Tensor) and weight.requires_grad and _grad_mode.is_grad_enabled():
        raise RuntimeError(f"{op}: not differentiable with respect to argument '{name}', which "
                           f"requires grad (torch refuses it too); pass {name}.detach()")
    return _target_array(weight)


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
        return _reduce_loss("smooth_l1_loss", size, reduction)
    from gradwise.autograd.functional import where
    # NaN takes the quadratic branch (NaN >= beta is False), as torch's backward (x / beta
    # there) does: a NaN input gets a NaN gradient, not abs's 0. The mask is a Tensor
    # comparison, so onnx.export writes it as one (a mask of size._data would be a constant).
    far = size >= beta
    # the quadratic branch sees 0 where it is not taken: its zero gradient times an infinite
    # difference would be NaN (torch gives +-1 at d = +-inf)
    quiet = where(far, np.zeros((), diff._data.dtype), diff)
    loss = where(far, size - 0.5 * beta, 0.5 * quiet * quiet / beta)
    return _reduce_loss("smooth_l1_loss", loss, reduction)


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
    far = size >= delta  # NaN on the quadratic side; a Tensor comparison (smooth_l1_loss)
    quiet = where(far, np.zeros((), diff._data.dtype), diff)  # as in smooth_l1_loss
    loss = where(far, delta * (size - 0.5 * delta), 0.5 * quiet * quiet)
    return _reduce_loss("huber_loss", loss, reduction)


def binary_cross_entropy(
    input: Tensor, target: Any, weight: Any = None, reduction: str = "mean"
) -> Tensor:
    """BCE on probabilities in [0, 1]: ``-weight (y log p + (1 - y) log(1 - p))``.

    Each log is clamped at -100 as in PyTorch, so p = 0 or 1 gives a finite loss.

    Args:
        weight: a rescaling weight broadcastable to the input (a constant: one that requires
            grad raises RuntimeError, as in torch).

    Shape:
        input and target alike -> () or the input's shape for ``reduction="none"``.
    """
    _loss.check_reduction("binary_cross_entropy", reduction)
    _same_shape("binary_cross_entropy", input, target)
    target = _float_target(target, input)
    return _loss.BCE.apply(input, target, reduction,
                           _weight_array("binary_cross_entropy", "weight", weight))


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
            Both weights are constants: one that requires grad raises RuntimeError, as in torch.

    Shape:
        input and target alike -> () or the input's shape for ``reduction="none"``.
    """
    _loss.check_reduction("binary_cross_entropy_with_logits", reduction)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    target = _float_target(target, input)
    return _loss.BCEWithLogits.apply(
        input, target, reduction,
        _weight_array("binary_cross_entropy_with_logits", "weight", weight),
        _weight_array("binary_cross_entropy_with_logits", "pos_weight", pos_weight),
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
        input (N, C), target (N,), weight (C,) -> () or (N,) for ``reduction="none"``; also
        torch's other forms: (N, C, d1, ...) with (N, d1, ...), class probabilities shaped as
        the input, and unbatched (C,) logits with a () label or (C,) probabilities -> ().

    Raises:
        ValueError: labels outside [0, C) (other than ``ignore_index``), mismatched shapes,
            a label_smoothing outside [0, 1].
        RuntimeError: labels not int64/uint8, an integer target shaped as the input (class
            probabilities must be floating), both with torch's message; a ``weight`` that
            requires grad (torch's rule: it is not differentiated).
    """
    _loss.check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    x = _as_tensor(input)
    labels = target._data if isinstance(target, Tensor) else np.asarray(target)
    if x.ndim == 1 and (labels.ndim == 0 or labels.shape == tuple(x.shape)):
        # unbatched (C,) logits with a () class index or (C,) probabilities (torch's form
        # without a batch): a batch of one, and the () loss of that row
        one = (target.unsqueeze(0) if isinstance(target, Tensor) and labels.ndim
               else labels.reshape(1, *labels.shape))
        loss = cross_entropy(x.unsqueeze(0), one, weight, ignore_index, reduction,
                             label_smoothing)
        return loss.reshape(()) if reduction == "none" else loss
    if labels.dtype.kind == "f" and labels.shape == tuple(x.shape) and x.ndim >= 2:
        # class probabilities (torch's float-target form); float labels of another shape are
        # refused below as non-integer class indices
        return _soft_cross_entropy(x, target, weight, reduction, label_smoothing)
    if labels.dtype.kind in "iub" and labels.shape == tuple(x.shape) and x.ndim >= 2:
        from gradwise.autograd.tensor import _dtype_name
        raise RuntimeError("cross_entropy: Expected floating point type for target with class "
                           f"probabilities, got {_dtype_name(labels.dtype)}")
    if x.ndim > 2:
        # (N, C, d1, ...) logits with (N, d1, ...) labels: the class dim moved last, flattened
        expected = (x.shape[0], *x.shape[2:])
        if labels.shape != expected:
            raise ValueError(f"cross_entropy: target of shape {labels.shape} does not fit "
                             f"input {tuple(x.shape)} (expected {expected})")
        flat = x.permute(0, *range(2, x.ndim), 1).reshape(-1, x.shape[1])  # (N*d..., C)
        loss = _loss.CrossEntropy.apply(
            flat, labels.reshape(-1), _weight_array("cross_entropy", "weight", weight),
            ignore_index, reduction, label_smoothing)
        return loss.reshape(labels.shape) if reduction == "none" else loss
    return _loss.CrossEntropy.apply(
        x, labels, _weight_array("cross_entropy", "weight", weight),
        ignore_index, reduction, label_smoothing,
    )


def _soft_cross_entropy(x: Tensor, target: Any, weight: Any, reduction: str,
                        label_smoothing: float) -> Tensor:
    """Cross-entropy against class probabilities (torch's float-target form): per element
    ``-sum_c w_c t_c log softmax(x)_c`` over the class dim 1, with ``t`` smoothed to
    ``t (1 - s) + s / C``; 'mean' divides by the number of elements (not by the weights), as
    torch. The target is differentiated when it requires grad, as in torch."""
    probabilities = _float_target(target, x)
    classes = x.shape[1]
    if label_smoothing:
        probabilities = probabilities * (1.0 - label_smoothing) + label_smoothing / classes
    weights = _weight_array("cross_entropy", "weight", weight)
    terms = x.log_softmax(1) * probabilities  # (N, C, d...)
    if weights is not None:
        terms = terms * weights.astype(x._data.dtype).reshape((1, classes) + (1,) * (x.ndim - 2))
    per_element = -terms.sum(1)  # (N, d...)
    if reduction == "none":
        return per_element
    return per_element.sum() if reduction == "sum" else per_element.mean()


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of integer labels under (N, C) log-probabilities.

    ``weight`` and ``ignore_index`` as in :func:`cross_entropy` (PyTorch's semantics; a
    ``weight`` that requires grad raises RuntimeError).

    Shape:
        input (N, C), target (N,), weight (C,) -> () or (N,) for ``reduction="none"``;
        unbatched (C,) with a () label -> () (torch's form without a batch).
    """
    _loss.check_reduction("nll_loss", reduction)
    labels = _target_array(target)
    if getattr(input, "ndim", 2) == 1 and np.ndim(labels) == 0:
        loss = nll_loss(_as_tensor(input).unsqueeze(0), np.reshape(labels, (1,)), weight,
                        ignore_index, reduction)
        return loss.reshape(()) if reduction == "none" else loss
    return _loss.NLLLoss.apply(
        input, labels, _weight_array("nll_loss", "weight", weight),
        ignore_index, reduction,
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


def _stat_array(op: str, name: str, stat: Any) -> np.ndarray | None:
    """Running statistics as the arrays updated in place (see :func:`_weight_array` for the
    RuntimeError on a Tensor that requires grad)."""
    return _weight_array(op, name, stat) if isinstance(stat, Tensor) else stat



def _check_norm_dtypes(op: str, x: Any, *others: Any, mixed_first: bool = False) -> None:
    """torch's dtype rules for the normalisations: an integer input is refused, and the
    input, weight, bias and running statistics (Tensors) must share one floating dtype (no
    promotion). Running statistics given as NumPy arrays, a gradwise extension, are cast.

    Raises:
        NotImplementedError: an integer or bool input (torch: '"batch_norm" not implemented
            for 'Long''). RuntimeError: mixed dtypes (torch: "mixed dtype (CPU): all inputs
            must share same datatype.").
    """
    dtype = x._data.dtype if isinstance(x, Tensor) else np.asarray(x).dtype

    def check_integer() -> None:
        if dtype.kind not in "f":
            raise NotImplementedError(f"{op}: not implemented for dtype {dtype} (torch: "
                                      f"\"{op}\" not implemented for '{_dtype_name(dtype)}'); "
                                      "cast the input: x.float()")

    if not mixed_first:  # batch_norm's order in torch; layer/group norm check mixing first
        check_integer()
    for other in others:
        if not isinstance(other, Tensor):
            continue  # None, or NumPy running statistics: constants, cast as before (extension)
        other_dtype = other._data.dtype
        if other_dtype != dtype:
            raise RuntimeError(f"{op}: mixed dtype (CPU): all inputs must share same datatype. "
                               f"(input {dtype}, parameters {other_dtype}; cast the input: "
                               "x.to(weight.dtype))")
    check_integer()


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

    Raises:
        RuntimeError: a running statistic that requires grad (torch's rule: they are not
            differentiated).
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, ...), got {x.shape}")
    channels = x.shape[1]
    running_mean = _stat_array("batch_norm", "running_mean", running_mean)
    running_var = _stat_array("batch_norm", "running_var", running_var)
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != (channels,):
            raise ValueError(
                f"batch_norm: {name} has shape {tuple(value.shape)} but the input {x.shape} "
                f"has {channels} channels"
            )
    _check_norm_dtypes("batch_norm", x, weight, bias, running_mean, running_var)
    if x.size == 0:
        # an empty batch: torch returns the empty (N, C, *) output and leaves the running
        # statistics as they are (issue 14); the product keeps the graph (zero gradients)
        out = x * 1.0
        view = (1, channels) + (1,) * (x.ndim - 2)
        if weight is not None:
            out = out * weight.reshape(view)
        if bias is not None:
            out = out + bias.reshape(view)
        return out
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
    _check_norm_dtypes("layer_norm", x, weight, bias, mixed_first=True)
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != shape:
            raise ValueError(
                f"layer_norm: {name} has shape {tuple(value.shape)}, expected {shape}"
            )
    return _norm.LayerNorm.apply(x, weight, bias, len(shape), eps)


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0) -> Tensor:
    """Rows of ``weight`` picked by integer indices; repeated indices accumulate gradient.

    Args:
        padding_idx: a row (negative counts from the end) whose lookups send no gradient to
            ``weight``, as PyTorch's (it stays at its value, usually zeros, while training).
        max_norm: rows looked up whose ``norm_type`` norm exceeds it are first rescaled in
            place to that norm (torch's embedding_renorm_: a change to ``weight`` outside the
            graph).

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
    if max_norm is not None:
        _renorm_rows(weight, indices.reshape(-1), max_norm, norm_type)
    rows = weight[indices]
    if padding_idx is None:
        return rows
    padding_idx = _padding_row("embedding", padding_idx, weight.shape[0])
    padded = (indices == padding_idx)[..., None]  # (*, 1)
    if not padded.any():
        return rows
    # the padded positions take the row's value as a constant: no gradient reaches it (a
    # selection, not a product with a 0/1 mask, under which an inf gradient would give NaN)
    constant = Tensor._make(weight._data[indices], False, None)
    return _where(padded, constant, rows)


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


def _convolution_node(rank: int) -> Any:
    """Name a batched result's node ``ConvolutionBackward0``, the one node torch records for
    every convolution. gradwise builds conv1d, conv3d, the transposed and the grouped forms
    from conv2d and shape ops, so the node a user sees is the last of several
    (docs/PORTING.md). An unbatched input keeps its final ``SqueezeBackward1``, as torch."""
    def decorate(function: Any) -> Any:
        @functools.wraps(function)
        def convolution(x: Any, *args: Any, **kwargs: Any) -> Tensor:
            result = function(x, *args, **kwargs)
            if getattr(x, "ndim", rank + 2) == rank + 2:
                _name_node(result, "Convolution")
            return result
        return convolution
    return decorate


@_convolution_node(2)
def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair | str = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation (what deep learning calls convolution), as torch.nn.functional.conv2d.

    Args:
        stride, dilation: an int for both axes or a pair (height, width).
        padding: an int or pair (zeros on both sides), ``"valid"`` (none) or ``"same"`` (output
            as large as the input; stride 1 only; an odd total puts the extra zero at the
            bottom/right, as torch).
        groups: split the input channels into this many groups, each convolved with its own
            ``C_out / groups`` filters (``groups = C_in``: depthwise); computed as one
            convolution per group, concatenated.

    Shape:
        x: (N, C_in, H, W) or unbatched (C_in, H, W), weight: (C_out, C_in / groups, kh, kw),
        bias: (C_out,) -> (N, C_out, (H + 2 p - d (kh - 1) - 1) // s + 1, same for W)

    Raises:
        ValueError: channels not divisible by ``groups``, a weight of the wrong shape, an
            unknown padding string, or ``"same"`` with a stride other than 1.

    Example:
        >>> y = F.conv2d(x, weight, bias, padding=1)  # 3x3 kernel keeps H and W
    """
    if isinstance(x, Tensor) and x.ndim == 3:  # unbatched, as torch
        return conv2d(x.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    stride = _spatial.pair("conv2d", "stride", stride, 1)
    dilation = _spatial.pair("conv2d", "dilation", dilation, 1)
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got "
                             f"{padding!r}")
        if padding == "same":
            if stride != (1, 1):
                raise ValueError("conv2d: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride}), as in torch")
            totals = [d * (k - 1) for d, k in zip(dilation, tuple(weight.shape[2:]), strict=True)]
            if any(t % 2 for t in totals):  # torch pads the extra zero after (bottom/right)
                x = pad(x, (totals[1] // 2, totals[1] - totals[1] // 2,
                            totals[0] // 2, totals[0] - totals[0] // 2))
                padding = (0, 0)
            else:
                padding = (totals[0] // 2, totals[1] // 2)
        else:
            padding = (0, 0)
    padding = _spatial.pair("conv2d", "padding", padding, 0)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    if groups == 1:
        return _conv.Conv2d.apply(
            x, weight, bias, stride=stride, padding=padding, dilation=dilation
        )
    c_in, c_out = int(x.shape[1]), int(weight.shape[0])
    if c_in % groups or c_out % groups or int(weight.shape[1]) * groups != c_in:
        raise ValueError(
            f"conv2d: groups={groups} needs input channels and output channels divisible by it "
            f"and a weight of shape (C_out, C_in / groups, kh, kw); got input "
            f"{tuple(x.shape)} and weight {tuple(weight.shape)}")
    size_in, size_out = c_in // groups, c_out // groups
    parts = [
        _conv.Conv2d.apply(x[:, g * size_in:(g + 1) * size_in],
                           weight[g * size_out:(g + 1) * size_out],
                           None if bias is None else bias[g * size_out:(g + 1) * size_out],
                           stride=stride, padding=padding, dilation=dilation)
        for g in range(groups)
    ]
    from gradwise.autograd.functional import cat

    return cat(parts, dim=1)


# ---- pooling with torch's options, 1-d to 3-d (issue 11 A) ------------------------------------
#: each pooling rank's input layouts (batched or not), for error messages
_POOL_LAYOUTS = {1: "(N, C, L) or (C, L)", 2: "(N, C, H, W) or (C, H, W)",
                 3: "(N, C, D, H, W) or (C, D, H, W)"}


def _sizes(op: str, name: str, value: Any, rank: int, minimum: int = 1) -> tuple[int, ...]:
    """An int, or a tuple of one or ``rank`` ints (torch's _single/_pair/_triple), as ``rank``
    ints, each at least ``minimum``.

    Raises:
        TypeError: not an int or such a tuple (bools are refused).
        ValueError: a value below ``minimum``.
    """
    if isinstance(value, tuple | list) and len(value) in (1, rank):
        values = tuple(value) * (rank if len(value) == 1 else 1)
    else:
        values = (value,) * rank
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        kind = "a pair of ints" if rank == 2 else f"a tuple of {rank} ints"
        raise TypeError(f"{op}: {name} must be an int or {kind}, got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return tuple(int(v) for v in values)


def _pool_arguments(op: str, rank: int, x: Any, kernel_size: Any, stride: Any, padding: Any,
                    dilation: Any = 1) -> tuple[tuple[int, ...], ...]:
    """Check the input's rank and parse kernel_size, stride (None or [] -> the kernel, as
    torch), padding and dilation into ``rank``-tuples."""
    _check_rank(op, x, (rank + 1, rank + 2), _POOL_LAYOUTS[rank])
    kernel = _sizes(op, "kernel_size", kernel_size, rank)
    no_stride = stride is None or (isinstance(stride, tuple | list) and not len(stride))
    strides = kernel if no_stride else _sizes(op, "stride", stride, rank)
    return kernel, strides, _sizes(op, "padding", padding, rank, 0), \
        _sizes(op, "dilation", dilation, rank)


def _ceil_changes_output(spatial: tuple[int, ...], kernel: tuple[int, ...],
                         strides: tuple[int, ...], pads: tuple[int, ...],
                         dilations: tuple[int, ...]) -> bool:
    """Whether ceil_mode gives another output size than floor mode (else it changes nothing)."""
    return (_pool_nd.output_sizes(spatial, kernel, strides, pads, dilations, True)
            != _pool_nd.output_sizes(spatial, kernel, strides, pads, dilations, False))


def _on_2d_kernels(function: Any, x: Tensor, kernel: tuple[int, ...], strides: tuple[int, ...],
                   pads: tuple[int, ...]) -> Tensor:
    """``function(x, kernel, stride, padding)``, a 2-d pooling op of the NCHW fast path, on a
    2-d pool's (C, H, W) / (N, C, H, W), or on a 1-d pool's (C, L) / (N, C, L) as a height-1
    image."""
    one_d = len(kernel) == 1
    if one_d:
        x = x.unsqueeze(-2)  # (..., C, 1, L)
        kernel, strides, pads = (1, *kernel), (1, *strides), (0, *pads)
    batched = x.ndim == 4
    out = function(x if batched else x.unsqueeze(0), kernel, strides, pads)
    out = out if batched else out.squeeze(0)
    return out.squeeze(-2) if one_d else out


def _max_pool(op: str, rank: int, x: Tensor, kernel_size: Any, stride: Any, padding: Any,
              dilation: Any, ceil_mode: bool, return_indices: bool) -> Any:
    """Max pooling of any rank with torch's options (see ``autograd/ops/pool_nd.py``)."""
    kernel, strides, pads, dilations = _pool_arguments(op, rank, x, kernel_size, stride,
                                                       padding, dilation)
    spatial = tuple(x.shape[-rank:])
    # torch's checks and messages, named after this op, whichever path runs
    _pool_nd.pool_output_sizes(op, spatial, kernel, strides, pads, dilations, bool(ceil_mode))
    ceil_mode = bool(ceil_mode) and _ceil_changes_output(spatial, kernel, strides, pads,
                                                         dilations)
    if rank < 3 and not return_indices and not ceil_mode and set(dilations) == {1}:
        # the everyday call: the NHWC ops and their numba kernels
        return _on_2d_kernels(_pool.MaxPool2d.apply, x, kernel, strides, pads)
    picks: list[np.ndarray] = []
    values = _pool_nd.MaxPoolNd.apply(x, kernel, strides, pads, dilations, ceil_mode, op,
                                      indices_out=picks)
    if not return_indices:
        return values
    return values, Tensor._make(picks[0], False, None)


def max_pool1d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Maximum over each window of (N, C, L) or (C, L), as torch.nn.functional.max_pool1d.

    Args:
        kernel_size, stride (default: kernel_size), padding (-inf, at most half the kernel),
        dilation: ints (or 1-tuples).
        ceil_mode: round the output length up (the last window must start inside the input or
            the left padding, as torch).
        return_indices: also return the index along L of each maximum (for max_unpool1d).

    Shape: (N, C, L) -> (N, C, L_out), L_out = (L + 2 p - d (k - 1) - 1) // s + 1 (rounded up
    with ceil_mode)

    Raises:
        ValueError: another input rank, padding above kernel_size // 2, an empty output.
    """
    return _max_pool("max_pool1d", 1, x, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(
    x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0,
    dilation: IntOrPair = 1, ceil_mode: bool = False, return_indices: bool = False,
) -> Any:
    """Maximum over each window, as torch.nn.functional.max_pool2d; padding is -inf.

    In a tie the gradient goes to the first maximum of the window in row-major order, a window
    holding NaN gives NaN and sends its gradient to the last NaN (torch's CPU rule).
    ``return_indices``: also the flat H*W index of each maximum in its (sample, channel) plane,
    as torch returns for ``max_unpool2d``. The default options run the NHWC fast path (numba
    kernels); dilation, an effective ceil_mode and return_indices run the N-d reference op.

    Args:
        kernel_size, stride (default: kernel_size), padding (at most half the kernel),
        dilation: an int or an (h, w) pair each.
        ceil_mode: round the output size up (torch's rule for the last window).

    Shape:
        x: (N, C, H, W) or (C, H, W) -> (..., (H + 2 p - d (k - 1) - 1) // s + 1, same for W)

    Raises:
        ValueError: another input rank, padding above kernel // 2, an empty output.
    """
    return _max_pool("max_pool2d", 2, x, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool3d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Maximum over each (kd, kh, kw) window, as torch.nn.functional.max_pool3d (torch's tie,
    NaN and padding rules as :func:`max_pool2d`); indices are flat D*H*W positions.

    Shape: (N, C, D, H, W) or (C, D, H, W) -> (..., D_out, H_out, W_out), each
    (L + 2 p - d (k - 1) - 1) // s + 1 (rounded up with ceil_mode)

    Raises:
        ValueError: another input rank, padding above kernel // 2, an empty output.
    """
    return _max_pool("max_pool3d", 3, x, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def _avg_pool(op: str, rank: int, x: Tensor, kernel_size: Any, stride: Any, padding: Any,
              ceil_mode: bool, count_include_pad: bool, divisor_override: Any) -> Tensor:
    """Average pooling of any rank with torch's options (see ``autograd/ops/pool_nd.py``)."""
    kernel, strides, pads, ones = _pool_arguments(op, rank, x, kernel_size, stride, padding)
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override,
                                                                int | np.integer):
            raise TypeError(f"{op}: divisor_override must be an int, got {divisor_override!r}")
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor must be not zero (divisor_override=0)")
    _pool_nd.pool_output_sizes(op, tuple(x.shape[-rank:]), kernel, strides, pads, ones,
                               bool(ceil_mode))  # torch's checks, named after this op
    ceil_mode = bool(ceil_mode) and _ceil_changes_output(tuple(x.shape[-rank:]), kernel,
                                                         strides, pads, ones)
    if rank == 3 and any(n < k for n, k in zip(x.shape[-3:], kernel, strict=True)):
        # torch's avg_pool3d alone checks the unpadded input against the kernel
        raise ValueError(f"{op}: input image {tuple(x.shape[-3:])} smaller than kernel size "
                         f"{kernel}")
    if (rank < 3 and not ceil_mode and divisor_override is None
            and (count_include_pad or not any(pads))):
        return _on_2d_kernels(_pool.AvgPool2d.apply, x, kernel, strides, pads)
    return _pool_nd.AvgPoolNd.apply(x, kernel, strides, pads, bool(ceil_mode),
                                    bool(count_include_pad), divisor_override, op)


def avg_pool1d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over each window of (N, C, L) or (C, L), as torch.nn.functional.avg_pool1d.

    Args:
        ceil_mode: round the output length up (torch's rule for the last window).
        count_include_pad: divide by the window's size with its padding (default) or by its
            elements inside the input.

    Shape: (N, C, L) -> (N, C, (L + 2 p - k) // s + 1)

    Raises:
        ValueError: another input rank, padding above kernel_size // 2, an empty output.
    """
    return _avg_pool("avg_pool1d", 1, x, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


def avg_pool2d(
    x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0,
    ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None,
) -> Tensor:
    """Mean over each window, as torch.nn.functional.avg_pool2d; ``stride`` defaults to
    ``kernel_size``.

    Args:
        ceil_mode: round the output size up; a last window hanging past the right padding
            divides only by its part up to the padding's end (torch's rule).
        count_include_pad: padded zeros count in the divisor (default) or not.
        divisor_override: divide every window's sum by this int instead.

    Shape:
        x: (N, C, H, W) or (C, H, W) -> (..., (H + 2 p - k) // s + 1, same for W)

    Raises:
        ValueError: another input rank, padding above kernel // 2, an empty output,
            divisor_override=0.
    """
    return _avg_pool("avg_pool2d", 2, x, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool3d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean over each (kd, kh, kw) window, as torch.nn.functional.avg_pool3d (options as
    :func:`avg_pool2d`).

    Shape: (N, C, D, H, W) or (C, D, H, W) -> (..., (D + 2 p - k) // s + 1, ...)

    Raises:
        ValueError: another input rank, padding above kernel // 2, an empty output,
            divisor_override=0.
    """
    return _avg_pool("avg_pool3d", 3, x, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def _lp_pool(op: str, rank: int, x: Tensor, norm_type: float, kernel_size: Any, stride: Any,
             ceil_mode: bool) -> Tensor:
    """torch's lp_pool: ``(sign(a) relu(|a|) * prod(kernel)) ** (1 / p)`` with ``a`` the
    average pool of ``x ** p`` (padding 0, the given ceil_mode); written as torch writes it so
    the gradient at a zero window is torch's too."""
    kernel = _sizes(op, "kernel_size", kernel_size, rank)
    pooled = _avg_pool(op, rank, x ** norm_type, kernel, stride, 0, ceil_mode, True, None)
    return (pooled.sign() * relu(pooled.abs()) * float(np.prod(kernel))) ** (1.0 / norm_type)


def lp_pool1d(x: Tensor, norm_type: float, kernel_size: Any, stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    """Power-average pooling over the last dim of (N, C, L): ``(sum of x^p over the
    window)^(1/p)`` (torch.nn.functional.lp_pool1d; p = 1 is sum pooling, large p tends to max).

    Shape: (N, C, L) -> (N, C, (L - k) // s + 1) (rounded up with ceil_mode)
    """
    return _lp_pool("lp_pool1d", 1, x, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(x: Tensor, norm_type: float, kernel_size: Any, stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    """Power-average pooling: ``(sum over the window of x^p)^(1/p)`` (torch's lp_pool2d: the
    window average times its size, so p = 1 is sum pooling and large p tends to max pooling).

    Shape: (N, C, H, W) -> (N, C, (H - kh) // s + 1, ...) (rounded up with ceil_mode)
    """
    return _lp_pool("lp_pool2d", 2, x, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(x: Tensor, norm_type: float, kernel_size: Any, stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    """Power-average pooling over (kd, kh, kw) windows (torch.nn.functional.lp_pool3d).

    Shape: (N, C, D, H, W) -> (N, C, (D - kd) // s + 1, ...) (rounded up with ceil_mode)
    """
    return _lp_pool("lp_pool3d", 3, x, norm_type, kernel_size, stride, ceil_mode)


def _max_unpool(op: str, rank: int, x: Tensor, indices: Any, kernel_size: Any, stride: Any,
                padding: Any, output_size: Any) -> Tensor:
    """Values put back at their flat indices in zeros of torch's unpooled size.

    The size is ``(l - 1) s - 2 p + k`` per dim, or ``output_size`` (its last ``rank``
    entries, or all when it has ``rank`` of them), which must lie strictly within a stride of
    that default (torch's rule)."""
    kernel, strides, pads, _ = _pool_arguments(op, rank, x, kernel_size, stride, padding)
    positions = _target_array(indices)
    if positions.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers (int64), got dtype {positions.dtype}")
    positions = positions.astype(np.int64)
    if tuple(positions.shape) != tuple(x.shape):
        raise ValueError(f"{op}: indices {positions.shape} must have the input's shape "
                         f"{tuple(x.shape)}")
    default = tuple((x.shape[-rank + d] - 1) * strides[d] - 2 * pads[d] + kernel[d]
                    for d in range(rank))
    if output_size is None:
        size = default
    else:
        wanted = tuple(int(n) for n in output_size)
        if len(wanted) == rank + 2:
            wanted = wanted[2:]
        if len(wanted) != rank:
            raise ValueError(f"{op}: output_size should be a sequence containing {rank} or "
                             f"{rank + 2} elements, but it has a length of '{len(wanted)}'")
        for d in range(rank):
            low, high = default[d] - strides[d], default[d] + strides[d]
            if not low < wanted[d] < high:
                raise ValueError(f"{op}: invalid output_size {tuple(output_size)} (dim {d} must "
                                 f"be between {low} and {high})")
        size = wanted
    return _unpool(x, positions, size, op)


def _unpool(x: Tensor, positions: np.ndarray, size: tuple[int, ...], name: str) -> Tensor:
    plane = int(np.prod(size))
    if positions.size and (positions.min() < 0 or positions.max() >= plane):
        raise ValueError(f"{name}: an index lies outside the output of size {size}")
    lead = tuple(x.shape[:-len(size)])
    flat_values = x.reshape(*lead, int(np.prod(x.shape[len(lead):])))  # (*lead, h * w)
    grids = np.ix_(*[np.arange(n) for n in lead], np.arange(flat_values.shape[-1]))
    index = (*grids[:-1], positions.reshape(*lead, flat_values.shape[-1]))
    from gradwise.autograd.ops.shape import ScatterAdd
    # assigned, not added (basic=True): overlapping windows can pick the same element twice,
    # and torch writes its value once; the backward gathers the gradient at every index
    out = ScatterAdd.apply(flat_values, (*lead, plane), index, True)
    return out.reshape(*lead, *size)


def max_unpool1d(x: Tensor, indices: Any, kernel_size: Any, stride: Any = None,
                 padding: Any = 0, output_size: Any = None) -> Tensor:
    """The partial inverse of max_pool1d (torch.nn.functional.max_unpool1d): each value put
    back at its index, zeros elsewhere; the gradient is picked back from those places.

    Shape: (N, C, l) or (C, l) -> (..., (l - 1) s - 2 p + k) or ``output_size``

    Raises:
        ValueError: indices of another shape, an index outside the output, an output_size
            not within a stride of the default.
        TypeError: indices that are not integers.
    """
    return _max_unpool("max_unpool1d", 1, x, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(x: Tensor, indices: Any, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, output_size: Any = None) -> Tensor:
    """The partial inverse of max_pool2d: each value put back at its flat H*W index, zeros
    elsewhere (torch.nn.functional.max_unpool2d); the gradient is picked back from those places.

    Shape: x and indices (N, C, h, w) or (C, h, w) -> (..., (h - 1) s - 2 p + k, ...) or
    ``output_size``

    Raises:
        ValueError: indices of another shape, an index outside the output, an output_size
            not within a stride of the default.
        TypeError: indices that are not integers.
    """
    return _max_unpool("max_unpool2d", 2, x, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(x: Tensor, indices: Any, kernel_size: Any, stride: Any = None,
                 padding: Any = 0, output_size: Any = None) -> Tensor:
    """The partial inverse of max_pool3d (torch.nn.functional.max_unpool3d): each value put
    back at its flat D*H*W index, zeros elsewhere.

    Shape: (N, C, d, h, w) or (C, d, h, w) -> (..., (d - 1) s - 2 p + k, ...) or ``output_size``

    Raises:
        ValueError: indices of another shape, an index outside the output, an output_size
            not within a stride of the default.
        TypeError: indices that are not integers.
    """
    return _max_unpool("max_unpool3d", 3, x, indices, kernel_size, stride, padding, output_size)


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


# ---- more activations (issue 11 B), each composed from primitives: no backward of its own ----
def _where(condition: Any, a: Any, b: Any) -> Tensor:
    from gradwise.autograd.functional import where
    return where(condition, a, b)


def hardsigmoid(x: Tensor, inplace: bool = False) -> Tensor:
    """0 below -3, 1 above 3, ``x / 6 + 1 / 2`` between (torch.nn.functional.hardsigmoid;
    Howard et al. 2019, MobileNetV3); gradient 1/6 strictly inside (-3, 3), else 0.
    ``inplace``: accepted, result always new (see :func:`relu`)."""
    return _ew.Hardsigmoid.apply(x)


def hardswish(x: Tensor, inplace: bool = False) -> Tensor:
    """``x * hardsigmoid(x)`` (MobileNetV3, Howard et al. 2019), as torch's; its gradient is
    one selection (see :class:`~gradwise.autograd.ops.elementwise.Hardswish`).
    ``inplace``: accepted, result always new (see :func:`relu`)."""
    return _ew.Hardswish.apply(x)


def mish(x: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))`` (Misra 2019), as ``torch.nn.functional.mish``.
    ``inplace``: accepted, result always new (see :func:`relu`)."""
    return _ew.Mish.apply(x)


def softsign(x: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    return x / (x.abs() + 1.0)


def tanhshrink(x: Tensor) -> Tensor:
    """``x - tanh(x)``."""
    return x - x.tanh()


def logsigmoid(x: Tensor) -> Tensor:
    """``log(sigmoid(x)) = -softplus(-x)``, stable for any x."""
    return -softplus(-x)


def softmin(x: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: Any = None) -> Tensor:
    """``softmax(-x, dim)`` (default the last dim, as gradwise's softmax); ``dtype``: x is
    cast to it first, as ``torch.nn.functional.softmin``."""
    x = _as_tensor(x)
    if dtype is not None:
        x = x.to(dtype)
    return softmax(-x, dim)


def threshold(x: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where ``x > threshold``, else ``value`` (torch.nn.functional.threshold); written as
    torch does, ``value if x <= threshold else x``, so a NaN stays NaN and takes its gradient."""
    return _where(x <= threshold, value, x)


def hardshrink(x: Tensor, lambd: float = 0.5) -> Tensor:
    """x where ``|x| > lambd``, else 0; as torch, ``0 if -lambd <= x <= lambd else x``, so a
    NaN stays NaN and takes its gradient."""
    return _where(x.abs() <= lambd, 0.0, x)


def softshrink(x: Tensor, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above lambd, ``x + lambd`` below -lambd, 0 between; a NaN stays NaN and
    takes its gradient (torch's ``softshrink_backward`` tests the flat middle, not the sides).

    Raises:
        ValueError: lambd < 0 (torch's rule).
    """
    if lambd < 0:
        raise ValueError(f"softshrink: lambd must be >= 0, got {lambd}")
    return _where(x.abs() <= lambd, 0.0, _where(x < -lambd, x + lambd, x - lambd))


def celu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha (exp(x / alpha) - 1))`` (Barron 2017) = ``alpha elu(x / alpha)``.
    ``inplace``: accepted, result always new (see :func:`relu`).

    Raises:
        ValueError: alpha == 0.
    """
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0")
    return elu(x / alpha, 1.0) * alpha


#: SELU's constants (Klambauer et al. 2017, the values torch uses)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(x: Tensor, inplace: bool = False) -> Tensor:
    """``scale * elu(x, alpha)`` with Klambauer et al.'s self-normalising constants.
    ``inplace``: accepted, result always new (see :func:`relu`)."""
    return elu(x, SELU_ALPHA) * SELU_SCALE


def glu(x: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit (Dauphin et al. 2017): the halves a, b of ``dim``; ``a * sigmoid(b)``.

    Shape: (*, 2n, *) -> (*, n, *).

    Raises:
        ValueError: an odd size along ``dim``.
    """
    if x.shape[dim] % 2:
        raise ValueError(f"glu: dim {dim} must have an even size, got shape {tuple(x.shape)}")
    half = x.shape[dim] // 2  # sliced, not chunk(2): a size-0 dim has one chunk, not two
    before = (slice(None),) * (dim % x.ndim)
    a, b = x[before + (slice(0, half),)], x[before + (slice(half, None),)]
    return a * b.sigmoid()


def prelu(x: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, ``weight * x`` elsewhere; weight (1,) or (C,) on channel dim 1 (torch's);
    first and second derivatives as torch's (at x = 0: dy/dx = w, d2y/dx dw = 0).

    Raises:
        ValueError: weight is not 1-D of size 1 or the input's channel count.
    """
    if weight.ndim != 1 or (weight.shape[0] != 1 and (x.ndim < 2 or weight.shape[0] != x.shape[1])):
        raise ValueError(
            f"prelu: weight of shape {tuple(weight.shape)} does not fit input {tuple(x.shape)} "
            "(need (1,) or (C,) with C = input.shape[1])"
        )
    x_dtype = x._data.dtype if isinstance(x, Tensor) else np.asarray(x).dtype
    if x_dtype != weight._data.dtype:
        raise RuntimeError(f"prelu: Type promoting not supported. Got {_dtype_name(x_dtype)} "
                           f"and {_dtype_name(weight._data.dtype)}")
    if weight.shape[0] != 1:
        weight = weight.reshape(weight.shape[0], *([1] * (x.ndim - 2)))  # (C, 1, ...)
    # torch's rule, x > 0 ? x : w x: at x = 0 (and NaN) the gradient is w grad, where
    # relu(x) - w relu(-x) would give 0; w multiplies only the non-positive side, so an inf on
    # the positive side does not reach dL/dw as 0 * inf = NaN
    # At x = 0 torch's first derivative is w but its double backward (prelu_double_backward)
    # takes the x < 0 mask, so d(dy/dx)/dw = 0 there: the zeros use w's value as a constant.
    # The masks are Tensor comparisons (not comparisons of x._data) so that onnx.export writes
    # them as ONNX comparisons of the graph's value. x where x < 0 or NaN, else 0:
    negative_or_nan = _where(x > 0, 0.0, _where(x == 0, 0.0, x))
    scaled = weight * negative_or_nan
    zero = x == 0
    if zero._data.any():
        scaled = _where(zero, x * weight.detach(), scaled)
    return _where(x > 0, x, scaled)


def rrelu(x: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False, *, generator: Any = None) -> Tensor:
    """Randomized leaky ReLU (Xu et al. 2015): in training each negative element gets a slope
    drawn from U(lower, upper); in evaluation the slope is ``(lower + upper) / 2``.

    Raises:
        ValueError: lower > upper.
    """
    if lower > upper:
        raise ValueError(f"rrelu: lower ({lower}) must not exceed upper ({upper})")
    if not training:
        return leaky_relu(x, (lower + upper) / 2)
    slopes = _random.resolve(generator, None, "rrelu").uniform(lower, upper, x.shape)
    slope = Tensor._make(slopes.astype(x.dtype), False, None)
    return _where(x >= 0, x, x * slope)


# ---- more losses (issue 11 B), composed ------------------------------------------------------
def _xlogy(x: Tensor | np.ndarray) -> Any:
    """x log x with 0 log 0 = 0, for a constant or a Tensor."""
    if isinstance(x, Tensor):
        safe = _where(x > 0, x, 1.0)
        return x * safe.log()
    positive = np.where(x > 0, x, 1.0)
    return x * np.log(positive)


def kl_div(input: Tensor, target: Any, size_average: Any = None, reduce: Any = None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL divergence with ``input`` as log-probabilities: ``target (log target - input)``
    pointwise (0 where target = 0), or ``exp(target) (target - input)`` with log_target.

    ``reduction='batchmean'`` divides the sum by the batch size (the true KL divergence);
    'mean' divides by the element count, as torch's.

    Raises:
        ValueError: an unknown reduction, or a negative target probability (torch returns NaN
            silently; ``log_target=True`` is for log-probabilities).
    """
    if reduction not in ("mean", "sum", "none", "batchmean"):
        raise ValueError(f"kl_div: unknown reduction {reduction!r}")
    if not log_target and np.any(_target_array(target) < 0):
        raise ValueError("kl_div: target has negative entries; it must hold probabilities "
                         "(pass log_target=True for log-probabilities)")
    target = _as_graph_or_const(target, input)
    # pointwise KL: p (log p - input), with 0 log 0 = 0
    pointwise = (target.exp() * (target - input) if log_target
                 else _xlogy(target) - input * target)
    if reduction == "batchmean":
        return pointwise.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce_loss("kl_div", pointwise, reduction)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Any, margin: float = 0.0,
                        reduction: str = "mean") -> Tensor:
    """``max(0, -y (x1 - x2) + margin)`` with y in {1, -1}."""
    _loss.check_reduction("margin_ranking_loss", reduction)
    loss = ((input1 - input2) * -target + margin).clamp_min(0.0)
    return _reduce_loss("margin_ranking_loss", loss, reduction)


def hinge_embedding_loss(input: Tensor, target: Any, margin: float = 1.0,
                         reduction: str = "mean") -> Tensor:
    """x where y = 1, ``max(0, margin - x)`` where y = -1 (torch's)."""
    _loss.check_reduction("hinge_embedding_loss", reduction)
    y = _target_array(target)
    loss = _where(y == 1, input, 0.0) + _where(y == -1, (margin - input).clamp_min(0.0), 0.0)
    return _reduce_loss("hinge_embedding_loss", loss, reduction)


def soft_margin_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """``log(1 + exp(-y x))`` with y in {1, -1}, averaged over elements."""
    _loss.check_reduction("soft_margin_loss", reduction)
    return _reduce_loss("soft_margin_loss", softplus(input * -target), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Any, weight: Any = None,
                                reduction: str = "mean") -> Tensor:
    """Per sample, the mean over classes of the binary cross-entropy of sigmoid(x) against
    multi-hot targets (torch's formula). Shape: (N, C) -> () or (N,)."""
    _loss.check_reduction("multilabel_soft_margin_loss", reduction)
    loss = -(target * logsigmoid(input) + (1.0 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    return _reduce_loss("multilabel_soft_margin_loss", loss.mean(-1), reduction)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Any, margin: float = 0.0,
                          reduction: str = "mean") -> Tensor:
    """``1 - cos(x1, x2)`` where y = 1, ``max(0, cos(x1, x2) - margin)`` where y = -1; the cosine
    is ``sum(x1 x2) / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))`` over the last dim (torch's eps).

    Shape: (N, D), (N, D), (N,) -> () or (N,).
    """
    _loss.check_reduction("cosine_embedding_loss", reduction)
    eps = 1e-12
    cos = (input1 * input2).sum(-1) / (((input1 * input1).sum(-1) + eps)
                                       * ((input2 * input2).sum(-1) + eps)).sqrt()
    y = _target_array(target)
    loss = _where(y == 1, 1.0 - cos, 0.0) + _where(y == -1, (cos - margin).clamp_min(0.0), 0.0)
    return _reduce_loss("cosine_embedding_loss", loss, reduction)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """``||x1 - x2 + eps||_p`` over the last dim (torch's: eps is added to the difference)."""
    return (x1 - x2 + eps).norm(p, dim=-1, keepdim=keepdim)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0,
                        p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                        reduction: str = "mean") -> Tensor:
    """``max(d(a, p) - d(a, n) + margin, 0)`` with d the pairwise distance (Schroff et al.
    2015); ``swap`` uses min(d(a, n), d(p, n)) as the negative distance (Balntas et al. 2016).

    Raises:
        RuntimeError: the three inputs differ in their number of dims (torch's check).
    """
    _loss.check_reduction("triplet_margin_loss", reduction)
    dims = (anchor.ndim, positive.ndim, negative.ndim)
    if len(set(dims)) > 1:
        raise RuntimeError("triplet_margin_loss: The anchor, positive, and negative tensors are "
                           "expected to have the same number of dimensions, but got: anchor "
                           f"{dims[0]}D, positive {dims[1]}D, and negative {dims[2]}D inputs")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        from gradwise.autograd.functional import minimum
        d_neg = minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce_loss("triplet_margin_loss", (d_pos - d_neg + margin).clamp_min(0.0), reduction)


def poisson_nll_loss(input: Tensor, target: Any, log_input: bool = True, full: bool = False,
                     size_average: Any = None, eps: float = 1e-8, reduce: Any = None,
                     reduction: str = "mean") -> Tensor:
    """Poisson negative log-likelihood: ``exp(x) - y x`` (log_input) or ``x - y log(x + eps)``;
    ``full`` adds Stirling's ``y log y - y + 0.5 log(2 pi y)`` where y > 1 (torch's), a
    function of a Tensor target that is differentiated too, as torch's.

    Raises:
        ValueError: a negative rate with log_input=False, or an unknown reduction.
    """
    _loss.check_reduction("poisson_nll_loss", reduction)
    if not log_input and np.any(_target_array(input) < 0):
        raise ValueError("poisson_nll_loss: with log_input=False the input is a rate and must "
                         "not be negative (torch returns NaN)")
    loss = input.exp() - input * target if log_input else input - (input + eps).log() * target
    if full:
        y = _target_array(target).astype(input.dtype)
        above = y > 1
        if isinstance(target, Tensor):
            # a Tensor target is differentiated, as torch's is: the term in graph ops, its log
            # taken only where it is used (1 elsewhere, so no log 0 reaches the gradient)
            safe = _where(above, target, 1.0)
            stirling = safe * safe.log() - safe + ((safe * (2 * np.pi)).log()) * 0.5
            loss = loss + _where(above, stirling, 0.0)
        else:
            safe_y = np.where(above, y, 1.0)
            constant = np.where(above, y * np.log(safe_y) - y + 0.5 * np.log(2 * np.pi * safe_y),
                                0.0)
            loss = loss + constant.astype(input.dtype)
    return _reduce_loss("poisson_nll_loss", loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Any, var: Any, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """Gaussian negative log-likelihood ``0.5 (log v + (x - y)^2 / v)`` (+ 0.5 log 2 pi with
    ``full``), v = var clamped at ``eps``; as in torch the clamp passes the gradient unchanged.

    Raises:
        ValueError: a negative variance, or an unknown reduction.
    """
    _loss.check_reduction("gaussian_nll_loss", reduction)
    var_values = _target_array(var)
    if np.any(var_values < 0):
        raise ValueError("gaussian_nll_loss: var has negative entries")
    if isinstance(var, Tensor):
        var = var + Tensor._make(np.maximum(var._data, eps) - var._data, False, None)
    else:
        var = np.maximum(var_values, eps).astype(input.dtype)
    if isinstance(var, Tensor) and var.ndim == input.ndim - 1:
        var = var.unsqueeze(-1)
    elif not isinstance(var, Tensor) and np.ndim(var) == input.ndim - 1:
        var = var[..., None]
    diff = input - target
    log_var = var.log() if isinstance(var, Tensor) else np.log(var)
    loss = (diff * diff / var + log_var) * 0.5
    if full:
        loss = loss + 0.5 * float(np.log(2 * np.pi))
    return _reduce_loss("gaussian_nll_loss", loss, reduction)


def _pad_by_index(input: Tensor, pad: tuple[int, ...], mode: str) -> Tensor:
    """reflect / replicate / circular padding as one index_select per padded dim."""
    out = input
    for i in range(len(pad) // 2):
        dim = input.ndim - 1 - i
        before, after = pad[2 * i], pad[2 * i + 1]
        if not before and not after:
            continue
        size = input.shape[dim]
        positions = np.arange(-before, size + after)
        if mode == "reflect":
            if max(before, after) >= size:
                raise ValueError(f"pad: reflect padding {(before, after)} must be smaller than "
                                 f"dim {dim} of size {size} (input {tuple(input.shape)})")
            period = 2 * (size - 1)
            positions = np.abs(positions) % period if period else positions * 0
            positions = np.where(positions >= size, period - positions, positions)
        elif mode == "replicate":
            if size == 0:
                raise ValueError(f"pad: cannot replicate an empty dim {dim}")
            positions = np.clip(positions, 0, size - 1)
        else:
            if max(before, after) > size:
                raise ValueError(f"pad: circular padding {(before, after)} must not exceed dim "
                                 f"{dim} of size {size} (input {tuple(input.shape)})")
            positions = positions % size
        out = out.index_select(dim, positions.astype(np.int64))
    if mode != "circular":
        # torch's reflection_pad/replication_pad backward reads the input (circular padding is
        # a composite in torch too): the create_graph gradient requires grad as torch's
        out = _ew.reads_input(out, input)
    return out


# ---- 1-d convolution and pooling, transposed convolution, adaptive pooling (issue 11 B) ----
def _check_rank(op: str, x: Tensor, ranks: tuple[int, ...], layout: str) -> None:
    if x.ndim not in ranks:
        raise ValueError(f"{op}: expected input of shape {layout}, got {tuple(x.shape)}")


def _conv_padding(op: str, rank: int, x: Tensor, padding: Any, stride: tuple[int, ...],
                  dilation: tuple[int, ...], kernel: tuple[int, ...]) -> tuple[Tensor, tuple]:
    """torch's padding for an N-d convolution: an int or tuple (zeros both sides), "valid"
    (none) or "same" (stride 1; an odd total puts the extra zero after, as torch). Returns the
    input (padded here when "same" is uneven) and the symmetric padding left to apply."""
    if not isinstance(padding, str):
        return x, _sizes(op, "padding", padding, rank, 0)
    if padding == "valid":
        return x, (0,) * rank
    if padding != "same":
        raise ValueError(f"{op}: padding must be an int, a tuple, 'valid' or 'same', got "
                         f"{padding!r}")
    if set(stride) != {1}:
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                         f"(stride={stride}), as in torch")
    totals = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
    if not any(t % 2 for t in totals):
        return x, tuple(t // 2 for t in totals)
    widths: list[int] = []
    for total in reversed(totals):  # F.pad's order: the last dim first
        widths += [total // 2, total - total // 2]
    return pad(x, tuple(widths)), (0,) * rank


def _check_conv_channels(op: str, x: Tensor, weight: Tensor, groups: Any,
                         transposed: bool = False) -> int:
    """torch's channel rules for a (transposed) convolution with ``groups``; returns groups."""
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    c_in = int(x.shape[1])
    if transposed:
        layout = "(C_in, C_out / groups, *kernel)"
        ok = int(weight.shape[0]) == c_in and c_in % groups == 0
    else:
        layout = "(C_out, C_in / groups, *kernel)"
        ok = (int(weight.shape[1]) * groups == c_in and int(weight.shape[0]) % groups == 0)
    if not ok:
        raise ValueError(f"{op}: input {tuple(x.shape)} with groups={groups} needs a weight of "
                         f"shape {layout} with channels divisible by groups; got weight "
                         f"{tuple(weight.shape)}")
    return groups


@_convolution_node(1)
def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """1-D cross-correlation, as ``torch.nn.functional.conv1d``, computed as a 2-D
    convolution over a height-1 image (the NHWC ops and their kernels).

    Args:
        stride, dilation: ints (or 1-tuples); padding: an int, "valid" or "same" (stride 1).
        groups: channel groups (torch's; weight (C_out, C_in / groups, k)).

    Shape:
        x: (N, C_in, L) or (C_in, L), weight: (C_out, C_in / groups, k), bias: (C_out,)
        -> (N, C_out, (L + 2 p - d (k - 1) - 1) // s + 1)

    Raises:
        ValueError: another input or weight rank, channels that do not fit the weight and
            groups, an unknown padding string, "same" with a stride.
    """
    _check_rank("conv1d", x, (2, 3), "(N, C_in, L) or (C_in, L)")
    if x.ndim == 2:
        return conv1d(x.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    if weight.ndim != 3:
        raise ValueError(f"conv1d: weight must be (C_out, C_in / groups, k), got "
                         f"{tuple(weight.shape)}")
    groups = _check_conv_channels("conv1d", x, weight, groups)
    stride = _sizes("conv1d", "stride", stride, 1)
    dilation = _sizes("conv1d", "dilation", dilation, 1)
    x, padding = _conv_padding("conv1d", 1, x, padding, stride, dilation,
                               (int(weight.shape[2]),))
    out = conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, *stride), (0, *padding),
                 (1, *dilation), groups)  # (N, C_out, 1, L_out)
    return out.squeeze(2)


@_convolution_node(3)
def conv3d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """3-D cross-correlation, as ``torch.nn.functional.conv3d``.

    Computed with the 2-d machinery: an im2col along depth (each of the kd depth offsets'
    strided slab, stacked into channels) turns it into one 2-d convolution of the
    (N * D_out) depth slices with the (C_out, kd * C_in / groups, kh, kw) kernel, so gradients
    (and second derivatives) are the 2-d op's.

    Args:
        stride, dilation: an int or a (d, h, w) triple; padding: that, "valid" or "same".
        groups: channel groups (weight (C_out, C_in / groups, kd, kh, kw)).

    Shape:
        x: (N, C_in, D, H, W) or (C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out), each
        (L + 2 p - d (k - 1) - 1) // s + 1

    Raises:
        ValueError: another input or weight rank, channels that do not fit the weight and
            groups, a kernel larger than the padded input, a bad padding string.
    """
    _check_rank("conv3d", x, (4, 5), "(N, C_in, D, H, W) or (C_in, D, H, W)")
    if x.ndim == 4:
        return conv3d(x.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    if weight.ndim != 5:
        raise ValueError(f"conv3d: weight must be (C_out, C_in / groups, kd, kh, kw), got "
                         f"{tuple(weight.shape)}")
    groups = _check_conv_channels("conv3d", x, weight, groups)
    stride = _sizes("conv3d", "stride", stride, 3)
    dilation = _sizes("conv3d", "dilation", dilation, 3)
    kernel = tuple(int(k) for k in weight.shape[2:])
    x, padding = _conv_padding("conv3d", 3, x, padding, stride, dilation, kernel)
    n, c_in, depth = (int(s) for s in x.shape[:3])
    c_out, kd = int(weight.shape[0]), kernel[0]
    out_depth = _spatial.output_size(depth, kd, stride[0], padding[0], dilation[0])
    if out_depth < 1:
        raise ValueError(f"conv3d: kernel {kernel} (dilation {dilation}) is larger than the "
                         f"padded input (input shape {tuple(x.shape)}, padding {padding})")
    if padding[0]:
        x = pad(x, (0, 0, 0, 0, padding[0], padding[0]))
    height, width = int(x.shape[3]), int(x.shape[4])
    reach = stride[0] * (out_depth - 1) + 1
    slabs = [x[:, :, i * dilation[0]: i * dilation[0] + reach: stride[0]]
             for i in range(kd)]  # kd x (N, C_in, D_out, H, W)
    from gradwise.autograd.functional import stack
    per_group = c_in // groups
    columns = stack(slabs, 2)  # (N, C_in, kd, D_out, H, W)
    columns = columns.reshape(n, groups, per_group, kd, out_depth, height, width)
    columns = columns.permute(0, 4, 1, 3, 2, 5, 6).reshape(
        n * out_depth, groups * kd * per_group, height, width)  # channels (group, kd, c)
    kernel_2d = weight.permute(0, 2, 1, 3, 4).reshape(c_out, kd * per_group, *kernel[1:])
    out = conv2d(columns, kernel_2d, bias, stride[1:], padding[1:], dilation[1:], groups)
    out_h, out_w = int(out.shape[2]), int(out.shape[3])
    return out.reshape(n, out_depth, c_out, out_h, out_w).permute(0, 2, 1, 3, 4)


_CONVOLUTIONS = {1: conv1d, 2: conv2d, 3: conv3d}


def _dilate(x: Tensor, dim: int, stride: int) -> Tensor:
    """Insert ``stride - 1`` zeros between neighbours along ``dim`` (recorded)."""
    if stride == 1:
        return x
    moved = x.unsqueeze(dim + 1)  # (..., L, 1, ...)
    widths = [(0, 0)] * moved.ndim
    widths[dim + 1] = (0, stride - 1)
    from gradwise.autograd.functional import pad as _pad_widths
    spread = _pad_widths(moved, tuple(widths), 0.0)  # (..., L, stride, ...)
    shape = list(x.shape)
    shape[dim] *= stride
    index = [slice(None)] * x.ndim
    index[dim] = slice(0, shape[dim] - (stride - 1))
    return spread.reshape(*shape)[tuple(index)]


def _conv_transpose(op: str, rank: int, x: Tensor, weight: Tensor, bias: Tensor | None,
                    stride: Any, padding: Any, output_padding: Any, groups: Any,
                    dilation: Any) -> Tensor:
    """Transposed convolution of any rank: the input is spread with ``stride - 1`` zeros
    between elements, padded by ``dilation (k - 1) - padding`` (plus ``output_padding`` after;
    a negative width crops), and convolved with the flipped kernel, its in/out axes swapped
    within each group (torch's ``ConvTranspose`` as the adjoint of the convolution)."""
    layouts = {1: "(N, C_in, L) or (C_in, L)", 2: "(N, C_in, H, W) or (C_in, H, W)",
               3: "(N, C_in, D, H, W) or (C_in, D, H, W)"}
    _check_rank(op, x, (rank + 1, rank + 2), layouts[rank])
    if x.ndim == rank + 1:
        return _conv_transpose(op, rank, x.unsqueeze(0), weight, bias, stride, padding,
                               output_padding, groups, dilation).squeeze(0)
    if weight.ndim != rank + 2:
        raise ValueError(f"{op}: weight must be (C_in, C_out / groups, *kernel) with {rank} "
                         f"kernel dims, got {tuple(weight.shape)}")
    groups = _check_conv_channels(op, x, weight, groups, transposed=True)
    stride = _sizes(op, "stride", stride, rank)
    padding = _sizes(op, "padding", padding, rank, 0)
    output_padding = _sizes(op, "output_padding", output_padding, rank, 0)
    dilation = _sizes(op, "dilation", dilation, rank)
    kernel = tuple(int(k) for k in weight.shape[2:])
    for axis in range(rank):
        if output_padding[axis] >= max(stride[axis], dilation[axis]):
            raise ValueError(f"{op}: output padding must be smaller than either stride or "
                             f"dilation, got output_padding={output_padding}, stride={stride}, "
                             f"dilation={dilation}")
    sizes = tuple((int(x.shape[2 + a]) - 1) * stride[a] - 2 * padding[a]
                  + dilation[a] * (kernel[a] - 1) + output_padding[a] + 1 for a in range(rank))
    if min(sizes) < 1:
        raise ValueError(f"{op}: input {tuple(x.shape)} gives output size {sizes}: Output size "
                         f"is too small (stride={stride}, padding={padding}, kernel={kernel})")
    spread = x
    for axis in range(rank):
        spread = _dilate(spread, 2 + axis, stride[axis])
    crop: list[slice] = [slice(None)] * (rank + 2)
    grow = [(0, 0), (0, 0)]
    for axis in range(rank):
        low = dilation[axis] * (kernel[axis] - 1) - padding[axis]
        high = low + output_padding[axis]
        size = int(spread.shape[2 + axis])
        crop[2 + axis] = slice(max(-low, 0), size - max(-high, 0))
        grow.append((max(low, 0), max(high, 0)))
    spread = spread[tuple(crop)]
    if any(w != (0, 0) for w in grow):
        from gradwise.autograd.functional import pad as _pad_widths
        spread = _pad_widths(spread, tuple(grow), 0.0)
    c_in, per_group_out = int(weight.shape[0]), int(weight.shape[1])
    per_group_in = c_in // groups
    # (C_in, C_out/g, *k) -> (g, C_out/g, C_in/g, *k) -> (C_out, C_in/g, *k), flipped
    swapped = weight.reshape(groups, per_group_in, per_group_out, *kernel).transpose(1, 2)
    swapped = swapped.reshape(groups * per_group_out, per_group_in, *kernel)
    flipped = swapped.flip(*range(2, rank + 2))
    return _CONVOLUTIONS[rank](spread, flipped, bias, 1, 0, dilation, groups)


@_convolution_node(1)
def conv_transpose1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                     dilation: Any = 1) -> Tensor:
    """Transposed 1-D convolution (the gradient of conv1d with respect to its input), as
    ``torch.nn.functional.conv_transpose1d``.

    Shape:
        x: (N, C_in, L) or (C_in, L), weight: (C_in, C_out / groups, k) ->
        (N, C_out, (L - 1) s - 2 p + d (k - 1) + output_padding + 1)

    Raises:
        ValueError: mismatched channels or groups, output_padding not smaller than stride or
            dilation, an empty output.
    """
    return _conv_transpose("conv_transpose1d", 1, x, weight, bias, stride, padding,
                           output_padding, groups, dilation)


@_convolution_node(2)
def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                     dilation: Any = 1) -> Tensor:
    """Transposed 2-D convolution (the gradient of conv2d with respect to its input), as
    ``torch.nn.functional.conv_transpose2d``.

    Composed: the input is spread with ``stride - 1`` zeros between pixels, padded by
    ``dilation (k - 1) - padding`` (plus ``output_padding`` at the bottom/right), and convolved
    with the spatially flipped kernel, its in/out axes swapped within each group.

    Shape:
        x: (N, C_in, H, W) or (C_in, H, W), weight: (C_in, C_out / groups, kh, kw), bias:
        (C_out,) -> (N, C_out, (H - 1) s - 2 p + d (kh - 1) + output_padding + 1, same for W)

    Raises:
        ValueError: mismatched channels or groups, output_padding not smaller than stride or
            dilation, an empty output.
    """
    return _conv_transpose("conv_transpose2d", 2, x, weight, bias, stride, padding,
                           output_padding, groups, dilation)


@_convolution_node(3)
def conv_transpose3d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                     dilation: Any = 1) -> Tensor:
    """Transposed 3-D convolution, as ``torch.nn.functional.conv_transpose3d`` (composed as
    :func:`conv_transpose2d`, over :func:`conv3d`).

    Shape:
        x: (N, C_in, D, H, W) or (C_in, D, H, W), weight: (C_in, C_out / groups, kd, kh, kw)
        -> (N, C_out, (D - 1) s - 2 p + d (kd - 1) + output_padding + 1, ...)

    Raises:
        ValueError: mismatched channels or groups, output_padding not smaller than stride or
            dilation, an empty output.
    """
    return _conv_transpose("conv_transpose3d", 3, x, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def _adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive windows: [floor(i L / out), ceil((i + 1) L / out)) for each i."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive_sizes(op: str, output_size: Any, spatial: tuple[int, ...]) -> tuple[int, ...]:
    sizes = (output_size,) * len(spatial) if isinstance(output_size, int | np.integer) \
        else tuple(output_size)
    if len(sizes) != len(spatial):
        raise ValueError(f"{op}: output_size {output_size!r} must have {len(spatial)} entries")
    sizes = tuple(s if s is not None else n for s, n in zip(sizes, spatial, strict=True))
    if any(int(s) <= 0 for s in sizes):
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r}")
    return tuple(int(s) for s in sizes)


def _adaptive_avg_parts(x: Tensor, sizes: tuple[int, ...]) -> Tensor:
    """The mean of each of torch's adaptive windows over the last ``len(sizes)`` axes.

    Each window is averaged on its own, so an inf or NaN stays in the windows that hold it (an
    averaging-matrix product would spread it: 0 * inf = NaN in every other window, forward and
    backward). Sizes that divide evenly take one reshape and one mean; others one mean a window.
    """
    count = len(sizes)
    lead, spatial = tuple(x.shape[:x.ndim - count]), tuple(x.shape[x.ndim - count:])
    if all(n % s == 0 for n, s in zip(spatial, sizes, strict=True)):
        split = [d for n, s in zip(spatial, sizes, strict=True) for d in (s, n // s)]
        axes = tuple(len(lead) + 2 * i + 1 for i in range(count))
        return x.reshape(*lead, *split).mean(dim=axes)  # (*lead, out_1, k_1, out_2, k_2 ...)
    windows = [_adaptive_windows(n, s) for n, s in zip(spatial, sizes, strict=True)]
    axes = tuple(range(-count, 0))
    values = [x[(Ellipsis,) + tuple(slice(*windows[d][cell[d]]) for d in range(count))]
              .mean(dim=axes) for cell in np.ndindex(*sizes)]
    from gradwise.autograd.functional import stack
    return stack(values, -1).reshape(*lead, *sizes)


def _adaptive_avg(x: Tensor, sizes: tuple[int, ...]) -> Tensor:
    """:func:`_adaptive_avg_parts` marked as reading ``x``, as torch's adaptive_avg_pool
    backward does (so a create_graph gradient requires grad where torch's does); an output of
    size 1 everywhere is a plain mean in torch (AdaptiveAveragePooling.cpp), which reads
    nothing."""
    out = _adaptive_avg_parts(x, sizes)
    return out if all(s == 1 for s in sizes) else _ew.reads_input(out, x)


def adaptive_avg_pool2d(x: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed output size with torch's windows (``output_size`` an int, a
    pair, or None entries keeping the input size); each window is averaged on its own, so a
    non-finite value stays in its windows.

    Shape: (N, C, H, W) or (C, H, W) -> (..., out_h, out_w)
    """
    _check_rank("adaptive_avg_pool2d", x, (3, 4), "(N, C, H, W) or (C, H, W)")
    return _adaptive_avg(x, _adaptive_sizes("adaptive_avg_pool2d", output_size,
                                            tuple(x.shape[-2:])))


def adaptive_avg_pool1d(x: Tensor, output_size: Any) -> Tensor:
    """Mean over adaptive windows of the last dim. Shape: (N, C, L) or (C, L) -> (..., out)."""
    _check_rank("adaptive_avg_pool1d", x, (2, 3), "(N, C, L) or (C, L)")
    return _adaptive_avg(x, _adaptive_sizes("adaptive_avg_pool1d", output_size,
                                            (x.shape[-1],)))


def _adaptive_max(op: str, x: Tensor, sizes: tuple[int, ...], return_indices: bool) -> Any:
    """Max over each adaptive window of the trailing len(sizes) dims; stacked back."""
    spatial = tuple(x.shape[x.ndim - len(sizes):])
    lead = tuple(x.shape[:x.ndim - len(sizes)])
    windows = [_adaptive_windows(n, s) for n, s in zip(spatial, sizes, strict=True)]
    values, indices = [], []
    for cell in np.ndindex(*sizes):
        index = tuple(slice(*windows[d][cell[d]]) for d in range(len(sizes)))
        patch = x[(Ellipsis,) + index]
        flat = patch.reshape(*lead, int(np.prod(patch.shape[len(lead):])))  # (*lead, window)
        best = flat.max(dim=-1)
        values.append(best.values)
        if return_indices:
            # the flat index into the input's spatial dims, as torch returns
            local = np.unravel_index(best.indices._data, patch.shape[len(lead):])
            starts = [w[c][0] for w, c in zip(windows, cell, strict=True)]
            coords = [loc + start for loc, start in zip(local, starts, strict=True)]
            indices.append(np.ravel_multi_index(coords, spatial))
    from gradwise.autograd.functional import stack
    # torch's adaptive_max_pool backward reads x: the create_graph gradient requires grad
    out = _ew.reads_input(stack(values, -1).reshape(*lead, *sizes), x)
    if not return_indices:
        return out
    return out, Tensor._make(np.stack(indices, -1).reshape(*lead, *sizes).astype(np.int64),
                             False, None)


def adaptive_max_pool2d(x: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max over torch's adaptive windows; the gradient goes to the first maximum of each
    window. With ``return_indices``: also the flat H*W index of each maximum.

    Shape: (N, C, H, W) or (C, H, W) -> (..., out_h, out_w)
    """
    _check_rank("adaptive_max_pool2d", x, (3, 4), "(N, C, H, W) or (C, H, W)")
    sizes = _adaptive_sizes("adaptive_max_pool2d", output_size, tuple(x.shape[-2:]))
    return _adaptive_max("adaptive_max_pool2d", x, sizes, return_indices)


def adaptive_max_pool1d(x: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max over adaptive windows of the last dim. Shape: (N, C, L) or (C, L) -> (..., out)."""
    _check_rank("adaptive_max_pool1d", x, (2, 3), "(N, C, L) or (C, L)")
    sizes = _adaptive_sizes("adaptive_max_pool1d", output_size, (x.shape[-1],))
    return _adaptive_max("adaptive_max_pool1d", x, sizes, return_indices)


def adaptive_avg_pool3d(x: Tensor, output_size: Any) -> Tensor:
    """Mean over torch's adaptive windows of the last three dims (torch's adaptive_avg_pool3d);
    each window is averaged on its own, so a non-finite value stays in its windows.

    Shape: (N, C, D, H, W) or (C, D, H, W) -> (..., out_d, out_h, out_w)
    """
    _check_rank("adaptive_avg_pool3d", x, (4, 5), _POOL_LAYOUTS[3])
    return _adaptive_avg(x, _adaptive_sizes("adaptive_avg_pool3d", output_size,
                                            tuple(x.shape[-3:])))


def adaptive_max_pool3d(x: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max over torch's adaptive windows of the last three dims; with ``return_indices`` also
    the flat D*H*W index of each maximum (torch's adaptive_max_pool3d).

    Shape: (N, C, D, H, W) or (C, D, H, W) -> (..., out_d, out_h, out_w)
    """
    _check_rank("adaptive_max_pool3d", x, (4, 5), _POOL_LAYOUTS[3])
    sizes = _adaptive_sizes("adaptive_max_pool3d", output_size, tuple(x.shape[-3:]))
    return _adaptive_max("adaptive_max_pool3d", x, sizes, return_indices)


# ---- resampling and rearranging (issue 11 B) -------------------------------------------------
def _interp_sizes(x: Tensor, size: Any, scale_factor: Any) -> tuple[tuple[int, ...],
                                                                      tuple[float | None, ...]]:
    spatial = tuple(x.shape[2:])
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if size is not None:
        sizes = (size,) * len(spatial) if isinstance(size, int | np.integer) else tuple(size)
        if len(sizes) != len(spatial):
            raise ValueError(f"interpolate: size {size!r} must have {len(spatial)} entries for "
                             f"input {tuple(x.shape)}")
        return tuple(int(s) for s in sizes), (None,) * len(spatial)
    scales = ((scale_factor,) * len(spatial) if isinstance(scale_factor, int | float)
              else tuple(scale_factor))
    if len(scales) != len(spatial):
        raise ValueError(f"interpolate: scale_factor {scale_factor!r} must have {len(spatial)} "
                         f"entries for input {tuple(x.shape)}")
    return (tuple(int(np.floor(n * float(s))) for n, s in zip(spatial, scales, strict=True)),
            tuple(float(s) for s in scales))


def _source_positions(size: int, out: int, scale: float | None, align_corners: bool
                      ) -> np.ndarray:
    """torch's linear source coordinate of each output position (area_pixel_compute_*)."""
    dst = np.arange(out, dtype=np.float64)
    if align_corners:
        return dst * ((size - 1) / (out - 1)) if out > 1 else dst * 0.0
    ratio = 1.0 / scale if scale is not None else size / out
    return np.maximum((dst + 0.5) * ratio - 0.5, 0.0)


def interpolate(x: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dims of (N, C, *) as ``torch.nn.functional.interpolate``.

    Modes: "nearest" (source ``floor(dst * in / out)``, or ``floor(dst / scale_factor)`` when a
    scale is given), "linear" (3-D input), "bilinear" (4-D), with torch's coordinate rules for
    ``align_corners`` True and False (negative source coordinates clamp to 0). Every mode picks
    and weights input elements, so the gradient is exact.

    Shape: (N, C, L) / (N, C, H, W) -> (N, C, *size)

    Raises:
        ValueError: both or neither of size/scale_factor, an unsupported mode (bicubic, area,
            trilinear, nearest-exact), align_corners with "nearest", a rank the mode does not
            take.
    """
    linear_rank = {"linear": 3, "bilinear": 4}
    if mode not in ("nearest", *linear_rank):
        raise ValueError(f"interpolate: mode {mode!r} is not supported (nearest, linear, "
                         "bilinear)")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners only applies to linear modes")
    if mode in linear_rank and x.ndim != linear_rank[mode]:
        raise ValueError(f"interpolate: mode {mode!r} needs a {linear_rank[mode]}-D input, got "
                         f"{tuple(x.shape)}")
    if x.ndim < 3:
        raise ValueError(f"interpolate: expected (N, C, *spatial), got {tuple(x.shape)}")
    if antialias:
        raise ValueError("interpolate: antialias=True is not supported")
    sizes, scales = _interp_sizes(x, size, scale_factor)
    if recompute_scale_factor:
        scales = (None,) * len(sizes)
    out = x
    for axis, (out_size, scale) in enumerate(zip(sizes, scales, strict=True)):
        dim = 2 + axis
        in_size = x.shape[dim]
        if mode == "nearest":
            ratio = 1.0 / scale if scale is not None else in_size / out_size
            source = np.minimum(np.floor(np.arange(out_size) * ratio), in_size - 1)
            out = out.index_select(dim, source.astype(np.int64))
            continue
        source = _source_positions(in_size, out_size, scale, bool(align_corners))
        low = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
        high = np.minimum(low + 1, in_size - 1)
        frac = (source - low).astype(x.dtype)
        shape = [1] * out.ndim
        shape[dim] = out_size
        weight_high = Tensor._make(frac.reshape(shape), False, None)
        weight_low = Tensor._make((1.0 - frac).reshape(shape), False, None)
        out = out.index_select(dim, low) * weight_low + out.index_select(dim, high) * weight_high
    return out


def upsample(x: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    """Deprecated name of :func:`interpolate` (kept by torch)."""
    return interpolate(x, size, scale_factor, mode, align_corners)


def pixel_shuffle(x: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r) (Shi et al. 2016), torch's element order.

    Raises:
        ValueError: channels not divisible by r^2, or fewer than 3 dims.
    """
    r = int(upscale_factor)
    if x.ndim < 3 or x.shape[-3] % (r * r):
        raise ValueError(f"pixel_shuffle: input {tuple(x.shape)} needs channels divisible by "
                         f"upscale_factor^2 = {r * r}")
    *lead, channels, height, width = x.shape
    c = channels // (r * r)
    n = len(lead)
    y = x.reshape(*lead, c, r, r, height, width)
    y = y.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)  # (*, c, H, r, W, r)
    return y.reshape(*lead, c, height * r, width * r)


def pixel_unshuffle(x: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W), the inverse of :func:`pixel_shuffle`.

    Raises:
        ValueError: H or W not divisible by r.
    """
    r = int(downscale_factor)
    if x.ndim < 3 or x.shape[-1] % r or x.shape[-2] % r:
        raise ValueError(f"pixel_unshuffle: input {tuple(x.shape)} needs H and W divisible by "
                         f"downscale_factor {r}")
    *lead, c, height, width = x.shape
    n = len(lead)
    y = x.reshape(*lead, c, height // r, r, width // r, r)
    y = y.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)  # (*, c, r, r, H/r, W/r)
    return y.reshape(*lead, c * r * r, height // r, width // r)


# ---- group and instance normalisation, bilinear, embedding bags (issue 11 B) -----------------
def group_norm(x: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Group normalisation (Wu & He 2018): the channels of each sample split into
    ``num_groups`` groups, each normalised by its own mean and biased variance, then a
    per-channel scale and shift.

    Shape: x (N, C, *), weight/bias (C,) -> same as x

    Raises:
        ValueError: C not divisible by num_groups; a single value per group over the whole
            batch (N = 1 and C / G * spatial = 1: its variance is 0, torch refuses it too).
    """
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise ValueError(f"group_norm: input {tuple(x.shape)} needs channels divisible by "
                         f"num_groups {num_groups}")
    _check_norm_dtypes("group_norm", x, weight, bias, mixed_first=True)
    n = x.shape[0]
    per_group = int(np.prod(x.shape[1:])) // num_groups
    if n * per_group == 1:  # torch's _verify_batch_size on (N * C / G, G, *spatial)
        raise ValueError(f"group_norm: expected more than 1 value per group when training, "
                         f"got input of shape {tuple(x.shape)} with {num_groups} groups")
    grouped = x.reshape(n, num_groups, per_group)  # (N, G, C/G * spatial)
    # the fused layer norm over each group's values: its mean is exact for a constant group
    # (x - mean exactly 0), where sum / count would leave a rounding residue to amplify
    out = _norm.LayerNorm.apply(grouped, None, None, 1, eps).reshape(*x.shape)
    return _channel_affine(out, weight, bias)


def _channel_affine(out: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    shape = (out.shape[1],) + (1,) * (out.ndim - 2)  # (C, 1, ...)
    if weight is not None:
        out = out * weight.reshape(*shape)
    if bias is not None:
        out = out + bias.reshape(*shape)
    return out


def instance_norm(x: Tensor, running_mean: Any = None, running_var: Any = None,
                  weight: Tensor | None = None, bias: Tensor | None = None,
                  use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    """Instance normalisation (Ulyanov et al. 2016): each (sample, channel) normalised over its
    spatial dims. With running stats and ``use_input_stats``, they move by ``momentum``
    towards the batch average of the instance means and unbiased variances (torch's rule);
    ``use_input_stats=False`` normalises with the running stats.

    Shape: x (N, C, *), stats/weight/bias (C,) -> same as x

    Raises:
        ValueError: fewer than 3 dims, one spatial element (its variance is 0: torch refuses
            it too), or use_input_stats=False without running stats.
        RuntimeError: a running statistic that requires grad (not differentiated, as in torch).
    """
    if x.ndim < 3:
        raise ValueError(f"instance_norm: expected (N, C, *spatial), got {tuple(x.shape)}")
    _check_norm_dtypes("batch_norm", x, weight, bias, running_mean, running_var)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: use_input_stats=False needs the running stats")
        stored_mean = _stat_array("instance_norm", "running_mean", running_mean)
        stored_var = _stat_array("instance_norm", "running_var", running_var)
        fixed_mean = Tensor._make(np.asarray(stored_mean).reshape(shape), False, None)
        fixed_var = Tensor._make(np.asarray(stored_var).reshape(shape), False, None)
        return _channel_affine((x - fixed_mean) / (fixed_var + eps).sqrt(), weight, bias)
    if int(np.prod(x.shape[2:])) <= 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element per channel to "
                         f"normalise, got input of shape {tuple(x.shape)}")
    count = int(np.prod(x.shape[2:]))
    instances = x.reshape(x.shape[0], x.shape[1], count)  # (N, C, L)
    if running_mean is not None and running_var is not None:
        raw = instances._data
        instance_mean = raw.mean(-1).mean(0)
        unbiased = raw.var(-1) * (count / max(count - 1, 1))
        for stat, batch in ((_stat_array("instance_norm", "running_mean", running_mean),
                             instance_mean),
                            (_stat_array("instance_norm", "running_var", running_var),
                             unbiased.mean(0))):
            if stat is not None:  # updated in place, as batch_norm's running stats
                stat *= 1 - momentum
                stat += momentum * batch.astype(stat.dtype)
    # the fused layer norm over each instance: an exact mean for a constant channel, as
    # group_norm
    out = _norm.LayerNorm.apply(instances, None, None, 1, eps).reshape(*x.shape)
    return _channel_affine(out, weight, bias)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None
             ) -> Tensor:
    """``y_k = x1^T A_k x2 + b_k`` (torch.nn.functional.bilinear).

    Shape: x1 (*, in1), x2 (*, in2), weight (out, in1, in2), bias (out,) -> (*, out)
    """
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] \
            or input2.shape[-1] != weight.shape[2]:
        raise ValueError(f"bilinear: inputs {tuple(input1.shape)}, {tuple(input2.shape)} do not "
                         f"fit weight {tuple(weight.shape)} (out, in1, in2)")
    out_features, in1, in2 = weight.shape
    mixed = input1 @ weight.transpose(0, 1).reshape(in1, out_features * in2)  # (*, out*in2)
    mixed = mixed.reshape(*input1.shape[:-1], out_features, in2)
    out = (mixed * input2.unsqueeze(-2)).sum(-1)  # (*, out)
    return out if bias is None else out + bias


def embedding_bag(input: Any, weight: Tensor, offsets: Any = None, max_norm: float | None = None,
                  norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                  sparse: bool = False, per_sample_weights: Any = None,
                  include_last_offset: bool = False, padding_idx: int | None = None) -> Tensor:
    """Sum, mean or max of the embedding rows of each bag (torch.nn.functional.embedding_bag).

    Bags are the rows of a 2-D ``input`` (B, L), or slices of a 1-D ``input`` starting at each
    ``offsets`` entry. ``padding_idx`` entries are left out of their bag (and of a mean's
    count); an empty bag gives zeros. ``per_sample_weights`` (like input) scale rows (mode
    "sum" only).

    Shape: (B, L) or (n,) with offsets (B,) [(B + 1,) with include_last_offset] -> (B, dim)

    Raises:
        ValueError: an unknown mode, offsets with 2-D input (or missing with 1-D), weights with
            a mode other than sum, scale_grad_by_freq or sparse (not supported).
    """
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"embedding_bag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if scale_grad_by_freq or sparse:
        raise ValueError("embedding_bag: scale_grad_by_freq and sparse are not supported")
    if per_sample_weights is not None and mode != "sum":
        raise ValueError("embedding_bag: per_sample_weights needs mode='sum' (torch's rule)")
    indices = _target_array(input)
    if indices.ndim == 2:
        if offsets is not None:
            raise ValueError("embedding_bag: offsets must be None for a 2-D input")
        bag_of = np.repeat(np.arange(indices.shape[0]), indices.shape[1])
        bags = indices.shape[0]
    elif indices.ndim == 1:
        if offsets is None:
            raise ValueError("embedding_bag: a 1-D input needs offsets")
        starts = _target_array(offsets).astype(np.int64).reshape(-1)
        if include_last_offset:
            starts = starts[:-1]
        bags = starts.shape[0]
        if bags and (starts[0] != 0 or np.any(np.diff(starts) < 0)
                     or starts[-1] > indices.shape[0]):
            raise ValueError(f"embedding_bag: offsets must start at 0 and not decrease, "
                             f"got {starts.tolist()}")
        bag_of = np.searchsorted(starts, np.arange(indices.shape[0]), side="right") - 1
    else:
        raise ValueError(f"embedding_bag: input must be 1-D or 2-D, got {indices.shape}")
    flat = indices.reshape(-1)
    if max_norm is not None:
        _renorm_rows(weight, flat, max_norm, norm_type)
    keep = np.ones(flat.shape, dtype=bool)
    if padding_idx is not None:
        keep = flat != _padding_row("embedding_bag", padding_idx, weight.shape[0])
    rows = embedding(flat, weight)  # (n, dim)
    if per_sample_weights is not None:
        rows = rows * _as_graph_or_const(per_sample_weights, rows).reshape(-1, 1)
    if mode == "max":
        from gradwise.autograd.functional import stack
        pieces = []
        for bag in range(bags):
            members = np.flatnonzero((bag_of == bag) & keep)
            pieces.append(rows[members].max(dim=0).values if members.size
                          else Tensor._make(np.zeros(weight.shape[1], weight.dtype), False, None))
        return stack(pieces, 0)
    # each kept row added into its bag (a scatter, not a membership-matrix product: there one
    # inf or NaN row, or an inf gradient, would reach every bag as 0 * inf = NaN)
    members = np.flatnonzero(keep)
    picked = rows if members.size == flat.shape[0] else rows[members]  # (m, dim)
    if mode == "mean":
        counts = np.bincount(bag_of[members], minlength=bags)
        scale = (1.0 / np.maximum(counts, 1))[bag_of[members]].astype(weight.dtype)
        picked = picked * Tensor._make(scale[:, None], False, None)
    from gradwise.autograd.ops.shape import ScatterAdd
    return ScatterAdd.apply(picked, (bags, weight.shape[1]), (bag_of[members],), False)


def _as_graph_or_const(value: Any, like: Tensor) -> Tensor:
    if isinstance(value, Tensor):
        return value
    return Tensor._make(np.asarray(value, dtype=like.dtype), False, None)


def _renorm_rows(weight: Tensor, indices: np.ndarray, max_norm: float, norm_type: float) -> None:
    """torch's embedding_renorm_: each looked-up row whose ``norm_type`` norm exceeds
    ``max_norm`` is scaled in place (outside the graph) to ``max_norm / (norm + 1e-7)``."""
    rows = np.unique(indices)
    if not rows.size:
        return
    values = weight._data[rows]
    norms = np.linalg.norm(values.astype(np.float64), ord=norm_type, axis=1)
    scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
    weight._data[rows] = (values * scale[:, None]).astype(weight._data.dtype)


# ---- attention (issue 11 B) ------------------------------------------------------------------
def _additive_mask(mask: Any, like: Tensor, allowed_when_true: bool) -> Tensor | None:
    """A boolean or float attention mask as a float tensor added to the scores (-inf where a
    position may not attend). ``allowed_when_true``: SDPA's bool convention (True = attend);
    nn.MultiheadAttention's is the opposite (True = masked)."""
    if mask is None:
        return None
    array = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if array.dtype == bool:
        blocked = ~array if allowed_when_true else array
        return Tensor._make(np.where(blocked, -np.inf, 0.0).astype(like.dtype), False, None)
    if isinstance(mask, Tensor):
        return mask if mask._data.dtype == like._data.dtype else mask.to(like.dtype)
    return Tensor._make(array.astype(like.dtype), False, None)


def _safe_softmax(scores: Tensor) -> Tensor:
    """Softmax over the last dim where a row whose scores are all -inf (it may attend nowhere)
    gets weights 0 and zero gradients, as torch's ``_safe_softmax`` (torch >= 2.5, used by
    scaled_dot_product_attention and so by MultiheadAttention with need_weights=False): a
    plain softmax gives 0/0 = NaN there.

    Shape: (*, S) -> same.
    """
    dead = np.all(scores._data == -np.inf, axis=-1, keepdims=True)
    if not dead.any():
        return softmax(scores, dim=-1)
    from gradwise.autograd.functional import where
    return where(dead, 0.0, softmax(where(dead, 0.0, scores), dim=-1))


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Any = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, enable_gqa: bool = False, *,
                                 generator: Any = None) -> Tensor:
    """``softmax(Q K^T * scale + mask) V`` (Vaswani et al. 2017), as
    ``torch.nn.functional.scaled_dot_product_attention`` (its reference "math" form). A query
    row whose mask blocks every key (bool mask all False, float mask all -inf) gives 0 with
    zero gradients, as torch's ``_safe_softmax``.

    Args:
        attn_mask: bool (True = may attend) or float (added to the scores), broadcastable to
            (*, L, S).
        is_causal: position i attends to positions <= i (an upper-left causal mask); not with
            attn_mask.
        dropout_p: dropout on the attention weights (always applied when > 0, as torch's
            function: pass 0 in evaluation).
        scale: default ``1 / sqrt(E)``.

    Shape: query (*, L, E), key (*, S, E), value (*, S, Ev) -> (*, L, Ev)

    Raises:
        ValueError: is_causal together with attn_mask, mismatched embedding sizes, enable_gqa.
    """
    if enable_gqa:
        raise ValueError("scaled_dot_product_attention: enable_gqa is not supported")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: query {tuple(query.shape)}, key "
                         f"{tuple(key.shape)} and value {tuple(value.shape)} do not fit "
                         "(*, L, E), (*, S, E), (*, S, Ev)")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
    scale = 1.0 / float(np.sqrt(query.shape[-1])) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale  # (*, L, S)
    if is_causal:
        length, source = query.shape[-2], key.shape[-2]
        attn_mask = np.tril(np.ones((length, source), dtype=bool))
    bias = _additive_mask(attn_mask, scores, allowed_when_true=True)
    if bias is not None:
        scores = scores + bias
    weights = _safe_softmax(scores)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, True, generator=generator)
    return weights @ value


# ---- recurrent cells (issue 11 B), composed: torch's gate order and formulas ----------------
def rnn_tanh_cell(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
                  b_hh: Tensor | None) -> Tensor:
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``. Shape: x (N, in), h (N, H) -> (N, H)."""
    return rnn_step(linear(x, w_ih, b_ih), h, w_hh, b_hh, "tanh")


def rnn_relu_cell(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
                  b_hh: Tensor | None) -> Tensor:
    """``h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    return rnn_step(linear(x, w_ih, b_ih), h, w_hh, b_hh, "relu")


def lstm_cell(x: Tensor, state: tuple[Tensor, Tensor], w_ih: Tensor, w_hh: Tensor,
              b_ih: Tensor | None, b_hh: Tensor | None) -> tuple[Tensor, Tensor]:
    """One LSTM step (Hochreiter & Schmidhuber 1997, torch's form): gates i, f, g, o are the
    four row blocks of ``x W_ih^T + b_ih + h W_hh^T + b_hh``; ``c' = f c + i g``,
    ``h' = o tanh(c')`` with sigmoid i, f, o and tanh g.

    Shape: x (N, in), h and c (N, H), w_ih (4H, in), w_hh (4H, H) -> (h', c') each (N, H)
    """
    return lstm_step(linear(x, w_ih, b_ih), state, w_hh, b_hh)


def gru_cell(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
             b_hh: Tensor | None) -> Tensor:
    """One GRU step (Cho et al. 2014, torch's form): row blocks r, z, n;
    ``r = sigmoid(x_r + h_r)``, ``z = sigmoid(x_z + h_z)``, ``n = tanh(x_n + r * h_n)`` (the
    hidden bias inside the product), ``h' = (1 - z) n + z h``.

    Shape: x (N, in), h (N, H), w_ih (3H, in), w_hh (3H, H) -> (N, H)
    """
    return gru_step(linear(x, w_ih, b_ih), h, w_hh, b_hh)


# The recurrent layers project every time step's input at once (one matmul over the whole
# sequence) and then run these steps, which take the input's gate pre-activations.
def rnn_step(x_gates: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None,
             nonlinearity: str) -> Tensor:
    """An Elman step from the input's pre-activation ``x W_ih^T + b_ih`` (N, H)."""
    pre = x_gates + linear(h, w_hh, b_hh)
    return pre.tanh() if nonlinearity == "tanh" else relu(pre)


def lstm_step(x_gates: Tensor, state: tuple[Tensor, Tensor], w_hh: Tensor,
              b_hh: Tensor | None) -> tuple[Tensor, Tensor]:
    """An LSTM step (see :func:`lstm_cell`) from the input's gate pre-activations (N, 4H)."""
    h, c = state
    i, f, g, o = (x_gates + linear(h, w_hh, b_hh)).chunk(4, -1)
    c_next = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c_next.tanh(), c_next


def gru_step(x_gates: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    """A GRU step (see :func:`gru_cell`) from the input's gate pre-activations (N, 3H)."""
    x_r, x_z, x_n = x_gates.chunk(3, -1)
    h_r, h_z, h_n = linear(h, w_hh, b_hh).chunk(3, -1)
    r = (x_r + h_r).sigmoid()
    z = (x_z + h_z).sigmoid()
    n = (x_n + r * h_n).tanh()
    return n + z * (h - n)


# ---- channel dropout, RMS and local response normalisation, channel shuffle (issue 11 B) ----
def _feature_dropout(name: str, x: Tensor, p: float, training: bool, spatial: int,
                     generator: Any) -> Tensor:
    """Zero whole channels: one keep/drop draw per (sample, channel), scaled by 1/(1-p)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: p must be a probability in [0, 1], got {p}")
    if x.ndim not in (spatial + 1, spatial + 2):
        raise ValueError(f"{name}: expected (N, C, *{spatial} spatial dims) or (C, *spatial), "
                         f"got {tuple(x.shape)}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    mask_shape = tuple(x.shape[:x.ndim - spatial]) + (1,) * spatial  # (N, C, 1, ...)
    keep = _random.resolve(generator, None, name).random(mask_shape, dtype=np.float32) >= p
    mask = keep.astype(x.dtype) * np.asarray(1.0 / (1.0 - p), dtype=x.dtype)
    return x * Tensor._make(mask, False, None)


def dropout1d(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator: Any = None) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) with probability p (torch's dropout1d;
    Tompson et al. 2015), the rest scaled by 1/(1-p)."""
    return _feature_dropout("dropout1d", x, p, training, 1, generator)


def dropout2d(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator: Any = None) -> Tensor:
    """Zero whole channels of (N, C, H, W) or (C, H, W) with probability p (torch's
    dropout2d)."""
    return _feature_dropout("dropout2d", x, p, training, 2, generator)


def dropout3d(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator: Any = None) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) with probability p."""
    return _feature_dropout("dropout3d", x, p, training, 3, generator)


def rms_norm(x: Tensor, normalized_shape: Any, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """``x / sqrt(mean(x^2) + eps) * weight`` over the trailing ``normalized_shape`` dims
    (Zhang & Sennrich 2019; torch.nn.functional.rms_norm); eps defaults to the dtype's machine
    epsilon, as torch's.

    Shape: (*, *normalized_shape) -> same
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise ValueError(f"rms_norm: input of shape {tuple(x.shape)} does not end with "
                         f"normalized_shape {shape}")
    if np.dtype(x.dtype).kind != "f":
        raise NotImplementedError(f"rms_norm: not implemented for dtype {np.dtype(x.dtype)} "
                                  f"(torch: \"rms_norm\" not implemented for "
                                  f"'{_dtype_name(x.dtype)}'); cast the input: x.float()")
    eps = float(np.finfo(x.dtype).eps) if eps is None else eps
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    out = x / ((x * x).mean(axes, keepdim=True) + eps).sqrt()
    return out if weight is None else out * weight


def local_response_norm(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """Local response normalisation across channels (Krizhevsky et al. 2012, AlexNet), torch's
    form: ``x / (k + alpha * mean of x^2 over the size neighbouring channels)^beta``, the window
    ``[c - size // 2, c + (size - 1) // 2]`` zero-padded at the ends.

    Shape: (N, C, *) -> same
    """
    if x.ndim < 3:
        raise ValueError(f"local_response_norm: expected (N, C, *), got {tuple(x.shape)}")
    channels = x.shape[1]
    squared = x * x
    widths = [(0, 0)] * x.ndim
    widths[1] = (size // 2, (size - 1) // 2)
    from gradwise.autograd.functional import pad as _pad_widths
    padded = _pad_widths(squared, tuple(widths), 0.0)
    total = padded[:, 0:channels]
    for offset in range(1, size):
        total = total + padded[:, offset:offset + channels]
    return x / (total * (alpha / size) + k) ** beta


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of ``groups`` groups (Zhang et al. 2018, ShuffleNet).

    Shape: (N, C, *) -> same, C divisible by groups
    """
    if x.ndim < 3 or x.shape[1] % groups:
        raise ValueError(f"channel_shuffle: input {tuple(x.shape)} needs channels divisible by "
                         f"groups {groups}")
    n, channels, *rest = x.shape
    grouped = x.reshape(n, groups, channels // groups, *rest)
    return grouped.transpose(1, 2).reshape(n, channels, *rest)


def multi_margin_loss(input: Tensor, target: Any, p: int = 1, margin: float = 1.0,
                      weight: Any = None, reduction: str = "mean") -> Tensor:
    """Multi-class hinge loss (torch.nn.MultiMarginLoss): for each sample,
    ``sum over i != y of max(0, margin - x[y] + x[i])^p / C``, scaled by ``weight[y]``.

    Shape: input (N, C), target (N,) -> () or (N,)

    Raises:
        ValueError: p not 1 or 2, labels out of range, or an unknown reduction.
        RuntimeError: labels not int64 (torch's message); a ``weight`` that requires grad (not
            differentiated, as in torch).
    """
    _loss.check_reduction("multi_margin_loss", reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
    labels = _target_array(target)
    if labels.dtype != np.int64:  # torch's multi_margin_loss takes int64 labels only
        from gradwise.autograd.tensor import _dtype_name
        raise RuntimeError("multi_margin_loss: expected scalar type Long but found "
                           f"{_dtype_name(labels.dtype)}")
    if input.ndim != 2 or labels.shape != (input.shape[0],):
        raise ValueError(f"multi_margin_loss: expected input (N, C) and target (N,), got "
                         f"{tuple(input.shape)} and {labels.shape}")
    classes = input.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"multi_margin_loss: labels must lie in [0, {classes})")
    rows = np.arange(input.shape[0])
    correct = input[rows, labels].unsqueeze(1)  # (N, 1)
    z = input - correct + margin
    # torch's kernel adds a term only where i != y and z > 0: a selection, so the target's own
    # column (inf - inf when x_y is infinite) and a NaN z are left out, not multiplied by 0
    active = z._data > 0
    active[rows, labels] = False
    hinge = _where(active, z, 0.0)
    if p == 2:
        hinge = hinge * hinge
    if weight is not None:
        weight = _weight_array("multi_margin_loss", "weight", weight)
        hinge = hinge * weight.astype(input.dtype)[labels][:, None]
    loss = hinge.sum(1) / classes
    return _reduce_loss("multi_margin_loss", loss, reduction)


# ---- alpha dropout, power-average pooling, distances, deprecated names (issue 11 B) ----------
#: -SELU_SCALE * SELU_ALPHA: the value SELU saturates to, which alpha dropout drops to
_SELU_SATURATION = 1.7580993408473766


def _alpha_dropout(name: str, x: Tensor, p: float, training: bool, feature: bool,
                   generator: Any) -> Tensor:
    """Alpha dropout (Klambauer et al. 2017) as torch computes it: dropped elements are set to
    SELU's saturation value, then an affine map ``a x + b`` restores zero mean and unit
    variance, with ``a = ((1 - p)(1 + p alpha'^2))^(-1/2)``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: p must be a probability in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    shape = tuple(x.shape[:2]) + (1,) * (x.ndim - 2) if feature and x.ndim > 2 else x.shape
    keep = (_random.resolve(generator, None, name).random(shape) >= p).astype(x.dtype)
    a = 1.0 / np.sqrt((_SELU_SATURATION ** 2 * p + 1) * (1 - p))
    scale = keep * a
    shift = (keep - 1) * (_SELU_SATURATION * a) + _SELU_SATURATION * a * p
    return x * Tensor._make(scale.astype(x.dtype), False, None) + \
        Tensor._make(shift.astype(x.dtype), False, None)


def alpha_dropout(x: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False, *,
                  generator: Any = None) -> Tensor:
    """Dropout for SELU networks: keeps zero mean and unit variance (torch's alpha_dropout;
    note its ``training`` default is False, as torch's)."""
    return _alpha_dropout("alpha_dropout", x, p, training, False, generator)


def feature_alpha_dropout(x: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False, *, generator: Any = None) -> Tensor:
    """Alpha dropout of whole channels of (N, C, *) (torch's feature_alpha_dropout)."""
    return _alpha_dropout("feature_alpha_dropout", x, p, training, True, generator)


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm distance between every pair of rows i < j, in row-major order of the upper
    triangle (torch.nn.functional.pdist); gradients as torch's ``_pdist_backward`` (see
    :class:`~gradwise.autograd.ops.reduce.VectorNorm`, ``distance=True``).

    Shape: (N, M) -> (N (N - 1) / 2,)
    """
    if input.ndim != 2:
        raise ValueError(f"pdist: expected a 2-D input (N, M), got {tuple(input.shape)}")
    rows, cols = np.triu_indices(input.shape[0], 1)
    # torch's _pdist_backward: each tied coordinate of the inf-norm takes the whole gradient
    return _reduce.VectorNorm.apply(input[rows] - input[cols], float(p), 1, False, True)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function: Any = None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
    """``max(d(a, p) - d(a, n) + margin, 0)`` with any distance function (default
    :func:`pairwise_distance`), as torch's triplet_margin_with_distance_loss."""
    _loss.check_reduction("triplet_margin_with_distance_loss", reduction)
    if margin <= 0:
        raise ValueError(f"triplet_margin_with_distance_loss: margin must be > 0, got {margin}")
    distance = pairwise_distance if distance_function is None else distance_function
    d_pos, d_neg = distance(anchor, positive), distance(anchor, negative)
    if swap:
        from gradwise.autograd.functional import minimum
        d_neg = minimum(d_neg, distance(positive, negative))
    loss = (d_pos - d_neg + margin).clamp_min(0.0)
    return _reduce_loss("triplet_margin_with_distance_loss", loss, reduction)


def max_pool1d_with_indices(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
                            dilation: Any = 1, ceil_mode: bool = False,
                            return_indices: bool = True) -> Any:
    """:func:`max_pool1d` returning ``(values, indices)``."""
    return max_pool1d(x, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
                            dilation: Any = 1, ceil_mode: bool = False,
                            return_indices: bool = True) -> Any:
    """:func:`max_pool2d` returning ``(values, indices)``."""
    return max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_max_pool1d_with_indices(x: Tensor, output_size: Any,
                                     return_indices: bool = True) -> Any:
    """:func:`adaptive_max_pool1d` returning ``(values, indices)``."""
    return adaptive_max_pool1d(x, output_size, True)


def adaptive_max_pool2d_with_indices(x: Tensor, output_size: Any,
                                     return_indices: bool = True) -> Any:
    """:func:`adaptive_max_pool2d` returning ``(values, indices)``."""
    return adaptive_max_pool2d(x, output_size, True)


def max_pool3d_with_indices(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
                            dilation: Any = 1, ceil_mode: bool = False,
                            return_indices: bool = True) -> Any:
    """:func:`max_pool3d` returning ``(values, indices)``."""
    return max_pool3d(x, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_max_pool3d_with_indices(x: Tensor, output_size: Any,
                                     return_indices: bool = True) -> Any:
    """:func:`adaptive_max_pool3d` returning ``(values, indices)``."""
    return adaptive_max_pool3d(x, output_size, True)


def upsample_nearest(x: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """Deprecated torch name: ``interpolate(x, size, scale_factor, mode="nearest")``."""
    return interpolate(x, size, scale_factor, "nearest")


def upsample_bilinear(x: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """Deprecated torch name: bilinear ``interpolate`` with ``align_corners=True``."""
    return interpolate(x, size, scale_factor, "bilinear", align_corners=True)


# ---- sliding patches and Gumbel-softmax (issue 11 B) -----------------------------------------
def _patch_index(op: str, spatial: tuple[int, ...], kernel_size: Any, dilation: Any,
                 padding: Any, stride: Any) -> tuple[Any, tuple[int, ...], tuple[int, int]]:
    """Rows and columns (broadcast to (kh, kw, out_h, out_w)) of every patch element in the
    padded image, the output grid and the padding."""
    kernel = _spatial.pair(op, "kernel_size", kernel_size, 1)
    dilation = _spatial.pair(op, "dilation", dilation, 1)
    padding = _spatial.pair(op, "padding", padding, 0)
    stride = _spatial.pair(op, "stride", stride, 1)
    grid = tuple(_spatial.output_size(spatial[i], kernel[i], stride[i], padding[i], dilation[i])
                 for i in range(2))
    if min(grid) <= 0:
        padded = (spatial[0] + 2 * padding[0], spatial[1] + 2 * padding[1])
        raise ValueError(f"{op}: kernel {kernel} with dilation {dilation} does not fit the "
                         f"padded size {padded}")
    rows = np.arange(kernel[0])[:, None] * dilation[0] + np.arange(grid[0])[None] * stride[0]
    cols = np.arange(kernel[1])[:, None] * dilation[1] + np.arange(grid[1])[None] * stride[1]
    index = (rows[:, None, :, None], cols[None, :, None, :])  # (kh, 1, oh, 1), (1, kw, 1, ow)
    return index, grid, padding


def unfold(input: Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
           stride: Any = 1) -> Tensor:
    """Sliding patches as columns (im2col), as torch.nn.functional.unfold: column l holds the
    C * kh * kw values of patch l (channel-major), patches in row-major order.

    Shape: (N, C, H, W) -> (N, C * kh * kw, L), L = out_h * out_w
    """
    _check_rank("unfold", input, (4,), "(N, C, H, W)")
    index, grid, pad_hw = _patch_index("unfold", tuple(input.shape[2:]), kernel_size, dilation,
                                       padding, stride)
    padded = pad(input, (pad_hw[1], pad_hw[1], pad_hw[0], pad_hw[0])) if any(pad_hw) else input
    patches = padded[(slice(None), slice(None)) + index]  # (N, C, kh, kw, oh, ow)
    n, c, kh, kw = patches.shape[:4]
    return patches.reshape(n, c * kh * kw, grid[0] * grid[1])


def fold(input: Tensor, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
         stride: Any = 1) -> Tensor:
    """The adjoint of :func:`unfold` (col2im): each column's values added back at their patch
    positions, overlaps summed (torch.nn.functional.fold).

    Shape: (N, C * kh * kw, L) -> (N, C, *output_size)

    Raises:
        ValueError: the channel dim is not divisible by kh * kw, or L does not match the
            number of patches of output_size.
    """
    _check_rank("fold", input, (3,), "(N, C * kh * kw, L)")
    size = _spatial.pair("fold", "output_size", output_size, 1)
    index, grid, pad_hw = _patch_index("fold", size, kernel_size, dilation, padding, stride)
    kh, kw = index[0].shape[0], index[1].shape[1]
    n, columns, length = input.shape
    if columns % (kh * kw) or length != grid[0] * grid[1]:
        raise ValueError(f"fold: input {tuple(input.shape)} does not hold C * {kh * kw} values "
                         f"for each of the {grid[0] * grid[1]} patches of {size}")
    patches = input.reshape(n, columns // (kh * kw), kh, kw, grid[0], grid[1])
    padded_shape = (n, columns // (kh * kw), size[0] + 2 * pad_hw[0], size[1] + 2 * pad_hw[1])
    from gradwise.autograd.ops.shape import ScatterAdd
    full = ScatterAdd.apply(patches, padded_shape, (slice(None), slice(None), *index), False)
    return full[:, :, pad_hw[0]:pad_hw[0] + size[0], pad_hw[1]:pad_hw[1] + size[1]]


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1, *, generator: Any = None) -> Tensor:
    """A differentiable sample from the categorical distribution of ``logits`` (Jang et al.
    2016): ``softmax((logits + g) / tau)`` with Gumbel noise g; ``hard=True`` returns the
    one-hot argmax with the soft sample's gradient (straight-through), as torch's.

    Shape: any -> same
    """
    noise = _random.resolve(generator, None, "gumbel_softmax").exponential(size=logits.shape)
    gumbels = Tensor._make((-np.log(noise)).astype(logits.dtype), False, None)
    soft = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return soft
    picked = soft._data.argmax(axis=dim)
    one_hot_values = np.zeros(soft.shape, dtype=soft.dtype)
    np.put_along_axis(one_hot_values, np.expand_dims(picked, dim), 1.0, axis=dim)
    return Tensor._make(one_hot_values, False, None) - soft.detach() + soft


# ---- NumPy arrays as constant inputs ---------------------------------------------------------
def _constant_arrays(function: Any) -> Any:
    """``function`` taking NumPy arrays among its positional arguments as constant Tensors (no
    gradient, no copy), as ``Module.__call__`` does, so the functions composed from Tensor
    methods accept what a NumPy data pipeline yields."""
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        args = tuple(Tensor._make(a, False, None) if isinstance(a, np.ndarray) else a
                     for a in args)
        return function(*args, **kwargs)

    return wrapper


for _name in (
    "hardsigmoid", "hardswish", "mish", "softsign", "tanhshrink", "logsigmoid", "softmin",
    "threshold", "hardshrink", "softshrink", "celu", "selu", "glu", "prelu", "rrelu",
    "kl_div", "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss",
    "multilabel_soft_margin_loss", "cosine_embedding_loss", "pairwise_distance",
    "triplet_margin_loss", "poisson_nll_loss", "gaussian_nll_loss", "conv1d",
    "conv_transpose1d", "conv_transpose2d", "max_pool1d", "avg_pool1d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d", "interpolate",
    "upsample", "pixel_shuffle", "pixel_unshuffle", "group_norm", "instance_norm", "bilinear",
    "scaled_dot_product_attention", "rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell",
    "rnn_step", "lstm_step", "gru_step",
    "dropout1d", "dropout2d", "dropout3d", "rms_norm", "local_response_norm", "channel_shuffle",
    "multi_margin_loss", "alpha_dropout", "feature_alpha_dropout", "lp_pool1d", "lp_pool2d",
    "pdist", "triplet_margin_with_distance_loss", "unfold", "fold", "gumbel_softmax",
    "max_unpool1d", "max_unpool2d", "max_unpool3d", "conv3d", "conv_transpose3d", "max_pool2d",
    "max_pool3d", "avg_pool2d",
    "avg_pool3d", "lp_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d",
):
    globals()[_name] = _constant_arrays(globals()[_name])
del _name
