"""``F.pad`` argument checks swept against torch (issue 11, review 3): every mode with pad
lengths 2/4/6/8 over 1-D to 5-D inputs either gives torch's result or raises where torch raises
(NotImplementedError with torch's "Padding size N is not supported for ND input tensor")."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad_length", [2, 4, 6, 8])
@pytest.mark.parametrize("ndim", [1, 2, 3, 4, 5])
def test_pad_matches_torch_or_raises_like_it(mode, pad_length, ndim):
    shape = (2, 3, 4, 5, 3)[-ndim:]
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    pad = (1,) * pad_length
    try:
        expected = torch.nn.functional.pad(torch.tensor(x), pad, mode=mode).numpy()
    except (NotImplementedError, RuntimeError, ValueError) as error:
        raised = NotImplementedError if isinstance(error, NotImplementedError) else (
            ValueError, RuntimeError)
        with pytest.raises(raised) as caught:
            gw.nn.functional.pad(gw.tensor(x), pad, mode=mode)
        if isinstance(error, NotImplementedError):
            assert str(caught.value) == str(error)
        return
    actual = np.asarray(gw.nn.functional.pad(gw.tensor(x), pad, mode=mode))
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "bool"])
@pytest.mark.parametrize("value", [None, 0, 2, -2.7])
def test_pad_value_fills_in_the_input_dtype_as_torch(dtype, value):
    """``value=None`` (torch's default) pads 0 in any dtype; a value is cast to the dtype."""
    x = np.arange(6).reshape(2, 3).astype(dtype)
    expected = torch.nn.functional.pad(torch.tensor(x), (1, 2), value=value)
    actual = gw.nn.functional.pad(gw.tensor(x), (1, 2), value=value)
    assert str(actual.dtype) == str(expected.dtype).replace("torch.", "")
    np.testing.assert_array_equal(np.asarray(actual), expected.numpy())


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("entry", [1.5, 1.0, True, "1", np.float64(1.0), np.int64(1)])
def test_pad_entries_must_be_ints_as_torch(mode, entry):
    def run(module, x):
        try:
            return module.nn.functional.pad(x, (entry, 1), mode=mode).shape
        except TypeError as error:
            return str(error)
    x = np.ones((2, 3), np.float32)
    assert run(gw, gw.tensor(x)) == run(torch, torch.tensor(x))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("value", [None, 0.0, 2.0])
def test_pad_value_with_non_constant_mode_as_torch(mode, value):
    def run(module, x):
        try:
            return tuple(module.nn.functional.pad(x, (1, 1), mode=mode, value=value).shape)
        except RuntimeError as error:
            return str(error)
    x = np.ones((2, 3), np.float32)
    assert run(gw, gw.tensor(x)) == run(torch, torch.tensor(x))
