"""Gradients of gradients: backward(create_graph=True), gw.autograd.grad, the functional API
(jacobian, hessian, hvp, vjp, jvp) and gradgradcheck.

Each op's second derivative is checked two ways in float64: against PyTorch (a Hessian-vector
product through ``grad(..., create_graph=True)`` on both sides) and against finite differences of
the first gradient (``gradgradcheck``).
"""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
import gradwise.nn.functional as F
from gradwise.autograd import functional as AF

RNG = np.random.default_rng(7)


def _positive(*shape):
    return RNG.uniform(0.5, 2.0, size=shape)


def _signed(*shape):
    # away from 0 and from each other, so kinks (relu, abs, max) are not hit by the differences
    values = RNG.uniform(0.3, 1.5, size=shape) * RNG.choice([-1.0, 1.0], size=shape)
    return values


TARGET = np.array([2, 0, 1])
BCE_TARGET = np.array([[1.0, 0.0], [0.3, 1.0], [0.0, 0.8]])

# name -> (gradwise fn, torch fn (given the torch module and tensors), input makers)
CASES = {
    "add": (lambda a, b: (a + b).tanh(), lambda t, a, b: (a + b).tanh(),
            [_signed(3, 4), _signed(4)]),
    "add_linear": (lambda a, b: a + b, lambda t, a, b: a + b, [_signed(3, 4), _signed(4)]),
    "sub": (lambda a, b: (a - b) ** 2, lambda t, a, b: (a - b) ** 2,
            [_signed(3, 4), _signed(3, 1)]),
    "mul": (lambda a, b: a * b, lambda t, a, b: a * b, [_signed(3, 4), _signed(4)]),
    "div": (lambda a, b: a / b, lambda t, a, b: a / b, [_signed(3, 4), _positive(3, 1)]),
    "neg": (lambda a: -a * a, lambda t, a: -a * a, [_signed(5)]),
    "pow_scalar": (lambda a: a**3, lambda t, a: a**3, [_signed(5)]),
    "pow_fraction": (lambda a: a**2.5, lambda t, a: a**2.5, [_positive(5)]),
    "pow_tensor": (lambda a, b: a**b, lambda t, a, b: a**b, [_positive(3, 2), _signed(2)]),
    "exp": (lambda a: a.exp(), lambda t, a: a.exp(), [_signed(5)]),
    "sin": (lambda a: a.sin(), lambda t, a: a.sin(), [_signed(5)]),
    "cos": (lambda a: a.cos(), lambda t, a: a.cos(), [_signed(5)]),
    "log1p": (lambda a: a.log1p(), lambda t, a: a.log1p(), [_positive(5)]),
    "expm1": (lambda a: a.expm1(), lambda t, a: a.expm1(), [_signed(5)]),
    "log": (lambda a: a.log(), lambda t, a: a.log(), [_positive(5)]),
    "sqrt": (lambda a: a.sqrt(), lambda t, a: a.sqrt(), [_positive(5)]),
    "abs": (lambda a: a.abs() * a, lambda t, a: a.abs() * a, [_signed(5)]),
    "clamp": (lambda a: a.clamp(-1.0, 1.0) * a, lambda t, a: a.clamp(-1.0, 1.0) * a,
              [_signed(6)]),
    "maximum": (lambda a, b: gw.maximum(a, b) * a, lambda t, a, b: t.maximum(a, b) * a,
                [_signed(5), _signed(5)]),
    "where": (lambda a, b: gw.where(a._data > 0, a * a, b * b * b),
              lambda t, a, b: t.where(a > 0, a * a, b * b * b), [_signed(6), _signed(6)]),
    "relu": (lambda a: F.relu(a) * a, lambda t, a: t.relu(a) * a, [_signed(6)]),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.1) * a,
                   lambda t, a: t.nn.functional.leaky_relu(a, 0.1) * a, [_signed(6)]),
    "elu": (lambda a: F.elu(a), lambda t, a: t.nn.functional.elu(a), [_signed(6)]),
    "sigmoid": (lambda a: F.sigmoid(a), lambda t, a: t.sigmoid(a), [_signed(6)]),
    "tanh": (lambda a: F.tanh(a), lambda t, a: t.tanh(a), [_signed(6)]),
    "softplus": (lambda a: F.softplus(a), lambda t, a: t.nn.functional.softplus(a),
                 [_signed(6)]),
    "gelu": (lambda a: F.gelu(a), lambda t, a: t.nn.functional.gelu(a), [_signed(6)]),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"),
                  lambda t, a: t.nn.functional.gelu(a, approximate="tanh"), [_signed(6)]),
    "matmul": (lambda a, b: a @ b, lambda t, a, b: a @ b, [_signed(3, 4), _signed(4, 2)]),
    "matmul_vector": (lambda a, b: (a @ b) * (a @ b), lambda t, a, b: (a @ b) * (a @ b),
                      [_signed(4), _signed(4, 3)]),
    "matmul_batched": (lambda a, b: (a @ b).tanh(), lambda t, a, b: (a @ b).tanh(),
                       [_signed(2, 3, 4), _signed(4, 2)]),
    "linear": (lambda x, w, b: F.linear(x, w, b).tanh(),
               lambda t, x, w, b: t.nn.functional.linear(x, w, b).tanh(),
               [_signed(3, 4), _signed(2, 4), _signed(2)]),
    "sum": (lambda a: a.sum(dim=1) ** 2, lambda t, a: a.sum(dim=1) ** 2, [_signed(3, 4)]),
    "mean": (lambda a: a.mean(dim=0, keepdim=True) ** 2,
             lambda t, a: a.mean(dim=0, keepdim=True) ** 2, [_signed(3, 4)]),
    "amax": (lambda a: a.amax(dim=1) * a.sum(dim=1),
             lambda t, a: a.amax(dim=1) * a.sum(dim=1), [_signed(3, 4)]),
    "var": (lambda a: a.var(dim=1), lambda t, a: a.var(dim=1), [_signed(3, 4)]),
    "std": (lambda a: a.std(), lambda t, a: a.std(), [_signed(3, 4)]),
    "norm": (lambda a: a.norm(dim=1), lambda t, a: a.norm(dim=1), [_signed(3, 4)]),
    "reshape": (lambda a: a.reshape(6, 2).tanh(), lambda t, a: a.reshape(6, 2).tanh(),
                [_signed(3, 4)]),
    "transpose": (lambda a: (a.T @ a), lambda t, a: (a.T @ a), [_signed(3, 4)]),
    "getitem": (lambda a: a[1:, ::2] * a[0], lambda t, a: a[1:, ::2] * a[0],
                [_signed(3, 2)]),
    "getitem_fancy": (lambda a: a[[0, 2, 0]] ** 2, lambda t, a: a[[0, 2, 0]] ** 2,
                      [_signed(3, 2)]),
    "broadcast": (lambda a: a.expand(3, 4) * a, lambda t, a: a.expand(3, 4) * a,
                  [_signed(1, 4)]),
    "cat": (lambda a, b: gw.cat([a, b * b], dim=1).tanh(),
            lambda t, a, b: t.cat([a, b * b], dim=1).tanh(), [_signed(2, 3), _signed(2, 1)]),
    "stack": (lambda a, b: gw.stack([a, a * b]).tanh(),
              lambda t, a, b: t.stack([a, a * b]).tanh(), [_signed(2, 3), _signed(2, 3)]),
    "softmax": (lambda a: F.softmax(a, dim=1), lambda t, a: t.softmax(a, dim=1),
                [_signed(3, 4)]),
    "log_softmax": (lambda a: F.log_softmax(a, dim=1), lambda t, a: t.log_softmax(a, dim=1),
                    [_signed(3, 4)]),
    "logsumexp": (lambda a: a.logsumexp(dim=1), lambda t, a: a.logsumexp(dim=1),
                  [_signed(3, 4)]),
    "cross_entropy": (lambda a: F.cross_entropy(a, TARGET),
                      lambda t, a: t.nn.functional.cross_entropy(a, t.tensor(TARGET)),
                      [_signed(3, 4)]),
    "cross_entropy_options": (
        lambda a: F.cross_entropy(a, np.array([2, -100, 1]), weight=np.array([1.0, 2, 0.5, 1]),
                                  label_smoothing=0.1),
        lambda t, a: t.nn.functional.cross_entropy(
            a, t.tensor([2, -100, 1]), weight=t.tensor([1.0, 2, 0.5, 1], dtype=t.float64),
            label_smoothing=0.1),
        [_signed(3, 4)]),
    "cross_entropy_sum": (lambda a: F.cross_entropy(a, TARGET, reduction="none"),
                          lambda t, a: t.nn.functional.cross_entropy(a, t.tensor(TARGET),
                                                                     reduction="none"),
                          [_signed(3, 4)]),
    "nll": (lambda a: F.nll_loss(F.log_softmax(a, dim=1), np.array([2, -100, 1]),
                                 weight=np.array([1.0, 2, 0.5, 1])),
            lambda t, a: t.nn.functional.nll_loss(
                t.log_softmax(a, dim=1), t.tensor([2, -100, 1]),
                weight=t.tensor([1.0, 2, 0.5, 1], dtype=t.float64)),
            [_signed(3, 4)]),
    "bce_with_logits": (
        lambda a: F.binary_cross_entropy_with_logits(a, BCE_TARGET,
                                                     pos_weight=np.array([2.0, 0.5])),
        lambda t, a: t.nn.functional.binary_cross_entropy_with_logits(
            a, t.tensor(BCE_TARGET), pos_weight=t.tensor([2.0, 0.5], dtype=t.float64)),
        [_signed(3, 2)]),
    "bce_with_logits_weight": (
        lambda a: F.binary_cross_entropy_with_logits(a, BCE_TARGET, reduction="sum",
                                                     weight=np.array([1.5, 0.5])),
        lambda t, a: t.nn.functional.binary_cross_entropy_with_logits(
            a, t.tensor(BCE_TARGET), reduction="sum",
            weight=t.tensor([1.5, 0.5], dtype=t.float64)),
        [_signed(3, 2)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (4,), w, b).tanh(),
                   lambda t, x, w, b: t.nn.functional.layer_norm(x, (4,), w, b).tanh(),
                   [_signed(3, 4), _signed(4), _signed(4)]),
    "layer_norm_plain": (lambda x: F.layer_norm(x, (2, 3)) ** 3,
                         lambda t, x: t.nn.functional.layer_norm(x, (2, 3)) ** 3,
                         [_signed(2, 2, 3)]),
    "mse": (lambda a, b: F.mse_loss(a.tanh(), b), lambda t, a, b: t.nn.functional.mse_loss(
        a.tanh(), b), [_signed(3, 4), _signed(3, 4)]),
}


def _gw_inputs(arrays):
    return [gw.tensor(a.copy(), dtype=np.float64, requires_grad=True) for a in arrays]


def _gw_second(fn, arrays, w, v):
    xs = _gw_inputs(arrays)
    out = fn(*xs)
    grads = gw.autograd.grad(out, xs, gw.tensor(w), create_graph=True)
    projection = sum((g * gw.tensor(vi)).sum() for g, vi in zip(grads, v, strict=True))
    if not projection.requires_grad:  # a linear function: the second derivative is 0
        return [np.asarray(g) for g in grads], [np.zeros_like(a) for a in arrays]
    second = gw.autograd.grad(projection, xs, allow_unused=True)
    return [np.asarray(g) for g in grads], [
        np.zeros_like(a) if s is None else np.asarray(s) for a, s in zip(arrays, second,
                                                                          strict=True)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_derivative_matches_torch(name):
    torch = pytest.importorskip("torch")
    fn, torch_fn, arrays = CASES[name]
    rng = np.random.default_rng(1)
    out_shape = fn(*_gw_inputs(arrays)).shape
    w = rng.uniform(0.5, 1.5, size=out_shape)
    v = [rng.normal(size=a.shape) for a in arrays]
    first, second = _gw_second(fn, arrays, w, v)

    xs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = torch_fn(torch, *xs)
    grads = torch.autograd.grad(out, xs, torch.tensor(w), create_graph=True)
    projection = sum((g * torch.tensor(vi)).sum() for g, vi in zip(grads, v, strict=True))
    expected = (torch.autograd.grad(projection, xs, allow_unused=True)
                if projection.requires_grad else [None] * len(xs))
    for ours, theirs in zip(first, grads, strict=True):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs, a in zip(second, expected, arrays, strict=True):
        theirs = np.zeros_like(a) if theirs is None else theirs.numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradgradcheck(name):
    fn, _, arrays = CASES[name]
    assert gw.gradgradcheck(fn, *_gw_inputs(arrays))


def test_gradgradcheck_catches_a_wrong_second_derivative():
    class Cube(gw.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.x = x
            return x**3

        @staticmethod
        def backward(ctx, grad):
            return (grad * 3 * ctx.x**2,)

        @staticmethod
        def backward_graph(ctx, grad):
            (x,) = ctx.inputs
            return (grad * x * x * 2,)  # wrong: 3 x^2 is the derivative

    x = gw.tensor([0.5, 1.5], dtype=np.float64, requires_grad=True)
    with pytest.raises(gw.GradcheckError):
        gw.gradgradcheck(lambda t: Cube.apply(t), x)


def test_op_without_differentiable_backward_is_named():
    x = gw.tensor(RNG.normal(size=(1, 1, 4, 4)), requires_grad=True)
    y = F.max_pool2d(x, 2).sum()
    with pytest.raises(RuntimeError, match="create_graph: MaxPool2d has no differentiable"):
        gw.autograd.grad(y, x, create_graph=True)
    # the first derivative alone still works
    (g,) = gw.autograd.grad(F.max_pool2d(x, 2).sum(), x)
    assert g.shape == x.shape


def test_grad_leaves_dot_grad_alone_and_follows_torch_arguments():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    unused = gw.tensor([3.0], requires_grad=True)
    x.grad = np.array([10.0, 10.0], dtype=np.float32)
    y = (x * x).sum()
    (g,) = gw.autograd.grad(y, x)
    np.testing.assert_allclose(np.asarray(g), [2.0, 4.0])
    np.testing.assert_allclose(np.asarray(x.grad), [10.0, 10.0])
    assert not g.requires_grad
    with pytest.raises(RuntimeError, match="freed"):  # retain_graph defaults to create_graph
        gw.autograd.grad(y, x)
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        gw.autograd.grad(y, [x, unused], retain_graph=True)
    g, none = gw.autograd.grad(y, [x, unused], allow_unused=True)
    assert none is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        gw.autograd.grad(y, gw.tensor([1.0]))
    with pytest.raises(RuntimeError, match="one-element"):
        gw.autograd.grad(x * 2, x)
    (g,) = gw.autograd.grad(x * 2, x, grad_outputs=gw.tensor([1.0, 3.0]))
    np.testing.assert_allclose(np.asarray(g), [2.0, 6.0])


def test_backward_create_graph_accumulates_like_torch():
    torch = pytest.importorskip("torch")
    values = [0.5, -1.0, 2.0]
    x = gw.tensor(values, dtype=np.float64, requires_grad=True)
    (x.exp() * x.sin()).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (x.grad * x.grad).sum().backward()
    tx = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    (tx.exp() * tx.sin()).sum().backward(create_graph=True)
    (tx.grad * tx.grad).sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.detach().numpy(), rtol=1e-12)


def test_plain_backward_still_leaves_graph_free_grads():
    x = gw.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert not x.grad.requires_grad
    np.testing.assert_allclose(np.asarray(x.grad), [2.0, 4.0])


def _cubic(x, y):
    return (x * x * y + y.exp() * x).sum()


def test_functional_api_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.autograd import functional as TF

    a, b = _signed(3), _signed(3)
    v = _signed(3)
    ga, gb = (gw.tensor(a, dtype=np.float64), gw.tensor(b, dtype=np.float64))
    ta, tb = torch.tensor(a), torch.tensor(b)
    gv, tv = gw.tensor(v, dtype=np.float64), torch.tensor(v)

    def check(ours, theirs):
        if isinstance(theirs, tuple):
            for o, t in zip(ours, theirs, strict=True):
                check(o, t)
        else:
            np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), rtol=1e-10,
                                       atol=1e-12)

    check(AF.hessian(_cubic, (ga, gb)), TF.hessian(_cubic, (ta, tb)))
    check(AF.hessian(lambda x: (x.tanh() ** 2).sum(), ga),
          TF.hessian(lambda x: (x.tanh() ** 2).sum(), ta))
    check(AF.jacobian(lambda x: x.tanh() * x.sum(), ga),
          TF.jacobian(lambda x: x.tanh() * x.sum(), ta))
    check(AF.jacobian(lambda x, y: x * y, (ga, gb)), TF.jacobian(lambda x, y: x * y, (ta, tb)))
    check(AF.hvp(lambda x: (x.tanh() ** 2).sum(), ga, gv),
          TF.hvp(lambda x: (x.tanh() ** 2).sum(), ta, tv))
    check(AF.hvp(_cubic, (ga, gb), (gv, gv)), TF.hvp(_cubic, (ta, tb), (tv, tv)))
    check(AF.vjp(lambda x: x.exp() * x, ga, gv), TF.vjp(lambda x: x.exp() * x, ta, tv))
    check(AF.jvp(lambda x: x.exp() * x, ga, gv), TF.jvp(lambda x: x.exp() * x, ta, tv))
    check(AF.jvp(lambda x, y: (x * y).tanh(), (ga, gb), (gv, gv)),
          TF.jvp(lambda x, y: (x * y).tanh(), (ta, tb), (tv, tv)))


def test_functional_api_leaves_inputs_alone():
    x = gw.tensor([1.0, 2.0], dtype=np.float64)
    h = AF.hessian(lambda t: (t**3).sum(), x)
    np.testing.assert_allclose(np.asarray(h), np.diag([6.0, 12.0]))
    assert not x.requires_grad and x.grad is None


def test_gradient_penalty_reaches_the_parameters_like_torch():
    """The WGAN-GP penalty (||d score / d x|| - 1)^2, differentiated into the weights."""
    torch = pytest.importorskip("torch")
    w_values, x_values = _signed(4, 3), _signed(5, 3)
    w = gw.tensor(w_values, dtype=np.float64, requires_grad=True)
    x = gw.tensor(x_values, dtype=np.float64, requires_grad=True)
    score = F.linear(x, w).tanh().sum()
    (g,) = gw.autograd.grad(score, x, create_graph=True)
    penalty = ((g.norm(dim=1) - 1) ** 2).mean()
    penalty.backward()

    tw = torch.tensor(w_values, requires_grad=True)
    tx = torch.tensor(x_values, requires_grad=True)
    tscore = torch.nn.functional.linear(tx, tw).tanh().sum()
    (tg,) = torch.autograd.grad(tscore, tx, create_graph=True)
    expected_penalty = ((tg.norm(dim=1) - 1) ** 2).mean()
    expected_penalty.backward()
    np.testing.assert_allclose(float(penalty), float(expected_penalty.detach()))
    np.testing.assert_allclose(np.asarray(w.grad), tw.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.numpy(), rtol=1e-10)


def test_readme_example_runs_and_matches_torch(capsys):
    from pathlib import Path

    torch = pytest.importorskip("torch")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Gradients of gradients", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    np.testing.assert_allclose(np.asarray(namespace["hv"]), [3.0, 1.0])
    np.testing.assert_allclose(np.asarray(namespace["g"].detach()), [3.0, 9.0])

    weight = torch.tensor([[0.5, -0.3], [0.2, 0.8]], requires_grad=True)
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5]], requires_grad=True)
    (dx,) = torch.autograd.grad(torch.nn.functional.linear(x, weight).tanh().sum(), x,
                                create_graph=True)
    penalty = ((dx.norm(dim=1) - 1) ** 2).mean()
    penalty.backward()
    np.testing.assert_allclose(float(namespace["penalty"]), penalty.item(), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(namespace["weight"].grad), weight.grad.numpy(),
                               rtol=1e-5)
