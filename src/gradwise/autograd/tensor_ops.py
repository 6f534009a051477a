"""The Tensor methods that run ops: operators, math, reductions, shape changes, and backward.

They are written here, after the ops exist, and attach.py sets them on :class:`Tensor` when
``gradwise.autograd`` is imported, so the imports run one way: ``tensor`` (the data structure)
<- ``graph`` (the NumPy backward loop) <- ``function`` (the op base class) <- ``ops`` <-
``higher_order`` (the create_graph engine) <- this module. Type checkers see the methods through
Tensor's base ``_TensorMethods`` (a TYPE_CHECKING-only import in tensor.py); the methods annotate
``self: Tensor``, as the other three mixins do (pyproject.toml says why).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradwise.autograd import dtypes as _dtypes
from gradwise.autograd._args import dim_arg, keepdim_arg
from gradwise.autograd.functional import promoted, where
from gradwise.autograd.graph import _rebased, _run_backward, name_node
from gradwise.autograd.higher_order import _run_backward_graph
from gradwise.autograd.higher_order import backward as _backward_into
from gradwise.autograd.ops import elementwise as _ew
from gradwise.autograd.ops import linalg as _linalg
from gradwise.autograd.ops import reduce as _reduce
from gradwise.autograd.ops import shape as _shape
from gradwise.autograd.tensor import (
    ArrayLike,
    Axis,
    MaxResult,
    MinResult,
    Tensor,
    _dtype_name,
    _index_arg,
    _matmul_dtypes,
    _result_dtype,
    _shape_arg,
)
from gradwise.autograd.tensor import internal_overlap as _internal_overlap
from gradwise.autograd.tensor import overlap_message as _overlap_message


class TensorOps:
    """The op-running methods of :class:`Tensor` (see the module docstring)."""

    # set by Tensor.__init__; declared for the type checker, which meets this class first
    _ctx: Any
    requires_grad: bool
    _requires_grad: bool

    # ---- copies and casts ------------------------------------------------------------------------
    def clone(self: Tensor) -> Tensor:
        """A copy with its own memory that stays in the graph (gradient flows back), as torch's."""
        return _shape.Copy.apply(self)

    def astype(self: Tensor, dtype: Any) -> Tensor:
        """A copy cast to ``dtype`` (NumPy spelling of ``.to(dtype)``); the gradient is cast back.
        """
        return _ew.Cast.apply(self, np.dtype(dtype))

    # ---- backward (create_graph runs the engine of higher_order.py) ------------------------------
    def backward(
        self: Tensor,
        grad: ArrayLike | None = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Tensor | Sequence[Tensor] | None = None,
        *,
        gradient: ArrayLike | None = None,
    ) -> None:
        """Accumulate dL/dleaf into ``.grad`` of every leaf that requires grad.

        Args:
            grad: dL/d(this tensor). Defaults to 1, allowed only for a one-element tensor.
                ``gradient=`` is torch's keyword for it (giving both is a TypeError).
            retain_graph: keep the graph so backward can go through it again (default: the
                value of ``create_graph``, as in PyTorch).
            create_graph: record the backward pass itself, so the ``.grad`` it leaves can be
                differentiated again (double backward, gradient penalties, Hessian-vector
                products). Each op then runs its ``backward_graph`` in Tensor ops instead of
                its NumPy ``backward``; an op without one raises RuntimeError naming it.
            inputs: only these tensors (leaves or not) get ``.grad`` accumulated, as torch's
                ``backward(inputs=...)``; see :func:`gradwise.autograd.backward`.
        """
        if gradient is not None:
            if grad is not None:
                raise TypeError("backward: give the gradient once (grad or gradient=)")
            grad = gradient
        if inputs is not None:
            _backward_into(self, grad, retain_graph, create_graph, inputs)
            return
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad (no input requires grad, or it "
                "was computed under no_grad())"
            )
        if grad is None:
            if self._data.size != 1:
                raise RuntimeError(
                    f"backward: a gradient can be created implicitly only for a one-element "
                    f"tensor; this one has shape {self.shape}. Pass grad= or reduce it first "
                    "(e.g. loss.mean())"
                )
            grad_array = np.ones(self._data.shape, dtype=self._data.dtype)
        else:
            grad_array = np.asarray(grad._data if isinstance(grad, Tensor) else grad)
            grad_array = grad_array.astype(self._data.dtype, copy=False)
            if grad_array.shape != self.shape:
                raise RuntimeError(  # torch's type and words
                    f"backward: Mismatch in shape: grad has shape {grad_array.shape} but the "
                    f"tensor has shape {self.shape}"
                )
        if create_graph:
            root_grad = grad if isinstance(grad, Tensor) and grad.shape == self.shape else None
            if root_grad is None or root_grad.dtype != self._data.dtype:
                root_grad = Tensor._make(grad_array, False, None)
            _run_backward_graph(
                [self], [root_grad], retain_graph is not False, True, capture=None
            )
            return
        _run_backward(self, grad_array, bool(retain_graph))

    # ---- in-place updates, recorded as torch records them (the rules: tensor.py) -------------
    def _rebase(self: Tensor, op: str, compute: Callable[[Tensor], Tensor],
                region: Any = None) -> Tensor:
        """Record an in-place op: ``compute(previous)`` is its out-of-place form applied to this
        tensor's history so far; its values are written into this tensor's array and its node
        becomes this tensor's grad_fn (torch's rebase_history). ``region``: the index of the
        elements the op writes (None: all), used when this is a view sharing memory between
        its elements (see ``_rebase_view``).

        Raises:
            RuntimeError: the result's shape differs from this tensor's (torch: "output with
                shape ... doesn't match the broadcast shape ...").
        """
        if self._base is not None:
            return self._rebase_view(op, compute, region)
        version = self._version[0]
        # the history so far, with a private copy of the values (the op's node may save them)
        previous = Tensor._make(self._data.copy(), self.requires_grad, self._ctx)
        previous._version = [version]
        result = compute(previous)
        if result.shape != self.shape:
            raise RuntimeError(
                f"{op}: output with shape {list(self.shape)} doesn't match the broadcast shape "
                f"{list(result.shape)}"
            )
        if result._data.dtype != self._data.dtype:
            if self._data.dtype.kind not in "fc" and result._data.dtype.kind in "fc":
                raise RuntimeError(
                    f"{op}: result type {_dtype_name(result._data.dtype)} can't be cast to the "
                    f"desired output type {_dtype_name(self._data.dtype)}"
                )
            result = _ew.Cast.apply(result, self._data.dtype)
        node = result._ctx
        if node is None or result is previous:
            raise AssertionError(f"{op}: the recorded in-place op made no node")  # a bug here
        old = self._ctx
        if old is not None and type(old).saves_output:
            # the node that made this tensor saved these very values, overwritten now: its
            # backward must refuse, as torch's version check does
            old.output_version = -1
        self._data[...] = result._data
        self._version[0] = version + 1
        self._ctx = node
        self._requires_grad = True
        node._rebase_version = version + 1
        node._rebase_previous = previous
        if type(node).saves_output:
            node.output_version = version + 1
        _rebased[0] = True
        return self

    def _rebase_view(self: Tensor, op: str, compute: Callable[[Tensor], Tensor],
                     region: Any = None) -> Tensor:
        """Record an in-place op on a view as torch's CopySlices: the base's history is rebased
        onto "the base with the view's elements replaced by ``compute(view)``" (the view replayed
        on the base's history so far), then this view's history becomes the view op replayed
        on the new base. Which elements of the base the view holds comes from replaying the
        view on an array of the base's flat positions.

        A view whose elements share base elements (``expand``, ``unfold`` with step < size)
        writes back only the elements it changes, each base element once: the ``region``
        written by ``t[i] = v`` with a basic index when no two of its elements share one, every
        element for ``fill_``/``zero_`` (one value everywhere). Anything else is refused: an
        advanced or boolean region (``t[[0]] = v``, ``masked_fill_``) too, where torch's
        gradient is wrong (its CopySlices scatters the aliases back, the last one winning).

        Raises:
            RuntimeError: torch's "unsupported operation: more than one element of the
                written-to tensor refers to a single memory location" for a write through
                shared elements that is not one of those.
        """
        from gradwise.autograd.grad_mode import no_grad

        base, chain = self._base, self._view_chain()
        assert base is not None and chain is not None  # _records_inplace checked both

        def replay(tensor: Tensor) -> Tensor:
            for view_op, args, kwargs in chain:
                tensor = view_op.apply(tensor, *args, **kwargs)
            return tensor

        with no_grad():
            flat_positions = np.arange(base._data.size).reshape(base.shape)
            positions = replay(Tensor._make(flat_positions, False, None))._data.reshape(-1)
        picked: Any = None  # the view's elements written back: all, unless it overlaps itself
        # (the O(n log n) count only where the view's memory says an alias is possible)
        if positions.size and (_internal_overlap(self._data)
                               or not np.may_share_memory(self._data, base._data)) \
                and np.unique(positions).size < positions.size:
            # several of the view's elements are one base element: scattering them all would
            # let the last alias win and send the gradient to every alias
            if region is not None and _shape._is_basic_index(region):
                picked = region  # only the elements written, if no two share a base element
                positions = positions.reshape(self.shape)[region].reshape(-1)
                if np.unique(positions).size < positions.size:
                    raise RuntimeError(_overlap_message(op))
            elif op in ("fill_", "zero_"):  # one value everywhere: each base element once
                positions, picked = np.unique(positions, return_index=True)
            else:
                raise RuntimeError(_overlap_message(op))

        def base_after(previous_base: Tensor) -> Tensor:
            new_view = compute(replay(previous_base))
            if new_view.shape != self.shape:
                raise RuntimeError(
                    f"{op}: output with shape {list(self.shape)} doesn't match the broadcast "
                    f"shape {list(new_view.shape)}")
            if new_view._data.dtype != base._data.dtype:
                new_view = _ew.Cast.apply(new_view, base._data.dtype)
            if region is not None and picked is not None:
                values = new_view[region].reshape(-1)
            else:
                values = new_view.reshape(-1)
                if picked is not None:
                    values = values[picked]
            flat = _shape.SetItem.apply(previous_base.reshape(-1), values, positions)
            return flat.reshape(base.shape)

        base._rebase(op, base_after)
        remade = self._replay_view()
        assert remade is not None
        self._ctx, self._requires_grad = remade._ctx, True
        return self

    def add_(self: Tensor, other: ArrayLike, alpha: float = 1.0) -> Tensor:
        """In place: self += alpha * other (broadcast to self's shape); returns self, as torch's.

        Recorded (self's history rebased onto the op) when grad is on and self or ``other``
        requires grad; raises RuntimeError for a leaf that requires grad (outside ``no_grad``),
        as torch: "a leaf Variable that requires grad is being used in an in-place operation."
        """
        if self._records_inplace("add_", other):
            if alpha == 1.0:
                return self._rebase("add_", lambda prev: prev + other)
            return self._rebase("add_", lambda prev: prev + other * alpha)
        other = other._data if isinstance(other, Tensor) else other
        if alpha == 1.0:
            self._data += other
        else:
            self._data += alpha * other
        return self._bump()

    def sub_(self: Tensor, other: ArrayLike, alpha: float = 1.0) -> Tensor:
        """In place: self -= alpha * other (broadcast); returns self. Same in-place rules as
        ``add_``.
        """
        return self.add_(other, alpha=-alpha)

    def mul_(self: Tensor, other: ArrayLike) -> Tensor:
        """In place: self *= other (broadcast); returns self. Same in-place rules as ``add_``."""
        if self._records_inplace("mul_", other):
            return self._rebase("mul_", lambda prev: prev * other)
        self._data *= other._data if isinstance(other, Tensor) else other
        return self._bump()

    def div_(self: Tensor, other: ArrayLike, *, rounding_mode: str | None = None) -> Tensor:
        """In place: self /= other (broadcast); returns self. Same in-place rules as ``add_``.
        ``rounding_mode`` ("floor", "trunc") as :meth:`div`."""
        if rounding_mode is not None:

            def rounded(t: Tensor) -> Tensor:
                # the rounded quotient is constant almost everywhere: torch's gradient is 0; a
                # where() that never picks t records that zero without touching the values
                value = t.div(other, rounding_mode=rounding_mode)
                return where(np.zeros(value.shape, bool), t, value)
            return self._assign_("div_", rounded, other)
        if self._records_inplace("div_", other):
            return self._rebase("div_", lambda prev: prev / other)
        self._data /= other._data if isinstance(other, Tensor) else other
        return self._bump()

    def clamp_(self: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        """In place: limit every value to [min, max] (either bound may be None); returns self.
        Same in-place rules as ``add_``."""
        if self._records_inplace("clamp_"):
            return self._rebase("clamp_", lambda prev: prev.clamp(min, max))
        np.clip(self._data, min, max, out=self._data)
        return self._bump()

    def copy_(self: Tensor, src: ArrayLike) -> Tensor:
        """In place: copy ``src``'s values into self (broadcast to self's shape, cast to self's
        dtype); returns self. Same in-place rules as ``add_`` (the gradient reaches ``src``).

        Raises ValueError naming both shapes when ``src`` does not broadcast to self.
        """
        array = src._data if isinstance(src, Tensor) else np.asarray(src)
        if array.shape != self.shape and np.broadcast_shapes(array.shape, self.shape) != self.shape:
            raise ValueError(f"copy_: source shape {array.shape} does not fit {self.shape}")
        if self._records_inplace("copy_", src):
            return self._rebase("copy_", lambda prev: _shape.SetItem.apply(prev, src, ...))
        self._data[...] = array
        return self._bump()

    def fill_(self: Tensor, value: float) -> Tensor:
        """In place: set every element to ``value``; returns self. Same in-place rules as ``add_``.
        """
        _dtypes.check_scalar_fits("fill_", value, self._data.dtype)
        if self._records_inplace("fill_", value):
            if isinstance(value, Tensor) and value.requires_grad and self._base is not None \
                    and _internal_overlap(self._data):
                # torch's gradient for the value would count each alias of a shared element
                raise RuntimeError(_overlap_message("fill_"))
            fill = value if isinstance(value, Tensor) else np.asarray(value, self._data.dtype)
            return self._rebase("fill_", lambda prev: _shape.SetItem.apply(prev, fill, ...))
        self._data.fill(value._data if isinstance(value, Tensor) else value)
        return self._bump()

    def zero_(self: Tensor) -> Tensor:
        """In place: set every element to 0; returns self (as ``torch.Tensor.zero_``)."""
        return self.fill_(0)

    def __setitem__(self: Tensor, index: Any, value: ArrayLike) -> None:
        """``self[index] = value`` in place (basic, advanced or boolean index; ``value`` broadcast
        to the indexed shape). Recorded as torch's ``index_put_`` when grad is on and self or
        ``value`` requires grad (the gradient reaches ``value``); same rules as ``add_``.
        """
        _dtypes.check_scalar_fits("__setitem__", value, self._data.dtype)
        index = _index_arg(index)
        if _shape._is_basic_index(index):  # the written region itself may not share memory
            self._refuse_overlap("__setitem__", np.asarray(self._data[index]))
        if self._records_inplace("__setitem__", value):
            self._rebase("__setitem__", lambda prev: _shape.SetItem.apply(prev, value, index),
                         region=index)
            return
        array = value._data if isinstance(value, Tensor) else value
        if isinstance(array, np.ndarray) and array.ndim:  # drop extra leading 1s, as torch
            array = _shape.fit_value(array, self._data, index)
        self._data[index] = array
        self._bump()

    # ``x += y`` changes x in place for every tensor, as torch (x keeps its identity); recorded
    # by the rules of ``add_``
    def __iadd__(self: Tensor, other: ArrayLike) -> Tensor:
        return self.add_(other)

    def __isub__(self: Tensor, other: ArrayLike) -> Tensor:
        return self.add_(other, alpha=-1.0)

    def __imul__(self: Tensor, other: ArrayLike) -> Tensor:
        return self.mul_(other)

    def __itruediv__(self: Tensor, other: ArrayLike) -> Tensor:
        return self.div_(other)

    # ---- arithmetic ------------------------------------------------------------------------------
    def _binary(self: Tensor, other: ArrayLike, op: Any, reflected: bool = False,
                true_div: bool = False) -> Tensor:
        """Apply a binary op with PyTorch's type promotion (autograd/dtypes.py)."""
        dtype = self._data.dtype
        if isinstance(other, Tensor) and other._data.dtype == dtype and (
            not true_div or dtype.kind in "fc"
        ):
            return op.apply(other, self) if reflected else op.apply(self, other)
        target = _result_dtype(self, other)
        if true_div and target.kind not in "fc":
            target = _dtypes.get_default_dtype()
        a = self if dtype == target else _ew.Cast.apply(self, target)
        if isinstance(other, Tensor):
            b = other if other._data.dtype == target else _ew.Cast.apply(other, target)
        else:
            b = Tensor._make(_dtypes.as_array(other, target), False, None)
        return op.apply(b, a) if reflected else op.apply(a, b)

    def __add__(self: Tensor, other: ArrayLike) -> Tensor:
        return self._binary(other, _ew.Add)

    def __radd__(self: Tensor, other: ArrayLike) -> Tensor:
        return self._binary(other, _ew.Add, reflected=True)

    def __sub__(self: Tensor, other: ArrayLike) -> Tensor:
        return self._binary(other, _ew.Sub)

    def __rsub__(self: Tensor, other: ArrayLike) -> Tensor:
        # torch records ``number - tensor`` as rsub (RsubBackward1)
        return name_node(self._binary(other, _ew.Sub, reflected=True), "RsubBackward1")

    def __mul__(self: Tensor, other: ArrayLike) -> Tensor:
        return self._binary(other, _ew.Mul)

    def __rmul__(self: Tensor, other: ArrayLike) -> Tensor:
        return self._binary(other, _ew.Mul, reflected=True)

    def __truediv__(self: Tensor, other: ArrayLike) -> Tensor:
        return self._binary(other, _ew.Div, true_div=True)

    def __rtruediv__(self: Tensor, other: ArrayLike) -> Tensor:
        return self._binary(other, _ew.Div, reflected=True, true_div=True)

    def __pow__(self: Tensor, exponent: ArrayLike) -> Tensor:
        if isinstance(exponent, int | float) and not isinstance(exponent, bool):
            if isinstance(exponent, float) and self._data.dtype.kind not in "fc":
                return _ew.PowScalar.apply(
                    _ew.Cast.apply(self, _dtypes.get_default_dtype()), exponent)
            if isinstance(exponent, int) and exponent < 0 and self._data.dtype.kind in "biu":
                # PyTorch refuses (1 / 2 is not an int); NumPy's message for the tensor case
                raise ValueError("Integers to negative integer powers are not allowed. "
                                 f"(pow: {self._data.dtype} ** {exponent}; use x.float())")
            return _ew.PowScalar.apply(self, exponent)
        # torch's overloads: tensor ** tensor is PowBackward1, number ** tensor PowBackward2
        return name_node(self._binary(exponent, _ew.Pow), "PowBackward1")

    def __rpow__(self: Tensor, base: ArrayLike) -> Tensor:
        return name_node(self._binary(base, _ew.Pow, reflected=True), "PowBackward2")

    def __matmul__(self: Tensor, other: ArrayLike) -> Tensor:
        if isinstance(other, Tensor) and other._data.dtype != self._data.dtype:
            _matmul_dtypes(self, other)
        return self._binary(other, _linalg.MatMul)

    def __rmatmul__(self: Tensor, other: ArrayLike) -> Tensor:
        if isinstance(other, Tensor) and other._data.dtype != self._data.dtype:
            _matmul_dtypes(other, self)
        return self._binary(other, _linalg.MatMul, reflected=True)

    def __neg__(self: Tensor) -> Tensor:
        return _ew.Neg.apply(self)

    # ---- elementwise math ------------------------------------------------------------------------
    def neg(self: Tensor) -> Tensor:
        """-x elementwise, as ``torch.neg``; shape and dtype kept."""
        return _ew.Neg.apply(self)

    def exp(self: Tensor) -> Tensor:
        """e**x elementwise (integers are promoted to the default float dtype first, as torch's)."""
        return _ew.Exp.apply(self._as_float())

    def log(self: Tensor) -> Tensor:
        """Natural log elementwise (integers promoted to float); log(0) = -inf, log(x<0) = nan, as
        torch's.
        """
        return _ew.Log.apply(self._as_float())

    def sqrt(self: Tensor) -> Tensor:
        """Square root elementwise (integers promoted to float); sqrt(x<0) = nan, as torch's."""
        return _ew.Sqrt.apply(self._as_float())

    def abs(self: Tensor) -> Tensor:
        """|x| elementwise; the gradient is sign(x) (0 at 0, as torch's). Shape kept."""
        return _ew.Abs.apply(self)

    def clip(self: Tensor, min: Any = None, max: Any = None, *,  # noqa: A002 - PyTorch's names
             lo: Any = None, hi: Any = None) -> Tensor:
        """Clamp into [min, max] (either may be None); ``lo``/``hi`` are gradwise's old names.

        A bound may be a tensor (broadcast against self, as ``torch.clamp(x, min=t)``); then
        the gradient reaches self where it lies inside and each bound where it is applied.

        Raises:
            ValueError: neither bound given.
        """
        lo = min if lo is None else lo
        hi = max if hi is None else hi
        if any(isinstance(b, Tensor | np.ndarray) and np.ndim(b) for b in (lo, hi)):
            return _clamp_tensor_bounds(self, lo, hi)  # elementwise bounds, broadcast
        lo = lo.item() if isinstance(lo, Tensor) else lo
        hi = hi.item() if isinstance(hi, Tensor) else hi
        if lo is None and hi is None:
            raise ValueError("clamp: give at least one of min and max")
        # PyTorch promotes with the bounds: an int tensor clamped to 1.5 is float32
        target = _dtypes.result_type(self, lo, hi)
        x = self if self._data.dtype == target else _ew.Cast.apply(self, target)
        return _ew.Clip.apply(x, lo, hi)

    clamp = clip

    def relu(self: Tensor) -> Tensor:
        """max(0, x) elementwise; the gradient at 0 is 0, as torch's."""
        return _ew.ReLU.apply(self)

    def sigmoid(self: Tensor) -> Tensor:
        """1 / (1 + exp(-x)) elementwise, without overflow for large |x|."""
        return _ew.Sigmoid.apply(self._as_float())

    def tanh(self: Tensor) -> Tensor:
        """Hyperbolic tangent elementwise (integers promoted to float)."""
        return _ew.Tanh.apply(self._as_float())

    # ---- reductions (PyTorch's dim/keepdim; NumPy's axis/keepdims as aliases) --------------------
    def sum(self: Tensor, dim: Axis = None, keepdim: bool | None = None, *, dtype: Any = None,
            axis: Axis = None, keepdims: bool | None = None) -> Tensor:
        """Sum over ``dim`` (an int, a tuple of ints, or None for all elements), as
        ``torch.Tensor.sum``.

        Args:
            dim: the dimension(s) to reduce; negative counts from the end. ``axis`` is the
                NumPy spelling (give one of the two).
            keepdim: keep each reduced dimension with size 1 (default False), so the result
                broadcasts against the input; ``keepdims`` is the NumPy spelling.
            dtype: cast the input to it first (``x.sum(dtype=gw.float64)``); without it, bool
                and integer tensors sum to int64 and floats keep their dtype, as in PyTorch.

        Shape:
            (d0, ..., dn) -> the reduced dims removed (or 1 with ``keepdim``); ``dim=None``
            gives a 0-d tensor. The gradient is ``grad`` broadcast back to the input's shape.

        Raises:
            ValueError: a ``dim`` outside ``[-ndim, ndim)`` or given twice (PyTorch raises
                IndexError for the first).
            TypeError: both ``dim`` and ``axis`` (or ``keepdim`` and ``keepdims``) given.

        Example:
            >>> x = gw.tensor([[1.0, 2.0], [3.0, 4.0]])
            >>> x.sum(), x.sum(dim=0), x.sum(1, keepdim=True).shape
            (tensor(10.), tensor([4., 6.]), (2, 1))
        """
        x = self._cast_for_reduction(dtype)
        if dtype is None and x._data.dtype.kind in "biu" and x._data.dtype != np.int64:
            x = _ew.Cast.apply(x, np.dtype(np.int64))
        return _reduce.Sum.apply(x, axis=dim_arg("sum", dim, axis),
                                 keepdims=keepdim_arg("sum", keepdim, keepdims))

    def mean(self: Tensor, dim: Axis = None, keepdim: bool | None = None, *, dtype: Any = None,
             axis: Axis = None, keepdims: bool | None = None) -> Tensor:
        """Mean over ``dim`` (an int, a tuple, or None for all elements).

        Raises:
            TypeError: the tensor (after ``dtype``) is not floating point; PyTorch refuses
                integer and bool input too (use ``x.float().mean()`` or ``dtype=``).
        """
        x = self._cast_for_reduction(dtype)
        if x._data.dtype.kind not in "fc":
            raise TypeError(
                f"mean: input dtype must be floating point, got {x._data.dtype} (as PyTorch); "
                "use x.float().mean() or x.mean(dtype=gw.float32)")
        return _reduce.Mean.apply(x, axis=dim_arg("mean", dim, axis),
                                  keepdims=keepdim_arg("mean", keepdim, keepdims))

    def _cast_for_reduction(self: Tensor, dtype: Any) -> Tensor:
        if dtype is None:
            return self
        dtype = np.dtype(dtype)
        return self if self._data.dtype == dtype else _ew.Cast.apply(self, dtype)

    def _extreme(self: Tensor, op: str, dim: Any, keepdim: Any, axis: Any, keepdims: Any) -> Any:
        if isinstance(dim, Tensor):  # x.max(other): the elementwise maximum, as in PyTorch
            other = dim
            return _ew.Maximum.apply(self, other) if op == "max" else _ew.Minimum.apply(self, other)
        dim = dim_arg(op, dim, axis)
        keep = keepdim_arg(op, keepdim, keepdims)
        if dim is None:
            if keep:
                raise TypeError(f"{op}: keepdim needs a dim (use amax/amin to keep every axis)")
            result = (_reduce.Max if op == "max" else _reduce.Min).apply(self, axis=None,
                                                                          nan_picks=True)
            return name_node(result, "MaxBackward1" if op == "max" else "MinBackward1")
        if not isinstance(dim, int | np.integer):
            raise TypeError(f"{op}: dim must be one int, got {dim!r}; amax/amin take several")
        if self.ndim == 0:
            indices = np.zeros((), dtype=np.int64)
            values = self
        else:
            (axis_,) = _reduce.normalize_axis(dim, self.ndim, op)
            pick = np.argmax if op == "max" else np.argmin
            indices = pick(self._data, axis=axis_).astype(np.int64)
            # the gradient goes to the one element picked, as in PyTorch (amax/amin split ties)
            grids = list(np.ix_(*[np.arange(n) for n in indices.shape])) if indices.ndim else []
            grids.insert(axis_, indices)
            values = _shape.GetItem.apply(self, tuple(grids))
            if keep:
                values = values.unsqueeze(axis_)
                indices = np.expand_dims(indices, axis_)
        cls = MaxResult if op == "max" else MinResult
        if values is not self:  # torch records max(dim) as one node, MaxBackward0
            values = name_node(values, "MaxBackward0" if op == "max" else "MinBackward0")
        return cls(values, Tensor._make(indices, False, None))

    def norm(self: Tensor, p: float | str | None = "fro", dim: Axis = None, keepdim: bool = False,
             dtype: Any = None) -> Tensor:
        """The norm PyTorch's ``Tensor.norm`` gives: a vector ``p``-norm over ``dim``.

        ``p`` a number (or None, meaning 2): the vector norm over ``dim`` (all axes when None),
        see ``gw.linalg.vector_norm``. ``p="fro"``: the 2-norm over ``dim``. ``p="nuc"``: the
        nuclear norm of a 2-D tensor (other layouts: ``gw.linalg.matrix_norm``). The gradient
        at 0 is 0. ``dtype``: the tensor is cast to it first (a recorded cast), as torch.
        """
        if dtype is not None:
            return self.to(dtype).norm(p, dim, keepdim)
        if not isinstance(p, str):
            return _reduce.VectorNorm.apply(self, 2.0 if p is None else float(p), dim, keepdim)
        if p == "fro":
            return _reduce.VectorNorm.apply(self, 2.0, dim, keepdim)
        if p == "nuc" and self.ndim == 2 and dim in (None, (0, 1), (-2, -1)):
            out = _linalg.SingularValueNorm.apply(self, "sum")
            return out.reshape(1, 1) if keepdim else out
        raise ValueError(
            f"norm: p={p!r} with dim={dim!r} on shape {self.shape} is not supported here; "
            "p is a number, 'fro', or 'nuc' for a 2-D tensor (gw.linalg.matrix_norm has the rest)"
        )

    def amax(self: Tensor, dim: Axis = None, keepdim: bool | None = None, *, axis: Axis = None,
             keepdims: bool | None = None) -> Tensor:
        """The largest values over ``dim`` (int, tuple or None); tied maxima split the gradient
        evenly (PyTorch's amax does the same)."""
        return _reduce.Max.apply(self, axis=dim_arg("amax", dim, axis),
                                 keepdims=keepdim_arg("amax", keepdim, keepdims))

    def amin(self: Tensor, dim: Axis = None, keepdim: bool | None = None, *, axis: Axis = None,
             keepdims: bool | None = None) -> Tensor:
        """The smallest values over ``dim``; tied minima split the gradient evenly."""
        return _reduce.Min.apply(self, axis=dim_arg("amin", dim, axis),
                                 keepdims=keepdim_arg("amin", keepdim, keepdims))

    def var(self: Tensor, dim: Any = None, unbiased: bool | None = None,
            keepdim: bool | None = None, *,
            correction: float | None = None, ddof: float | None = None, axis: Axis = None,
            keepdims: bool | None = None) -> Tensor:
        """Variance over ``dim``, dividing by N - correction; unbiased (correction 1) by default,
        as in PyTorch. ``unbiased=False``, ``correction=0`` and NumPy's ``ddof=0`` give the
        population variance; give at most one of the three. ``x.var(False)`` is ``unbiased=False``
        (PyTorch's overload).

        Raises:
            TypeError: more than one of correction/unbiased/ddof, or dim and axis both given.
            ValueError: N - correction <= 0 (no degrees of freedom).
        """
        return self._spread(_reduce.var, "var", dim, unbiased, keepdim, correction, ddof, axis,
                            keepdims)

    def std(self: Tensor, dim: Any = None, unbiased: bool | None = None,
            keepdim: bool | None = None, *,
            correction: float | None = None, ddof: float | None = None, axis: Axis = None,
            keepdims: bool | None = None) -> Tensor:
        """Standard deviation, ``sqrt(var(...))`` with the same arguments, unbiased by default as
        in PyTorch. Its gradient is 0 where it is 0 (all values equal), as PyTorch's."""
        return self._spread(_reduce.std, "std", dim, unbiased, keepdim, correction, ddof, axis,
                            keepdims)

    def logsumexp(self: Tensor, dim: Axis = None, keepdim: bool | None = None, *, axis: Axis = None,
                  keepdims: bool | None = None) -> Tensor:
        """log(sum(exp(x))) over ``dim``, computed stably (max subtracted first), as torch's.

        Shape: the input with ``dim`` removed (kept as 1 with ``keepdim``).
        """
        return _reduce.LogSumExp.apply(self, axis=dim_arg("logsumexp", dim, axis),
                                       keepdims=keepdim_arg("logsumexp", keepdim, keepdims))

    def softmax(self: Tensor, dim: int | None = None, dtype: Any = None, *,
                axis: int | None = None) -> Tensor:
        """Softmax along ``dim`` (default -1); ``dtype``: the input is cast to it first (a
        recorded cast), as ``torch.Tensor.softmax``."""
        return _reduce.Softmax.apply(self._cast_for_reduction(dtype),
                                     axis=dim_arg("softmax", dim, axis, -1))

    def log_softmax(self: Tensor, dim: int | None = None, dtype: Any = None, *,
                    axis: int | None = None) -> Tensor:
        """log(softmax) along ``dim`` (default -1), computed stably; ``dtype`` as
        :meth:`softmax`."""
        return _reduce.LogSoftmax.apply(self._cast_for_reduction(dtype),
                                        axis=dim_arg("log_softmax", dim, axis, -1))

    def _arg(self: Tensor, op: str, dim: Any, keepdim: Any, axis: Any, keepdims: Any) -> Tensor:
        dim = dim_arg(op, dim, axis)
        keep = keepdim_arg(op, keepdim, keepdims)
        pick = np.argmax if op == "argmax" else np.argmin
        if dim is not None:
            (dim,) = _reduce.normalize_axis(dim, self.ndim, op)
        out = pick(self._data, axis=dim, keepdims=keep)
        return Tensor._make(np.asarray(out, dtype=np.int64), False, None)

    # ---- shape -----------------------------------------------------------------------------------
    def reshape(self: Tensor, *shape: Any) -> Tensor:
        """The same values in a new shape (one dim may be -1), as ``torch.reshape``; view when
        possible.

        Raises ValueError naming both shapes when the element counts differ.
        """
        return _shape.Reshape.apply(self, _shape_arg(shape))

    def view(self: Tensor, *shape: Any) -> Tensor:
        """The same memory in a new shape (one dim may be -1), as ``torch.Tensor.view``: always
        a view, so writes through it reach this tensor. ``view(dtype)`` reinterprets the bits
        instead (see :func:`_view_as_dtype`).

        Raises:
            RuntimeError: the memory layout (a transposed tensor) cannot be viewed in that shape
                without a copy; torch's message, which points to ``reshape``.
            ValueError: the element counts differ (as ``reshape``).
        """
        if len(shape) == 1 and _is_dtype(shape[0]):
            return _view_as_dtype(self, np.dtype(shape[0]))
        shape = _shape_arg(shape)
        if not self._data.flags.c_contiguous:
            try:
                np.reshape(self._data, shape, copy=False)
            except ValueError:
                try:
                    np.reshape(np.empty(self.shape, np.bool_), shape)
                except ValueError:
                    pass  # a size mismatch: Reshape raises its own error below
                else:
                    raise RuntimeError(
                        f"view: view size is not compatible with input tensor's size and stride "
                        f"(shape {tuple(self.shape)} -> {tuple(shape)}: at least one dimension "
                        "spans across two contiguous subspaces). Use .reshape(...) instead."
                    ) from None
        return _shape.Reshape.apply(self, shape)


    def transpose(self: Tensor, *dims: Any) -> Tensor:
        """Two ints swap those dims, as ``torch.transpose(x, d0, d1)``; no argument reverses the
        axes and a tuple (or three or more ints) is a full permutation, as NumPy's transpose.

        Raises:
            ValueError: a dim out of range.
        """
        if len(dims) == 2 and all(isinstance(d, int | np.integer) for d in dims):
            return self.swapaxes(*dims)
        perm = _shape_arg(dims) if dims else tuple(range(self.ndim - 1, -1, -1))
        return name_node(_shape.Transpose.apply(self, perm), "Permute")

    def permute(self: Tensor, *axes: Any) -> Tensor:
        """Reorder dims: ``x.permute(0, 2, 1)`` (a view), as ``torch.Tensor.permute``."""
        return name_node(_shape.Transpose.apply(self, _shape_arg(axes)), "Permute")

    def swapaxes(self: Tensor, axis0: int, axis1: int) -> Tensor:
        """Exchange dims ``axis0`` and ``axis1`` (torch's keywords; NumPy's name of
        ``transpose(dim0, dim1)``)."""
        axes = _reduce.normalize_axis((axis0,), self.ndim, "transpose")
        axes += _reduce.normalize_axis((axis1,), self.ndim, "transpose")
        perm = list(range(self.ndim))
        perm[axes[0]], perm[axes[1]] = perm[axes[1]], perm[axes[0]]
        return _shape.Transpose.apply(self, tuple(perm))

    def squeeze(self: Tensor, dim: Axis = None, *, axis: Axis = None) -> Tensor:
        """Drop size-1 dims: all of them, or those named by ``dim`` (NumPy alias ``axis``).

        Naming a dim whose size is not 1 raises ValueError (PyTorch leaves it; NumPy raises:
        docs/PORTING.md).
        """
        axis = dim_arg("squeeze", dim, axis)
        # torch's overloads: squeeze() 0, squeeze(int) 1, squeeze(tuple) 2
        node = ("SqueezeBackward0" if axis is None else "SqueezeBackward1"
                if isinstance(axis, int | np.integer) else "SqueezeBackward2")
        if axis is None:
            shape = tuple(n for n in self.shape if n != 1)
        else:
            axes = _reduce.normalize_axis(axis, self.ndim, "squeeze")
            for a in axes:
                if self.shape[a] != 1:
                    raise ValueError(
                        f"squeeze: dim {a} has size {self.shape[a]}, not 1 (shape {self.shape})"
                    )
            shape = tuple(n for i, n in enumerate(self.shape) if i not in axes)
        return name_node(self.reshape(shape), node)

    def unsqueeze(self: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
        """Insert a size-1 dim at ``dim`` (NumPy alias ``axis``); negatives count from the end."""
        dim = dim_arg("unsqueeze", dim, axis)
        if dim is None:
            raise TypeError("unsqueeze: missing dim")
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise ValueError(f"unsqueeze: dim {dim} out of range for a {self.ndim}-d tensor")
        dim = dim % (self.ndim + 1)
        return name_node(self.reshape(self.shape[:dim] + (1,) + self.shape[dim:]), "Unsqueeze")

    def expand(self: Tensor, *shape: Any) -> Tensor:
        """Broadcast to ``shape`` without copying; -1 keeps a dimension's size (PyTorch style)."""
        target = _shape_arg(shape)
        offset = len(target) - self.ndim
        resolved = tuple(
            self.shape[i - offset] if n == -1 and i >= offset else n for i, n in enumerate(target)
        )
        return _shape.BroadcastTo.apply(self, resolved)

    def broadcast_to(self: Tensor, shape: Sequence[int]) -> Tensor:
        """A broadcast view of shape ``shape`` (NumPy rules); the gradient sums over broadcast dims.
        """
        return _shape.BroadcastTo.apply(self, tuple(shape))

    def pad(self: Tensor, pad_width: Any, value: float = 0.0) -> Tensor:
        """Pad with the constant ``value``; ``pad_width`` as NumPy's ((before, after) per dim).

        For torch's last-dim-first pad tuple use ``gw.nn.functional.pad``.
        """
        return _shape.Pad.apply(self, pad_width, value)

    def __getitem__(self: Tensor, index: Any) -> Tensor:
        return _shape.GetItem.apply(self, _index_arg(index))


def _clamp_tensor_bounds(x: Tensor, lo: Any, hi: Any) -> Tensor:
    """``min(max(x, lo), hi)`` with tensor bounds, with PyTorch's clamp backward
    (``clamp_backward_min_max``) as selections: x's gradient where lo <= x <= hi, lo's where
    x < lo < hi, hi's where x > hi or hi < lo. NaN in x stays NaN and sends no gradient (it
    lies inside no bound); where no rule applies (lo == hi below them, NaN) the value is a
    constant."""
    operands = [b for b in (x, lo, hi) if b is not None]
    cast = iter(promoted(*operands))
    x = next(cast)
    lo = next(cast) if lo is not None else None
    hi = next(cast) if hi is not None else None
    value = x._data
    with np.errstate(invalid="ignore"):
        if lo is not None:
            value = np.maximum(value, lo._data)  # NaN propagates, as in torch
        if hi is not None:
            value = np.minimum(value, hi._data)
        inside = np.ones(np.shape(value), dtype=bool)
        if lo is not None:
            inside = inside & (x._data >= lo._data)
        if hi is not None:
            inside = inside & (x._data <= hi._data)
        out = Tensor._make(np.asarray(value, dtype=x._data.dtype), False, None)
        if hi is not None:
            above = x._data > hi._data
            if lo is not None:
                above = above | (hi._data < lo._data)
            out = where(above, hi, out)
        if lo is not None:
            below = x._data < lo._data
            if hi is not None:
                below = below & (lo._data < hi._data)
            out = where(below, lo, out)
        return where(inside, x, out)


# torch's names of the dtypes in its view(dtype) messages
_TORCH_SCALAR_NAMES = {
    "float16": "Half", "float32": "Float", "float64": "Double", "int8": "Char", "uint8": "Byte",
    "int16": "Short", "int32": "Int", "int64": "Long", "bool": "Bool", "uint16": "UInt16",
    "uint32": "UInt32", "uint64": "UInt64",
}


def _is_dtype(value: Any) -> bool:
    return isinstance(value, np.dtype) or (isinstance(value, type)
                                           and issubclass(value, np.generic))


def _view_as_dtype(tensor: Tensor, dtype: np.dtype) -> Tensor:
    """``tensor.view(dtype)``: the same bytes read as ``dtype``, sharing memory (and the version
    counter), outside the graph, with torch's rules (aten ``view_dtype``).

    Same element size: the shape is kept. A smaller element (float32 -> uint8) multiplies the
    last dim by the size ratio; a larger one divides it. For different sizes the tensor must
    have a dim, its last dim stride 1, and (for a larger element) the last dim, the other
    strides and the storage offset divisible by the ratio.

    Raises:
        RuntimeError: with torch's message, when a rule above is broken.
        TypeError: a dtype gradwise does not have (complex).
    """
    if dtype.kind == "c" or dtype.name not in _TORCH_SCALAR_NAMES:
        raise TypeError(f"view: gradwise has no dtype {dtype} (docs/PORTING.md)")
    data = tensor._data
    if not isinstance(data, np.ndarray):  # a NumPy scalar (from integer indexing)
        data = np.asarray(data)
    old_size, new_size = data.dtype.itemsize, dtype.itemsize
    if old_size != new_size:
        names = f"{_TORCH_SCALAR_NAMES[data.dtype.name]} as {_TORCH_SCALAR_NAMES[dtype.name]}"
        why = f"to view {names} (different element sizes)"
        if data.ndim == 0:
            raise RuntimeError(f"view: self.dim() cannot be 0 {why}")
        strides = [stride // old_size for stride in data.strides]  # in elements, as torch
        if new_size < old_size:
            if strides[-1] != 1:
                raise RuntimeError(f"view: self.stride(-1) must be 1 {why}, but got "
                                   f"{strides[-1]}")
        else:  # aten's order of checks for a larger element
            ratio = new_size // old_size
            if data.shape[-1] % ratio:
                raise RuntimeError(f"view: self.size(-1) must be divisible by {ratio} {why}, "
                                   f"but got {data.shape[-1]}")
            offset = _storage_offset(data)
            if offset % ratio:
                raise RuntimeError(f"view: self.storage_offset() must be divisible by {ratio} "
                                   f"{why}, but got {offset}")
            if strides[-1] != 1:
                raise RuntimeError(f"view: self.stride(-1) must be 1 {why}, but got "
                                   f"{strides[-1]}")
            for dim, stride in enumerate(strides[:-1]):
                if stride % ratio:
                    raise RuntimeError(f"view: self.stride({dim}) must be divisible by {ratio} "
                                       f"{why}, but got {stride}")
    out = Tensor._make(data.view(dtype), False, None)
    out._version = tensor._version
    return out


def _storage_offset(data: np.ndarray) -> int:
    """Elements between the start of the array's buffer owner and its first element."""
    base = data
    while isinstance(base.base, np.ndarray):
        base = base.base
    start = data.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return start // data.dtype.itemsize
