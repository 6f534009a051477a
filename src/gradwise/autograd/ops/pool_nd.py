"""Max and average pooling over any number of trailing spatial dims, with all of torch's options.

The 2-d ops in ``pool.py`` (and their numba kernels) serve the everyday call: ``max_pool2d`` /
``avg_pool2d`` with dilation 1, floor mode and padding counted in the mean. Everything else runs
here, on the NumPy reference path: ``ceil_mode``, ``dilation`` (max), ``count_include_pad=False``
and ``divisor_override`` (average), ``return_indices``, and the 1-d and 3-d pools. The input is
``(*lead, *spatial)`` with ``len(kernel)`` spatial dims; lead dims (batch, channels) are any.

Output size along each dim (torch's ``pooling_output_shape``)::

    out = (L + 2 p - d (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) s >= L + p: out -= 1   # the last window starts inside the input
                                                      # or the left padding

A ceil-mode window may run past the right padding; those positions are treated as padding.

Max pooling picks, per window, torch's CPU element (``MaxPoolKernel.cpp``): scanning the window
in row-major order from its first element inside the input, an element takes over when it is
strictly greater than the maximum so far or is NaN. So a tie goes to the first maximum, a window
holding NaN to its last NaN, and padding is never picked, even when every real element is -inf.

Average pooling divides each window's sum by (torch's ``AvgPoolKernel.cpp``): ``divisor_override``
when given, else the window's size clipped to the padded input (``count_include_pad=True``, so a
ceil-mode window hanging past the right padding counts only up to it), else the number of its
elements inside the input.
"""

from __future__ import annotations

import itertools

import numpy as np

from gradwise.autograd.function import Function
from gradwise.autograd.ops.elementwise import linked_to
from gradwise.autograd.ops.shape import GetItem, ScatterAdd

Sizes = tuple[int, ...]


def output_sizes(spatial: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes,
                 ceil_mode: bool) -> Sizes:
    """torch's ``pooling_output_shape`` per dim, unchecked (an entry may be below 1)."""
    sizes = []
    for size, k, s, p, d in zip(spatial, kernel, stride, padding, dilation, strict=True):
        out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (out - 1) * s >= size + p:
            out -= 1
        sizes.append(out)
    return tuple(sizes)


def pool_output_sizes(
    op: str, spatial: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes,
    ceil_mode: bool,
) -> Sizes:
    """torch's pooling output sizes (see the module docstring), after torch's checks.

    Raises:
        ValueError: a padding larger than half its kernel (torch: "pad should be at most half
            of effective kernel size"), or an output size below 1 (torch: "Output size is too
            small"); both name the op, the input size and the arguments.
    """
    for k, p in zip(kernel, padding, strict=True):
        if p > k // 2:
            raise ValueError(f"{op}: pad should be at most half of effective kernel size, but "
                             f"got padding={padding} for kernel_size={kernel}")
    sizes = output_sizes(spatial, kernel, stride, padding, dilation, ceil_mode)
    if min(sizes, default=1) < 1:
        raise ValueError(f"{op}: input size {tuple(spatial)} gives output size {tuple(sizes)}: "
                         f"Output size is too small (kernel_size={kernel}, stride={stride}, "
                         f"padding={padding}, dilation={dilation}, ceil_mode={ceil_mode})")
    return tuple(sizes)


def _padded(x: np.ndarray, out_sizes: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes,
            dilation: Sizes, value: float) -> np.ndarray:
    """x with ``padding`` before each spatial dim and, after it, enough for every window
    (the padding, or more for a ceil-mode window that runs past it), filled with ``value``."""
    rank = len(kernel)
    widths = [(0, 0)] * (x.ndim - rank)
    for size, o, k, s, p, d in zip(x.shape[-rank:], out_sizes, kernel, stride, padding,
                                   dilation, strict=True):
        reach = (o - 1) * s + d * (k - 1) + 1  # the last window's end, in padded coordinates
        widths.append((p, max(p, reach - size - p)))
    return np.pad(x, widths, constant_values=value)


def _offset_index(lead: int, offset: Sizes, out_sizes: Sizes, stride: Sizes,
                  dilation: Sizes) -> tuple[slice, ...]:
    """Index of the padded-input elements that kernel ``offset`` reads, for every window."""
    return (slice(None),) * lead + tuple(
        slice(i * d, i * d + s * (o - 1) + 1, s)
        for i, o, s, d in zip(offset, out_sizes, stride, dilation, strict=True))


class MaxPoolNd(Function):
    """Maximum over each window of the trailing ``len(kernel)`` dims (torch's pick; see the
    module docstring), with torch's dilation and ceil_mode.

    Local derivative: 1 for the element each window picks, 0 elsewhere; overlapping windows add
    up. ``ctx.indices`` (after forward) holds each pick's flat index into its spatial plane, the
    indices torch's ``max_poolNd(return_indices=True)`` returns. Shape: (*lead, *spatial) ->
    (*lead, *out_sizes).
    """

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode=False, op="max_pool",
                indices_out=None):
        # indices_out: a list the picks' flat indices are appended to (return_indices), since
        # the node (and its ctx) is not kept when nothing needs a gradient
        rank = len(kernel)
        spatial = x.shape[-rank:]
        out_sizes = pool_output_sizes(op, spatial, kernel, stride, padding, dilation, ceil_mode)
        lead = x.ndim - rank
        padded = _padded(x, out_sizes, kernel, stride, padding, dilation, -np.inf)
        grid = [np.arange(o) * s - p for o, s, p in zip(out_sizes, stride, padding, strict=True)]
        # each window starts at its first element inside the input (torch skips the left
        # padding in steps of the dilation); the maximum so far starts at -inf
        coords = []
        for axis, (start, d) in enumerate(zip(grid, dilation, strict=True)):
            first = start + d * (-(np.minimum(start, 0) // d))  # start + d * ceil(-start / d)
            shape = [1] * rank
            shape[axis] = -1
            coords.append(np.broadcast_to(first.reshape(shape), out_sizes).copy())
        best = np.full(x.shape[:lead] + out_sizes, -np.inf, dtype=x.dtype)
        coords = [np.broadcast_to(c, best.shape).copy() for c in coords]
        took = np.empty(best.shape, dtype=bool)
        for offset in itertools.product(*(range(k) for k in kernel)):
            values = padded[_offset_index(lead, offset, out_sizes, stride, dilation)]
            np.greater(values, best, out=took)
            took |= np.isnan(values)
            np.copyto(best, values, where=took)
            for axis in range(rank):
                position = grid[axis] + offset[axis] * dilation[axis]
                shape = [1] * rank
                shape[axis] = -1
                np.copyto(coords[axis], position.reshape(shape), where=took)
        inside = np.ones(best.shape, dtype=bool)
        flat = np.zeros(best.shape, dtype=np.int64)
        for axis in range(rank):
            inside &= coords[axis] < spatial[axis]
            flat = flat * spatial[axis] + coords[axis]  # torch's (d * H + h) * W + w
        # a window that saw no input element (a dilation stepping over the whole input) keeps
        # -inf and torch's out-of-range index; its gradient goes nowhere
        ctx.inside = None if inside.all() else inside
        ctx.indices, ctx.input_shape, ctx.rank = flat, x.shape, rank
        ctx.pool_args = (kernel, stride, padding, dilation, ceil_mode)  # for the ONNX export
        if indices_out is not None:
            indices_out.append(flat)
        return best

    @staticmethod
    def backward(ctx, grad):
        shape, rank = ctx.input_shape, ctx.rank
        plane = int(np.prod(shape[len(shape) - rank:], dtype=np.int64))
        rows = int(np.prod(shape[:len(shape) - rank], dtype=np.int64))
        picks = int(np.prod(ctx.indices.shape[len(shape) - rank:], dtype=np.int64))
        flat = (ctx.indices.reshape(rows, picks)  # explicit sizes: an empty batch has rows 0
                + (np.arange(rows, dtype=np.int64) * plane)[:, None])
        values = grad.reshape(rows, picks)
        if ctx.inside is not None:
            keep = ctx.inside.reshape(rows, picks)
            flat, values = flat[keep], values[keep]
        # one sum per input element (overlapping windows may pick the same one); bincount adds
        # in float64 and the result is cast back
        summed = np.bincount(flat.ravel(), weights=values.ravel(), minlength=rows * plane)
        return (summed.astype(grad.dtype, copy=False).reshape(shape),)

    @staticmethod
    def backward_graph(ctx, grad):
        # the gradient routed to each pick as a recorded scatter: linear in grad, piecewise
        # constant in x, so x gets no second derivative (as torch)
        shape, rank = ctx.input_shape, ctx.rank
        lead = len(shape) - rank
        indices = ctx.indices
        if ctx.inside is not None:  # windows that saw no input send a zero to element 0
            grad = grad * ctx.inside.astype(grad.dtype)
            indices = np.where(ctx.inside, indices, 0)
        coords = np.unravel_index(indices, shape[lead:])
        grids = tuple(np.arange(n).reshape((-1,) + (1,) * (indices.ndim - 1 - axis))
                      for axis, n in enumerate(shape[:lead]))
        # torch's max_pool backward reads x (derivative 0): linked to it, zeros not None
        return (linked_to(ScatterAdd.apply(grad, shape, (*grids, *coords), False),
                          ctx.inputs[0]),)


class AvgPoolNd(Function):
    """Mean over each window of the trailing ``len(kernel)`` dims with torch's ceil_mode,
    count_include_pad and divisor_override (the divisor rule is in the module docstring).

    Local derivative: 1 / divisor of its window for every element of a window that lies in the
    input; overlapping windows add up. Shape: (*lead, *spatial) -> (*lead, *out_sizes).
    """

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, ceil_mode=False, count_include_pad=True,
                divisor_override=None, op="avg_pool"):
        rank = len(kernel)
        ones = (1,) * rank
        spatial = x.shape[-rank:]
        out_sizes = pool_output_sizes(op, spatial, kernel, stride, padding, ones, ceil_mode)
        lead = x.ndim - rank
        padded = _padded(x, out_sizes, kernel, stride, padding, ones, 0.0)
        total = None
        for offset in itertools.product(*(range(k) for k in kernel)):
            values = padded[_offset_index(lead, offset, out_sizes, stride, ones)]
            total = values.copy() if total is None else np.add(total, values, out=total)
        divisor = _divisor(spatial, out_sizes, kernel, stride, padding, count_include_pad,
                           divisor_override)
        ctx.geometry = (x.shape, padded.shape, out_sizes, kernel, stride, padding)
        ctx.scale = (1.0 / divisor).astype(x.dtype)
        ctx.options = (ceil_mode, count_include_pad, divisor_override)  # for the ONNX export
        return total * ctx.scale

    @staticmethod
    def backward(ctx, grad):
        shape, padded_shape, out_sizes, kernel, stride, padding = ctx.geometry
        lead = len(shape) - len(kernel)
        share = grad * ctx.scale
        grad_padded = np.zeros(padded_shape, dtype=grad.dtype)
        for offset in itertools.product(*(range(k) for k in kernel)):
            grad_padded[_offset_index(lead, offset, out_sizes, stride, (1,) * len(kernel))] += share
        return (grad_padded[_crop(shape, padding)],)

    @staticmethod
    def backward_graph(ctx, grad):
        # the same spreading as recorded scatters, one per kernel offset: linear in grad and
        # constant in x, so differentiable to any order
        shape, padded_shape, out_sizes, kernel, stride, padding = ctx.geometry
        lead = len(shape) - len(kernel)
        share = grad * ctx.scale
        total = None
        for offset in itertools.product(*(range(k) for k in kernel)):
            index = _offset_index(lead, offset, out_sizes, stride, (1,) * len(kernel))
            spread = ScatterAdd.apply(share, padded_shape, index, True)
            total = spread if total is None else total + spread
        # torch's avg_pool backward reads x (derivative 0): linked to it, zeros not None
        return (linked_to(GetItem.apply(total, _crop(shape, padding)), ctx.inputs[0]),)


def _crop(shape: Sizes, padding: Sizes) -> tuple[slice, ...]:
    """Index of the input inside its padded copy."""
    rank = len(padding)
    return (slice(None),) * (len(shape) - rank) + tuple(
        slice(p, p + n) for p, n in zip(padding, shape[-rank:], strict=True))


def _divisor(spatial: Sizes, out_sizes: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes,
             count_include_pad: bool, divisor_override: int | None) -> np.ndarray:
    """Each window's divisor (torch's rule), shaped like the output grid, float64."""
    if divisor_override is not None:
        return np.full(out_sizes, float(divisor_override))
    divisor = np.ones(out_sizes)
    for axis, (size, o, k, s, p) in enumerate(zip(spatial, out_sizes, kernel, stride, padding,
                                                  strict=True)):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, size + p)  # a ceil-mode window stops at the padding's end
        inside = np.minimum(end, size) - np.maximum(start, 0)
        length = end - start if count_include_pad else inside
        shape = [1] * len(out_sizes)
        shape[axis] = -1
        divisor = divisor * np.maximum(length, 1).reshape(shape)
    return divisor
