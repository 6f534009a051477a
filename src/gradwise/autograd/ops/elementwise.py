"""Elementwise ops and activations. Each backward states the local derivative it applies."""

from __future__ import annotations

import math

import numpy as np

from gradwise.autograd.function import Function
from gradwise.autograd.ops._broadcast import unbroadcast


def _binary_shapes(name: str, a: np.ndarray, b: np.ndarray) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together"
        ) from None


class Add(Function):
    saves_inputs = False

    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        if a.shape != b.shape:
            _binary_shapes("add", a, b)
        ctx.shapes = (a.shape, b.shape)
        return a + b

    @staticmethod
    def backward(ctx, grad):
        # d(a+b)/da = d(a+b)/db = 1
        a_shape, b_shape = ctx.shapes
        return unbroadcast(grad, a_shape), unbroadcast(grad, b_shape)


class Sub(Function):
    saves_inputs = False

    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        if a.shape != b.shape:
            _binary_shapes("sub", a, b)
        ctx.shapes = (a.shape, b.shape)
        return a - b

    @staticmethod
    def backward(ctx, grad):
        # d(a-b)/da = 1, d(a-b)/db = -1
        a_shape, b_shape = ctx.shapes
        grad_b = unbroadcast(-grad, b_shape) if ctx.needs_input_grad[1] else None
        return unbroadcast(grad, a_shape), grad_b


class Mul(Function):
    owns_grads = True

    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        if a.shape != b.shape:
            _binary_shapes("mul", a, b)
        ctx.a, ctx.b = a, b
        return a * b

    @staticmethod
    def backward(ctx, grad):
        # d(ab)/da = b, d(ab)/db = a
        a, b = ctx.a, ctx.b
        grad_a = unbroadcast(grad * b, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(grad * a, b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    owns_grads = True

    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        if a.shape != b.shape:
            _binary_shapes("div", a, b)
        ctx.a, ctx.b = a, b
        return a / b

    @staticmethod
    def backward(ctx, grad):
        # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        a, b = ctx.a, ctx.b
        grad_a = unbroadcast(grad / b, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(-grad * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Neg(Function):
    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return (-grad,)


class Cast(Function):
    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return (grad.astype(ctx.dtype),)


class PowScalar(Function):
    """x ** p for a constant Python number p."""
    owns_grads = True

    @staticmethod
    def forward(ctx, x, exponent):
        ctx.x, ctx.exponent = x, exponent
        if exponent == 2:
            return x * x
        return x**exponent

    @staticmethod
    def backward(ctx, grad):
        # d(x^p)/dx = p x^(p-1)
        x, p = ctx.x, ctx.exponent
        if p == 2:
            return (grad * 2 * x,)
        return (grad * (p * x ** (p - 1)),)


class Pow(Function):
    """a ** b with both sides tensors."""
    owns_grads = True

    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        if a.shape != b.shape:
            _binary_shapes("pow", a, b)
        out = a**b
        ctx.a, ctx.b, ctx.out = a, b, out
        return out

    @staticmethod
    def backward(ctx, grad):
        # d(a^b)/da = b a^(b-1);  d(a^b)/db = a^b log a (taken as 0 where a <= 0, as PyTorch does)
        a, b, out = ctx.a, ctx.b, ctx.out
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast(grad * b * a ** (b - 1), a.shape)
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)
            grad_b = unbroadcast(grad * out * log_a, b.shape)
        return grad_a, grad_b


class Exp(Function):
    owns_grads = True
    saves_inputs = False
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        ctx.out = np.exp(x)
        return ctx.out

    @staticmethod
    def backward(ctx, grad):
        # d(e^x)/dx = e^x
        return (grad * ctx.out,)


class Log(Function):
    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        # d(log x)/dx = 1/x
        return (grad / ctx.x,)


class Sqrt(Function):
    owns_grads = True
    saves_inputs = False
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        ctx.out = np.sqrt(x)
        return ctx.out

    @staticmethod
    def backward(ctx, grad):
        # d(sqrt x)/dx = 1 / (2 sqrt x)
        return (grad / (2 * ctx.out),)


class Abs(Function):
    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        # d|x|/dx = sign(x), taken as 0 at x = 0 like PyTorch
        return (grad * np.sign(ctx.x),)


class Clip(Function):
    owns_grads = True

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.x, ctx.lo, ctx.hi = x, lo, hi
        return np.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, grad):
        # 1 inside [lo, hi] (bounds included, as PyTorch's clamp), 0 where the value was clipped
        x = ctx.x
        inside = np.ones(x.shape, dtype=bool)
        if ctx.lo is not None:
            inside &= x >= ctx.lo
        if ctx.hi is not None:
            inside &= x <= ctx.hi
        return (grad * inside,)


class _Pick(Function):
    """Elementwise maximum or minimum of two tensors."""

    owns_grads = True
    pick = staticmethod(np.maximum)
    wins = staticmethod(np.greater)  # where a is picked over b

    @classmethod
    def _forward(cls, ctx, a, b, name):
        if a.shape != b.shape:
            _binary_shapes(name, a, b)
        ctx.a, ctx.b = a, b
        return cls.pick(a, b)

    @classmethod
    def _backward(cls, ctx, grad):
        # the picked input takes the gradient; a tie splits it evenly (PyTorch does the same)
        a, b = ctx.a, ctx.b
        share_a = (cls.wins(a, b) + 0.5 * (a == b)).astype(grad.dtype, copy=False)
        grad_a = unbroadcast(grad * share_a, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast(grad * (1 - share_a), b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Maximum(_Pick):
    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        return Maximum._forward(ctx, a, b, "maximum")

    @staticmethod
    def backward(ctx, grad):
        return Maximum._backward(ctx, grad)


class Minimum(_Pick):
    pick = staticmethod(np.minimum)
    wins = staticmethod(np.less)

    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        return Minimum._forward(ctx, a, b, "minimum")

    @staticmethod
    def backward(ctx, grad):
        return Minimum._backward(ctx, grad)


class Where(Function):
    owns_grads = True
    saves_inputs = False

    tensor_args = (1, 2)

    @staticmethod
    def forward(ctx, condition, a, b):
        condition = np.asarray(condition, dtype=bool)
        try:
            np.broadcast_shapes(condition.shape, a.shape, b.shape)
        except ValueError:
            raise ValueError(
                f"where: condition {condition.shape}, a {a.shape} and b {b.shape} cannot be "
                "broadcast together"
            ) from None
        ctx.condition, ctx.shapes = condition, (a.shape, b.shape)
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        # the gradient goes to whichever side was picked at each position
        a_shape, b_shape = ctx.shapes
        zero = np.zeros((), dtype=grad.dtype)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast(np.where(ctx.condition, grad, zero), a_shape)
        if ctx.needs_input_grad[1]:
            grad_b = unbroadcast(np.where(ctx.condition, zero, grad), b_shape)
        return grad_a, grad_b


# ---- activations ------------------------------------------------------------------------------
class ReLU(Function):
    observe_kind = "relu"
    owns_grads = True
    saves_inputs = False
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        out = np.maximum(x, 0)
        ctx.out = out
        return out

    @staticmethod
    def backward(ctx, grad):
        # 1 where x > 0, else 0. At exactly x = 0 the derivative is undefined; we use 0 (as
        # PyTorch does) so that a unit sitting at 0 counts as inactive, not half-active.
        return (grad * (ctx.out > 0),)


class LeakyReLU(Function):
    observe_kind = "leaky_relu"
    owns_grads = True

    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.x, ctx.slope = x, negative_slope
        return np.where(x > 0, x, x * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        # 1 for x > 0, negative_slope otherwise
        return (np.where(ctx.x > 0, grad, grad * ctx.slope),)


class ELU(Function):
    observe_kind = "elu"
    owns_grads = True
    saves_output = True

    @staticmethod
    def forward(ctx, x, alpha):
        # expm1 of min(x, 0) never overflows, whatever the size of x
        out = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
        ctx.x, ctx.out, ctx.alpha = x, out, alpha
        return out

    @staticmethod
    def backward(ctx, grad):
        # 1 for x > 0; alpha e^x = out + alpha otherwise
        return (np.where(ctx.x > 0, grad, grad * (ctx.out + ctx.alpha)),)


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) computed from e^-|x| so that it never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Function):
    observe_kind = "sigmoid"
    owns_grads = True
    saves_inputs = False
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        ctx.out = stable_sigmoid(x)
        return ctx.out

    @staticmethod
    def backward(ctx, grad):
        # d sigma/dx = sigma (1 - sigma)
        out = ctx.out
        return (grad * out * (1 - out),)


class Tanh(Function):
    observe_kind = "tanh"
    owns_grads = True
    saves_inputs = False
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        ctx.out = np.tanh(x)
        return ctx.out

    @staticmethod
    def backward(ctx, grad):
        # d tanh/dx = 1 - tanh^2
        out = ctx.out
        return (grad * (1 - out * out),)


class Softplus(Function):
    observe_kind = "softplus"
    owns_grads = True

    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.x, ctx.beta, ctx.threshold = x, beta, threshold
        bx = beta * x
        # log(1 + e^bx) = max(bx, 0) + log1p(e^-|bx|); above the threshold it is linear (PyTorch)
        soft = (np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / beta
        return np.where(bx > threshold, x, soft)

    @staticmethod
    def backward(ctx, grad):
        # d softplus/dx = sigmoid(beta x), and 1 in the linear region
        bx = ctx.beta * ctx.x
        return (np.where(bx > ctx.threshold, grad, grad * stable_sigmoid(bx)),)


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, vectorised (NumPy has none): Abramowitz-Stegun 7.1.26, |err| < 1.5e-7."""
    sign = np.sign(x)
    ax = np.abs(x)
    t = 1 / (1 + 0.3275911 * ax)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                          + t * 1.061405429))))
    return sign * (1 - poly * np.exp(-ax * ax))


class GELU(Function):
    observe_kind = "gelu"
    owns_grads = True

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.x, ctx.approximate = x, approximate
        if approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
            ctx.tanh = np.tanh(inner)
            return 0.5 * x * (1 + ctx.tanh)
        ctx.cdf = 0.5 * (1 + erf(x * (1 / math.sqrt(2))))
        return x * ctx.cdf

    @staticmethod
    def backward(ctx, grad):
        x = ctx.x
        if ctx.approximate == "tanh":
            t = ctx.tanh
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return (grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner),)
        # d(x Phi(x))/dx = Phi(x) + x phi(x)
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
        return (grad * (ctx.cdf + x * pdf),)
