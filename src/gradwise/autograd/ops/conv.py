"""2-D convolution and pooling over NCHW tensors, computed channels-last (NHWC) inside.

Why channels-last: with the channels innermost, every kernel offset of a window is a run of C
contiguous numbers, so building the im2col matrix is one fast copy, the matmul result
``(N*Ho*Wo, C_out)`` already *is* the NHWC output, and the next op can read it without another
copy. The ops take and return NCHW tensors, as PyTorch does; the returned array is an NCHW
*view* of NHWC memory (``out.transpose(0, 3, 1, 2)``), so element-wise ops and pooling keep that
layout and the next convolution's "transpose to NHWC" costs nothing.

Conv2d, forward: im2col ``cols[n, y, x, i, j, c] = x_padded[n, y*s + i*d, x*s + j*d, c]``, one
row per output pixel, then ``cols @ W + b`` with W reshaped to ``(kh*kw*C_in, C_out)``. The copy,
the matmul and the bias run a few images at a time (about ``_CHUNK_BYTES`` of rows) so that the
chunk just written is still in cache when the next step reads it.

Conv2d, backward: ``dW = cols^T @ dY``, cols rebuilt chunk by chunk (kept from the forward only
when the whole batch's rows are small, ``_WHOLE_BATCH_BYTES``: a buffer of kh*kw times the
input's size written to memory and read back later costs more than rebuilding it in cache);
``db = 1^T dY`` (a matrix-vector product); and for the input, one matmul ``dY @ W^T`` per chunk
gives, for every output pixel, the (kh, kw, C) numbers it sends back, and each kernel offset's
block is added into the input gradient at that offset's window, clipped to the unpadded input
(col2im without a padded buffer). The input gradient is computed only when the input needs one:
the first layer's data does not.

Pooling: the window at kernel offset (i, j) over all outputs is the strided slice
``x_padded[:, i::s, j::s]`` (cut to the output size), so max pooling is ``kh*kw`` element-wise
maxima of slices and average pooling is their sum; no index arrays, any stride and padding.
Max pooling with stride == kernel and no padding (the usual ``max_pool2d(x, 2)``) takes a fast
path: the windows tile the input, the forward records each window's argmax offset in one byte,
and the backward writes the gradient through it (no comparisons against the input, no zeroed
buffer when the windows cover the input).
Max-pool gradient ties: when several elements of a window equal its maximum, the whole gradient
goes to the first of them in row-major order (lowest row, then lowest column), which is the
element PyTorch's CPU kernel picks. A NaN in a window makes that window's output NaN (as in
PyTorch); which element of such a window gets its gradient is unspecified (PyTorch: the last
NaN).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from gradwise.autograd.function import Function

Pair = tuple[int, int]

#: bytes of im2col rows handled per chunk: small enough to stay in cache (L2) between the copy
#: and the matmul (measured on the benchmark CNN: 1 MiB beat 4 MiB by 5-10% in every pass)
_CHUNK_BYTES = 1 << 20
#: ... unless the whole batch's rows fit in this many bytes: then they are built in one piece and
#: the forward keeps them for the weight gradient (the first layer of the benchmark CNN: 3.6 MB)
_WHOLE_BATCH_BYTES = 4 << 20


def pair(op: str, name: str, value: Any, minimum: int) -> Pair:
    """``value`` (an int or a pair of ints) as a pair, each at least ``minimum``."""
    if isinstance(value, int | np.integer):
        values: tuple[Any, ...] = (value, value)
    elif isinstance(value, tuple | list) and len(value) == 2:
        values = tuple(value)
    else:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return int(values[0]), int(values[1])


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length along one axis (PyTorch's formula, floor mode)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _check_4d(op: str, x: np.ndarray) -> None:
    if x.ndim != 4:
        hint = "; add a batch axis with x.unsqueeze(0)" if x.ndim == 3 else ""
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {x.shape}{hint}")


def _check_window_fits(
    op: str, shape: tuple[int, ...], kernel: Pair, padding: Pair, dilation: Pair
) -> None:
    padded = (shape[2] + 2 * padding[0], shape[3] + 2 * padding[1])
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    if span[0] > padded[0] or span[1] > padded[1]:
        dilated = f" (dilated to {span})" if dilation != (1, 1) else ""
        raise ValueError(
            f"{op}: kernel {kernel}{dilated} is larger than the padded input {padded} "
            f"(input shape {shape}, padding {padding})"
        )


def _pad_hw(x: np.ndarray, padding: Pair, value: float = 0.0) -> np.ndarray:
    """Pad axes 1 and 2 of an NHWC array (a fresh contiguous array; ``x`` itself if no padding)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, h, w, c = x.shape
    out = np.empty((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
    if value == 0.0:
        # zero only the border: the interior is overwritten right after
        out[:, :ph] = 0
        out[:, h + ph :] = 0
        out[:, ph : h + ph, :pw] = 0
        out[:, ph : h + ph, w + pw :] = 0
    else:
        out.fill(value)
    out[:, ph : h + ph, pw : w + pw] = x
    return out


def _window(i: int, j: int, out_hw: Pair, stride: Pair, dilation: Pair) -> tuple[slice, ...]:
    """Index of the NHWC elements that kernel offset (i, j) reads, for every output pixel."""
    top, left = i * dilation[0], j * dilation[1]
    rows = slice(top, top + stride[0] * (out_hw[0] - 1) + 1, stride[0])
    cols = slice(left, left + stride[1] * (out_hw[1] - 1) + 1, stride[1])
    return (slice(None), rows, cols, slice(None))


def _images_per_chunk(n: int, bytes_per_image: int) -> int:
    """How many of ``n`` images to process at a time (see ``_CHUNK_BYTES``)."""
    if n * bytes_per_image <= _WHOLE_BATCH_BYTES:
        return n
    return max(1, _CHUNK_BYTES // max(1, bytes_per_image))


def _nchw(x_nhwc: np.ndarray) -> np.ndarray:
    return x_nhwc.transpose(0, 3, 1, 2)


def _nhwc(x_nchw: np.ndarray) -> np.ndarray:
    return x_nchw.transpose(0, 2, 3, 1)


class Conv2d(Function):
    """Cross-correlation of an (N, C_in, H, W) input with (C_out, C_in, kh, kw) weights."""
    owns_grads = True

    saves_inputs = True

    tensor_args = (0, 1, 2)

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
        _check_conv(x, weight, bias, padding, dilation)
        n, c, h, w = x.shape
        c_out, _, kh, kw = weight.shape
        out_hw = (
            output_size(h, kh, stride[0], padding[0], dilation[0]),
            output_size(w, kw, stride[1], padding[1], dilation[1]),
        )
        pixels = out_hw[0] * out_hw[1]
        x_padded = _pad_hw(_nhwc(x), padding)  # (N, Hp, Wp, C)
        w_matrix = weight.transpose(2, 3, 1, 0).reshape(kh * kw * c, c_out)  # (kh*kw*C, C_out)
        out = np.empty((n * pixels, c_out), dtype=x.dtype)  # NHWC rows
        start, stop, cols = 0, 0, None
        for start, stop, cols in _im2col_chunks(x_padded, (kh, kw), out_hw, stride, dilation):
            _matmul_add_bias(cols, w_matrix, bias, out[start * pixels : stop * pixels])
        # Unless the whole batch was one chunk, backward rebuilds the im2col rows chunk by chunk
        # instead of keeping them: they are kh*kw times the input's size, and a fresh buffer
        # that large costs more in page faults than the copy that recomputes it.
        ctx.cols = cols if start == 0 and stop == n else None
        ctx.x_padded, ctx.weight, ctx.has_bias = x_padded, weight, bias is not None
        ctx.geometry = (x.shape, out_hw, stride, padding, dilation)
        return _nchw(out.reshape(n, out_hw[0], out_hw[1], c_out))

    @staticmethod
    def backward(ctx, grad):
        (n, c, h, w), out_hw, stride, padding, dilation = ctx.geometry
        weight = ctx.weight
        c_out, _, kh, kw = weight.shape
        pixels = out_hw[0] * out_hw[1]
        grad_rows = np.ascontiguousarray(_nhwc(grad)).reshape(-1, c_out)  # (N*Ho*Wo, C_out)
        needs = ctx.needs_input_grad
        grad_x = grad_w = grad_b = None
        if needs[1]:
            # dL/dW[o, c, i, j] = sum over pixels of cols[.., i, j, c] * dY[.., o]
            if ctx.cols is not None:
                grad_w_matrix = ctx.cols.T @ grad_rows  # (kh*kw*C, C_out)
            else:
                grad_w_matrix = np.zeros((kh * kw * c, c_out), dtype=grad_rows.dtype)
                chunks = _im2col_chunks(ctx.x_padded, (kh, kw), out_hw, stride, dilation)
                for start, stop, cols in chunks:
                    grad_w_matrix += cols.T @ grad_rows[start * pixels : stop * pixels]
            grad_w = np.ascontiguousarray(
                grad_w_matrix.reshape(kh, kw, c, c_out).transpose(3, 2, 0, 1)
            )
        if ctx.has_bias and needs[2]:
            # a matrix-vector product: 3-4x faster than sum(axis=0), and more accurate
            grad_b = np.ones(grad_rows.shape[0], dtype=grad_rows.dtype) @ grad_rows
        if needs[0]:
            grad_x = _conv_input_grad(grad_rows, weight, ctx.geometry)
        if ctx.has_bias:
            return grad_x, grad_w, grad_b
        return grad_x, grad_w


def _matmul_add_bias(
    cols: np.ndarray, w_matrix: np.ndarray, bias: np.ndarray | None, out: np.ndarray
) -> None:
    """``out = cols @ w_matrix + bias`` in blocks of rows, each block's bias added while the
    block is still in cache (a separate pass over the first layer's 12.8 MB output cost 0.8 ms;
    block by block the bias is almost free)."""
    step = max(1, _CHUNK_BYTES // 4 // (out.shape[1] * out.itemsize))
    for start in range(0, cols.shape[0], step):
        block = out[start : start + step]
        np.matmul(cols[start : start + step], w_matrix, out=block)
        if bias is not None:
            block += bias


def _im2col_chunks(
    x_padded: np.ndarray, kernel: Pair, out_hw: Pair, stride: Pair, dilation: Pair
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (start, stop, cols) over runs of images; cols is (images*Ho*Wo, kh*kw*C).

    ``cols[row of (n, y, x), (i, j, c)] = x_padded[n, y*s + i*d, x*s + j*d, c]``. One buffer of
    about ``_CHUNK_BYTES`` is reused for every chunk, so it stays in cache for the matmul that
    reads it; the caller must use each chunk before asking for the next.
    """
    n, c = x_padded.shape[0], x_padded.shape[3]
    k = kernel[0] * kernel[1] * c
    pixels = out_hw[0] * out_hw[1]
    windows = _windows(x_padded, kernel, out_hw, stride, dilation)  # strided view
    step = _images_per_chunk(n, pixels * k * x_padded.itemsize)
    buffer = np.empty((min(step, n), out_hw[0], out_hw[1], kernel[0], kernel[1], c),
                      dtype=x_padded.dtype)
    for start in range(0, n, step):
        stop = min(n, start + step)
        cols = buffer[: stop - start]
        np.copyto(cols, windows[start:stop])
        yield start, stop, cols.reshape(-1, k)


def _windows(
    x_padded: np.ndarray, kernel: Pair, out_hw: Pair, stride: Pair, dilation: Pair
) -> np.ndarray:
    """Strided view (N, Ho, Wo, kh, kw, C) of every window of an NHWC array; nothing is copied."""
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    view = np.lib.stride_tricks.sliding_window_view(x_padded, span, axis=(1, 2))
    # (N, Hp-span+1, Wp-span+1, C, span_h, span_w) -> pick strides, dilation, output size
    view = view[
        :,
        : stride[0] * (out_hw[0] - 1) + 1 : stride[0],
        : stride[1] * (out_hw[1] - 1) + 1 : stride[1],
        :,
        :: dilation[0],
        :: dilation[1],
    ]
    return view.transpose(0, 1, 2, 4, 5, 3)


def _conv_input_grad(grad_rows: np.ndarray, weight: np.ndarray, geometry: tuple) -> np.ndarray:
    """dL/dx: one matmul ``dY @ W^T`` per chunk of images, then col2im into the input's shape.

    Row ``(n, y, x)`` of ``dY @ W^T`` holds, for every kernel offset (i, j), the C numbers that
    flow back to input pixel ``(y*s + i*d - p, x*s + j*d - p)``; each offset's block is added
    into the input gradient at that offset's window, clipped to the unpadded input (no padded
    buffer, and the result is contiguous NHWC). With stride 1 and "same" padding the centre
    offset covers the whole input, so it is copied in first instead of zero-filling.
    """
    (n, c, h, w), out_hw, stride, padding, dilation = geometry
    c_out, _, kh, kw = weight.shape
    pixels = out_hw[0] * out_hw[1]
    w_rows = weight.transpose(0, 2, 3, 1).reshape(c_out, kh * kw * c)  # (C_out, kh*kw*C)
    targets = []  # (i, j, output pixels, input pixels they reach, whether that is all of them)
    for i, j in _offsets((kh, kw)):
        rows = _clip(out_hw[0], h, i * dilation[0] - padding[0], stride[0])
        cols = _clip(out_hw[1], w, j * dilation[1] - padding[1], stride[1])
        if rows is not None and cols is not None:
            targets.append(
                (i, j, (rows[0], cols[0]), (rows[1], cols[1]), rows[2] and cols[2])
            )
    # an offset that covers everything goes first and is copied; the others are added
    targets.sort(key=lambda target: not target[-1])
    full_cover = bool(targets) and targets[0][-1]
    grad_x = (np.empty if full_cover else np.zeros)((n, h, w, c), dtype=grad_rows.dtype)
    step = _images_per_chunk(n, pixels * kh * kw * c * grad_rows.itemsize)
    buffer = np.empty((min(step, n) * pixels, kh * kw * c), dtype=grad_rows.dtype)
    for start in range(0, n, step):
        stop = min(n, start + step)
        parts = buffer[: (stop - start) * pixels]
        np.matmul(grad_rows[start * pixels : stop * pixels], w_rows, out=parts)
        parts = parts.reshape(stop - start, *out_hw, kh, kw, c)
        image = grad_x[start:stop]
        for number, (i, j, (out_y, out_x), (in_y, in_x), _) in enumerate(targets):
            source = parts[:, out_y, out_x, i, j]  # (images, rows, cols, C)
            if number == 0 and full_cover:
                np.copyto(image, source)
            else:
                image[:, in_y, in_x] += source
    return _nchw(grad_x)


def _clip(out_size: int, in_size: int, first: int, stride: int) -> tuple[slice, slice, bool] | None:
    """Output positions whose input position ``first + y*stride`` lies inside ``[0, in_size)``.

    Returns (output slice, input slice, whether the input slice is all of the axis), or None
    when no output position reads inside the input (the offset only ever sees padding).
    """
    low = max(0, -(first // stride))  # ceil(-first / stride)
    high = min(out_size - 1, (in_size - 1 - first) // stride)
    if low > high:
        return None
    begin = first + low * stride
    end = first + high * stride + 1
    covers = stride == 1 and begin == 0 and end == in_size
    return slice(low, high + 1), slice(begin, end, stride), covers


def _check_conv(x, weight, bias, padding: Pair, dilation: Pair) -> None:
    _check_4d("conv2d", x)
    if weight.ndim != 4:
        raise ValueError(
            f"conv2d: weight must be 4-D (C_out, C_in, kh, kw), got shape {weight.shape}"
        )
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"conv2d: input has {x.shape[1]} channels but weight expects {weight.shape[1]} "
            f"(weight shape {weight.shape})"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(
            f"conv2d: bias of shape {bias.shape} does not fit weight {weight.shape} "
            f"(expected ({weight.shape[0]},))"
        )
    if x.dtype != weight.dtype:
        raise TypeError(
            f"conv2d: input dtype {x.dtype} and weight dtype {weight.dtype} differ; "
            "cast one of them (e.g. x.float())"
        )
    _check_window_fits("conv2d", x.shape, weight.shape[2:], padding, dilation)


def _check_pool(op: str, x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    """Validate a pooling call; return the output (Ho, Wo)."""
    _check_4d(op, x)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"{op}: padding {padding} must be at most half the kernel {kernel} "
            "(a window could otherwise see only padding)"
        )
    _check_window_fits(op, x.shape, kernel, padding, (1, 1))
    return (
        output_size(x.shape[2], kernel[0], stride[0], padding[0]),
        output_size(x.shape[3], kernel[1], stride[1], padding[1]),
    )


def _offsets(kernel: Pair) -> Iterator[tuple[int, int]]:
    """Kernel offsets in row-major order (the order that decides max-pool ties)."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            yield i, j


class MaxPool2d(Function):
    """Maximum over each (kh, kw) window of an (N, C, H, W) input; padding counts as -inf."""
    owns_grads = True

    saves_output = True

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0)):
        out_hw = _check_pool("max_pool2d", x, kernel, stride, padding)
        ctx.geometry = (x.shape, out_hw, kernel, stride, padding)
        if kernel == stride and padding == (0, 0):
            # the argmax is needed only when backward will run (not under no_grad)
            recording = any(ctx.needs_input_grad)
            out, ctx.argmax = _max_pool_tiles(_nhwc(x), kernel, out_hw, recording)
            return _nchw(out)
        x_padded = _pad_hw(_nhwc(x), padding, value=-np.inf)
        out = None
        for i, j in _offsets(kernel):
            window = x_padded[_window(i, j, out_hw, stride, (1, 1))]
            out = window.copy() if out is None else np.maximum(out, window, out=out)
        ctx.x_padded, ctx.out, ctx.argmax = x_padded, out, None
        return _nchw(out)

    @staticmethod
    def backward(ctx, grad):
        (n, c, h, w), out_hw, kernel, stride, padding = ctx.geometry
        grad = np.ascontiguousarray(_nhwc(grad))  # (N, Ho, Wo, C), like `out`
        if ctx.argmax is not None:
            return (_nchw(_max_pool_tiles_grad(grad, ctx.argmax, kernel, (n, h, w, c))),)
        x_padded, out = ctx.x_padded, ctx.out
        overlapping = stride[0] < kernel[0] or stride[1] < kernel[1]
        grad_padded = np.zeros(x_padded.shape, dtype=grad.dtype)
        # each window's gradient goes to its first maximum in row-major order (PyTorch's choice
        # in a tie): offsets are visited in that order and `taken` marks the windows served
        offsets = list(_offsets(kernel))
        hit = np.empty(out.shape, dtype=bool)
        taken = None
        for number, (i, j) in enumerate(offsets):
            index = _window(i, j, out_hw, stride, (1, 1))
            np.equal(x_padded[index], out, out=hit)
            if taken is not None:
                np.greater(hit, taken, out=hit)  # for booleans: hit and not taken
            if number + 1 < len(offsets):
                taken = hit.copy() if taken is None else np.logical_or(taken, hit, out=taken)
            if overlapping:
                grad_padded[index] += grad * hit
            else:  # each input element is in at most one window: write, don't add
                np.multiply(grad, hit, out=grad_padded[index])
        ph, pw = padding
        return (_nchw(grad_padded[:, ph : ph + h, pw : pw + w]),)


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
    step = max(1, _CHUNK_BYTES // max(1, x[0].nbytes))
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
    return out, argmax


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
    step = max(1, _CHUNK_BYTES // max(1, h * w * c * grad.itemsize))
    hit = np.empty((min(step, n), *argmax.shape[1:]), dtype=bool)
    for start in range(0, n, step):
        stop = min(n, start + step)
        chosen, hit_now = argmax[start:stop], hit[: stop - start]
        for offset in range(kh * kw):
            np.equal(chosen, offset, out=hit_now)
            target = tiles[start:stop, :, offset // kw, :, offset % kw]
            np.multiply(grad[start:stop], hit_now, out=target)
    return grad_x


class AvgPool2d(Function):
    """Mean over each (kh, kw) window; padding counts as zeros in the mean (PyTorch's default)."""
    owns_grads = True

    saves_inputs = False

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0)):
        out_hw = _check_pool("avg_pool2d", x, kernel, stride, padding)
        x_padded = _pad_hw(_nhwc(x), padding)
        out = None
        for i, j in _offsets(kernel):
            window = x_padded[_window(i, j, out_hw, stride, (1, 1))]
            out = window.copy() if out is None else np.add(out, window, out=out)
        out *= np.asarray(1.0 / (kernel[0] * kernel[1]), dtype=out.dtype)
        ctx.geometry = (x.shape, x_padded.shape, out_hw, kernel, stride, padding)
        return _nchw(out)

    @staticmethod
    def backward(ctx, grad):
        # every element of a window gets grad / (kh * kw)
        (n, c, h, w), padded_shape, out_hw, kernel, stride, padding = ctx.geometry
        share = _nhwc(grad) * np.asarray(1.0 / (kernel[0] * kernel[1]), dtype=grad.dtype)
        grad_padded = np.zeros(padded_shape, dtype=grad.dtype)
        for i, j in _offsets(kernel):
            grad_padded[_window(i, j, out_hw, stride, (1, 1))] += share
        ph, pw = padding
        return (_nchw(grad_padded[:, ph : ph + h, pw : pw + w]),)
