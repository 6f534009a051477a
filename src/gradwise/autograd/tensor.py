"""Tensor: an ndarray, its gradient, version counter and hooks, and the node that made it.

The engine's lowest layer: it imports no op. The chain rule runs in graph.py (on NumPy arrays)
and higher_order.py (create_graph); the methods that run ops are written above the ops and set
on the class by attach.py, when ``gradwise.autograd`` is imported.
"""

from __future__ import annotations

import html as _html
import math
import sys
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from gradwise.autograd import _fperr, printing
from gradwise.autograd import dtypes as _dtypes
from gradwise.autograd._args import dim_arg, keepdim_arg
from gradwise.autograd.device import check_device
from gradwise.autograd.grad_mode import _grad_enabled

ArrayLike = Any
Axis = int | tuple[int, ...] | None


@_fperr.quietly  # 1e40 as float32 is inf, silently as torch.tensor gives it
def _as_array(data: ArrayLike, dtype: Any = None) -> np.ndarray:
    """Python numbers and lists become float32 (bool stays bool); NumPy arrays keep their dtype.

    Raises:
        TypeError: the data are not real numbers or booleans (strings, bytes, objects, complex
            numbers: gradwise's ops and gradients are real-valued; torch has complex dtypes).
        ValueError: nested sequences of different lengths (ragged), or more data than memory
            holds (named with the shape and size asked for, instead of NumPy's MemoryError).
    """
    if isinstance(data, Tensor):
        data = data._data
    # the source's own kind is checked before any cast: a cast to float would drop the
    # imaginary part, or fail with NumPy's words
    source = data if isinstance(data, np.ndarray | np.generic) else _numpy_array(data)
    if dtype is not None and source.dtype.kind == "O":
        source = _numpy_array(data, dtype)  # Python ints past int64 asked as floats
    _check_kind(source, data)
    array: np.ndarray
    if dtype is not None:
        array = _numpy_array(source, dtype)
    elif source is data:
        array = _numpy_array(source)
    else:
        array = np.asarray(source.astype(np.float32) if source.dtype.kind in "iuf" else source)
    if not array.dtype.isnative:
        # big-endian data (e.g. read from a file) become native order: numba's kernels and most
        # BLAS calls take native arrays only; torch.tensor refuses them instead (docs/PORTING.md)
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _check_kind(array: np.ndarray | np.generic, data: ArrayLike) -> None:
    if array.dtype.kind == "c":
        raise TypeError(
            f"tensor: complex data (dtype {array.dtype}) is not supported; gradwise's ops and "
            "gradients are real-valued (take .real/.imag, or abs(), first)"
        )
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"tensor: data must be numbers or booleans, got dtype {array.dtype} "
            f"({type(data).__name__}); a Tensor holds numeric data only"
        )


def _numpy_array(data: ArrayLike, dtype: Any = None) -> np.ndarray:
    """``np.array(data, dtype)`` (a copy), with NumPy's failures named for a tensor.

    Raises:
        ValueError: ragged nested sequences, or more data than memory holds.
    """
    try:
        return np.array(data, dtype=dtype)
    except MemoryError as error:
        raise ValueError(f"tensor: {_too_large(error, data)}") from None
    except ValueError as error:
        if "inhomogeneous" in str(error) or "sequence" in str(error):
            raise ValueError(
                "tensor: the nested sequences are ragged (items of different lengths or depths) "
                f"and do not form an n-dimensional array: {_numpy_detail(error)}"
            ) from None
        raise


def _too_large(error: MemoryError, data: Any) -> str:
    """What could not be allocated, from NumPy's ``_ArrayMemoryError`` (shape, dtype) or size."""
    shape, dtype = getattr(error, "shape", None), getattr(error, "dtype", None)
    if shape is not None and dtype is not None:
        nbytes = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
        return (f"data of shape {tuple(shape)} ({dtype}) need {nbytes / 2**30:.3g} GiB, more "
                "than this machine can allocate")
    size = len(data) if hasattr(data, "__len__") else "too many"
    return f"{size} items are more than this machine can allocate"


def _numpy_detail(error: ValueError) -> str:
    text = str(error).splitlines()[0]
    detail = text.split("The detected shape was ", 1)
    return f"the detected shape was {detail[1]}" if len(detail) == 2 else text


def _shape_arg(shape: tuple[Any, ...]) -> tuple[int, ...]:
    """Accept both f(2, 3) and f((2, 3))."""
    if len(shape) == 1 and isinstance(shape[0], Sequence | np.ndarray):
        return tuple(int(n) for n in shape[0])
    return tuple(int(n) for n in shape)


class MaxResult(NamedTuple):
    """``x.max(dim)``: the values and their int64 indices (``torch.return_types.max``)."""

    values: Tensor
    indices: Tensor


class MinResult(NamedTuple):
    """``x.min(dim)``: the values and their int64 indices (``torch.return_types.min``)."""

    values: Tensor
    indices: Tensor


class SortResult(NamedTuple):
    """``x.sort(dim)``: the sorted values and their int64 indices."""

    values: Tensor
    indices: Tensor


class TopkResult(NamedTuple):
    """``x.topk(k)``: the k values and their int64 indices."""

    values: Tensor
    indices: Tensor


class _HookHandle:
    """Returned by register_hook; ``remove()`` takes the hook off again."""

    def __init__(self, hooks: list[Callable[..., Any]], hook: Callable[..., Any]) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class Size(int):
    """``t.size``: the element count as an int (NumPy's attribute), and callable as PyTorch's
    method: ``t.size()`` is the shape tuple, ``t.size(d)`` the length of dim ``d``."""

    _shape: tuple[int, ...]

    def __new__(cls, shape: tuple[int, ...]) -> Size:
        self = super().__new__(cls, math.prod(shape))
        self._shape = shape
        return self

    def __call__(self, dim: int | None = None) -> Any:
        if dim is None:
            return self._shape
        ndim = len(self._shape)
        if not -ndim <= dim < max(ndim, 1):
            raise IndexError(f"size: dim {dim} out of range for a {ndim}-d tensor")
        return self._shape[dim]


if TYPE_CHECKING:
    from gradwise.autograd.tensor_extras import TensorExtras
    from gradwise.autograd.tensor_methods import TensorMethods
    from gradwise.autograd.tensor_more import TensorMore
    from gradwise.autograd.tensor_ops import TensorOps

    class _TensorMethods(TensorMethods, TensorExtras, TensorMore, TensorOps):
        """What type checkers see as Tensor's base: its methods that run ops."""
else:
    # The methods that run ops are written above the ops (tensor_methods.py, tensor_extras.py,
    # tensor_more.py, tensor_ops.py) and attached to Tensor once, when gradwise.autograd is
    # imported (attach.py), so no import runs from here up to the ops; type checkers
    # see them through this base.
    _TensorMethods = object


class Tensor(_TensorMethods):
    """An n-dimensional array that records the operations applied to it for backpropagation.

    Attributes:
        data: the values, a detached Tensor sharing this one's memory (``np.asarray(t)`` or
            ``t.numpy()`` give the ndarray; library code reads ``t._data``).
        grad: dL/d(this tensor) after ``backward()``, a Tensor sharing the gradient's memory
            and shaped like this one, or None. Filled for leaves that require grad (and for
            tensors that ``retain_grad()``); library code reads the raw array ``t._grad``.
        requires_grad: whether operations on this tensor are recorded.
    """

    __slots__ = (
        "_data",
        "_grad",
        "_grad_graph",
        "_grad_ref",
        "_requires_grad",
        "_ctx",
        "_version",
        "_base",
        "_view_of",
        "_hooks",
        "_retains_grad",
        "name",
        "_compared",
        "__weakref__",
    )
    #: set only on a comparison's result whose input is in a graph (see ``_compare``)
    _compared: tuple[Any, ...]
    def __init__(self, data: ArrayLike = (), *sizes: int, dtype: Any = None,
                 requires_grad: bool = False) -> None:
        """``Tensor(data)`` as ``gw.tensor(data)`` but Python numbers become float32, as
        PyTorch's ``torch.Tensor([1, 2])``; ``Tensor(2, 3)`` (ints only) is a float32 tensor
        of that shape, as PyTorch's legacy constructor (zeros here, never stale memory);
        ``Tensor()`` is empty.

        Raises:
            TypeError: sizes given together with non-int data.
        """
        if sizes or (type(data) is int and dtype is None):
            shape = (data, *sizes)
            if not all(type(n) is int or isinstance(n, np.integer) for n in shape):
                raise TypeError(f"Tensor: expected data or int sizes, got {shape!r}")
            self._data: np.ndarray = np.zeros(shape, dtype=np.float32)
        else:
            self._data = _as_array(data, dtype)
        self._grad: np.ndarray | None = None
        self._grad_graph: Tensor | None = None
        self._grad_ref: weakref.ref[Tensor] | None = None
        self._ctx: Any = None
        self._version = [0]
        self._base: Tensor | None = None
        # (parent, op class, its other arguments, its keywords, the shared version then): how
        # this view was made from the tensor it views, so an in-place op on it can be recorded
        # on its base and the view replayed when the base changed in place
        self._view_of: tuple[Any, ...] | None = None
        self._hooks: list[Callable[..., Any]] | None = None
        self._retains_grad = False
        self.name: str | None = None
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool, ctx: Any) -> Tensor:
        """Wrap an op's result without copying (the engine's fast constructor).

        A NumPy scalar (what ufuncs and reductions give for a 0-d result) becomes a 0-d array:
        a tensor always holds an ndarray, so its views share memory and in-place ops on them
        write through (``y[()].mul_(3)`` changes y, as torch's).
        """
        if type(data) is not np.ndarray:
            data = np.asarray(data)
        tensor = cls.__new__(cls)
        tensor._data = data
        tensor._grad = None
        tensor._grad_graph = None
        tensor._grad_ref = None
        tensor._requires_grad = requires_grad
        tensor._ctx = ctx
        tensor._version = [0]
        tensor._base = None
        tensor._view_of = None
        tensor._hooks = None
        tensor._retains_grad = False
        tensor.name = None
        return tensor

    # ---- properties ---------------------------------------------------------------------------
    # The engine and the library read the raw arrays ``_data`` and ``_grad`` directly (the hot
    # paths stay free of wrapper objects); ``data`` and ``grad`` are their public faces: Tensors
    # that share the memory, as in PyTorch.
    @property
    def data(self) -> Tensor:
        """This tensor's values as a new leaf that shares memory and the version counter.

        In-place changes through it (``w.data.mul_(0.5)``) change this tensor and are not
        recorded; assigning ``t.data = other`` rebinds this tensor's array to ``other``'s.
        """
        out = Tensor._make(self._data, False, None)
        out._version = self._version
        return out

    @data.setter
    def data(self, value: ArrayLike) -> None:
        self._data = value._data if isinstance(value, Tensor) else np.asarray(value)

    @property
    def grad(self) -> Tensor | None:
        """dL/d(this tensor) as a Tensor sharing the gradient's memory, or None.

        In-place ops on it (``p.grad.zero_()``, ``p.grad.mul_(0.5)``, ``p.grad += g``) change the
        gradient the optimizer reads. Assign a Tensor, an array or None to replace it.

        Raises (on assignment):
            RuntimeError: the new gradient's shape differs from the tensor's, or a Tensor/array
                of another dtype is assigned (as torch; a list or number is converted to the
                tensor's dtype).
        """
        grad = self._grad
        if grad is None:
            return None
        recorded = self._grad_graph
        if recorded is not None and recorded._data is grad:
            # the same Tensor each time, as torch (``g = p.grad`` then ``g is p.grad``); after
            # backward(create_graph=True) it is the gradient with its own graph
            return recorded
        ref = getattr(self, "_grad_ref", None)
        wrapper = ref() if ref is not None else None
        if wrapper is None or wrapper._data is not grad:
            wrapper = Tensor._make(grad, False, None)
            # held weakly: the same Tensor for as long as the caller keeps it, and zero_grad
            # (set_to_none) still frees the gradient's memory
            self._grad_ref = weakref.ref(wrapper)
        return wrapper

    @grad.setter
    def grad(self, value: ArrayLike | None) -> None:
        if value is None:
            self._grad = None
            return
        if isinstance(value, Tensor | np.ndarray | np.generic):
            array = value._data if isinstance(value, Tensor) else np.asarray(value)
        else:  # a list or a Python number carries no dtype of its own: the tensor's
            array = np.asarray(value, dtype=self._data.dtype)
        if array.shape != self._data.shape:
            raise RuntimeError(  # torch: "assigned grad has data of a different size"
                f"grad: assigned grad has data of a different size: shape {array.shape} but "
                f"the tensor has shape {self._data.shape}"
            )
        if array.dtype != self._data.dtype:
            # torch: a gradient of another dtype would later accumulate into the wrong dtype
            raise RuntimeError(
                f"grad: attempting to assign a gradient with dtype "
                f"'{_torch_c_name(array.dtype)}' to a tensor with grad_dtype "
                f"'{_torch_c_name(self._data.dtype).title()}'. The gradient must match the "
                f"tensor's dtype ({self._data.dtype}); cast it first (g.to({self._data.dtype}))"
            )
        self._grad = array
        self._grad_ref = weakref.ref(value) if isinstance(value, Tensor) else None  # is value

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """NumPy's view of this tensor: ``np.asarray(t)`` shares memory (no copy)."""
        data = self._data
        if not isinstance(data, np.ndarray):  # an op may leave a NumPy scalar for a 0-d result
            data = np.asarray(data)
        if dtype is not None and np.dtype(dtype) != data.dtype:
            return data.astype(dtype)
        if copy:
            return data.copy()
        return data

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """NumPy ufuncs on Tensors: operators give Tensor results, others work on the values.

        ``ndarray + tensor`` (and -, *, /, @, **, comparisons) goes to the Tensor operator, so it
        is recorded like ``tensor + ndarray``. Any other ufunc (``np.exp(t)``) computes on the
        arrays and returns a Tensor outside the graph; on a tensor that requires grad while grad
        is recorded that would drop the gradient, so it raises instead (as PyTorch does).
        """
        if method == "__call__" and not kwargs and len(inputs) == 2:
            name = _UFUNC_OPERATORS.get(ufunc)
            if name is not None:
                left, right = inputs
                if isinstance(left, Tensor):
                    return getattr(left, f"__{name}__")(right)
                return getattr(right, f"__r{name}__")(left)
            names = _UFUNC_COMPARISONS.get(ufunc)
            if names is not None:
                left, right = inputs
                if isinstance(left, Tensor):
                    return getattr(left, names[0])(right)
                return getattr(right, names[1])(left)
        if _grad_enabled.get() and any(
            isinstance(x, Tensor) and x.requires_grad for x in inputs
        ):
            raise TypeError(
                f"numpy.{ufunc.__name__} on a tensor that requires grad would lose its "
                "gradient; use the Tensor method (t.exp(), t.abs() ...) or t.detach() first"
            )
        arrays = [x._data if isinstance(x, Tensor) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(x._data if isinstance(x, Tensor) else x for x in kwargs["out"])
        result = getattr(ufunc, method)(*arrays, **kwargs)
        if isinstance(result, np.ndarray | np.generic):
            return Tensor._make(np.asarray(result), False, None)
        return result

    @property
    def shape(self) -> tuple[int, ...]:
        """The dims as a tuple of ints (``x.size()`` in torch is the same)."""
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of the values (``float32`` by default), compared equal to ``gw.float32``.
        """
        return self._data.dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions (0 for a scalar), as ``torch.Tensor.ndim``."""
        return self._data.ndim

    @property
    def size(self) -> Size:
        """The element count (an int, NumPy's attribute) that is also PyTorch's method:
        ``t.size()`` is the shape, ``t.size(d)`` the length of dim ``d``."""
        return Size(self._data.shape)

    @property
    def is_leaf(self) -> bool:
        """True for a tensor no recorded op produced (user-created tensors and parameters)."""
        return self._ctx is None

    @property
    def grad_fn(self) -> Any:
        """The node (a Function instance) that produced this tensor, or None for a leaf."""
        return self._ctx

    @property
    def T(self) -> Tensor:
        """The tensor with all dims reversed (a transpose for 2-D), as ``torch.Tensor.T``."""
        return self.transpose()

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        """PyTorch's form: ``tensor([0.0900, 0.2447], grad_fn=<MulBackward0>)``; floats with 4
        decimals unless all are whole (``tensor([1., 2.])``); float32, int64 and bool, the
        dtypes a literal gets by default, are not named."""
        options = printing.current
        data = self._data
        extra_options: dict[str, Any] = {}
        if options.linewidth is not None:
            extra_options["max_line_width"] = options.linewidth
        if data.dtype.kind == "f" and data.size:
            extra_options["formatter"] = {"float_kind": _float_formatter(data, options)}
        body = np.array2string(data, separator=", ", prefix="tensor(",
                               threshold=int(min(options.threshold, sys.maxsize)),
                               edgeitems=options.edgeitems,
                               **extra_options)
        # torch prints a summarised dim's gap as " ...," (numpy: "..., ")
        body = body.replace(", ..., ", ",  ..., ").replace("[..., ", "[ ..., ")
        extra = ""
        if data.size == 0 and data.shape != (0,):
            extra += f", size={tuple(data.shape)}"  # torch: tensor([], size=(2, 0))
        if data.dtype not in (np.float32, np.int64, np.bool_):
            extra += f", dtype={self._data.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn={self._ctx!r}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def _repr_html_(self) -> str:
        """Jupyter's display, compact at any size: shape, dtype and graph role on one line,
        mean/std/min/max beyond 100 elements, and the values with only 2 at each edge."""
        data = self._data
        role = (f"grad_fn={self._ctx.name}" if self._ctx is not None
                else "requires_grad" if self.requires_grad else "")
        head = " ".join(part for part in (f"tensor {tuple(data.shape)}", str(data.dtype), role)
                        if part)
        if data.size > 100 and data.dtype.kind in "iuf":
            finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data
            if finite.size:
                head += (f" | mean {finite.mean():.4g}, std {finite.std():.4g}, "
                         f"min {finite.min():.4g}, max {finite.max():.4g}")
            if finite.size < data.size:
                head += f" | {data.size - finite.size} non-finite"
        body = np.array2string(data, separator=", ", precision=4, threshold=100, edgeitems=2)
        return (f"<div><small>{_html.escape(head)}</small>"
                f"<pre style='margin:0'>{_html.escape(body)}</pre></div>")

    @property
    def requires_grad(self) -> bool:
        """Whether operations on this tensor are recorded (torch's ``requires_grad``)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        # torch checks the assignment as requires_grad_() does (an int tensor raises)
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Switch gradient recording for this tensor on or off; returns self, as torch's.

        Raises RuntimeError (torch's type and words) when asking a non-floating tensor to
        record, and for ``requires_grad_(False)`` on a non-leaf (use ``detach``).
        """
        if requires_grad and self._data.dtype.kind not in "fc":
            raise RuntimeError(
                "only Tensors of floating point and complex dtype can require gradients; this "
                f"one is {self._data.dtype}"
            )
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad_(False) works on leaves only; use .detach()")
        self._requires_grad = bool(requires_grad)
        return self

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self._data

    def item(self) -> float | int | bool:
        """The single value as a Python number; ValueError naming the size if there is not exactly
        one.
        """
        if self._data.size != 1:
            raise ValueError(f"item(): tensor has {self._data.size} elements, expected 1")
        return self._data.item()

    def tolist(self) -> Any:
        """The values as nested Python lists (a Python number for a 0-d tensor)."""
        return self._data.tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data (and version counter), cut from the graph."""
        out = Tensor._make(self._data, False, None)
        out._version = self._version
        return out

    def double(self) -> Tensor:
        """This tensor as float64 (``.to(float64)``): itself when it is float64 already, else a
        recorded cast, as ``torch.Tensor.double``."""
        if self._data.dtype == np.float64:
            return self
        return self.astype(np.float64)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it).

        Raises:
            RuntimeError: the tensor does not require grad (torch's "can't retain_grad on
                Tensor that has requires_grad=False").
        """
        if not self.requires_grad:
            raise RuntimeError("retain_grad: can't retain_grad on Tensor that has "
                               "requires_grad=False")
        self._retains_grad = True

    def register_hook(self, hook: Callable[[Tensor], Any]) -> _HookHandle:
        """Call ``hook(grad)`` with dL/d(this tensor) as a Tensor when backward computes it.

        The hook may return a replacement gradient (Tensor or ndarray) or None to keep it.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return _HookHandle(self._hooks, hook)

    # ---- in-place updates -----------------------------------------------------------------------
    # As in torch: an in-place op on a leaf that requires grad is refused while grad is recorded;
    # on anything else, when grad is recorded and the tensor or an operand requires grad, the op
    # is recorded and the tensor's history is rebased onto it (``_rebase``, in tensor_ops.py: the
    # object keeps its identity, its grad_fn becomes the op's node). Otherwise the array is
    # changed in place and only the version counter moves (the fast path: optimizer updates,
    # ``.grad`` edits).
    def _check_inplace(self, op: str) -> None:
        """Refuse an in-place change that is not recorded when autograd needs it recorded, or
        that reads and writes memory several elements share (see ``_refuse_overlap``)."""
        self._refuse_overlap(op)
        if self.requires_grad and _grad_enabled.get():
            if self._ctx is None:
                raise RuntimeError(_LEAF_INPLACE.format(op=op))
            raise RuntimeError(
                f"{op}: this in-place op is not recorded by autograd yet, and the tensor "
                "requires grad; use the out-of-place op (or clone() first)"
            )

    def _records_inplace(self, op: str, *operands: Any) -> bool:
        """Whether the in-place ``op`` must be recorded (raises torch's refusals)."""
        self._refuse_overlap(op)
        if not _grad_enabled.get():
            return False
        # a view counts as requiring grad when its base does (torch's view requires_grad), so
        # a view made under no_grad of such a base reaches the refusals below
        if not self.requires_grad and not (self._base is not None and self._base.requires_grad) \
                and not any(isinstance(o, Tensor) and o.requires_grad for o in operands):
            return False
        if self._ctx is None and self.requires_grad:
            raise RuntimeError(_LEAF_INPLACE.format(op=op))
        if self._base is not None:
            self._refuse_no_grad_view(op)
            base = self._base
            if base._ctx is None and base.requires_grad:
                raise RuntimeError(
                    f"{op}: a view of a leaf Variable that requires grad is being used in an "
                    "in-place operation."
                )
            if self._view_chain() is not None:
                return True  # _rebase records it on the base (torch's CopySlices)
            raise RuntimeError(
                f"{op}: recording an in-place change of a view (shape {self.shape}) of another "
                f"tensor (shape {base.shape}) is not supported: gradwise does not rebase the "
                "base's history (see docs/PORTING.md). Write through the base "
                "(base[index] = value) or clone() the view first"
            )
        return True

    def _refuse_no_grad_view(self, op: str) -> None:
        """Refuse to record an in-place ``op`` on a view that was made under ``no_grad`` (or is
        a view of such a view), as torch does: whether the change should be tracked is
        ambiguous.

        Raises:
            RuntimeError: torch's "A view was created in no_grad mode and is being modified
                inplace with grad mode enabled" (or "... is a view of a view which was ...").
        """
        tensor: Tensor = self
        while tensor is not self._base and tensor._view_of is not None:
            if tensor._view_of[5]:
                own = self._view_of  # not None: the walk started from it
                which = ("A view was" if tensor is self or own is None else
                         f"Output 0 of {own[1].op_name} is a view of a view which was")
                raise RuntimeError(
                    f"{op}: {which} created in no_grad mode and is being modified inplace with "
                    "grad mode enabled. Given that this use case is ambiguous and error-prone, "
                    "it is forbidden. You can clarify your code by moving both the view and the "
                    "inplace either both inside the no_grad block (if you don't want the inplace "
                    "to be tracked) or both outside (if you want the inplace to be tracked).")
            tensor = tensor._view_of[0]

    def _view_chain(self) -> list[tuple[Any, ...]] | None:
        """The view ops (class, arguments, keywords) that make this view from its base, first
        op first, or None when a link is not known (a view made outside the recorded ops)."""
        chain = []
        tensor = self
        while tensor is not self._base:
            if tensor._view_of is None:
                return None
            parent, op, args, kwargs = tensor._view_of[:4]
            chain.append((op, args, kwargs))
            tensor = parent
        return chain[::-1]

    def _replay_view(self) -> Tensor | None:
        """This view made again from its base's current history (None: the chain of view ops
        is not known), as torch regenerates a view's grad_fn after its base changed in place;
        the stored version is brought up to date."""
        chain = self._view_chain()
        if chain is None or self._view_of is None:
            return None
        self._view_of = (*self._view_of[:4], self._version[0], *self._view_of[5:])
        tensor = self._base
        assert tensor is not None
        for view_op, args, kwargs in chain:
            tensor = view_op.apply(tensor, *args, **kwargs)
        return tensor

    def _refresh_view(self) -> None:
        """Point this view's history at its base's current history (the base, or the view
        itself through the base, was changed in place since the view was made)."""
        base = self._base
        if base is None or not (base.requires_grad or self.requires_grad):
            if self._view_of is not None:
                self._view_of = (*self._view_of[:4], self._version[0], *self._view_of[5:])
            return
        if not _grad_enabled.get():
            return  # nothing is recorded now; a later recorded use replays it
        remade = self._replay_view()
        if remade is not None:
            self._ctx, self._requires_grad = remade._ctx, remade._requires_grad

    def _refuse_overlap(self, op: str, array: np.ndarray | None = None) -> None:
        """Refuse an in-place ``op`` on memory that several elements share (any internally
        overlapping view: ``expand``'s stride 0, ``unfold`` with step < size; see
        :func:`internal_overlap`), with torch's error; the ops torch lets write there (fills,
        masked and indexed fills, ``index_put_``) pass. ``array``: the region actually
        written (``__setitem__``'s), checked whatever the op.

        Raises:
            RuntimeError: torch's "unsupported operation: more than one element of the
                written-to tensor refers to a single memory location".
        """
        if array is None:
            if op in _OVERLAP_ALLOWED:
                return
            array = self._data
        if internal_overlap(array):
            raise RuntimeError(overlap_message(op))

    def _bump(self) -> Tensor:
        self._version[0] += 1
        return self

    # ---- arithmetic ---------------------------------------------------------------------------
    def _lift(self, other: ArrayLike) -> Tensor:
        """A constant operand as a Tensor; Python scalars take this tensor's dtype."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, int | float | bool):
            return Tensor._make(np.asarray(other, dtype=self._data.dtype), False, None)
        return Tensor._make(np.asarray(other), False, None)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return self.abs()

    # comparisons give boolean tensors outside the graph (they have no gradient)
    def _compare(self, other: ArrayLike, fn: Callable[..., np.ndarray]) -> Tensor:
        if getattr(type(other), "__array_ufunc__", 0) is None:
            return NotImplemented  # the other object (pytest.approx) compares itself
        # promote first, then compare (PyTorch): 0.1 as float32 equals a float32 0.1
        target = _result_dtype(self, other)
        mine = self._data if self._data.dtype == target else self._data.astype(target)
        operand = other
        other = other._data if isinstance(other, Tensor) else other
        other = _dtypes.as_array(other, target)
        result = Tensor._make(np.asarray(fn(mine, other)), False, None)
        if self._ctx is not None or self._requires_grad:
            # what was compared, for onnx.export: a `where` on this mask is then written as the
            # comparison of the graph's value (the mask alone is a constant of one trace). Never
            # read by the engine; the slot is left unset on every other tensor.
            result._compared = (fn.__name__, self, operand, target, self._version[0])
        return result

    def __lt__(self, other: ArrayLike) -> Tensor:
        return self._compare(other, np.less)

    def __le__(self, other: ArrayLike) -> Tensor:
        return self._compare(other, np.less_equal)

    def __gt__(self, other: ArrayLike) -> Tensor:
        return self._compare(other, np.greater)

    def __ge__(self, other: ArrayLike) -> Tensor:
        return self._compare(other, np.greater_equal)

    def __eq__(self, other: ArrayLike) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.equal)

    def __ne__(self, other: ArrayLike) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.not_equal)

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self._data.size} elements is ambiguous"
            )
        return bool(self._data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    # ---- reductions ---------------------------------------------------------------------------
    # PyTorch's ``dim``/``keepdim``; NumPy's ``axis``/``keepdims`` are accepted as aliases.
    def max(self, dim: Any = None, keepdim: bool | None = None, *, axis: Any = None,
            keepdims: bool | None = None) -> Any:
        """Without ``dim``: the largest element (a 0-d tensor). With ``dim`` (one int): the named
        tuple ``(values, indices)`` along it, as ``torch.max``; the gradient goes to the element
        picked (the first on a tie). Given a Tensor: the elementwise maximum.

        Raises:
            TypeError: ``dim`` is a tuple (use ``amax``), or ``keepdim`` without ``dim``.
        """
        return self._extreme("max", dim, keepdim, axis, keepdims)

    def min(self, dim: Any = None, keepdim: bool | None = None, *, axis: Any = None,
            keepdims: bool | None = None) -> Any:
        """The smallest element, or ``(values, indices)`` along ``dim``; see :meth:`max`."""
        return self._extreme("min", dim, keepdim, axis, keepdims)

    def _spread(self, op: Callable[..., Tensor], name: str, dim: Any, unbiased: Any,
                keepdim: Any, correction: Any, ddof: Any, axis: Any, keepdims: Any) -> Tensor:
        """var/std's argument rules: one of correction/unbiased/ddof, default correction 1."""
        if isinstance(dim, bool):
            dim, unbiased = None, dim if unbiased is None else unbiased
        given = [v for v in (correction, unbiased, ddof) if v is not None]
        if len(given) > 1:
            raise TypeError("var/std: give one of correction, unbiased and ddof")
        if unbiased is not None:
            correction = 1 if unbiased else 0
        elif ddof is not None:
            correction = ddof
        elif correction is None:
            correction = 1
        return op(self, axis=dim_arg(name, dim, axis),
                  keepdims=keepdim_arg(name, keepdim, keepdims), ddof=correction)

    def argmax(self, dim: int | None = None, keepdim: bool | None = None, *,
               axis: int | None = None, keepdims: bool | None = None) -> Tensor:
        """Index (int64) of the largest value along ``dim``; over the flattened tensor if None."""
        return self._arg("argmax", dim, keepdim, axis, keepdims)

    def argmin(self, dim: int | None = None, keepdim: bool | None = None, *,
               axis: int | None = None, keepdims: bool | None = None) -> Tensor:
        """Index (int64) of the smallest value along ``dim``; over the flattened tensor if None."""
        return self._arg("argmin", dim, keepdim, axis, keepdims)

    def any(self, dim: Axis = None, keepdim: bool | None = None, *, axis: Axis = None,
            keepdims: bool | None = None) -> Tensor:
        """Whether any element (along ``dim``) is nonzero: a bool tensor outside the graph."""
        out = np.any(self._data, axis=dim_arg("any", dim, axis),
                     keepdims=keepdim_arg("any", keepdim, keepdims))
        return Tensor._make(np.asarray(out), False, None)

    def all(self, dim: Axis = None, keepdim: bool | None = None, *, axis: Axis = None,
            keepdims: bool | None = None) -> Tensor:
        """Whether every element (along ``dim``) is nonzero: a bool tensor outside the graph."""
        out = np.all(self._data, axis=dim_arg("all", dim, axis),
                     keepdims=keepdim_arg("all", keepdim, keepdims))
        return Tensor._make(np.asarray(out), False, None)

    # ---- shape --------------------------------------------------------------------------------
    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dims ``start_dim``..``end_dim`` (inclusive) into one; a 0-d tensor becomes shape
        (1,).

        As ``torch.flatten``; e.g. (N, C, H, W) -> (N, C*H*W) with ``start_dim=1``.
        """
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        if start == end:
            return self  # nothing to merge: torch returns the tensor itself
        # the merged size spelled out: -1 cannot be inferred when another axis is 0
        merged = math.prod(self.shape[start : end + 1])
        shape = self.shape[:start] + (merged,) + self.shape[end + 1 :]
        return self.reshape(shape)

    # float comes last: a method of that name shadows the builtin in every annotation of the
    # class body below it (mypy reads ``value: float`` there as this method)
    def float(self) -> Tensor:
        """This tensor as float32 (``.to(float32)``): itself when it is float32 already, else a
        recorded cast, as ``torch.Tensor.float``."""
        if self._data.dtype == np.float32:
            return self
        return self.astype(np.float32)


# NumPy ufuncs that are Python operators: ``ndarray <op> tensor`` runs the Tensor operator
_UFUNC_OPERATORS = {
    np.add: "add",
    np.subtract: "sub",
    np.multiply: "mul",
    np.true_divide: "truediv",
    np.power: "pow",
    np.matmul: "matmul",
}
# comparison ufuncs: (the operator, the operator with the operands swapped)
_UFUNC_COMPARISONS = {
    np.less: ("__lt__", "__gt__"),
    np.less_equal: ("__le__", "__ge__"),
    np.greater: ("__gt__", "__lt__"),
    np.greater_equal: ("__ge__", "__le__"),
    np.equal: ("__eq__", "__eq__"),
    np.not_equal: ("__ne__", "__ne__"),
}


def _result_dtype(a: Tensor, b: Any) -> np.dtype:
    """PyTorch's result dtype for ``a <op> b`` (see autograd/dtypes.py)."""
    dims: list[Any] = []
    scalars: list[Any] = []
    for x in (a, b):
        if isinstance(x, Tensor):
            (dims if x._data.ndim else scalars).append(x._data.dtype)
        elif isinstance(x, np.ndarray) and x.ndim:
            dims.append(x.dtype)
        elif isinstance(x, list | tuple):
            dims.append(Tensor(x)._data.dtype if not _all_ints(x) else np.dtype(np.int64))
        else:
            scalars.append(_dtypes.scalar_dtype(x))
    if not dims:
        dims.append(scalars.pop(0))
    return _dtypes.promote(dims, scalars)


def _all_ints(values: Any) -> bool:
    return np.asarray(values).dtype.kind in "iub"


def _index_arg(index: Any) -> Any:
    """Indices may hold Tensors (integer or boolean); NumPy wants arrays."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        # an empty list picks nothing; NumPy would read it as a float array and refuse it
        return np.asarray(index) if index else np.zeros(0, dtype=np.intp)
    return index


# in-place ops torch lets write into memory that several elements share (expand): fills;
# __setitem__ checks the region it writes itself
# (torch also lets tril_/triu_ write there; gradwise refuses them: docs/PORTING.md)
def internal_overlap(array: np.ndarray) -> bool:
    """Whether two indices of ``array`` reach one memory address (its strides overlap): a
    stride 0 over a dim longer than 1 (``expand``), or windows sharing elements (``unfold``
    with step < size, ``as_strided``). torch's ``has_internal_overlap`` answers only the stride
    0 case ("TooHard" otherwise, then writes anyway); this answers every case exactly.

    Fast path: with the dims longer than 1 sorted by stride, each stride at least the span of
    the ones before it means no overlap (C, F and every permuted or sliced layout). Otherwise
    the element offsets are enumerated and counted (O(size log size), only for such odd
    layouts).
    """
    dims = sorted((abs(st), n) for st, n in zip(array.strides, array.shape, strict=True)
                  if n > 1)
    if any(st == 0 for st, _ in dims):
        return True
    span = array.itemsize
    for st, n in dims:
        if st < span:
            break
        span += st * (n - 1)
    else:
        return False
    offsets = np.zeros((), dtype=np.int64)
    for st, n in zip(array.strides, array.shape, strict=True):
        offsets = np.add.outer(offsets, np.arange(n, dtype=np.int64) * st)
    return bool(np.unique(offsets).size < offsets.size)


def overlap_message(op: str) -> str:
    """torch's words for a write through memory several elements share."""
    return (f"{op}: unsupported operation: more than one element of the written-to tensor "
            "refers to a single memory location. Please clone() the tensor before "
            "performing the operation.")


_OVERLAP_ALLOWED = frozenset({"fill_", "zero_", "masked_fill_", "index_fill_", "fill_diagonal_",
                              "index_put_", "__setitem__"})

_LEAF_INPLACE = (
    "{op}: a leaf Variable that requires grad is being used in an in-place operation. Wrap "
    "the update in `with gw.no_grad():` (as optimizers do) or use the out-of-place op"
)


def _dtype_name(dtype: np.dtype) -> str:
    names = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long",
             "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}
    return names.get(np.dtype(dtype).name, str(dtype))


def _matmul_dtypes(a: Tensor, b: Tensor) -> None:
    """torch does not promote in matmul: two tensors of different dtypes are an error."""
    raise RuntimeError(
        f"matmul: expected m1 and m2 to have the same dtype, but got: "
        f"{_dtype_name(a._data.dtype).lower()} != {_dtype_name(b._data.dtype).lower()} "
        f"(shapes {a.shape} and {b.shape}; cast one with .to(other.dtype))"
    )


# ---- factories ------------------------------------------------------------------------------
def tensor(data: ArrayLike, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of ``data``, with PyTorch's dtype inference.

    Python ints become int64, floats the default float dtype (float32), bools bool; NumPy arrays
    and Tensors keep their dtype. (The ``Tensor(data)`` constructor, like ``torch.Tensor``,
    makes float32 from Python numbers.)

    Raises:
        TypeError: requires_grad on a non-floating dtype; data that are not real numbers or
            booleans (strings, objects, complex numbers).
        ValueError: ragged nested sequences, or more data than memory holds.
        RuntimeError: a GPU ``device``.
    """
    if device is not None:
        check_device(device, "tensor")
    if dtype is None and not isinstance(data, Tensor | np.ndarray | np.generic):
        array = _numpy_array(data)
        kept = _numpy_scalar_dtype(data) if array.dtype.kind in "biuf" else None
        if kept is not None:
            dtype = kept
        elif array.dtype.kind in "iu":
            dtype = np.int64
        elif array.dtype.kind == "f":
            dtype = _dtypes.get_default_dtype()
        return Tensor(array, dtype=dtype, requires_grad=requires_grad)
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def _auto_sci_mode(data: np.ndarray) -> bool:
    """Whether PyTorch's printer picks scientific notation for these floats
    (``torch/_tensor_str.py``, ``_Formatter``): over the nonzero finite values, the largest
    over the smallest magnitude is above 1000 or the largest is above 1e8, or (when not all
    are whole) the smallest is below 1e-4."""
    values = np.abs(data[np.isfinite(data) & (data != 0)].astype(np.float64))
    if not values.size:
        return False
    low, high = values.min(), values.max()
    if high / low > 1000.0 or high > 1.0e8:
        return True
    return bool(low < 1.0e-4 and not np.all(values == np.ceil(values)))


def _float_formatter(data: np.ndarray, options: Any) -> Callable[[Any], str]:
    """PyTorch's float printer (``torch/_tensor_str.py``, ``_Formatter``): scientific
    notation when ``_auto_sci_mode`` (or ``sci_mode``) says so, else ``1.`` when every finite
    value is whole, else ``precision`` decimals; every entry right-aligned to the widest
    *finite* entry, so ``nan``/``inf`` neither widen the columns nor get cut
    (``tensor([1., inf])``, ``tensor([1.5000,    nan])``)."""
    finite = data[np.isfinite(data)].astype(np.float64)
    precision = options.precision
    sci_mode = options.sci_mode
    if sci_mode is None:
        sci_mode = _auto_sci_mode(data)
    if sci_mode:
        form = f"{{:.{precision}e}}"
    elif finite.size and np.all(finite == np.round(finite)):
        form = "{:.0f}."
    else:
        form = f"{{:.{precision}f}}"
    # torch sizes the columns from the nonzero finite values (so -0. and nan do not widen
    # them): the widest is the most negative or the largest, or in scientific notation the
    # smallest magnitude (a three-digit exponent)
    nonzero = finite[finite != 0]
    picks = [] if not nonzero.size else [
        nonzero.min(), nonzero.max(), nonzero[np.argmin(np.abs(nonzero))]]
    width = max((len(form.format(float(v))) for v in picks), default=0)

    def format_value(value: Any) -> str:
        value = float(value)
        text = form.format(value) if math.isfinite(value) else str(value)  # nan, inf, -inf
        return text.rjust(width)

    return format_value


def _numpy_scalar_dtype(data: Any) -> np.dtype | None:
    """The dtype torch.tensor infers for a nested list holding NumPy scalars, or None when it
    holds none (then Python's defaults apply).

    torch keeps a NumPy scalar's dtype (``[np.int32(1)]`` is int32) and promotes it with the
    Python numbers beside it as if each were a tensor: the higher category wins, within a
    category the wider dtype (``[np.int32(1), 2]`` is int64, ``[np.int32(1), 1.0]`` float32).
    """
    found: set[np.dtype] = set()
    python: set[type] = set()
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, np.generic):
            found.add(item.dtype)
        else:
            python.add(type(item))
    if not found:
        return None
    dtypes = list(found)
    for kind in python:
        if kind is bool:
            dtypes.append(np.dtype(bool))
        elif issubclass(kind, int):
            dtypes.append(np.dtype(np.int64))
        elif issubclass(kind, float):
            dtypes.append(_dtypes.get_default_dtype())
    return _dtypes.promote(dtypes, [])


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares ``array``'s memory (no copy), like ``torch.from_numpy``.

    Changes to one show in the other; the tensor does not require grad.

    Raises:
        TypeError: ``array`` is not an np.ndarray.
        ValueError: ``array`` has non-native byte order (a shared buffer cannot be converted;
            as torch.from_numpy). ``gw.tensor(array)`` copies and converts it.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected an np.ndarray, got {type(array).__name__}")
    if not array.dtype.isnative:
        raise ValueError(
            f"from_numpy: the array's dtype {array.dtype.str!r} has a byte order different from "
            "the native byte order, and a shared buffer cannot be converted; use "
            "gw.tensor(array) (copies to native order) or "
            "array.astype(array.dtype.newbyteorder('='))")
    return Tensor._make(array, False, None)


_TORCH_C_NAMES = {
    "float32": "float", "float64": "double", "float16": "c10::Half", "int64": "long int",
    "int32": "int", "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
    "bool": "bool", "complex64": "c10::complex<float>", "complex128": "c10::complex<double>",
}


def _torch_c_name(dtype: np.dtype) -> str:
    """The C type name torch's messages use for ``dtype`` ('float', 'long int' ...)."""
    return _TORCH_C_NAMES.get(np.dtype(dtype).name, np.dtype(dtype).name)
