"""Special functions (``torch.special`` / ``torch.erfinv``, ``lgamma``, ``digamma``, ``erf``,
``erfc``) and ``fmod``, computed with ``scipy.special`` in the input's dtype.

Local derivatives (Abramowitz and Stegun, ch. 6 and 7):
erfinv'(x) = sqrt(pi) / 2 * exp(erfinv(x)^2); lgamma'(x) = digamma(x);
digamma'(x) = polygamma(1, x); polygamma(n, x)' = polygamma(n + 1, x);
erf'(x) = 2 / sqrt(pi) * exp(-x^2) = -erfc'(x).

Every op also has ``backward_graph`` (for ``create_graph=True``): the same slope written in
recorded ops, the special functions in it being these ops again (digamma's slope is the
``Polygamma`` op, i0's the ``I1`` op...), so derivatives of any order come from
``scipy.special`` and never from an approximation. The formulas are PyTorch's
(``tools/autograd/derivatives.yaml``; ``i1_backward`` / ``i1e_backward`` in
``FunctionsManual.cpp`` for the value 1/2 at |x| <= eps).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from gradwise.autograd.function import Function
from gradwise.autograd.ops._broadcast import unbroadcast, unbroadcast_graph
from gradwise.autograd.ops.elementwise import Where, linked_to
from gradwise.autograd.ops.shape import Cat, Stack


class _Unary(Function):
    """An elementwise function ``_value`` with derivative ``_slope`` (NumPy functions of the
    input, and of the input and the output) and the same derivative ``_slope_graph`` written
    in recorded ops of the input Tensor (for ``create_graph``)."""

    owns_grads = True
    label = ""  # the function's name in messages (``name`` is the node's, see Function)

    @classmethod
    def forward(cls, ctx, x):
        if x.dtype.kind != "f":
            raise TypeError(f"{cls.label}: expected a floating point tensor, got {x.dtype}")
        with np.errstate(all="ignore"):
            out = np.asarray(cls._value(x), dtype=x.dtype)
        ctx.x, ctx.out = x, out
        return out

    @classmethod
    def backward(cls, ctx, grad):
        with np.errstate(all="ignore"):
            return ((grad * cls._slope(ctx.x, ctx.out)).astype(grad.dtype, copy=False),)

    @classmethod
    def backward_graph(cls, ctx, grad):
        (x,) = ctx.inputs
        with np.errstate(all="ignore"):
            return (grad * cls._slope_graph(x),)


def _constant(value: float, like) -> np.ndarray:
    """A 0-d array of ``value`` in the dtype of the Tensor ``like`` (no promotion)."""
    return np.asarray(value, dtype=like._data.dtype)


def _tiny_safe(x):
    """(mask |x| > eps, x with the tiny entries replaced by eps): PyTorch's guard in
    ``i1_backward`` / ``i1e_backward``, where the slope is taken as its limit 1/2."""
    eps = np.finfo(x._data.dtype).eps
    not_tiny = np.abs(x._data) > eps
    return not_tiny, Where.apply(not_tiny, x, _constant(eps, x))


def _tiny_limit(x: np.ndarray, slope) -> np.ndarray:
    """``slope`` where |x| > eps, else its limit 1/2 at 0: PyTorch's guard in ``i1_backward``
    / ``i1e_backward`` (NaN, failing the test, takes 1/2 too), the same as :func:`_tiny_safe`
    on the create_graph path. A subnormal x would otherwise overflow 1 / x."""
    not_tiny = np.abs(x) > np.finfo(x.dtype).eps
    return np.where(not_tiny, slope(np.where(not_tiny, x, 1)), 0.5)


def _lgamma(x: np.ndarray) -> np.ndarray:
    """scipy's ``gammaln`` with torch's values where it differs: +inf at -inf (|Gamma| grows
    without bound there; gammaln gives -inf) and -log|x| at subnormal x (gammaln goes through
    Gamma(x), which overflows, and gives inf)."""
    out = special.gammaln(x)
    tiny = (x != 0) & (np.abs(x) < np.finfo(x.dtype).tiny)
    out = np.where(tiny, -np.log(np.abs(x)), out)
    return np.where(x == -np.inf, np.inf, out)


class Erfinv(_Unary):
    """The inverse error function on (-1, 1) (+-inf at +-1, NaN outside)."""

    label = "erfinv"
    _value = staticmethod(special.erfinv)
    _slope = staticmethod(lambda x, out: math.sqrt(math.pi) / 2 * np.exp(out * out))
    _slope_graph = staticmethod(
        lambda x: math.sqrt(math.pi) / 2 * (Erfinv.apply(x) * Erfinv.apply(x)).exp())


class Sinc(_Unary):
    """sin(pi x) / (pi x), 1 at 0 (the normalised sinc, ``np.sinc``). Slope
    (pi x cos(pi x) - sin(pi x)) / (pi x^2) as torch's ``sinc_backward`` (FunctionsManual.cpp):
    the gradient is 0 where pi x^2 is 0 in the dtype (x = 0, where the limit is 0, and tiny or
    subnormal x whose square underflows, where 0/0 was NaN), whatever the upstream gradient.
    Under create_graph the guarded branch is differentiated, so the second derivative there is
    0 (torch NaN: docs/NUMERICS.md)."""

    label = "sinc"
    _value = staticmethod(np.sinc)

    @classmethod
    def backward(cls, ctx, grad):
        x = ctx.x
        live = x * x * np.pi != 0
        safe = np.where(live, x, 1).astype(x.dtype, copy=False)
        pix = safe * np.pi
        with np.errstate(all="ignore"):
            slope = (pix * np.cos(pix) - np.sin(pix)) / (safe * safe * np.pi)
            out = np.where(live, grad * slope, 0)
        return (out.astype(grad.dtype, copy=False),)

    @classmethod
    def backward_graph(cls, ctx, grad):
        (x,) = ctx.inputs
        live = x._data * x._data * np.pi != 0
        safe = Where.apply(live, x, _constant(1, x))
        pix = safe * np.pi
        slope = (pix * pix.cos() - pix.sin()) / (safe * safe * np.pi)
        return (Where.apply(live, grad * slope, _constant(0, grad)),)


class Lgamma(_Unary):
    """log |Gamma(x)|, the log of the gamma function's magnitude."""

    label = "lgamma"
    _value = staticmethod(_lgamma)
    _slope = staticmethod(lambda x, out: special.digamma(x))
    _slope_graph = staticmethod(lambda x: Digamma.apply(x))


class Digamma(_Unary):
    """psi(x) = Gamma'(x) / Gamma(x)."""

    label = "digamma"
    _value = staticmethod(special.digamma)
    _slope = staticmethod(lambda x, out: _polygamma(1, x))
    _slope_graph = staticmethod(lambda x: Polygamma.apply(x, 1))


class Erf(_Unary):
    """The error function."""

    label = "erf"
    _value = staticmethod(special.erf)
    _slope = staticmethod(lambda x, out: 2 / math.sqrt(math.pi) * np.exp(-x * x))
    _slope_graph = staticmethod(lambda x: 2 / math.sqrt(math.pi) * (-(x * x)).exp())


class Erfc(_Unary):
    """The complementary error function 1 - erf(x), accurate for large x."""

    label = "erfc"
    _value = staticmethod(special.erfc)
    _slope = staticmethod(lambda x, out: -2 / math.sqrt(math.pi) * np.exp(-x * x))
    _slope_graph = staticmethod(lambda x: -2 / math.sqrt(math.pi) * (-(x * x)).exp())


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

    @staticmethod
    def backward_graph(ctx, grad):
        # trunc(a / b) is piecewise constant: a constant of the graph (derivative 0 a.e.)
        a, b = ctx.a, ctx.b
        grad_a = unbroadcast_graph(grad, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = None
        if ctx.needs_input_grad[1]:
            with np.errstate(all="ignore"):
                quotient = np.trunc(a / b).astype(grad.dtype, copy=False)
            # torch's -trunc(a / b) reads a and b (derivative 0): linked to both
            quotient_grad = linked_to(linked_to(-grad * quotient, ctx.inputs[0]), ctx.inputs[1])
            grad_b = unbroadcast_graph(quotient_grad, b.shape)
        return grad_a, grad_b


class LogCumSumExp(Function):
    """log(cumsum(exp(x))) along ``dim`` (``torch.logcumsumexp``), accumulated one log-add-exp
    at a time as torch's kernel does (``np.logaddexp``: no overflow; +-inf and NaN as torch).

    Local derivative: dL/dx_j = sum_{i >= j} g_i exp(x_j - y_i), computed as PyTorch's
    ``logcumsumexp_backward`` (after TensorFlow's): the positive and negative parts of g in log
    space, exp(reverse_logcumsumexp(log|g| - y) + x) each, so nothing overflows; its
    ``backward_graph`` is the same formula in recorded ops (LogCumSumExp again), so the second
    derivative puts NaN where torch's does (only at a +inf entry, not across its slice).
    Shape: unchanged; a 0-d tensor is its own result.
    """
    torch_name = "Logcumsumexp"

    owns_grads = True

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        if x.ndim == 0:
            out = x.copy()
        else:
            with np.errstate(invalid="ignore"):
                out = np.logaddexp.accumulate(x, axis=dim).astype(x.dtype, copy=False)
        ctx.x, ctx.out = x, out
        return out

    @staticmethod
    def backward(ctx, grad):
        if grad.ndim == 0 or grad.size == 0:
            return (grad,)
        d, lowest = ctx.dim, np.finfo(grad.dtype).min

        def reverse(t):  # reverse_logcumsumexp: flip, accumulate, flip
            return np.flip(np.logaddexp.accumulate(np.flip(t, d), axis=d), d)

        with np.errstate(all="ignore"):
            log_abs = np.log(np.abs(grad))
            positive = np.exp(reverse(np.where(grad > 0, log_abs, lowest) - ctx.out) + ctx.x)
            negative = np.exp(reverse(np.where(grad < 0, log_abs, lowest) - ctx.out) + ctx.x)
            return ((positive - negative).astype(grad.dtype, copy=False),)

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        if grad.ndim == 0 or grad._data.size == 0:
            return (grad * 1,)
        d = ctx.dim
        out = LogCumSumExp.apply(x, d)
        lowest = np.asarray(np.finfo(grad._data.dtype).min, dtype=grad._data.dtype)
        log_abs = grad.abs().log()

        def part(mask):  # exp(reverse_logcumsumexp(log|g| where mask, else lowest) - y) + x)
            logged = Where.apply(mask, log_abs, lowest) - out
            return (LogCumSumExp.apply(logged.flip(d), d).flip(d) + x).exp()

        return (part(grad._data > 0) - part(grad._data < 0),)


class CumSum(Function):
    """Running sum along ``dim`` (``torch.cumsum``), as ``np.cumsum``.

    Local derivative: dL/dx_j = sum_{i >= j} g_i, a reversed running sum of the upstream
    gradient. Both directions are running sums, never a product with a triangular 0/1 matrix,
    so a NaN or inf only reaches the positions after it (0 * inf would make NaN everywhere).
    Shape: unchanged.
    """
    torch_name = "Cumsum"

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
    beside an inf, where 0 * inf would say NaN). O(n) per slice. A tensor of one element
    passes the gradient on (1, even at NaN or inf, as torch).
    Shape: unchanged.
    """
    torch_name = "Cumprod"

    owns_grads = True

    @staticmethod
    def forward(ctx, x, dim):
        out = np.cumprod(x, axis=dim)
        ctx.x, ctx.out, ctx.dim = x, out, dim
        return out

    @staticmethod
    def backward(ctx, grad):
        if ctx.x.size <= 1:  # the derivative of one element's product is 1, even at NaN (torch)
            return (grad,)
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

    @staticmethod
    def _finite_graph(x, grad, d):
        """The division-free sum for finite x as recorded ops of one (..., n, n) matrix whose
        row j holds x_k where k is in the range and 1 elsewhere: before_j * sum_{i>=j} g_i
        prod_{j<k<=i} x_k."""
        x_last, g_last = x.movedim(d, -1), grad.movedim(d, -1)  # (..., n)
        n = x_last.shape[-1]
        one = np.ones((), dtype=x._data.dtype)
        rows = x_last.unsqueeze(-2)  # (..., 1, n): row j, column k
        j, k = np.arange(n)[:, None], np.arange(n)[None, :]
        before = CumProd.apply(Where.apply(k < j, rows, one), -1)[..., -1]  # prod_{k<j}
        after = CumProd.apply(Where.apply(k > j, rows, one), -1)  # [j, i]: prod_{j<k<=i}
        zero = np.zeros((), dtype=grad._data.dtype)
        tail = Where.apply(k >= j, g_last.unsqueeze(-2) * after, zero).sum(-1)  # (..., n)
        return (before * tail).movedim(-1, d)

    @staticmethod
    def backward_graph(ctx, grad):
        # dL/dx_j = sum_{i>=j} g_i prod_{k<=i, k != j} x_k, division-free. With finite entries
        # (zeros allowed) as one masked (..., n, n) matrix: the product before j factored out,
        # exact near tiny entries (det's third derivative at a singular matrix goes through
        # it). With an inf or NaN, PyTorch's cumprod_backward under grad mode step for step, so
        # NaN and inf land where its first and second derivatives put them (issue 12: the
        # factored form said inf where torch's sum of products says NaN): without a zero in
        # the tensor reversed_cumsum(g * y) / x, recorded; with one the sum one column at a
        # time, the product before j multiplied into each term. O(n^2) per slice, only under
        # create_graph.
        (x,) = ctx.inputs
        d = ctx.dim
        if ctx.x.size <= 1:  # as backward (torch returns grad itself there)
            return (grad * 1,)
        if np.isfinite(ctx.x).all():
            return (CumProd._finite_graph(x, grad, d),)
        if not (ctx.x == 0).any():
            weighted = grad * CumProd.apply(x, d)
            return (CumSum.apply(weighted.flip(d), d).flip(d) / x,)
        x_last, g_last = x.movedim(d, -1), grad.movedim(d, -1)  # (..., n)
        n = x_last.shape[-1]
        ones = np.ones(x_last.shape[:-1] + (1,), dtype=x._data.dtype)
        columns = []
        for k in range(n):
            # omitted[i - k] = prod_{m <= i, m != k} x_m for i >= k: one prod of x[:k] and one
            # running product of x[k+1:], separate ops as torch's (their backwards test for
            # zeros per op, which decides where the second derivative is NaN)
            until = x_last[..., :k].prod(-1, keepdim=True) if k else None
            after = CumProd.apply(x_last[..., k + 1:], -1) if k < n - 1 else None
            if until is None:
                omitted = Cat.apply(ones, after, axis=-1) if after is not None else ones
            elif after is None:
                omitted = until
            else:
                omitted = Cat.apply(until, until * after, axis=-1)
            columns.append((g_last[..., k:] * omitted).sum(-1))
        return (Stack.apply(*columns, axis=-1).movedim(-1, d),)


# ---- torch.special's remaining elementwise functions (issue 11), scipy.special as the source --
# Local derivatives: Abramowitz and Stegun 26.2 (the normal distribution), 9.6.27 and 9.8 (the
# modified Bessel functions: I0' = I1, I1' = I0 - I1 / x), 7.1 (erfcx = exp(x^2) erfc(x)).
_SQRT_2PI = math.sqrt(2 * math.pi)


class Ndtr(_Unary):
    """The standard normal CDF Phi(x) = (1 + erf(x / sqrt 2)) / 2; slope the normal pdf."""

    label = "ndtr"
    _value = staticmethod(special.ndtr)
    _slope = staticmethod(lambda x, out: np.exp(-0.5 * x * x) / _SQRT_2PI)
    _slope_graph = staticmethod(lambda x: (-0.5 * x * x).exp() / _SQRT_2PI)


class LogNdtr(_Unary):
    """log Phi(x), accurate far in the left tail; slope pdf(x) / Phi(x) = exp(log pdf - out)."""

    label = "log_ndtr"
    _value = staticmethod(special.log_ndtr)
    _slope = staticmethod(lambda x, out: np.exp(-0.5 * x * x - math.log(_SQRT_2PI) - out))
    _slope_graph = staticmethod(
        lambda x: (-0.5 * x * x - math.log(_SQRT_2PI) - LogNdtr.apply(x)).exp())


class Ndtri(_Unary):
    """The inverse of Phi on (0, 1) (+-inf at 1 and 0); slope sqrt(2 pi) exp(out^2 / 2)."""

    label = "ndtri"
    _value = staticmethod(special.ndtri)
    _slope = staticmethod(lambda x, out: _SQRT_2PI * np.exp(0.5 * out * out))
    _slope_graph = staticmethod(
        lambda x: _SQRT_2PI * (0.5 * Ndtri.apply(x) * Ndtri.apply(x)).exp())


class I0(_Unary):
    """The modified Bessel function of the first kind, order 0; slope I1(x)."""

    label = "i0"
    _value = staticmethod(special.i0)
    _slope = staticmethod(lambda x, out: special.i1(x))
    _slope_graph = staticmethod(lambda x: I1.apply(x))


class I0e(_Unary):
    """exp(-|x|) I0(x); slope I1e(x) - sign(x) I0e(x)."""

    label = "i0e"
    _value = staticmethod(special.i0e)
    _slope = staticmethod(lambda x, out: special.i1e(x) - np.sign(x) * out)
    _slope_graph = staticmethod(
        lambda x: I1e.apply(x) - I0e.apply(x) * np.sign(x._data))


class I1(_Unary):
    """The modified Bessel function of the first kind, order 1; slope I0(x) - I1(x) / x
    (1/2 at 0, the limit)."""

    label = "i1"
    _value = staticmethod(special.i1)
    _slope = staticmethod(lambda x, out: _tiny_limit(
        x, lambda safe: special.i0(safe) - special.i1(safe) / safe))
    _slope_graph = staticmethod(lambda x: _i1_slope_graph(x))


class I1e(_Unary):
    """exp(-|x|) I1(x); slope I0e(x) - I1e(x) (sign(x) + 1 / x) (1/2 at 0)."""

    label = "i1e"
    _value = staticmethod(special.i1e)
    _slope = staticmethod(lambda x, out: _tiny_limit(
        x, lambda safe: special.i0e(safe) - special.i1e(safe) * (np.sign(safe) + 1 / safe)))
    _slope_graph = staticmethod(lambda x: _i1e_slope_graph(x))


class Erfcx(_Unary):
    """The scaled complementary error function exp(x^2) erfc(x); slope 2 x out - 2 / sqrt(pi).
    """

    label = "erfcx"
    _value = staticmethod(special.erfcx)
    _slope = staticmethod(lambda x, out: 2 * x * out - 2 / math.sqrt(math.pi))
    _slope_graph = staticmethod(lambda x: 2 * x * Erfcx.apply(x) - 2 / math.sqrt(math.pi))


class Entr(_Unary):
    """-x log x (0 at 0, -inf below 0: scipy's and torch's entr); slope -(log x + 1)."""

    label = "entr"
    _value = staticmethod(special.entr)
    _slope = staticmethod(lambda x, out: -(np.log(x) + 1))
    _slope_graph = staticmethod(lambda x: -(x.log() + 1))


def _i1_slope_graph(x):
    # I1'(x) = I0(x) - I1(x) / x, its limit 1/2 where |x| <= eps (PyTorch's i1_backward)
    not_tiny, safe = _tiny_safe(x)
    slope = I0.apply(safe) - I1.apply(x) / safe
    return Where.apply(not_tiny, slope, _constant(0.5, x))


def _i1e_slope_graph(x):
    # I1e'(x) = I0e(x) - I1e(x) (sgn(x) + 1 / x), 1/2 where |x| <= eps (PyTorch's i1e_backward)
    not_tiny, safe = _tiny_safe(x)
    slope = I0e.apply(safe) - I1e.apply(x) * (np.sign(safe._data) + 1 / safe)
    return Where.apply(not_tiny, slope, _constant(0.5, x))


def _polygamma(n: int, x: np.ndarray) -> np.ndarray:
    """scipy's polygamma(n, x), with trigamma (n = 1) NaN at -inf as torch (the poles at every
    negative integer leave no limit there; scipy says inf). For n >= 2 torch and scipy agree at
    -inf (+-inf); at +inf gradwise keeps scipy's 0 (the limit) where torch says NaN
    (docs/NUMERICS.md)."""
    out = special.polygamma(n, x)
    if n == 1:
        out = np.where(x == -np.inf, np.nan, out)
    return out


class Polygamma(Function):
    """polygamma(n, x) = psi^(n)(x), the n-th derivative of digamma (``torch.polygamma``),
    from ``scipy.special.polygamma``; n = 0 is digamma itself.

    Local derivative: polygamma(n + 1, x) (the definition; Abramowitz and Stegun 6.4.1).
    Shape: unchanged. Raises ValueError for a negative or non-integer n, TypeError for a
    non-floating input.
    """

    owns_grads = True

    @staticmethod
    def forward(ctx, x, n):
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"polygamma: n must be a non-negative integer, got {n!r}")
        if x.dtype.kind != "f":
            raise TypeError(f"polygamma: expected a floating point tensor, got {x.dtype}")
        ctx.x, ctx.n = x, int(n)
        with np.errstate(all="ignore"):
            return np.asarray(_polygamma(int(n), x), dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        with np.errstate(all="ignore"):
            slope = _polygamma(ctx.n + 1, ctx.x)
        return ((grad * slope).astype(grad.dtype, copy=False),)

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        return (grad * Polygamma.apply(x, ctx.n + 1),)


class Logit(Function):
    """log(p / (1 - p)) (``torch.logit``), p clamped to [eps, 1 - eps] when ``eps`` is given.

    Local derivative (PyTorch's ``logit_backward``): 1 / (x (1 - x)) of the unclamped input,
    so +inf at 0 and 1 (not the NaN of the composition log(p / (1 - p)), whose chain rule
    multiplies 0 by inf there). Without ``eps`` it is NaN outside [0, 1]; with ``eps`` it is
    0 outside [eps, 1 - eps] (the clamp's flat parts). Shape: unchanged. Raises TypeError for
    a non-floating input.
    """

    owns_grads = True

    @staticmethod
    def forward(ctx, x, eps=None):
        if x.dtype.kind != "f":
            raise TypeError(f"logit: expected a floating point tensor, got {x.dtype}")
        ctx.x, ctx.eps = x, eps
        p = x if eps is None else np.clip(x, eps, 1 - eps)
        with np.errstate(all="ignore"):
            return np.asarray(np.log(p / (1 - p)), dtype=x.dtype)

    @staticmethod
    def _outside(x, eps, graph=False):
        """(mask where the slope is replaced, the value it takes there). torch's two paths
        differ at NaN with ``eps``: the first-order kernel tests "outside" (NaN is not, so
        NaN), the create_graph formula "inside" (NaN is not, so 0); both are followed."""
        if eps is None:
            return (x < 0) | (x > 1), np.nan
        if graph:
            return ~((x >= eps) & (x <= 1 - eps)), 0.0
        return (x < eps) | (x > 1 - eps), 0.0

    @staticmethod
    def backward(ctx, grad):
        x = ctx.x
        outside, fill = Logit._outside(x, ctx.eps)
        with np.errstate(all="ignore"):
            # + 0.0 turns the -0 of x = -0 into +0, so the slope there is +inf as torch's; the
            # fill is selected, not multiplied (an inf upstream outside [eps, 1 - eps] gives 0)
            slope = grad * (1 / (x * (1 - x) + 0.0))
        return (np.where(outside, fill, slope).astype(grad.dtype, copy=False),)

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        outside, fill = Logit._outside(x._data, ctx.eps, graph=True)
        with np.errstate(all="ignore"):
            # torch's create_graph path keeps the sign of x = -0 (-inf there), unlike its
            # first-order backward
            slope = grad / (x * (1 - x))
        return (Where.apply(outside, _constant(fill, x), slope),)


def _exclusive_products(x, d: int, cat, cumprod, flip, ones):
    """prod_{k != j} x_k along ``d`` for every j, as two exclusive running products (PyTorch's
    ``prod_safe_zeros_backward``), written once for arrays and for recorded Tensors."""
    n = x.shape[d]
    head = (slice(None),) * d
    before = cumprod(cat(ones, x[head + (slice(0, n - 1),)]), d)
    after = flip(cumprod(cat(ones, flip(x[head + (slice(1, n),)], d)), d), d)
    return before * after


class Prod(Function):
    """The product of all entries (``dim`` None) or along ``dim`` (``torch.prod``).

    Local derivative, PyTorch's ``prod_backward``: without a zero (anywhere in the input)
    grad * out / x; otherwise the division-free prod_{k != j} x_k (two exclusive running
    products), and for the product of everything with two or more zeros exactly 0 (torch's
    first-order shortcut: every such product holds a zero factor, also beside a NaN or inf).
    Shape: ``dim`` removed (kept as 1 with ``keepdim``); () for ``dim`` None.
    """

    owns_grads = True
    saves_output = True

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.x, ctx.dim, ctx.keepdim = x, dim, keepdim
        out = np.asarray(np.prod(x, axis=dim, keepdims=keepdim and dim is not None))
        ctx.out = out
        return out

    @staticmethod
    def backward(ctx, grad):
        x, dim = ctx.x, ctx.dim
        if x.ndim == 0:
            return (np.array(grad, copy=True),)

        def exclusive(values, d):
            ones = np.ones_like(values[(slice(None),) * d + (slice(0, 1),)])
            return _exclusive_products(
                values, d, lambda a, b: np.concatenate((a, b), d), lambda a, e: np.cumprod(a, e),
                np.flip, ones)

        with np.errstate(all="ignore"):
            if dim is None:
                flat = x.reshape(-1)
                zeros = int(np.count_nonzero(flat == 0))
                if zeros == 0:
                    result = grad * (ctx.out / flat)
                elif zeros > 1:
                    result = np.zeros_like(flat)
                else:
                    result = grad * exclusive(flat, 0)
                return (result.reshape(x.shape).astype(x.dtype, copy=False),)
            out = ctx.out if ctx.keepdim else np.expand_dims(ctx.out, dim)
            g = grad if ctx.keepdim else np.expand_dims(grad, dim)
            result = g * exclusive(x, dim) if np.any(x == 0) else g * (out / x)
        return (np.asarray(result, dtype=x.dtype),)

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        dim = ctx.dim
        if x.ndim == 0:
            return (grad * 1,)
        values, d = (x.reshape(-1), 0) if dim is None else (x, dim)
        if dim is not None and not ctx.keepdim:
            grad = grad.unsqueeze(dim)
        if not np.any(x._data == 0):
            out = Prod.apply(values, d, True)
            result = grad * (out / values)
        else:
            ones = np.ones_like(values._data[(slice(None),) * d + (slice(0, 1),)])
            result = grad * _exclusive_products(
                values, d, lambda a, b: Cat.apply(a, b, axis=d),
                lambda a, e: CumProd.apply(a, e), lambda a, e: a.flip(e), ones)
        return (result.reshape(x.shape),)
