"""The fused optimizer updates (autograd/kernels/optim.py) are bitwise the NumPy code they
replace: every optimizer, over a grid of settings, dtypes and edge gradients, steps the same
parameters with the kernels on and off and must land on the same bits (parameters and state)."""

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels._jit import _numba, set_jit_enabled

SETTINGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05)),
    ("SGD", dict(lr=0.1, maximize=True)),
    ("SGD", dict(lr=0.1, momentum=0.5, maximize=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, betas=(0.8, 0.9))),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
]

SHAPES = [(3, 4), (1,), (0,), (7,)]


def _gradients(step, dtype, edges):
    rng = np.random.default_rng(step)
    grads = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    if edges:
        # 0, inf and NaN in the last parameter only, so the others stay finite and comparable
        grads[-1][:3] = np.array([0.0, np.inf, np.nan], dtype=dtype)
        grads[0][0, 0] = 0.0
    return grads


def _run(name, settings, dtype, jit, edges, steps=4):
    previous = set_jit_enabled(jit)
    try:
        rng = np.random.default_rng(0)
        params = [gw.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
                  for shape in SHAPES]
        optimizer = getattr(gw.optim, name)(params, **settings)
        for step in range(steps):
            for param, grad in zip(params, _gradients(step, dtype, edges), strict=True):
                param.grad = gw.tensor(grad)
            optimizer.step()
        state = {key: np.asarray(value).copy()
                 for index, param in enumerate(params)
                 for key, value in ((f"{index}.{k}", v) for k, v in optimizer.state[param].items())
                 if isinstance(value, np.ndarray)}
        return [np.asarray(p.data).copy() for p in params], state
    finally:
        set_jit_enabled(previous)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # NumPy's NaN warnings
@pytest.mark.skipif(_numba is None, reason="numba is not installed")
@pytest.mark.parametrize("name,settings", SETTINGS, ids=lambda v: v if isinstance(v, str) else
                         "-".join(f"{k}={v}" for k, v in v.items()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("edges", [False, True], ids=["random", "edges"])
def test_fused_update_is_bitwise_the_numpy_update(name, settings, dtype, edges):
    fused_params, fused_state = _run(name, settings, dtype, True, edges)
    ref_params, ref_state = _run(name, settings, dtype, False, edges)
    for got, want in zip(fused_params, ref_params, strict=True):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
    assert fused_state.keys() == ref_state.keys()
    for key in ref_state:
        assert fused_state[key].dtype == ref_state[key].dtype, key
        np.testing.assert_array_equal(fused_state[key], ref_state[key], err_msg=key)


def test_non_contiguous_parameter_takes_the_reference(jit_path):
    # a parameter that is a transposed view of a NumPy array still steps, in place, in float32
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    param = gw.from_numpy(base.T).requires_grad_()  # (4, 3), not C-contiguous
    optimizer = gw.optim.SGD([param], lr=0.5, momentum=0.9)
    param.grad = gw.ones(4, 3)
    optimizer.step()
    optimizer.step()
    expected = np.arange(12, dtype=np.float32).reshape(3, 4).T - np.float32(0.5 * (1 + 1.9))
    np.testing.assert_allclose(np.asarray(param.data), expected, rtol=1e-6)
    assert np.asarray(param.data).dtype == np.float32
