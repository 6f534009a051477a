"""2-D convolution over NCHW tensors, computed channels-last (NHWC) inside.

Why channels-last: with the channels innermost, every kernel offset of a window is a run of C
contiguous numbers, so building the im2col matrix is one fast copy, the matmul result
``(N*Ho*Wo, C_out)`` already *is* the NHWC output, and the next op can read it without another
copy. The ops take and return NCHW tensors, as PyTorch does; the returned array is (except
for the few-channel layers below) an NCHW *view* of NHWC memory (``out.transpose(0, 3, 1,
2)``), so element-wise ops and pooling keep that layout and the next convolution's "transpose
to NHWC" costs nothing.

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

Threads (issue 14): with ``gw.get_num_threads() > 1`` and at least ``_MIN_PART_MACS``
multiply-adds per part, the forward (padding copy, im2col, products, bias) and the backward (the
three gradients) run over parts of the batch in a batch-parallel region (``kernels/_threads.py``:
one part per thread, BLAS on 1 thread inside). Each part owns whole images: its chunks, its
rows of the output and of the input gradient, and its own partial sums of the weight and bias
gradients, which are added in part order at the end. Results therefore match the 1-thread run
within float rounding (the sums' order, and OpenBLAS's products, which differ in the last bits
with the rows of a call and with its own thread count), not bit for bit.

Few channels, plane-major (``_planes_pay``: at most 4 input and 8 output channels, a first
layer such as CIFAR's 3 -> 6): the NHWC product above is then a tall, very thin GEMM that
OpenBLAS runs far below its speed, and its im2col rows are runs of only kw*C numbers. Such a
layer works on NCHW memory instead: im2col ``cols[n, (c, i, j), (y, x)]`` copies runs of Wo
numbers, the forward is one ``W (C_out, K) @ cols[n] (K, Ho*Wo)`` per image, written straight
into a contiguous NCHW output, the weight gradient ``cols[n] @ dY[n]^T`` per image (dY widened
as in ``_gemm_width``), and the input gradient (when the input needs one) ``W^T @ dY[n]`` with a
plane-major col2im. The choice depends on the channel counts only, so a ``no_grad`` forward
gives the recorded one's bits. CIFAR classic's first layer (batch 64, 1 thread, CPU time, load
1-5): forward 2.4 -> 1.7 ms and backward 2.2 -> 1.9 ms with OpenBLAS's Haswell kernels, 1.0 and
1.2-1.3 ms with SkylakeX's.

Tried for issue 14 (CIFAR classic, 1 thread, CPU time, load 1-9) and not kept:
- the plane-major path for CIFAR's second layer too (6 -> 16 channels, input gradient needed):
  forward 0.83-0.86 vs 0.55 ms, backward 2.16-2.19 vs 1.34 ms;
- keeping the first layer's whole-batch plane-major im2col (15 MB) for the weight gradient:
  forward 2.2 vs 1.75-1.85 ms, backward no faster (2.0 vs 1.9-2.2): rebuilding in cache is as
  cheap as reading the kept rows from memory; chunks of 256 KiB to 2 MiB measured the same;
- the weight gradient as ``dY (6, P) @ cols^T`` per image: 1.26 vs 0.89 ms for ``cols @ dY^T``
  with 8 rows of dY (Haswell kernels; 0.33 vs 0.40 ms with SkylakeX's, the one loss);
- the forward with W padded to 8 rows: 0.91 vs 0.90 ms (Haswell), 0.41 vs 0.32 (SkylakeX);
- in the NHWC path, numba kernels for the bias add (a win only for 6 columns: 0.08 vs 0.13 ms
  per MiB, equal or slower for 16-64) and for widening dY to 8 columns (0.139 vs 0.149 ms),
  the only 6-column layer now running plane-major; and the kernels listed in
  ``kernels/conv.py``.

The orientation of each product was measured (issue 14, 1 BLAS thread, CPU time, on the layer
shapes of benchmarks/cnn_epoch.py and cifar_step.py) and the one above kept: for the weight
gradient, ``cols^T @ dY`` against ``dY^T @ cols`` chunk by chunk was equal or faster on every
shape (32->64 channels 3x3: 9.4 vs 9.5 ms; 3->32 5x5: 3.7 vs 4.7 ms with OpenBLAS's own kernel
choice); ``W^T @ cols^T`` for the forward and ``W @ dY^T`` for the input gradient won on some
shapes under ``OPENBLAS_CORETYPE=Haswell`` (10.3 -> 8.8 ms) and lost without it (5.2 -> 5.8 ms),
and need transposed im2col rows (2.5 vs 1.4 ms to build) or a transposed col2im. The weight
matrices are rebuilt from the (C_out, C_in, kh, kw) weight at each call: a copy of at most a few
hundred KB, against the tens of MB the products read, so no cached pre-transposed weight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from gradwise.autograd.function import Function
from gradwise.autograd.kernels import KERNEL_DTYPES, _threads, jit_enabled, kernel_ready
from gradwise.autograd.kernels import conv as conv_kernels
from gradwise.autograd.ops._spatial import (
    CHUNK_BYTES,
    Pair,
    check_4d,
    check_window_fits,
    kernel_offsets,
    nchw,
    nhwc,
    output_size,
)
from gradwise.autograd.ops.reduce import Sum
from gradwise.autograd.ops.shape import GetItem, Pad, Reshape, Transpose

#: ... unless the whole batch's rows fit in this many bytes: then they are built in one piece and
#: the forward keeps them for the weight gradient (the first layer of the benchmark CNN: 3.6 MB)
_WHOLE_BATCH_BYTES = 4 << 20

def _use_kernels(x: np.ndarray) -> bool:
    """Whether the numba kernels run for this input (they are compiled for float32/64 only)."""
    return jit_enabled() and x.dtype in KERNEL_DTYPES and x.dtype.isnative


def _images_per_chunk(n: int, bytes_per_image: int) -> int:
    """How many of ``n`` images to process at a time (see ``CHUNK_BYTES``)."""
    if n * bytes_per_image <= _WHOLE_BATCH_BYTES:
        return max(n, 1)  # an empty batch still needs a step of at least 1
    return max(1, CHUNK_BYTES // max(1, bytes_per_image))


class Conv2d(Function):
    """Cross-correlation of an (N, C_in, H, W) input with (C_out, C_in, kh, kw) weights.

    Local derivative (see the module docstring for how it is computed): dL/dW = cols^T dY,
    dL/db = the sum of dY over N, H, W, and dL/dx = dY W^T scattered back over each window
    (col2im). Shape: -> (N, C_out, Ho, Wo) with PyTorch's output-size formula.
    """
    torch_name = "Convolution"
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
        ctx.weight, ctx.has_bias = weight, bias is not None
        ctx.geometry = (x.shape, out_hw, stride, padding, dilation)
        ctx.use_kernels = _use_kernels(x)
        ctx.planes = _planes_pay(c, c_out)
        if ctx.planes:
            return _planes_forward(ctx, x, weight, bias, out_hw)
        # (N, Hp, Wp, C), contiguous: im2col copies runs of kw*C numbers from it, and from an
        # NCHW array (a first layer's input) those runs would be strided gathers (3 input
        # channels 5x5, batch 64: forward 4.4 -> 2.4 ms); one copy of the input costs 1/(kh*kw)
        # of the im2col rows it feeds. The copy is made image by image inside the region.
        x_rows = nhwc(x)
        x_padded = _padded_buffer(x_rows, padding, (1, 2))
        ctx.x_padded = x_padded
        w_matrix = weight.transpose(2, 3, 1, 0).reshape(kh * kw * c, c_out)  # (kh*kw*C, C_out)
        width = _gemm_width(c_out)
        if width != c_out:  # zero columns up to a width OpenBLAS multiplies faster
            w_matrix = np.concatenate(
                [w_matrix, np.zeros((w_matrix.shape[0], width - c_out), dtype=w_matrix.dtype)],
                axis=1,
            )  # (kh*kw*C, width)
        out = np.empty((n * pixels, c_out), dtype=x.dtype)  # NHWC rows
        row_bytes = pixels * kh * kw * c * x.itemsize  # one image's im2col rows
        # Unless the whole batch's rows are small (_WHOLE_BATCH_BYTES), backward rebuilds them
        # chunk by chunk instead of keeping them: they are kh*kw times the input's size, and a
        # fresh buffer that large costs more in page faults than the copy that recomputes it.
        kept = (np.empty((n * pixels, kh * kw * c), dtype=x.dtype)
                if n * row_bytes <= _WHOLE_BATCH_BYTES else None)

        def forward_images(part: int, lo: int, hi: int) -> None:
            if x_padded is not x_rows:
                _pad_images(x_rows, padding, x_padded, lo, hi, (1, 2))
            for start, stop, cols in _im2col_chunks(x_padded, (kh, kw), out_hw, stride,
                                                    dilation, lo, hi, kept):
                _matmul_add_bias(cols, w_matrix, bias, out[start * pixels : stop * pixels])

        _threads.run_parts(forward_images, _image_ranges(n, pixels * kh * kw * c * c_out))
        ctx.cols = kept
        return nchw(out.reshape(n, out_hw[0], out_hw[1], c_out))

    @staticmethod
    def backward(ctx, grad):
        (n, c, h, w), out_hw, stride, padding, dilation = ctx.geometry
        weight = ctx.weight
        c_out, _, kh, kw = weight.shape
        pixels = out_hw[0] * out_hw[1]
        needs = ctx.needs_input_grad
        if ctx.planes:
            return _planes_backward(ctx, grad)
        grad_rows = np.ascontiguousarray(nhwc(grad)).reshape(
            int(np.prod(grad.shape, dtype=np.int64)) // max(c_out, 1), c_out)  # (N*Ho*Wo, C_out)
        width = _gemm_width(c_out)
        ranges = _image_ranges(n, pixels * kh * kw * c * c_out)
        grad_x = fill_input_grad = None
        if needs[0]:
            grad_x, fill_input_grad = _conv_input_grad_plan(grad_rows, weight, ctx.geometry,
                                                            ctx.use_kernels)

        need_b = ctx.has_bias and needs[2]
        k = kh * kw * c
        # images per chunk: the three gradients are formed chunk by chunk, so that dY's rows,
        # read by the weight-gradient product, the bias sum and the input-gradient product,
        # come from cache after the first (the first layer's backward read its 12.8 MB of dY
        # twice from memory: 2.1 ms at 1 and at 2 threads in the step)
        step = max(1, CHUNK_BYTES // max(1, pixels * k * grad_rows.itemsize))

        def backward_images(lo: int, hi: int) -> tuple[Any, Any]:
            total_w = np.zeros((k, width), dtype=grad_rows.dtype) if needs[1] else None
            total_b = np.zeros(c_out, dtype=grad_rows.dtype) if need_b else None
            ones = np.ones(min(step, max(hi - lo, 1)) * pixels, dtype=grad_rows.dtype)
            chunks: Iterator[tuple[int, int, Any]]
            if not needs[1]:
                chunks = ((start, min(hi, start + step), None) for start in range(lo, hi, step))
            elif ctx.cols is not None:  # the forward kept the whole batch's rows
                chunks = ((start, min(hi, start + step),
                           ctx.cols[start * pixels : min(hi, start + step) * pixels])
                          for start in range(lo, hi, step))
            else:
                chunks = _im2col_chunks(ctx.x_padded, (kh, kw), out_hw, stride, dilation, lo, hi)
            widened = None
            for start, stop, cols in chunks:
                rows = grad_rows[start * pixels : stop * pixels]
                if total_w is not None and cols is not None:
                    # dL/dW[o, c, i, j] = sum over pixels of cols[.., i, j, c] * dY[.., o]
                    widened = _widened(rows, width, widened)
                    total_w += cols.T @ widened  # (kh*kw*C, width)
                if total_b is not None:
                    # a matrix-vector product: 3-4x faster than sum(axis=0), and more accurate
                    total_b += ones[: rows.shape[0]] @ rows
                if fill_input_grad is not None:
                    fill_input_grad(start, stop)
            return total_w, total_b

        grad_w_matrix, grad_b = _summed_over_parts(ranges, backward_images)
        grad_w = None
        if grad_w_matrix is not None:
            grad_w = np.ascontiguousarray(
                grad_w_matrix[:, :c_out].reshape(kh, kw, c, c_out).transpose(3, 2, 0, 1)
            )
        if grad_x is not None:
            grad_x = nchw(grad_x)
        if ctx.has_bias:
            return grad_x, grad_w, grad_b
        return grad_x, grad_w

    @staticmethod
    def backward_graph(ctx, grad):
        # the same three gradients as backward, each written as a convolution so that it can be
        # differentiated again (second and higher derivatives; see _conv_*_grad_graph)
        x, weight = ctx.inputs[0], ctx.inputs[1]
        needs = ctx.needs_input_grad
        grad_x = _conv_input_grad_graph(grad, weight, ctx.geometry) if needs[0] else None
        grad_w = _conv_weight_grad_graph(grad, x, weight.shape, ctx.geometry) if needs[1] else None
        if ctx.has_bias:
            return grad_x, grad_w, (Sum.apply(grad, (0, 2, 3)) if needs[2] else None)
        return grad_x, grad_w


def _conv_weight_grad_graph(grad, x, weight_shape: tuple, geometry: tuple):
    """dL/dW as a recorded convolution: the input's batch axis is the channel axis summed over.

    ``dW[o, c, i, j] = sum_{n, y, x} x_pad[n, c, y*s + i*d, x*s + j*d] dY[n, o, y, x]``, which is
    conv2d of x^T (C, N, H, W) with dY^T (O, N, Ho, Wo) as the kernel, stride and dilation
    swapped; its output can be larger than (kh, kw) when the last rows/columns of the input
    are never read, and is cut to it. Shape: -> (C_out, C_in, kh, kw).
    """
    _, _, stride, padding, dilation = geometry
    kh, kw = weight_shape[2:]
    swapped = Conv2d.apply(
        Transpose.apply(x, (1, 0, 2, 3)),  # (C, N, H, W)
        Transpose.apply(grad, (1, 0, 2, 3)),  # (O, N, Ho, Wo)
        None, dilation, padding, stride,
    )  # (C, O, >= kh, >= kw)
    return Transpose.apply(GetItem.apply(swapped, (slice(None), slice(None), slice(0, kh),
                                                   slice(0, kw))), (1, 0, 2, 3))


def _conv_input_grad_graph(grad, weight, geometry: tuple):
    """dL/dx as a recorded transposed convolution (what ``_conv_input_grad_plan`` computes).

    dY is spread out by the stride (zeros between its pixels), padded by the kernel's dilated
    extent, and convolved at stride 1 with the flipped kernel, in/out channels swapped; that
    gives the gradient of the *padded* input, which is cut to the input. Shape: -> (N, C, H, W).
    """
    (n, c, h, w), (ho, wo), stride, padding, dilation = geometry
    c_out, _, kh, kw = weight.shape
    spread = grad
    if stride != (1, 1):
        spread = Reshape.apply(grad, (n, c_out, ho, 1, wo, 1))
        spread = Pad.apply(spread, ((0, 0), (0, 0), (0, 0), (0, stride[0] - 1), (0, 0),
                                    (0, stride[1] - 1)), 0.0)
        spread = Reshape.apply(spread, (n, c_out, ho * stride[0], wo * stride[1]))
        spread = GetItem.apply(spread, (slice(None), slice(None),
                                        slice(0, (ho - 1) * stride[0] + 1),
                                        slice(0, (wo - 1) * stride[1] + 1)))
    reach = (dilation[0] * (kh - 1), dilation[1] * (kw - 1))
    # input rows/columns past the last window are never read: their gradient is 0
    unread = (h + 2 * padding[0] - ((ho - 1) * stride[0] + reach[0] + 1),
              w + 2 * padding[1] - ((wo - 1) * stride[1] + reach[1] + 1))
    spread = Pad.apply(spread, ((0, 0), (0, 0), (reach[0], reach[0] + unread[0]),
                                (reach[1], reach[1] + unread[1])), 0.0)
    backwards = slice(None, None, -1)
    flipped = Transpose.apply(GetItem.apply(weight, (slice(None), slice(None), backwards,
                                                     backwards)), (1, 0, 2, 3))  # (C, O, kh, kw)
    padded = Conv2d.apply(spread, flipped, None, (1, 1), (0, 0), dilation)  # (N, C, H+2p, W+2p)
    return GetItem.apply(padded, (slice(None), slice(None), slice(padding[0], padding[0] + h),
                                  slice(padding[1], padding[1] + w)))


#: the plane-major path (``_planes_forward``) runs for layers with at most this many input and
#: output channels (a first layer: CIFAR's 3 -> 6 channels)
_PLANES_MAX_IN, _PLANES_MAX_OUT = 4, 8


def _planes_pay(c_in: int, c_out: int) -> bool:
    """Whether a convolution runs plane-major (NCHW, ``W @ cols^T`` per image) instead of NHWC.

    For few input and output channels the NHWC product ``cols @ W`` is a tall, very thin GEMM
    (50176 x 75 by 75 x 6 for CIFAR's first layer) that OpenBLAS runs poorly even widened to 8
    columns, and its im2col rows are 5 runs of kw*C = 15 numbers each; plane-major, each image
    is one (C_out, K) x (K, Ho*Wo) product and its im2col copies runs of Wo numbers from the
    NCHW input. Measured (1 thread, CPU time, 3 -> 6 channels 5x5 32x32 batch 64, load ~1,
    OPENBLAS_CORETYPE=Haswell / unset): im2col 0.61 vs 0.87 ms (+ 0.16 ms NHWC copy), forward
    product 0.82 / 0.24 vs 0.71 / 0.71 ms (+ 0.29 ms cutting the 8 columns to 6 and adding
    the bias), weight-gradient product 1.27 / 0.47 vs 1.15 / 1.2 ms (+ 0.15 ms widening dY).
    The choice depends on the channel counts only, never on grad mode, so a ``no_grad``
    forward gives the recorded forward's bits; layers with more channels were not measured.
    """
    return c_in <= _PLANES_MAX_IN and c_out <= _PLANES_MAX_OUT


def _planes_chunks(
    x_padded: np.ndarray, kernel: Pair, out_hw: Pair, stride: Pair, dilation: Pair,
    lo: int = 0, hi: int | None = None, kept: np.ndarray | None = None,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (start, stop, cols) over runs of images ``lo..hi`` (default: all); cols is
    (images, C*kh*kw, Ho*Wo).

    ``cols[b, (c, i, j), (y, x)] = x_padded[start + b, c, y*s + i*d, x*s + j*d]`` from an NCHW
    array: the plane-major im2col, each copied run an output row of Wo numbers (with the numba
    kernels on, ``kernels/conv.py::im2col_planes`` copies them, 2x faster; this copy from a
    strided view is its reference). One buffer of about ``CHUNK_BYTES`` is reused (the caller
    uses each chunk before asking for the next); with ``kept`` (the whole batch's rows,
    (N, C*kh*kw, Ho*Wo), when they fit in ``_WHOLE_BATCH_BYTES``) the images' rows go there.
    """
    n, c = x_padded.shape[:2]
    hi = n if hi is None else hi
    k = c * kernel[0] * kernel[1]
    pixels = out_hw[0] * out_hw[1]
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    view = np.lib.stride_tricks.sliding_window_view(x_padded, span, axis=(2, 3))
    # (N, C, Hp-span+1, Wp-span+1, span_h, span_w) -> strides, dilation, output size, then
    # (N, C, kh, kw, Ho, Wo): the kernel offsets before the output pixels
    view = view[
        :, :,
        : stride[0] * (out_hw[0] - 1) + 1 : stride[0],
        : stride[1] * (out_hw[1] - 1) + 1 : stride[1],
        :: dilation[0],
        :: dilation[1],
    ].transpose(0, 1, 4, 5, 2, 3)
    if kept is not None:
        step = max(1, hi - lo)
        buffer = kept[lo:hi].reshape(hi - lo, c, kernel[0], kernel[1], *out_hw)
    else:
        step = _images_per_chunk(n, pixels * k * x_padded.itemsize)
        buffer = np.empty((max(0, min(step, hi - lo)), c, kernel[0], kernel[1], *out_hw),
                          dtype=x_padded.dtype)
    use_kernel = kernel_ready(x_padded, buffer)
    for start in range(lo, hi, step):
        stop = min(hi, start + step)
        cols = buffer[: stop - start]
        if use_kernel:
            conv_kernels.im2col_planes(x_padded, start, *stride, *dilation, cols)
        else:
            np.copyto(cols, view[start:stop])
        yield start, stop, cols.reshape(stop - start, k, pixels)


def _planes_forward(ctx, x, weight, bias, out_hw: Pair) -> np.ndarray:
    """Conv2d's forward plane-major (see ``_planes_pay``): ``out[b] = W (C_out, K) @ cols[b]
    (K, Ho*Wo) + bias``, K ordered (c, i, j) as the weight itself, so the weight needs no
    reshuffle. Returns a contiguous NCHW array (N, C_out, Ho, Wo)."""
    (n, c, h, w), _, stride, padding, dilation = ctx.geometry
    c_out, _, kh, kw = weight.shape
    x_padded = _padded_buffer(x, padding, (2, 3))
    ctx.x_padded = x_padded  # (N, C, Hp, Wp)
    w_matrix = weight.reshape(c_out, c * kh * kw)  # (C_out, K)
    pixels = out_hw[0] * out_hw[1]
    out = np.empty((n, c_out, pixels), dtype=x.dtype)  # (N, C_out, Ho*Wo)
    row_bytes = c * kh * kw * pixels * x.itemsize  # one image's im2col rows
    kept = (np.empty((n, c * kh * kw, pixels), dtype=x.dtype)
            if n * row_bytes <= _WHOLE_BATCH_BYTES else None)

    def forward_images(part: int, lo: int, hi: int) -> None:
        if x_padded is not x:
            _pad_images(x, padding, x_padded, lo, hi, (2, 3))
        for start, stop, cols in _planes_chunks(x_padded, (kh, kw), out_hw, stride, dilation,
                                                lo, hi, kept):
            block = out[start:stop]
            np.matmul(w_matrix, cols, out=block)
            if bias is not None:
                block += bias[:, None]  # rows of Ho*Wo numbers: one pass while still in cache

    _threads.run_parts(forward_images, _image_ranges(n, c * kh * kw * pixels * c_out))
    ctx.cols = kept
    return out.reshape(n, c_out, *out_hw)


def _planes_backward(ctx, grad):
    """Conv2d's three gradients plane-major (see ``_planes_pay``).

    ``dW^T (K, C_out) = sum over images b of cols[b] (K, Ho*Wo) @ dY[b]^T``, the im2col
    chunks rebuilt as in the forward; ``db = dY`` summed over images and pixels; ``dx`` (only
    when the input needs it) by ``_planes_input_grad_plan``. Each part of the batch-parallel
    region sums its own images; the parts are added at the end.
    """
    (n, c, h, w), out_hw, stride, _, dilation = ctx.geometry
    c_out, _, kh, kw = ctx.weight.shape
    needs = ctx.needs_input_grad
    pixels = out_hw[0] * out_hw[1]
    planes = np.ascontiguousarray(grad).reshape(n, c_out, pixels)  # (N, C_out, Ho*Wo)
    # dY with zero rows up to _gemm_width: cols (K, P) @ dY^T (P, width) per image ran
    # 0.89 ms against 1.26 for dY (6, P) @ cols^T (CIFAR's first layer, Haswell kernels;
    # 0.40 against 0.33 with SkylakeX's)
    width = _gemm_width(c_out)
    ranges = _image_ranges(n, c * kh * kw * pixels * c_out)
    grad_x = fill_input_grad = None
    if needs[0]:
        grad_x, fill_input_grad = _planes_input_grad_plan(planes, ctx.weight, ctx.geometry)

    def backward_images(lo: int, hi: int) -> tuple[Any, Any]:
        total = total_b = None
        if needs[1]:
            wide = planes[lo:hi]
            if width != c_out:
                wide = np.zeros((hi - lo, width, pixels), dtype=planes.dtype)
                wide[:, :c_out] = planes[lo:hi]
            total = np.zeros((c * kh * kw, width), dtype=planes.dtype)  # (K, width)
            if ctx.cols is not None:
                chunks = iter([(lo, hi, ctx.cols[lo:hi])])
            else:
                chunks = _planes_chunks(ctx.x_padded, (kh, kw), out_hw, stride, dilation,
                                        lo, hi)
            for start, stop, cols in chunks:
                # (images, K, P) @ (images, P, width) -> (images, K, width), summed over images
                total += np.matmul(cols, wide[start - lo : stop - lo].transpose(0, 2, 1)).sum(
                    axis=0)
        if ctx.has_bias and needs[2]:
            # matrix-vector products (faster and more accurate than sum over a strided axis)
            total_b = np.ones(hi - lo, dtype=planes.dtype) @ (
                planes[lo:hi] @ np.ones(pixels, dtype=planes.dtype))
        if fill_input_grad is not None:
            fill_input_grad(lo, hi)
        return total, total_b

    grad_w, grad_b = _summed_over_parts(ranges, backward_images)
    if grad_w is not None:
        grad_w = np.ascontiguousarray(grad_w[:, :c_out].T).reshape(c_out, c, kh, kw)
    if ctx.has_bias:
        return grad_x, grad_w, grad_b
    return grad_x, grad_w


def _planes_input_grad_plan(
    planes: np.ndarray, weight: np.ndarray, geometry: tuple
) -> tuple[np.ndarray, Callable[[int, int], None]]:
    """dL/dx plane-major: ``W^T (K, C_out) @ dY[b] (C_out, Ho*Wo)`` per chunk of images gives,
    for every kernel offset (c, i, j), a plane of what flows back; col2im adds each offset's
    plane into the input gradient at its window (``_col2im_targets``: clipped to the unpadded
    input, a covering offset copied first), runs of Wo numbers on NCHW memory. The NumPy
    col2im of ``_conv_input_grad_plan`` in another layout; the offsets are added in the same
    order. Returns the input gradient (N, C, H, W), contiguous and not yet filled, and
    ``fill(lo, hi)``, which computes images ``lo..hi`` of it."""
    (n, c, h, w), out_hw, *_ = geometry
    c_out, _, kh, kw = weight.shape
    pixels = out_hw[0] * out_hw[1]
    w_columns = weight.reshape(c_out, c * kh * kw).T  # (K, C_out)
    targets = _col2im_targets(geometry, (kh, kw))
    full_cover = bool(targets) and targets[0][-1]
    grad_x = (np.empty if full_cover else np.zeros)((n, c, h, w), dtype=planes.dtype)
    step = _images_per_chunk(n, pixels * kh * kw * c * planes.itemsize)

    def fill(lo: int, hi: int) -> None:
        buffer = np.empty((min(step, hi - lo), c * kh * kw, pixels), dtype=planes.dtype)
        for start in range(lo, hi, step):
            stop = min(hi, start + step)
            parts = buffer[: stop - start]
            np.matmul(w_columns, planes[start:stop], out=parts)
            parts = parts.reshape(stop - start, c, kh, kw, *out_hw)  # (images, C, kh, kw, Ho, Wo)
            image = grad_x[start:stop]
            for number, (i, j, (out_y, out_x), (in_y, in_x), _) in enumerate(targets):
                source = parts[:, :, i, j, out_y, out_x]  # (images, C, rows, cols)
                if number == 0 and full_cover:
                    np.copyto(image, source)
                else:
                    image[:, :, in_y, in_x] += source

    return grad_x, fill


def _gemm_width(c_out: int) -> int:
    """How many output columns the convolution's products compute for ``c_out`` channels.

    OpenBLAS's sgemm multiplies an (M, K) by a (K, N) matrix slower for N = 3, 5, 6, 7 than for
    the next multiple of 4 (it works on tiles of 4 and 8 columns): (3136, 75) @ (75, N), 1
    thread, in us for N = 3..8: 52, 44, 61, 62, 80, 45 (Haswell kernels; 28, 19, 52, 54, 71, 45
    with SkylakeX's), and the same for the weight gradient's ``cols^T @ dY``. So a layer with
    that many output channels (the CIFAR tutorial net's 6) multiplies with zero columns added
    and drops them; 2 and 9-12 channels measured no gain from widening.
    """
    if c_out == 3:
        return 4
    if 5 <= c_out <= 7:
        return 8
    return c_out


def _widened(rows: np.ndarray, width: int, buffer: np.ndarray | None = None) -> np.ndarray:
    """``rows`` (M, C_out) with zero columns appended up to ``width`` (itself if already that
    wide); ``buffer`` (at least M rows, zeros past C_out) is reused when given."""
    m, c_out = rows.shape
    if width == c_out:
        return rows
    if buffer is None or buffer.shape[0] < m:
        buffer = np.zeros((m, width), dtype=rows.dtype)
    buffer = buffer[:m]
    buffer[:, :c_out] = rows
    return buffer


def _matmul_add_bias(
    cols: np.ndarray, w_matrix: np.ndarray, bias: np.ndarray | None, out: np.ndarray
) -> None:
    """``out = cols @ w_matrix + bias`` in blocks of rows, each block's bias added while the
    block is still in cache (a separate pass over the first layer's 12.8 MB output cost 0.8 ms;
    block by block the bias is almost free). ``w_matrix`` may be wider than ``out`` (zero
    columns, see ``_gemm_width``): then each block is computed into a scratch buffer and its
    first columns copied out."""
    c_out, width = out.shape[1], w_matrix.shape[1]
    step = max(1, CHUNK_BYTES // 4 // max(1, width * out.itemsize))  # width 0: no channels
    scratch = None if width == c_out else np.empty((min(step, cols.shape[0]), width), out.dtype)
    for start in range(0, cols.shape[0], step):
        block = out[start : start + step]
        if scratch is None:
            np.matmul(cols[start : start + step], w_matrix, out=block)
            if bias is not None:
                block += bias
            continue
        wide = scratch[: block.shape[0]]
        np.matmul(cols[start : start + step], w_matrix, out=wide)
        if bias is not None:
            np.add(wide[:, :c_out], bias, out=block)
        else:
            np.copyto(block, wide[:, :c_out])


def _im2col_chunks(
    x_padded: np.ndarray, kernel: Pair, out_hw: Pair, stride: Pair, dilation: Pair,
    lo: int = 0, hi: int | None = None, kept: np.ndarray | None = None,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (start, stop, cols) over runs of images ``lo..hi`` (default: all); cols is
    (images*Ho*Wo, kh*kw*C).

    ``cols[row of (n, y, x), (i, j, c)] = x_padded[n, y*s + i*d, x*s + j*d, c]``. One buffer of
    about ``CHUNK_BYTES`` is reused for every chunk, so it stays in cache for the matmul that
    reads it; the caller must use each chunk before asking for the next. With ``kept`` (the
    whole batch's rows, (N*Ho*Wo, kh*kw*C)) the images' rows are written there in one piece
    instead. (A numba im2col was measured against this copy from a strided view and lost: 2x
    slower on every benchmark shape, 1 thread; NumPy copies runs of C numbers as well as any
    loop does.)
    """
    n, c = x_padded.shape[0], x_padded.shape[3]
    hi = n if hi is None else hi
    k = kernel[0] * kernel[1] * c
    pixels = out_hw[0] * out_hw[1]
    windows = _windows(x_padded, kernel, out_hw, stride, dilation)  # strided view
    if kept is not None:
        if hi > lo:
            cols = kept[lo * pixels : hi * pixels].reshape(hi - lo, *out_hw, *kernel, c)
            np.copyto(cols, windows[lo:hi])
            yield lo, hi, kept[lo * pixels : hi * pixels]
        return
    step = _images_per_chunk(n, pixels * k * x_padded.itemsize)
    buffer = np.empty((max(0, min(step, hi - lo)), out_hw[0], out_hw[1], kernel[0], kernel[1],
                       c), dtype=x_padded.dtype)
    for start in range(lo, hi, step):
        stop = min(hi, start + step)
        cols = buffer[: stop - start]
        np.copyto(cols, windows[start:stop])
        # rows counted, not -1: with C = 0 (k = 0) reshape(-1, 0) is ambiguous (torch gives
        # an output of zeros / the bias there)
        yield start, stop, cols.reshape((stop - start) * pixels, k)


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


def _conv_input_grad_plan(
    grad_rows: np.ndarray, weight: np.ndarray, geometry: tuple, use_kernels: bool = False
) -> tuple[np.ndarray, Callable[[int, int], None]]:
    """dL/dx: one matmul ``dY @ W^T`` per chunk of images, then col2im into the input's shape.

    Returns the input gradient (N, H, W, C), contiguous NHWC and not yet filled, and
    ``fill(lo, hi)``, which computes images ``lo..hi`` of it (the batch-parallel region calls
    it once per part; each image depends on its own rows only, so the split changes no bit).

    Row ``(n, y, x)`` of ``dY @ W^T`` holds, for every kernel offset (i, j), the C numbers that
    flow back to input pixel ``(y*s + i*d - p, x*s + j*d - p)``; each offset's block is added
    into the input gradient at that offset's window, clipped to the unpadded input (no padded
    buffer). With stride 1 and "same" padding the centre offset covers the whole input, so it
    is copied in first instead of zero-filling. With ``use_kernels`` the numba ``col2im`` does
    the adding instead, offsets in the same order.
    """
    (n, c, h, w), out_hw, stride, padding, dilation = geometry
    c_out, _, kh, kw = weight.shape
    pixels = out_hw[0] * out_hw[1]
    w_rows = weight.transpose(0, 2, 3, 1).reshape(c_out, kh * kw * c)  # (C_out, kh*kw*C)
    targets = _col2im_targets(geometry, (kh, kw))
    full_cover = bool(targets) and targets[0][-1]
    order = None
    if use_kernels:  # col2im zeroes each image itself
        order = np.array([i * kw + j for i, j, *_ in targets], dtype=np.int64)
        full_cover = True
    grad_x = (np.empty if full_cover else np.zeros)((n, h, w, c), dtype=grad_rows.dtype)
    step = _images_per_chunk(n, pixels * kh * kw * c * grad_rows.itemsize)

    def fill(lo: int, hi: int) -> None:
        buffer = np.empty((min(step, hi - lo) * pixels, kh * kw * c), dtype=grad_rows.dtype)
        for start in range(lo, hi, step):
            stop = min(hi, start + step)
            parts = buffer[: (stop - start) * pixels]
            np.matmul(grad_rows[start * pixels : stop * pixels], w_rows, out=parts)
            parts = parts.reshape(stop - start, *out_hw, kh, kw, c)
            image = grad_x[start:stop]
            if order is not None:
                conv_kernels.col2im(parts, order, stride[0], stride[1], padding[0], padding[1],
                                    dilation[0], dilation[1], image)
                continue
            for number, (i, j, (out_y, out_x), (in_y, in_x), _) in enumerate(targets):
                source = parts[:, out_y, out_x, i, j]  # (images, rows, cols, C)
                if number == 0 and full_cover:
                    np.copyto(image, source)
                else:
                    image[:, in_y, in_x] += source

    return grad_x, fill


#: a batch-parallel region pays only from this many multiply-adds per part (forward and
#: backward each: waking a worker and holding BLAS cost ~40 us on the shared 2-core machine).
#: Measured (forward + backward, 2 threads against 1, idle moment, OPENBLAS_CORETYPE=Haswell):
#: conv 32->64 14x14 (3.6M per image) 0.94x at batch 2, 0.76x at 4, 0.68x at 8, 0.58x at 16;
#: conv 1->32 28x28 (0.23M per image, memory-bound) 1.79x at 8, 1.16x at 16, 1.07x at 32,
#: ~0.6x at 128 (forward, in the step)
_MIN_PART_MACS = 8_000_000


def _image_ranges(n: int, macs_per_image: int) -> list[tuple[int, int]]:
    """The (start, stop) image ranges a convolution splits its batch into (one: serial)."""
    return _threads.split(n, _threads.parts_for(n, macs_per_image, _MIN_PART_MACS))


def _summed_over_parts(ranges: list[tuple[int, int]],
                       body: Callable[[int, int], tuple[Any, Any]]) -> tuple[Any, Any]:
    """Run ``body(lo, hi) -> (weight-gradient sum, bias-gradient sum)`` (either may be None)
    for each range of images over a batch-parallel region and add the parts' sums in part
    order (``_threads.sum_parts``): the backward's batch sums, whatever the split."""
    partial: list[tuple[Any, Any]] = [(None, None)] * len(ranges)

    def work(part: int, lo: int, hi: int) -> None:
        partial[part] = body(lo, hi)

    _threads.run_parts(work, ranges)
    sums = []
    for column in zip(*partial, strict=True):
        sums.append(None if column[0] is None else _threads.sum_parts(list(column)))
    return sums[0], sums[1]


def _padded_buffer(x: np.ndarray, padding: Pair, axes: Pair) -> np.ndarray:
    """Where the padded, contiguous copy of ``x`` goes: ``x`` itself when it already is one (no
    padding, C-contiguous), else a fresh uninitialised array for :func:`_pad_images` to fill."""
    ph, pw = padding
    if not ph and not pw and x.flags.c_contiguous:
        return x
    shape = list(x.shape)
    shape[axes[0]] += 2 * ph
    shape[axes[1]] += 2 * pw
    return np.empty(shape, dtype=x.dtype)


def _pad_images(x: np.ndarray, padding: Pair, out: np.ndarray, lo: int, hi: int,
                axes: Pair) -> None:
    """``out[lo:hi]`` = images ``lo..hi`` of ``x`` with ``padding`` zeros around the spatial
    ``axes`` (1, 2 for NHWC; 2, 3 for NCHW); only the border is zeroed."""
    ph, pw = padding
    h, w = x.shape[axes[0]], x.shape[axes[1]]
    target = out[lo:hi]

    def index(rows: slice, cols: slice) -> tuple[slice, ...]:
        where = [slice(None)] * out.ndim
        where[axes[0]], where[axes[1]] = rows, cols
        return tuple(where)

    every = slice(None)
    middle = slice(ph, ph + h)
    if ph:
        target[index(slice(0, ph), every)] = 0
        target[index(slice(ph + h, None), every)] = 0
    if pw:
        target[index(middle, slice(0, pw))] = 0
        target[index(middle, slice(pw + w, None))] = 0
    target[index(middle, slice(pw, pw + w))] = x[lo:hi]


def _col2im_targets(geometry: tuple, kernel: Pair) -> list[tuple]:
    """The kernel offsets that reach the input, in the order col2im adds them.

    Each is (i, j, (output rows, output cols), (input rows, input cols), covers all): the output
    pixels whose offset-(i, j) input lies inside the unpadded input, and where. An offset that
    covers the whole input (stride 1, "same" padding) comes first, to be copied instead of
    added onto zeros; the others follow in row-major order.
    """
    (_, _, h, w), out_hw, stride, padding, dilation = geometry
    targets = []
    for i, j in kernel_offsets(kernel):
        rows = _clip(out_hw[0], h, i * dilation[0] - padding[0], stride[0])
        cols = _clip(out_hw[1], w, j * dilation[1] - padding[1], stride[1])
        if rows is not None and cols is not None:
            targets.append(
                (i, j, (rows[0], cols[0]), (rows[1], cols[1]), rows[2] and cols[2])
            )
    targets.sort(key=lambda target: not target[-1])
    return targets


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
    check_4d("conv2d", x)
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
    check_window_fits("conv2d", x.shape, weight.shape[2:], padding, dilation)
