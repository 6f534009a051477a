"""Array-likes (NumPy arrays, lists, numbers) are constants wherever an op or layer takes a tensor.

Issue 11's "real bug": ``Function.apply`` numbered ``needs_input_grad`` over the Tensor arguments
only, so an ndarray input shifted the positions and backward crashed (IndexError) or sent a
gradient to the wrong input. Each case runs the same computation twice, once with the constant as
an ndarray and once as a Tensor, and the parameter gradients must agree exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn
from gradwise.autograd.function import Function
from gradwise.autograd.ops import conv, elementwise, linalg, norm, reduce, shape
from gradwise.nn import functional as F

RNG = np.random.default_rng(0)


def _layers():
    x2 = RNG.standard_normal((3, 4)).astype(np.float32)
    x4 = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    x3 = RNG.standard_normal((2, 3, 7)).astype(np.float32)
    x5 = RNG.standard_normal((2, 2, 4, 5, 4)).astype(np.float32)
    return [
        ("Linear", lambda: nn.Linear(4, 3, rng=0), x2),
        ("Conv2d", lambda: nn.Conv2d(3, 2, 3, padding=1, rng=0), x4),
        ("BatchNorm1d", lambda: nn.BatchNorm1d(4), x2),
        ("BatchNorm2d", lambda: nn.BatchNorm2d(3), x4),
        ("LayerNorm", lambda: nn.LayerNorm(4), x2),
        ("Flatten", lambda: nn.Flatten(), x4),
        ("MaxPool2d", lambda: nn.MaxPool2d(2), x4),
        ("AvgPool2d", lambda: nn.AvgPool2d(2), x4),
        # issue 11 A: every rank, and the options that take the N-d reference ops
        ("Conv1d", lambda: nn.Conv1d(3, 4, 3, padding=1, groups=1, rng=0), x3),
        ("Conv3d", lambda: nn.Conv3d(2, 4, 2, groups=2, rng=0), x5),
        ("ConvTranspose1d", lambda: nn.ConvTranspose1d(3, 2, 3, stride=2, rng=0), x3),
        ("ConvTranspose3d", lambda: nn.ConvTranspose3d(2, 2, 2, stride=2, rng=0), x5),
        ("MaxPool2d-ceil-dilation", lambda: nn.MaxPool2d(3, 2, 1, 2, ceil_mode=True), x4),
        ("AvgPool2d-options", lambda: nn.AvgPool2d(3, 2, 1, True, False, None), x4),
        ("MaxPool1d", lambda: nn.MaxPool1d(2, ceil_mode=True), x3),
        ("MaxPool3d", lambda: nn.MaxPool3d(2, dilation=(1, 2, 1)), x5),
        ("AvgPool3d", lambda: nn.AvgPool3d(2, divisor_override=3), x5),
        ("LPPool3d", lambda: nn.LPPool3d(2, 2), x5),
        ("AdaptiveAvgPool3d", lambda: nn.AdaptiveAvgPool3d(2), x5),
        ("AdaptiveMaxPool3d", lambda: nn.AdaptiveMaxPool3d(2), x5),
        ("ReLU", lambda: nn.ReLU(), x2),
        ("Tanh", lambda: nn.Tanh(), x2),
        ("Sigmoid", lambda: nn.Sigmoid(), x2),
        ("GELU", lambda: nn.GELU(), x2),
        ("ELU", lambda: nn.ELU(), x2),
        ("LeakyReLU", lambda: nn.LeakyReLU(), x2),
        ("Softmax", lambda: nn.Softmax(dim=1), x2),
        ("LogSoftmax", lambda: nn.LogSoftmax(dim=1), x2),
        ("Dropout-eval", lambda: nn.Dropout(0.5).eval(), x2),
        ("Sequential", lambda: nn.Sequential(nn.Linear(4, 5, rng=1), nn.ReLU(),
                                             nn.Linear(5, 2, rng=2)), x2),
    ]


@pytest.mark.parametrize(("name", "make", "x"), _layers(), ids=[c[0] for c in _layers()])
def test_every_layer_takes_an_ndarray(name, make, x):
    weight = np.linspace(-1, 1, 1 + int(np.prod(make()(gw.tensor(x)).shape)), dtype=np.float32)[1:]
    grads = []
    for as_array in (True, False):
        layer = make()
        out = layer(x if as_array else gw.tensor(x))
        assert isinstance(out, gw.Tensor)
        if any(p.requires_grad for p in layer.parameters()):
            (out * weight.reshape(out.shape)).sum().backward()
        grads.append([np.asarray(p.grad) for p in layer.parameters()])
    for with_array, with_tensor in zip(*grads, strict=True):
        np.testing.assert_array_equal(with_array, with_tensor)


def _w(*shape):
    return gw.tensor(RNG.standard_normal(shape).astype(np.float32), requires_grad=True)


def _ops():
    """(name, fn(constant, w) -> Tensor, constant, w): the constant sits in an input position."""
    a = RNG.standard_normal((3, 4)).astype(np.float32)
    img = RNG.standard_normal((2, 3, 5, 5)).astype(np.float32)
    return [
        ("Add-left", lambda c, w: elementwise.Add.apply(c, w), a, _w(3, 4)),
        ("Add-right", lambda c, w: elementwise.Add.apply(w, c), a, _w(3, 4)),
        ("Sub-left", lambda c, w: elementwise.Sub.apply(c, w), a, _w(3, 4)),
        ("Mul-left", lambda c, w: elementwise.Mul.apply(c, w), a, _w(3, 4)),
        ("Div-left", lambda c, w: elementwise.Div.apply(c, w), a, _w(3, 4)),
        ("Pow-left", lambda c, w: elementwise.Pow.apply(c, w), np.abs(a) + 1, _w(3, 4)),
        ("Maximum-left", lambda c, w: elementwise.Maximum.apply(c, w), a, _w(3, 4)),
        ("Minimum-left", lambda c, w: elementwise.Minimum.apply(c, w), a, _w(3, 4)),
        ("Where-a", lambda c, w: elementwise.Where.apply(c > 0, c, w), a, _w(3, 4)),
        ("MatMul-left", lambda c, w: linalg.MatMul.apply(c, w), a, _w(4, 2)),
        ("MatMul-right", lambda c, w: linalg.MatMul.apply(w, c), a, _w(2, 3)),
        ("Linear-x", lambda c, w: linalg.Linear.apply(c, w, np.ones(2, np.float32)), a, _w(2, 4)),
        ("Linear-bias", lambda c, w: linalg.Linear.apply(w, c[:2], c[0, :2]), a, _w(5, 4)),
        ("Conv2d-x", lambda c, w: conv.Conv2d.apply(c, w, None, (1, 1), (0, 0), (1, 1)),
         img, _w(2, 3, 3, 3)),
        ("BatchNorm-x", lambda c, w: norm.BatchNorm.apply(c, w, np.zeros(4, np.float32),
                                                          None, None, True, 0.1, 1e-5), a, _w(4)),
        ("LayerNorm-x", lambda c, w: norm.LayerNorm.apply(c, w, np.zeros(4, np.float32), 1,
                                                          1e-5), a, _w(4)),
        ("Cat", lambda c, w: shape.Cat.apply(c, w, axis=0), a, _w(2, 4)),
        ("Stack", lambda c, w: shape.Stack.apply(w, c, axis=0), a, _w(3, 4)),
        ("Sum-list", lambda c, w: reduce.Sum.apply(c.tolist()) * w, a, _w(1)),
        ("F.linear", lambda c, w: F.linear(c, w), a, _w(2, 4)),
        ("F.conv2d", lambda c, w: F.conv2d(c, w), img, _w(2, 3, 3, 3)),
        ("F.layer_norm", lambda c, w: F.layer_norm(c, (4,), w), a, _w(4)),
        ("F.batch_norm", lambda c, w: F.batch_norm(c, None, None, w, training=True), a, _w(4)),
        ("gw.cat", lambda c, w: gw.cat([c, w]), a, _w(1, 4)),
        ("gw.stack", lambda c, w: gw.stack([w, c]), a, _w(3, 4)),
        ("gw.where", lambda c, w: gw.where(c > 0, c, w), a, _w(3, 4)),
        ("gw.maximum", lambda c, w: gw.maximum(c, w), a, _w(3, 4)),
    ]


@pytest.mark.parametrize(("name", "fn", "const", "w"), _ops(), ids=[c[0] for c in _ops()])
def test_every_op_takes_an_ndarray_constant(name, fn, const, w):
    out = fn(const, w)
    out.sum().backward()
    from_array = np.asarray(w.grad)
    w.grad = None
    fn(gw.tensor(const), w).sum().backward()
    np.testing.assert_array_equal(from_array, np.asarray(w.grad))


class _ScaledSum(Function):
    """sum(x * factor) with ``factor`` a non-input argument (tensor_args=(0,))."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return np.asarray((x * factor).sum())

    @staticmethod
    def backward(ctx, grad):
        return (grad * ctx.factor,)


def test_a_tensor_in_a_non_input_position_gets_no_gradient_slot():
    x = _w(4, 3)
    factor = gw.tensor(np.full((4, 3), 2.0, np.float32), requires_grad=True)
    # a Function defined outside gradwise: a Tensor that requires grad there would silently get
    # no gradient (torch differentiates it), so it is refused; a detached one is a constant
    with pytest.raises(RuntimeError, match="argument 1 is a Tensor that requires grad"):
        _ScaledSum.apply(x, factor)
    _ScaledSum.apply(x, factor.detach()).backward()
    np.testing.assert_array_equal(np.asarray(x.grad), np.full((4, 3), 2.0, np.float32))
    assert factor.grad is None


def test_a_bce_target_is_an_input_as_in_torch():
    # PyTorch differentiates BCE targets: d/dy of mean((1 - y) x + softplus(-x)) is -x / N
    logits = _w(4, 3)
    target = gw.tensor(np.tile(np.array([0.0, 1.0, 0.0], np.float32), (4, 1)),
                       requires_grad=True)
    from gradwise.autograd.ops import loss

    loss.BCEWithLogits.apply(logits, target, "mean").backward()
    assert logits.grad is not None
    np.testing.assert_allclose(np.asarray(target.grad), -np.asarray(logits) / 12, rtol=1e-6)


def test_a_non_numeric_constant_names_the_op():
    with pytest.raises(TypeError, match="Add: argument 0"):
        elementwise.Add.apply("abc", _w(1))
