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
