"""The inference path (issue 14): ``nn.Sequential`` under ``no_grad`` records nothing, keeps no
references, and runs its ReLUs in place on temporaries it made (after a max-pool instead of
before it), giving exactly the values of the recorded forward, and never touching an array
that the caller or another layer still holds."""

import gc
import weakref

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels import activation as kernels
from step_audit import audit_step

nn = gw.nn
FLOAT32 = 4
GRAPH_ALLOWANCE = 48 * 1024  # the Tensors and small Python objects of one forward


def _edge_array(shape, dtype, seed=0):
    """Random normal values with 0, -0.0, +-inf and NaN planted at the start."""
    rng = np.random.default_rng(seed)
    out = rng.standard_normal(shape).astype(dtype)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=dtype)
    flat = out.reshape(-1)
    flat[: min(flat.size, specials.size)] = specials[: flat.size]
    return out


# ---- the in-place ReLU kernel against its reference --------------------------------------------
@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (3, 0, 2), (2, 3, 5, 4), (64, 32, 7, 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_relu_inplace_equals_reference(jit_path, shape, dtype, layout):
    out = _edge_array(shape, dtype)
    if layout == "transposed":  # an NCHW view of NHWC memory, what the conv layers return
        out = out.T
    expected = out.copy()
    kernels.bias_relu_reference(expected, None)
    address = out.__array_interface__["data"][0]
    kernels.relu_(out)
    np.testing.assert_array_equal(out, expected)
    assert np.array_equal(np.signbit(out), np.signbit(expected))  # -0.0 became +0.0 in both
    assert out.dtype == dtype and out.__array_interface__["data"][0] == address  # in place


# ---- the same values as the recorded forward ---------------------------------------------------
def _models():
    """Sequentials covering each rule of the inference path and the cases it must leave alone."""
    def conv_net():
        return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 6, 3, rng=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(6 * 2 * 2, 5, rng=2), nn.ReLU(), nn.Linear(5, 3, rng=3))

    return {
        "mlp": lambda: nn.Sequential(nn.Flatten(), nn.Linear(2 * 8 * 8, 16, rng=0), nn.ReLU(),
                                     nn.Linear(16, 8, rng=1), nn.ReLU(), nn.Linear(8, 3, rng=2)),
        "cnn": conv_net,
        # a ReLU on the caller's input, and a pool on the caller's input, with padding
        "relu first": lambda: nn.Sequential(nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()),
        "relu pool padded": lambda: nn.Sequential(nn.Conv2d(2, 3, 1, rng=0), nn.ReLU(),
                                                  nn.MaxPool2d(3, stride=2, padding=1)),
        # a pool of kernel 1 may hand back its input's memory
        "pool 1x1": lambda: nn.Sequential(nn.Conv2d(2, 3, 1, rng=0), nn.ReLU(),
                                          nn.MaxPool2d(1)),
        # Identity and an eval Dropout return their input: the ReLU after them must copy
        "identity relu": lambda: nn.Sequential(nn.Conv2d(2, 3, 1, rng=0), nn.Identity(),
                                               nn.ReLU(), nn.ReLU()),
        "dropout relu": lambda: nn.Sequential(nn.Linear(8, 4, rng=0), nn.Dropout(0.5),
                                              nn.ReLU()).eval(),
        "relu relu": lambda: nn.Sequential(nn.Conv2d(2, 3, 1, rng=0), nn.ReLU(), nn.ReLU()),
        "indices": lambda: nn.Sequential(nn.Conv2d(2, 3, 1, rng=0), nn.ReLU(),
                                         nn.MaxPool2d(2, return_indices=True)),
    }


def _input(name, dtype):
    shape = (3, 8) if name == "dropout relu" else (3, 2, 8, 8)
    return _edge_array(shape, dtype, seed=4)


def _outputs(result):
    return [t._data for t in result] if isinstance(result, tuple) else [result._data]


@pytest.mark.parametrize("name", list(_models()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_grad_forward_equals_recorded_forward_and_leaves_inputs_alone(jit_path, name, dtype):
    model = _models()[name]().to(dtype)
    data = _input(name, dtype)
    kept = data.copy()
    with np.errstate(invalid="ignore"):  # inf * 0 in the products: NaN on both paths
        recorded = _outputs(model(gw.from_numpy(data)))  # the parameters require grad
        with gw.no_grad():
            result = model(gw.from_numpy(data))
    for got, want in zip(_outputs(result), recorded, strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    np.testing.assert_array_equal(data, kept)  # the caller's batch was not overwritten
    assert np.array_equal(np.isnan(data), np.isnan(kept))


def test_no_grad_relu_does_not_touch_an_array_a_hook_holds(jit_path):
    model = nn.Sequential(nn.Linear(8, 4, rng=0), nn.Flatten(), nn.ReLU())
    seen = []
    model[0].register_forward_hook(lambda module, args, out: seen.append(out._data.copy()))
    held = []
    model[1].register_forward_hook(lambda module, args, out: held.append(out))
    x = gw.from_numpy(np.random.default_rng(0).standard_normal((3, 8), dtype=np.float32))
    with gw.no_grad():
        model(x)
    np.testing.assert_array_equal(held[0]._data, seen[0])  # still the Linear's raw output


def test_inference_mode_and_observers_take_the_same_values(jit_path):
    model = _models()["cnn"]()
    x = gw.from_numpy(np.random.default_rng(0).standard_normal((3, 2, 8, 8), dtype=np.float32))
    with gw.no_grad():
        plain = model(x)._data
    with gw.inference_mode():
        np.testing.assert_array_equal(model(x)._data, plain)
    with gw.no_grad(), gw.autograd.detect_anomaly():  # anomaly mode turns the path off
        np.testing.assert_array_equal(model(x)._data, plain)


# ---- records nothing, keeps nothing -------------------------------------------------------------
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_no_grad_forward_records_nothing_and_keeps_no_references(jit_path, name):
    model = _models()[name]()
    batch = gw.tensor(np.random.default_rng(0).standard_normal((3, 2, 8, 8), dtype=np.float32),
                      requires_grad=True)
    intermediate = []
    model[1].register_forward_hook(
        lambda module, args, out: intermediate.append(weakref.ref(out)))
    with gw.no_grad():
        out = model(batch)
    assert out.grad_fn is None and not out.requires_grad
    batch_ref = weakref.ref(batch)
    del batch
    gc.collect()
    assert batch_ref() is None, "the no_grad output keeps the input batch alive"
    assert intermediate[0]() is None, "the no_grad output keeps an activation alive"
    # the same forward with recording keeps both: the check above can fail
    batch = gw.tensor(np.random.default_rng(0).standard_normal((3, 2, 8, 8), dtype=np.float32),
                      requires_grad=True)
    out = model(batch)
    batch_ref = weakref.ref(batch)
    del batch
    gc.collect()
    assert batch_ref() is not None and intermediate[1]() is not None


# ---- dtypes and memory of an inference forward --------------------------------------------------
def _cnn_inference_model():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1, rng=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 128, rng=2), nn.ReLU(),
                         nn.Linear(128, 10, rng=3))


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_inference_forward_stays_float32_within_its_memory_budget(jit_path, monkeypatch, kind):
    batch = 64
    if kind == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256, rng=0), nn.ReLU(),
                              nn.Linear(256, 128, rng=1), nn.ReLU(), nn.Linear(128, 10, rng=2))
        # the widest two activations alive at once (input is the caller's; ReLUs in place)
        budget = FLOAT32 * batch * (256 + 128)
    else:
        model = _cnn_inference_model()
        # at the peak: the first conv's output and its pooled copy (the ReLU runs in place on
        # the pooled one), or the second conv's padded NHWC input, output and one 1 MiB im2col
        # chunk; a ReLU that allocates (the recorded path) adds another conv output: 6.4 MB
        conv1, pool1 = batch * 32 * 28 * 28, batch * 32 * 14 * 14
        conv2_in, conv2 = batch * 32 * 16 * 16, batch * 64 * 14 * 14
        budget = FLOAT32 * max(conv1 + pool1, pool1 + conv2_in + conv2) + 2**20
    x = gw.from_numpy(np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32))
    with gw.no_grad():
        model(x)  # warm-up: kernels compiled, lazy state made

    result = []

    def forward():
        with gw.no_grad():
            result.append(model(x))

    audit = audit_step(forward, monkeypatch)
    assert audit.dtypes and audit.non_float32() == []
    assert result[0].dtype == gw.float32
    assert audit.peak_bytes <= budget + GRAPH_ALLOWANCE, (
        f"the {kind} inference forward held {audit.peak_bytes} bytes at its peak, more than its "
        f"{budget + GRAPH_ALLOWANCE}: an activation kept, copied or made as float64")

