"""``ConvTranspose1d/2d(...)(x, output_size=...)`` as torch (issue 11, review 3): the output
padding is chosen to give the requested size; sizes out of range or of the wrong length raise
torch's errors. Same weights, compared value by value."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")


def _pair(rank, kwargs):
    name = f"ConvTranspose{rank}d"
    ours, theirs = getattr(gw.nn, name)(2, 3, 3, **kwargs), getattr(torch.nn, name)(2, 3, 3,
                                                                                     **kwargs)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(np.asarray(ours.weight)))
        theirs.bias.copy_(torch.tensor(np.asarray(ours.bias)))
    return ours, theirs


CASES = [  # (rank, layer kwargs, input spatial shape, output_size)
    (1, {"stride": 2}, (5,), (11,)), (1, {"stride": 2}, (5,), (12,)),
    (1, {"stride": 3, "padding": 1}, (4,), [1, 3, 11]),
    (1, {"stride": 3, "padding": 1}, (4,), (12,)),
    (2, {"stride": 2}, (4, 5), (9, 11)), (2, {"stride": 2, "padding": 1}, (4, 5), (7, 10)),
    (2, {"stride": (2, 3), "dilation": 2}, (3, 3), (9, 12)),
    (2, {"stride": 2}, (4, 5), [1, 3, 10, 12]),
]


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize(("rank", "kwargs", "spatial", "output_size"), CASES)
def test_output_size_matches_torch(rank, kwargs, spatial, output_size, batched):
    ours, theirs = _pair(rank, kwargs)
    shape = ((1,) if batched else ()) + (2, *spatial)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    if not batched and len(output_size) == rank + 2:
        output_size = output_size[1:]
    expected = theirs(torch.tensor(x), output_size=output_size).detach().numpy()
    actual = np.asarray(ours(gw.tensor(x), output_size=output_size).detach())
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("rank", "spatial", "output_size"), [
    (1, (5,), (13,)), (1, (5,), (10,)), (2, (4, 5), (7, 12)), (2, (4, 5), (9,)),
    (2, (4, 5), (1, 1, 9, 10, 1)),
])
def test_bad_output_size_raises_like_torch(rank, spatial, output_size):
    ours, theirs = _pair(rank, {"stride": 2})
    x = np.zeros((1, 2, *spatial), np.float32)
    with pytest.raises(ValueError) as expected:
        theirs(torch.tensor(x), output_size=output_size)
    with pytest.raises(ValueError) as actual:
        ours(gw.tensor(x), output_size=output_size)
    # gradwise names the layer first ("ConvTranspose2d: ..."), then torch's words
    if "valid sizes" in str(expected.value):
        assert str(actual.value).split(" (for an input")[0].endswith(
            str(expected.value).split(" (for an input")[0])
    else:
        assert f"output_size must have {rank} or {rank + 2} elements (got {len(output_size)})" \
            in str(actual.value)
