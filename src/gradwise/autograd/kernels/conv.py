"""numba kernels for 2-D convolution over NHWC arrays (see ``autograd/ops/conv.py``).

The NumPy references live in ``autograd/ops/conv.py``: ``_im2col_chunks`` (a copy from a
strided view of the padded input), ``_conv_input_grad`` (col2im by clipped slices) and the
im2col + matmul forward that :func:`direct_conv_forward` replaces for inputs with few channels.
``tests/kernels/test_spatial_kernels.py`` compares each kernel with its reference.

All kernels read the *unpadded* NHWC input and treat positions outside it as zeros, so no padded
copy is made, and run in parallel over images (each image is written by one thread only).
"""

from __future__ import annotations

from gradwise.autograd.kernels._jit import kernel, prange


@kernel(parallel=True)
def im2col(x, start, kh, kw, sh, sw, ph, pw, dh, dw, cols):  # pragma: no cover
    """Copy every window of images ``start:start + len(cols)`` of ``x`` into ``cols``.

    ``cols[b, y, x, i, j, c] = x[start + b, y*sh + i*dh - ph, x*sw + j*dw - pw, c]``, 0 where
    that position is padding. Shapes: x (N, H, W, C); cols (images, Ho, Wo, kh, kw, C).
    Equal bit for bit to the reference (a copy).
    """
    images, ho, wo = cols.shape[0], cols.shape[1], cols.shape[2]
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    for b in prange(images):
        for y in range(ho):
            for i in range(kh):
                row = y * sh + i * dh - ph
                inside_rows = row >= 0 and row < h
                for xo in range(wo):
                    for j in range(kw):
                        col = xo * sw + j * dw - pw
                        if inside_rows and col >= 0 and col < w:
                            for ch in range(c):
                                cols[b, y, xo, i, j, ch] = x[start + b, row, col, ch]
                        else:
                            for ch in range(c):
                                cols[b, y, xo, i, j, ch] = 0


@kernel(parallel=True)
def col2im(parts, order, sh, sw, ph, pw, dh, dw, grad_x):  # pragma: no cover
    """Add every output pixel's (kh, kw, C) block of ``parts`` back onto the input it came from.

    ``grad_x[b, y*sh + i*dh - ph, x*sw + j*dw - pw, c] += parts[b, y, x, i, j, c]`` for the
    positions inside the input (padding is dropped). Shapes: parts (images, Ho, Wo, kh, kw, C);
    grad_x (images, H, W, C), which may be uninitialised: each image is zeroed first. Kernel
    offsets are added in the sequence ``order`` (row-major offset numbers) that the NumPy
    reference uses, so each element's sum is formed in the same order: the results are equal
    bit for bit (up to the sign of a zero: the reference copies its first term, 0 + -0 is +0).
    """
    images, ho, wo, kw = parts.shape[0], parts.shape[1], parts.shape[2], parts.shape[4]
    h, w, c = grad_x.shape[1], grad_x.shape[2], grad_x.shape[3]
    for b in prange(images):
        grad_x[b] = 0
        for number in order:
            i, j = number // kw, number % kw
            for y in range(ho):
                row = y * sh + i * dh - ph
                if row < 0 or row >= h:
                    continue
                for xo in range(wo):
                    col = xo * sw + j * dw - pw
                    if col < 0 or col >= w:
                        continue
                    for ch in range(c):
                        grad_x[b, row, col, ch] += parts[b, y, xo, i, j, ch]


@kernel(parallel=True)
def direct_conv_forward(x, weight, bias, sh, sw, ph, pw, dh, dw, out):  # pragma: no cover
    """Convolution without im2col, for inputs with few channels (1- or 3-channel images).

    ``out[b, y, x, o] = sum over (i, j, c) of x[b, y*sh + i*dh - ph, x*sw + j*dw - pw, c] *
    weight[i, j, c, o]``, plus ``bias[o]``, padding counting as 0. Shapes: x (N, H, W, C);
    weight (kh, kw, C, C_out); bias (C_out,) (zeros when the layer has none); out
    (N, Ho, Wo, C_out). The loop over output channels is innermost and vectorises; im2col with
    a few channels gives a matrix product with an inner dimension of 9 or 27, where BLAS is at
    its least efficient. The sum runs in a different order than BLAS's, so it equals the
    im2col + matmul reference within float rounding, not bit for bit.
    """
    n, h, w, c = x.shape
    kh, kw, c_out = weight.shape[0], weight.shape[1], weight.shape[3]
    ho, wo = out.shape[1], out.shape[2]
    for b in prange(n):
        for y in range(ho):
            for xo in range(wo):
                for o in range(c_out):
                    out[b, y, xo, o] = 0
                for i in range(kh):
                    row = y * sh + i * dh - ph
                    if row < 0 or row >= h:
                        continue
                    for j in range(kw):
                        col = xo * sw + j * dw - pw
                        if col < 0 or col >= w:
                            continue
                        for ch in range(c):
                            value = x[b, row, col, ch]
                            for o in range(c_out):
                                out[b, y, xo, o] += value * weight[i, j, ch, o]
                for o in range(c_out):
                    out[b, y, xo, o] += bias[o]
