"""numba kernels for max and average pooling over NHWC arrays (see ``autograd/ops/pool.py``).

The NumPy references these kernels must equal live in ``autograd/ops/pool.py``
(``_max_pool_windows`` / ``_max_pool_tiles`` and the ``AvgPool2d`` loops); the op calls a kernel
when :func:`~gradwise.autograd.kernels.jit_enabled` is True and the reference otherwise, and
``tests/kernels/test_spatial_kernels.py`` compares the two on a grid of shapes and edge values.

Every kernel works on an unpadded NHWC input and skips the positions that fall into padding
(no padded copy is made); the innermost loop runs over channels, which are contiguous.

The kernels are serial (``parallel=False``), by measurement on the shared 2-core machine: with
``parallel=True`` (workqueue layer) each call first has to wake a worker thread, and under the
usual load (7-9 on 2 cores) that wait was milliseconds: in the CIFAR-style step the max-pool
forwards took 6.1 ms per step in parallel against 1.1 ms serial (NumPy reference: 3.5 ms). In a
hot loop on the benchmark CNN's first pool (128x32x28x28), 2 threads gave 1.3 ms against 2.3 ms
serial, a gain of about 1 ms per step on an idle machine only. Serial kernels also leave both
cores to BLAS, the team's rule of one thread pool at a time (``_jit.py``).
Since the 2-thread CNN work of issue 14 the op (``ops/pool.py``) splits a big enough batch
into parts and calls the serial kernel on each part from its own thread (``_threads.py``, one
hand-over per call, no numba threading layer); every kernel works image by image, so the
results are the same bits whatever the split.

A window's "offset number" is ``i * kw + j`` for kernel offset (i, j): the row-major order that
decides max-pool ties.
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd.kernels._jit import kernel


@kernel(parallel=False)
def max_pool_forward(x, kh, kw, sh, sw, ph, pw, out, chosen, with_choice):  # pragma: no cover
    """Max over each window of ``x`` (N, H, W, C) into ``out`` (N, Ho, Wo, C); padding is -inf.

    PyTorch's CPU rule, scanned in its order: the window's first real element starts as the
    maximum, and a later element takes over when it is strictly greater or is NaN. So a tie goes
    to the first maximum, a window holding NaN outputs NaN and picks its last NaN, and padding is
    never picked. With ``with_choice`` the offset number picked is written to ``chosen``
    (N, Ho, Wo, C), an unsigned integer array.
    """
    n, h, w, c = x.shape
    ho, wo = out.shape[1], out.shape[2]
    for b in range(n):
        for y in range(ho):
            top = y * sh - ph
            i0 = max(0, -top)  # the first kernel row inside the input
            i1 = min(kh, h - top)
            for xo in range(wo):
                left = xo * sw - pw
                j0 = max(0, -left)
                j1 = min(kw, w - left)
                first = i0 * kw + j0
                for ch in range(c):
                    out[b, y, xo, ch] = x[b, top + i0, left + j0, ch]
                    if with_choice:
                        chosen[b, y, xo, ch] = first
                for i in range(i0, i1):
                    for j in range(j0, j1):
                        if i == i0 and j == j0:
                            continue
                        number = i * kw + j
                        if with_choice:
                            # selects, not branches: the loop over channels vectorises
                            for ch in range(c):
                                value = x[b, top + i, left + j, ch]
                                best = out[b, y, xo, ch]
                                take = (value > best) | (value != value)
                                out[b, y, xo, ch] = value if take else best
                                chosen[b, y, xo, ch] = number if take else chosen[b, y, xo, ch]
                        else:
                            for ch in range(c):
                                value = x[b, top + i, left + j, ch]
                                best = out[b, y, xo, ch]
                                take = (value > best) | (value != value)
                                out[b, y, xo, ch] = value if take else best


@kernel(parallel=False)
def max_pool_backward(grad, chosen, kh, kw, sh, sw, ph, pw, grad_x):  # pragma: no cover
    """Route each window's gradient (N, Ho, Wo, C) to the element it picked, into ``grad_x``.

    ``grad_x`` (N, H, W, C) may be uninitialised: each image is zeroed first, unless the windows
    tile it exactly (stride == kernel, no padding, nothing left over), where every element is
    written once. Overlapping windows add up, offset by offset in row-major order (the order of
    the NumPy reference).
    """
    n, h, w, c = grad_x.shape
    ho, wo = grad.shape[1], grad.shape[2]
    tiles = sh == kh and sw == kw and ph == 0 and pw == 0 and ho * kh == h and wo * kw == w
    for b in range(n):
        if tiles:
            for y in range(ho):
                for xo in range(wo):
                    for i in range(kh):
                        for j in range(kw):
                            number = i * kw + j
                            for ch in range(c):
                                if chosen[b, y, xo, ch] == number:
                                    grad_x[b, y * kh + i, xo * kw + j, ch] = grad[b, y, xo, ch]
                                else:
                                    grad_x[b, y * kh + i, xo * kw + j, ch] = 0
            continue
        grad_x[b] = 0
        for i in range(kh):
            for j in range(kw):
                number = i * kw + j
                for y in range(ho):
                    row = y * sh - ph + i
                    if row < 0 or row >= h:
                        continue
                    for xo in range(wo):
                        col = xo * sw - pw + j
                        if col < 0 or col >= w:
                            continue
                        for ch in range(c):
                            if chosen[b, y, xo, ch] == number:
                                grad_x[b, row, col, ch] += grad[b, y, xo, ch]


@kernel(parallel=False)
def avg_pool_forward(x, kh, kw, sh, sw, ph, pw, scale, out):  # pragma: no cover
    """Mean over each window of ``x`` (N, H, W, C) into ``out`` (N, Ho, Wo, C).

    Padding counts as zeros (PyTorch's ``count_include_pad=True``); the window is summed in
    row-major offset order, padding included, and multiplied by ``scale[0]`` (1 / (kh kw) in
    the output's dtype), the NumPy reference's order, so the results are equal bit for bit.
    """
    n, h, w, c = x.shape
    ho, wo = out.shape[1], out.shape[2]
    for b in range(n):
        for y in range(ho):
            for xo in range(wo):
                for i in range(kh):
                    row = y * sh - ph + i
                    for j in range(kw):
                        col = xo * sw - pw + j
                        real = row >= 0 and row < h and col >= 0 and col < w
                        first = i == 0 and j == 0
                        for ch in range(c):
                            value = x[b, row, col, ch] if real else 0.0
                            if first:
                                out[b, y, xo, ch] = value
                            else:
                                out[b, y, xo, ch] += value
                for ch in range(c):
                    out[b, y, xo, ch] *= scale[0]


@kernel(parallel=False)
def avg_pool_backward(grad, kh, kw, sh, sw, ph, pw, scale, grad_x):  # pragma: no cover
    """Spread each window's gradient (N, Ho, Wo, C) times ``scale[0]`` over its elements.

    ``grad_x`` (N, H, W, C) may be uninitialised (each image is zeroed first); overlapping
    windows add up offset by offset in row-major order, as the NumPy reference does.
    """
    n, h, w, c = grad_x.shape
    ho, wo = grad.shape[1], grad.shape[2]
    for b in range(n):
        grad_x[b] = 0
        for i in range(kh):
            for j in range(kw):
                for y in range(ho):
                    row = y * sh - ph + i
                    if row < 0 or row >= h:
                        continue
                    for xo in range(wo):
                        col = xo * sw - pw + j
                        if col < 0 or col >= w:
                            continue
                        for ch in range(c):
                            grad_x[b, row, col, ch] += grad[b, y, xo, ch] * scale[0]


def choice_dtype(kernel_size: tuple[int, int]) -> np.dtype:
    """The smallest unsigned integer type that holds every offset number of a window."""
    return np.min_scalar_type(kernel_size[0] * kernel_size[1] - 1)
