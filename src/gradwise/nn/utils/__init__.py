"""Gradient clipping, parameter counting and vectors, penalties, a model summary, weight and
spectral norm, BatchNorm folding; ``gradwise.nn.utils.rnn`` pads sequences and
``parametrize``/``parametrizations`` reparametrize tensors, as in torch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from gradwise.autograd.functional import cat
from gradwise.autograd.grad_mode import no_grad
from gradwise.autograd.tensor import Tensor
from gradwise.linalg import vector_norm
from gradwise.nn import functional as F
from gradwise.nn.module import Module
from gradwise.nn.utils import (  # noqa: F401 - the submodules, as in torch
    parametrizations,
    parametrize,
    rnn,
)
from gradwise.nn.utils.fusion import (
    fuse_conv_bn_eval,
    fuse_conv_bn_weights,
    fuse_linear_bn_eval,
    fuse_linear_bn_weights,
)
from gradwise.nn.utils.legacy_norms import (
    remove_spectral_norm,
    remove_weight_norm,
    spectral_norm,
    weight_norm,
)

__all__ = [
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "count_parameters",
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
    "get_total_norm",
    "l1_penalty",
    "l2_penalty",
    "parameters_to_vector",
    "parametrizations",
    "parametrize",
    "remove_spectral_norm",
    "remove_weight_norm",
    "spectral_norm",
    "summary",
    "vector_to_parameters",
    "weight_norm",
]

Parameters = Tensor | Iterable[Tensor] | Module


def _as_list(parameters: Parameters) -> list[Tensor]:
    if isinstance(parameters, Module):
        return list(parameters.parameters())
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def get_total_norm(tensors: Parameters, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """The ``norm_type``-norm of the norms of ``tensors`` (usually the gradients), as
    ``torch.nn.utils.get_total_norm``: each norm taken in its tensor's dtype, the total in
    their common dtype (``inf``: the largest absolute entry; any order ``vector_norm`` takes,
    as torch: 0 counts the nonzero entries, ``-inf`` is the smallest absolute entry, a
    negative p is (sum |x|^p)^(1/p)). ``foreach`` changes nothing.

    Returns:
        A 0-d Tensor (0.0 for no tensors), outside the graph.

    Raises:
        RuntimeError: ``error_if_nonfinite`` and the total is NaN or inf.
    """
    norm_type = float(norm_type)
    arrays = [t._data if isinstance(t, Tensor) else np.asarray(t)
              for t in _as_list(tensors) if t is not None]
    if not arrays:
        return Tensor._make(np.array(0.0, dtype=np.float32), False, None)
    with no_grad():
        norms = [vector_norm(Tensor._make(a, False, None), norm_type)._data for a in arrays]
        dtype = np.result_type(*norms)
        stacked = Tensor._make(np.stack([n.astype(dtype) for n in norms]), False, None)
        total = vector_norm(stacked, norm_type)._data
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"{float(total)}; some gradient is nan or inf, so they cannot be clipped "
            "(pass error_if_nonfinite=False to clip anyway)"
        )
    return Tensor._make(np.asarray(total), False, None)


def clip_grads_with_norm_(parameters: Parameters, max_norm: float, total_norm: Any,
                          foreach: bool | None = None) -> None:
    """Multiply every ``.grad`` in place by ``min(max_norm / (total_norm + 1e-6), 1)``, computed
    in the total norm's dtype (``torch.nn.utils.clip_grads_with_norm_``): an infinite total
    zeroes the finite gradients, a NaN total makes them NaN, as in torch. ``foreach`` changes
    nothing.

    Raises:
        ValueError: a negative ``max_norm``.
    """
    if max_norm < 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be non-negative, got {max_norm}")
    grads = [p._grad for p in _as_list(parameters) if p._grad is not None]
    if not grads:
        return
    total = total_norm._data if isinstance(total_norm, Tensor) else np.asarray(total_norm)
    # max_norm / (total + 1e-6) in total's dtype; np.minimum keeps a NaN (torch.clamp does too)
    clip_coef = np.minimum(max_norm / (total + 1e-6), 1.0)
    with np.errstate(invalid="ignore"):  # inf * 0 = NaN is the intended result (as torch)
        for grad in grads:
            grad *= clip_coef.astype(grad.dtype)


def clip_grad_norm_(
    parameters: Parameters,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    Follows ``torch.nn.utils.clip_grad_norm_`` step by step (:func:`get_total_norm` of the
    gradients, then :func:`clip_grads_with_norm_`): the norm of each ``.grad`` is taken in its
    own dtype (``gw.linalg.vector_norm``), the total norm is the ``norm_type``-norm of those
    norms (``inf``: the largest absolute entry), and every gradient is multiplied in place by
    ``clip_coef = min(max_norm / (total_norm + 1e-6), 1)``, computed in the total norm's dtype.
    So the non-finite cases behave as in PyTorch: an infinite total norm (an inf entry, or a
    float64 norm that overflows, like that of [1e200, 1e200]) gives ``clip_coef = 0``, which
    zeroes the finite gradients and turns inf entries into NaN; a NaN total norm makes every
    gradient NaN.

    Args:
        parameters: a Module, a Tensor, or an iterable of Tensors; those without ``.grad`` are
            skipped.
        max_norm: the largest total norm allowed (>= 0).
        norm_type: the order of the norm: any order ``gw.linalg.vector_norm`` takes (inf, 0,
            -inf and negative orders too, as torch).
        error_if_nonfinite: raise RuntimeError if the total norm is NaN or inf, leaving the
            gradients as they are.
        foreach: torch's choice of batched kernels; accepted, changes nothing.

    Returns:
        The total norm before clipping, as a float (PyTorch returns it as a 0-d tensor).
    """
    if max_norm < 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be non-negative, got {max_norm}")
    norm_type = float(norm_type)
    params = _as_list(parameters)
    grads = [Tensor._make(p._grad, False, None) for p in params if p._grad is not None]
    if not grads:
        return 0.0
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return float(total._data)


def clip_grad_value_(parameters: Parameters, clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value], in place.

    ``foreach`` (torch's choice of batched kernels) is accepted and changes nothing.

    Raises:
        ValueError: a negative ``clip_value``.
    """
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be non-negative, got {clip_value}")
    for param in _as_list(parameters):
        if param._grad is not None:
            np.clip(param._grad, -clip_value, clip_value, out=param._grad)


def parameters_to_vector(parameters: Parameters) -> Tensor:
    """All parameter values flattened and concatenated, in iteration order, as torch's: a new
    Tensor recorded for autograd (``cat`` of the flattened parameters), so the gradient of a
    function of the vector reaches the parameters.

    Shape: the parameters' sizes summed, (P,).

    Raises:
        ValueError: no parameters (torch: ``cat`` of an empty list).
    """
    params = _as_list(parameters)
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vector: Any, parameters: Parameters) -> None:
    """Copy consecutive slices of ``vector`` into the parameters, in place."""
    vector = np.asarray(vector._data if isinstance(vector, Tensor) else vector)
    params = _as_list(parameters)
    needed = sum(p.size for p in params)
    if vector.ndim != 1 or vector.size != needed:
        raise ValueError(
            f"vector_to_parameters: vector of shape {vector.shape} does not hold the {needed} "
            "parameter values"
        )
    offset = 0
    for param in params:
        param._data[...] = vector[offset : offset + param.size].reshape(param.shape)
        param._version[0] += 1
        offset += param.size


def count_parameters(model: Parameters, trainable_only: bool = True) -> int:
    """Number of parameter values (each shared parameter once); only trainable ones by default."""
    return sum(p.size for p in _as_list(model) if p.requires_grad or not trainable_only)


def l2_penalty(parameters: Parameters, weight_decay: float) -> Tensor:
    """``weight_decay * sum(w^2)`` over all parameters (biases too), differentiable.

    This is the PyTorch-forum convention (no factor 1/2): its gradient ``2 * weight_decay * w``
    equals SGD's ``weight_decay=2 * weight_decay``. Pass a filtered list to leave biases or
    norm layers out.

    Example:
        >>> loss = F.cross_entropy(model(x), y) + gw.nn.utils.l2_penalty(model, 1e-4)
    """
    params = [p for p in _as_list(parameters) if p.requires_grad]
    return F.l2_penalty(params) * weight_decay


def l1_penalty(parameters: Parameters, weight: float) -> Tensor:
    """``weight * sum(|w|)`` over all parameters (biases too), differentiable."""
    params = [p for p in _as_list(parameters) if p.requires_grad]
    return F.l1_penalty(params) * weight


def summary(
    model: Module,
    input_shape: tuple[int, ...],
    dtype: Any = np.float32,
    print_fn: Callable[[str], Any] | None = print,
) -> str:
    """A Keras-style table of the model's layers, output shapes and parameter counts.

    Runs one forward pass on zeros of ``input_shape`` (including the batch axis) under no_grad
    and in evaluation mode (so BatchNorm's running stats stay untouched); the training flags are
    restored afterwards. Rows are the leaf modules and any module with parameters of its own.

    Args:
        dtype: the dtype of the zeros (an integer dtype for models starting with Embedding).
        print_fn: called with the table; None to only return it.

    Returns:
        The table as a string.
    """
    shapes: dict[int, str] = {}
    rows = [
        (name, module)
        for name, module in model.named_modules()
        if not module._modules or any(p is not None for p in module._parameters.values())
    ]

    def record(module: Module, inputs: Any, output: Any) -> None:
        if isinstance(output, Tensor):
            shapes[id(module)] = str(tuple(output.shape))
        elif isinstance(output, tuple | list):
            shapes[id(module)] = ", ".join(
                str(tuple(o.shape)) for o in output if isinstance(o, Tensor)
            )

    modes = {id(m): m.training for m in model.modules()}
    handles = [module.register_forward_hook(record) for _, module in rows]
    try:
        model.eval()
        with no_grad():
            output = model(Tensor(np.zeros(tuple(input_shape), dtype=dtype)))
    finally:
        for handle in handles:
            handle.remove()
        for module in model.modules():
            object.__setattr__(module, "training", modes[id(module)])

    table = [("Layer (type)", "Output Shape", "Param #")]
    for name, module in rows:
        count = sum(p.size for p in module.parameters(recurse=False))
        label = f"{name or type(model).__name__} ({type(module).__name__})"
        table.append((label, shapes.get(id(module), "-"), f"{count:,}"))
    widths = [max(len(row[i]) for row in table) + 2 for i in range(3)]
    rule = "=" * sum(widths)

    def line(row: tuple[str, str, str]) -> str:
        return row[0].ljust(widths[0]) + row[1].ljust(widths[1]) + row[2].rjust(widths[2])

    total = count_parameters(model, trainable_only=False)
    trainable = count_parameters(model, trainable_only=True)
    out_shape = tuple(output.shape) if isinstance(output, Tensor) else "-"
    text = "\n".join(
        [
            f"Model: {type(model).__name__}    input {tuple(input_shape)} -> output {out_shape}",
            rule,
            line(table[0]),
            rule,
            *(line(row) for row in table[1:]),
            rule,
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
            rule,
        ]
    )
    if print_fn is not None:
        print_fn(text)
    return text
