"""gradcheck catches wrong gradients; detect_anomaly names the first op to make a NaN or Inf."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw


class WrongSquare(gw.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return x * x

    @staticmethod
    def backward(ctx, grad):
        return (grad * ctx.x,)  # should be 2x


def test_gradcheck_passes_on_a_correct_op_and_names_a_wrong_one():
    x = gw.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    assert gw.gradcheck(lambda t: (t * t).sum(), x)
    with pytest.raises(
        gw.GradcheckError, match=r"input 0 .*index \(0,\): analytic [\d.]+, numerical [\d.]+"
    ):
        gw.gradcheck(lambda t: WrongSquare.apply(t), x)


def test_gradcheck_refuses_float32_and_no_grad_inputs():
    # float32: torch warns and its finite differences disagree (a GradcheckError); the error
    # says why (issue 12, fix7b)
    with pytest.warns(UserWarning, match="not float64"), pytest.raises(
            gw.GradcheckError, match="input 0 is float32: finite differences need float64"):
        gw.gradcheck(lambda t: t * 2, gw.tensor([1.0], requires_grad=True))
    with pytest.raises(ValueError, match="no input requires grad"):
        gw.gradcheck(lambda t: t * 2, gw.tensor(np.array([1.0])))


def test_anomaly_names_the_forward_op_line_and_inputs():
    x = gw.tensor([1.0, -1.0], requires_grad=True)
    with gw.detect_anomaly(check_forward=True), pytest.raises(gw.AnomalyError) as info:
        (x * 2).log()  # log of a negative number: NaN
    message = str(info.value)
    assert "forward of Log" in message
    assert "test_gradcheck_and_anomaly.py" in message and "(x * 2).log()" in message
    assert "input 0: shape (2,) float32, finite min -2 max 2" in message


def test_anomaly_checks_backward_only_by_default_as_torch():
    # torch's detect_anomaly lets a forward NaN through (here one that where() masks out) and
    # checks what each backward returns; the gradient is finite (torch: [-0, 0.5])
    x = gw.tensor([-1.0, 2.0], requires_grad=True)
    with gw.detect_anomaly():
        log = x.log()
        assert np.isnan(np.asarray(log.detach())[0])
        gw.where(x > 0, log, gw.tensor(0.0)).sum().backward()
    np.testing.assert_array_equal(np.asarray(x.grad), [0.0, 0.5])
    with gw.detect_anomaly(), pytest.raises(gw.AnomalyError, match="backward of Sqrt"):
        gw.tensor([0.0, 1.0], requires_grad=True).sqrt().sum().backward()  # sqrt'(0) = inf


def test_anomaly_names_the_backward_op_and_the_parameter_it_would_reach():
    w = gw.tensor([0.0, 1.0], requires_grad=True)
    w.name = "layer1.weight"
    with gw.detect_anomaly(), pytest.raises(gw.AnomalyError) as info:
        w.sqrt().sum().backward()  # d sqrt / dw at 0 is inf
    message = str(info.value)
    assert "backward of Sqrt" in message and "layer1.weight" in message


def test_anomaly_can_ignore_inf_and_is_off_outside_the_block():
    x = gw.tensor([0.0], requires_grad=True)
    with gw.detect_anomaly(check_inf=False, check_forward=True):
        y = (x * 1).log()  # -inf, not NaN
        assert np.isinf(y.data).all()
    assert not gw.is_anomaly_enabled()
    with np.errstate(divide="ignore"):
        (x * 1).log()  # no error without anomaly mode


def test_anomaly_inside_a_create_graph_backward_names_the_op_and_line():
    # sqrt'(0) = inf appears while the create_graph backward of Sqrt runs its recorded ops
    x = gw.tensor([0.0, 4.0], dtype=np.float64, requires_grad=True)
    with gw.detect_anomaly(check_forward=True):
        y = x.sqrt().sum()  # the line the error must name
        with pytest.raises(gw.AnomalyError) as caught:
            gw.autograd.grad(y, x, create_graph=True)
    message = str(caught.value)
    assert message.startswith("backward of Sqrt (create_graph) produced a non-finite value in")
    assert "test_gradcheck_and_anomaly.py" in message
    assert "y = x.sqrt().sum()  # the line the error must name" in message


def test_anomaly_in_a_gradient_of_a_gradient_names_the_op_and_line():
    # d2/dx2 x^1.5 = 0.75 / sqrt(x): inf at 0, and 0 * inf = NaN where the weight is 0
    x = gw.tensor([0.0, 1.0], dtype=np.float64, requires_grad=True)
    with gw.detect_anomaly(check_inf=False):
        y = (x**1.5).sum()  # the op whose second derivative fails
        (g,) = gw.autograd.grad(y, x, create_graph=True)
        assert np.all(np.isfinite(np.asarray(g)))
        with pytest.raises(gw.AnomalyError) as caught:
            gw.autograd.grad((g * gw.tensor([0.0, 1.0], dtype=np.float64)).sum(), x)
    message = str(caught.value)
    assert message.startswith("backward of PowScalar produced a non-finite gradient for input 0")
    assert "the create_graph backward of PowScalar" in message
    assert "y = (x**1.5).sum()  # the op whose second derivative fails" in message
    assert "gradient it produced: shape (2,) float64, finite min 0.75 max 0.75, 1 NaN" in message
    # without the detector the same computation gives the NaN silently, as torch does
    y = (x**1.5).sum()
    (g,) = gw.autograd.grad(y, x, create_graph=True)
    (h,) = gw.autograd.grad((g * gw.tensor([0.0, 1.0], dtype=np.float64)).sum(), x)
    assert np.isnan(np.asarray(h)[0])
