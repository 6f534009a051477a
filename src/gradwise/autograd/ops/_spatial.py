"""What convolution and pooling share: argument pairs, output sizes, NHWC padding and windows.

The ops take and return NCHW tensors, as PyTorch does, but work channels-last (NHWC) inside;
``nhwc`` / ``nchw`` are the free transposes between the two views of one array.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

Pair = tuple[int, int]

#: bytes handled per chunk of images: small enough to stay in cache (L2) between the step that
#: writes a block and the one that reads it (measured on the benchmark CNN: 1 MiB beat 4 MiB by
#: 5-10% in every pass)
CHUNK_BYTES = 1 << 20


def pair(op: str, name: str, value: Any, minimum: int = 1) -> Pair:
    """``value`` (an int or a pair of ints) as a pair, each at least ``minimum``.

    The one parser of kernel_size / stride / padding / dilation, for the ops and the layers.

    Raises:
        TypeError: ``value`` is not an int or a pair of ints (bools are refused).
        ValueError: a value is below ``minimum``.
    """
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


def check_4d(op: str, x: np.ndarray) -> None:
    if x.ndim != 4:
        hint = "; add a batch axis with x.unsqueeze(0)" if x.ndim == 3 else ""
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {x.shape}{hint}")


def check_window_fits(
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


def pad_hw(x: np.ndarray, padding: Pair, value: float = 0.0) -> np.ndarray:
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


def window_index(i: int, j: int, out_hw: Pair, stride: Pair, dilation: Pair) -> tuple[slice, ...]:
    """Index of the NHWC elements that kernel offset (i, j) reads, for every output pixel."""
    top, left = i * dilation[0], j * dilation[1]
    rows = slice(top, top + stride[0] * (out_hw[0] - 1) + 1, stride[0])
    cols = slice(left, left + stride[1] * (out_hw[1] - 1) + 1, stride[1])
    return (slice(None), rows, cols, slice(None))


def nchw(x_nhwc: np.ndarray) -> np.ndarray:
    return x_nhwc.transpose(0, 3, 1, 2)


def nhwc(x_nchw: np.ndarray) -> np.ndarray:
    return x_nchw.transpose(0, 2, 3, 1)


def kernel_offsets(kernel: Pair) -> Iterator[tuple[int, int]]:
    """Kernel offsets in row-major order (the order that decides max-pool ties)."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            yield i, j
