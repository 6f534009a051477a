"""Packed recurrent layers with an inf or NaN in a sequence that ends early (issue 12, item a).

A packed batch runs each time step on the sequences still going only, as torch's packed
layers: an ended sequence's state (an inf after an inf input) must not enter the step's
matmul, where a zero gradient times it made weight_hh's gradient NaN (torch: inf). Swept over
the recurrent kinds, both dtypes, the planted value and several weight draws.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw

torch = pytest.importorskip("torch")

KINDS = {"rnn_relu": ("RNN", {"nonlinearity": "relu"}), "rnn_tanh": ("RNN", {}),
         "gru": ("GRU", {}), "lstm": ("LSTM", {}), "lstm_bidirectional": ("LSTM", {
             "bidirectional": True})}


def _run(nn, layer, x, lengths):
    utils = nn.utils.rnn
    packed = utils.pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, _ = layer(packed)
    padded, _ = utils.pad_packed_sequence(out, total_length=x.shape[0])
    return padded


@pytest.mark.parametrize("planted", [np.inf, -np.inf, np.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_packed_layer_gradients_with_a_non_finite_value_in_a_short_sequence(kind, dtype,
                                                                         planted):
    cls, options = KINDS[kind]
    lengths = [2, 5, 3]
    for seed in range(4):
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1, 1, (5, 3, 3)).astype(dtype)
        x[0, 0, 0] = planted  # the first sequence (length 2) starts with it
        ours = getattr(gw.nn, cls)(3, 4, **options)
        theirs = getattr(torch.nn, cls)(3, 4, **options)
        if dtype == np.float64:
            ours.double()
            theirs.double()
        with torch.no_grad():
            for param in theirs.parameters():
                param.copy_(torch.from_numpy(
                    rng.uniform(-0.6, 0.6, tuple(param.shape)).astype(dtype)))
        ours.load_state_dict(theirs.state_dict())
        ours_x = gw.tensor(x.copy(), requires_grad=True)
        theirs_x = torch.from_numpy(x.copy()).requires_grad_(True)
        upstream = rng.uniform(0.5, 1.5, (5, 3, 8 if "bidirectional" in kind else 4))
        upstream = upstream.astype(dtype)
        with np.errstate(all="ignore"):
            _run(gw.nn, ours, ours_x, lengths).backward(gw.tensor(upstream))
        _run(torch.nn, theirs, theirs_x, lengths).backward(torch.from_numpy(upstream))
        theirs_params = dict(theirs.named_parameters())
        rtol = 1e-4 if dtype == np.float32 else 1e-9
        for key, param in ours.named_parameters():
            np.testing.assert_allclose(np.asarray(param.grad), theirs_params[key].grad.numpy(),
                                       rtol=rtol, atol=rtol, equal_nan=True,
                                       err_msg=f"{kind} seed {seed}: grad of {key}")
        np.testing.assert_allclose(np.asarray(ours_x.grad), theirs_x.grad.numpy(), rtol=rtol,
                                   atol=rtol, equal_nan=True, err_msg=f"{kind}: input grad")
