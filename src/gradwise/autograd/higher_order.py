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

from gradwise.autograd import _fperr, anomaly
from gradwise.autograd.grad_mode import set_grad_enabled
from gradwise.autograd.graph import (
    _call_hooks_graph,
    _check_input_grad,
    _check_versions,
    _free,
    _inputs_of,
    topological_order,
)
from gradwise.autograd.ops import elementwise as _ew
from gradwise.autograd.ops import shape as _shape
from gradwise.autograd.tensor import Tensor


def _as_tensors(value: Tensor | Sequence[Tensor], what: str, caller: str = "grad"
                ) -> list[Tensor]:
    items = [value] if isinstance(value, Tensor) else list(value)
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            raise TypeError(f"{caller}: {what}[{i}] is {type(item).__name__}, expected a Tensor")
    return items


def _root_grads(outputs: list[Tensor], grad_outputs: Any, caller: str, outputs_name: str,
                grads_name: str) -> list[Tensor]:
    """One starting gradient per output, checked: 1 for a one-element output given None,
    arrays as constants, Tensors cast to the output's dtype (recorded).

    Raises:
        ValueError: a count mismatch (torch does not check it; docs/PORTING.md).
        RuntimeError: a shape mismatch (torch's "Mismatch in shape"); an output that does not
            require grad, or None for an output of more than one element.
    """
    if grad_outputs is None or isinstance(grad_outputs, Tensor | np.ndarray):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    else:
        grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(
            f"{caller}: {len(grad_outputs)} {grads_name} for {len(outputs)} {outputs_name}"
        )
    root_grads = []
    for i, (out, given) in enumerate(zip(outputs, grad_outputs, strict=True)):
        if not out.requires_grad:
            raise RuntimeError(
                f"{caller}: {outputs_name}[{i}] (shape {out.shape}) does not require grad (no "
                "input requires grad, or it was computed under no_grad())"
            )
        if given is None:
            if out._data.size != 1:
                raise RuntimeError(
                    f"{caller}: {outputs_name}[{i}] has shape {out.shape}; a gradient can be "
                    f"created implicitly only for a one-element output. Pass {grads_name}"
                )
            given = Tensor._make(np.ones_like(out._data), False, None)
        elif not isinstance(given, Tensor):
            given = Tensor._make(np.asarray(given, dtype=out._data.dtype), False, None)
        elif given._data.dtype != out._data.dtype:
            given = given.to(out._data.dtype)  # recorded: a grad_output that requires grad
        if given.shape != out.shape:
            raise RuntimeError(  # torch's type and words
                f"{caller}: Mismatch in shape: {grads_name}[{i}] has shape {given.shape} but "
                f"{outputs_name}[{i}] has shape {out.shape}"
            )
        root_grads.append(given)
    return root_grads


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Tensor | Sequence[Tensor] | None = None,
) -> None:
    """Accumulate the gradients of ``tensors`` (weighted by ``grad_tensors``) into ``.grad``,
    as ``torch.autograd.backward``: the sum over the tensors of grad . d(tensor)/d(leaf).

    Args:
        tensors: a Tensor or a sequence of them, each requiring grad.
        grad_tensors: one gradient per tensor (Tensor, array or None; None means 1 and is
            allowed only for a one-element tensor).
        retain_graph: keep the graph for another backward; defaults to ``create_graph``.
        create_graph: record the backward pass so the gradients can be differentiated again.
        inputs: when given, only these tensors (leaves or not) get their ``.grad``
            accumulated; the leaves of the graph and ``retain_grad()`` tensors are left alone.
            An input the tensors do not depend on keeps its ``.grad``, as in torch.

    Raises:
        RuntimeError: a tensor does not require grad, an implicit gradient for a tensor of
            more than one element, ``inputs`` empty (torch: "`inputs` argument to
            `backward()` cannot be empty.") or holding a tensor that does not require grad.
        RuntimeError: a shape mismatch between a tensor and its grad_tensor (torch's
            "Mismatch in shape").
        ValueError: a count mismatch between ``tensors`` and ``grad_tensors``.
        TypeError: an entry of ``tensors`` that is not a Tensor (RuntimeError for ``inputs``,
            as torch).

    Example:
        >>> gw.autograd.backward([loss_a, loss_b], inputs=[encoder_weight])
    """
    roots = _as_tensors(tensors, "tensors", "backward")
    root_grads = _root_grads(roots, grad_tensors, "backward", "tensors", "grad_tensors")
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is None:
        _run_backward_graph(roots, root_grads, retain_graph, create_graph, capture=None)
        return
    given: list[Any] = list(inputs) if isinstance(inputs, tuple | list) else [inputs]
    for i, item in enumerate(given):
        if not isinstance(item, Tensor):  # torch's type and words
            raise RuntimeError(f"backward: all inputs have to be Tensors, but inputs[{i}] is "
                               f"{type(item).__name__}")
    targets: list[Tensor] = given
    if not targets:
        raise RuntimeError("backward: `inputs` argument to `backward()` cannot be empty.")
    for i, target in enumerate(targets):
        if not target.requires_grad:
            raise RuntimeError(f"backward: inputs[{i}] (shape {target.shape}) does not require "
                               "grad, so no gradient can be accumulated into it")
    results = _run_backward_graph(roots, root_grads, retain_graph, create_graph, targets)
    assert results is not None
    for target, result in zip(targets, results, strict=True):
        if result is not None:
            _accumulate_graph_grad(target, result, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
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
        allow_unused: return None for an input the outputs do not depend on instead of raising
            (default False; True when ``materialize_grads``).
        is_grads_batched: torch's vmap over the first dim of grad_outputs; not supported
            (docs/PORTING.md): True raises NotImplementedError.
        materialize_grads: return zeros instead of None for an unused input, as torch.
    Returns:
        A tuple with one gradient per input, shaped like it (None for an unused input when
        ``allow_unused``). ``.grad`` of every tensor is left as it was. A grad_output of another
        dtype is cast to its output's dtype first (as ``backward()`` and torch do). With
        ``create_graph`` a returned gradient requires grad exactly where torch's does: where
        the backward pass read a tensor that requires grad. The gradient of ``x * 3`` is a
        constant (``requires_grad`` False; differentiating it again raises, as torch), and
        differentiating a gradient with respect to an input it does not reach gives None
        with ``allow_unused`` (zeros with ``materialize_grads``) and an error without, as
        torch's "One of the differentiated Tensors appears to not have been used in the
        graph". Ops whose torch backward reads their input through a zero-derivative op (relu
        and its family, abs, the 1- and inf-norms, copysign, remainder, fmod) link their
        gradient to the input, so it requires grad and differentiates to zeros, as torch.
    Raises:
        NotImplementedError: ``is_grads_batched``.
        ValueError: ``materialize_grads`` with ``allow_unused=False``.
        RuntimeError: an output or input does not require grad; an input is unused and
            ``allow_unused`` is False; an op on the way has no differentiable backward while
            ``create_graph`` is set (the message names the op).
        RuntimeError: a grad_output's shape differs from its output's (torch's "Mismatch in
            shape"); ``inputs`` empty (torch: "`inputs` argument to `grad()` cannot be empty.")
            or holding something that is not a Tensor (torch: "all inputs have to be Tensors").
    """
    if is_grads_batched:
        raise NotImplementedError(
            "grad: is_grads_batched=True (torch's vmap over grad_outputs) is not supported; "
            "call grad once per grad_output (docs/PORTING.md)"
        )
    if materialize_grads and allow_unused is False:
        raise ValueError("grad: materialize_grads=True needs allow_unused True or unset")
    allow_unused = bool(allow_unused) or materialize_grads
    outputs = _as_tensors(outputs, "outputs")
    given: list[Any] = list(inputs) if isinstance(inputs, tuple | list) else [inputs]
    if not given:
        raise RuntimeError("grad: `inputs` argument to `grad()` cannot be empty.")
    for i, x in enumerate(given):
        if not isinstance(x, Tensor):
            raise RuntimeError(f"grad: all inputs have to be Tensors, but inputs[{i}] is "
                               f"{type(x).__name__}")
    inputs = given
    if retain_graph is None:
        retain_graph = create_graph
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            raise RuntimeError(
                f"grad: inputs[{i}] (shape {x.shape}) does not require grad, so no gradient "
                "can be taken with respect to it"
            )
    root_grads = _root_grads(outputs, grad_outputs, "grad", "outputs", "grad_outputs")
    results = _run_backward_graph(outputs, root_grads, retain_graph, create_graph, inputs)
    assert results is not None
    for i, (x, result) in enumerate(zip(inputs, results, strict=True)):
        if result is None and not allow_unused:
            raise RuntimeError(
                f"grad: inputs[{i}] (shape {x.shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
    if materialize_grads:
        results = [Tensor._make(np.zeros_like(x._data), False, None) if r is None else r
                   for r, x in zip(results, inputs, strict=True)]
    return tuple(results)


def _guard_output(input_grads: Any, grad: Tensor, output: Tensor, node: Any) -> None:
    """Mark the nodes of the gradients ``node``'s ``backward_graph`` recorded with ``output`` and
    its version now, so differentiating them after ``output`` changed in place raises (torch
    checks the ``result`` its double backward reads), whether or not the recorded ops read
    ``output`` itself."""
    guard = ((output, output._version[0], type(node)),)
    for input_grad in input_grads if isinstance(input_grads, tuple) else (input_grads,):
        if isinstance(input_grad, Tensor) and input_grad._ctx is not None \
                and input_grad._ctx is not grad._ctx:
            input_grad._ctx.saved_guards = input_grad._ctx.saved_guards + guard


@_fperr.quietly
def _run_backward_graph(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None,
) -> list[Tensor | None] | None:
    """The engine behind ``backward(create_graph=True)`` and ``gradwise.autograd.grad``.

    Gradients travel as Tensors. With ``create_graph`` each node's ``backward_graph`` (Tensor
    ops, recorded) computes its input gradients, so the results have a graph of their own; without
    it the NumPy ``backward`` runs and the results are plain Tensors. With ``capture`` the total
    gradient of each listed tensor is returned (None where the graph does not reach it) and no
    ``.grad`` is touched; without it gradients accumulate into ``.grad`` as ``backward()`` does.
    The plain ``backward()`` keeps its own NumPy-only loop (``_run_backward``), untouched.
    NumPy's floating-point warnings are off for the walk (``_fperr``), as in ``_run_backward``.
    """
    order: list[Tensor] = []
    seen: set[int] = set()
    for root in roots:
        # each root's order is topological and a tensor appears after all it depends on, so the
        # concatenation with repeats removed is topological too
        for tensor in topological_order(root, caller="grad" if capture is not None else "backward"):
            if id(tensor) not in seen:
                seen.add(id(tensor))
                order.append(tensor)
    grads: dict[int, Tensor] = {}
    for root, root_grad in zip(roots, root_grads, strict=True):
        previous = grads.get(id(root))
        grads[id(root)] = root_grad if previous is None else previous + root_grad
    wanted = {id(t): i for i, t in enumerate(capture)} if capture is not None else {}
    results: list[Tensor | None] = [None] * len(wanted)
    detector = anomaly._detector.get()
    with set_grad_enabled(create_graph):
        for tensor in reversed(order):
            grad = grads.pop(id(tensor), None)
            if grad is None:
                continue
            if tensor._hooks:
                grad = _call_hooks_graph(tensor, grad)
            node = tensor._ctx
            if capture is not None:
                position = wanted.get(id(tensor))
                if position is not None:
                    results[position] = grad
            elif node is None or tensor._retains_grad:
                _accumulate_graph_grad(tensor, grad, create_graph)
            if node is None:
                continue
            _check_versions(tensor, node)
            if create_graph:
                backward_graph = getattr(type(node), "backward_graph", None)
                if backward_graph is None:
                    why = getattr(type(node), "no_backward_graph", None)
                    raise RuntimeError(
                        f"create_graph: {node.name} has no differentiable backward"
                        + (f" ({why}; see docs/NUMERICS.md)" if why else " yet")
                        + ", so its gradient cannot be differentiated again; use "
                        "create_graph=False, or write the computation from ops that have one"
                    )
                reads_output = type(node).saves_output
                if reads_output:
                    node.result = tensor  # read by backward_graph as torch reads ``result``
                try:
                    if detector is None:
                        input_grads = backward_graph(node, grad)
                    else:
                        input_grads = detector.run_backward_graph(node, backward_graph, grad)
                finally:
                    if reads_output:
                        node.result = None  # no tensor -> node -> tensor cycle kept
                if reads_output and node.double_backward_reads_output:
                    _guard_output(input_grads, grad, tensor, node)
            else:
                if detector is None:
                    arrays = node.backward(node, grad._data)
                else:
                    with np.errstate(all="ignore"):  # the detector reports them itself
                        arrays = node.backward(node, grad._data)
                if not isinstance(arrays, tuple):
                    arrays = (arrays,)
                if detector is not None:
                    detector.after_backward(node, arrays, grad._data)
                input_grads = tuple(
                    None if g is None else Tensor._make(np.asarray(g), False, None)
                    for g in arrays
                )
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for parent, parent_grad, needed in zip(
                _inputs_of(node), input_grads, node.needs_input_grad, strict=True
            ):
                if not needed or (parent_grad is None and type(node).may_send_no_grad):
                    continue
                _check_input_grad(node, parent, parent_grad)
                previous = grads.get(id(parent))
                grads[id(parent)] = parent_grad if previous is None else previous + parent_grad
            if not retain_graph:
                _free(node)
    if capture is None:
        return None
    if not create_graph:
        # a NumPy backward may hand out read-only broadcast views; the caller owns its results
        results = [
            None if g is None else Tensor._make(np.array(g._data, copy=True), False, None)
            for g in results
        ]
    return results


def _accumulate_graph_grad(tensor: Tensor, grad: Tensor, create_graph: bool) -> None:
    """Add ``grad`` into ``tensor.grad``; under create_graph the sum keeps its graph."""
    if grad.dtype != tensor._data.dtype:
        grad = _ew.Cast.apply(grad, tensor._data.dtype)
    if tensor._grad is not None:
        recorded = tensor._grad_graph
        if recorded is None or recorded._data is not tensor._grad:
            recorded = Tensor._make(tensor._grad, False, None)
        total = recorded + grad
    else:
        # a private copy (recorded when create_graph): an op's backward may hand one array to
        # several inputs, and an in-place change of .grad must not reach the others
        total = _shape.Copy.apply(grad)
    tensor._grad = total._data
    tensor._grad_graph = total if create_graph and total.requires_grad else None
