"""Free functions over tensors (gw.cat, gw.where, ...) that take several tensors at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from gradwise.autograd import dtypes as _dtypes
from gradwise.autograd._args import dim_arg
from gradwise.autograd.higher_order import grad
from gradwise.autograd.ops import elementwise, shape
from gradwise.autograd.tensor import Tensor, _as_array


def _as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if like is not None:
        return like._lift(value)
    return Tensor._make(_as_array(value), False, None)  # an int is a value, not a shape


def promoted(*values: Any) -> list[Tensor]:
    """``values`` as Tensors of their common dtype (PyTorch's promotion, autograd/dtypes.py).

    A Tensor of another dtype is cast through the recorded ``Cast`` op, so the gradient still
    reaches it (in its own dtype); constants become constant Tensors of the common dtype.
    """
    target = _dtypes.result_type(*values)
    out = []
    for value in values:
        if isinstance(value, Tensor):
            out.append(value if value._data.dtype == target
                       else elementwise.Cast.apply(value, target))
        else:
            out.append(Tensor._make(_dtypes.as_array(value, target), False, None))
    return out


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum; a tie splits the gradient evenly between a and b. The result has
    the operands' promoted dtype (int tensor and float tensor: float32, as in PyTorch)."""
    return elementwise.Maximum.apply(*promoted(a, b))


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum; a tie splits the gradient evenly between a and b. The result has
    the operands' promoted dtype, as :func:`maximum`."""
    return elementwise.Minimum.apply(*promoted(a, b))


def where(condition: Any, a: Any = None, b: Any = None) -> Any:
    """Pick ``a`` where ``condition`` holds, else ``b``; the gradient goes to the side picked.

    ``a`` and ``b`` (tensors or numbers) take their promoted dtype, as in PyTorch:
    ``where(cond, int_tensor, 0.5)`` is float32. With ``condition`` alone it is
    ``nonzero(condition, as_tuple=True)``: a tuple of int64 index tensors, one per dim.

    Raises:
        TypeError: only one of ``a`` and ``b`` given.
        ValueError: the three shapes do not broadcast together.
    """
    compared = getattr(condition, "_compared", None)
    if compared is not None and (condition._version[0] or compared[1]._version[0] != compared[4]):
        compared = None  # the mask or the value it compared was changed in place since
    condition = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if a is None and b is None:
        return tuple(Tensor._make(index.astype(np.int64), False, None)
                     for index in np.nonzero(condition))
    if a is None or b is None:
        raise TypeError("where: give both a and b, or the condition alone")
    out = elementwise.Where.apply(condition, *promoted(a, b))
    if compared is not None and out._ctx is not None:
        out._ctx.condition_source = compared  # how onnx.export writes the mask (Tensor._compare)
    return out


def cat(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing dim (default 0; NumPy alias ``axis``); mixed dtypes take
    their promoted dtype (int64 and float32: float32, as in PyTorch).

    Raises:
        ValueError: no tensors given.
    """
    if len(tensors) == 0:
        raise ValueError("cat: expected a non-empty list of tensors")
    return shape.Cat.apply(*_promoted_dimensioned(tensors),
                           axis=dim_arg("cat", dim, axis, 0))


def stack(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join same-shaped tensors along a new dim (default 0; NumPy alias ``axis``); mixed
    dtypes take their promoted dtype, as :func:`cat`.

    Raises:
        ValueError: no tensors given.
    """
    if len(tensors) == 0:
        raise ValueError("stack: expected a non-empty list of tensors")
    return shape.Stack.apply(*_promoted_dimensioned(tensors),
                             axis=dim_arg("stack", dim, axis, 0))


def _promoted_dimensioned(values: Sequence[Any]) -> list[Tensor]:
    """cat/stack operands of one dtype; all count as dimensioned (torch: 0-d inputs to stack
    promote like the others)."""
    tensors = [_as_tensor(v) for v in values]
    if len({t._data.dtype for t in tensors}) == 1:
        return tensors
    target = _dtypes.promote([t._data.dtype for t in tensors], [])
    return [t if t._data.dtype == target else elementwise.Cast.apply(t, target)
            for t in tensors]


def pad(x: Tensor, pad_width: Any, value: float = 0.0) -> Tensor:
    """Constant padding with NumPy's ``pad_width`` ((before, after) per axis)."""
    return shape.Pad.apply(x, pad_width, value)


def broadcast_to(x: Tensor, shape_: Sequence[int]) -> Tensor:
    """``x`` broadcast to ``shape_`` by NumPy rules (a view); the gradient sums over broadcast dims.

    Raises ValueError naming both shapes when they are not compatible.
    """
    return shape.BroadcastTo.apply(x, tuple(shape_))


# ---- higher-order functional API (PyTorch's torch.autograd.functional) -----------------------
def _tensor_or_tuple(value: Any, what: str, name: str) -> None:
    """torch's check: ``inputs`` and ``v`` are a Tensor or a tuple of Tensors, never a list.

    Raises:
        TypeError: a list (or another non-tuple sequence), as torch's ``_as_tuple``.
    """
    if not isinstance(value, Tensor | tuple):
        raise TypeError(f"{what}: The {name} given to {what} must be either a Tensor or a tuple "
                        f"of Tensors but the given {name} has type {type(value)}.")


def _prepare_inputs(inputs: Tensor | Sequence[Tensor], create_graph: bool, what: str = ""
                    ) -> tuple[tuple[Tensor, ...], bool]:
    """The inputs as fresh leaves that require grad (or, with create_graph, as recorded copies
    of those that already do, so an outer graph reaches them), and whether one was given alone.

    Raises:
        TypeError: (with ``what``, the public function's name) inputs given as a list, as torch.
    """
    if what:
        _tensor_or_tuple(inputs, what, "inputs")
    single = isinstance(inputs, Tensor)
    items = (inputs,) if single else tuple(inputs)
    prepared = []
    for i, x in enumerate(items):
        if not isinstance(x, Tensor):
            raise TypeError(f"inputs[{i}] is {type(x).__name__}, expected a Tensor")
        if create_graph and x.requires_grad:
            prepared.append(shape.Copy.apply(x))
        else:
            prepared.append(Tensor._make(x._data, True, None))
    return tuple(prepared), single


def _output(fn: Callable[..., Tensor], inputs: tuple[Tensor, ...], what: str) -> Tensor:
    """The one Tensor ``fn`` returns (hessian, hvp and vhp need a scalar function).

    Raises:
        RuntimeError: a tuple or list (torch: "The function given to hvp should return a
            single Tensor"). TypeError: anything else that is not a Tensor.
    """
    out = fn(*inputs)
    if isinstance(out, tuple):
        raise RuntimeError(f"{what}: The function given to {what} should return a single "
                           f"Tensor, got a {type(out).__name__} of {len(out)}")
    if not isinstance(out, Tensor):
        raise TypeError(f"{what}: func returned {type(out).__name__}, expected one Tensor")
    return out


def _zeros_for_unused(grads: tuple[Tensor | None, ...], inputs: tuple[Tensor, ...]
                      ) -> tuple[Tensor, ...]:
    return tuple(
        Tensor._make(np.zeros_like(x._data), False, None) if g is None else g
        for g, x in zip(grads, inputs, strict=True)
    )


def _grad_or_zeros(out: Tensor, inputs: tuple[Tensor, ...], grad_output: Any,
                   create_graph: bool, retain_graph: bool = True) -> tuple[Tensor, ...]:
    if not out.requires_grad:  # the output does not depend on any input
        return _zeros_for_unused((None,) * len(inputs), inputs)
    grads = grad(out, inputs, grad_output, retain_graph=retain_graph, create_graph=create_graph,
                 allow_unused=True)
    return _zeros_for_unused(grads, inputs)


def _outputs(fn: Callable[..., Any], inputs: tuple[Tensor, ...], what: str
             ) -> tuple[tuple[Tensor, ...], bool]:
    """``fn``'s outputs as a tuple, and whether it returned a tuple, as torch's ``_as_tuple``.

    Raises:
        TypeError: an output that is not a Tensor (a list included, as torch).
    """
    raw = fn(*inputs)
    is_tuple = isinstance(raw, tuple)
    outs = raw if is_tuple else (raw,)
    for i, out in enumerate(outs):
        if not isinstance(out, Tensor):
            raise TypeError(f"{what}: func returned {type(out).__name__}"
                            + (f" at position {i}" if is_tuple else "")
                            + ", expected a Tensor or a tuple of Tensors")
    return outs, is_tuple


def _as_vectors(v: Any, like: tuple[Tensor, ...], what: str, name: str) -> tuple[Any, ...]:
    """``v`` as one entry per tensor of ``like``; torch's type and length checks and messages.

    Raises:
        TypeError: v is a list (torch: a Tensor or a tuple of Tensors). RuntimeError: its length
            differs from ``like``'s.
    """
    if isinstance(v, list):
        _tensor_or_tuple(v, what, "v")
    vs = v if isinstance(v, tuple) else (v,)
    if len(vs) != len(like):
        raise RuntimeError(f"{what}: v is a tuple of invalid length: should be {len(like)} but "
                           f"got {len(vs)} (one per {name})")
    return vs


def _strict_outputs(outs: tuple[Tensor, ...], what: str) -> None:
    """strict: every output must depend differentiably on the inputs (torch's message)."""
    for i, out in enumerate(outs):
        if not out.requires_grad:
            raise RuntimeError(
                f"{what}: Output {i} of the user-provided function does not require gradients. "
                "The outputs must be computed in a differentiable manner from the input when "
                "running in strict mode.")


_STRICT_NONE = {
    "back": "The output of the user-provided function is independent of input {i}. This is "
            "not allowed in strict mode.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the "
                  "grad_outputs when using the double backward trick to compute forward mode "
                  "gradients. This is not allowed in strict mode.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}. "
                   "This is not allowed in strict mode.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry "
                         "{i} in the grad_jacobian. This is not allowed in strict mode as it "
                         "prevents from using the double backward trick to replace forward "
                         "mode AD.",
}


def _strict_grads(grads: Sequence[Tensor | None], what: str, stage: str,
                  create_graph: bool) -> None:
    """strict: torch's ``_fill_in_zeros`` checks: no gradient may be missing (an input the
    result does not depend on) and, with create_graph, each must itself depend on the inputs.

    Raises:
        RuntimeError: with torch's message for ``stage`` (``back``, ``back_trick``,
            ``double_back``, ``double_back_trick``).
    """
    for i, g in enumerate(grads):
        if g is None:
            raise RuntimeError(f"{what}: " + _STRICT_NONE[stage].format(i=i))
        if create_graph and not g.requires_grad:
            kind = "hessian" if "double" in stage else "jacobian"
            raise RuntimeError(
                f"{what}: The {kind} of the user-provided function is independent of input "
                f"{i}. This is not allowed in strict mode when create_graph=True.")


def _shaped(values: tuple[Tensor, ...], as_tuple: bool) -> Any:
    return values if as_tuple else values[0]


def vjp(func: Callable[..., Any], inputs: Tensor | Sequence[Tensor], v: Any = None,
        create_graph: bool = False, strict: bool = False) -> tuple[Any, Any]:
    """The vector-Jacobian product v^T J of ``func`` at ``inputs``, as
    ``torch.autograd.functional.vjp``.

    Args:
        func: maps the inputs to a Tensor or a tuple of Tensors.
        v: shaped like the output (a tuple, one per output, for a tuple of outputs); may be
            None only for one output of one element.
    Returns:
        ``(func(inputs), vjp)``: the outputs as func returned them (detached unless
        ``create_graph``); vjp = sum over outputs of v_i^T J_i, shaped like the inputs (a tuple
        for a tuple of inputs; zeros where the outputs do not depend on an input).
    Raises:
        RuntimeError: v None for more than one output element, or v's length differs from the
            number of outputs, or a v's shape differs from its output's (torch's "Mismatch in
            shape"); ``strict`` and an output that does not require grad or an input the
            outputs do not depend on (torch's messages). TypeError: func returned something
            other than Tensors, or inputs/v is a list (torch: a Tensor or a tuple).
    """
    xs, single = _prepare_inputs(inputs, create_graph, "vjp")
    outs, tuple_out = _outputs(func, xs, "vjp")
    if strict:
        _strict_outputs(outs, "vjp")
    if v is None:
        if len(outs) != 1 or outs[0]._data.size != 1:
            raise RuntimeError("vjp: The vector v can only be None if the user-provided function "
                               "returns a single Tensor with a single element.")
        vs: tuple[Any, ...] = (None,)
    else:
        vs = _as_vectors(v, outs, "vjp", "output")
    used = [(o, vv) for o, vv in zip(outs, vs, strict=True) if o.requires_grad]
    for o, vv in zip(outs, vs, strict=True):
        if not o.requires_grad and vv is not None and tuple(np.shape(vv)) != o.shape:
            raise RuntimeError(f"vjp: Mismatch in shape: v has shape {tuple(np.shape(vv))} and "
                               f"the output has shape {o.shape}")
    raw: tuple[Tensor | None, ...] = (None,) * len(xs)
    if used:
        raw = grad([o for o, _ in used], xs, [vv for _, vv in used], retain_graph=create_graph,
                   create_graph=create_graph, allow_unused=True)
    if strict:
        _strict_grads(raw, "vjp", "back", create_graph)
    grads = _zeros_for_unused(raw, xs)
    shown = tuple(o if create_graph else o.detach() for o in outs)
    return _shaped(shown, tuple_out), _shaped(grads, not single)


def jvp(func: Callable[..., Any], inputs: Tensor | Sequence[Tensor], v: Any = None,
        create_graph: bool = False, strict: bool = False) -> tuple[Any, Any]:
    """The Jacobian-vector product J v of ``func`` at ``inputs``, by the double-vjp trick.

    With u a dummy cotangent, g(u) = J^T u is linear in u, and the vjp of g with v is J v
    (the trick PyTorch's ``torch.autograd.functional.jvp`` uses). Every op in ``func`` therefore
    needs a differentiable backward.

    Args:
        func: maps the inputs to a Tensor or a tuple of Tensors.
        v: shaped like the inputs (a tuple for a tuple of inputs); None only for one input of
            one element.
    Returns:
        ``(func(inputs), jvp)``: the outputs as func returned them (detached unless
        ``create_graph``) and one J_i v per output, shaped like it (a tuple for a tuple of
        outputs; zeros for an output that does not depend on the inputs).
    Raises:
        RuntimeError: v None for more than one input element, or v's length differs from the
            number of inputs; ``strict`` and an output that does not require grad or does not
            depend on an input (torch's messages). TypeError: func returned something other
            than Tensors, or inputs/v is a list (torch: a Tensor or a tuple).
    """
    xs, single = _prepare_inputs(inputs, create_graph, "jvp")
    outs, tuple_out = _outputs(func, xs, "jvp")
    if strict:
        _strict_outputs(outs, "jvp")
    if v is None:
        if len(xs) != 1 or xs[0]._data.size != 1:
            raise RuntimeError("jvp: The vector v can only be None if the input to the "
                               "user-provided function is a single Tensor with a single element.")
        vs: tuple[Any, ...] = (Tensor._make(np.ones_like(xs[0]._data), False, None),)
    else:
        vs = _as_vectors(v, xs, "jvp", "input")
    dummies = tuple(Tensor._make(np.zeros_like(o._data), True, None) for o in outs)
    results: list[Tensor | None] = [None] * len(outs)
    live = [i for i, o in enumerate(outs) if o.requires_grad]
    if live:
        grads = grad([outs[i] for i in live], xs, [dummies[i] for i in live],
                     create_graph=True, allow_unused=True)
        if strict:
            _strict_grads(grads, "jvp", "back", False)
        used = [(g, vv) for g, vv in zip(grads, vs, strict=True) if g is not None and
                g.requires_grad]
        if used:
            found = grad([g for g, _ in used], [dummies[i] for i in live],
                         [vv for _, vv in used], create_graph=create_graph, allow_unused=True)
            for i, r in zip(live, found, strict=True):
                results[i] = r
    if strict:
        _strict_grads(results, "jvp", "back_trick", create_graph)
    jvps = tuple(Tensor._make(np.zeros_like(o._data), False, None) if r is None else r
                 for o, r in zip(outs, results, strict=True))
    shown = tuple(o if create_graph else o.detach() for o in outs)
    return _shaped(shown, tuple_out), _shaped(jvps, tuple_out)


_STRATEGIES = ("reverse-mode", "forward-mode")


def _check_strategy(what: str, strategy: str, vectorize: bool) -> None:
    if strategy not in _STRATEGIES:
        raise ValueError(
            f'{what}: Expected strategy to be either "forward-mode" or "reverse-mode". Hint: '
            'If your function has more outputs than inputs, "forward-mode" tends to be more '
            'performant. Otherwise, prefer to use "reverse-mode".')
    if strategy == "forward-mode" and not vectorize:
        raise NotImplementedError(
            f"{what}: Computing Jacobian using forward-AD or forward-over-reverse Hessian is"
            "only implemented for `vectorize=True`.")  # torch's text, its missing space too


def jacobian(func: Callable[..., Any], inputs: Tensor | Sequence[Tensor],
             create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode") -> Any:
    """The Jacobian of ``func`` at ``inputs``, one reverse pass per output element, as
    ``torch.autograd.functional.jacobian``.

    ``func`` returns a Tensor or a tuple of Tensors. ``strict=True`` raises when an output does
    not depend on an input (the entry would be all zeros). ``vectorize`` and ``strategy``
    (torch's batching and forward-mode options) give the same values here: every strategy is
    computed by reverse passes (``"forward-mode"`` needs ``vectorize=True``, as in torch).

    Returns:
        The entry for output i and input j has shape ``outputs[i].shape + inputs[j].shape``;
        nested as torch: a Tensor for one output and one input, a tuple over the inputs (or
        over the outputs) when only one side is a tuple, and ``result[i][j]`` when both are.

    Raises:
        RuntimeError: ``strict`` and an output independent of an input.
        ValueError / NotImplementedError: an unknown strategy, or forward-mode without
            vectorize (torch's messages).
    """
    _check_strategy("jacobian", strategy, vectorize)
    xs, single_input = _prepare_inputs(inputs, create_graph, "jacobian")
    raw = func(*xs)
    single_output = isinstance(raw, Tensor)
    outs = (raw,) if single_output else raw if isinstance(raw, tuple) else None  # torch: no list
    if outs is None or not all(isinstance(o, Tensor) for o in outs):
        raise TypeError(f"jacobian: func returned {type(raw).__name__}, expected a Tensor or a "
                        "tuple of Tensors")
    table = []
    for i, out in enumerate(outs):
        flat = out.reshape(-1)
        rows = [_grad_or_zeros(flat[k], xs, None, create_graph)
                for k in range(flat.shape[0])]
        entries = []
        for j, x in enumerate(xs):
            if strict and not _depends_on(out, x):
                raise RuntimeError(
                    f"Output {i} of the user-provided function is independent of input {j}. "
                    "This is not allowed in strict mode.")
            if rows:
                column = stack([row[j] for row in rows]).reshape(*out.shape, *x.shape)
            else:
                column = Tensor._make(np.zeros((*out.shape, *x.shape), x._data.dtype),
                                      False, None)
            entries.append(column if create_graph else column.detach())
        table.append(entries)
    if single_output:
        return table[0][0] if single_input else tuple(table[0])
    if single_input:
        return tuple(row[0] for row in table)
    return tuple(tuple(row) for row in table)


def _depends_on(out: Tensor, x: Tensor) -> bool:
    """Whether ``out``'s recorded graph reaches ``x`` (torch's strict-mode test)."""
    if out is x:
        return True
    stack_, seen = [out], set()
    while stack_:
        tensor = stack_.pop()
        node = tensor._ctx
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        for parent in node.inputs or ():
            if parent is x:
                return True
            stack_.append(parent)
    return False


def hessian(func: Callable[..., Tensor], inputs: Tensor | Sequence[Tensor],
            create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode") -> Any:
    """The Hessian of a scalar ``func`` at ``inputs`` (the Jacobian of its gradient), as
    ``torch.autograd.functional.hessian``; ``strict``, ``vectorize`` and
    ``outer_jacobian_strategy`` as in :func:`jacobian`.

    Returns:
        For one input a Tensor of shape ``input.shape + input.shape``; for a tuple of inputs
        H[i][j] = d^2 f / (d inputs[i] d inputs[j]), as PyTorch nests it.

    Raises:
        RuntimeError: func does not return one element; ``strict`` and a zero block.
    """
    _check_strategy("hessian", outer_jacobian_strategy, vectorize)
    xs, single = _prepare_inputs(inputs, create_graph, "hessian")

    def gradient_of(i: int) -> Callable[..., Tensor]:
        def first(*ys: Tensor) -> Tensor:
            out = _output(func, ys, "hessian")
            if out._data.size != 1:
                raise RuntimeError(f"hessian: func must return one element, got {out.shape}")
            return _grad_or_zeros(out, ys, None, True)[i]
        return first

    if single:
        return cast(Tensor, jacobian(gradient_of(0), xs[0], create_graph, strict))
    return tuple(tuple(jacobian(gradient_of(i), xs, create_graph, strict))
                 for i in range(len(xs)))


def hvp(func: Callable[..., Tensor], inputs: Tensor | Sequence[Tensor], v: Any = None,
        create_graph: bool = False, strict: bool = False
        ) -> tuple[Tensor, Tensor | tuple[Tensor, ...]]:
    """The Hessian-vector product H v of a scalar ``func`` at ``inputs``, in two reverse passes.

    The gradient g = df/dx is computed with ``create_graph=True``; then d(g . v)/dx = H v
    (H is symmetric). It costs about two backward passes and never forms H.

    Returns:
        ``(func(inputs), hvp)``, hvp shaped like the inputs.
    Raises:
        RuntimeError: func returns a tuple (torch: "should return a single Tensor") or more
            than one element; v's length differs from the number of inputs; v None while the
            input is not one Tensor of one element; ``strict`` and an output, gradient or
            Hessian that does not depend on an input (a linear func, torch's messages).
        TypeError: inputs or v is a list (torch: a Tensor or a tuple of Tensors).
    """
    return _hvp("hvp", func, inputs, v, create_graph, strict)


def _hvp(what: str, func: Callable[..., Tensor], inputs: Tensor | Sequence[Tensor], v: Any,
         create_graph: bool, strict: bool) -> tuple[Tensor, Tensor | tuple[Tensor, ...]]:
    xs, single = _prepare_inputs(inputs, create_graph, what)
    out = _output(func, xs, what)
    if out._data.size != 1:
        raise RuntimeError(f"{what}: func must return one element, got shape {out.shape}")
    if v is None:
        if len(xs) != 1 or xs[0]._data.size != 1:  # torch's rule and message
            raise RuntimeError(f"{what}: The vector v can only be None if the input to the "
                               "user-provided function is a single Tensor with a single element.")
        vs: tuple[Any, ...] = (Tensor._make(np.ones_like(xs[0]._data), False, None),)
    else:
        vs = _as_vectors(v, xs, what, "input")
    if strict:
        _strict_outputs((out,), what)
        first: tuple[Tensor | None, ...] = grad(out, xs, None, retain_graph=True,
                                                create_graph=True, allow_unused=True)
        _strict_grads(first, what, "back", False)
        for i, g in enumerate(first):
            if g is not None and not g.requires_grad:
                raise RuntimeError(
                    f"{what}: While computing the hessian, found that the jacobian of the "
                    f"user-provided function with respect to input {i} is independent of the "
                    "input. This is not allowed in strict mode. You should ensure that your "
                    "function is twice differentiable and that the jacobian depends on the "
                    "inputs (this would be violated by a linear function for example).")
        grads = _zeros_for_unused(first, xs)
    else:
        grads = _grad_or_zeros(out, xs, None, True)
    used = [(g, vv) for g, vv in zip(grads, vs, strict=True) if g.requires_grad]
    raw: tuple[Tensor | None, ...] = (None,) * len(xs)
    if used:
        raw = grad([g for g, _ in used], xs, [vv for _, vv in used], create_graph=create_graph,
                   allow_unused=True)
    if strict:
        _strict_grads(raw, what, "double_back_trick" if what == "hvp" else "double_back",
                      create_graph)
    result = _zeros_for_unused(raw, xs)
    return (out if create_graph else out.detach()), (result[0] if single else result)


def vhp(func: Callable[..., Tensor], inputs: Tensor | Sequence[Tensor], v: Any = None,
        create_graph: bool = False, strict: bool = False
        ) -> tuple[Tensor, Tensor | tuple[Tensor, ...]]:
    """The vector-Hessian product v^T H of a scalar ``func`` at ``inputs``, as
    ``torch.autograd.functional.vhp``: d(g . v)/dx with g = df/dx recorded, two reverse passes.

    For a twice continuously differentiable func H is symmetric and v^T H equals H v, so this
    is :func:`hvp`'s computation (which is this very double-backward product).

    Returns:
        ``(func(inputs), vhp)``, vhp shaped like the inputs (a tuple for a tuple of inputs).
    Raises:
        As :func:`hvp` (v None, strict, list inputs).
    """
    return _hvp("vhp", func, inputs, v, create_graph, strict)
