"""Gradients of gradients through every kernelised op, on shapes that reach the numba kernels.

The kernels are gated (dtype, layout, and for max pooling a channel count: below
``MAX_POOL_KERNEL_MIN_CHANNELS`` NumPy's whole-array passes run), so second-derivative tests on
small shapes can miss the kernel path. A third newcomer review found exactly that: with 8 or
more channels ``create_graph=True`` through max pooling raised AttributeError (the recorded
backward read the NumPy path's picks only). Each case here runs with the kernels on and off and
against torch (float64, a Hessian-vector product: grad of sum(grad(f(x)) * v)).
"""

import numpy as np
import pytest

import gradwise as gw
import gradwise.nn.functional as F
from gradwise.autograd.ops.pool import MAX_POOL_KERNEL_MIN_CHANNELS

torch = pytest.importorskip("torch")
TF = torch.nn.functional

C = max(8, MAX_POOL_KERNEL_MIN_CHANNELS)  # enough channels for every kernel's gate


def _w(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


# name -> (input shape, gradwise f(x, *params), torch f(x, *params), param shapes)
CASES = {
    "max_pool2d_tiles": ((2, C, 6, 6), lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2)),
    "max_pool2d_overlap_pad": ((2, C, 7, 7), lambda x: F.max_pool2d(x, 3, 2, 1),
                               lambda x: TF.max_pool2d(x, 3, 2, 1)),
    "max_pool2d_uneven": ((1, C, 5, 7), lambda x: F.max_pool2d(x, (2, 3), (2, 2)),
                          lambda x: TF.max_pool2d(x, (2, 3), (2, 2))),
    "max_pool2d_ties": ((2, C, 4, 4), lambda x: F.max_pool2d(x.round(), 2),
                        lambda x: TF.max_pool2d(x.round(), 2)),
    "avg_pool2d": ((2, C, 6, 6), lambda x: F.avg_pool2d(x, 3, 2, 1),
                   lambda x: TF.avg_pool2d(x, 3, 2, 1)),
    "conv2d_relu_pool": ((2, C, 6, 6),
                         lambda x: F.max_pool2d(F.relu(F.conv2d(x, gw.tensor(_w((C, C, 3, 3), 1)),
                                                                padding=1)), 2),
                         lambda x: TF.max_pool2d(TF.relu(TF.conv2d(
                             x, torch.tensor(_w((C, C, 3, 3), 1)), padding=1)), 2)),
    "softmax": ((4, 3 * C), lambda x: F.softmax(x, dim=1), lambda x: TF.softmax(x, dim=1)),
    "log_softmax": ((4, 3 * C), lambda x: F.log_softmax(x, dim=1),
                    lambda x: TF.log_softmax(x, dim=1)),
    "layer_norm": ((4, 3 * C), lambda x: F.layer_norm(x, (3 * C,)),
                   lambda x: TF.layer_norm(x, (3 * C,))),
    "batch_norm2d": ((3, C, 4, 4), lambda x: F.batch_norm(x, None, None, training=True),
                     lambda x: TF.batch_norm(x, None, None, training=True)),
    "cross_entropy": ((6, C), lambda x: F.cross_entropy(x, gw.tensor([0, 1, 2, 3, 4, 5])),
                      lambda x: TF.cross_entropy(x, torch.tensor([0, 1, 2, 3, 4, 5]))),
    "linear_relu": ((4, 3 * C),
                    lambda x: F._linear_relu(x, gw.tensor(_w((C, 3 * C), 2)),
                                             gw.tensor(_w((C,), 3))),
                    lambda x: TF.relu(TF.linear(x, torch.tensor(_w((C, 3 * C), 2)),
                                                torch.tensor(_w((C,), 3))))),
}


def _hvp_gradwise(f, x, v, g):
    xt = gw.tensor(x, requires_grad=True)
    out = f(xt)
    (dx,) = gw.autograd.grad(out, xt, grad_outputs=gw.tensor(g), create_graph=True)
    if not dx.requires_grad:  # a constant, as torch's where its backward reads no input
        return np.asarray(dx.detach()), np.zeros_like(x)
    (hv,) = gw.autograd.grad((dx * gw.tensor(v)).sum(), xt, allow_unused=True)
    return np.asarray(dx.detach()), (np.zeros_like(x) if hv is None else np.asarray(hv))


def _hvp_torch(f, x, v, g):
    xt = torch.tensor(x, requires_grad=True)
    out = f(xt)
    (dx,) = torch.autograd.grad(out, xt, grad_outputs=torch.tensor(g), create_graph=True)
    if not dx.requires_grad:  # piecewise linear in x: no second derivative
        return dx.detach().numpy(), np.zeros_like(x)
    (hv,) = torch.autograd.grad((dx * torch.tensor(v)).sum(), xt, allow_unused=True)
    return dx.detach().numpy(), (np.zeros_like(x) if hv is None else hv.numpy())


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_derivative_on_the_kernel_path_matches_torch(name, jit_path):
    shape, f_gw, f_torch = CASES[name]
    x = _w(shape, 10) * 2
    with torch.no_grad():
        out_shape = tuple(f_torch(torch.tensor(x)).shape)
    v, g = _w(shape, 11), _w(out_shape, 12)
    dx, hv = _hvp_gradwise(f_gw, x, v, g)
    dx_t, hv_t = _hvp_torch(f_torch, x, v, g)
    np.testing.assert_allclose(dx, dx_t, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(hv, hv_t, rtol=1e-8, atol=1e-8)


def test_gradient_penalty_through_a_wide_cnn(jit_path):
    """WGAN-GP's pattern through Conv2d -> ReLU -> MaxPool2d with 8+ channels, float32, as the
    review wrote it: the penalty's gradient reaches the weights, kernels on and off alike."""
    gw.manual_seed(0)
    net = gw.nn.Sequential(gw.nn.Conv2d(1, C, 3, padding=1), gw.nn.ReLU(), gw.nn.MaxPool2d(2),
                           gw.nn.Flatten(), gw.nn.Linear(C * 9, 1))
    tnet = torch.nn.Sequential(torch.nn.Conv2d(1, C, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(C * 9, 1))
    tnet.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in net.state_dict().items()})
    x = _w((4, 1, 6, 6), 5).astype(np.float32)
    xg, xt = gw.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (dg,) = gw.autograd.grad(net(xg).sum(), xg, create_graph=True)
    (dt,) = torch.autograd.grad(tnet(xt).sum(), xt, create_graph=True)
    ((dg.flatten(1).norm(dim=1) - 1) ** 2).mean().backward()
    ((dt.flatten(1).norm(dim=1) - 1) ** 2).mean().backward()
    for (name, p), tp in zip(net.named_parameters(), tnet.parameters(), strict=True):
        # the last bias does not change d(out)/dx: no gradient (None) in either library; the
        # conv bias reaches d(out)/dx only through ReLU's mask: torch records a zero gradient,
        # gradwise none (docs/NUMERICS.md, "None or zeros")
        ours = np.zeros(tuple(tp.shape)) if p.grad is None else np.asarray(p.grad)
        theirs = np.zeros(tuple(tp.shape)) if tp.grad is None else tp.grad.numpy()
        np.testing.assert_allclose(ours, theirs, rtol=2e-4, atol=2e-5,
                                   err_msg=name)
