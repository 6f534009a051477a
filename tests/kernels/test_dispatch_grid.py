"""Issue 14: every kernelised op and optimizer runs on every array layout it can meet.

The dispatch rule (``kernels._jit.kernel_ready``) sends only native-order float32/float64
C-contiguous arrays to numba; float16, big-endian data and strided views take the NumPy
reference. Each op of the grid runs on each layout, kernels on and off, and must match a float64
computation of the same op on the same values (tolerance by dtype) with the same result dtype.
"""

import numpy as np
import pytest

import gradwise as gw
import gradwise.nn.functional as F

# the array each layout turns a float64 array into (big-endian arrays are put into ``_data``
# directly: gw.tensor converts them to native order, but library code must survive them)
LAYOUTS = {
    "float16": lambda a: a.astype(np.float16),
    "float32": lambda a: a.astype(np.float32),
    "float64": lambda a: a.copy(),
    "big-endian float32": lambda a: a.astype(">f4"),
    "big-endian float64": lambda a: a.astype(">f8"),
    # a view of every other element of a larger buffer: not C-contiguous
    "strided float32": lambda a: np.repeat(a.astype(np.float32)[..., None], 2, -1)[..., 0],
}
TOL = {"float16": 2e-2}


def _leaf(values, layout, requires_grad=True):
    t = gw.tensor(np.zeros(values.shape), requires_grad=requires_grad)
    t._data = LAYOUTS[layout](values)
    return t


def _rng_values(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _labels():
    return gw.tensor([1, 0, 5, 2])


OPS = {
    "relu": ((4, 6), lambda x, p: F.relu(x)),
    "linear_relu": ((4, 6), lambda x, p: F._linear_relu(x, p[0], p[1])),
    "softmax": ((4, 6), lambda x, p: F.softmax(x, dim=1)),
    "log_softmax": ((4, 6), lambda x, p: F.log_softmax(x, dim=1)),
    "layer_norm": ((4, 6), lambda x, p: F.layer_norm(x, (6,), p[2], p[3])),
    "cross_entropy": ((4, 6), lambda x, p: F.cross_entropy(x, _labels())),
    "batch_norm": ((4, 6), lambda x, p: F.batch_norm(x, None, None, p[2], p[3], training=True)),
    "batch_norm2d": ((2, 3, 4, 4), lambda x, p: F.batch_norm(x, None, None, p[4], p[5],
                                                             training=True)),
    "conv2d": ((2, 3, 5, 5), lambda x, p: F.conv2d(x, p[6], p[4], padding=1)),
    "max_pool2d": ((2, 3, 4, 4), lambda x, p: F.max_pool2d(x, 2)),
    "avg_pool2d": ((2, 3, 4, 4), lambda x, p: F.avg_pool2d(x, 2)),
}


def _params(layout):
    shapes = [(5, 6), (5,), (6,), (6,), (3,), (3,), (3, 3, 3, 3)]
    return [_leaf(_rng_values(*s, seed=i + 1), layout) for i, s in enumerate(shapes)]


def _run(op, layout):
    shape, fn = OPS[op]
    x = _leaf(_rng_values(*shape), layout)
    params = _params(layout)
    out = fn(x, params)
    # a weighted sum so every output element gets its own gradient
    weights = gw.tensor(np.linspace(-1, 1, out.numel()).reshape(out.shape).astype(out._data.dtype))
    (out * weights).sum().backward()
    return out, x, params


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("op", list(OPS))
def test_op_runs_on_every_layout(op, layout, jit_path):
    out, x, params = _run(op, layout)
    ref_out, ref_x, ref_params = _run(op, "float64")
    tol = TOL.get(layout, 1e-5)
    assert out._data.dtype.kind == "f"
    assert out._data.dtype.itemsize == LAYOUTS[layout](np.zeros(1)).dtype.itemsize
    np.testing.assert_allclose(out._data.astype(np.float64), ref_out._data, rtol=tol, atol=tol)
    np.testing.assert_allclose(x._grad.astype(np.float64), ref_x._grad, rtol=tol, atol=tol)
    for p, ref in zip(params, ref_params, strict=True):
        if ref._grad is not None:
            np.testing.assert_allclose(p._grad.astype(np.float64), ref._grad,
                                       rtol=tol, atol=tol)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_dropout_on_every_layout(layout, jit_path):
    x = _leaf(np.abs(_rng_values(8, 16)) + 0.5, layout)
    gw.manual_seed(3)
    out = F.dropout(x, 0.5, training=True)
    out.sum().backward()
    values = out._data.astype(np.float64)
    kept = values != 0
    assert 0 < kept.sum() < kept.size
    tol = TOL.get(layout, 1e-6)
    np.testing.assert_allclose(values[kept], 2 * x._data.astype(np.float64)[kept], rtol=tol)
    np.testing.assert_allclose(x._grad.astype(np.float64), 2.0 * kept, rtol=tol)


OPTIMIZERS = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
]


def _steps(name, kwargs, layout):
    p = _leaf(_rng_values(3, 4), layout)
    opt = getattr(gw.optim, name)([p], **kwargs)
    for step in range(3):
        p._grad = LAYOUTS[layout](_rng_values(3, 4, seed=10 + step))
        opt.step()
    return p


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name,kwargs", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_optimizer_steps_every_layout(name, kwargs, layout, jit_path):
    p = _steps(name, kwargs, layout)
    ref = _steps(name, kwargs, "float64")
    tol = TOL.get(layout, 1e-5)
    assert p._data.dtype.itemsize == LAYOUTS[layout](np.zeros(1)).dtype.itemsize
    np.testing.assert_allclose(p._data.astype(np.float64), ref._data, rtol=tol, atol=tol)


def test_tensor_converts_big_endian_and_from_numpy_refuses():
    big = np.arange(6, dtype=">f4").reshape(2, 3)
    for t in (gw.tensor(big), gw.Tensor(big), gw.tensor(big, dtype=gw.float64)):
        assert t._data.dtype.isnative
        np.testing.assert_array_equal(t._data, np.arange(6).reshape(2, 3))
    with pytest.raises(ValueError, match="byte order.*'>f4'|'>f4'.*byte order"):
        gw.from_numpy(big)
    # the kernels then run on it like on any float32 tensor
    np.testing.assert_allclose(F.softmax(gw.tensor(big), dim=1)._data.sum(1), 1, rtol=1e-6)
