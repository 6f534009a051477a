"""numba kernels for 2-D convolution over NHWC arrays (see ``autograd/ops/conv.py``).

The NumPy references live in ``autograd/ops/conv.py``: ``_im2col_chunks`` (a copy from a
strided view of the padded input) and ``_conv_input_grad_plan`` (col2im by clipped slices).
``tests/kernels/test_spatial_kernels.py`` compares each kernel with its reference.

``col2im`` is serial: the op calls it once per chunk of a few images (about ``CHUNK_BYTES``);
handing each *chunk* to a thread pool cost more than the work (0.8 ms against 0.02 ms per chunk
on the shared 2-core machine under load). What runs in parallel instead is the whole backward
over parts of the batch (``_threads.py``): each thread calls col2im on its own images' chunks,
between its own 1-thread matrix products, so there is one hand-over per op, not per chunk.

Not here, measured and left out: an im2col kernel (2x slower than NumPy's copy from a strided
view on every benchmark shape), and a direct convolution for few-channel inputs (1- or 3-channel
first layers), loops over (pixel, kernel offset, channel) with the output channels innermost.
On the benchmark shapes it lost to im2col + BLAS (1 thread, float32: 1->32 channels 28x28 batch
128: 3.2 ms vs 2.7 ms; 3->6 channels 5x5 32x32 batch 64: 28 ms vs 2.3 ms; 3->32: 30 ms vs 9 ms),
and it makes the backward rebuild the im2col rows that the forward otherwise keeps. Tried again
for issue 14 part A with the loops reordered so that the innermost one runs along an output row
(contiguous in NCHW, vectorised by LLVM; the weight gradient as row dot products with
``fastmath={"reassoc"}``): 3->6 channels 5x5 32x32 batch 64, forward 3.4 ms and weight gradient
5.2 ms against 2.3 and 2.3 ms for im2col + BLAS (once im2col reads a contiguous NHWC copy of the
input, ``ops/conv.py``); 3->32 channels: 25.5 / 47.6 against 4.8 / 5.1 ms; 1->32 channels 3x3:
5.3 / 8.6 against 2.7 / 1.5 ms (1 thread, CPU time, load 1-2). And with the batch innermost
(input transposed to (C, H, W, N), output (Ho, Wo, C_out, N), 64 images a vector loop): 3->6
channels 2.3 / 3.0 ms (transposes included) against 2.4 / 2.3; 3->32: 13.7 / 21.3 against
5.0 / 5.3; 1->32: 6.0 / 9.1 against 2.6 / 1.5 ms (load 10, CPU time). Not kept either.

Tried for CIFAR classic's first layer (issue 14, branch kernels-cifar; 3 -> 6 channels 5x5
32x32 batch 64, 1 thread, CPU time, load ~1) and not kept; what runs instead is the plane-major
im2col + BLAS of ``ops/conv.py``:
- im2col and the 6-column product in one pass, output channels padded to 8 and held in eight
  scalar accumulators per output pixel (for LLVM to combine into one vector register): 4.8 ms
  forward against 2.0 for im2col + BLAS (it did not vectorise; with an accumulator array, 9.9
  ms); the weight gradient the same way, 8 gradients in registers: 5.7 ms against 2.2;
- the weight gradient skipping zero gradients (after a max-pool and ReLU only ~1/8 of dY is
  non-zero): 2.1 ms at density 1/8, 4.0 at 1/4, against 2.0-2.2 for the dense rebuild + GEMM
  (unpredictable branches, scalar loops);
- im2col as a numba loop over runs of kw*C numbers, once more: 1.57 ms against NumPy's 0.90;
- a col2im that adds runs of kw*C numbers (offsets in the reference's order, bit for bit
  equal): 0.69 vs 0.43 ms (6 channels, 14x14), 7.1 vs 3.1 ms (32 channels 3x3, batch 128).
"""

from __future__ import annotations

from gradwise.autograd.kernels._jit import kernel


@kernel(parallel=False)
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
    for b in range(images):
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


@kernel(parallel=False)
def im2col_planes(x_padded, start, sh, sw, dh, dw, cols):  # pragma: no cover
    """Plane-major im2col: ``cols[b, c, i, j, y, x] = x_padded[start + b, c, y*sh + i*dh,
    x*sw + j*dw]``.

    Shapes: x_padded (N, C, Hp, Wp), C-contiguous; cols (images, C, kh, kw, Ho, Wo), written
    whole. The NumPy reference is ``ops/conv.py::_planes_chunks`` (a copy from a strided view);
    a copy, so the two agree bit for bit. Each innermost run is one output row of Wo numbers.
    Stride and dilation 1 get a loop of their own whose indices are sums of loop counters:
    with ``xo * sw + j * dw`` numba's negative-index check on an index of unknown sign kept LLVM
    from vectorising the copy (CIFAR's first layer, 3 channels 5x5, batch 64, 1 thread, CPU
    time, load ~7: 1.8 ms, 0.58 with sums for the column only, 0.39 with both, against NumPy's
    0.78).
    """
    images, c, kh, kw, ho, wo = cols.shape
    unit = sh == 1 and sw == 1 and dh == 1 and dw == 1
    for b in range(images):
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    for y in range(ho):
                        if unit:  # indices as sums of loop counters: see the docstring
                            for xo in range(wo):
                                cols[b, ch, i, j, y, xo] = x_padded[start + b, ch, y + i, xo + j]
                        else:
                            row = y * sh + i * dh
                            for xo in range(wo):
                                cols[b, ch, i, j, y, xo] = x_padded[start + b, ch, row,
                                                                    xo * sw + j * dw]
