"""2-D max and average pooling over NCHW tensors, computed channels-last (NHWC) inside.

Pooling: the window at kernel offset (i, j) over all outputs is the strided slice
``x_padded[:, i::s, j::s]`` (cut to the output size), so max pooling is ``kh*kw`` element-wise
maxima of slices and average pooling is their sum; no index arrays, any stride and padding.
Max pooling with stride == kernel and no padding (the usual ``max_pool2d(x, 2)``) takes a fast
path: the windows tile the input, the forward records each window's argmax offset in one byte,
and the backward writes the gradient through it (no comparisons against the input, no zeroed
buffer when the windows cover the input).
Max-pool gradient ties: when several elements of a window equal its maximum, the whole gradient
goes to the first of them in row-major order (lowest row, then lowest column), which is the
element PyTorch's CPU kernel picks. A NaN in a window makes that window's output NaN and
sends its gradient to the last NaN, and padding is never picked, not even when every real
element of the window is -inf (all three as PyTorch's CPU kernel).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gradwise.autograd.function import Function
from gradwise.autograd.kernels import KERNEL_DTYPES, _threads, jit_enabled
from gradwise.autograd.kernels import pool as pool_kernels
from gradwise.autograd.ops._select import select_grad, select_grad_into
from gradwise.autograd.ops._spatial import (
    CHUNK_BYTES,
    Pair,
    check_4d,
    check_window_fits,
    kernel_offsets,
    nchw,
    nhwc,
    output_size,
    pad_hw,
    window_index,
)
from gradwise.autograd.ops.elementwise import linked_to
from gradwise.autograd.ops.shape import GetItem, ScatterAdd


def _check_pool(op: str, x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    """Validate a pooling call; return the output (Ho, Wo)."""
    check_4d(op, x)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"{op}: padding {padding} must be at most half the kernel {kernel} "
            "(a window could otherwise see only padding)"
        )
    check_window_fits(op, x.shape, kernel, padding, (1, 1))
    return (
        output_size(x.shape[2], kernel[0], stride[0], padding[0]),
        output_size(x.shape[3], kernel[1], stride[1], padding[1]),
    )


class MaxPool2d(Function):
    """Maximum over each (kh, kw) window of an (N, C, H, W) input; padding counts as -inf.

    Local derivative: 1 for the element each window picks (the first maximum in row-major
    order, the last NaN, never padding: PyTorch's CPU rule), 0 elsewhere; overlapping windows
    add up. Shape: -> (N, C, Ho, Wo).
    """
    torch_name = "MaxPool2DWithIndices"
    owns_grads = True

    saves_output = True
    double_backward_reads_output = False  # torch's double backward reads the input

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0)):
        out_hw = _check_pool("max_pool2d", x, kernel, stride, padding)
        ctx.geometry = (x.shape, out_hw, kernel, stride, padding)
        ctx.kernel_choice = ctx.argmax = None
        ctx.planes = False
        if _use_kernels(x, MAX_POOL_KERNEL_MIN_CHANNELS):
            out, ctx.kernel_choice = _max_pool_kernel(x, kernel, stride, padding, out_hw,
                                                      any(ctx.needs_input_grad))
            return nchw(out)
        if kernel == stride and padding == (0, 0):
            # the argmax is needed only when backward will run (not under no_grad)
            recording = any(ctx.needs_input_grad)
            n, c, h, w = x.shape
            ctx.planes = x.flags.c_contiguous and c > 1
            if ctx.planes:
                # contiguous NCHW (a plane-major convolution's output): pool each (n, c) plane
                # as an image of one channel, so the passes read rows instead of gathering C
                # numbers H*W apart (6 channels 28x28, batch 64, 1 thread: forward 0.23 vs
                # 0.33 ms, backward 0.17 vs 0.24 ms); the same picks, element by element
                out, ctx.argmax = _max_pool_tiles(x.reshape(n * c, h, w, 1), kernel, out_hw,
                                                  recording)  # (N*C, Ho, Wo, 1)
                return out.reshape(n, c, *out_hw)
            out, ctx.argmax = _max_pool_tiles(nhwc(x), kernel, out_hw, recording)
            return nchw(out)
        x_padded = pad_hw(nhwc(x), padding, value=-np.inf)
        out, ctx.chosen = _max_pool_windows(x_padded, out_hw, kernel, stride, padding,
                                            with_choice=any(ctx.needs_input_grad))
        ctx.padded_shape, ctx.argmax = x_padded.shape, None
        return nchw(out)

    @staticmethod
    def backward(ctx, grad):
        (n, c, h, w), out_hw, kernel, stride, padding = ctx.geometry
        if ctx.argmax is not None and ctx.planes:  # (N*C, Ho, Wo, 1), like `out`
            planes = np.ascontiguousarray(grad).reshape(n * c, *out_hw, 1)
            grad_x = _max_pool_tiles_grad(planes, ctx.argmax, kernel, (n * c, h, w, 1))
            return (grad_x.reshape(n, c, h, w),)
        grad = np.ascontiguousarray(nhwc(grad))  # (N, Ho, Wo, C), like `out`
        if ctx.kernel_choice is not None:
            grad_x = np.empty((n, h, w, c), dtype=grad.dtype)
            choice = ctx.kernel_choice
            _by_images(n, h * w * c * grad.itemsize, lambda lo, hi: pool_kernels.max_pool_backward(
                grad[lo:hi], choice[lo:hi], *kernel, *stride, *padding, grad_x[lo:hi]))
            return (nchw(grad_x),)
        if ctx.argmax is not None:
            return (nchw(_max_pool_tiles_grad(grad, ctx.argmax, kernel, (n, h, w, c))),)
        chosen = ctx.chosen
        overlapping = stride[0] < kernel[0] or stride[1] < kernel[1]
        grad_padded = np.zeros(ctx.padded_shape, dtype=grad.dtype)
        hit = np.empty(chosen.shape, dtype=bool)
        for number, (i, j) in enumerate(kernel_offsets(kernel)):
            index = window_index(i, j, out_hw, stride, (1, 1))
            np.equal(chosen, number, out=hit)
            # selections, not grad * hit: an inf or NaN gradient stays with the element the
            # window picked (torch's max_pool2d_backward scatters; inf * 0 would be NaN)
            if overlapping:
                grad_padded[index] += select_grad(hit, grad)
            else:  # each input element is in at most one window: write, don't add
                select_grad_into(grad_padded[index], hit, grad)
        ph, pw = padding
        return (nchw(grad_padded[:, ph : ph + h, pw : pw + w]),)

    @staticmethod
    def backward_graph(ctx, grad):
        # each window's gradient goes to the element it picked: a recorded scatter, linear in
        # grad; the picks are piecewise constant in x, so x gets no second derivative (as torch,
        # whose max_pool2d_with_indices_backward reads x: linked to it, zeros not None)
        spread = ScatterAdd.apply(grad, ctx.geometry[0], _picked_index(ctx), False)
        return (linked_to(spread, ctx.inputs[0]),)


def _picked_index(ctx) -> tuple[np.ndarray, ...]:
    """(n, c, row, col) index arrays, each shaped like the output (N, C, Ho, Wo), of the input
    element every max-pooling window picked (the same pick as backward)."""
    (n, c, h, w), (ho, wo), kernel, stride, padding = ctx.geometry
    if ctx.kernel_choice is not None:  # the numba kernel's picks: offsets, as the windows'
        offset, first, step = ctx.kernel_choice, (-padding[0], -padding[1]), stride
    elif ctx.argmax is not None:
        offset, first, step = ctx.argmax, (0, 0), kernel  # tiles: no padding, stride == kernel
    else:
        offset, first, step = ctx.chosen, (-padding[0], -padding[1]), stride
    if ctx.argmax is not None and ctx.planes:  # (N*C, Ho, Wo, 1) -> (N, C, Ho, Wo)
        offset = offset.reshape(n, c, ho, wo).astype(np.intp)
    else:
        offset = offset.transpose(0, 3, 1, 2).astype(np.intp)  # NHWC -> (N, C, Ho, Wo)
    rows = first[0] + step[0] * np.arange(ho)[:, None] + offset // kernel[1]
    cols = first[1] + step[1] * np.arange(wo)[None, :] + offset % kernel[1]
    return (np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols)


#: max pooling runs the numba kernel only from this many channels on: its loops run over the
#: channels innermost, and with few of them NumPy's whole-array passes win (2x2 max-pool, batch
#: 64, 1 thread, medians: 6 channels 28x28 kernel 0.51/0.81 ms forward/backward vs NumPy
#: 0.40/0.23; 16 channels 10x10: 0.04/0.02 vs 0.07/0.06; 32 channels 32x32: 0.94/0.53 vs
#: 1.53/1.21)
MAX_POOL_KERNEL_MIN_CHANNELS = 8


#: a pooling kernel splits its batch over threads (``kernels/_threads.py``) only from this many
#: bytes of input (or input gradient) per part. Measured (2x2 max-pool forward + backward, 2
#: threads against 1, idle moment): 32 channels 28x28 1.52x at batch 8, 1.13x at 32 (1.6 MB
#: per part); 64 channels 14x14 1.42x at batch 32 (0.8 MB per part); in the CNN step at batch
#: 128 (6.4 and 3.2 MB per part) 0.5-0.6x
_MIN_PART_BYTES = 2 << 20


def _by_images(n: int, bytes_per_image: int, call: Callable[[int, int], None]) -> None:
    """``call(lo, hi)`` over parts of the ``n`` images, in parallel when it pays
    (``_threads.parts_for``); every kernel here works image by image, so any split gives the
    same bits."""
    ranges = _threads.split(n, _threads.parts_for(n, bytes_per_image, _MIN_PART_BYTES))
    _threads.run_parts(lambda part, lo, hi: call(lo, hi), ranges)


def _use_kernels(x: np.ndarray, min_channels: int = 1) -> bool:
    """Whether the numba kernels run for this input (compiled for float32/64 only)."""
    # the kernels take an NHWC copy/view themselves, so only dtype and byte order matter here
    return (jit_enabled() and x.dtype in KERNEL_DTYPES and x.dtype.isnative
            and x.shape[1] >= min_channels)


def _max_pool_kernel(
    x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, with_choice: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Max pooling by the numba kernel: (output NHWC, offset number picked or None)."""
    x_nhwc = np.ascontiguousarray(nhwc(x))  # free when x is an NCHW view of NHWC memory
    n, c = x_nhwc.shape[0], x_nhwc.shape[3]
    out = np.empty((n, *out_hw, c), dtype=x.dtype)
    shape = out.shape if with_choice else (0, 0, 0, 0)  # one compiled signature either way
    chosen = np.empty(shape, dtype=pool_kernels.choice_dtype(kernel))

    def pool_images(lo: int, hi: int) -> None:
        # without with_choice, chosen is (0, 0, 0, 0) and goes whole to every part
        picks = chosen[lo:hi] if with_choice else chosen
        pool_kernels.max_pool_forward(x_nhwc[lo:hi], *kernel, *stride, *padding, out[lo:hi],
                                      picks, with_choice)

    _by_images(n, x_nhwc[0:1].nbytes, pool_images)
    return out, chosen if with_choice else None


def _max_pool_windows(
    x_padded: np.ndarray, out_hw: Pair, kernel: Pair, stride: Pair, padding: Pair,
    with_choice: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Max pooling of a -inf-padded NHWC array: (output, the offset each window picked).

    The pick is PyTorch's CPU rule, scanned in the same order: the window's first real (not
    padding) element starts as the maximum and an element takes over when it is strictly
    greater, or is NaN. So a tie goes to the first maximum, a window holding NaN to its last NaN,
    and a window whose real elements are all -inf to its first real element. Padding (-inf) is
    never greater than the maximum so far, so it is never picked. Without ``with_choice`` (under
    no_grad) only the maxima are computed.
    """
    kw = kernel[1]
    out_shape = (x_padded.shape[0], *out_hw, x_padded.shape[3])
    out = np.full(out_shape, -np.inf, dtype=x_padded.dtype)
    chosen = took = took_number = None
    if with_choice:
        # the first real element of each window: row max(0, p - y*s), column likewise
        first_row = np.maximum(0, padding[0] - stride[0] * np.arange(out_hw[0]))
        first_col = np.maximum(0, padding[1] - stride[1] * np.arange(out_hw[1]))
        first = (first_row[:, None] * kw + first_col[None, :]).astype(np.int16)  # (Ho, Wo)
        chosen = np.empty(out_shape, dtype=np.int16)
        chosen[...] = first[None, :, :, None]
        took = np.empty(out_shape, dtype=bool)
        took_number = np.empty(out_shape, dtype=np.int16)
    for number, (i, j) in enumerate(kernel_offsets(kernel)):
        values = x_padded[window_index(i, j, out_hw, stride, (1, 1))]
        if with_choice:
            assert chosen is not None and took is not None and took_number is not None
            np.greater(values, out, out=took)
            # offsets only grow and no real element comes before `first`, so "take over" is
            # a maximum of integers (a masked copy is several times slower)
            np.multiply(took, np.int16(number), out=took_number)
            np.maximum(chosen, took_number, out=chosen)
        np.maximum(out, values, out=out)
    if chosen is not None and out.size and np.isnan(np.min(out)):
        # NaN is never "greater", so the windows holding one are rescanned: the last NaN wins
        nan_out = np.isnan(out)
        for number, (i, j) in enumerate(kernel_offsets(kernel)):
            values = x_padded[window_index(i, j, out_hw, stride, (1, 1))]
            np.copyto(chosen, np.int16(number), where=np.isnan(values) & nan_out)
    return out, chosen


def _tiles(x: np.ndarray, kernel: Pair, out_hw: Pair) -> np.ndarray:
    """View (N, Ho, kh, Wo, kw, C) of an NHWC array cut into non-overlapping windows.

    Splitting an axis is always possible without a copy, so this is a view even when ``x`` is
    itself a strided view; rows and columns past the last whole window are left out.
    """
    n, _, _, c = x.shape
    (kh, kw), (ho, wo) = kernel, out_hw
    return x[:, : ho * kh, : wo * kw].reshape(n, ho, kh, wo, kw, c)


def _max_pool_tiles(
    x: np.ndarray, kernel: Pair, out_hw: Pair, with_argmax: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Max pooling with stride == kernel and no padding: (output NHWC, argmax per window).

    The argmax is the row-major offset ``i*kw + j`` of the window's first maximum, one byte per
    output element, found in the same pass as the maximum: an offset takes over only where it
    is strictly greater than the maximum so far, so a tie stays with the earlier element
    (PyTorch's choice). Offsets are visited in increasing order, so "take over" is
    ``argmax = max(argmax, offset * greater)``: integer arithmetic, no masked assignment (which
    NumPy does several times slower). The work runs a few images at a time so that the
    temporaries stay in cache (25-35% faster than whole-batch passes). Without ``with_argmax``
    only the maxima are computed, and the argmax returned is None.
    """
    windows = _tiles(x, kernel, out_hw)  # (N, Ho, kh, Wo, kw, C)
    n, c = x.shape[0], x.shape[3]
    kh, kw = kernel
    out = np.empty((n, *out_hw, c), dtype=x.dtype)
    argmax = np.zeros(out.shape, np.min_scalar_type(kh * kw - 1)) if with_argmax else None
    step = max(1, CHUNK_BYTES // max(1, x.itemsize * x.size // max(1, n)))  # images per chunk
    greater = np.empty((min(step, n), *out.shape[1:]), dtype=bool)
    offset_times_greater = np.empty(greater.shape, dtype=np.min_scalar_type(kh * kw - 1))
    for start in range(0, n, step):
        stop = min(n, start + step)
        images, best = windows[start:stop], out[start:stop]
        took, took_offset = greater[: stop - start], offset_times_greater[: stop - start]
        np.copyto(best, images[:, :, 0, :, 0])
        for offset in range(1, kh * kw):
            window = images[:, :, offset // kw, :, offset % kw]
            if argmax is None:
                np.maximum(best, window, out=best)
                continue
            np.greater(window, best, out=took)
            np.maximum(best, window, out=best)
            np.multiply(took, took_offset.dtype.type(offset), out=took_offset)
            np.maximum(argmax[start:stop], took_offset, out=argmax[start:stop])
    if argmax is not None:
        _nan_windows_take_last_nan(windows, out, argmax, kw)
    return out, argmax


def _nan_windows_take_last_nan(
    windows: np.ndarray, out: np.ndarray, argmax: np.ndarray, kw: int
) -> None:
    """Point the argmax of every window holding NaN at its last NaN, as PyTorch's kernel does.

    ``np.greater`` is False against NaN, so the scan above leaves such windows pointing at an
    earlier element; a NaN output marks them, and only then is anything rescanned.
    """
    if not out.size or not np.isnan(np.min(out)):  # one pass: min is NaN iff an output is
        return
    nan_out = np.isnan(out)
    for offset in range(windows.shape[2] * kw):
        is_nan = np.isnan(windows[:, :, offset // kw, :, offset % kw]) & nan_out
        argmax[is_nan] = offset


def _max_pool_tiles_grad(
    grad: np.ndarray, argmax: np.ndarray, kernel: Pair, input_shape: tuple[int, ...]
) -> np.ndarray:
    """Route each window's gradient to its argmax: one masked write per kernel offset (NHWC)."""
    kh, kw = kernel
    n, h, w, c = input_shape
    out_hw = grad.shape[1:3]
    whole = out_hw[0] * kh == h and out_hw[1] * kw == w  # every element lies in a window
    grad_x = (np.empty if whole else np.zeros)(input_shape, dtype=grad.dtype)
    tiles = _tiles(grad_x, kernel, out_hw)
    step = max(1, CHUNK_BYTES // max(1, h * w * c * grad.itemsize))
    hit = np.empty((min(step, n), *argmax.shape[1:]), dtype=bool)
    for start in range(0, n, step):
        stop = min(n, start + step)
        chosen, hit_now = argmax[start:stop], hit[: stop - start]
        for offset in range(kh * kw):
            np.equal(chosen, offset, out=hit_now)
            target = tiles[start:stop, :, offset // kw, :, offset % kw]
            select_grad_into(target, hit_now, grad[start:stop])  # not a product: inf * 0
    return grad_x


class AvgPool2d(Function):
    """Mean over each (kh, kw) window; padding counts as zeros in the mean (PyTorch's default).

    Local derivative: 1 / (kh kw) for every element of a window, padding included; overlapping
    windows add up. Shape: -> (N, C, Ho, Wo).
    """
    torch_name = "AvgPool2D"
    owns_grads = True

    saves_inputs = False

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0)):
        out_hw = _check_pool("avg_pool2d", x, kernel, stride, padding)
        ctx.geometry = (x.shape, None, out_hw, kernel, stride, padding)
        scale = np.asarray([1.0 / (kernel[0] * kernel[1])], dtype=x.dtype)
        if _use_kernels(x):
            x_nhwc = np.ascontiguousarray(nhwc(x))
            out = np.empty((x.shape[0], *out_hw, x.shape[1]), dtype=x.dtype)
            _by_images(x.shape[0], x_nhwc[0:1].nbytes, lambda lo, hi: pool_kernels.avg_pool_forward(
                x_nhwc[lo:hi], *kernel, *stride, *padding, scale, out[lo:hi]))
            return nchw(out)
        x_padded = pad_hw(nhwc(x), padding)
        out = None
        for i, j in kernel_offsets(kernel):
            window = x_padded[window_index(i, j, out_hw, stride, (1, 1))]
            out = window.copy() if out is None else np.add(out, window, out=out)
        out *= np.asarray(1.0 / (kernel[0] * kernel[1]), dtype=out.dtype)
        ctx.geometry = (x.shape, x_padded.shape, out_hw, kernel, stride, padding)
        return nchw(out)

    @staticmethod
    def backward(ctx, grad):
        # every element of a window gets grad / (kh * kw)
        (n, c, h, w), padded_shape, out_hw, kernel, stride, padding = ctx.geometry
        if padded_shape is None:  # the forward ran the kernel
            scale = np.asarray([1.0 / (kernel[0] * kernel[1])], dtype=grad.dtype)
            grad_x = np.empty((n, h, w, c), dtype=grad.dtype)
            grad_rows = np.ascontiguousarray(nhwc(grad))
            _by_images(n, h * w * c * grad.itemsize, lambda lo, hi: pool_kernels.avg_pool_backward(
                grad_rows[lo:hi], *kernel, *stride, *padding, scale, grad_x[lo:hi]))
            return (nchw(grad_x),)
        share = nhwc(grad) * np.asarray(1.0 / (kernel[0] * kernel[1]), dtype=grad.dtype)
        grad_padded = np.zeros(padded_shape, dtype=grad.dtype)
        for i, j in kernel_offsets(kernel):
            grad_padded[window_index(i, j, out_hw, stride, (1, 1))] += share
        ph, pw = padding
        return (nchw(grad_padded[:, ph : ph + h, pw : pw + w]),)

    @staticmethod
    def backward_graph(ctx, grad):
        # the same spreading as backward, as recorded scatters (one per kernel offset): linear
        # in grad, constant in x, so differentiable to any order
        (n, c, h, w), _, (ho, wo), kernel, stride, padding = ctx.geometry
        share = grad * np.asarray(1.0 / (kernel[0] * kernel[1]), dtype=grad.dtype)
        padded_nchw = (n, c, h + 2 * padding[0], w + 2 * padding[1])
        total = None
        for i, j in kernel_offsets(kernel):
            index = (slice(None), slice(None), slice(i, i + stride[0] * (ho - 1) + 1, stride[0]),
                     slice(j, j + stride[1] * (wo - 1) + 1, stride[1]))
            spread = ScatterAdd.apply(share, padded_nchw, index, True)
            total = spread if total is None else total + spread
        ph, pw = padding
        cropped = GetItem.apply(total, (slice(None), slice(None), slice(ph, ph + h),
                                        slice(pw, pw + w)))
        # torch's avg_pool2d_backward reads x (derivative 0): linked to it, zeros not None
        return (linked_to(cropped, ctx.inputs[0]),)
