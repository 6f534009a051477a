"""Trace a forward pass through the graph the engine records and write it as an ONNX model.

How it works: the example input is made a tensor that requires grad, so every op that depends on
it is recorded as a node (``tensor.grad_fn``, with its inputs in ``grad_fn.inputs``). The export
walks that graph from the outputs back to the inputs, orders it, and turns each recorded op into
ONNX nodes (``gradwise.onnx.ops``). A leaf that is not an input becomes an initializer: a
parameter or buffer under its ``state_dict`` name, anything else (a constant made inside
``forward``) as ``const_<n>``. Work done only on constants is folded into those constants.

The batch axis (axis 0 of every input) stays dynamic: reshapes that keep it write ``0`` ("copy
this axis") instead of the traced size, broadcasts write 1 where the input already has the size,
and slices that take the whole batch are left out. Trace with a batch size greater than 1 that
differs from the model's other sizes, so the batch axis can be told apart from them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradwise.autograd import Tensor, enable_grad
from gradwise.nn import Module
from gradwise.onnx.errors import ExportError

#: the opset written when none is asked for (17 is the first with LayerNormalization)
DEFAULT_OPSET = 17
#: the opsets the exporter knows how to write (13: Squeeze/Unsqueeze/ReduceSum take axes as inputs)
SUPPORTED_OPSETS = range(13, 22)


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "gradwise.onnx.export needs the 'onnx' package: pip install 'gradwise[onnx]'"
        ) from None
    return onnx


def export(
    model: Module | Callable[..., Any],
    example_input: Any,
    path: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    metadata: dict[str, str] | None = None,
) -> Any:
    """Export ``model`` traced on ``example_input`` to the ONNX file ``path``.

    Modules are switched to evaluation mode for the trace (dropout off, batch norm on its
    running statistics) and put back in the modes they had afterwards.

    Args:
        model: an ``nn.Module`` or any callable of Tensors built from gradwise ops.
        example_input: a Tensor, array or nested list of numbers (or a tuple, or a list of
            Tensors/arrays: one per ``forward`` argument). Floating-point inputs are cast to the
            dtype of the model's floating parameters (a float64 array or a Python list traces a
            float32 model as float32), and the file's inputs have that dtype. They may flow
            through any supported op; integer inputs only into ``nn.Embedding`` / integer
            indexing.
        path: the ``.onnx`` file to write (atomically: on an error nothing is left behind).
        opset: the ONNX opset, one of ``SUPPORTED_OPSETS`` (default 17).
        input_names, output_names: graph names; default ``input`` / ``output`` (with ``_<i>``
            suffixes when there are several).
        dynamic_batch: make axis 0 of the inputs (and of outputs that carry it) a symbolic
            ``batch`` dimension.
        metadata: strings stored in the model's ``metadata_props`` (e.g. class names).

    Returns:
        The ``onnx.ModelProto`` that was written, checked by ``onnx.checker.check_model``.

    Raises:
        ImportError: the ``onnx`` package is missing (names the pip extra).
        ExportError: an op cannot be exported (names the first such op, its module and shapes),
            the model returned something that is not a Tensor, or batch norm ran in training
            mode (only a plain callable can do that: modules are traced in eval mode).
            The model is traced twice, on the example and on other values of the same shapes:
            a constant that differs between the two (computed from the input outside the
            recorded graph, e.g. through ``.numpy()``, or random) or ops that differ (Python
            control flow on values) are errors too, naming the op that uses the constant.
        ValueError: bad ``opset``, names or inputs.
    """
    onnx = _require_onnx()
    from gradwise.onnx import ops  # needs onnx

    if opset not in SUPPORTED_OPSETS:
        raise ValueError(
            f"onnx.export: opset {opset} is not supported; use one of "
            f"{SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1}"
        )
    inputs = _as_input_tensors(example_input, _float_dtype(model))
    input_names = _names("input", input_names, len(inputs))

    # with a dynamic batch, first trace at more rows: the reshapes whose target changes
    # with the batch size are written with -1 at that axis (the batch may have moved there:
    # x.reshape(1, -1, 6), x.T.reshape(6, -1)), so the file runs at any batch size
    grown = _grown_trace(model, inputs, input_names, output_names, opset, ops.GraphBuilder) \
        if dynamic_batch else None
    if dynamic_batch and grown is None and any(t.ndim for t in inputs):
        warnings.warn(
            "onnx.export: the model does not run on more rows than the example (its "
            "batch size is built in), so the file's batch axis is fixed at the example's "
            f"{inputs[0].shape[0] if inputs[0].ndim else 1} rows", RuntimeWarning, stacklevel=2)
        dynamic_batch = False
    hints = grown[0].reshape_targets if grown else None
    builder, outputs, output_names = _trace(
        model, inputs, input_names, output_names, opset, ops.GraphBuilder, hints,
    )
    # trace again on other values: what changes is not part of the graph the engine recorded.
    # Two probes: signs flipped at about the same scale, and 7x the scale (a mask such as
    # smooth_l1's |d| >= beta, computed outside the graph, can come out the same on one probe)
    for scale, offset in _PROBES:
        probe, _, _ = _trace(model, _other_values(inputs, scale, offset), input_names,
                             output_names, opset, ops.GraphBuilder, hints)
        _check_same_graph(builder, probe)
    if grown is not None:
        _check_grown_graph(builder, grown[0])
        _constants_following_the_batch(onnx, builder, [tuple(i.dims) for i in
                                                       grown[0].initializers],
                                       inputs, input_names)

    graph = onnx.helper.make_graph(
        builder.nodes,
        "gradwise",
        [_value_info(onnx, t, n, dynamic_batch) for t, n in zip(inputs, input_names, strict=True)],
        [
            _value_info(onnx, t, n, dynamic_batch and builder.has_batch(n),
                        grown[1][i] if grown and len(grown[1]) == len(outputs) else None)
            for i, (t, n) in enumerate(zip(outputs, output_names, strict=True))
        ],
        initializer=builder.initializers,
    )
    model_proto = onnx.helper.make_model(
        graph,
        producer_name="gradwise",
        opset_imports=[onnx.helper.make_opsetid("", opset)],
    )
    # the oldest IR version that can carry this opset, so older runtimes can read the file
    if metadata:
        onnx.helper.set_model_props(model_proto, {str(k): str(v) for k, v in metadata.items()})
    model_proto.ir_version = onnx.helper.find_min_ir_version_for(
        list(model_proto.opset_import), ignore_unknown=True
    )
    try:
        onnx.checker.check_model(model_proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportError(
            f"onnx.export: the exported graph failed onnx.checker: {_first_line(error)} (a "
            "gradwise op mixed dtypes that ONNX keeps apart: give inputs and parameters one "
            "floating dtype)"
        ) from None
    from gradwise._atomic import atomic_write_bytes

    atomic_write_bytes(Path(path), model_proto.SerializeToString())
    return model_proto


def _trace(
    model: Any,
    inputs: list[Tensor],
    input_names: list[str],
    output_names: Sequence[str] | None,
    opset: int,
    builder_class: Any,
    reshape_hints: list[tuple[int, ...]] | None = None,
    collecting: bool = False,
) -> tuple[Any, list[Tensor], list[str]]:
    """Run the model once with grad recording on and convert what the engine recorded.

    ``reshape_hints``: every Reshape's target in a trace at another batch size, in conversion
    order (see :func:`_grown_trace`); ``collecting``: that trace itself (a reshape that folds
    the batch is then recorded, not refused).
    """
    modes = [(m, m.training) for m in model.modules()] if isinstance(model, Module) else []
    module_of: dict[int, str] = {}
    handles = []
    try:
        if isinstance(model, Module):
            model.eval()
            for name, module in model.named_modules():
                handles.append(module.register_forward_hook(_remember(module_of, name, module)))
        with enable_grad():
            result = model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training

    outputs = list(result) if isinstance(result, tuple | list) else [result]
    for i, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            raise ExportError(
                f"onnx.export: the model's output {i} is a {type(out).__name__}, not a Tensor"
            )
    output_names = _names("output", output_names, len(outputs))
    overlap = sorted(set(input_names) & set(output_names))
    if overlap:
        raise ValueError(f"onnx.export: input and output names overlap: {overlap}")

    params: dict[int, str] = {}
    if isinstance(model, Module):
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            params.setdefault(id(tensor), name)
    builder = builder_class(opset, params, module_of)
    builder.reshape_hints, builder.collecting = reshape_hints, collecting
    for tensor, name in zip(inputs, input_names, strict=True):
        builder.add_input(tensor, name)
    for fn, out in _topological(outputs):
        builder.convert(fn, out)
    for out, name in zip(outputs, output_names, strict=True):
        builder.add_output(out, name)

    return builder, outputs, output_names


def _grown_trace(model: Any, inputs: list[Tensor], input_names: list[str],
                 output_names: Sequence[str] | None, opset: int,
                 builder_class: Any) -> tuple[Any, list[tuple[int, ...]]] | None:
    """The graph (its builder: every Reshape's target, every constant) and every output's shape
    when the model runs on 2b + 1 rows (the example twice and its first row); None when it
    cannot run so (a model tied to its batch size) or an input is 0-d.
    """
    if any(t.ndim == 0 for t in inputs):
        return None
    # 2b + 1 rows, not b + 1: a size used through floor division (x[: x.shape[0] // 2])
    # comes out the same at b and b + 1 rows but not at b and 2b + 1 (newcomer review 10)
    grown = [Tensor(np.concatenate([t.detach().numpy(), t.detach().numpy(),
                                    t.detach().numpy()[:1]]),
                    requires_grad=t.requires_grad) for t in inputs]
    try:
        builder, outputs, _ = _trace(model, grown, input_names, output_names, opset,
                                     builder_class, collecting=True)
    except Exception:  # noqa: BLE001 - the file is then written for the traced batch's shapes
        return None
    return builder, [tuple(out.shape) for out in outputs]


def _check_grown_graph(builder: Any, grown: Any) -> None:
    """The trace at more rows must record the same ops, and its constants may differ only
    where the file follows the batch (reshape targets, written with -1 there; constants shaped
    by the batch, made from it). Anything else would be right only at the example's batch
    size: a Python loop over axis 0 (axis 0 is not the batch: a sequence-first RNN), an index
    or slice along the batch axis (``x[-1]``, ``x[1:]``), ``x.shape[0]`` used as a number."""
    if [n.op_type for n in builder.nodes] != [n.op_type for n in grown.nodes]:
        raise ExportError(
            "onnx.export: the recorded ops change with the size of axis 0 (a Python loop over "
            "it: axis 0 is not the batch, as in a sequence-first RNN; or squeeze() of a batch "
            "of 1), so a file with a dynamic "
            "batch axis would be wrong at other sizes; put the batch first or export with "
            "dynamic_batch=False")
    user = _user_of_a_changed_constant(builder, grown, skip=builder.reshape_names)
    if user is not None:
        raise ExportError(
            f"onnx.export: cannot export {builder.origin.get(user.name, user.op_type)} with a "
            "dynamic batch: one of its constants follows the batch size (an index or slice "
            "along the batch axis such as x[-1] or x[1:], or x.shape[0] used as a number), so "
            "the file would be right only at the example's batch size; export with "
            "dynamic_batch=False")


def _constants_following_the_batch(onnx: Any, builder: Any, grown_shapes: list[tuple[int, ...]],
                                   inputs: list[Tensor], input_names: list[str]) -> None:
    """Constants whose shape follows the batch size (a recurrent layer's zero initial state,
    ``zeros(x.shape[0], n)``) are made from the input's batch size in the file: a
    ConstantOfShape whose size along that axis is ``a * batch + b`` (a, b from the two traces).
    Without it the file carried the traced batch's constant and broadcast every output to the
    traced batch size. A constant that is not one value repeated cannot be made so: refused.
    """
    if len(grown_shapes) != len(builder.initializers):
        return  # the traces differ in their constants; the probes' check speaks for them
    source = next(((t, n) for t, n in zip(inputs, input_names, strict=True) if t.ndim), None)
    if source is None:
        return
    batch0 = int(source[0].shape[0])
    kept, made = [], []
    for init, grown in zip(builder.initializers, grown_shapes, strict=True):
        shape = tuple(init.dims)
        moved = [i for i, (n, m) in enumerate(zip(shape, grown, strict=False)) if n != m]
        if len(grown) != len(shape) or not moved:
            kept.append(init)
            continue
        values = onnx.numpy_helper.to_array(init)
        flat = values.reshape(-1)
        if len(moved) != 1 or not flat.size or not (flat == flat[0]).all():
            raise ExportError(
                f"onnx.export: a constant of shape {shape} ({init.name}) follows the batch size "
                f"(shape {grown} at more rows) and is not one value repeated, so the file "
                "cannot make it for another batch size; export with dynamic_batch=False")
        axis = moved[0]
        per_row, rest = divmod(grown[axis] - shape[axis], batch0 + 1)  # the trace had 2b+1 rows
        offset = shape[axis] - per_row * batch0
        if rest or per_row < 1:
            raise ExportError(
                f"onnx.export: a constant of shape {shape} ({init.name}) has {shape[axis]} "
                f"entries along axis {axis} at {batch0} rows and {grown[axis]} at "
                f"{2 * batch0 + 1}: not a multiple of the batch size plus a constant, so the "
                "file cannot make it for another batch size; export with dynamic_batch=False")
        name = init.name
        helper, numpy_helper = onnx.helper, onnx.numpy_helper

        def const(array: Any, suffix: str, owner: str = name) -> str:
            tensor = onnx.numpy_helper.from_array(np.asarray(array, dtype=np.int64),
                                                  f"{owner}_{suffix}")
            kept.append(tensor)
            return tensor.name

        size = f"{name}_batch"
        if builder.opset >= 15:  # Shape's start/end attributes (opset 15)
            made.append(helper.make_node("Shape", [source[1]], [f"{name}_input_shape"],
                                         start=0, end=1))
        else:
            made.append(helper.make_node("Shape", [source[1]], [f"{name}_all_dims"]))
            made.append(helper.make_node(
                "Slice", [f"{name}_all_dims", const([0], "starts"), const([1], "ends")],
                [f"{name}_input_shape"]))
        size_terms = f"{name}_input_shape"
        if per_row != 1:
            made.append(helper.make_node("Mul", [size_terms, const([per_row], "per_row")],
                                         [f"{name}_scaled"]))
            size_terms = f"{name}_scaled"
        if offset:
            made.append(helper.make_node("Add", [size_terms, const([offset], "offset")],
                                         [f"{name}_offset"]))
            size_terms = f"{name}_offset"
        made.append(helper.make_node("Identity", [size_terms], [size]))
        parts = []
        if axis:
            parts.append(const(list(shape[:axis]), "before"))
        parts.append(size)
        if axis + 1 < len(shape):
            parts.append(const(list(shape[axis + 1:]), "after"))
        made.append(helper.make_node("Concat", parts, [f"{name}_shape"], axis=0))
        made.append(helper.make_node(
            "ConstantOfShape", [f"{name}_shape"], [name],
            value=numpy_helper.from_array(np.asarray([flat[0]], dtype=values.dtype))))
    if made:
        builder.initializers[:] = kept
        builder.nodes[:0] = made


#: (scale, offset) of each probe trace's float inputs: ``offset + scale * x``
_PROBES = ((-1.37, 0.11), (7.3, -0.29))


def _other_values(inputs: list[Tensor], scale: float, offset: float) -> list[Tensor]:
    """Inputs of the same shapes and dtypes with other values: floats ``offset + scale * x``,
    integers rolled by one position (they stay in their range)."""
    probes = []
    for tensor in inputs:
        array = tensor.detach().numpy()
        if array.dtype.kind == "f":
            probes.append(Tensor((offset + scale * array).astype(array.dtype),
                                 requires_grad=True))
        else:
            probes.append(Tensor(np.roll(array.reshape(-1), 1).reshape(array.shape)))
    return probes


def _user_of_a_changed_constant(builder: Any, other: Any,
                                skip: set[str] | frozenset[str] = frozenset()) -> Any:
    """The first node of ``builder`` that reads a constant whose values differ in the other
    trace (parameters and the names in ``skip`` aside; a constant of another shape is the
    batch trace's business), or None."""
    params = set(builder.params.values())
    for first, second in zip(builder.initializers, other.initializers, strict=False):
        if (first.name in params or first.name in skip
                or tuple(first.dims) != tuple(second.dims) or first.raw_data == second.raw_data):
            continue
        return next(n for n in builder.nodes if first.name in n.input)
    return None


def _check_same_graph(builder: Any, probe: Any) -> None:
    """Both traces must give the same ops and the same constants; say which op differs."""
    ops_first = [(n.op_type, list(n.input)) for n in builder.nodes]
    ops_probe = [(n.op_type, list(n.input)) for n in probe.nodes]
    if ops_first != ops_probe:
        raise ExportError(
            "onnx.export: the recorded ops changed when the input values changed (Python "
            "control flow on tensor values, such as `if x.sum() > 0`), so one trace cannot "
            "represent the model"
        )
    user = _user_of_a_changed_constant(builder, probe)
    if user is not None:
        raise ExportError(
            f"onnx.export: cannot export {builder.origin.get(user.name, user.op_type)}: one of "
            "its constant inputs depends on the input values (it was computed outside the "
            "recorded graph: through .numpy() or .item(), drawn at random, or positions picked "
            "from the values, as max/min/sort/topk/argmax along a dim do, which the exporter "
            "does not write yet), so the file would replay the example's values"
        )


def _remember(module_of: dict[int, str], name: str, module: Module) -> Callable[..., None]:
    label = f"{name or '<model>'} ({type(module).__name__})"

    def hook(_module: Module, _inputs: Any, output: Any) -> None:
        # inner modules finish first, so the innermost module keeps the node
        for out in output if isinstance(output, tuple | list) else (output,):
            if isinstance(out, Tensor) and out.grad_fn is not None:
                module_of.setdefault(id(out.grad_fn), label)

    return hook


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _float_dtype(model: Any) -> np.dtype | None:
    """The dtype of the model's first floating-point parameter (or buffer); None if none."""
    if not isinstance(model, Module):
        return None
    for _, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if tensor._data.dtype.kind == "f":
            return tensor._data.dtype
    return None


def _several_inputs(example_input: Any) -> bool:
    """A tuple, or a list of Tensors/arrays, is one input per ``forward`` argument; a list
    of numbers (nested or not) is one array, as ``np.array`` reads it."""
    if isinstance(example_input, tuple):
        return True
    return isinstance(example_input, list) and bool(example_input) and all(
        isinstance(item, Tensor | np.ndarray) for item in example_input
    )


def _as_input_tensors(example_input: Any, float_dtype: np.dtype | None = None) -> list[Tensor]:
    """The example input(s) as Tensors; floating ones cast to ``float_dtype`` (the model's)."""
    items = list(example_input) if _several_inputs(example_input) else [example_input]
    if not items or (isinstance(example_input, list) and not example_input):
        raise ValueError("onnx.export: example_input is empty; give one tensor per input")
    tensors = []
    for i, item in enumerate(items):
        array = np.array(item.detach().numpy() if isinstance(item, Tensor) else item)
        if array.dtype.kind == "f":
            if float_dtype is not None:
                # the file's input takes the model's dtype: ONNX ops such as Gemm need both
                # operands of one type, where gradwise (like torch) would promote float64 input
                array = array.astype(float_dtype, copy=False)
            tensors.append(Tensor(array, requires_grad=True))
        elif array.dtype.kind in "iub":
            tensors.append(Tensor(array))
        else:
            raise ValueError(
                f"onnx.export: example input {i} has dtype {array.dtype}; "
                "expected floating-point, integer or bool values"
            )
    return tensors


def _names(kind: str, names: Sequence[str] | None, count: int) -> list[str]:
    if names is None:
        return [kind] if count == 1 else [f"{kind}_{i}" for i in range(count)]
    names = list(names)
    if len(names) != count or len(set(names)) != count or not all(names):
        raise ValueError(
            f"onnx.export: {kind}_names must be {count} distinct non-empty names, got {names}"
        )
    return names


def _topological(outputs: Sequence[Tensor]) -> list[tuple[Any, Tensor]]:
    """(node, its result) for every recorded node the outputs depend on, feeders first."""
    order: list[tuple[Any, Tensor]] = []
    seen: set[int] = set()
    for out in outputs:
        if out.grad_fn is None or id(out.grad_fn) in seen:
            continue
        stack = [(out, False)]
        while stack:
            tensor, expanded = stack.pop()
            fn = tensor.grad_fn
            if expanded:
                order.append((fn, tensor))
                continue
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            stack.append((tensor, True))
            # a `where` whose mask compared a value of the graph reads that value too
            source = getattr(fn, "condition_source", None)
            compared = [t for t in source[1:3] if isinstance(t, Tensor)] if source else []
            for parent in (*fn.inputs, *compared):
                if parent.grad_fn is not None and id(parent.grad_fn) not in seen:
                    stack.append((parent, False))
    return order


def _value_info(onnx: Any, tensor: Tensor, name: str, batch: bool,
                grown: tuple[int, ...] | None = None) -> Any:
    """The graph's declaration of an input or output; ``grown``: its shape in the trace at one
    more row, whose differing axes are declared symbolic too (the batch moved or folded)."""
    shape: list[Any] = list(tensor.shape)
    if batch and shape:
        shape[0] = "batch"
    if grown is not None and len(grown) == len(shape):
        shape = [f"batch_{i}" if isinstance(n, int) and n != m else n
                 for i, (n, m) in enumerate(zip(shape, grown, strict=True))]
    dtype = onnx.helper.np_dtype_to_tensor_dtype(tensor.dtype)
    return onnx.helper.make_tensor_value_info(name, dtype, shape)
