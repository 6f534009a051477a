"""Ops that move values around without changing them: reshape, transpose, indexing, cat, pad."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd.function import Function
from gradwise.autograd.ops._broadcast import unbroadcast, unbroadcast_graph


class Copy(Function):
    """A copy of x (``clone``).

    Local derivative: 1. Shape: x -> same.
    """
    torch_name = "Clone"

    saves_inputs = False

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return (grad,)

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad,)


class Reshape(Function):
    """x with a new shape (a view when NumPy can make one).

    Local derivative: 1; the gradient is reshaped back. Shape: x -> ``shape``, same size.
    """
    torch_name = "View"

    saves_inputs = False
    returns_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                f"into {tuple(shape)}"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        return (grad.reshape(ctx.shape),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (Reshape.apply(grad, ctx.shape),)


def _check_permutation(axes: Any, shape: tuple[int, ...]) -> None:
    """Raise torch's errors (types and wording of ``torch.permute``) unless ``axes`` is a
    permutation of the dims of ``shape`` (negative dims count from the end).

    Raises:
        RuntimeError: the number of dims differs, or a dim appears twice.
        IndexError: a dim is out of range.
    """
    ndim, span = len(shape), max(len(shape), 1)
    if len(axes) != ndim:
        raise RuntimeError(
            "permute: number of dimensions in the tensor input does not match the length of "
            f"the desired ordering of dimensions i.e. input.dim() = {ndim} is not equal to "
            f"len(dims) = {len(axes)} (input shape {shape}, dims {tuple(axes)})")
    for axis in axes:
        if not -span <= axis < span:
            raise IndexError(f"permute: Dimension out of range (expected to be in range of "
                             f"[{-span}, {span - 1}], but got {axis})")
    if len({axis % span for axis in axes}) != ndim:
        raise RuntimeError(f"permute(): duplicate dims are not allowed (dims {tuple(axes)})")


class Transpose(Function):
    """x with its axes permuted.

    Local derivative: 1; the gradient is permuted back by the inverse permutation. Shape: the
    permuted shape.
    """

    saves_inputs = False
    returns_view = True

    @staticmethod
    def forward(ctx, x, axes):
        _check_permutation(axes, x.shape)
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, grad):
        # undo the permutation: move axis axes[i] back from position i
        return (grad.transpose(np.argsort(ctx.axes)),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (Transpose.apply(grad, tuple(int(a) for a in np.argsort(ctx.axes))),)


class BroadcastTo(Function):
    """x broadcast to ``shape`` (``expand``), a view.

    Local derivative: 1 per copy; the gradient sums over the broadcast axes. Shape: -> ``shape``.
    """
    torch_name = "Expand"

    saves_inputs = False
    returns_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            view = np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(
                f"expand: cannot broadcast shape {x.shape} to {tuple(shape)}"
            ) from None
        # writable as torch's expand (fills write into x; other in-place ops are refused by
        # Tensor._refuse_overlap, as torch refuses them)
        return np.lib.stride_tricks.as_strided(x, view.shape, view.strides,
                                               writeable=x.flags.writeable)

    @staticmethod
    def backward(ctx, grad):
        return (unbroadcast(grad, ctx.shape),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (unbroadcast_graph(grad, ctx.shape),)


class Repeat(Function):
    """x tiled ``reps[i]`` times along dim i (``Tensor.repeat``; with more counts than dims,
    leading size-1 dims are added first), always new memory, as torch's.

    Local derivative: 1 per copy; the gradient sums the copies. Shape: (n_0, ..., n_k) ->
    (r_0 n_0, ..., r_k n_k). One recorded op (torch's RepeatBackward; onnx.export writes Tile).
    """
    torch_name = "Repeat"

    saves_inputs = False

    @staticmethod
    def forward(ctx, x, reps):
        ctx.shape, ctx.reps = x.shape, tuple(reps)
        return np.tile(x.reshape((1,) * (len(reps) - x.ndim) + x.shape), reps)

    @staticmethod
    def _copies(ctx) -> tuple[list[int], tuple[int, ...]]:
        """(r_0, n_0, r_1, n_1, ...) and the axes of the r's: the gradient's view by copy."""
        full = (1,) * (len(ctx.reps) - len(ctx.shape)) + tuple(ctx.shape)
        split = [v for r, n in zip(ctx.reps, full, strict=True) for v in (r, n)]
        return split, tuple(range(0, 2 * len(full), 2))

    @staticmethod
    def backward(ctx, grad):
        split, axes = Repeat._copies(ctx)
        return (grad.reshape(split).sum(axis=axes).reshape(ctx.shape),)

    @staticmethod
    def backward_graph(ctx, grad):
        split, axes = Repeat._copies(ctx)
        return (grad.reshape(split).sum(axes).reshape(ctx.shape),)


def _is_basic_index(index) -> bool:
    """Slices, ints, None and Ellipsis give views and never pick an element twice."""
    items = index if isinstance(index, tuple) else (index,)
    return all(
        isinstance(i, slice | int | np.integer) or i is None or i is Ellipsis for i in items
    )


class Flip(Function):
    """x reversed along ``axes``, in new memory (``torch.flip`` copies, unlike NumPy's view).

    Local derivative: 1; the gradient is reversed back. Shape: x -> same.
    """

    saves_inputs = False

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return np.flip(x, axes).copy()

    @staticmethod
    def backward(ctx, grad):
        return (np.flip(grad, ctx.axes).copy(),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (Flip.apply(grad, ctx.axes),)


def diagonal_view(x: np.ndarray, offset: int, axis1: int, axis2: int) -> np.ndarray:
    """The diagonal ``offset`` of ``x`` over (axis1, axis2), appended as the last axis, as a
    writable strided view of ``x`` (``np.diagonal`` gives a read-only one; torch's diagonal
    writes through).

    Shape: x with axis1 and axis2 removed, plus (length,) last.
    """
    moved = np.moveaxis(x, (axis1, axis2), (-2, -1))
    rows, cols = moved.shape[-2:]
    start_row, start_col = max(-offset, 0), max(offset, 0)
    length = max(min(rows - start_row, cols - start_col), 0)
    if length == 0:
        return moved[..., :0, 0] if cols else np.empty(moved.shape[:-2] + (0,), x.dtype)
    corner = moved[..., start_row:, start_col:]  # its [0, 0] is the diagonal's first entry
    return np.lib.stride_tricks.as_strided(
        corner, corner.shape[:-2] + (length,),
        corner.strides[:-2] + (corner.strides[-2] + corner.strides[-1],),
        writeable=x.flags.writeable,
    )


class Diagonal(Function):
    """The diagonal ``offset`` of x over (axis1, axis2), a view (``torch.diagonal``).

    Local derivative: 1 on the diagonal; the gradient is written into the diagonal of zeros.
    Shape: x with axis1, axis2 removed and the diagonal's length appended.
    """

    saves_inputs = False
    returns_view = True

    @staticmethod
    def forward(ctx, x, offset, axis1, axis2):
        ctx.shape, ctx.args = x.shape, (offset, axis1, axis2)
        return diagonal_view(x, offset, axis1, axis2)

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        diagonal_view(full, *ctx.args)[...] = grad
        return (full,)

    @staticmethod
    def backward_graph(ctx, grad):
        return (DiagonalScatter.apply(grad, ctx.shape, *ctx.args),)


class DiagonalScatter(Function):
    """Zeros of ``shape`` with ``grad`` on a diagonal: the backward of :class:`Diagonal`, as an
    op so that ``create_graph`` can differentiate it (torch's ``diagonal_backward``).

    Local derivative: 1 on the diagonal. Shape: the diagonal's shape -> ``shape``.
    """

    saves_inputs = False

    @staticmethod
    def forward(ctx, grad, shape, offset, axis1, axis2):
        ctx.args = (offset, axis1, axis2)
        full = np.zeros(shape, dtype=grad.dtype)
        diagonal_view(full, offset, axis1, axis2)[...] = grad
        return full

    @staticmethod
    def backward(ctx, grad):
        return (diagonal_view(grad, *ctx.args).copy(),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (Diagonal.apply(grad, *ctx.args),)


def unfold_view(x: np.ndarray, dim: int, size: int, step: int) -> np.ndarray:
    """The windows of ``size`` entries, ``step`` apart, along ``dim`` of x as a strided view
    (``torch.Tensor.unfold``): ``dim`` becomes the window count and a new last axis of ``size``
    holds each window; a 0-d x gives shape (size,), as torch. Arguments checked by the caller.
    """
    if x.ndim == 0:
        return np.lib.stride_tricks.as_strided(x.reshape(1), (size,), (x.itemsize,),
                                               writeable=x.flags.writeable)
    windows = (x.shape[dim] - size) // step + 1
    shape = (*x.shape[:dim], windows, *x.shape[dim + 1:], size)
    strides = (*x.strides[:dim], x.strides[dim] * step, *x.strides[dim + 1:], x.strides[dim])
    return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=x.flags.writeable)


def _fold_windows(grad: np.ndarray, shape: tuple[int, ...], dim: int, size: int,
                  step: int) -> np.ndarray:
    """The adjoint of :func:`unfold_view`: zeros of ``shape`` with each window of ``grad``
    added back where it was taken (overlapping windows add up)."""
    full = np.zeros(shape, dtype=grad.dtype)
    if full.ndim == 0:  # the (size,) windows of a 0-d x: size is 0 or 1
        return np.asarray(grad.sum(), dtype=grad.dtype)
    windows = grad.shape[dim]
    for k in range(size):  # one strided slice per position within the window
        index = [slice(None)] * full.ndim
        index[dim] = slice(k, k + step * (windows - 1) + 1, step)
        full[tuple(index)] += grad[..., k]
    return full


class Unfold(Function):
    """Every window of ``size`` entries, ``step`` apart, along ``dim``: a view
    (``torch.Tensor.unfold``), so writes through it reach x, as torch's.

    Local derivative: 1 from each window entry to the element it views; an element in several
    windows sums their gradients. Shape: x with ``dim`` the window count, plus a last axis of
    ``size`` (0-d x: (size,)).
    """

    saves_inputs = False
    returns_view = True

    @staticmethod
    def forward(ctx, x, dim, size, step):
        ctx.shape, ctx.args = x.shape, (dim, size, step)
        return unfold_view(x, dim, size, step)

    @staticmethod
    def backward(ctx, grad):
        return (_fold_windows(grad, ctx.shape, *ctx.args),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (UnfoldBackward.apply(grad, ctx.shape, *ctx.args),)


class UnfoldBackward(Function):
    """The windows of ``grad`` added back into zeros of ``shape``: the backward of
    :class:`Unfold`, as an op so that ``create_graph`` can differentiate it (torch's
    ``unfold_backward``).

    Local derivative: 1 from each element to every window entry that views it (the windows
    again). Shape: the windows' shape -> ``shape``.
    """

    saves_inputs = False

    @staticmethod
    def forward(ctx, grad, shape, dim, size, step):
        ctx.args = (dim, size, step)
        return _fold_windows(grad, shape, dim, size, step)

    @staticmethod
    def backward(ctx, grad):
        return (unfold_view(grad, *ctx.args).copy(),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (Unfold.apply(grad, *ctx.args).clone(),)  # a copy: the windows may overlap


def _element_view(x: np.ndarray, index):
    """``x[index]``, where an index of ints only gives a 0-d view of x rather than NumPy's
    scalar copy (torch's ``t[0]`` writes through: ``t[0].add_(1)`` changes t)."""
    out = x[index]
    if isinstance(out, np.ndarray):
        return out
    items = index if isinstance(index, tuple) else (index,)
    return x[items + (Ellipsis,)]


class GetItem(Function):
    """x[index]: basic (slices, ints) or advanced (integer arrays, masks) indexing.

    Local derivative: 1 at each picked element; an element picked twice accumulates both
    gradients (``np.add.at``). Shape: NumPy's indexing result.
    """

    owns_grads = True
    saves_inputs = False
    returns_view = True

    named_per_call = True

    def torch_node_name(self) -> str:
        """PyTorch's node for the index: basic indexing is applied dim by dim, so the node is
        that of the last int (``Select``) or non-trivial slice (``Slice``); integer arrays or
        masks give ``Index``."""
        index = getattr(self, "index", None)
        parts = index if isinstance(index, tuple) else (index,)
        if not all(isinstance(p, int | np.integer | slice) or p is None or p is Ellipsis
                   for p in parts) or any(isinstance(p, bool) for p in parts):
            return "Index"
        for part in reversed(parts):
            if isinstance(part, int | np.integer):
                return "Select"
            if isinstance(part, slice) and part != slice(None):
                return "Slice"
        return "Slice"

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        ctx.basic = _is_basic_index(index)
        try:
            return _element_view(x, index) if ctx.basic else x[index]
        except IndexError as error:
            raise IndexError(f"getitem: {error} (tensor shape {x.shape})") from None

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        if ctx.basic:
            full[ctx.index] = grad
        else:
            # an integer index may name the same element twice: add.at accumulates each use
            np.add.at(full, ctx.index, grad)
        return (full,)

    @staticmethod
    def backward_graph(ctx, grad):
        return (ScatterAdd.apply(grad, ctx.shape, ctx.index, ctx.basic),)


class Cat(Function):
    """Tensors joined along an existing axis.

    Local derivative: 1; the gradient is split back at the seams. Shape: the sizes along
    ``axis`` add up, the other axes must agree.
    """

    saves_inputs = False

    tensor_args = None

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        if not arrays:
            raise ValueError("cat: needs at least one tensor")
        ndim = arrays[0].ndim
        if not -ndim <= axis < ndim:
            raise ValueError(f"cat: axis {axis} is out of range for {ndim}-d tensors")
        axis %= ndim
        for i, a in enumerate(arrays):
            if a.ndim != ndim or a.shape[:axis] + a.shape[axis + 1 :] != (
                arrays[0].shape[:axis] + arrays[0].shape[axis + 1 :]
            ):
                raise ValueError(
                    f"cat: tensor {i} has shape {a.shape}, which does not match "
                    f"{arrays[0].shape} outside axis {axis}"
                )
        ctx.axis = axis
        ctx.bounds = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.split(grad, ctx.bounds, axis=ctx.axis))

    @staticmethod
    def backward_graph(ctx, grad):
        axis = ctx.axis % grad.ndim
        edges = [0, *(int(b) for b in ctx.bounds), grad.shape[axis]]
        lead = (slice(None),) * axis
        return tuple(
            GetItem.apply(grad, (*lead, slice(start, stop)))
            for start, stop in zip(edges[:-1], edges[1:], strict=True)
        )


class Stack(Function):
    """Same-shaped tensors joined along a new axis.

    Local derivative: 1; the gradient is split along the new axis. Shape: k tensors of shape S
    -> S with k inserted at ``axis``.
    """

    saves_inputs = False

    tensor_args = None

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        if not arrays:
            raise ValueError("stack: needs at least one tensor")
        for i, a in enumerate(arrays):
            if a.shape != arrays[0].shape:
                raise ValueError(
                    f"stack: tensor {i} has shape {a.shape}, expected {arrays[0].shape}"
                )
        ndim = arrays[0].ndim + 1
        if not -ndim <= axis < ndim:
            raise ValueError(f"stack: axis {axis} is out of range for the {ndim}-d result")
        ctx.axis = axis % ndim
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.moveaxis(grad, ctx.axis, 0))

    @staticmethod
    def backward_graph(ctx, grad):
        lead = (slice(None),) * ctx.axis
        return tuple(GetItem.apply(grad, (*lead, i)) for i in range(grad.shape[ctx.axis]))


def _pad_width(pad_width, ndim: int) -> tuple[tuple[int, int], ...]:
    """NumPy's pad_width: an int, one (before, after) pair for every axis, or a pair per axis."""
    width = np.asarray(pad_width, dtype=np.int64)
    if width.ndim == 0:
        width = np.full((ndim, 2), int(width))
    elif width.shape == (2,):
        width = np.tile(width, (ndim, 1))
    if width.shape != (ndim, 2) or (width < 0).any():
        raise ValueError(
            f"pad: pad_width {pad_width} must be non-negative (before, after) pairs for each of "
            f"the {ndim} axes"
        )
    return tuple((int(b), int(a)) for b, a in width)


class Pad(Function):
    """Constant padding with NumPy's ``pad_width``.

    Local derivative: 1 inside the original window, 0 on the padding. Shape: each axis grows by
    its (before, after) widths.
    """
    torch_name = "ConstantPadNd"

    saves_inputs = False

    @staticmethod
    def forward(ctx, x, pad_width, value=0.0):
        width = _pad_width(pad_width, x.ndim)
        ctx.slices = tuple(slice(b, b + n) for (b, _), n in zip(width, x.shape, strict=True))
        ctx.value = value  # read back by gradwise.onnx
        return np.pad(x, width, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        # the padding is constant: only the original window receives gradient
        return (grad[ctx.slices],)

    @staticmethod
    def backward_graph(ctx, grad):
        return (GetItem.apply(grad, ctx.slices),)


class ScatterAdd(Function):
    """Zeros of ``shape`` with ``grad`` added at ``index``: the backward of :class:`GetItem`,
    as an op of its own so that ``create_graph`` can differentiate it.

    Local derivative: 1 at the indexed places (its backward indexes the gradient again).
    Shape: grad (the indexed shape) -> ``shape``.
    """

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, grad, shape, index, basic):
        ctx.index = index
        full = np.zeros(shape, dtype=grad.dtype)
        if basic:
            full[index] = grad
        else:
            np.add.at(full, index, grad)
        return full

    @staticmethod
    def backward(ctx, grad):
        return (np.asarray(grad[ctx.index]),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (GetItem.apply(grad, ctx.index),)


def fit_value(value: np.ndarray, x: np.ndarray, index: Any) -> np.ndarray:
    """``value`` with the leading size-1 dims it has beyond ``x[index]``'s rank dropped, as
    torch's ``index_put_``/``copy_`` broadcast does (``y[0] = ones(1, 1)`` on a (3,) tensor
    writes the one value; NumPy refuses "setting an array element with a sequence"). A
    leading dim longer than 1 is kept, so the assignment still raises NumPy's shape error.

    Shape: value (1, ..., 1, *rest) -> rest when ``x[index]`` has ``len(rest)`` dims or fewer.
    """
    value = np.asarray(value)
    if value.ndim == 0 or value.shape[0] != 1:  # nothing to drop: skip indexing x
        return value
    target_ndim = np.ndim(x[index])
    lead = 0
    while value.ndim - lead > target_ndim and value.shape[lead] == 1:
        lead += 1
    return value.reshape(value.shape[lead:]) if lead else value


class SetItem(Function):
    """A copy of x with ``x[index] = value`` (value broadcast to the indexed shape): the
    out-of-place form behind a recorded ``x[index] = value``, ``copy_`` and ``fill_``
    (torch's ``index_put``/``copy_`` backward).

    Local derivative: x's gradient is the incoming one with the overwritten elements zeroed;
    value's gradient is the incoming one at ``index``, summed over the broadcast axes (an
    element named twice by an advanced index passes its gradient to each use, as torch's
    ``index_put`` backward). Shape: x -> same.
    """

    saves_inputs = False
    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, x, value, index):
        ctx.index, ctx.value_shape, ctx.value_dtype = index, value.shape, value.dtype
        out = x.copy()
        try:
            value = fit_value(value, out, index)
            ctx.fitted_shape = value.shape
            out[index] = value
        except (IndexError, ValueError) as error:
            raise type(error)(f"setitem: {error} (tensor shape {x.shape}, value shape "
                              f"{value.shape})") from None
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_x = grad_value = None
        if ctx.needs_input_grad[0]:
            grad_x = np.array(grad)  # a copy, and an array even for a 0-d NumPy scalar
            grad_x[ctx.index] = 0
        if ctx.needs_input_grad[1]:
            grad_value = unbroadcast(np.asarray(grad[ctx.index]), ctx.fitted_shape)
            grad_value = grad_value.reshape(ctx.value_shape)
            if grad_value.dtype != ctx.value_dtype and ctx.value_dtype.kind in "fc":
                grad_value = grad_value.astype(ctx.value_dtype)
        return grad_x, grad_value

    @staticmethod
    def backward_graph(ctx, grad):
        grad_x = grad_value = None
        if ctx.needs_input_grad[0]:
            grad_x = SetItem.apply(grad, np.zeros((), dtype=grad.dtype), ctx.index)
        if ctx.needs_input_grad[1]:
            grad_value = unbroadcast_graph(GetItem.apply(grad, ctx.index), ctx.fitted_shape)
            if ctx.fitted_shape != ctx.value_shape:
                grad_value = grad_value.reshape(ctx.value_shape)
        return grad_x, grad_value
