"""Elementwise ops and activations. Each backward states the local derivative it applies."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from gradwise.autograd.function import Function
from gradwise.autograd.ops._broadcast import unbroadcast, unbroadcast_graph
from gradwise.autograd.ops._select import select_grad
from gradwise.autograd.tensor import Tensor


def select_grad_graph(mask: np.ndarray, grad):
    """:func:`select_grad` for ``create_graph=True``: a differentiable :class:`Where` on the
    gradient Tensor (the mask is piecewise constant, so it has no derivative of its own)."""
    return Where.apply(mask, grad, np.zeros((), grad.dtype))


def linked_to(grad, x):
    """``grad`` joined to the input Tensor ``x`` by a :class:`ZeroLink` when ``x`` requires
    grad: for the ``backward_graph`` of an op whose PyTorch backward reads its input through a
    differentiable op with a zero derivative (``threshold_backward``, ``sgn``, ``trunc``), so
    the gradient requires grad and differentiates to zeros exactly where torch's does, and
    stays a constant (``requires_grad`` False, as torch) where torch's backward reads nothing."""
    return ZeroLink.apply(grad, x) if x.requires_grad else grad


def sgn(x: np.ndarray) -> np.ndarray:
    """sign(x) with sgn(NaN) = 0, PyTorch's ``sgn`` (NumPy's sign gives NaN there)."""
    return (x > 0).astype(x.dtype) - (x < 0)


def _binary_shapes(name: str, a: np.ndarray, b: np.ndarray) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together"
        ) from None


class Add(Function):
    """a + b, broadcast together.

    Local derivative: 1 for both sides. Shape: a, b broadcastable -> broadcast shape; each
    gradient is summed back to its input's shape (``unbroadcast``).
    """

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

    @staticmethod
    def backward_graph(ctx, grad):
        a_shape, b_shape = ctx.shapes
        return unbroadcast_graph(grad, a_shape), unbroadcast_graph(grad, b_shape)


class Sub(Function):
    """a - b, broadcast together.

    Local derivative: 1 for a, -1 for b. Shape: a, b broadcastable -> broadcast shape.
    """

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

    @staticmethod
    def backward_graph(ctx, grad):
        a_shape, b_shape = ctx.shapes
        grad_b = unbroadcast_graph(-grad, b_shape) if ctx.needs_input_grad[1] else None
        return unbroadcast_graph(grad, a_shape), grad_b


class Mul(Function):
    """a * b, broadcast together.

    Local derivative: b for a, a for b. Shape: a, b broadcastable -> broadcast shape.
    """

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

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.inputs
        grad_a = unbroadcast_graph(grad * b, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = unbroadcast_graph(grad * a, b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    """a / b, broadcast together.

    Local derivative: 1 / b for a; -a / b^2 for b, computed as -(a / b) / b (PyTorch's order,
    which neither under- nor overflows where the quotient does not). Shape: broadcast shape.
    """

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
        # (a / b) / b, not a / (b * b): b * b under- or overflows long before the quotient does
        grad_b = unbroadcast(-grad * (a / b) / b, b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.inputs
        grad_a = unbroadcast_graph(grad / b, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = None
        if ctx.needs_input_grad[1]:
            grad_b = unbroadcast_graph(-grad * (a / b) / b, b.shape)
        return grad_a, grad_b


class Remainder(Function):
    """a mod b with the divisor's sign (Python's ``%``, ``torch.remainder``), broadcast together.

    Local derivative (PyTorch's): 1 for a; ``-(a // b)`` for b, with floor division's own
    rounding (``np.floor_divide``, as torch's ``div(rounding_mode="floor")``): -1 // inf is -1
    where floor(-1 / inf) = floor(-0) would say 0. Shape: broadcast shape.
    Integer division by zero raises ZeroDivisionError (PyTorch raises too; NumPy gives 0).
    """

    owns_grads = True

    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        if a.shape != b.shape:
            _binary_shapes("remainder", a, b)
        if a.dtype.kind in "iub" and b.dtype.kind in "iub" and not np.all(b):
            raise ZeroDivisionError(f"remainder: integer division by zero ({a.dtype} by a 0 "
                                    "in the divisor; PyTorch raises ZeroDivisionError too)")
        ctx.a, ctx.b = a, b
        return np.mod(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.a, ctx.b
        grad_a = unbroadcast(grad, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = (unbroadcast(-grad * np.floor_divide(a, b), b.shape)
                  if ctx.needs_input_grad[1] else None)
        return grad_a, grad_b

    @staticmethod
    def backward_graph(ctx, grad):
        # floor(a / b) is piecewise constant: a constant factor, so no second derivative
        a, b = ctx.a, ctx.b
        grad_a = unbroadcast_graph(grad, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = None
        if ctx.needs_input_grad[1]:
            # torch reads a and b through a differentiable floor division (derivative 0)
            floored = grad * -np.floor_divide(a, b).astype(grad.dtype)
            grad_b = unbroadcast_graph(
                linked_to(linked_to(floored, ctx.inputs[0]), ctx.inputs[1]), b.shape)
        return grad_a, grad_b


class Hypot(Function):
    """sqrt(a^2 + b^2) (``np.hypot``: no overflow for huge a or b, and inf where either is
    infinite, even beside a NaN, as C's hypot and torch). Broadcast together.

    Local derivative: a / hypot(a, b) and b / hypot(a, b), the ratio taken first (so a
    subnormal a gives 1, as torch, and a huge upstream gradient does not overflow).
    Shape: broadcast shape.
    """

    owns_grads = True
    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        if a.shape != b.shape:
            _binary_shapes("hypot", a, b)
        out = np.hypot(a, b)
        ctx.a, ctx.b, ctx.out = a, b, out
        return out

    @staticmethod
    def backward(ctx, grad):
        # grad * (a / out): the ratio is in [-1, 1], so neither a subnormal out (grad / out
        # overflowed to inf, times a subnormal a gave inf where torch's d/da is 1) nor a huge
        # upstream gradient (torch's grad * a overflows) leaves the finite range; 0/0 at the
        # origin is NaN, as torch
        a, b, out = ctx.a, ctx.b, ctx.out
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_a = unbroadcast(grad * (a / out), a.shape) if ctx.needs_input_grad[0] else None
            grad_b = unbroadcast(grad * (b / out), b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.inputs
        out = Hypot.apply(a, b)
        grad_a = unbroadcast_graph(grad * (a / out), ctx.a.shape) if ctx.needs_input_grad[0] \
            else None
        grad_b = unbroadcast_graph(grad * (b / out), ctx.b.shape) if ctx.needs_input_grad[1] \
            else None
        return grad_a, grad_b


class Copysign(Function):
    """|a| with the sign of b (signed zeros count; ``np.copysign``). Broadcast together.

    Local derivative, as torch's ``copysign_tensor_self_backward`` (FunctionsManual.cpp): for a,
    result / a (+-1), 0 where a == 0 (the kink) and NaN where a is infinite (inf / inf); for b,
    zeros (b only chooses a sign), a gradient of b's shape rather than none, so
    ``autograd.grad`` returns zeros for b, as torch. Shape: broadcast shape.
    """

    owns_grads = True
    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        if a.shape != b.shape:
            _binary_shapes("copysign", a, b)
        out = np.copysign(a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            ctx.ratio = np.where(a == 0, 0, out / a).astype(out.dtype, copy=False)
        ctx.a_shape, ctx.b_shape, ctx.b_dtype = a.shape, b.shape, b.dtype
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_a = unbroadcast(grad * ctx.ratio, ctx.a_shape) if ctx.needs_input_grad[0] else None
        grad_b = np.zeros(ctx.b_shape, dtype=ctx.b_dtype) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b

    @staticmethod
    def backward_graph(ctx, grad):
        grad_a = None
        if ctx.needs_input_grad[0]:
            # torch's result / a reads a and b (derivative 0 almost everywhere): linked to both
            ratio = linked_to(linked_to(grad * ctx.ratio, ctx.inputs[0]), ctx.inputs[1])
            grad_a = unbroadcast_graph(ratio, ctx.a_shape)
        grad_b = Tensor._make(np.zeros(ctx.b_shape, dtype=ctx.b_dtype), False, None) \
            if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Logaddexp(Function):
    """log(exp(a) + exp(b)) without overflow (``np.logaddexp``). Broadcast together.

    Local derivative, as torch (derivatives.yaml): 1 / (1 + exp(b - a)) for a and
    1 / (1 + exp(a - b)) for b, so logaddexp(inf, 1) gives 1 and 0; where both are -inf the
    gradient is 0 (gradwise's choice: torch's formula gives NaN there). Under create_graph the
    same formula is recorded, so second derivatives are torch's. Shape: broadcast shape.
    """

    owns_grads = True
    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        if a.shape != b.shape:
            _binary_shapes("logaddexp", a, b)
        ctx.a, ctx.b = a, b
        ctx.empty = (a == -np.inf) & (b == -np.inf)
        return np.logaddexp(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.a, ctx.b
        grad_a = grad_b = None
        with np.errstate(over="ignore", invalid="ignore"):
            if ctx.needs_input_grad[0]:
                grad_a = unbroadcast(np.where(ctx.empty, 0, grad / (1 + np.exp(b - a))), a.shape)
            if ctx.needs_input_grad[1]:
                grad_b = unbroadcast(np.where(ctx.empty, 0, grad / (1 + np.exp(a - b))), b.shape)
        return grad_a, grad_b

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.inputs
        zero = np.zeros((), dtype=ctx.a.dtype)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast_graph(
                Where.apply(ctx.empty, zero, grad / ((b - a).exp() + 1)), ctx.a.shape)
        if ctx.needs_input_grad[1]:
            grad_b = unbroadcast_graph(
                Where.apply(ctx.empty, zero, grad / ((a - b).exp() + 1)), ctx.b.shape)
        return grad_a, grad_b


class Neg(Function):
    """-x.

    Local derivative: -1. Shape: x -> same.
    """

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return (-grad,)

    @staticmethod
    def backward_graph(ctx, grad):
        return (-grad,)


class Cast(Function):
    """x converted to another dtype.

    Local derivative: 1; the gradient is converted back to x's dtype. Shape: x -> same.
    """

    torch_name = "ToCopy"  # PyTorch's node name (ToCopyBackward0)

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return (grad.astype(ctx.dtype),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (Cast.apply(grad, ctx.dtype),)


def _power(x: np.ndarray, p: float) -> np.ndarray:
    """x ** p computed the way PyTorch's CPU kernel computes it for the exponents it special-cases.

    PyTorch evaluates x^0.5 as sqrt, x^-0.5 as 1 / sqrt, x^-1 as 1 / x and x^-2 as 1 / x^2,
    which differ from C's pow at -0 (1 / sqrt(-0) = -inf where pow(-0, -0.5) = +inf); matching
    them keeps the sign of infinities, values and gradients the same as PyTorch's.
    """
    if p == 2:
        return x * x
    if p == 3:
        return x * x * x
    if p == 0.5:
        return np.sqrt(x)
    if p == -0.5:
        return 1 / np.sqrt(x)
    if p == -1:
        return 1 / x
    if p == -2:
        return 1 / (x * x)
    return x**p


class PowScalar(Function):
    """x ** p for a constant Python number p.

    Local derivative: p x^(p-1), taken as exactly 0 when p == 0 (x^0 is the constant 1, so its
    derivative is 0 even at x = 0, where p x^(p-1) would be 0 * inf = NaN; PyTorch does the same).
    Shape: x -> same.
    """

    torch_name = "Pow"  # PyTorch's node name (PowBackward0)

    owns_grads = True

    @staticmethod
    def forward(ctx, x, exponent):
        ctx.x, ctx.exponent = x, exponent
        return _power(x, exponent)

    @staticmethod
    def backward(ctx, grad):
        # d(x^p)/dx = p x^(p-1)
        x, p = ctx.x, ctx.exponent
        if p == 0:
            return (np.zeros_like(grad),)
        if p == 2:
            return (grad * 2 * x,)
        return (grad * (p * _power(x, p - 1)),)

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        p = ctx.exponent
        if p == 0:
            return (_zeros_like_graph(grad),)
        return (grad * (PowScalar.apply(x, p - 1) * p),)


class Pow(Function):
    """a ** b with both sides tensors (broadcast together).

    Local derivatives (PyTorch's ``pow_backward_self`` / ``pow_backward_exponent``):
    d/da = b a^(b-1), taken as 0 where b == 0; d/db = a^b log a, taken as 0 where a == 0 and
    b >= 0 (the limit from the right). For a negative base log a is NaN and so is d/db, and for
    a == 0 with b < 0 it is -inf, as in PyTorch.
    Shape: a, b broadcastable -> broadcast shape; each gradient is summed back to its input.
    """

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
        a, b, out = ctx.a, ctx.b, ctx.out
        grad_a = grad_b = None
        with np.errstate(divide="ignore", invalid="ignore"):
            # as torch: the base's gradient is a selection (an inf or NaN gradient stays 0
            # where b == 0), the exponent's a product (inf * 0 = NaN where a == 0, b >= 0)
            if ctx.needs_input_grad[0]:
                # the mask goes over the product with grad, as PyTorch's where(): an exponent of
                # 0 gives 0 even for a NaN incoming gradient (which a second derivative meets)
                grad_a = np.where(b == 0, 0, grad * (b * a ** (b - 1))).astype(grad.dtype,
                                                                               copy=False)
                grad_a = unbroadcast(grad_a, a.shape)
            if ctx.needs_input_grad[1]:
                local = np.where((a == 0) & (b >= 0), 0, out * np.log(a))
                grad_b = unbroadcast(grad * local.astype(grad.dtype, copy=False), b.shape)
        return grad_a, grad_b

    @staticmethod
    def backward_graph(ctx, grad):
        a, b = ctx.inputs
        zero = np.zeros((), dtype=grad.dtype)
        grad_a = grad_b = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if ctx.needs_input_grad[0]:
                grad_a = unbroadcast_graph(
                    Where.apply(ctx.b == 0, zero, grad * (b * Pow.apply(a, b - 1))), a.shape)
            if ctx.needs_input_grad[1]:
                local = Where.apply((ctx.a == 0) & (ctx.b >= 0), zero,
                                    Pow.apply(a, b) * Log.apply(a))
                grad_b = unbroadcast_graph(grad * local, b.shape)
        return grad_a, grad_b


class Exp(Function):
    """e^x.

    Local derivative: e^x (the saved output). Shape: x -> same.
    """

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

    @staticmethod
    def backward_graph(ctx, grad):
        # torch's formula: grad * result (the output, not e^x recomputed from an input that
        # may have changed in place since)
        return (grad * ctx.result,)


class Log(Function):
    """The natural logarithm.

    Local derivative: 1 / x (inf at 0, as in PyTorch). Shape: x -> same.
    """

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        # d(log x)/dx = 1/x
        return (grad / ctx.x,)

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad / ctx.inputs[0],)


class Sqrt(Function):
    """The square root.

    Local derivative: 1 / (2 sqrt x): inf at 0 (and -inf at -0), PyTorch's sqrt'(0). Shape:
    x -> same.
    """

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

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad / (ctx.result * 2),)  # torch's: from the output (result)


class Abs(Function):
    """|x|.

    Local derivative: sgn(x), taken as 0 at x = 0 and at NaN, as PyTorch's ``sgn``. Shape:
    x -> same.
    """

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        # d|x|/dx = sign(x), taken as 0 at x = 0 like PyTorch
        return (grad * sgn(ctx.x),)

    @staticmethod
    def backward_graph(ctx, grad):
        # sgn(x) is piecewise constant: its derivative is 0 (torch's sgn node, so linked to x)
        return (linked_to(grad * sgn(ctx.x), ctx.inputs[0]),)


class Clip(Function):
    """x clamped into [lo, hi] (either bound may be None), PyTorch's ``clamp``.

    Local derivative: 1 inside [lo, hi], bounds included, 0 where the value was clipped.
    Shape: x -> same.
    """
    torch_name = "ClampBackward1"  # PyTorch's node for clamp(min, max)

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
        return (select_grad(inside, grad),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (select_grad_graph(_clip_inside(ctx), grad),)


class Hardtanh(Clip):
    """x clamped into [lo, hi], PyTorch's ``hardtanh`` (relu6 is ``hardtanh(x, 0, 6)``).

    Local derivative (torch's ``hardtanh_backward``): 1 strictly inside (lo, hi), 0 at the
    bounds and beyond (where ``clamp`` keeps the bounds), and a NaN passes its gradient on.
    Shape: x -> same.
    """
    torch_name = "Hardtanh"

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.x, ctx.lo, ctx.hi = x, lo, hi
        return np.clip(x, lo, hi)

    @staticmethod
    def _active(ctx) -> np.ndarray:
        return ~((ctx.x <= ctx.lo) | (ctx.x >= ctx.hi))

    @staticmethod
    def backward(ctx, grad):
        return (select_grad(Hardtanh._active(ctx), grad),)

    @staticmethod
    def backward_graph(ctx, grad):
        # torch's hardtanh_backward reads x (derivative 0): linked to x
        return (linked_to(select_grad_graph(Hardtanh._active(ctx), grad), ctx.inputs[0]),)


class Hardsigmoid(Function):
    """``min(max(x + 3, 0), 6) / 6`` (Howard et al. 2019, MobileNetV3), as torch computes it.

    Local derivative (torch's ``hardsigmoid_backward``): 1/6 strictly inside (-3, 3), else 0
    (at -3 and 3 too, and for NaN). Shape: x -> same.
    """

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.clip(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, grad):
        x = ctx.x
        return (select_grad((x > -3) & (x < 3), grad / 6),)

    @staticmethod
    def backward_graph(ctx, grad):
        x = ctx.x
        # torch's hardsigmoid_backward reads x (torch cannot differentiate it again; gradwise
        # gives the 0 it is almost everywhere): linked to x
        return (linked_to(select_grad_graph((x > -3) & (x < 3), grad / 6), ctx.inputs[0]),)


class Hardswish(Function):
    """``x min(max(x + 3, 0), 6) / 6`` (Howard et al. 2019, MobileNetV3), as torch computes it.

    Local derivative (torch's ``hardswish_backward``): 0 for x <= -3, ``x / 3 + 1/2`` for
    -3 < x < 3, 1 from 3 on (and for NaN). One selection, not the product rule of
    ``x * hardsigmoid(x)``, whose two terms give inf - inf = NaN under an infinite gradient.
    Shape: x -> same.
    """

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return x * np.clip(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, grad):
        x = ctx.x
        with np.errstate(invalid="ignore"):
            inner = np.where(x < 3, grad * (x / 3 + 0.5), grad)
        return (select_grad(~(x <= -3), inner),)

    @staticmethod
    def backward_graph(ctx, grad):
        # d/dx of grad (x / 3 + 1/2) is grad / 3 inside (-3, 3), as torch's double backward
        # (x / 3 + 1/2 only where it is used: at x = -inf it would send inf * 0 = NaN back to
        # the upstream gradient through the product, where torch gives 0)
        x = ctx.x
        (x_t,) = ctx.inputs
        middle = (x > -3) & (x < 3)
        local = Where.apply(middle, x_t / 3 + 0.5, np.zeros((), x.dtype))
        inner = Where.apply(x < 3, grad * local, grad)
        return (select_grad_graph(~(x <= -3), inner),)


class SiLU(Function):
    """``x sigmoid(x)`` (SiLU / swish, Elfwing et al. 2017), as ``torch.nn.functional.silu``.

    Local derivative (torch's ``silu_backward``): ``s (1 + x (1 - s))`` with s = sigmoid(x), one
    factor: the product rule of ``x * sigmoid(x)`` gives inf - inf = NaN under an infinite
    gradient where torch gives +-inf. Shape: x -> same.
    """
    torch_name = "Silu"

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        s = stable_sigmoid(x)
        ctx.x, ctx.s = x, s
        return x * s

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.x, ctx.s
        with np.errstate(invalid="ignore"):
            return (grad * (s * (1 + x * (1 - s))),)

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        s = Sigmoid.apply(x)
        return (grad * (s * (x * (1 - s) + 1)),)


class Mish(Function):
    """``x tanh(softplus(x))`` (Misra 2019), as ``torch.nn.functional.mish``.

    Local derivative (torch's ``mish_backward``): ``t + x sigmoid(x) (1 - t^2)`` with
    t = tanh(softplus(x)), one factor (see :class:`SiLU`). Shape: x -> same.
    """

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        t = np.tanh(np.logaddexp(np.zeros((), x.dtype), x))
        ctx.x, ctx.t = x, t
        return x * t

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.x, ctx.t
        with np.errstate(invalid="ignore"):
            return (grad * (t + x * stable_sigmoid(x) * (1 - t * t)),)

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        t = Tanh.apply(Softplus.apply(x, 1.0, 20.0))
        return (grad * (t + x * Sigmoid.apply(x) * (1 - t * t)),)


class _Pick(Function):
    """Elementwise maximum or minimum of two tensors (broadcast together).

    Local derivative, PyTorch's rule for ``maximum``: the input that wins takes the gradient,
    a tie splits it evenly, and where either side is NaN (no side wins, none ties) *both* take
    all of it. Shape: a, b broadcastable -> broadcast shape.
    """

    owns_grads = True
    pick = staticmethod(np.maximum)
    loses = staticmethod(np.less)  # where a loses to b

    @classmethod
    def _forward(cls, ctx, a, b, name):
        if a.shape != b.shape:
            _binary_shapes(name, a, b)
        ctx.a, ctx.b = a, b
        return cls.pick(a, b)

    @classmethod
    def _backward(cls, ctx, grad):
        a, b = ctx.a, ctx.b
        tie = a == b
        grad_a = grad_b = None
        # torch: where(a == b, grad / 2, grad), then 0 where the side loses (a selection, so
        # an inf or NaN gradient does not reach the losing side as inf * 0 = NaN)
        half = np.where(tie, grad * np.asarray(0.5, grad.dtype), grad)
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast(select_grad(~cls.loses(a, b), half), a.shape)
        if ctx.needs_input_grad[1]:
            grad_b = unbroadcast(select_grad(~cls.loses(b, a), half), b.shape)
        return grad_a, grad_b

    @classmethod
    def _backward_graph(cls, ctx, grad):
        # the shares are piecewise constant in a and b: constant factors
        a, b = ctx.a, ctx.b
        tie = a == b
        grad_a = grad_b = None
        half = Where.apply(tie, grad * 0.5, grad)
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast_graph(select_grad_graph(~cls.loses(a, b), half), a.shape)
        if ctx.needs_input_grad[1]:
            grad_b = unbroadcast_graph(select_grad_graph(~cls.loses(b, a), half), b.shape)
        return grad_a, grad_b


class Maximum(_Pick):
    """Elementwise maximum (see :class:`_Pick` for the gradient at ties and NaN).
    """

    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        return Maximum._forward(ctx, a, b, "maximum")

    @staticmethod
    def backward(ctx, grad):
        return Maximum._backward(ctx, grad)

    @staticmethod
    def backward_graph(ctx, grad):
        return Maximum._backward_graph(ctx, grad)


class Minimum(_Pick):
    """Elementwise minimum (see :class:`_Pick` for the gradient at ties and NaN).
    """

    pick = staticmethod(np.minimum)
    loses = staticmethod(np.greater)

    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, a, b):
        return Minimum._forward(ctx, a, b, "minimum")

    @staticmethod
    def backward(ctx, grad):
        return Minimum._backward(ctx, grad)

    @staticmethod
    def backward_graph(ctx, grad):
        return Minimum._backward_graph(ctx, grad)


class ZeroLink(Function):
    """``g`` itself, joined to ``x`` with derivative 0 (see :func:`linked_to`).

    Local derivative: 1 for g, 0 for x (zeros of x's shape, so ``autograd.grad`` gives zeros
    for x, not None, as torch's ``threshold_backward`` node does). Shape: ``g``'s.
    """

    owns_grads = True
    saves_inputs = False
    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, g, x):
        ctx.x_shape, ctx.x_dtype = x.shape, x.dtype
        return g.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad, np.zeros(ctx.x_shape, ctx.x_dtype)

    @staticmethod
    def backward_graph(ctx, grad):
        return grad, Tensor._make(np.zeros(ctx.x_shape, ctx.x_dtype), False, None)


class ReadsInput(Function):
    """``y`` itself, marked as computed by an op whose torch backward reads the input ``x``.

    For a composite op (adaptive pooling, reflect and replicate padding) built from ops whose
    own backwards read nothing of ``x`` (mean, index_select, stack), while torch's single node
    reads ``x``: under ``create_graph`` the incoming gradient is :func:`linked_to` ``x``, so the
    gradient the composite sends back requires grad and differentiates to zeros exactly where
    torch's does. Without ``create_graph`` it passes the gradient through untouched.

    Local derivative: 1 for y; nothing for x (it gets no gradient along this edge). Shape:
    ``y``'s; the output is a view of y.
    """

    saves_inputs = False
    may_send_no_grad = True
    returns_view = True
    tensor_args = (0, 1)

    @staticmethod
    def forward(ctx, y, x):
        return y.view()

    @staticmethod
    def backward(ctx, grad):
        return grad, None

    @staticmethod
    def backward_graph(ctx, grad):
        return linked_to(grad, ctx.inputs[1]), None


def reads_input(y, x):
    """``y`` marked with :class:`ReadsInput` when ``x`` requires grad and grad mode records
    (else ``y`` as it is: no node, no cost)."""
    if not (x.requires_grad and y.requires_grad):
        return y
    return ReadsInput.apply(y, x)


class Where(Function):
    """``a`` where ``condition`` holds, else ``b`` (all three broadcast together).

    Local derivative: 1 for the side picked at each position, 0 for the other; the condition
    gets none. Shape: broadcast shape; each gradient is summed back to its input's shape.
    """

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

    @staticmethod
    def backward_graph(ctx, grad):
        a_shape, b_shape = ctx.shapes
        zero = np.zeros((), dtype=grad.dtype)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast_graph(Where.apply(ctx.condition, grad, zero), a_shape)
        if ctx.needs_input_grad[1]:
            grad_b = unbroadcast_graph(Where.apply(ctx.condition, zero, grad), b_shape)
        return grad_a, grad_b


# ---- activations ------------------------------------------------------------------------------
class ReLU(Function):
    """max(x, 0).

    Local derivative: 1 for x > 0, 0 for x <= 0 (relu'(0) = 0 as in PyTorch); NaN passes its
    gradient on. Shape: x -> same.
    """

    torch_name = "Relu"  # PyTorch's node name (ReluBackward0)

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
        # PyTorch does) so that a unit sitting at 0 counts as inactive, not half-active. Since
        # out = max(x, 0), "out != 0" is "x > 0" except that a NaN passes its gradient on, as
        # PyTorch's threshold_backward does, instead of hiding it as 0. Where the mask is 0
        # the gradient is 0 even if the incoming one is inf or NaN (torch: "grad if x > 0
        # else 0"; a product would give inf * 0 = NaN).
        return (select_grad(ctx.out != 0, grad),)

    @staticmethod
    def backward_graph(ctx, grad):
        # the mask is piecewise constant: relu'' = 0, and torch's threshold_backward reads the
        # result, so the gradient is linked to x (zeros, not None, when differentiated again)
        return (linked_to(select_grad_graph(ctx.out != 0, grad), ctx.inputs[0]),)


class LeakyReLU(Function):
    """x for x > 0, ``negative_slope * x`` otherwise.

    Local derivative: 1 for x > 0, ``negative_slope`` otherwise (0 included). Shape: x -> same.
    """
    torch_name = "LeakyRelu"

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

    @staticmethod
    def backward_graph(ctx, grad):
        # torch's leaky_relu_backward reads x (derivative 0): linked to x
        return (linked_to(Where.apply(ctx.x > 0, grad, grad * ctx.slope), ctx.inputs[0]),)


class ELU(Function):
    """x for x > 0, ``alpha (e^x - 1)`` otherwise.

    Local derivative: 1 for x > 0, ``alpha e^x`` otherwise. Shape: x -> same.
    """
    torch_name = "Elu"

    observe_kind = "elu"
    owns_grads = True
    saves_output = True
    double_backward_reads_output = False  # torch's double backward reads the input

    @staticmethod
    def forward(ctx, x, alpha):
        # expm1 of min(x, 0) never overflows, whatever the size of x
        out = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
        ctx.x, ctx.out, ctx.alpha = x, out, alpha
        return out

    @staticmethod
    def backward(ctx, grad):
        # 1 for x > 0; alpha e^x otherwise (NaN stays NaN). Not out + alpha: far below 0 that
        # cancels to exactly 0 (float32 from x = -17) where alpha e^x is still positive, and an
        # inf gradient times that 0 would be NaN (torch: inf)
        x = ctx.x
        with np.errstate(invalid="ignore"):
            local = ctx.alpha * np.exp(np.minimum(x, 0))
        return (np.where(x > 0, grad, grad * local.astype(grad.dtype, copy=False)),)

    @staticmethod
    def backward_graph(ctx, grad):
        # alpha e^x on the negative side; e^0 where x >= 0, so the branch not taken stays finite
        # (an inf there would turn the zero gradient Where gives it into NaN), NaN kept. At
        # x = 0 (either sign) that constant makes the second derivative 0, as PyTorch's
        # elu double backward (which takes x < 0 as the negative side) gives
        (x,) = ctx.inputs
        zero = np.zeros((), dtype=grad.dtype)
        negative = Exp.apply(Where.apply(~(ctx.x >= 0), x, zero)) * ctx.alpha
        return (Where.apply(ctx.x > 0, grad, grad * negative),)


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) without overflow: ``scipy.special.expit``, one pass, correctly rounded
    where a hand-written ``e^-|x|`` form needs five passes."""
    return special.expit(x)


class Sigmoid(Function):
    """1 / (1 + e^-x), computed without overflow.

    Local derivative: sigma (1 - sigma), from the saved output. Shape: x -> same.
    """

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

    @staticmethod
    def backward_graph(ctx, grad):
        out = ctx.result  # torch's: from the output (result)
        return (grad * out * (1 - out),)


class Tanh(Function):
    """tanh(x).

    Local derivative: 1 - tanh^2, from the saved output. Shape: x -> same.
    """

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

    @staticmethod
    def backward_graph(ctx, grad):
        out = ctx.result  # torch's: from the output (result)
        return (grad * (1 - out * out),)


class Softplus(Function):
    """log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (PyTorch).

    Local derivative: sigmoid(beta x), and 1 in the linear region; its own derivative is 0 at
    beta x = threshold (torch's double backward). Shape: x -> same.
    """

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

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        bx = ctx.beta * ctx.x
        soft = grad * Sigmoid.apply(x * ctx.beta)
        at_threshold = bx == ctx.threshold
        if at_threshold.any():
            # torch's softplus_double_backward masks with beta x < threshold: at the threshold
            # itself the first derivative is sigmoid's but the second is 0
            constant = stable_sigmoid(bx).astype(ctx.x.dtype, copy=False)
            soft = Where.apply(at_threshold, grad * constant, soft)
        return (Where.apply(bx > ctx.threshold, grad, soft),)


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


class GELU(Function):
    """x Phi(x), Phi the standard normal CDF (``scipy.special.ndtr``, exact), or the tanh form
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) with ``approximate='tanh'``.

    Local derivative: Phi(x) + x phi(x), phi the normal density; for the tanh form the
    derivative of that expression. Shape: x -> same.
    """
    torch_name = "Gelu"

    observe_kind = "gelu"
    owns_grads = True

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.x, ctx.approximate = x, approximate
        if approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
            ctx.tanh = np.tanh(inner)
            return 0.5 * x * (1 + ctx.tanh)
        ctx.cdf = special.ndtr(x)  # Phi(x) = (1 + erf(x / sqrt 2)) / 2, exact to the last ulp
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

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        if ctx.approximate == "tanh":
            t = Tanh.apply((x + PowScalar.apply(x, 3) * 0.044715) * _SQRT_2_OVER_PI)
            d_inner = (x * x * (3 * 0.044715) + 1) * _SQRT_2_OVER_PI
            return (grad * ((t + 1) * 0.5 + x * (1 - t * t) * d_inner * 0.5),)
        pdf = Exp.apply(x * x * -0.5) * _INV_SQRT_2PI
        return (grad * (NormalCDF.apply(x) + x * pdf),)


class NormalCDF(Function):
    """Phi(x), the standard normal distribution function (``scipy.special.ndtr``).

    Used by GELU's differentiable backward. Local derivative: phi(x) = e^(-x^2/2) / sqrt(2 pi).
    Shape: x -> same.
    """

    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return special.ndtr(x)

    @staticmethod
    def backward(ctx, grad):
        x = ctx.x
        return (grad * (_INV_SQRT_2PI * np.exp(-0.5 * x * x)),)

    @staticmethod
    def backward_graph(ctx, grad):
        (x,) = ctx.inputs
        return (grad * (Exp.apply(x * x * -0.5) * _INV_SQRT_2PI),)


def _zeros_like_graph(grad):
    """Zeros shaped like ``grad`` that stay connected to it (with gradient 0)."""
    return Where.apply(np.zeros((), dtype=bool), grad, np.zeros((), dtype=grad.dtype))


def _clip_inside(ctx) -> np.ndarray:
    """1 inside [lo, hi] (bounds included, as PyTorch's clamp), 0 where the value was clipped."""
    x = ctx.x
    inside = np.ones(x.shape, dtype=bool)
    if ctx.lo is not None:
        inside &= x >= ctx.lo
    if ctx.hi is not None:
        inside &= x <= ctx.hi
    return inside


class Sin(Function):
    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad):
        # d(sin x)/dx = cos x
        return (grad * np.cos(ctx.x),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad * Cos.apply(ctx.inputs[0]),)


class Cos(Function):
    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.cos(x)

    @staticmethod
    def backward(ctx, grad):
        # d(cos x)/dx = -sin x
        return (grad * -np.sin(ctx.x),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad * -Sin.apply(ctx.inputs[0]),)


class Log1p(Function):
    torch_name = "Log1P"
    owns_grads = True

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.log1p(x)

    @staticmethod
    def backward(ctx, grad):
        # d(log(1 + x))/dx = 1 / (1 + x); log1p keeps precision for small x
        return (grad / (1 + ctx.x),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad / (ctx.inputs[0] + 1),)


class Expm1(Function):
    owns_grads = True
    saves_inputs = False
    saves_output = True

    @staticmethod
    def forward(ctx, x):
        ctx.out = np.expm1(x)
        return ctx.out

    @staticmethod
    def backward(ctx, grad):
        # d(e^x - 1)/dx = e^x = out + 1
        return (grad * (ctx.out + 1),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad * (ctx.result + 1),)  # torch's: from the output (result)




class _PiecewiseConstant(Function):
    """A step function of x (sign, floor, ceil, round, trunc): recorded, as torch records it
    (``SignBackward0``, ``FloorBackward0``...), so the result requires grad when x does.

    Local derivative: 0 everywhere (torch's ``zeros_like(grad)``: a NaN or inf upstream still
    gives 0). Shape: unchanged.
    """

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def _value(x, *args):
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, x, *args):
        ctx.args = args  # round's decimals, for onnx.export
        return np.asarray(cls._value(x, *args))

    @staticmethod
    def backward(ctx, grad):
        return (np.zeros_like(grad),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (Tensor._make(np.zeros_like(grad._data), False, None),)


class Sign(_PiecewiseConstant):
    """-1, 0 or 1 by the sign of x; 0 at NaN (torch.sign; NumPy would say NaN)."""

    @staticmethod
    def _value(x):
        out = np.sign(x)
        if out.dtype.kind == "f":
            out = np.where(np.isnan(out), out.dtype.type(0), out)
        return out


class Floor(_PiecewiseConstant):
    """The largest integer <= x (torch.floor)."""

    @staticmethod
    def _value(x):
        return np.floor(x)


class Ceil(_PiecewiseConstant):
    """The smallest integer >= x (torch.ceil)."""

    @staticmethod
    def _value(x):
        return np.ceil(x)


class Round(_PiecewiseConstant):
    """x rounded half to even, to ``decimals`` places (torch.round)."""

    _value = staticmethod(lambda x, decimals=0: np.round(x, decimals))


class Trunc(_PiecewiseConstant):
    """x rounded toward zero (torch.trunc)."""

    @staticmethod
    def _value(x):
        return np.trunc(x)


class NanToZero(Function):
    """x with NaN entries replaced by 0: the summand of ``nansum`` / ``nanmean``.

    Local derivative: torch's ``nansum_backward``, the product ``grad * (x is not NaN)`` (not a
    selection): an inf or NaN arriving at a NaN entry gives NaN there (inf * 0), as torch.
    Shape: unchanged.
    """

    owns_grads = True
    saves_inputs = False

    @staticmethod
    def forward(ctx, x):
        kept = ~np.isnan(x)
        ctx.kept = kept
        return np.where(kept, x, np.zeros((), x.dtype))

    @staticmethod
    def backward(ctx, grad):
        with np.errstate(invalid="ignore"):
            return (grad * ctx.kept.astype(grad.dtype),)

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad * ctx.kept.astype(grad._data.dtype),)
