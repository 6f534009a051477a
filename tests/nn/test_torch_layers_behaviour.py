"""What the side-by-side values cannot show for the issue-11 layers: torch's default
initialisation (through the default generator), dropout in training, second derivatives,
NumPy inputs, the doctor's observers, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise import nn
from gradwise.doctor import Doctor, DoctorConfig
from gradwise.nn import functional as F
from gradwise.optim import SGD
from helpers import torch

# (id, build(nn)): parameters large enough for their spread to be measured
INIT_CASES = [
    ("lstm", lambda m: m.LSTM(24, 32, num_layers=2, bidirectional=True)),
    ("gru", lambda m: m.GRU(16, 48)),
    ("rnn", lambda m: m.RNN(16, 40, nonlinearity="relu")),
    ("lstm_cell", lambda m: m.LSTMCell(20, 30)),
    ("gru_cell", lambda m: m.GRUCell(20, 30)),
    ("rnn_cell", lambda m: m.RNNCell(20, 30)),
    ("conv1d", lambda m: m.Conv1d(16, 32, 5)),
    ("conv_transpose2d", lambda m: m.ConvTranspose2d(16, 24, 3)),
    ("conv_transpose1d", lambda m: m.ConvTranspose1d(8, 32, 4)),
    ("multihead_attention", lambda m: m.MultiheadAttention(32, 4)),
    ("multihead_attention_kdim", lambda m: m.MultiheadAttention(32, 4, kdim=20, vdim=12)),
    ("bilinear", lambda m: m.Bilinear(12, 16, 20)),
    ("embedding_bag", lambda m: m.EmbeddingBag(50, 16)),
    ("prelu", lambda m: m.PReLU(8)),
    ("group_norm", lambda m: m.GroupNorm(4, 8)),
    ("encoder_layer", lambda m: m.TransformerEncoderLayer(32, 4, 64)),
]


@pytest.mark.skipif(torch is None, reason="PyTorch oracle not installed")
@pytest.mark.parametrize("build", [c[1] for c in INIT_CASES], ids=[c[0] for c in INIT_CASES])
def test_default_initialisation_has_torchs_distribution(build):
    """Same parameter names and shapes; each tensor's spread and range as torch's default
    init gives (the streams differ, so the values are compared as distributions)."""
    torch.manual_seed(0)
    gw.manual_seed(0)
    ours, theirs = dict(build(nn).named_parameters()), dict(build(torch.nn).named_parameters())
    assert list(ours) == list(theirs)
    # a spread measured on a few dozen draws is itself off by 10-30%, so small tensors are
    # pooled over rebuilt layers until each side has about 1000 draws
    rebuilds = int(np.ceil(1000 / min(p.numel() for p in theirs.values()))) if theirs else 1
    ours_draws = {name: [np.asarray(p)] for name, p in ours.items()}
    theirs_draws = {name: [p.detach().numpy()] for name, p in theirs.items()}
    for _ in range(min(rebuilds, 40) - 1):
        for draws, parameters in ((ours_draws, build(nn).named_parameters()),
                                  (theirs_draws, build(torch.nn).named_parameters())):
            for name, p in parameters:
                draws[name].append(np.asarray(p) if draws is ours_draws else
                                   p.detach().numpy())
    for name, param in ours.items():
        assert np.asarray(param).shape == tuple(theirs[name].shape), name
        assert np.asarray(param).dtype == np.float32, name
        values, expected = np.stack(ours_draws[name]), np.stack(theirs_draws[name])
        if expected.std() == 0:
            np.testing.assert_array_equal(values, expected, err_msg=name)
            continue
        # two sample spreads of n draws: each off by ~0.45 / sqrt(n) (uniform draws), so 2.5 /
        # sqrt(n) is about four standard errors of their difference
        assert values.std() == pytest.approx(expected.std(), rel=2.5 / np.sqrt(values.size)), \
            name
        assert np.abs(values).max() <= np.abs(expected).max() * 1.25 + 1e-6, name


@pytest.mark.parametrize("build", [c[1] for c in INIT_CASES], ids=[c[0] for c in INIT_CASES])
def test_default_initialisation_follows_manual_seed(build):
    gw.manual_seed(7)
    first = build(nn).state_dict()
    gw.manual_seed(7)
    second = build(nn).state_dict()
    third = build(nn).state_dict()
    for name in first:
        np.testing.assert_array_equal(np.asarray(first[name]), np.asarray(second[name]))
    random = [name for name in first if np.asarray(first[name]).std() > 0]
    changed = [name for name in random
               if not np.array_equal(np.asarray(first[name]), np.asarray(third[name]))]
    assert changed == random, "a second layer drew the same weights"


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_recurrent_dropout_between_layers_only_in_training(cls):
    gw.manual_seed(0)
    layer = getattr(nn, cls)(3, 8, num_layers=2, dropout=0.5)
    x = gw.tensor(np.random.default_rng(0).normal(size=(4, 2, 3)).astype(np.float32))
    gw.manual_seed(1)
    first = layer(x)[0].numpy()
    gw.manual_seed(1)
    np.testing.assert_array_equal(layer(x)[0].numpy(), first)  # reproducible
    plain = getattr(nn, cls)(3, 8, num_layers=2)
    plain.load_state_dict(layer.state_dict())
    assert not np.allclose(first, plain(x)[0].numpy())
    layer.eval()
    np.testing.assert_allclose(layer(x)[0].numpy(), plain(x)[0].numpy(), rtol=1e-6)


def test_attention_dropout_rescales_kept_weights_in_training():
    gw.manual_seed(0)
    attention = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True)
    x = gw.tensor(np.random.default_rng(0).normal(size=(2, 5, 8)).astype(np.float32))
    _, weights = attention(x, x, x, average_attn_weights=False)
    attention.eval()
    _, clean = attention(x, x, x, average_attn_weights=False)
    kept = weights.numpy() != 0
    assert 0.2 < kept.mean() < 0.8
    np.testing.assert_allclose(weights.numpy()[kept], 2 * clean.numpy()[kept], rtol=1e-5)
    np.testing.assert_allclose(clean.numpy().sum(-1), 1.0, rtol=1e-5)


def _f64(*shape, seed=0):
    return gw.tensor(np.random.default_rng(seed).normal(size=shape), requires_grad=True)


SECOND_ORDER_CASES = [
    ("lstm_cell", lambda x, h, c, w, u: F.lstm_cell(x, (h, c), w, u, None, None)[1],
     [(2, 3), (2, 2), (2, 2), (8, 3), (8, 2)]),
    ("gru_cell", lambda x, h, w, u: F.gru_cell(x, h, w, u, None, None), [(2, 3), (2, 2), (6, 3),
                                                                         (6, 2)]),
    ("sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     [(2, 3, 2), (2, 3, 2), (2, 3, 2)]),
    ("bilinear_interpolate", lambda x: F.interpolate(x, size=(3, 5), mode="bilinear",
                                                     align_corners=False).tanh(),
     [(1, 1, 2, 3)]),
    ("group_norm", lambda x: F.group_norm(x, 2), [(2, 4, 3)]),
    ("fold_unfold", lambda x: F.fold(F.unfold(x, 2, padding=1).tanh(), 3, 2, padding=1),
     [(1, 2, 3, 3)]),
    ("mish", F.mish, [(3, 4)]),
]


@pytest.mark.parametrize(("fn", "shapes"), [c[1:] for c in SECOND_ORDER_CASES],
                         ids=[c[0] for c in SECOND_ORDER_CASES])
def test_gradients_and_second_derivatives_of_the_compositions(fn, shapes):
    inputs = [_f64(*shape, seed=i) for i, shape in enumerate(shapes)]
    assert gw.gradcheck(fn, *inputs)
    assert gw.gradgradcheck(fn, *inputs)


def test_conv_transpose_gradients_match_finite_differences():
    # first order only: the Conv2d op it is built on has no differentiable backward yet
    x, w = _f64(1, 2, 2, 3), _f64(2, 1, 3, 3, seed=1)
    assert gw.gradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1), x, w)
    assert gw.gradcheck(lambda x, w: F.conv_transpose1d(x, w, stride=3, output_padding=1),
                        _f64(1, 2, 3), _f64(2, 1, 2, seed=1))


def test_functions_and_layers_take_numpy_arrays_as_constants():
    x = np.random.default_rng(0).normal(size=(2, 3, 6)).astype(np.float32)
    conv = nn.Conv1d(3, 4, 3)
    conv(x).sum().backward()
    assert conv.weight.grad is not None
    out, (h, c) = nn.LSTM(6, 5, batch_first=True)(x)
    assert out.shape == (2, 3, 5) and h.shape == (1, 2, 5) and c.shape == (1, 2, 5)
    assert F.interpolate(x[None], scale_factor=2).shape == (1, 2, 6, 12)
    assert F.hardswish(x).shape == x.shape
    encoder = nn.TransformerEncoderLayer(6, 2, 8, batch_first=True)
    assert encoder(x).shape == (2, 3, 6)


def test_the_doctor_watches_recurrent_and_attention_models():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(3, 4, batch_first=True)
            self.encoder = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(self.encoder(out).mean(1))

    gw.manual_seed(0)
    model = Model()
    optimizer = SGD(model.parameters(), lr=0.1)
    doctor = Doctor(model, optimizer, config=DoctorConfig(interval=1))
    x = gw.tensor(np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32))
    y = gw.tensor(np.arange(4) % 2)
    try:
        for _ in range(2):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            doctor.step(loss)
    finally:
        doctor.close()  # removes its hooks and observer
    assert {"rnn.weight_ih_l0", "encoder.self_attn.in_proj_weight"} <= set(doctor.stats.params)
    assert doctor.stats.params["rnn.weight_hh_l0"].steps == [0, 1]
    assert any(name.startswith("rnn:") for name in doctor.stats.activations)
    assert "encoder.self_attn:softmax" in doctor.stats.activations
    assert isinstance(doctor.report(), str)


ERROR_CASES = [
    ("conv1d_channels", lambda: nn.Conv1d(3, 4, 2)(np.zeros((1, 2, 5), np.float32)),
     ValueError, "Conv1d.*expected input"),
    ("conv1d_groups", lambda: nn.Conv1d(4, 4, 2, groups=3), ValueError,
     "divisible by groups"),
    ("conv1d_same_stride", lambda: nn.Conv1d(4, 4, 2, stride=2, padding="same"), ValueError,
     "not supported for strided convolutions"),
    ("conv1d_padding_mode", lambda: nn.Conv1d(4, 4, 2, padding_mode="mirror"), ValueError,
     "padding_mode"),
    ("lstm_input_size", lambda: nn.LSTM(3, 4)(np.zeros((5, 2, 4), np.float32)), ValueError,
     "input_size=3"),
    ("lstm_hx_not_pair", lambda: nn.LSTM(3, 4)(np.zeros((5, 2, 3), np.float32),
                                               np.zeros((1, 2, 4), np.float32)),
     ValueError, "tuple"),
    ("gru_h0_shape", lambda: nn.GRU(3, 4)(np.zeros((5, 2, 3), np.float32),
                                          np.zeros((2, 2, 4), np.float32)),
     ValueError, r"hx must have shape \(1, 2, 4\)"),
    ("pack_unsorted", lambda: nn.utils.rnn.pack_padded_sequence(gw.zeros(4, 2, 1), [2, 3]),
     ValueError, "enforce_sorted"),
    ("pack_length_too_long", lambda: nn.utils.rnn.pack_padded_sequence(gw.zeros(4, 2, 1),
                                                                       [5, 3]),
     ValueError, r"in \[1, 4\]"),
    ("pad_packed_total_length", lambda: nn.utils.rnn.pad_packed_sequence(
        nn.utils.rnn.pack_sequence([gw.zeros(3, 1), gw.zeros(2, 1)]), total_length=2),
     ValueError, "total_length"),
    ("lstm_proj_size_too_large", lambda: nn.LSTM(3, 4, proj_size=4), ValueError,
     "smaller than hidden_size"),
    ("gru_proj_size", lambda: nn.RNNBase("GRU", 3, 4, proj_size=2), ValueError, "only.*LSTM"),
    ("lstm_proj_c0_shape", lambda: nn.LSTM(3, 4, proj_size=2)(
        np.zeros((5, 2, 3), np.float32), (np.zeros((1, 2, 2), np.float32),
                                          np.zeros((1, 2, 2), np.float32))),
     ValueError, r"c_0 must have shape \(1, 2, 4\)"),
    ("rnn_nonlinearity", lambda: nn.RNN(3, 4, nonlinearity="gelu"), ValueError, "nonlinearity"),
    ("mha_heads", lambda: nn.MultiheadAttention(10, 3), ValueError, "divisible"),
    ("mha_mask_shape", lambda: nn.MultiheadAttention(4, 2)(
        *[np.zeros((3, 1, 4), np.float32)] * 3, attn_mask=np.zeros((2, 2), bool)),
     ValueError, "attn_mask must be"),
    ("sdpa_mask_and_causal", lambda: F.scaled_dot_product_attention(
        *[np.zeros((2, 3), np.float32)] * 3, attn_mask=np.ones((2, 2), bool), is_causal=True),
     ValueError, "not both"),
    ("reflect_too_wide", lambda: F.pad(gw.zeros(1, 2, 3), (3, 0), mode="reflect"), ValueError,
     "smaller than dim 2 of size 3"),
    ("pad_mode", lambda: F.pad(gw.zeros(1, 2, 3), (1, 1), mode="mirror"), ValueError, "mode"),
    ("interpolate_both", lambda: F.interpolate(gw.zeros(1, 1, 2, 2), size=3, scale_factor=2),
     ValueError, "exactly one"),
    ("interpolate_bicubic", lambda: F.interpolate(gw.zeros(1, 1, 2, 2), size=3,
                                                  mode="bicubic"), ValueError, "bicubic"),
    ("bilinear_rank", lambda: F.interpolate(gw.zeros(1, 1, 2), size=3, mode="bilinear"),
     ValueError, "4-D"),
    ("instance_norm_one_element", lambda: nn.InstanceNorm1d(2)(gw.zeros(3, 2, 1)), ValueError,
     "more than 1 spatial element"),
    ("group_norm_groups", lambda: nn.GroupNorm(3, 4), ValueError, "divisible"),
    ("embedding_bag_offsets", lambda: nn.EmbeddingBag(5, 2)(np.array([1, 2])), ValueError,
     "offsets"),
    ("embedding_bag_bad_offsets", lambda: nn.EmbeddingBag(5, 2)(np.array([1, 2]),
                                                                np.array([1])),
     ValueError, "start at 0"),
    ("pixel_shuffle_channels", lambda: nn.PixelShuffle(2)(gw.zeros(1, 3, 2, 2)), ValueError,
     "divisible"),
    ("unflatten_sizes", lambda: nn.Unflatten(1, (2, 3))(gw.zeros(2, 8)), ValueError,
     "multiply to 8"),
    ("glu_odd", lambda: F.glu(gw.zeros(2, 3)), ValueError, "even"),
    ("prelu_channels", lambda: nn.PReLU(3)(gw.zeros(2, 4)), ValueError, "prelu"),
    ("conv_transpose_output_padding", lambda: nn.ConvTranspose2d(1, 1, 3, output_padding=1)(
        gw.zeros(1, 1, 2, 2)), ValueError, "output_padding"),
    ("gaussian_negative_var", lambda: F.gaussian_nll_loss(gw.zeros(2), gw.zeros(2),
                                                          -gw.ones(2)), ValueError, "negative"),
    ("kl_reduction", lambda: nn.KLDivLoss(reduction="avg"), ValueError, "reduction"),
    ("kl_negative_target", lambda: F.kl_div(gw.zeros(2), np.array([0.5, -0.1])), ValueError,
     "negative"),
    ("poisson_negative_rate", lambda: F.poisson_nll_loss(-gw.ones(2), gw.ones(2),
                                                         log_input=False), ValueError,
     "must not be negative"),
    ("transformer_activation", lambda: nn.TransformerEncoderLayer(4, 2, activation="swish"),
     ValueError, "activation"),
]


@pytest.mark.parametrize(("call", "error", "match"), [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_bad_input_raises_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_pad_sequence_pads_stacks_and_sends_gradients_back():
    a, b = _f64(3, 2), _f64(1, 2, seed=1)
    padded = nn.utils.rnn.pad_sequence([a, b], batch_first=True, padding_value=-1.0)
    assert padded.shape == (2, 3, 2)
    np.testing.assert_array_equal(padded.numpy()[1, 1:], -1.0)
    assert nn.utils.rnn.pad_sequence([a, b]).shape == (3, 2, 2)
    left = nn.utils.rnn.pad_sequence([a, b], batch_first=True, padding_side="left")
    np.testing.assert_array_equal(left.numpy()[1, 2], b.numpy()[0])
    padded.sum().backward()
    np.testing.assert_array_equal(np.asarray(b.grad), 1.0)
    pieces = nn.utils.rnn.unpad_sequence(padded, [3, 1], batch_first=True)
    np.testing.assert_array_equal(pieces[1].numpy(), b.numpy())


@pytest.mark.skipif(torch is None, reason="PyTorch oracle not installed")
def test_pad_sequence_matches_torch():
    from torch.nn.utils.rnn import pad_sequence as torch_pad

    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(n, 2, 3)) for n in (2, 5, 1)]
    for kwargs in ({}, {"batch_first": True, "padding_value": 7.0}):
        ours = nn.utils.rnn.pad_sequence([gw.tensor(a) for a in arrays], **kwargs)
        theirs = torch_pad([torch.from_numpy(a) for a in arrays], **kwargs)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.skipif(torch is None, reason="PyTorch oracle not installed")
def test_embedding_from_pretrained_and_square_subsequent_mask_match_torch():
    weights = np.arange(12, dtype=np.float32).reshape(4, 3)
    ours = nn.Embedding.from_pretrained(weights)
    assert not ours.weight.requires_grad
    np.testing.assert_array_equal(ours(np.array([2, 0])).numpy(), weights[[2, 0]])
    from gradwise.nn.layers.transformer import generate_square_subsequent_mask

    np.testing.assert_array_equal(
        generate_square_subsequent_mask(4).numpy(),
        torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())


def test_rrelu_training_slopes_lie_between_lower_and_upper():
    gw.manual_seed(0)
    x = -gw.ones(1000)
    slopes = -nn.RReLU(0.1, 0.3)(x).numpy()
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.03


@pytest.mark.parametrize(("cls", "shape"), [("Dropout1d", (8, 16, 5)), ("Dropout2d", (8, 16, 3, 2)),
                                            ("Dropout3d", (4, 16, 2, 2, 2)),
                                            ("Dropout2d", (16, 3, 2))])
def test_channel_dropout_zeroes_whole_channels_and_rescales(cls, shape):
    layer = getattr(nn, cls)(0.5, rng=0)
    x = gw.ones(*shape)
    out = layer(x).numpy()
    spatial = {"Dropout1d": 1, "Dropout2d": 2, "Dropout3d": 3}[cls]
    per_channel = out.reshape(*shape[:len(shape) - spatial], -1)
    assert np.all((per_channel == 0) | (per_channel == 2.0))
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # a channel is kept or dropped
    assert 0.25 < (per_channel[..., 0] == 0).mean() < 0.75
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), 1.0)
    with pytest.raises(ValueError, match=cls.lower()):
        layer.train()(gw.ones(3))


def test_parameter_list_and_dict_register_their_parameters():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn.ParameterList([nn.Parameter(gw.ones(2)) for _ in range(2)])
            self.scales.append(gw.zeros(3))
            self.gains = nn.ParameterDict({"a": nn.Parameter(gw.ones(1))})
            self.gains["b"] = np.full(2, 2.0, np.float32)

    model = Model()
    assert list(model.state_dict()) == ["scales.0", "scales.1", "scales.2", "gains.a", "gains.b"]
    assert len(list(model.parameters())) == 5
    assert len(model.scales) == 3 and model.scales[-1].shape == (3,)
    assert isinstance(model.gains["b"], nn.Parameter) and "a" in model.gains
    assert list(model.gains.keys()) == ["a", "b"]
    with pytest.raises(IndexError, match="out of range"):
        model.scales[3]
    if torch is not None:
        class TorchModel(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.scales = torch.nn.ParameterList(
                    [torch.nn.Parameter(torch.ones(2)) for _ in range(2)]
                    + [torch.nn.Parameter(torch.zeros(3))])
                self.gains = torch.nn.ParameterDict(
                    {"a": torch.nn.Parameter(torch.ones(1)),
                     "b": torch.nn.Parameter(torch.zeros(2))})

        theirs = TorchModel()
        theirs.load_state_dict({k: torch.from_numpy(np.array(v))
                                for k, v in model.state_dict().items()})
        np.testing.assert_array_equal(theirs.gains["b"].detach().numpy(), 2.0)


def test_weighted_losses_keep_their_weights_as_buffers():
    loss = nn.CrossEntropyLoss(weight=[1.0, 2.0])
    assert list(loss.state_dict()) == ["weight"]
    assert "weight" not in nn.CrossEntropyLoss().state_dict()
    loss.double()
    assert loss.weight.dtype == np.float64


@pytest.mark.parametrize("cls", ["AlphaDropout", "FeatureAlphaDropout"])
def test_alpha_dropout_keeps_selu_statistics_and_is_the_identity_in_evaluation(cls):
    layer = getattr(nn, cls)(0.2, rng=0)
    x = gw.tensor(np.random.default_rng(0).normal(size=(64, 32, 8)))
    out = layer(x).numpy()
    assert abs(out.mean()) < 0.05 and abs(out.std() - 1.0) < 0.05  # Klambauer et al.'s claim
    dropped = np.isclose(out, -1.7580993408473766 / np.sqrt((1.7580993408473766 ** 2 * 0.2 + 1)
                                                              * 0.8) + 1.7580993408473766 * 0.2
                         / np.sqrt((1.7580993408473766 ** 2 * 0.2 + 1) * 0.8))
    assert 0.15 < dropped.mean() < 0.25
    if cls == "FeatureAlphaDropout":
        assert np.all(dropped.min(-1) == dropped.max(-1))  # whole channels
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())


def test_gumbel_softmax_samples_the_categorical_distribution():
    gw.manual_seed(0)
    logits = gw.tensor(np.log(np.array([[0.7, 0.2, 0.1]] * 4000)), requires_grad=True)
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(soft.numpy().sum(-1), 1.0, rtol=1e-6)
    hard = F.gumbel_softmax(logits, hard=True)
    assert set(np.unique(hard.numpy())) == {0.0, 1.0}
    np.testing.assert_allclose(hard.numpy().mean(0), [0.7, 0.2, 0.1], atol=0.03)
    (hard * gw.tensor(np.arange(3.0))).sum().backward()  # straight-through: a soft gradient
    assert np.abs(np.asarray(logits.grad)).sum() > 0


@pytest.mark.skipif(torch is None, reason="PyTorch oracle not installed")
def test_pack_sequence_layout_matches_torch():
    from torch.nn.utils import rnn as torch_rnn

    arrays = [np.arange(n * 2, dtype=np.float32).reshape(n, 2) + 10 * n for n in (2, 4, 1)]
    ours = nn.utils.rnn.pack_sequence([gw.tensor(a) for a in arrays], enforce_sorted=False)
    theirs = torch_rnn.pack_sequence([torch.from_numpy(a) for a in arrays],
                                     enforce_sorted=False)
    for field in ("data", "batch_sizes", "sorted_indices", "unsorted_indices"):
        np.testing.assert_array_equal(getattr(ours, field).numpy(),
                                      getattr(theirs, field).numpy(), err_msg=field)
    padded, lengths = nn.utils.rnn.pad_packed_sequence(ours, batch_first=True, padding_value=-1)
    t_padded, t_lengths = torch_rnn.pad_packed_sequence(theirs, batch_first=True,
                                                        padding_value=-1)
    np.testing.assert_array_equal(padded.numpy(), t_padded.numpy())
    np.testing.assert_array_equal(lengths.numpy(), t_lengths.numpy())


def test_stacked_transformer_layers_draw_different_dropout_masks_from_the_default_generator():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 2)
    first, second = encoder.layers[0], encoder.layers[1]
    assert first.dropout.rng is second.dropout.rng is layer.dropout.rng  # the shared stream
    x = gw.ones(2, 3, 8)
    assert not np.array_equal(first.dropout(x).numpy(), second.dropout(x).numpy())
    gw.manual_seed(5)
    once = encoder(x).numpy()
    gw.manual_seed(5)
    np.testing.assert_array_equal(encoder(x).numpy(), once)


def test_sdpa_dropout_drops_and_rescales_attention_weights():
    rng = np.random.default_rng(0)
    q, k = gw.tensor(rng.normal(size=(64, 4, 3))), gw.tensor(rng.normal(size=(64, 5, 3)))
    v = gw.tensor(np.broadcast_to(np.eye(5), (64, 5, 5)).copy())  # output = the weights
    clean = F.scaled_dot_product_attention(q, k, v).numpy()
    dropped = F.scaled_dot_product_attention(q, k, v, dropout_p=0.25, generator=3).numpy()
    kept = dropped != 0
    assert 0.65 < kept.mean() < 0.85
    np.testing.assert_allclose(dropped[kept], clean[kept] / 0.75, rtol=1e-12)
    again = F.scaled_dot_product_attention(q, k, v, dropout_p=0.25, generator=3).numpy()
    np.testing.assert_array_equal(again, dropped)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_second_derivatives_through_recurrent_layers(cls):
    layer = getattr(nn, cls)(2, 3, num_layers=2, bidirectional=True, rng=0, dtype=np.float64)
    # the layer's own parameters are checked (gradcheck perturbs them in place)
    w_ih, w_hh = layer.weight_ih_l1_reverse, layer.weight_hh_l0

    def output(x, w_ih, w_hh):
        return layer(x)[0].tanh()

    x = _f64(3, 2, 2)
    assert gw.gradcheck(output, x, w_ih, w_hh)
    assert gw.gradgradcheck(output, x, w_ih, w_hh)


@pytest.mark.skipif(torch is None, reason="PyTorch oracle not installed")
def test_lazy_linear_takes_its_input_size_from_the_first_batch_and_matches_torch():
    ours, theirs = nn.LazyLinear(3), torch.nn.LazyLinear(3)
    assert ours.weight.shape == (3, 0) and ours.has_uninitialized_params()
    optimizer = gw.optim.SGD(ours.parameters(), lr=0.1)  # built before the shape is known
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    ours(x), theirs(torch.from_numpy(x))
    assert ours.weight.shape == (3, 5) and ours.in_features == 5
    bound = 1 / np.sqrt(5)
    assert np.abs(np.asarray(ours.weight)).max() <= bound
    ours.load_state_dict(theirs.state_dict())
    out = ours(gw.tensor(x))
    np.testing.assert_allclose(out.numpy(), theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    out.sum().backward()
    before = np.asarray(ours.weight).copy()
    optimizer.step()
    assert not np.array_equal(np.asarray(ours.weight), before)  # the optimizer holds it
    fresh = nn.LazyLinear(3)
    fresh.load_state_dict(ours.state_dict())  # a full weight decides the size
    assert fresh.in_features == 5
