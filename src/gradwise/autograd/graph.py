"""The recorded graph and the NumPy backward pass over it.

A Tensor made by an op keeps the op's node (``t._ctx``, a :class:`~gradwise.autograd.function.
Function` subclass's instance) and the node keeps its inputs. This module walks that graph: the
order to visit it in (``topological_order``, iterative, so depth is no limit), the edges as they
were when recorded when an in-place op has rebased a tensor's history since (``_inputs_of``), the
names torch gives nodes (``name_node``), and ``_run_backward``, the loop ``Tensor.backward()``
runs when ``create_graph`` is off: each node's backward on raw arrays, with the tensors' hooks,
the version checks that catch an in-place change of a saved tensor, and the anomaly detector's
checks. higher_order.py walks the same graph with differentiable ops (create_graph=True) and
shares the checks here.

Imports run one way: ``tensor`` <- ``anomaly`` <- this module <- ``function`` <- the ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd import _fperr, anomaly
from gradwise.autograd.tensor import Tensor

# set once any in-place op was recorded: from then on backward routes each edge by version
# (``_inputs_of``); until then it walks ``node.inputs`` as they are (the fast path)
_rebased = [False]

def _free(node: Any) -> None:
    """Drop what a node saved for backward; a recorded in-place op's node keeps its link to the
    earlier history, which nodes not yet run may still be routed through (``_inputs_of``)."""
    saved = node.__dict__
    if "_rebase_previous" in saved:
        version, previous = saved["_rebase_version"], saved["_rebase_previous"]
        saved.clear()
        node._rebase_version, node._rebase_previous = version, previous
    else:
        saved.clear()
    node.inputs = None

def _inputs_of(node: Any) -> tuple[Tensor, ...]:
    """The node's inputs as they were when it was recorded: an input whose history a recorded
    in-place op rebased since is replaced by its earlier history (torch's edges point at the
    grad_fn an input had then)."""
    inputs = node.inputs
    if not _rebased[0] or inputs is None:
        return inputs
    out = []
    for parent, version in zip(inputs, node.input_versions, strict=True):
        ctx = parent._ctx
        while ctx is not None and ctx._rebase_version > version:
            parent = ctx._rebase_previous
            ctx = parent._ctx
        out.append(parent)
    return tuple(out)

def topological_order(
    root: Tensor, include_constants: bool = False, caller: str = "backward"
) -> list[Tensor]:
    """Tensors that lead to ``root``, each after everything it depends on (``root`` last).

    Only tensors that require grad are included unless ``include_constants`` (the graph drawing
    wants them all). Iterative depth-first search: a graph 100,000 ops deep does not touch
    Python's recursion limit.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        node = tensor._ctx
        if node is None:
            continue
        if node.inputs is None:
            raise RuntimeError(
                f"{caller}: the graph through {node.name} was already freed by "
                "backward(); pass retain_graph=True to the first backward() to go through the "
                "graph again"
            )
        for parent in reversed(_inputs_of(node)):
            if (include_constants or parent._requires_grad) and id(parent) not in visited:
                stack.append((parent, False))
    return order

def name_node(result: Tensor, node_name: str) -> Tensor:
    """Give ``result``'s node (if it was recorded) PyTorch's name for the call that made it:
    a method built on a general op (``t()`` on Transpose, ``unsqueeze`` on Reshape) says which
    node torch records (``"TBackward0"``, ``"Unsqueeze"``). Returns ``result``."""
    node = result._ctx
    if node is not None:
        node.__class__ = type(node)._variant(_full_node_name(node_name))
    return result

def _full_node_name(name: str) -> str:
    """``"Mul"`` -> ``"MulBackward0"``; a name that already has its overload is kept."""
    return name if "Backward" in name else f"{name}Backward0"

def _check_versions(tensor: Tensor, node: Any) -> None:
    """Raise if a tensor the node saved for backward was changed in place since the forward, or
    (a node of a create_graph gradient) an output that gradient was computed from changed since.
    """
    if node.saved_guards:
        _check_saved_guards(node)
    if type(node).saves_output and tensor._version[0] != node.output_version:
        name = node.name  # built only for the message: a NodeName per node per step adds up
        raise RuntimeError(
            "one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: backward of {name}: its output (shape {tensor.shape}) was "
            "modified in place after the forward pass ("
            + ("overwritten by a recorded in-place op" if node.output_version < 0 else
               f"version {tensor._version[0]}, saved at {node.output_version}")
            + "); "
            "the gradient would be wrong. Use an out-of-place op or clone() first"
        )
    if type(node).saves_inputs:
        for i, (parent, saved) in enumerate(zip(node.inputs, node.input_versions, strict=True)):
            if parent._version[0] != saved:
                name = node.name
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by "
                    f"an inplace operation: backward of {name}: input {i} (shape {parent.shape}) "
                    "was modified in place "
                    f"after the forward pass (version {parent._version[0]}, saved at {saved}); "
                    "the gradient would be wrong. Use an out-of-place op or clone() first"
                )

def _check_saved_guards(node: Any) -> None:
    """Raise if an output that a create_graph gradient was computed from (``saved_guards``) was
    changed in place since: torch's "modified by an inplace operation ... output 0 of Sigmoid"
    when the gradient is differentiated again."""
    for output, version, op in node.saved_guards:
        if output._version[0] != version:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: the output (shape {output.shape}) of {op.op_name}, which "
                "the create_graph gradient being differentiated was computed from, is at "
                f"version {output._version[0]}; expected version {version} instead. Use an "
                "out-of-place op or clone() first"
            )

def _call_hooks(tensor: Tensor, grad: np.ndarray) -> np.ndarray:
    for hook in list(tensor._hooks or ()):
        replaced = hook(Tensor._make(grad, False, None))
        if replaced is not None:
            replaced = replaced._data if isinstance(replaced, Tensor) else np.asarray(replaced)
            if replaced.shape != grad.shape:
                raise ValueError(
                    f"hook returned a gradient of shape {replaced.shape}, expected {grad.shape}"
                )
            grad = replaced
    return grad

def _check_input_grad(node: Any, parent: Tensor, parent_grad: Any) -> None:
    """Raise if a node's backward gave an input that requires grad no gradient or a misshapen one
    (both backward loops, the NumPy one and the create_graph one, check the same way)."""
    if parent_grad is None:
        raise RuntimeError(
            f"backward of {node.name} returned no gradient for an input "
            f"of shape {parent.shape} that requires grad"
        )
    if parent_grad.shape != parent.shape:
        raise RuntimeError(
            f"backward of {node.name} returned a gradient of shape "
            f"{parent_grad.shape} for an input of shape {parent.shape}"
        )

def _distinct(arrays: tuple[Any, ...]) -> bool:
    """Whether no array (None aside) appears twice in ``arrays``, a node's few input gradients:
    pairwise identity, cheaper than a set of ids for the 2-3 gradients of a typical node."""
    count = len(arrays)
    for i in range(count - 1):
        first = arrays[i]
        if first is None:
            continue
        for j in range(i + 1, count):
            if arrays[j] is first:
                return False
    return True

@_fperr.quietly
def _run_backward(root: Tensor, grad: np.ndarray, retain_graph: bool) -> None:
    """Walk the graph from ``root`` in reverse topological order, applying each node's backward
    (NumPy's floating-point warnings off for the walk, as in every op's forward: ``_fperr``)."""
    order = topological_order(root)
    # id(tensor) -> (dL/dtensor, whether nothing else references that array)
    grads: dict[int, tuple[np.ndarray, bool]] = {id(root): (grad, False)}
    detector = anomaly._detector.get()
    for tensor in reversed(order):
        entry = grads.pop(id(tensor), None)
        if entry is None:
            continue
        grad, owned = entry
        if tensor._hooks:
            grad = _call_hooks(tensor, grad)
            owned = False  # a hook may have kept a reference to the array it was shown
        node = tensor._ctx
        if node is None or tensor._retains_grad:
            accumulated = tensor._grad
            if accumulated is not None:
                if (accumulated.flags.writeable and accumulated.dtype == tensor._data.dtype
                        and accumulated.shape == tensor._data.shape
                        and 0 not in accumulated.strides):  # not an expand()ed .grad
                    # in place, as torch's AccumulateGrad: a Tensor taken from .grad earlier
                    # sees the sum (and no new array per step)
                    np.add(accumulated, grad, out=accumulated, casting="same_kind")
                else:
                    # 0-d: NumPy gives a scalar; the sum keeps the leaf's dtype (as torch)
                    tensor._grad = np.asarray(accumulated + grad, dtype=tensor._data.dtype)
            elif (owned and node is None and grad.dtype == tensor._data.dtype
                  and type(grad) is np.ndarray):  # a 0-d backward may give a NumPy scalar
                tensor._grad = grad
            else:
                # a private copy: op backwards may hand one array to several inputs, and an
                # in-place change of .grad (clip_grad_norm_) must not reach the others
                tensor._grad = np.array(grad, dtype=tensor._data.dtype, copy=True)
        if node is None:
            continue
        _check_versions(tensor, node)
        input_grads = node.backward(node, grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if detector is not None:
            detector.after_backward(node, input_grads, grad)
        fresh = type(node).owns_grads
        if fresh and len(input_grads) > 1:
            # one array handed to two inputs is shared, whatever the op promises
            fresh = _distinct(input_grads)
        for parent, parent_grad, needed in zip(
            _inputs_of(node), input_grads, node.needs_input_grad, strict=True
        ):
            if not needed or (parent_grad is None and type(node).may_send_no_grad):
                continue
            if parent_grad is None or parent_grad.shape != parent._data.shape:
                _check_input_grad(node, parent, parent_grad)  # raises, naming the node
            key = id(parent)
            previous = grads.get(key)
            if previous is None:
                grads[key] = (parent_grad, fresh)
            else:
                grads[key] = (previous[0] + parent_grad, True)
        if not retain_graph:
            _free(node)

def _call_hooks_graph(tensor: Tensor, grad: Tensor) -> Tensor:
    for hook in list(tensor._hooks or ()):
        replaced = hook(grad)
        if replaced is not None:
            replaced = replaced if isinstance(replaced, Tensor) else Tensor(replaced)
            if replaced.shape != grad.shape:
                raise ValueError(
                    f"hook returned a gradient of shape {replaced.shape}, expected {grad.shape}"
                )
            grad = replaced
    return grad
