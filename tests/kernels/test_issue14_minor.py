"""Issue 14's minor findings, each with torch as the oracle where it has one, kernels on and off."""

import os

import numpy as np
import pytest

import gradwise as gw
import gradwise.nn.functional as F

INT_OPS = {
    "softmax": lambda x: F.softmax(x, dim=-1),
    "log_softmax": lambda x: F.log_softmax(x, dim=-1),
    "layer_norm": lambda x: F.layer_norm(x, (4,)),
    "cross_entropy": lambda x: F.cross_entropy(x, gw.tensor([1, 0])),
    "Tensor.softmax": lambda x: x.softmax(-1),
}


@pytest.mark.parametrize("dtype", [gw.int64, gw.int32, gw.bool])
@pytest.mark.parametrize("op", list(INT_OPS))
def test_integer_input_refused_naming_op_and_dtype(op, dtype, jit_path):
    x = gw.arange(8).reshape(2, 4).to(dtype)
    name = op.split(".")[-1]
    with pytest.raises(NotImplementedError, match=f"{name}: not implemented for dtype "
                                                  f"{np.dtype(dtype)}"):
        INT_OPS[op](x)


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 2, 2), (0, 3, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_empty_batch_like_torch(shape, affine, jit_path):
    torch = pytest.importorskip("torch")
    layer = {2: gw.nn.BatchNorm1d, 3: gw.nn.BatchNorm1d, 4: gw.nn.BatchNorm2d}[len(shape)]
    tlayer = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d}
    ours, theirs = layer(3, affine=affine), tlayer[len(shape)](3, affine=affine)
    x = gw.zeros(*shape, requires_grad=True)
    tx = torch.zeros(*shape, requires_grad=True)
    out, tout = ours(x), theirs(tx)
    assert out.shape == tuple(tout.shape) and out._data.dtype == np.float32
    out.sum().backward()
    tout.sum().backward()
    assert x._grad.shape == shape
    np.testing.assert_array_equal(ours.running_mean._data, theirs.running_mean.numpy())
    np.testing.assert_array_equal(ours.running_var._data, theirs.running_var.numpy())
    if affine:
        np.testing.assert_array_equal(np.asarray(ours.weight.grad), theirs.weight.grad.numpy())
    # a batch of one sample per channel is still refused, as torch
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        ours(gw.zeros(1, 3, *([1] * (len(shape) - 2))))


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD", "RMSprop", "Adagrad"])
def test_tensor_lr_accepted(name, jit_path):
    p = gw.nn.Parameter(gw.ones(3))
    q = gw.nn.Parameter(gw.ones(3))
    a = getattr(gw.optim, name)([p], lr=gw.tensor(0.25, dtype=gw.float64))
    b = getattr(gw.optim, name)([q], lr=0.25)
    for opt, param in ((a, p), (b, q)):
        param._grad = np.array([0.5, -1.0, 2.0], np.float32)
        opt.step()
    np.testing.assert_array_equal(p._data, q._data)
    with pytest.raises(ValueError, match=f"{name}: a Tensor lr must be one real number"):
        getattr(gw.optim, name)([p], lr=gw.tensor([0.1, 0.2]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("big", [1e30, 1e200, np.inf])
def test_centered_rmsprop_huge_gradient_like_torch(dtype, big, jit_path):
    torch = pytest.importorskip("torch")
    if dtype == np.float32 and big > 1e38:
        big = np.inf if big == np.inf else 3e38
    grad = np.array([big, -big, 1.0], dtype)
    for momentum in (0.0, 0.9):
        p = gw.nn.Parameter(gw.tensor(np.ones(3, dtype)))
        opt = gw.optim.RMSprop([p], lr=0.01, centered=True, momentum=momentum)
        tp = torch.nn.Parameter(torch.ones(3, dtype=getattr(torch, np.dtype(dtype).name)))
        topt = torch.optim.RMSprop([tp], lr=0.01, centered=True, momentum=momentum)
        with np.errstate(all="ignore"):
            for _ in range(2):
                p._grad = grad.copy()
                tp.grad = torch.from_numpy(grad.copy())
                opt.step()
                topt.step()
        np.testing.assert_allclose(p._data, tp.detach().numpy(), rtol=1e-6, equal_nan=True)


def test_first_set_num_threads_limits_every_pool_numba_loads():
    """gw.set_num_threads(1), as the first call in a fresh process, leaves every native pool at
    one thread: numba's first set_num_threads loads its OpenMP threading layer, which the
    threadpoolctl limit must come after (the other order left it at 2 until a second call)."""
    import subprocess
    import sys

    pytest.importorskip("threadpoolctl")
    pytest.importorskip("numba")
    code = ("import gradwise as gw\nfrom threadpoolctl import threadpool_info\n"
            "gw.set_num_threads(1)\n"
            "print(sorted({i['num_threads'] for i in threadpool_info()}))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",
                                                            "NUMBA_NUM_THREADS")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[1]", run.stdout


OPTIMIZERS = {
    "Adam": {}, "Adam-amsgrad": {"amsgrad": True}, "AdamW": {}, "RMSprop": {},
    "RMSprop-centered": {"centered": True}, "Adagrad": {}, "SGD": {"momentum": 0.9},
    "Adamax": {}, "NAdam": {}, "RAdam": {}, "Adadelta": {},
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_non_finite_gradient_updates_silently_like_torch(name, jit_path):
    """An inf/NaN gradient gives torch's NaN/inf parameters with no NumPy RuntimeWarning on
    either path (the NumPy reference warned "invalid value encountered in divide")."""
    import warnings

    torch = pytest.importorskip("torch")
    kind, options = name.split("-")[0], OPTIMIZERS[name]
    p = gw.nn.Parameter(gw.tensor([1.0, 2.0, 3.0, 4.0]))
    tp = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    opt = getattr(gw.optim, kind)([p], lr=0.1, **options)
    topt = getattr(torch.optim, kind)([tp], lr=0.1, **options)
    for grad in ([np.inf, 1.0, np.nan, -1.0], [1.0, -np.inf, 0.0, 2.0]):
        p.grad = gw.tensor(np.array(grad, dtype=np.float32))
        tp.grad = torch.tensor(grad, dtype=torch.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            opt.step()
        topt.step()
    np.testing.assert_allclose(np.asarray(p.detach()), tp.detach().numpy(), rtol=1e-6)
