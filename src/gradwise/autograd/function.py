"""Function: the base of every differentiable op, with forward and backward side by side.

How to add a differentiable op (the whole recipe)::

    class Square(Function):
        saves_inputs = True            # backward reads x, so in-place changes to x must be caught

        @staticmethod
        def forward(ctx, x):           # x is an np.ndarray; return an np.ndarray
            ctx.x = x
            return x * x

        @staticmethod
        def backward(ctx, grad):       # grad: dL/d(output), shaped like the output
            return (grad * 2 * ctx.x,) # one gradient per Tensor argument, in order

    y = Square.apply(t)                # t is a Tensor; y records Square as its grad_fn

The positional arguments named by ``tensor_args`` (the first one by default; all of them when it is
None) are the op's inputs: a Tensor there is unwrapped to its array for ``forward``, an array-like
(NumPy array, list, number) is taken as a constant input that needs no gradient, and ``None`` (an
absent bias) is passed through and is not an input. Every other argument (axis, a target, a
flag) is passed to ``forward`` as it is, a Tensor there as its array, and gets no gradient.
``backward`` returns one entry per input, in order, and ``ctx.needs_input_grad`` has one flag per
input, so a constant given as an ndarray keeps the positions of the others. ``backward`` may
return ``None`` for an input whose flag is False, and skipping that work is how the first layer
avoids computing a gradient for the data.

Second derivatives (``backward(create_graph=True)``, ``gw.autograd.grad``) need one more method,
``backward_graph(ctx, grad)``: the same gradients computed with recorded Tensor ops (``grad`` and
the results are Tensors, the inputs are ``ctx.inputs``), so they can be differentiated again::

        @staticmethod
        def backward_graph(ctx, grad):
            (x,) = ctx.inputs
            return (grad * 2 * x,)

An op that cannot have one says why in ``no_backward_graph`` (docs/NUMERICS.md lists them).
"""

from __future__ import annotations

import weakref
from typing import Any, ClassVar

import numpy as np

from gradwise.autograd import _fperr, anomaly, observe
from gradwise.autograd.grad_mode import _grad_enabled
from gradwise.autograd.graph import _full_node_name, _inputs_of
from gradwise.autograd.tensor import Tensor, _as_array


def _refuse_hidden_input(cls: type, position: int) -> None:
    """A user's Function got a Tensor that requires grad at a position ``tensor_args`` does not
    list: torch would differentiate it, gradwise would pass its array and give it no gradient,
    silently. Raise instead (gradwise's own ops pass such arguments on purpose: not checked).

    Raises:
        RuntimeError: always, naming the Function, the position and the two ways out.
    """
    name = getattr(cls, "op_name", None) or cls.__qualname__  # __name__ is torch's node name
    raise RuntimeError(
        f"{name}.apply: argument {position} is a Tensor that requires grad, but "
        f"{name}.tensor_args = {getattr(cls, 'tensor_args', None)!r} does not list it, so it "
        "would get no gradient (torch differentiates every Tensor argument). Set "
        "tensor_args = None (every positional argument is an input; backward returns one "
        "gradient per input) or "
        "a tuple of the input positions, or pass it .detach() if it is a constant "
        "(docs/PORTING.md, custom Functions)")


class Function:
    """Base class of differentiable ops; an instance is the graph node (``ctx``) of one call."""

    #: backward reads the inputs, so an in-place change to them before backward is an error
    saves_inputs: ClassVar[bool] = True
    #: backward reads the output, so an in-place change to it before backward is an error
    saves_output: ClassVar[bool] = False
    #: the gradient ``backward_graph`` records reads this op's output (torch saves ``result`` for
    #: it: exp, sigmoid, softmax, norms...), so that output changed in place before the
    #: create_graph gradient is differentiated again is an error there too (False: torch's
    #: double backward reads the input instead: elu, max_pool2d; a node may set its own)
    double_backward_reads_output: bool = True
    #: while ``create_graph`` runs ``backward_graph`` on a node whose op ``saves_output``: the
    #: tensor the node made (torch's saved ``result``), so the recorded gradient reads it, and
    #: its version is checked, rather than recomputing it from an input that may have changed
    result: Tensor | None = None
    #: (tensor, its version then, op class): outputs that the gradient recorded by a node's
    #: ``backward_graph`` depends on; set on the recorded gradient's node and checked when that
    #: gradient is differentiated (``_check_versions``), as torch checks a saved ``result``
    saved_guards: tuple[tuple[Any, ...], ...] = ()
    #: the output's data may be a view of the first input's; if so they share a version counter
    returns_view: ClassVar[bool] = False
    #: backward may return None for an input that requires grad: torch's undefined gradient
    #: (nothing flows back along that edge; ``autograd.grad(..., allow_unused=True)`` gives None
    #: for an input reached only through it)
    may_send_no_grad: ClassVar[bool] = False
    #: backward returns newly allocated arrays (or views of them) that nothing else references,
    #: each input its own, so a leaf may keep one as its ``.grad`` without copying it
    owns_grads: ClassVar[bool] = False
    #: positions of the positional arguments that are inputs (Tensors or array-like constants);
    #: None: every positional argument is one (cat, stack)
    tensor_args: ClassVar[tuple[int, ...] | None] = (0,)
    #: activation and loss ops name their kind ("relu", "tanh", "loss"...) so that an observer
    #: (the training doctor, see ``autograd/observe.py``) sees their outputs wherever they run
    observe_kind: ClassVar[str | None] = None
    #: set on the node of a recorded in-place op (``_rebase`` in tensor_ops.py): the version of
    #: the changed tensor just after the change; nodes recorded before it (an input version below
    #: this) reach the tensor's earlier history instead, as torch's edges point at the old grad_fn
    _rebase_version: int = -1
    #: an op without a ``backward_graph`` (the differentiable backward that ``create_graph``
    #: runs: ``backward_graph(ctx, grad)`` takes and returns Tensors, built from recorded ops)
    #: says here why, and the create_graph error quotes it; docs/NUMERICS.md lists these ops
    no_backward_graph: ClassVar[str | None] = None

    #: the op's own name ("MatMul"), used in graphs and error messages; the class's ``__name__``
    #: is PyTorch's node name ("MmBackward0"), so ``type(t.grad_fn).__name__`` reads as in torch
    op_name: ClassVar[str] = "Function"
    #: PyTorch's node name when it is not ``<op_name>Backward0`` ("Relu", or a full
    #: "SumBackward1"); an op whose node name depends on the call overrides ``torch_node_name``
    #: and sets ``named_per_call`` so each node gets a class of that name
    torch_name: ClassVar[str | None] = None
    named_per_call: ClassVar[bool] = False
    _variants: ClassVar[dict[str, type]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_is_variant"):
            return
        cls.op_name = cls.__name__
        cls.torch_name = cls.__dict__.get("torch_name")  # a subclass names its own node
        cls._variants = {}
        cls.__name__ = _full_node_name(cls.torch_name or cls.op_name)

    @classmethod
    def _variant(cls, node_name: str) -> type:
        """The subclass of this op whose ``__name__`` is PyTorch's ``node_name`` (cached)."""
        variant = cls._variants.get(node_name)
        if variant is None:
            base: Any = cls.__mro__[1] if cls.__dict__.get("_is_variant") else cls
            if base is not cls:
                return base._variant(node_name)
            variant = type(cls.op_name, (cls,), {"_is_variant": True,
                                                 "__qualname__": cls.__qualname__,
                                                 "__module__": cls.__module__})
            variant.__name__ = node_name
            cls._variants[node_name] = variant
        return variant

    inputs: tuple[Tensor, ...] | None
    input_versions: tuple[int, ...]  # the inputs' versions when recorded
    output_version: int  # the output's version when saved (saves_output)
    needs_input_grad: tuple[bool, ...]

    @staticmethod
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        """Compute the op's output from NumPy arrays (never Tensors); override in every op.

        Args:
            ctx: this call's node; keep on it what ``backward`` needs (``ctx.x = x``).
            *args: the inputs' arrays (positions in ``tensor_args``) and plain arguments.

        Returns:
            The output array. Raise ValueError/TypeError naming the op and shapes for bad input.
        """
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Any, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        """Return d(loss)/d(input) for each input, given ``grad`` = d(loss)/d(output).

        Args:
            ctx: the node ``forward`` filled in.
            grad: array shaped like the output.

        Returns:
            One array (shaped like that input, broadcasting undone with ``unbroadcast``) or None per
            positional input, in order. An op that can be differentiated twice also defines
            ``backward_graph(ctx, grad)``: the same local derivative written in Tensor ops.
        """
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Tensor:
        """Run ``forward`` on the arrays behind ``args`` and record the node when grad is on."""
        tensors = []
        arrays = []
        requires_grad = False
        spec = cls.tensor_args
        for position, arg in enumerate(args):
            if isinstance(arg, Tensor):
                if arg._view_of is not None and arg._view_of[4] != arg._version[0]:
                    arg._refresh_view()  # its base changed in place since: torch's view replay
                if spec is None or position in spec:
                    tensors.append(arg)
                    requires_grad = requires_grad or arg._requires_grad
                elif (arg._requires_grad and not cls.__module__.startswith("gradwise.")
                      and _grad_enabled.get()):
                    _refuse_hidden_input(cls, position)
                arrays.append(arg._data)
            elif arg is not None and (spec is None or position in spec):
                constant = _constant(cls.op_name, position, arg)
                tensors.append(constant)
                arrays.append(constant._data)
            else:
                arrays.append(arg)
        ctx = cls.__new__(cls)
        record = requires_grad and _grad_enabled.get()
        ctx.needs_input_grad = tuple([t._requires_grad for t in tensors]) if record else ()
        detector = anomaly._detector.get()
        if detector is not None:
            detector.before_forward(ctx, tensors)
        # NumPy's warnings off (torch computes inf/NaN silently; anomaly mode reports them)
        token = _fperr.quiet()
        try:
            out = cls.forward(ctx, *arrays, **kwargs)
        finally:
            _fperr.restore(token)
        if record and cls.named_per_call:
            ctx.__class__ = cls._variant(_full_node_name(ctx.torch_node_name()))
        result = Tensor._make(out, record, ctx if record else None)
        if cls.returns_view and np.may_share_memory(out, arrays[0]):
            # a view and its base change together, so they share one version counter
            base = tensors[0]
            result._version = base._version
            result._base = base if base._base is None else base._base
            # the last field: made under no_grad (torch's CreationMeta::NO_GRAD_MODE), so an
            # in-place change of it recorded later is refused (``_records_inplace``)
            result._view_of = (base, cls, args[1:], kwargs, base._version[0],
                               not _grad_enabled.get())
        if record:
            ctx.inputs = tuple(tensors)
            # every node keeps its inputs' versions: saved inputs are checked against them, and
            # an input changed by a recorded in-place op is routed to its earlier history
            ctx.input_versions = tuple(t._version[0] for t in tensors)
            if cls.saves_output:
                ctx.output_version = result._version[0]
        if detector is not None:
            detector.after_forward(ctx, tensors, result)
        if cls.observe_kind is not None:
            observer = observe._observer.get()
            if observer is not None:
                observer(cls.observe_kind, tuple(arrays), out)
        return result

    def save_for_backward(self, *values: Any) -> None:
        """Keep ``values`` for ``backward``, read back as ``ctx.saved_tensors`` (torch's API).

        ``forward`` receives NumPy arrays, so what is saved (and given back) is those arrays,
        unchanged and in order (None allowed, as torch). In-place changes of the inputs before
        backward are caught through ``saves_inputs`` (on by default), not here; docs/PORTING.md
        lists how a gradwise Function differs from a torch one.

        Args:
            values: arrays (or Tensors, or None) that ``backward`` needs.
        """
        self._saved_values = values

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """What ``save_for_backward`` kept, as a tuple in the same order (() if nothing was)."""
        return getattr(self, "_saved_values", ())

    @property
    def name(self) -> NodeName:
        """The op's name in graphs and error messages: the class's own name (``"MatMul"``), a
        string; calling it, ``grad_fn.name()``, gives torch's node name (``"MmBackward0"``)."""
        return NodeName(type(self).op_name, type(self).__name__)

    @property
    def next_functions(self) -> tuple[tuple[Any, int], ...]:
        """torch's edges: one ``(node, 0)`` pair per input, in order; the node is the input's
        ``grad_fn``, an :class:`AccumulateGrad` for a leaf that requires grad (its
        ``.variable`` is the leaf), or None for a constant. Empty once backward has freed the
        graph (torch keeps the edges; gradwise drops the inputs with the saved values)."""
        inputs = _inputs_of(self)
        if inputs is None:
            return ()
        return tuple((_edge_node(tensor), 0) for tensor in inputs)

    def __repr__(self) -> str:
        # PyTorch's spelling (MulBackward0): the class name, which is PyTorch's node name
        return f"<{type(self).__name__}>"

    def torch_node_name(self) -> str:
        """The name PyTorch gives this call's graph node (``ReluBackward0``; a bare ``Relu``
        means ``ReluBackward0``): ``torch_name`` or the op's name unless a subclass that sets
        ``named_per_call`` overrides this."""
        return type(self).torch_name or type(self).op_name

def _constant(op: str, position: int, value: Any) -> Tensor:
    """An array-like in an input position as a constant Tensor (an ndarray is not copied)."""
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = _as_array(value)  # a Python int is a value, not Tensor(n)'s shape
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"{op}: argument {position} must be a Tensor or array-like, got "
                f"{type(value).__name__} ({error})"
            ) from None
    if array.dtype.kind not in "biufc":
        raise TypeError(
            f"{op}: argument {position} must be a Tensor or numeric array-like, got "
            f"{type(value).__name__} of dtype {array.dtype}"
        )
    return Tensor._make(array, False, None)


class NodeName(str):
    """A node's gradwise op name (``"Mul"``, what graphs and messages print) that, called as
    torch's ``grad_fn.name()``, returns torch's node name (``"MulBackward0"``)."""

    torch_name: str

    def __new__(cls, op_name: str, torch_name: str) -> NodeName:
        text = super().__new__(cls, op_name)
        text.torch_name = torch_name
        return text

    def __call__(self) -> str:
        return self.torch_name


class AccumulateGrad:
    """The node torch puts at a leaf that requires grad (``grad_fn.next_functions`` shows it):
    ``variable`` is the leaf. gradwise accumulates leaf gradients inside ``backward()``; this
    node is what the graph shows, one per leaf while it is referenced."""

    def __init__(self, variable: Tensor) -> None:
        self.variable = variable

    def name(self) -> str:
        """torch's name for this node."""
        return "torch::autograd::AccumulateGrad"

    @property
    def next_functions(self) -> tuple[()]:
        """A leaf has no edges further back."""
        return ()

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"


_accumulators: weakref.WeakValueDictionary[int, AccumulateGrad] = weakref.WeakValueDictionary()


def _edge_node(tensor: Tensor) -> Any:
    """The node an edge to ``tensor`` points at (see :attr:`Function.next_functions`)."""
    if tensor._ctx is not None:
        return tensor._ctx
    if not tensor.requires_grad:
        return None
    node = _accumulators.get(id(tensor))
    if node is None or node.variable is not tensor:
        node = _accumulators[id(tensor)] = AccumulateGrad(tensor)
    return node
