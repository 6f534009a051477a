"""permute's argument errors and detach_() on a view raise torch's exception types (found while
fixing the fourth newcomer review of issue 12); each case runs in torch too."""

import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

PERMUTE = {
    "too_few": ((2, 3), (0,), RuntimeError),
    "too_many": ((2, 3), (0, 1, 2), RuntimeError),
    "duplicate": ((2, 3), (0, 0), RuntimeError),
    "duplicate_negative": ((2, 3), (1, -1), RuntimeError),
    "out_of_range": ((2, 3), (0, 5), IndexError),
    "out_of_range_negative": ((2, 3), (-3, 0), IndexError),
    "ok_negative": ((2, 3, 4), (-1, 0, 1), None),
}


@pytest.mark.parametrize("name", sorted(PERMUTE))
def test_permute_errors_match_torch(name):
    shape, dims, error = PERMUTE[name]
    for m in (torch, gw):
        x = m.zeros(shape)
        if error is None:
            assert tuple(x.permute(*dims).shape) == tuple(torch.zeros(shape).permute(*dims).shape)
        else:
            with pytest.raises(error):
                x.permute(*dims)


@pytest.mark.parametrize("view", ["slice", "index", "view", "transpose", "expand"])
def test_detach_in_place_refuses_views_as_torch(view):
    make = {"slice": lambda t: t[1:], "index": lambda t: t[0], "view": lambda t: t.view(6),
            "transpose": lambda t: t.t(), "expand": lambda t: t[:1].expand(3, 3)}[view]
    for m in (torch, gw):
        base = m.ones(2, 3, requires_grad=True) * 2
        with pytest.raises(RuntimeError, match="Can't detach views in-place"):
            make(base).detach_()
        out = base.sum(0)  # a tensor an op made, not a view: detaches in place
        assert out.detach_() is out and not out.requires_grad and out.grad_fn is None
