"""Scatter along a dim (``torch.scatter``, ``scatter_add``, ``scatter_reduce``, and through
them ``index_add``): write or reduce ``src`` into a copy of ``x`` at the positions ``index``
names along ``dim``.

For 2-d input and dim 0 the position of ``src[i][j]`` is ``(index[i][j], j)``; ``index`` may be
smaller than ``src`` (only its extent is used) and has as many dims as ``x``.
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd.function import Function
from gradwise.autograd.ops.elementwise import Where
from gradwise.autograd.ops.shape import ScatterAdd

REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def check_index_range(op: str, index: np.ndarray, dim: int, size: int,
                      error: type[Exception] = RuntimeError) -> None:
    """Refuse an index outside [0, size) along ``dim``, as torch's gather, scatter*, index_add,
    index_copy and index_select do (they do not count negative indices from the end, unlike
    NumPy and torch's own ``take``/``put``/``index_fill``/``x[index]``).

    Raises:
        RuntimeError (``error``): torch's message, naming the first bad index in order.
    """
    if index.size and (index.min() < 0 or index.max() >= size):
        bad = index.reshape(-1)[np.flatnonzero((index < 0) | (index >= size))[0]]
        raise error(f"{op}: index {bad} is out of bounds for dimension {dim} with size {size}")


def scatter_positions(op: str, x_shape: tuple[int, ...], index: np.ndarray, dim: int,
                      src_shape: tuple[int, ...] | None) -> tuple[np.ndarray, ...]:
    """The index tuple of the positions in ``x`` written by each entry of ``index``.

    Raises:
        TypeError: ``index`` is not integer. ValueError: dims differ, ``index`` is larger than
        ``src`` (or than ``x`` off ``dim``). RuntimeError: an index is outside [0, size)
        (torch's rule: no counting from the end).
    """
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got {index.dtype}")
    if index.ndim != len(x_shape):
        raise ValueError(f"{op}: index has {index.ndim} dims, the tensor of shape {x_shape} "
                         f"has {len(x_shape)}")
    for d, n in enumerate(index.shape):
        if src_shape is not None and len(src_shape) == len(x_shape) and n > src_shape[d]:
            raise ValueError(f"{op}: index of shape {index.shape} is larger than src of shape "
                             f"{src_shape} in dim {d}")
        if d != dim and n > x_shape[d]:
            raise ValueError(f"{op}: index of shape {index.shape} is larger than the tensor "
                             f"of shape {x_shape} in dim {d}")
    check_index_range(op, index, dim, x_shape[dim])
    grids: list[np.ndarray] = list(np.indices(index.shape, sparse=True))
    grids[dim] = index
    return tuple(grids)


def _src_part(src: np.ndarray, index_shape: tuple[int, ...]) -> np.ndarray:
    """The entries of ``src`` that ``index`` uses (a number broadcasts)."""
    if src.ndim == 0:
        return np.broadcast_to(src, index_shape)
    return src[tuple(slice(0, n) for n in index_shape)]


def _src_grad(grad_part: np.ndarray, src: np.ndarray) -> np.ndarray:
    """``grad_part`` (index-shaped) placed into a zero array shaped like ``src``."""
    if src.ndim == 0:
        return np.asarray(grad_part.sum(), dtype=src.dtype)
    out = np.zeros(src.shape, dtype=grad_part.dtype)
    out[tuple(slice(0, n) for n in grad_part.shape)] = grad_part
    return out


class Scatter(Function):
    """``x`` with ``src`` written (``reduce=None``) or reduced (``"sum"``, ``"prod"``,
    ``"mean"``, ``"amax"``, ``"amin"``; ``include_self`` as torch's ``scatter_reduce``) at the
    positions ``index`` names along ``dim``.

    Local derivative: written positions send no gradient to ``x`` and src gets the gradient
    there; "sum" passes it to both; "mean" divides by the count of contributors; "amax"/"amin"
    split it evenly among the entries equal to the result, x's original entry counted even
    with ``include_self=False`` (PyTorch's rule, see ``_tie_shares``); "prod" gives
    each contributor the product of the others. Duplicate positions with ``reduce=None`` keep
    one of the writes (which one is unspecified in PyTorch too).
    Shape: x (...), src like index or larger (or a number) -> x's shape.
    """

    owns_grads = True
    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, x, src, index, dim, reduce=None, include_self=True, op="scatter"):
        positions = scatter_positions(op, x.shape, index, dim, src.shape)
        part = _src_part(src, index.shape).astype(x.dtype, copy=False)
        out = x.copy()
        ctx.positions, ctx.reduce, ctx.include_self = positions, reduce, include_self
        ctx.call = (index, dim, reduce, include_self, op)  # to recompute it in backward_graph
        ctx.x, ctx.src, ctx.part = x, src, part
        if reduce is None:
            out[positions] = part
            touched = np.zeros(x.shape, dtype=bool)
            touched[positions] = True
            ctx.touched = touched
            return out
        count = np.zeros(x.shape, dtype=np.int64)
        np.add.at(count, positions, 1)
        touched = count > 0
        if not include_self:
            identity = {"sum": 0, "mean": 0, "prod": 1,
                        "amax": -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min,
                        "amin": np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).max}
            out[touched] = identity[reduce]
        if reduce in ("sum", "mean"):
            np.add.at(out, positions, part)
            if reduce == "mean":
                total = count + (1 if include_self else 0)
                total = np.maximum(total, 1)
                if out.dtype.kind == "f":
                    out = out / total.astype(out.dtype)
                else:
                    out = np.floor_divide(out, total).astype(out.dtype)
                ctx.total = total
        elif reduce == "prod":
            np.multiply.at(out, positions, part)
        else:
            (np.maximum if reduce == "amax" else np.minimum).at(out, positions, part)
        ctx.touched, ctx.out = touched, out
        return out

    @staticmethod
    def backward(ctx, grad):
        positions, reduce = ctx.positions, ctx.reduce
        src = ctx.src
        keep_self = ctx.include_self or None
        if reduce is None:
            grad_x = np.where(ctx.touched, 0, grad)
            grad_part = grad[positions]
        elif reduce == "sum":
            grad_x = grad if keep_self else np.where(ctx.touched, 0, grad)
            grad_part = grad[positions]
        elif reduce == "mean":
            scaled = grad / ctx.total
            grad_x = scaled if keep_self else np.where(ctx.touched, 0, grad)
            grad_part = scaled[positions]
        elif reduce == "prod":
            grad_x, grad_part = _prod_grads(ctx, grad)
        else:  # amax / amin: split among the entries equal to the result (see _tie_shares)
            self_hits, part_hits, share = _tie_shares(ctx, grad)
            grad_x = np.where(self_hits, share, 0)
            grad_part = np.where(part_hits, share[positions], 0)
        return grad_x.astype(grad.dtype, copy=False), _src_grad(
            np.asarray(grad_part, dtype=grad.dtype), src)

    @staticmethod
    def backward_graph(ctx, grad):
        # The same gradients in recorded ops. Every reduction but "prod" is linear in grad with
        # masks and counts that are piecewise constant in x and src (constants here); "prod"
        # follows PyTorch's scatter_reduce_backward: the products of the others are
        # recomputed as scatters with the zeros masked to 1, so they stay differentiable.
        positions, reduce = ctx.positions, ctx.reduce
        x, src = ctx.inputs
        zero = np.zeros((), dtype=grad._data.dtype)
        untouched = ~ctx.touched
        if reduce is None:
            grad_x, grad_part = Where.apply(untouched, grad, zero), grad[positions]
        elif reduce == "sum":
            grad_x = grad if ctx.include_self else Where.apply(untouched, grad, zero)
            grad_part = grad[positions]
        elif reduce == "mean":
            scaled = grad / ctx.total.astype(grad._data.dtype)
            grad_x = scaled if ctx.include_self else Where.apply(untouched, grad, zero)
            grad_part = scaled[positions]
        elif reduce == "prod":
            grad_x, grad_part = _prod_grads_graph(ctx, grad, x, src)
        else:
            self_hits, part_hits, counts = _tie_shares(ctx, None)
            share = grad / counts
            grad_x = Where.apply(self_hits, share, zero)
            grad_part = Where.apply(part_hits, share[positions], zero)
        grad_src = None
        if ctx.needs_input_grad[1]:
            if src.ndim == 0:
                grad_src = grad_part.sum()
            elif grad_part.shape == src.shape:
                grad_src = grad_part
            else:  # index smaller than src: the rest of src was not read
                corner = tuple(slice(0, n) for n in grad_part.shape)
                grad_src = ScatterAdd.apply(grad_part, src.shape, corner, True)
        return grad_x, grad_src


def _tie_shares(ctx, grad):
    """amax/amin's gradient rule, torch's ``scatter_reduce_backward``: the gradient at a
    position is divided by the number of entries equal to the result there, counting the
    original entry of x even when ``include_self=False`` (torch's count does; that entry then
    gets no gradient where something was scattered). Returns (x's hits, src's hits, grad
    divided by the counts) or, with ``grad`` None, the counts (at least 1) instead.
    """
    out, positions = ctx.out, ctx.positions
    self_equal = ctx.x == out
    self_hits = self_equal & (bool(ctx.include_self) | ~ctx.touched)
    part_hits = ctx.part == out[positions]
    counts = self_equal.astype(out.dtype if out.dtype.kind == "f" else np.float64)
    np.add.at(counts, positions, part_hits)
    counts = np.maximum(counts, 1)
    if grad is None:
        return self_hits, part_hits, counts.astype(ctx.x.dtype, copy=False)
    return self_hits, part_hits, grad / counts


def _prod_grads(ctx, grad):
    """Gradients of a scattered product: each contributor gets the product of the others
    (the count of zeros decides, so a zero contributor is handled exactly)."""
    x, part, positions, touched = ctx.x, ctx.part, ctx.positions, ctx.touched
    use_self = bool(ctx.include_self) | ~touched
    x_nonzero = np.where(use_self & (x != 0), x, 1)
    zeros = (use_self & (x == 0)).astype(np.int64)
    np.add.at(zeros, positions, part == 0)
    product = x_nonzero.astype(grad.dtype)
    np.multiply.at(product, positions, np.where(part != 0, part, 1))

    def others(values, nonzero_product, zero_count):
        # the product of the other contributors at that position
        safe = np.where(values != 0, values, 1)
        return np.where(zero_count == 0, nonzero_product / safe,
                        np.where((zero_count == 1) & (values == 0), nonzero_product, 0))

    grad_x = np.where(use_self, grad * others(x, product, zeros), 0)
    grad_part = grad[positions] * others(part, product[positions], zeros[positions])
    return grad_x, grad_part


def _prod_grads_graph(ctx, grad, x, src):
    """:func:`_prod_grads` in recorded ops (PyTorch's ``scatter_reduce_backward`` for "prod").

    The gradient of x: grad * scatter(x with its zeros as 1) / (x with its zeros as 1). That of
    src: where src is the only zero at its position, grad times the scatter with that zero as
    1; elsewhere grad * result / (src with its zeros as 1). Two or more zeros of src meeting at
    one position make the product of the others (0) have a derivative this form cannot give;
    PyTorch refuses to differentiate it again and so does this (RuntimeError, named).
    """
    index, dim, reduce, include_self, op = ctx.call
    positions = ctx.positions
    one = np.ones((), dtype=grad._data.dtype)
    zero = np.zeros((), dtype=grad._data.dtype)
    masked_x = Where.apply(ctx.x == 0, one, x)
    grad_x = grad * Scatter.apply(masked_x, src, index, dim, reduce, include_self, op) / masked_x
    if not include_self:
        grad_x = Where.apply(ctx.touched, zero, grad_x)
    part = src.expand(*index.shape) if src.ndim == 0 else src[
        tuple(slice(0, n) for n in index.shape)]
    part_zero = ctx.part == 0
    zeros_at = np.zeros(ctx.x.shape, dtype=np.int64)
    np.add.at(zeros_at, positions, part_zero)
    zeros_at = zeros_at[positions]
    if ctx.needs_input_grad[1] and (part_zero & (zeros_at > 1)).any():
        raise RuntimeError(
            f"create_graph: {op}(reduce='prod'): the derivative with respect to src is not "
            "differentiable again where two or more zeros of src meet at one position "
            "(PyTorch refuses it too); use create_graph=False")
    single = part_zero & (zeros_at == 1)
    masked_part = Where.apply(single, one, part)
    with_single_as_one = Scatter.apply(x, masked_part, index, dim, reduce, include_self, op)
    result = Scatter.apply(x, src, index, dim, reduce, include_self, op)
    grad_part = Where.apply(single, (grad * with_single_as_one)[positions],
                            (grad * result)[positions] / Where.apply(part_zero, one, part))
    return grad_x, grad_part
