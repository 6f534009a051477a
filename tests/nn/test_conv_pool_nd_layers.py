"""Conv1d/3d, ConvTranspose1d/2d/3d and the pooling layers of every rank with torch's full
signatures (groups, dilation, padding strings and modes, output_padding and output_size,
unbatched input), compared with torch: state-dict layout, repr, values and gradients in float32
and float64; and torch's argument errors."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

SPATIAL = {1: (9,), 2: (7, 8), 3: (5, 6, 4)}

CONV_CASES = [
    # (layer, args, kwargs, batched)
    ("Conv1d", (4, 6, 3), dict(groups=2, padding=1), True),
    ("Conv1d", (4, 4, 3), dict(groups=4, dilation=2, stride=2), True),  # depthwise
    ("Conv1d", (3, 6, 4), dict(padding="same", padding_mode="reflect"), False),
    ("Conv1d", (3, 6, 3), dict(padding=2, padding_mode="circular", bias=False), True),
    ("Conv3d", (4, 6, 3), dict(groups=2, padding=1), True),
    ("Conv3d", (3, 4, (2, 3, 1)), dict(stride=(1, 2, 1), dilation=(2, 1, 1)), True),
    ("Conv3d", (3, 4, 2), dict(padding="same", dilation=(1, 2, 1)), False),  # odd totals
    ("Conv3d", (2, 4, 3), dict(padding=(1, 0, 1), padding_mode="replicate"), True),
    ("Conv3d", (2, 2, 3, 1, "valid", 1, 2, False), {}, True),  # positional, as torch
    ("ConvTranspose1d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1, groups=2), True),
    ("ConvTranspose1d", (3, 2, 3), dict(dilation=2, stride=3, output_padding=2), False),
    ("ConvTranspose2d", (4, 6, 3), dict(stride=2, groups=2, bias=False), True),
    ("ConvTranspose2d", (2, 3, (3, 2)), dict(stride=(2, 1), padding=(1, 0),
                                             output_padding=(1, 0)), True),
    ("ConvTranspose3d", (4, 2, 3), dict(stride=2, padding=1, output_padding=1, groups=2), True),
    ("ConvTranspose3d", (2, 3, (2, 3, 1)), dict(dilation=(1, 2, 1)), False),
]


def _run(layer, ref, x, dtype):
    rng = np.random.default_rng(1)
    xt, xg = torch.tensor(x, requires_grad=True), gw.tensor(x, requires_grad=True)
    yt, yg = ref(xt), layer(xg)
    assert tuple(yg.shape) == tuple(yt.shape)
    assert np.asarray(yg).dtype == dtype
    weights = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    (yt * torch.tensor(weights)).sum().backward()
    (yg * gw.tensor(weights)).sum().backward()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(yg), yt.detach().numpy(), **tol)
    np.testing.assert_allclose(np.asarray(xg.grad), xt.grad.numpy(), **tol)
    for name, parameter in ref.named_parameters():
        np.testing.assert_allclose(np.asarray(dict(layer.named_parameters())[name].grad),
                                   parameter.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "args", "kwargs", "batched"), CONV_CASES)
def test_conv_layers_match_torch(name, args, kwargs, batched, dtype):
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    ref = getattr(torch.nn, name)(*args, **kwargs).to(torch_dtype)
    layer = getattr(gw.nn, name)(*args, **kwargs, dtype=dtype)
    assert repr(layer) == repr(ref)
    state = ref.state_dict()
    assert {k: tuple(v.shape) for k, v in layer.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in state.items()}
    layer.load_state_dict({k: v.detach().numpy() for k, v in state.items()})
    rank = int(name[-2])
    shape = (args[0], *SPATIAL[rank])
    x = np.random.default_rng(0).standard_normal(((2,) if batched else ()) + shape).astype(dtype)
    _run(layer, ref, x, dtype)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_transpose_output_size_picks_torchs_output_padding(rank):
    name = f"ConvTranspose{rank}d"
    ref = getattr(torch.nn, name)(2, 3, 3, stride=3).double()
    layer = getattr(gw.nn, name)(2, 3, 3, stride=3, dtype=np.float64)
    layer.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((1, 2) + (3,) * rank)
    for extra in (0, 1, 2):
        size = [(3 - 1) * 3 + 3 + extra] * rank
        want = ref(torch.tensor(x), output_size=size)
        got = layer(gw.tensor(x), output_size=size)
        np.testing.assert_allclose(np.asarray(got), want.detach().numpy(), rtol=1e-12)
    with pytest.raises(ValueError):
        ref(torch.tensor(x), output_size=[14] * rank)
    with pytest.raises(ValueError, match="valid sizes range from"):
        layer(gw.tensor(x), output_size=[14] * rank)


@pytest.mark.parametrize(("name", "args", "kwargs"), [
    ("Conv1d", (4, 6, 3), dict(groups=4)),
    ("Conv3d", (4, 6, 3), dict(groups=0)),
    ("Conv3d", (4, 6, 3), dict(padding="full")),
    ("Conv1d", (4, 6, 3), dict(padding="same", stride=2)),
    ("Conv3d", (4, 6, 3), dict(padding_mode="mirror")),
    ("ConvTranspose2d", (4, 6, 3), dict(padding_mode="reflect")),
    ("ConvTranspose3d", (4, 6, 3), dict(groups=3)),
])
def test_conv_argument_errors_as_torch(name, args, kwargs):
    with pytest.raises((ValueError, TypeError, RuntimeError)):
        getattr(torch.nn, name)(*args, **kwargs)
    with pytest.raises((ValueError, TypeError)):
        getattr(gw.nn, name)(*args, **kwargs)


def test_conv_transpose_refuses_a_padding_string_at_construction():
    # torch accepts it and fails at the first forward (padding=('s', 'a', 'm', 'e'))
    with pytest.raises(ValueError, match="padding must be an int or a tuple"):
        gw.nn.ConvTranspose1d(4, 6, 3, padding="same")


def test_conv_transpose_output_padding_must_be_below_stride_or_dilation():
    x = torch.zeros(1, 2, 4, 4)
    with pytest.raises(RuntimeError, match="output padding must be smaller"):
        torch.nn.ConvTranspose2d(2, 2, 3, stride=1, output_padding=1)(x)
    with pytest.raises(ValueError, match="output padding must be smaller"):
        gw.nn.ConvTranspose2d(2, 2, 3, stride=1, output_padding=1)(gw.zeros(1, 2, 4, 4))


POOL_CASES = [
    ("MaxPool1d", (3,), dict(stride=2, padding=1, dilation=2, ceil_mode=True)),
    ("MaxPool2d", ((3, 2),), dict(stride=2, padding=1, ceil_mode=True)),
    ("MaxPool3d", (2,), dict(stride=(1, 2, 2), dilation=(2, 1, 1))),
    ("AvgPool1d", (3,), dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("AvgPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True, divisor_override=4)),
    ("AvgPool3d", (3,), dict(stride=2, padding=1, count_include_pad=False)),
    ("LPPool1d", (2, 3), dict(stride=2, ceil_mode=True)),
    ("LPPool2d", (3.0, 2), {}),
    ("LPPool3d", (2, (2, 3, 2)), dict(ceil_mode=True)),
    ("AdaptiveAvgPool3d", ((2, None, 3),), {}),
    ("AdaptiveMaxPool3d", (2,), {}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize(("name", "args", "kwargs"), POOL_CASES)
def test_pool_layers_match_torch(name, args, kwargs, batched, dtype):
    ref, layer = getattr(torch.nn, name)(*args, **kwargs), getattr(gw.nn, name)(*args, **kwargs)
    assert repr(layer) == repr(ref)
    rank = int(name[-2])
    shape = ((2,) if batched else ()) + (3, *SPATIAL[rank])
    x = np.random.default_rng(3).uniform(0.5, 2.0, size=shape).astype(dtype)
    _run(layer, ref, x, dtype)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_max_pool_and_unpool_layers_round_trip_as_torch(rank):
    pool = getattr(torch.nn, f"MaxPool{rank}d")(2, stride=2, return_indices=True, ceil_mode=True)
    unpool = getattr(torch.nn, f"MaxUnpool{rank}d")(2, stride=2)
    ours = getattr(gw.nn, f"MaxPool{rank}d")(2, stride=2, return_indices=True, ceil_mode=True)
    ours_unpool = getattr(gw.nn, f"MaxUnpool{rank}d")(2, stride=2)
    assert repr(ours_unpool) == repr(unpool)
    x = np.random.default_rng(4).standard_normal((2, 3, *SPATIAL[rank]))
    values, indices = pool(torch.tensor(x))
    got_values, got_indices = ours(gw.tensor(x))
    np.testing.assert_array_equal(np.asarray(got_indices), indices.numpy())
    size = x.shape[2:]
    want = unpool(values, indices, output_size=size)
    got = ours_unpool(got_values, got_indices, output_size=size)
    np.testing.assert_array_equal(np.asarray(got), want.numpy())
