"""2-D convolution and pooling over NCHW tensors, computed channels-last (NHWC) inside.

Why channels-last: with the channels innermost, every kernel offset of a window is a run of C
contiguous numbers, so building the im2col matrix is one fast copy, the matmul result
``(N*Ho*Wo, C_out)`` already *is* the NHWC output, and the next op can read it without another
copy. The ops take and return NCHW tensors, as PyTorch does; the returned array is an NCHW
*view* of NHWC memory (``out.transpose(0, 3, 1, 2)``), so element-wise ops and pooling keep that
layout and the next convolution's "transpose to NHWC" costs nothing.

Conv2d, forward: im2col ``cols[n, y, x, i, j, c] = x_padded[n, y*s + i*d, x*s + j*d, c]``, one
row per output pixel, then ``cols @ W`` with W reshaped to ``(kh*kw*C_in, C_out)``. The copy and
the matmul run a few images at a time so that the chunk of ``cols`` just written is still in
cache when the matmul reads it.

Conv2d, backward: ``dW = cols^T @ dY``, cols rebuilt chunk by chunk (kept from the forward only
when the whole batch fit in one chunk: a fresh buffer of kh*kw times the input's size costs more
in page faults than the copy that rebuilds it); ``db = sum(dY)``; and
for the input, instead of a col2im scatter, one batched matmul gives ``dY @ W[i, j]^T`` for each
kernel offset as a contiguous block, which is added into a padded gradient buffer at that
offset's (strided) window. The input gradient is computed only when the input needs one: the
first layer's data does not.

Pooling: the window at kernel offset (i, j) over all outputs is the strided slice
``x_padded[:, i::s, j::s]`` (cut to the output size), so max pooling is ``kh*kw`` element-wise
maxima of slices and average pooling is their sum; no index arrays, any stride and padding.
Max-pool gradient ties: when several elements of a window equal its maximum, the whole gradient
goes to the first of them in row-major order (lowest row, then lowest column), which is the
element PyTorch's CPU kernel picks. A NaN in a window makes that window's output NaN (as in
PyTorch), but its gradient is not routed to the NaN.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from gradwise.autograd.function import Function

Pair = tuple[int, int]

#: bytes of im2col rows handled per chunk: small enough to stay in cache between copy and matmul
_CHUNK_BYTES = 4 << 20


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


def _chunks(n: int, bytes_per_image: int) -> Iterator[tuple[int, int]]:
    """Split ``range(n)`` images into runs of about ``_CHUNK_BYTES`` each."""
    step = max(1, _CHUNK_BYTES // max(1, bytes_per_image))
    for start in range(0, n, step):
        yield start, min(n, start + step)


def _nchw(x_nhwc: np.ndarray) -> np.ndarray:
    return x_nhwc.transpose(0, 3, 1, 2)


def _nhwc(x_nchw: np.ndarray) -> np.ndarray:
    return x_nchw.transpose(0, 2, 3, 1)


class Conv2d(Function):
    """Cross-correlation of an (N, C_in, H, W) input with (C_out, C_in, kh, kw) weights."""
    owns_grads = True

    saves_inputs = True

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
            np.matmul(cols, w_matrix, out=out[start * pixels : stop * pixels])
        if bias is not None:
            out += bias
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
            grad_b = grad_rows.sum(axis=0)
        if needs[0]:
            grad_x = _conv_input_grad(grad_rows, weight, ctx.geometry)
        if ctx.has_bias:
            return grad_x, grad_w, grad_b
        return grad_x, grad_w


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
    step = max(1, _CHUNK_BYTES // max(1, pixels * k * x_padded.itemsize))
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
    """dL/dx: for each kernel offset, dY @ W[i, j]^T added into that offset's input window."""
    (n, c, h, w), out_hw, stride, padding, dilation = geometry
    c_out, _, kh, kw = weight.shape
    pixels = out_hw[0] * out_hw[1]
    per_offset = weight.transpose(2, 3, 0, 1).reshape(kh * kw, c_out, c)  # W[i, j] as (C_out, C)
    grad_padded = np.zeros(
        (n, h + 2 * padding[0], w + 2 * padding[1], c), dtype=grad_rows.dtype
    )
    for start, stop in _chunks(n, pixels * kh * kw * c * grad_rows.itemsize):
        rows = grad_rows[start * pixels : stop * pixels]
        # (kh*kw, rows, C): one contiguous (Ho, Wo, C) block per offset and image
        parts = np.matmul(rows, per_offset).reshape(kh, kw, stop - start, *out_hw, c)
        target = grad_padded[start:stop]
        for i in range(kh):
            for j in range(kw):
                target[_window(i, j, out_hw, stride, dilation)] += parts[i, j]
    ph, pw = padding
    return _nchw(grad_padded[:, ph : ph + h, pw : pw + w])


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
        x_padded = _pad_hw(_nhwc(x), padding, value=-np.inf)
        out = None
        for i, j in _offsets(kernel):
            window = x_padded[_window(i, j, out_hw, stride, (1, 1))]
            out = window.copy() if out is None else np.maximum(out, window, out=out)
        ctx.x_padded, ctx.out = x_padded, out
        ctx.geometry = (x.shape, out_hw, kernel, stride, padding)
        return _nchw(out)

    @staticmethod
    def backward(ctx, grad):
        (n, c, h, w), out_hw, kernel, stride, padding = ctx.geometry
        x_padded, out = ctx.x_padded, ctx.out
        overlapping = stride[0] < kernel[0] or stride[1] < kernel[1]
        grad = np.ascontiguousarray(_nhwc(grad))  # (N, Ho, Wo, C), like `out`
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
