"""Layer normalisation over the rows of an (M, D) view, forward and backward, one row at a time
(the NumPy reference makes ~6 passes over the whole array each way).

The references are ``layer_norm_forward_reference`` / ``layer_norm_backward_reference`` (the
formulas of ``ops/norm.py``'s LayerNorm). The kernels add each row over SIMD lanes (fastmath
``reassoc`` only: NaN and inf keep their meaning) where NumPy's einsum adds pairwise, so results
agree within float rounding of the row sums, not bitwise.
Every scalar stays in the input's dtype (numba would compute in float64 from a Python float).
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd.kernels._jit import kernel, kernel_ready


def layer_norm_forward_reference(
    x2: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(out, xhat, invstd)``: ``xhat = (x - mean) / sqrt(var + eps)`` per row (biased var),
    ``out = xhat * weight + bias``.

    Shape: x2 (M, D), weight and bias (D,) or None -> (M, D), (M, D), (M,).
    """
    size = x2.shape[1]
    # the mean of x - x[0] plus x[0]: a constant row's mean is then exactly its value, so
    # x - mean is exactly 0 (a plain sum / D rounds: 0.1 * 3 / 3 != 0.1), as torch's Welford
    first = x2[:, :1] if size else np.zeros((x2.shape[0], 1), x2.dtype)
    first = np.where(np.isfinite(first), first, 0)  # an inf first value would make inf - inf
    with np.errstate(invalid="ignore"):
        mean = first[:, 0] + np.einsum("md->m", x2 - first) / size
    centered = x2 - mean[:, None]
    var = np.einsum("md,md->m", centered, centered) / size
    invstd = (1.0 / np.sqrt(var + eps)).astype(x2.dtype, copy=False)  # (M,)
    xhat = centered
    xhat *= invstd[:, None]
    out = xhat * weight if weight is not None else xhat.copy()
    if bias is not None:
        out += bias
    return out, xhat, invstd


@kernel(fastmath={"reassoc"})  # sums over SIMD lanes (see _jit.kernel)
def _layer_norm_forward_kernel(x2, weight, bias, has_weight, has_bias, eps, count, one, zero,
                               out, xhat, invstd):  # pragma: no cover - numba
    # count, one, zero: D, 1 and 0 in the input's dtype
    rows, size = x2.shape
    for i in range(rows):
        # shifted by the row's first value, so a constant row's mean is exact (the reference)
        first = x2[i, 0] if size else zero
        if not np.isfinite(first):  # inf - inf would turn an infinite mean into NaN
            first = zero
        total = zero
        for j in range(size):
            total += x2[i, j] - first
        mean = first + total / count
        square = zero
        for j in range(size):
            centered = x2[i, j] - mean
            xhat[i, j] = centered
            square += centered * centered
        scale = one / np.sqrt(square / count + eps)
        invstd[i] = scale
        for j in range(size):
            value = xhat[i, j] * scale
            xhat[i, j] = value
            if has_weight:
                value = value * weight[j]
            if has_bias:
                value = value + bias[j]
            out[i, j] = value


def layer_norm_forward(
    x2: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fused forward (see :func:`layer_norm_forward_reference`)."""
    dtype = x2.dtype
    if kernel_ready(x2, ndim=2) and kernel_ready(x2, weight, bias):
        out, xhat = np.empty_like(x2), np.empty_like(x2)
        invstd = np.empty(x2.shape[0], dtype=dtype)
        empty = np.zeros(0, dtype)
        _layer_norm_forward_kernel(x2, empty if weight is None else weight,
                                   empty if bias is None else bias, weight is not None,
                                   bias is not None, dtype.type(eps), dtype.type(x2.shape[1]),
                                   dtype.type(1), dtype.type(0), out, xhat, invstd)
        return out, xhat, invstd
    return layer_norm_forward_reference(x2, weight, bias, eps)


def layer_norm_backward_reference(
    g2: np.ndarray, xhat: np.ndarray, invstd: np.ndarray, weight: np.ndarray | None,
    want_x: bool, want_weight: bool, want_bias: bool,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``(grad_x, grad_weight, grad_bias)`` of layer norm, each None unless wanted:
    ``grad_x = invstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))`` with ``dxhat = g w``,
    ``grad_weight = sum over rows of g xhat``, ``grad_bias = sum over rows of g``.

    Shape: g2, xhat (M, D), invstd (M,), weight (D,) or None -> (M, D), (D,), (D,).
    """
    grad_x = grad_w = grad_b = None
    if want_x:
        size = xhat.shape[1]
        dxhat = g2 * weight if weight is not None else g2
        mean_dxhat = np.einsum("md->m", dxhat) / size
        mean_dxhat_xhat = np.einsum("md,md->m", dxhat, xhat) / size
        grad_x = xhat * mean_dxhat_xhat[:, None]
        np.subtract(dxhat, grad_x, out=grad_x)
        grad_x -= mean_dxhat[:, None]
        grad_x *= invstd[:, None]
    if want_weight:
        grad_w = np.einsum("md,md->d", g2, xhat)
    if want_bias:
        grad_b = np.einsum("md->d", g2)
    return grad_x, grad_w, grad_b


@kernel(fastmath={"reassoc"})  # sums over SIMD lanes (see _jit.kernel)
def _layer_norm_backward_kernel(g2, xhat, invstd, weight, has_weight, want_x, want_weight,
                                want_bias, count, zero, grad_x, grad_w,
                                grad_b):  # pragma: no cover - numba
    rows, size = g2.shape
    if want_weight:
        for j in range(size):
            grad_w[j] = zero
    if want_bias:
        for j in range(size):
            grad_b[j] = zero
    for i in range(rows):
        if want_x:
            total = zero
            total_x = zero
            for j in range(size):
                d = g2[i, j] * weight[j] if has_weight else g2[i, j]
                total += d
                total_x += d * xhat[i, j]
            mean_d = total / count
            mean_dx = total_x / count
            scale = invstd[i]
            for j in range(size):
                d = g2[i, j] * weight[j] if has_weight else g2[i, j]
                grad_x[i, j] = ((d - xhat[i, j] * mean_dx) - mean_d) * scale
        if want_weight:
            for j in range(size):
                grad_w[j] += g2[i, j] * xhat[i, j]
        if want_bias:
            for j in range(size):
                grad_b[j] += g2[i, j]


def layer_norm_backward(
    g2: np.ndarray, xhat: np.ndarray, invstd: np.ndarray, weight: np.ndarray | None,
    want_x: bool, want_weight: bool, want_bias: bool,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The fused backward (see :func:`layer_norm_backward_reference`)."""
    dtype = xhat.dtype
    if kernel_ready(xhat, g2, invstd, weight):
        size = xhat.shape[1]
        empty = np.zeros(0, dtype)
        grad_x = np.empty_like(xhat) if want_x else np.zeros((0, 0), dtype)
        grad_w = np.empty(size, dtype) if want_weight else empty
        grad_b = np.empty(size, dtype) if want_bias else empty
        _layer_norm_backward_kernel(g2, xhat, invstd, empty if weight is None else weight,
                                    weight is not None, want_x, want_weight, want_bias,
                                    dtype.type(size), dtype.type(0), grad_x, grad_w, grad_b)
        return (grad_x if want_x else None, grad_w if want_weight else None,
                grad_b if want_bias else None)
    return layer_norm_backward_reference(g2, xhat, invstd, weight, want_x, want_weight, want_bias)


# ---- batch norm over an (N, C, L) view: statistics per channel ---------------------------------
def batch_norm_stats_reference(x3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, var)`` per channel of an (N, C, L) array (biased variance, two passes).

    Shape: (N, C, L) -> (C,), (C,).
    """
    count = x3.shape[0] * x3.shape[2]
    # shifted by each channel's first value, so a constant channel's mean is exact (as
    # layer_norm_forward_reference)
    first = x3[:1, :, :1] if x3.size else np.zeros((1, x3.shape[1], 1), x3.dtype)
    first = np.where(np.isfinite(first), first, 0)  # an inf first value would make inf - inf
    with np.errstate(invalid="ignore"):
        mean = first[0, :, 0] + np.einsum("ncl->c", x3 - first) / count
    centered = x3 - mean[:, None]
    return mean, np.einsum("ncl,ncl->c", centered, centered) / count


@kernel(fastmath={"reassoc"})  # sums over SIMD lanes (see _jit.kernel)
def _batch_norm_stats_kernel(x3, count, zero, mean, var):  # pragma: no cover - numba
    n, channels, length = x3.shape
    for c in range(channels):
        mean[c] = zero
        var[c] = zero
    # shifted by each channel's first value, so a constant channel's mean is exact
    first = np.zeros(channels, x3.dtype)
    if n and length:
        for c in range(channels):
            if np.isfinite(x3[0, c, 0]):  # inf - inf would turn an infinite mean into NaN
                first[c] = x3[0, c, 0]
    for i in range(n):
        for c in range(channels):
            total = zero
            shift = first[c]
            for j in range(length):
                total += x3[i, c, j] - shift
            mean[c] += total
    for c in range(channels):
        mean[c] = first[c] + mean[c] / count
    for i in range(n):
        for c in range(channels):
            total = zero
            centre = mean[c]
            for j in range(length):
                d = x3[i, c, j] - centre
                total += d * d
            var[c] += total
    for c in range(channels):
        var[c] = var[c] / count


def batch_norm_stats(x3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fused :func:`batch_norm_stats_reference` (within float rounding of the sums)."""
    if kernel_ready(x3):
        channels = x3.shape[1]
        mean, var = np.empty(channels, x3.dtype), np.empty(channels, x3.dtype)
        count = x3.shape[0] * x3.shape[2]
        _batch_norm_stats_kernel(x3, x3.dtype.type(count), x3.dtype.type(0), mean, var)
        return mean, var
    return batch_norm_stats_reference(x3)


def batch_norm_backward_reference(
    g3: np.ndarray, xhat: np.ndarray, scale: np.ndarray, training: bool, want_x: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(grad_x, sum_g xhat, sum_g)`` of batch norm over an (N, C, L) view; ``scale`` is
    ``weight * invstd`` (or invstd). In training ``grad_x = scale (g - mean(g) - xhat
    mean(g xhat))``, in evaluation ``scale g``; grad_x is None unless ``want_x``.
    """
    sum_g = np.einsum("ncl->c", g3)  # = dL/dbias
    sum_gx = np.einsum("ncl,ncl->c", g3, xhat)  # = dL/dweight
    grad_x = None
    if want_x:
        if training:
            count = xhat.shape[0] * xhat.shape[2]
            grad_x = xhat * (sum_gx / count)[:, None]
            np.subtract(g3, grad_x, out=grad_x)
            grad_x -= (sum_g / count)[:, None]
            grad_x *= scale[:, None]
        else:
            grad_x = g3 * scale[:, None]
    return grad_x, sum_gx, sum_g


@kernel(fastmath={"reassoc"})  # sums over SIMD lanes (see _jit.kernel)
def _batch_norm_backward_kernel(g3, xhat, scale, training, want_x, count, zero, grad_x, sum_gx,
                                sum_g):  # pragma: no cover - numba
    n, channels, length = g3.shape
    for c in range(channels):
        sum_g[c] = zero
        sum_gx[c] = zero
    for i in range(n):
        for c in range(channels):
            total = zero
            total_x = zero
            for j in range(length):
                g = g3[i, c, j]
                total += g
                total_x += g * xhat[i, c, j]
            sum_g[c] += total
            sum_gx[c] += total_x
    if not want_x:
        return
    for i in range(n):
        for c in range(channels):
            factor = scale[c]
            if training:
                mean_g = sum_g[c] / count
                mean_gx = sum_gx[c] / count
                for j in range(length):
                    grad_x[i, c, j] = ((g3[i, c, j] - xhat[i, c, j] * mean_gx) - mean_g) * factor
            else:
                for j in range(length):
                    grad_x[i, c, j] = g3[i, c, j] * factor


def batch_norm_backward(
    g3: np.ndarray, xhat: np.ndarray, scale: np.ndarray, training: bool, want_x: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """The fused :func:`batch_norm_backward_reference` (within float rounding of the sums)."""
    dtype = xhat.dtype
    if kernel_ready(xhat, g3) and scale.dtype == dtype:
        channels = xhat.shape[1]
        grad_x = np.empty_like(xhat) if want_x else np.zeros((0, 0, 0), dtype)
        sum_gx, sum_g = np.empty(channels, dtype), np.empty(channels, dtype)
        count = xhat.shape[0] * xhat.shape[2]
        _batch_norm_backward_kernel(g3, xhat, scale, training, want_x, dtype.type(count),
                                    dtype.type(0), grad_x, sum_gx, sum_g)
        return (grad_x if want_x else None), sum_gx, sum_g
    return batch_norm_backward_reference(g3, xhat, scale, training, want_x)
