"""Issue 14: every activation torch gives ``inplace`` accepts it, module and function; the result
is a new tensor (docs/PORTING.md), equal to the out-of-place one, and reprs match torch's."""

import numpy as np
import pytest

import gradwise as gw
import gradwise.nn.functional as F

MODULES = {
    "ReLU": {}, "LeakyReLU": {"negative_slope": 0.2}, "ELU": {"alpha": 0.5}, "SiLU": {},
    "Hardtanh": {"min_val": -0.5, "max_val": 0.5}, "ReLU6": {}, "SELU": {}, "CELU": {"alpha": 2.0},
    "RReLU": {}, "Hardsigmoid": {}, "Hardswish": {}, "Mish": {},
    "Threshold": {"threshold": 0.1, "value": -2.0},
}
FUNCTIONS = {
    "relu": {}, "leaky_relu": {"negative_slope": 0.2}, "elu": {"alpha": 0.5}, "silu": {},
    "hardtanh": {"min_val": -0.5, "max_val": 0.5}, "relu6": {}, "selu": {}, "celu": {"alpha": 2.0},
    "rrelu": {}, "hardsigmoid": {}, "hardswish": {}, "mish": {},
    "threshold": {"threshold": 0.1, "value": -2.0},
}
VALUES = np.array([[-7.0, -1.0, -0.1, 0.0], [0.05, 0.4, 3.0, 8.0]])


@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("inplace", [False, True])
def test_module_accepts_inplace(name, inplace, jit_path):
    module = getattr(gw.nn, name)(**MODULES[name], inplace=inplace).eval()
    assert module.inplace is inplace
    x = gw.tensor(VALUES, requires_grad=True)
    out = module(x)
    np.testing.assert_array_equal(x._data, VALUES)  # the input is left as it was
    expected = getattr(gw.nn, name)(**MODULES[name]).eval()(gw.tensor(VALUES))
    np.testing.assert_allclose(out._data, expected._data, rtol=1e-12)
    out.sum().backward()
    assert x._grad is not None and x._grad.shape == VALUES.shape


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_function_accepts_inplace(name, jit_path):
    x = gw.tensor(VALUES)
    out = getattr(F, name)(x, **FUNCTIONS[name], inplace=True)
    np.testing.assert_allclose(out._data, getattr(F, name)(x, **FUNCTIONS[name])._data)
    np.testing.assert_array_equal(x._data, VALUES)


@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("inplace", [False, True])
def test_repr_matches_torch(name, inplace):
    torch = pytest.importorskip("torch")
    ours = getattr(gw.nn, name)(**MODULES[name], inplace=inplace)
    theirs = getattr(torch.nn, name)(**MODULES[name], inplace=inplace)
    assert repr(ours) == repr(theirs)


def test_sequential_linear_relu_inplace_still_trains(jit_path):
    gw.manual_seed(0)
    model = gw.nn.Sequential(gw.nn.Linear(4, 3), gw.nn.ReLU(inplace=True), gw.nn.Linear(3, 1))
    ref = gw.nn.Sequential(gw.nn.Linear(4, 3), gw.nn.ReLU(), gw.nn.Linear(3, 1))
    ref.load_state_dict(model.state_dict())
    x = gw.tensor(VALUES[:, :4].astype(np.float32))
    np.testing.assert_array_equal(model(x)._data, ref(x)._data)
