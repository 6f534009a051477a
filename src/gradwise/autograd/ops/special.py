"""Special functions (``torch.special`` / ``torch.erfinv``, ``lgamma``, ``digamma``, ``erf``,
``erfc``) and ``fmod``, computed with ``scipy.special`` in the input's dtype.

Local derivatives (Abramowitz and Stegun, ch. 6 and 7):
erfinv'(x) = sqrt(pi) / 2 * exp(erfinv(x)^2); lgamma'(x) = digamma(x);
digamma'(x) = polygamma(1, x); erf'(x) = 2 / sqrt(pi) * exp(-x^2) = -erfc'(x).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from gradwise.autograd.function import Function
from gradwise.autograd.ops._broadcast import unbroadcast


class _Unary(Function):
    """An elementwise function ``_value`` with derivative ``_slope`` (NumPy functions of the
    input, and of the input and the output)."""

    owns_grads = True
    name = ""

    @classmethod
    def forward(cls, ctx, x):
        if x.dtype.kind != "f":
            raise TypeError(f"{cls.name}: expected a floating point tensor, got {x.dtype}")
        with np.errstate(all="ignore"):
            out = np.asarray(cls._value(x), dtype=x.dtype)
        ctx.x, ctx.out = x, out
        return out

    @classmethod
    def backward(cls, ctx, grad):
        with np.errstate(all="ignore"):
            return ((grad * cls._slope(ctx.x, ctx.out)).astype(grad.dtype, copy=False),)


class Erfinv(_Unary):
    """The inverse error function on (-1, 1) (+-inf at +-1, NaN outside)."""

    name = "erfinv"
    _value = staticmethod(special.erfinv)
    _slope = staticmethod(lambda x, out: math.sqrt(math.pi) / 2 * np.exp(out * out))


class Lgamma(_Unary):
    """log |Gamma(x)|, the log of the gamma function's magnitude."""

    name = "lgamma"
    _value = staticmethod(special.gammaln)
    _slope = staticmethod(lambda x, out: special.digamma(x))


class Digamma(_Unary):
    """psi(x) = Gamma'(x) / Gamma(x)."""

    name = "digamma"
    _value = staticmethod(special.digamma)
    _slope = staticmethod(lambda x, out: special.polygamma(1, x))


class Erf(_Unary):
    """The error function."""

    name = "erf"
    _value = staticmethod(special.erf)
    _slope = staticmethod(lambda x, out: 2 / math.sqrt(math.pi) * np.exp(-x * x))


class Erfc(_Unary):
    """The complementary error function 1 - erf(x), accurate for large x."""

    name = "erfc"
    _value = staticmethod(special.erfc)
    _slope = staticmethod(lambda x, out: -2 / math.sqrt(math.pi) * np.exp(-x * x))


class Fmod(Function):
    """a - trunc(a / b) * b: the C remainder, with the dividend's sign (``torch.fmod``).

    Local derivative (PyTorch's): 1 for a; ``-trunc(a / b)`` for b. Shape: broadcast shape.
    Integer division by zero raises ZeroDivisionError (PyTorch raises too).
    """

    owns_grads = True
    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        if a.dtype.kind in "iu" and np.any(b == 0):
            raise ZeroDivisionError("fmod: integer division by zero")
        ctx.a, ctx.b = a, b
        return np.asarray(np.fmod(a, b))

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.a, ctx.b
        grad_a = unbroadcast(grad, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = (unbroadcast(-grad * np.trunc(a / b), b.shape)
                  if ctx.needs_input_grad[1] else None)
        return grad_a, grad_b


class CumSum(Function):
    """Running sum along ``dim`` (``torch.cumsum``), as ``np.cumsum``.

    Local derivative: dL/dx_j = sum_{i >= j} g_i, a reversed running sum of the upstream
    gradient. Both directions are running sums, never a product with a triangular 0/1 matrix,
    so a NaN or inf only reaches the positions after it (0 * inf would make NaN everywhere).
    Shape: unchanged.
    """

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return np.cumsum(x, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        d = ctx.dim
        return (np.flip(np.cumsum(np.flip(grad, d), axis=d), d),)

    @staticmethod
    def backward_graph(ctx, grad):
        d = ctx.dim
        return (CumSum.apply(grad.flip(d), d).flip(d),)


class CumProd(Function):
    """Running product along ``dim`` (``torch.cumprod``).

    Local derivative: dL/dx_j = sum_{i >= j} g_i * prod_{k <= i, k != j} x_k. Without zeros
    that is reverse_cumsum(g * y)_j / x_j. In a slice holding a zero (first at z), as torch:
    before z only the terms i < z count, at z it is prod_{k<z} x_k * sum_{i>=z} g_i
    prod_{z<k<=i} x_k, after z it is exactly 0 (every term holds the factor x_z = 0, also
    beside an inf, where 0 * inf would say NaN). O(n) per slice.
    Shape: unchanged.
    """

    owns_grads = True

    @staticmethod
    def forward(ctx, x, dim):
        out = np.cumprod(x, axis=dim)
        ctx.x, ctx.out, ctx.dim = x, out, dim
        return out

    @staticmethod
    def backward(ctx, grad):
        x = np.moveaxis(ctx.x, ctx.dim, -1)
        out = np.moveaxis(ctx.out, ctx.dim, -1)
        g = np.moveaxis(grad, ctx.dim, -1)
        with np.errstate(divide="ignore", invalid="ignore"):
            reverse = np.flip(np.cumsum(np.flip(g * out, -1), -1), -1)
            result = reverse / x
        has_zero = (x == 0).any(axis=-1)
        n = x.shape[-1]
        for index in map(tuple, np.argwhere(has_zero)):  # () for a single slice
            row, row_g, row_out = x[index], g[index], out[index]
            z = int(np.flatnonzero(row == 0)[0])
            exact = np.zeros(n, dtype=result.dtype)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                # before the first zero: only the outputs before it count (the later ones
                # hold the factor 0, taken as an exact 0 even beside an inf, as torch)
                exact[:z] = np.flip(np.cumsum(np.flip(row_g[:z] * row_out[:z]))) / row[:z]
                # at it: prod_{k<z} x_k * sum_{i>=z} g_i prod_{z<k<=i} x_k
                after = np.cumprod(np.concatenate(([1], row[z + 1:])))
                before = np.prod(row[:z])
                exact[z] = before * np.dot(row_g[z:], after)
            # after it: every term holds x_z = 0, so exactly 0
            result[index] = exact
        return (np.moveaxis(result, -1, ctx.dim).astype(grad.dtype, copy=False),)
