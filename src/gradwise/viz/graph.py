"""draw_graph: the computational graph behind a tensor, as Graphviz DOT (and SVG/PNG via ``dot``).

Tensors are boxes (name or role, shape, a summary of the values and of the gradient); ops are
ellipses named after their Function (``MatMul``, ``Sigmoid`` ...). Edges follow the data, from
inputs to outputs, so the picture reads like the forward pass and the gradients flow backwards.

Gradients: for a one-element tensor whose graph is intact, ``draw_graph`` runs the backward pass
itself on a retained graph and shows dL/d(node) for every node, then puts every ``.grad`` back as
it was, so drawing never changes training. Otherwise it shows whatever ``.grad`` the tensors hold.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from gradwise._atomic import atomic_write_bytes
from gradwise.autograd.graph import topological_order
from gradwise.autograd.tensor import Tensor

__all__ = ["GraphDrawing", "draw_graph", "graph_nodes"]

_FORMATS = ("dot", "svg", "png")


def _summary(array: np.ndarray | None) -> str:
    if array is None:
        return "-"
    array = np.asarray(array)
    if array.size <= 4:
        values = ", ".join(f"{v:.4g}" for v in array.reshape(-1).tolist())
        return f"[{values}]" if array.ndim else values
    finite = array[np.isfinite(array)] if array.dtype.kind in "fc" else array
    if finite.size == 0:
        return "all non-finite"
    text = f"mean {finite.mean():.3g}, min {finite.min():.3g}, max {finite.max():.3g}"
    if finite.size < array.size:
        text += f", {array.size - finite.size} non-finite"
    return text


def graph_nodes(root: Tensor) -> list[Tensor]:
    """Every tensor that leads to ``root`` (itself included), inputs before outputs."""
    return topological_order(root, include_constants=True, caller="draw_graph")


def _gradients(root: Tensor, nodes: list[Tensor]) -> dict[int, np.ndarray]:
    """dL/d(node) for every node, by a backward pass that leaves every ``.grad`` as it was."""
    if not root.requires_grad or root.size != 1:
        return {id(t): t._grad for t in nodes if t._grad is not None}
    saved = [(t, t._grad, t._retains_grad) for t in nodes]
    try:
        for tensor in nodes:
            tensor._grad = None
            if tensor.requires_grad:
                tensor._retains_grad = True
        root.backward(retain_graph=True)
        return {id(t): t._grad for t in nodes if t._grad is not None}
    finally:
        for tensor, grad, retains in saved:
            tensor._grad = grad
            tensor._retains_grad = retains


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _to_dot(root: Tensor, nodes: list[Tensor], grads: dict[int, np.ndarray]) -> str:
    ids = {id(t): f"t{i}" for i, t in enumerate(nodes)}
    lines = [
        "digraph gradwise {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [color="#555555"];',
    ]
    for i, tensor in enumerate(nodes):
        if tensor is root:
            role = tensor.name or "output"
        elif tensor.grad_fn is None:
            role = tensor.name or ("parameter" if tensor.requires_grad else "input")
        else:
            role = tensor.name or f"{tensor.grad_fn.name.lower()} result"
        parts = [role, f"shape {tuple(tensor.shape)}", f"value {_summary(tensor._data)}",
                 f"grad {_summary(grads.get(id(tensor)))}"]
        label = "\\n".join(_escape(part) for part in parts)  # \n: a line break in DOT
        fill = "#fde2b3" if tensor is root else ("#d5e8d4" if tensor.grad_fn is None
                                                  and tensor.requires_grad else "#eeeeee")
        lines.append(f'  t{i} [shape=box, style="rounded,filled", fillcolor="{fill}", '
                     f'label="{label}"];')
        node = tensor.grad_fn
        if node is not None:
            lines.append(f'  op{i} [shape=ellipse, style=filled, fillcolor="#dae8fc", '
                         f'label="{_escape(node.name)}"];')
            for position, parent in enumerate(node.inputs):
                tail = f' [label="{position}"]' if len(node.inputs) > 1 else ""
                lines.append(f"  {ids[id(parent)]} -> op{i}{tail};")
            lines.append(f"  op{i} -> t{i};")
    lines.append("}")
    return "\n".join(lines) + "\n"


class GraphDrawing(str):
    """The DOT text of a graph (a ``str``), which also draws itself in Jupyter.

    In a notebook the last expression ``gw.viz.draw_graph(loss)`` shows the graph inline as SVG
    rendered by Graphviz's ``dot``; without ``dot`` it shows the DOT text and says how to get
    the picture. Everywhere else it is the DOT text, as before.
    """

    __slots__ = ()

    def svg(self) -> str:
        """The graph rendered by ``dot -Tsvg``.

        Raises:
            FileNotFoundError: Graphviz's ``dot`` is not installed.
            RuntimeError: ``dot`` rejected the text (its message included).
        """
        program = shutil.which("dot")
        if program is None:
            raise FileNotFoundError("draw_graph: Graphviz's 'dot' program was not found; "
                                    "install graphviz to render the graph")
        rendered = subprocess.run([program, "-Tsvg"], input=str(self).encode("utf-8"),
                                  capture_output=True, check=False)
        if rendered.returncode != 0:
            raise RuntimeError(f"draw_graph: dot failed to render the graph: "
                               f"{rendered.stderr.decode(errors='replace').strip()}")
        return rendered.stdout.decode("utf-8")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter's display hook: SVG when ``dot`` is there, otherwise the DOT text as HTML."""
        nodes = self.count("shape=box")
        plain = f"<computational graph: {nodes} tensors; str() gives the DOT text>"
        try:
            return {"image/svg+xml": self.svg(), "text/plain": plain}
        except FileNotFoundError:
            note = ("Graphviz's <code>dot</code> is not installed, so here is the DOT text "
                    "(install graphviz to see the picture):")
            return {"text/html": f"<p>{note}</p><pre>{html.escape(str(self))}</pre>",
                    "text/plain": plain}


def draw_graph(
    tensor: Tensor, path: str | Path | None = None, format: str | None = None
) -> GraphDrawing:
    """The computational graph of ``tensor`` as Graphviz DOT text, optionally written to disk.

    Args:
        tensor: any Tensor; its graph must not have been freed by ``backward()`` yet.
        path: where to write. The DOT text always goes to ``path`` with a ``.dot`` suffix; for
            ``svg``/``png`` the ``dot`` program (Graphviz) also renders ``path`` in that format,
            and when it is missing a warning says so and only the ``.dot`` file is written.
        format: ``"dot"``, ``"svg"`` or ``"png"``; by default taken from ``path``'s suffix,
            else ``"dot"``.

    Returns:
        the DOT text, as a :class:`GraphDrawing` (a ``str`` that Jupyter displays as SVG).

    Example:
        >>> w = gw.tensor([0.5, 0.3], requires_grad=True)
        >>> loss = (w * gw.tensor([1.0, 2.0])).sum().sigmoid()
        >>> print(gw.viz.draw_graph(loss, "neuron.svg"))   # doctest: +SKIP
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"draw_graph: expected a Tensor, got {type(tensor).__name__}")
    if format is None:
        suffix = Path(path).suffix.lower().lstrip(".") if path is not None else ""
        format = suffix if suffix in _FORMATS else "dot"
    if format not in _FORMATS:
        raise ValueError(f"draw_graph: format must be one of {_FORMATS}, got {format!r}")
    nodes = graph_nodes(tensor)
    dot_text = GraphDrawing(_to_dot(tensor, nodes, _gradients(tensor, nodes)))
    if path is None:
        return dot_text
    path = Path(path)
    dot_path = path.with_suffix(".dot")
    atomic_write_bytes(dot_path, dot_text.encode("utf-8"))
    if format != "dot":
        program = shutil.which("dot")
        if program is None:
            warnings.warn(
                f"draw_graph: Graphviz's 'dot' program was not found, so only {dot_path} was "
                f"written; install graphviz to get {format.upper()}",
                RuntimeWarning,
                stacklevel=2,
            )
        else:
            rendered = subprocess.run(
                [program, f"-T{format}", str(dot_path)], capture_output=True, check=False
            )
            if rendered.returncode != 0:
                raise RuntimeError(
                    f"draw_graph: dot failed to render {dot_path}: "
                    f"{rendered.stderr.decode(errors='replace').strip()}"
                )
            atomic_write_bytes(path.with_suffix(f".{format}"), rendered.stdout)
    return dot_text
