"""One converter per recorded gradwise op: the ONNX nodes that compute the same values.

A converter is ``convert(builder, fn, out) -> (name, batch)``: ``fn`` is the recorded node
(``out.grad_fn``; its Tensor inputs in ``fn.inputs``, what its forward saved as attributes),
``name`` the ONNX value holding the result and ``batch`` whether its axis 0 is the batch axis.
Formulas follow the ONNX operator specification (https://onnx.ai/onnx/operators/).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from gradwise.autograd import Tensor
from gradwise.onnx.errors import ExportError

Converter = Callable[["GraphBuilder", Any, Any], tuple[str, bool]]
CONVERTERS: dict[str, Converter] = {}


def converts(*op_names: str) -> Callable[[Converter], Converter]:
    """Decorator registering a converter for the gradwise op names ``op_names`` (Function names)."""
    def register(fn: Converter) -> Converter:
        for name in op_names:
            CONVERTERS[name] = fn
        return fn

    return register


class GraphBuilder:
    """Collects ONNX nodes and initializers while the recorded ops are converted in order."""

    def __init__(self, opset: int, params: dict[int, str], module_of: dict[int, str]) -> None:
        self.opset = opset
        self.params = params  # id(parameter or buffer) -> state_dict name
        self.module_of = module_of  # id(node) -> "name (ModuleClass)"
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: dict[int, str] = {}  # id(tensor or node) -> ONNX value name
        self._keep: list[Any] = []  # keeps traced objects alive, so their ids stay unique
        self._batch: dict[str, bool] = {}
        self._inputs: list[tuple[np.ndarray, str]] = []
        self.origin: dict[str, str] = {}  # node name -> "op X in module Y", for error messages
        self._counter = 0
        # each Reshape's target, in order; and the targets of a trace at another batch size
        self.reshape_targets: list[tuple[int, ...]] = []
        self.reshape_hints: list[tuple[int, ...]] | None = None
        self.reshape_names: set[str] = set()  # the initializers holding reshape targets
        self.collecting = False  # the trace at another batch size, which only reads targets

    # ---- values -------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        """A value name not used before in this graph: ``hint`` plus a counter."""
        self._counter += 1
        return f"{hint}_{self._counter}"

    def add_input(self, tensor: Tensor, name: str) -> None:
        """Name ``tensor`` as graph input ``name`` (its leading dim becomes the batch dim if it has
        one).
        """
        self._names[id(tensor)] = name
        self._keep.append(tensor)
        self._batch[name] = tensor.ndim > 0
        self._inputs.append((tensor.numpy(), name))

    def input_named_by(self, array: Any) -> str | None:
        """The graph input whose values ``array`` is (an integer index the model looked up)."""
        for values, name in self._inputs:
            if array is values:
                return name
        return None

    def has_batch(self, name: str) -> bool:
        """True when value ``name`` carries the batch dimension first."""
        return self._batch.get(name, False)

    def value(self, tensor: Tensor, dtype: Any = None) -> str:
        """The ONNX name of ``tensor``: an input, a converted node's result or an initializer.

        ``dtype`` casts a floating-point constant (not a parameter) to the dtype the op computes
        in, as gradwise's own type promotion did when it ran.
        """
        if tensor.grad_fn is not None:
            return self._names[id(tensor.grad_fn)]
        if id(tensor) in self._names:
            return self._names[id(tensor)]
        array = tensor.detach().numpy()
        param = self.params.get(id(tensor))
        if param is None and dtype is not None and array.dtype.kind == "f":
            array = array.astype(dtype, copy=False)
        name = param if param is not None else self.fresh("const")
        self.initializers.append(numpy_helper.from_array(np.require(array, requirements="C"), name))
        self._names[id(tensor)] = name
        self._keep.append(tensor)
        return name

    def const(self, array: Any, hint: str = "const", dtype: Any = None) -> str:
        """Add ``array`` as an initializer and return its (fresh) value name."""
        array = np.asarray(array, dtype=dtype)
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.require(array, requirements="C"), name))
        return name

    def ints(self, values: Any, hint: str = "axes") -> str:
        """Add ``values`` as a 1-D int64 initializer (axes, shapes, pads) and return its name."""
        return self.const(np.asarray(list(values), dtype=np.int64).reshape(-1), hint)

    def batch_of(self, tensor: Tensor) -> bool:
        """True when ``tensor``'s ONNX value carries the batch dimension first."""
        return self._batch.get(self.value(tensor), False)

    def node(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        """Append an ``op_type`` node over ``inputs`` with ``attrs``; return its output's value
        name.
        """
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    # ---- reductions and axes, whose spelling changed across opsets -----------------------------
    def reduce(self, op_type: str, x: str, axes: Any, keepdims: bool) -> str:
        """Append a Reduce* node over ``axes``: axes as an input from opset 18 (ReduceSum from 13),
        else
        as an attribute, per the ONNX operator changelog.
        """
        keep = int(bool(keepdims))
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [x, self.ints(axes)], keepdims=keep)
        return self.node(op_type, [x], axes=[int(a) for a in axes], keepdims=keep)

    def unsqueeze(self, x: str, axes: Any) -> str:
        """Append an Unsqueeze node inserting ``axes`` (an input tensor, as opset 13 requires)."""
        return self.node("Unsqueeze", [x, self.ints(axes)])

    def squeeze(self, x: str, axes: Any) -> str:
        """Append a Squeeze node removing ``axes`` (an input tensor, as opset 13 requires)."""
        return self.node("Squeeze", [x, self.ints(axes)])

    # ---- the walk -----------------------------------------------------------------------------
    def convert(self, fn: Any, out: Tensor) -> None:
        """Write the nodes for the recorded op ``fn``, whose result is ``out``."""
        op = fn.name
        converter = CONVERTERS.get(op)
        shapes = ", ".join(str(tuple(t.shape)) for t in fn.inputs)
        where = self.module_of.get(id(fn))
        place = f" in module {where}" if where else ""
        if converter is None:
            raise _export_error(
                f"onnx.export: cannot export op {op}{place} (inputs {shapes}): no ONNX converter "
                f"for it; supported ops: {', '.join(sorted(CONVERTERS))}"
            )
        first_new = len(self.nodes)
        try:
            name, batch = converter(self, fn, out)
        except _UnsupportedError as why:
            raise _export_error(
                f"onnx.export: cannot export op {op}{place} (inputs {shapes}): {why}"
            ) from None
        for node in self.nodes[first_new:]:
            self.origin[node.name] = f"op {op}{place}"
        self._names[id(fn)] = name
        self._keep.append(fn)
        self._batch[name] = batch

    def add_output(self, tensor: Tensor, name: str) -> None:
        """Expose ``tensor``'s value as graph output ``name`` (through an Identity node)."""
        source = self.value(tensor)
        self._batch[name] = self._batch.get(source, False)
        self.nodes.append(helper.make_node("Identity", [source], [name], name=name))


def _export_error(message: str) -> Exception:
    return ExportError(message)


class _UnsupportedError(Exception):
    """A converter met a case it cannot write; the builder adds the op's name and place."""


# ---- elementwise ---------------------------------------------------------------------------------
def _broadcast_batch(b: GraphBuilder, fn: Any, out: Any) -> bool:
    return any(b.batch_of(t) and t.ndim == out.ndim for t in fn.inputs)


def _simple(onnx_op: str, **attrs_of: Callable[[Any], Any]) -> Converter:
    def convert(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
        names = [b.value(t, out.dtype) for t in fn.inputs]
        attrs = {key: get(fn) for key, get in attrs_of.items()}
        return b.node(onnx_op, names, **attrs), _broadcast_batch(b, fn, out)

    return convert


for _op, _onnx_op in {
    "Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Neg": "Neg", "Exp": "Exp",
    "Log": "Log", "Sqrt": "Sqrt", "Abs": "Abs", "ReLU": "Relu", "Sigmoid": "Sigmoid",
    "Tanh": "Tanh", "Pow": "Pow", "Maximum": "Max", "Minimum": "Min", "Copy": "Identity",
    # step functions are recorded (gradient 0, as torch): sign/floor/ceil in a model export
    "Sign": "Sign", "Floor": "Floor", "Ceil": "Ceil",
    # trigonometric and hyperbolic functions and erf: ONNX has each (opset 7-9)
    "Sin": "Sin", "Cos": "Cos", "Tan": "Tan", "Asin": "Asin", "Acos": "Acos", "Atan": "Atan",
    "Sinh": "Sinh", "Cosh": "Cosh", "Asinh": "Asinh", "Acosh": "Acosh", "Atanh": "Atanh",
    "Erf": "Erf",
}.items():
    CONVERTERS[_op] = _simple(_onnx_op)


def _scalar(b: GraphBuilder, value: float, dtype: Any) -> str:
    return b.const(np.asarray(value, dtype=dtype), "scalar")


@converts("Log1p")
def _log1p(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # Log(1 + x), as torch.onnx writes log1p (ONNX has no log1p)
    x = fn.inputs[0]
    return b.node("Log", [b.node("Add", [b.value(x), _scalar(b, 1, out.dtype)])]), b.batch_of(x)


@converts("Expm1")
def _expm1(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    return b.node("Sub", [b.node("Exp", [b.value(x)]), _scalar(b, 1, out.dtype)]), b.batch_of(x)


@converts("Round")
def _round(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # ONNX Round rounds half to even, as torch.round and np.round; decimals d as NumPy
    # computes them: round(x * 10^d) / 10^d
    x = fn.inputs[0]
    decimals = int(fn.args[0]) if fn.args else 0
    if not decimals:
        return b.node("Round", [b.value(x)]), b.batch_of(x)
    scale = _scalar(b, 10.0 ** decimals, out.dtype)
    rounded = b.node("Round", [b.node("Mul", [b.value(x), scale])])
    return b.node("Div", [rounded, scale]), b.batch_of(x)


@converts("Trunc")
def _trunc(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # toward zero: ceil below 0, floor elsewhere (ONNX has no Trunc)
    x = fn.inputs[0]
    name = b.value(x)
    negative = b.node("Less", [name, _scalar(b, 0, out.dtype)])
    return (b.node("Where", [negative, b.node("Ceil", [name]), b.node("Floor", [name])]),
            b.batch_of(x))


@converts("Fmod")
def _fmod(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # C's fmod (the sign of the dividend): ONNX Mod with fmod=1
    names = [b.value(t, out.dtype) for t in fn.inputs]
    return b.node("Mod", names, fmod=1), _broadcast_batch(b, fn, out)


@converts("Remainder")
def _remainder(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # Python's % (the sign of the divisor): ONNX Mod with fmod=0 is for integers only, so
    # a - floor(a / b) * b for floats, as torch.remainder's formula
    a, c = (b.value(t, out.dtype) for t in fn.inputs)
    if np.dtype(out.dtype).kind in "iu":
        return b.node("Mod", [a, c], fmod=0), _broadcast_batch(b, fn, out)
    quotient = b.node("Floor", [b.node("Div", [a, c])])
    return b.node("Sub", [a, b.node("Mul", [quotient, c])]), _broadcast_batch(b, fn, out)


@converts("Prod")
def _prod(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    dim = fn.dim
    axes = tuple(range(x.ndim)) if dim is None else tuple(
        int(d) % max(x.ndim, 1) for d in np.atleast_1d(dim))
    if not axes or x.ndim == 0:
        return b.node("Identity", [b.value(x)]), False
    keep = bool(fn.keepdim) and dim is not None
    return b.reduce("ReduceProd", b.value(x), axes, keep), b.batch_of(x) and 0 not in axes


@converts("CumSum")
def _cumsum(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    axis = int(fn.dim) % max(x.ndim, 1)
    return b.node("CumSum", [b.value(x), b.const(np.asarray(axis, np.int64), "axis")]), (
        b.batch_of(x) and axis != 0)


@converts("Einsum")
def _einsum(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # the equation with every operand's subscripts written out (ellipses expanded)
    equation = f"{','.join(fn.terms)}->{fn.output}"
    names = [b.value(t, out.dtype) for t in fn.inputs]
    batch = bool(fn.output) and all(
        b.batch_of(t) and term[:1] == fn.output[:1]
        for t, term in zip(fn.inputs, fn.terms, strict=True))
    return b.node("Einsum", names, equation=equation), batch


@converts("Logit")
def _logit(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # log(x / (1 - x)), x clamped to [eps, 1 - eps] first when eps is given (torch.logit)
    x = fn.inputs[0]
    name = b.value(x)
    if fn.eps is not None:
        name = b.node("Clip", [name, _scalar(b, fn.eps, out.dtype),
                               _scalar(b, 1 - fn.eps, out.dtype)])
    odds = b.node("Div", [name, b.node("Sub", [_scalar(b, 1, out.dtype), name])])
    return b.node("Log", [odds]), b.batch_of(x)


@converts("NanToZero")
def _nan_to_zero(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # nansum / nanmean's summand: 0 where x is NaN
    x = fn.inputs[0]
    name = b.value(x)
    return (b.node("Where", [b.node("IsNaN", [name]), _scalar(b, 0, out.dtype), name]),
            b.batch_of(x))


@converts("Hypot")
def _hypot(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    a, c = (b.value(t, out.dtype) for t in fn.inputs)
    squares = b.node("Add", [b.node("Mul", [a, a]), b.node("Mul", [c, c])])
    return b.node("Sqrt", [squares]), _broadcast_batch(b, fn, out)
CONVERTERS["LeakyReLU"] = _simple("LeakyRelu", alpha=lambda fn: float(fn.slope))
CONVERTERS["ELU"] = _simple("Elu", alpha=lambda fn: float(fn.alpha))


@converts("Cast")
def _cast(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    to = helper.np_dtype_to_tensor_dtype(np.dtype(out.dtype))
    return b.node("Cast", [b.value(fn.inputs[0])], to=to), b.batch_of(fn.inputs[0])


@converts("ReadsInput")
def _reads_input(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # a marker for create_graph (ops/elementwise.py): the value is its first input's
    x = fn.inputs[0]
    return b.node("Identity", [b.value(x)]), b.batch_of(x)


@converts("PowScalar")
def _pow_scalar(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    exponent = b.const(fn.exponent, "exponent", dtype=out.dtype)
    return b.node("Pow", [b.value(x), exponent]), b.batch_of(x)


@converts("Clip")
def _clip(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    name = b.value(x)
    for bound, op in ((fn.lo, "Max"), (fn.hi, "Min")):
        if bound is not None:
            name = b.node(op, [name, b.const(bound, "bound", dtype=out.dtype)])
    return name, b.batch_of(x)


CONVERTERS["Hardtanh"] = _clip  # relu6 and hardtanh: the same Max/Min as clamp


@converts("Hardsigmoid")
def _hardsigmoid(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # ONNX HardSigmoid is max(0, min(1, alpha x + beta)); torch's is alpha = 1/6, beta = 1/2
    x = fn.inputs[0]
    return b.node("HardSigmoid", [b.value(x)], alpha=1 / 6, beta=0.5), b.batch_of(x)


@converts("Hardswish")
def _hardswish(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    name = b.value(x)
    gate = b.node("HardSigmoid", [name], alpha=1 / 6, beta=0.5)
    return b.node("Mul", [name, gate]), b.batch_of(x)


@converts("SiLU")
def _silu(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    name = b.value(x)
    return b.node("Mul", [name, b.node("Sigmoid", [name])]), b.batch_of(x)


@converts("Mish")
def _mish(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    name = b.value(x)
    gate = b.node("Tanh", [b.node("Softplus", [name])])
    return b.node("Mul", [name, gate]), b.batch_of(x)


#: Tensor comparisons (the NumPy ufunc ``Tensor._compare`` ran) as ONNX ops; ``!=`` is Not(Equal)
_COMPARISONS = {"less": "Less", "less_equal": "LessOrEqual", "greater": "Greater",
                "greater_equal": "GreaterOrEqual", "equal": "Equal", "not_equal": "Equal"}


@converts("Where")
def _where(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    names = [b.value(t, out.dtype) for t in fn.inputs]
    source = getattr(fn, "condition_source", None)
    if source is None:  # a constant mask (the second trace refuses one that follows the input)
        condition = b.const(fn.condition, "condition", dtype=bool)
        batch = _broadcast_batch(b, fn, out) and np.ndim(fn.condition) < out.ndim
        return b.node("Where", [condition, *names]), batch
    # the mask is a comparison of a value of the graph (threshold, hardshrink, softshrink,
    # where(x > 0, ...)): compare in the dtype gradwise compared in (Tensor._compare promotes)
    ufunc, lhs, rhs, target, _ = source
    operands = [b.value(lhs, target) if lhs.dtype == target else
                b.node("Cast", [b.value(lhs)], to=_onnx_dtype(target))]
    if isinstance(rhs, Tensor):
        operands.append(b.value(rhs, target) if rhs.dtype == target else
                        b.node("Cast", [b.value(rhs)], to=_onnx_dtype(target)))
    else:
        operands.append(b.const(np.asarray(rhs, dtype=target), "compared_with"))
    condition = b.node(_COMPARISONS[ufunc], operands)
    if ufunc == "not_equal":
        condition = b.node("Not", [condition])
    compared = [t for t in (lhs, rhs) if isinstance(t, Tensor)]
    batch = _broadcast_batch(b, fn, out) or any(b.batch_of(t) and t.ndim == out.ndim
                                                 for t in compared)
    return b.node("Where", [condition, *names]), batch


def _onnx_dtype(dtype: Any) -> int:
    return int(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


@converts("Softplus")
def _softplus(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # PyTorch's softplus: log(1 + exp(beta x)) / beta, and x itself where beta x > threshold
    x = fn.inputs[0]
    name = b.value(x)
    scaled = b.node("Mul", [name, b.const(fn.beta, "beta", dtype=out.dtype)])
    soft = b.node("Div", [b.node("Softplus", [scaled]), b.const(fn.beta, "beta", dtype=out.dtype)])
    linear = b.node("Greater", [scaled, b.const(fn.threshold, "threshold", dtype=out.dtype)])
    return b.node("Where", [linear, name, soft]), b.batch_of(x)


@converts("GELU")
def _gelu(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    name = b.value(x)
    if b.opset >= 20:
        return b.node("Gelu", [name], approximate=fn.approximate), b.batch_of(x)

    def c(value: float) -> str:
        return b.const(value, "gelu", dtype=out.dtype)

    if fn.approximate == "tanh":
        # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (Hendrycks & Gimpel, 2016)
        cube = b.node("Mul", [b.node("Mul", [name, name]), name])
        inner = b.node("Add", [name, b.node("Mul", [cube, c(0.044715)])])
        core = b.node("Tanh", [b.node("Mul", [inner, c(math.sqrt(2 / math.pi))])])
    else:
        # 0.5 x (1 + erf(x / sqrt 2))
        core = b.node("Erf", [b.node("Mul", [name, c(1 / math.sqrt(2))])])
    half_x = b.node("Mul", [name, c(0.5)])
    return b.node("Mul", [half_x, b.node("Add", [core, c(1.0)])]), b.batch_of(x)


# ---- linear algebra and convolution --------------------------------------------------------------
@converts("MatMul")
def _matmul(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    names = [b.value(t, out.dtype) for t in fn.inputs]
    return b.node("MatMul", names), _broadcast_batch(b, fn, out)


@converts("Linear")
def _linear(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # y = x W^T + b, W (out_features, in_features)
    x, weight = fn.inputs[0], fn.inputs[1]
    names = [b.value(t, out.dtype) for t in fn.inputs]
    if x.ndim == 2:
        return b.node("Gemm", names, transB=1), b.batch_of(x)
    product = b.node("MatMul", [names[0], b.node("Transpose", [names[1]], perm=[1, 0])])
    if len(names) == 3:
        product = b.node("Add", [product, names[2]])
    return product, b.batch_of(x) and x.ndim > 1 and weight.ndim == 2


@converts("LinearReLU")
def _linear_relu(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # the fused node nn.Sequential records for Linear then ReLU: Gemm (or MatMul + Add), Relu
    product, batched = _linear(b, fn, out)
    return b.node("Relu", [product]), batched


@converts("Conv2d")
def _conv2d(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    _, _, stride, padding, dilation = fn.geometry
    weight = fn.inputs[1]
    names = [b.value(t, out.dtype) for t in fn.inputs]
    return b.node(
        "Conv", names,
        kernel_shape=list(weight.shape[2:]), strides=list(stride),
        pads=[padding[0], padding[1], padding[0], padding[1]], dilations=list(dilation),
    ), b.batch_of(fn.inputs[0])


@converts("MaxPool2d", "AvgPool2d")
def _pool(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    kernel, stride, padding = fn.geometry[-3:]
    attrs: dict[str, Any] = dict(
        kernel_shape=list(kernel), strides=list(stride),
        pads=[padding[0], padding[1], padding[0], padding[1]],
    )
    if fn.name == "AvgPool2d":
        onnx_op, attrs["count_include_pad"] = "AveragePool", 1  # padding counts as zeros
    else:
        onnx_op = "MaxPool"
    x = fn.inputs[0]
    return b.node(onnx_op, [b.value(x)], **attrs), b.batch_of(x)


@converts("MaxPoolNd", "AvgPoolNd")
def _pool_nd(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # the pools with torch's options (autograd/ops/pool_nd.py) as MaxPool / AveragePool with
    # ceil_mode, dilations and count_include_pad
    x = fn.inputs[0]
    attrs: dict[str, Any]
    if fn.name == "MaxPoolNd":
        kernel, stride, padding, dilation, ceil_mode = fn.pool_args
        onnx_op, attrs = "MaxPool", {"dilations": list(dilation)}
    else:
        _, _, _, kernel, stride, padding = fn.geometry
        ceil_mode, count_include_pad, divisor_override = fn.options
        if divisor_override is not None:
            raise _UnsupportedError("ONNX AveragePool has no divisor_override")
        onnx_op, attrs = "AveragePool", {"count_include_pad": int(count_include_pad)}
    if x.ndim != len(kernel) + 2:
        raise _UnsupportedError("an unbatched pooling input (ONNX pools need (N, C, ...))")
    return b.node(onnx_op, [b.value(x)], kernel_shape=list(kernel), strides=list(stride),
                  pads=list(padding) * 2, ceil_mode=int(ceil_mode), **attrs), b.batch_of(x)


# ---- normalisation -------------------------------------------------------------------------------
def _affine_params(b: GraphBuilder, fn: Any, shape: Any, dtype: Any) -> tuple[str, str]:
    """ONNX wants both scale and bias: the recorded ones, or ones / zeros when absent."""
    rest = list(fn.inputs[1:])
    scale = b.value(rest.pop(0), dtype) if fn.has_weight else b.const(np.ones(shape, dtype))
    bias = b.value(rest.pop(0), dtype) if fn.has_bias else b.const(np.zeros(shape, dtype))
    return scale, bias


@converts("BatchNorm")
def _batch_norm(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    if fn.running_stats is None:
        raise _UnsupportedError(
            "batch norm ran on batch statistics (training=True); export evaluates with the "
            "running statistics, so call F.batch_norm with training=False"
        )
    channels = x.shape[1]
    scale, bias = _affine_params(b, fn, (channels,), out.dtype)
    mean, var = (b.const(s, "running", dtype=out.dtype) for s in fn.running_stats)
    return b.node(
        "BatchNormalization", [b.value(x), scale, bias, mean, var], epsilon=float(fn.eps)
    ), b.batch_of(x)


@converts("LayerNorm")
def _layer_norm(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    shape = tuple(fn.param_shape)
    axes = list(range(x.ndim - len(shape), x.ndim))
    scale, bias = _affine_params(b, fn, shape, out.dtype)
    name = b.value(x)
    if b.opset >= 17:
        return b.node(
            "LayerNormalization", [name, scale, bias], axis=-len(shape), epsilon=float(fn.eps)
        ), b.batch_of(x) and len(shape) < x.ndim
    # y = (x - mean) / sqrt(var + eps) * scale + bias, var biased, over the trailing axes
    centered = b.node("Sub", [name, b.reduce("ReduceMean", name, axes, True)])
    var = b.reduce("ReduceMean", b.node("Mul", [centered, centered]), axes, True)
    std = b.node("Sqrt", [b.node("Add", [var, b.const(fn.eps, "eps", dtype=out.dtype)])])
    normed = b.node("Div", [centered, std])
    return b.node("Add", [b.node("Mul", [normed, scale]), bias]), (
        b.batch_of(x) and len(shape) < x.ndim
    )


# ---- reductions ----------------------------------------------------------------------------------
def _reduction(onnx_op: str) -> Converter:
    def convert(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
        x = fn.inputs[0]
        axes = tuple(fn.axes)
        if not axes:  # a 0-d input: nothing to reduce
            return b.node("Identity", [b.value(x)]), False
        batch = b.batch_of(x) and 0 not in axes
        return b.reduce(onnx_op, b.value(x), axes, fn.keepdims), batch

    return convert


CONVERTERS["Sum"] = _reduction("ReduceSum")
CONVERTERS["Mean"] = _reduction("ReduceMean")
CONVERTERS["Max"] = _reduction("ReduceMax")
CONVERTERS["Min"] = _reduction("ReduceMin")
CONVERTERS["LogSumExp"] = _reduction("ReduceLogSumExp")


@converts("Var", "Std")
def _variance(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # sum((x - mean(x))^2) / (N - ddof) over the axes; Std takes its square root
    x = fn.inputs[0]
    axes = tuple(fn.axes)
    name = b.value(x)
    centered = b.node("Sub", [name, b.reduce("ReduceMean", name, axes, True)])
    total = b.reduce("ReduceSum", b.node("Mul", [centered, centered]), axes, fn.keepdims)
    result = b.node("Div", [total, b.const(fn.dof, "dof", dtype=out.dtype)])
    if fn.name == "Std":
        result = b.node("Sqrt", [result])
    return result, b.batch_of(x) and 0 not in axes


@converts("VectorNorm")
def _vector_norm(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    axes, keep, p = tuple(fn.axes), fn.keepdims, fn.ord
    batch = b.batch_of(x) and 0 not in axes
    name = b.value(x)
    if p == 2:
        return b.reduce("ReduceL2", name, axes, keep), batch
    if p == 1:
        return b.reduce("ReduceL1", name, axes, keep), batch
    if p == 0:
        zero = b.const(0, "zero", dtype=out.dtype)
        nonzero = b.node("Not", [b.node("Equal", [name, zero])])
        to = helper.np_dtype_to_tensor_dtype(np.dtype(out.dtype))
        return b.reduce("ReduceSum", b.node("Cast", [nonzero], to=to), axes, keep), batch
    magnitude = b.node("Abs", [name])
    if math.isinf(p):
        return b.reduce("ReduceMax" if p > 0 else "ReduceMin", magnitude, axes, keep), batch
    powered = b.node("Pow", [magnitude, b.const(p, "ord", dtype=out.dtype)])
    total = b.reduce("ReduceSum", powered, axes, keep)
    return b.node("Pow", [total, b.const(1 / p, "inverse_ord", dtype=out.dtype)]), batch


@converts("Softmax", "LogSoftmax")
def _softmax(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    axis = int(fn.axis) % max(x.ndim, 1)
    return b.node(fn.name, [b.value(x)], axis=axis), b.batch_of(x)


# ---- shapes --------------------------------------------------------------------------------------
@converts("Reshape")
def _reshape(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    target = [int(n) for n in out.shape]
    at = len(b.reshape_targets)
    b.reshape_targets.append(tuple(target))
    hint = b.reshape_hints[at] if b.reshape_hints and at < len(b.reshape_hints) else None
    moved = ([i for i, (n, m) in enumerate(zip(target, hint, strict=True)) if n != m]
             if hint is not None and len(hint) == len(target) else [])
    batch = False
    if b.batch_of(x) and target and target[0] == x.shape[0] and moved in ([], [0]):
        target[0], batch = 0, True  # 0: copy axis 0 (the batch) from the input
    elif len(moved) == 1:
        # the one axis whose size follows the batch size (the batch moved or folded there)
        target[moved[0]] = -1
    elif len(moved) > 1 and not b.collecting:
        raise _UnsupportedError(
            f"a reshape to {tuple(target)} whose axes {moved} all follow the batch size (one "
            "-1 can stand for one of them) cannot keep the batch dynamic (export with "
            "dynamic_batch=False)")
    elif (b.batch_of(x) and target and not b.collecting and x.shape[0]
            and target[0] % x.shape[0] == 0 and 0 not in target[1:]):
        # the batch folded into axis 0 with others and no trace at more rows told where it
        # went (the model cannot run on another batch size): a file written from it would only
        # run at the traced batch size
        raise _UnsupportedError(
            f"a reshape folding the batch axis into another ({tuple(x.shape)} -> "
            f"{tuple(target)}) in a model that cannot run on another batch size cannot keep "
            "the batch dynamic (export with dynamic_batch=False)")
    shape = b.ints(target, "shape")
    b.reshape_names.add(shape)
    return b.node("Reshape", [b.value(x), shape]), batch


@converts("Repeat")
def _repeat(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # Tile (ONNX repeats each axis like np.tile), after Unsqueeze for the leading counts
    x = fn.inputs[0]
    extra = len(fn.reps) - x.ndim
    name = b.value(x)
    if extra:
        name = b.unsqueeze(name, list(range(extra)))
    batch = b.batch_of(x) and extra == 0 and fn.reps[0] == 1
    return b.node("Tile", [name, b.ints(list(fn.reps), "repeats")]), batch


@converts("Flip")
def _flip(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # a Slice stepping backwards over each flipped axis, from its last element through index 0
    x = fn.inputs[0]
    axes = sorted({int(a) % max(x.ndim, 1) for a in np.atleast_1d(fn.axes)})
    if not axes:
        return b.node("Identity", [b.value(x)]), b.batch_of(x)
    name = b.node("Slice", [b.value(x), b.ints([-1] * len(axes), "starts"),
                            b.ints([-(2**62)] * len(axes), "ends"), b.ints(axes),
                            b.ints([-1] * len(axes), "steps")])
    return name, b.batch_of(x) and 0 not in axes


@converts("Transpose")
def _transpose(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    perm = [int(a) % max(x.ndim, 1) for a in fn.axes]
    batch = b.batch_of(x) and bool(perm) and perm[0] == 0
    return b.node("Transpose", [b.value(x)], perm=perm), batch


@converts("BroadcastTo")
def _broadcast_to(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    # Expand broadcasts the input against the shape, so 1 keeps an axis the input already has
    x = fn.inputs[0]
    target = [int(n) for n in out.shape]
    offset = out.ndim - x.ndim
    for i, n in enumerate(x.shape):
        if n == target[offset + i]:
            target[offset + i] = 1
    batch = b.batch_of(x) and offset == 0
    return b.node("Expand", [b.value(x), b.ints(target, "shape")]), batch


@converts("Cat")
def _cat(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    axis = int(fn.axis) % max(out.ndim, 1)
    names = [b.value(t, out.dtype) for t in fn.inputs]
    batch = axis != 0 and all(b.batch_of(t) for t in fn.inputs)
    return b.node("Concat", names, axis=axis), batch


@converts("Stack")
def _stack(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    names = [b.unsqueeze(b.value(t, out.dtype), [fn.axis]) for t in fn.inputs]
    batch = fn.axis != 0 and all(b.batch_of(t) for t in fn.inputs)
    return b.node("Concat", names, axis=int(fn.axis)), batch


@converts("Pad")
def _pad(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    before = [s.start for s in fn.slices]
    after = [total - s.stop for s, total in zip(fn.slices, out.shape, strict=True)]
    value = b.const(fn.value, "pad_value", dtype=out.dtype)
    name = b.node("Pad", [b.value(x), b.ints(before + after, "pads"), value], mode="constant")
    return name, b.batch_of(x) and before[0] == 0 and after[0] == 0


@converts("GetItem")
def _getitem(b: GraphBuilder, fn: Any, out: Any) -> tuple[str, bool]:
    x = fn.inputs[0]
    index = fn.index
    if not fn.basic:
        gathered = _gather_index(b, x, index)
        if gathered is not None:
            return gathered
        raise _UnsupportedError(
            f"only basic indexing (ints, slices, None, ...) and integer arrays on adjacent "
            f"axes after whole slices (x[:, idx], x[..., rows, cols]) are exported, got index "
            f"{_describe(index)}"
        )
    return _basic_index(b, x, index)


def _gather_index(b: GraphBuilder, x: Tensor, index: Any) -> tuple[str, bool] | None:
    """``x[:, ..., i1, i2, ..., :]``: integer arrays on adjacent axes, every other axis whole
    (reflect/replicate/circular padding and ``index_select`` on any dim, nearest/bilinear
    upsampling, ``unfold``) as one ONNX Gather; None for any other index.

    NumPy's rule for adjacent integer arrays: they broadcast to one shape B, and the result is
    ``x.shape[:k] + B + x.shape[k+m:]``. One array is ``Gather(axis=k)``; m arrays index the
    flattened product of their m axes (``Reshape`` then Gather with the arrays' ``ravel_multi_
    index``), computed here, at export time: the indices are constants of the trace (an index
    computed from the input values differs between the two traces and is refused there).
    """
    items = list(index) if isinstance(index, tuple) else [index]
    if sum(1 for i in items if i is Ellipsis) > 1 or any(i is None for i in items):
        return None
    if any(i is Ellipsis for i in items):  # not `in`: it compares arrays with ==
        at = next(k for k, i in enumerate(items) if i is Ellipsis)
        items[at : at + 1] = [slice(None)] * (x.ndim - len(items) + 1)
    items += [slice(None)] * (x.ndim - len(items))
    arrays = [k for k, i in enumerate(items) if isinstance(i, np.ndarray)]
    whole = all(isinstance(i, slice) and i == slice(None) for k, i in enumerate(items)
                if k not in arrays)
    if (not arrays or not whole or len(items) != x.ndim
            or arrays != list(range(arrays[0], arrays[0] + len(arrays)))
            or any(items[k].dtype.kind not in "iu" for k in arrays)):
        return None
    k, m = arrays[0], len(arrays)
    dims = tuple(int(n) for n in x.shape[k : k + m])
    source = b.input_named_by(items[k]) if m == 1 else None
    if source is not None:  # indices fed by the model's input (an embedding lookup)
        name = source
    else:
        wrapped = [np.asarray(items[a]).astype(np.int64) % max(d, 1)
                   for a, d in zip(arrays, dims, strict=True)]
        flat = (np.ravel_multi_index(tuple(np.broadcast_arrays(*wrapped)), dims) if m > 1
                else wrapped[0])
        name = b.const(np.asarray(flat, dtype=np.int64), "indices")
    data = b.value(x)
    if m > 1:
        # 0 copies an axis from the input (a dynamic batch stays dynamic)
        shape = [0] * k + [int(np.prod(dims))] + [int(n) for n in x.shape[k + m :]]
        data = b.node("Reshape", [data, b.ints(shape, "shape")])
    if k == 0:
        return b.node("Gather", [data, name], axis=0), (
            source is not None and b.has_batch(source))
    return b.node("Gather", [data, name], axis=k), b.batch_of(x)


def _describe(index: Any) -> str:
    items = index if isinstance(index, tuple) else (index,)
    return "(" + ", ".join(
        f"array{np.shape(i)} of {np.asarray(i).dtype}" if isinstance(i, np.ndarray | list)
        else repr(i) for i in items
    ) + ")"


def _basic_index(b: GraphBuilder, x: Tensor, index: Any) -> tuple[str, bool]:
    items = list(index) if isinstance(index, tuple) else [index]
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    fill = [slice(None)] * (x.ndim - used)
    if any(i is Ellipsis for i in items):
        at = next(k for k, i in enumerate(items) if i is Ellipsis)
        items[at : at + 1] = fill
    else:
        items += fill
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis = 0
    out_axis = 0
    batch = b.batch_of(x)
    for item in items:
        if item is None:
            unsqueeze.append(out_axis)
            out_axis += 1
            continue
        if axis >= x.ndim:
            break
        size = x.shape[axis]
        if isinstance(item, slice):
            start, stop, step = item.indices(size)
            if (start, stop, step) != (0, size, 1):
                if step < 0 and stop < 0:
                    stop = -(2**62)  # "through index 0" when stepping backwards
                starts.append(start)
                ends.append(stop)
                axes.append(axis)
                steps.append(step)
                if axis == 0:
                    batch = False
            out_axis += 1
        else:
            i = int(item) % size
            starts.append(i)
            ends.append(i + 1)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
            if axis == 0:
                batch = False
        axis += 1
    name = b.value(x)
    if axes:
        name = b.node(
            "Slice",
            [name, b.ints(starts, "starts"), b.ints(ends, "ends"), b.ints(axes), b.ints(steps)],
        )
    if squeeze:
        name = b.squeeze(name, squeeze)
    if unsqueeze:
        name = b.unsqueeze(name, unsqueeze)
        if 0 in unsqueeze:
            batch = False
    if not (axes or squeeze or unsqueeze):
        name = b.node("Identity", [name])
    return name, batch


__all__ = ["CONVERTERS", "GraphBuilder", "converts", "onnx"]
