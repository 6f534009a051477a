"""The fused dropout mask equals its NumPy reference bitwise, for every p, dtype and size, and
F.dropout draws the same mask both ways from the same generator."""

import numpy as np
import pytest

import gradwise as gw
from gradwise.autograd.kernels import dropout as kernels


@pytest.mark.parametrize("shape", [(0,), (1,), (3, 0, 2), (7, 5), (64, 256)])
@pytest.mark.parametrize("p", [1e-7, 0.1, 0.5, 0.9, 1 - 1e-7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask_equals_reference_bitwise(jit_path, shape, p, dtype):
    uniform = np.random.default_rng(0).random(shape, dtype=np.float32)
    if uniform.size:
        uniform.reshape(-1)[0] = np.float32(p)  # a draw exactly at p is kept, as in the reference
    mask = kernels.dropout_mask(uniform, p, dtype)
    expected = kernels.dropout_mask_reference(uniform, p, dtype)
    assert mask.dtype == dtype and mask.shape == shape
    np.testing.assert_array_equal(mask, expected)


def test_functional_dropout_same_mask_both_ways(jit_path):
    x = gw.ones(32, 16)
    out = gw.nn.functional.dropout(x, p=0.3, generator=np.random.default_rng(5))
    uniform = np.random.default_rng(5).random((32, 16), dtype=np.float32)
    np.testing.assert_array_equal(out.numpy(), kernels.dropout_mask_reference(
        uniform, 0.3, np.float32))
    assert out.dtype == np.float32
