"""A user's custom Function with a Tensor that requires grad outside ``tensor_args`` is refused
(torch differentiates every Tensor argument; gradwise used to pass its array and give it no
gradient, silently: found by the fifth newcomer review of issue 12)."""

import numpy as np
import pytest
from tests.autograd.test_edge_regressions_fix7b import _ported_function

import gradwise as gw
from gradwise.autograd.function import Function

MulBoth = _ported_function(gw)  # torch's Function, every positional argument an input


class Mul(MulBoth):
    """The same Function as a torch user would port it: only the default tensor_args."""

    tensor_args = Function.tensor_args

    @staticmethod
    def backward(ctx, grad):
        return (grad * ctx.saved_tensors[1],)  # one gradient: one input


def test_second_tensor_requiring_grad_outside_tensor_args_is_refused():
    x, y = gw.tensor([1.0, 2.0], requires_grad=True), gw.tensor([3.0, 4.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Mul.apply: argument 1 is a Tensor that requires "
                                           r"grad.*tensor_args = None"):
        Mul.apply(x, y)


def test_constants_and_declared_inputs_still_work():
    x, y = gw.tensor([1.0, 2.0], requires_grad=True), gw.tensor([3.0, 4.0], requires_grad=True)
    Mul.apply(x, y.detach()).sum().backward()  # a constant second argument
    np.testing.assert_allclose(np.asarray(x.grad), [3.0, 4.0])
    with gw.no_grad():  # nothing is recorded: nothing to lose
        Mul.apply(x, y)
    x.grad = None
    MulBoth.apply(x, y).sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), [3.0, 4.0])
    np.testing.assert_allclose(np.asarray(y.grad), [1.0, 2.0])
