"""Gradients as values: ``gradwise.autograd.grad``, PyTorch's ``torch.autograd.grad``.

``grad(outputs, inputs)`` returns d(outputs)/d(inputs) without touching any ``.grad``; with
``create_graph=True`` the returned gradients carry a graph of their own (every op on the way
runs its differentiable ``backward_graph``), so they can be differentiated again: gradient
penalties, Hessian-vector products, double backprop.

Example (a gradient penalty, as in WGAN-GP)::

    x = gw.randn(8, 3, requires_grad=True)
    score = model(x).sum()
    (g,) = gw.autograd.grad(score, x, create_graph=True)
    penalty = ((g * g).sum(dim=1).sqrt() - 1) ** 2
    penalty.mean().backward()          # reaches the model's parameters through g
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradwise.autograd.tensor import Tensor, _run_backward_graph


def _as_tensors(value: Tensor | Sequence[Tensor], what: str) -> list[Tensor]:
    items = [value] if isinstance(value, Tensor) else list(value)
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            raise TypeError(f"grad: {what}[{i}] is {type(item).__name__}, expected a Tensor")
    return items


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """The sum over ``outputs`` of grad_output . d(output)/d(input), for each input.

    Args:
        outputs: a Tensor or a sequence of them (each must require grad).
        inputs: a Tensor or a sequence of them that require grad.
        grad_outputs: one gradient per output (Tensor, array or None); None means 1, allowed only
            for a one-element output, as in PyTorch. A Tensor that requires grad is
            differentiated through when ``create_graph``.
        retain_graph: keep the graph for another backward; defaults to ``create_graph``.
        create_graph: record the gradient computation so its results can be differentiated.
        allow_unused: return None for an input the outputs do not depend on instead of raising.
    Returns:
        A tuple with one gradient per input, shaped like it (None for an unused input when
        ``allow_unused``). ``.grad`` of every tensor is left as it was.
    Raises:
        RuntimeError: an output or input does not require grad; an input is unused and
            ``allow_unused`` is False; an op on the way has no differentiable backward while
            ``create_graph`` is set (the message names the op).
        ValueError: a grad_output's shape differs from its output's.
    """
    outputs = _as_tensors(outputs, "outputs")
    inputs = _as_tensors(inputs, "inputs")
    if grad_outputs is None or isinstance(grad_outputs, Tensor | np.ndarray):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    else:
        grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(
            f"grad: {len(grad_outputs)} grad_outputs for {len(outputs)} outputs"
        )
    if retain_graph is None:
        retain_graph = create_graph
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            raise RuntimeError(
                f"grad: inputs[{i}] (shape {x.shape}) does not require grad, so no gradient "
                "can be taken with respect to it"
            )
    root_grads = []
    for i, (out, given) in enumerate(zip(outputs, grad_outputs, strict=True)):
        if not out.requires_grad:
            raise RuntimeError(
                f"grad: outputs[{i}] (shape {out.shape}) does not require grad (no input "
                "requires grad, or it was computed under no_grad())"
            )
        if given is None:
            if out._data.size != 1:
                raise RuntimeError(
                    f"grad: outputs[{i}] has shape {out.shape}; a gradient can be created "
                    "implicitly only for a one-element output. Pass grad_outputs"
                )
            given = Tensor._make(np.ones_like(out._data), False, None)
        elif not isinstance(given, Tensor):
            given = Tensor._make(np.asarray(given, dtype=out._data.dtype), False, None)
        if given.shape != out.shape:
            raise ValueError(
                f"grad: grad_outputs[{i}] has shape {given.shape} but outputs[{i}] has shape "
                f"{out.shape}"
            )
        root_grads.append(given)
    results = _run_backward_graph(outputs, root_grads, retain_graph, create_graph, inputs)
    assert results is not None
    for i, (x, result) in enumerate(zip(inputs, results, strict=True)):
        if result is None and not allow_unused:
            raise RuntimeError(
                f"grad: inputs[{i}] (shape {x.shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
    return tuple(results)
