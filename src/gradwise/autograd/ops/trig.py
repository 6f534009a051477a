"""Trigonometric and hyperbolic ops beyond sin/cos/tanh: tan, asin, acos, atan, sinh, cosh,
asinh, acosh, atanh and the two-argument atan2.

Each backward states its local derivative (the standard calculus identities, as PyTorch's
derivatives.yaml writes them); ``backward_graph`` writes the same derivative in Tensor ops so
second derivatives work. Outside a function's domain the forward gives NaN (asin(2)) or inf
(atanh(1)), as NumPy and PyTorch do, and so does the derivative.
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd.function import Function
from gradwise.autograd.functional import where
from gradwise.autograd.ops._broadcast import unbroadcast, unbroadcast_graph


class Tan(Function):
    """tan(x). Local derivative: 1 + tan^2 x, from the saved output. Shape: x -> same."""

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.out = np.tan(x)
        return ctx.out

    @staticmethod
    def backward(ctx, grad):
        return (grad * (1 + ctx.out * ctx.out),)

    @staticmethod
    def backward_graph(ctx, grad):
        out = Tan.apply(ctx.inputs[0])
        return (grad * (out * out + 1),)


class Asin(Function):
    """asin(x). Local derivative: 1 / sqrt(1 - x^2). Shape: x -> same."""

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.arcsin(x)

    @staticmethod
    def backward(ctx, grad):
        x = ctx.x
        return (grad / np.sqrt(1 - x * x),)

    @staticmethod
    def backward_graph(ctx, grad):
        x = ctx.inputs[0]
        return (grad / (1 - x * x).sqrt(),)


class Acos(Function):
    """acos(x). Local derivative: -1 / sqrt(1 - x^2). Shape: x -> same."""

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.arccos(x)

    @staticmethod
    def backward(ctx, grad):
        x = ctx.x
        return (-grad / np.sqrt(1 - x * x),)

    @staticmethod
    def backward_graph(ctx, grad):
        x = ctx.inputs[0]
        return (-grad / (1 - x * x).sqrt(),)


class Atan(Function):
    """atan(x). Local derivative: 1 / (1 + x^2). Shape: x -> same."""

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.arctan(x)

    @staticmethod
    def backward(ctx, grad):
        x = ctx.x
        return (grad / (1 + x * x),)

    @staticmethod
    def backward_graph(ctx, grad):
        x = ctx.inputs[0]
        return (grad / (x * x + 1),)


class Sinh(Function):
    """sinh(x). Local derivative: cosh(x). Shape: x -> same."""

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.sinh(x)

    @staticmethod
    def backward(ctx, grad):
        return (grad * np.cosh(ctx.x),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad * Cosh.apply(ctx.inputs[0]),)


class Cosh(Function):
    """cosh(x). Local derivative: sinh(x). Shape: x -> same."""

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.cosh(x)

    @staticmethod
    def backward(ctx, grad):
        return (grad * np.sinh(ctx.x),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad * Sinh.apply(ctx.inputs[0]),)


class Asinh(Function):
    """asinh(x). Local derivative: 1 / sqrt(x^2 + 1). Shape: x -> same."""

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.arcsinh(x)

    @staticmethod
    def backward(ctx, grad):
        x = ctx.x
        return (grad / np.sqrt(x * x + 1),)

    @staticmethod
    def backward_graph(ctx, grad):
        x = ctx.inputs[0]
        return (grad / (x * x + 1).sqrt(),)


class Acosh(Function):
    """acosh(x) (NaN below 1). Local derivative (PyTorch's form): 1 / sqrt(x^2 - 1), which is
    finite below -1 too, where the value is NaN. Shape: x -> same."""

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        with np.errstate(invalid="ignore"):
            return np.arccosh(x)

    @staticmethod
    def backward(ctx, grad):
        x = ctx.x
        with np.errstate(divide="ignore", invalid="ignore"):
            return (grad / np.sqrt(x * x - 1),)

    @staticmethod
    def backward_graph(ctx, grad):
        x = ctx.inputs[0]
        return (grad / (x * x - 1).sqrt(),)


class Atanh(Function):
    """atanh(x) (+-inf at +-1, NaN beyond). Local derivative: 1 / (1 - x^2). Shape: x -> same."""

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.arctanh(x)

    @staticmethod
    def backward(ctx, grad):
        x = ctx.x
        return (grad / (1 - x * x),)

    @staticmethod
    def backward_graph(ctx, grad):
        x = ctx.inputs[0]
        return (grad / (1 - x * x),)


class Atan2(Function):
    """atan2(y, x): the angle of the point (x, y) in (-pi, pi], broadcast together.

    Local derivatives (PyTorch's): d/dy = x / (x^2 + y^2), d/dx = -y / (x^2 + y^2); both are
    taken as 0 at the origin, where PyTorch gives 0 too. Shape: the broadcast shape.
    """

    owns_grads = True
    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, y, x):
        try:
            np.broadcast_shapes(y.shape, x.shape)
        except ValueError:
            raise ValueError(f"atan2: shapes {y.shape} and {x.shape} cannot be broadcast "
                             "together") from None
        ctx.y, ctx.x = y, x
        return np.arctan2(y, x)

    @staticmethod
    def backward(ctx, grad):
        y, x = ctx.y, ctx.x
        norm = x * x + y * y
        with np.errstate(divide="ignore", invalid="ignore"):
            # at the origin PyTorch gives 0 for both (not 0 / 0)
            scale = np.where(norm == 0, 0, grad / np.where(norm == 0, 1, norm))
        grad_y = unbroadcast(scale * x, y.shape) if ctx.needs_input_grad[0] else None
        grad_x = unbroadcast(-scale * y, x.shape) if ctx.needs_input_grad[1] else None
        return grad_y, grad_x

    @staticmethod
    def backward_graph(ctx, grad):
        y, x = ctx.inputs
        norm = x * x + y * y
        zero = norm == 0
        scale = where(zero, 0.0, grad / where(zero, 1.0, norm))
        return (unbroadcast_graph(scale * x, y.shape), unbroadcast_graph(-scale * y, x.shape))
