"""nn.Conv2d / F.conv2d with torch's full signature: groups, padding 'same'/'valid', padding_mode,
unbatched input and torch's positional order, compared with torch (values, gradients, repr)."""

import numpy as np
import pytest

import gradwise as gw
import gradwise.nn.functional as F

torch = pytest.importorskip("torch")

CASES = [
    ((4, 6, 3), dict(groups=2, padding=1), (2, 4, 7, 7)),
    ((4, 4, 3), dict(groups=4), (2, 4, 7, 7)),  # depthwise
    ((3, 6, 3), dict(padding="same", dilation=2), (2, 3, 8, 9)),
    ((3, 6, (2, 4)), dict(padding="same"), (2, 3, 8, 9)),  # odd totals: extra zero after
    ((3, 6, 3), dict(padding="valid"), (3, 8, 9)),  # unbatched
    ((3, 6, 3), dict(padding=1, padding_mode="reflect"), (2, 3, 8, 9)),
    ((3, 6, 3), dict(padding=2, padding_mode="circular", stride=2), (2, 3, 8, 9)),
    ((3, 6, 4), dict(padding="same", padding_mode="replicate"), (2, 3, 8, 9)),
    ((2, 2, 3, 1, 1, 1, 2), {}, (1, 2, 5, 5)),  # positional: stride, padding, dilation, groups
    ((6, 4, 3, 1, 0, 1, 2, False), {}, (1, 6, 5, 5)),  # ... then bias
]


@pytest.mark.parametrize(("args", "kwargs", "shape"), CASES)
def test_conv2d_matches_torch(args, kwargs, shape):
    rng = np.random.default_rng(0)
    ref = torch.nn.Conv2d(*args, **kwargs).double()
    layer = gw.nn.Conv2d(*args, **kwargs, dtype=np.float64)
    assert tuple(layer.weight.shape) == tuple(ref.weight.shape)
    assert repr(layer) == repr(ref)
    layer.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    x = rng.standard_normal(shape)
    xt, xg = torch.tensor(x, requires_grad=True), gw.tensor(x, requires_grad=True)
    yt, yg = ref(xt), layer(xg)
    weights = rng.standard_normal(tuple(yt.shape))
    (yt * torch.tensor(weights)).sum().backward()
    (yg * gw.tensor(weights)).sum().backward()
    assert tuple(yg.shape) == tuple(yt.shape)
    np.testing.assert_allclose(np.asarray(yg), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(xg.grad), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(layer.weight.grad), ref.weight.grad.numpy(),
                               rtol=1e-10, atol=1e-12)


def test_functional_groups_and_same_match_torch():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 6, 6, 5)), rng.standard_normal((9, 2, 3, 2)), \
        rng.standard_normal(9)
    got = F.conv2d(gw.tensor(x), gw.tensor(w), gw.tensor(b), 1, "same", 1, 3)
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), 1,
                                      "same", 1, 3)
    np.testing.assert_allclose(np.asarray(got), want.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((4, 6, 3), dict(groups=4), "groups"),
    ((4, 6, 3), dict(padding="full"), "padding"),
    ((4, 6, 3), dict(padding="same", stride=2), "strided"),
    ((4, 6, 3), dict(padding_mode="mirror"), "padding_mode"),
])
def test_bad_options_are_refused_naming_them(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gw.nn.Conv2d(*args, **kwargs)
