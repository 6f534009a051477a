"""The layers, functions and losses PyTorch programs use (issue 11 B), each run side by side with
torch: same weights (copied from gradwise into torch with strict keys and shapes, then back),
same inputs, then outputs, input gradients and parameter gradients compared in float32 and
float64.

A case is ``(id, build, inputs)``: ``build(nn)`` gets ``gradwise.nn`` or ``torch.nn`` and returns
a module or function; ``inputs`` are ``X(shape)`` (random, differentiable) or ``C(array)``
(a constant: targets, indices, masks), given to both in the same order.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pytest

import gradwise as gw
from helpers import torch

pytestmark = pytest.mark.skipif(torch is None, reason="PyTorch oracle not installed")


def X(*shape: int, scale: float = 2.0) -> tuple[str, Any]:
    return ("grad", (shape, scale))


def C(array: Any) -> tuple[str, Any]:
    return ("const", np.asarray(array))


class Mask:
    """A mask or other constant keyword argument, made a tensor of the library (and, if
    float, of the dtype) under test when the case runs."""

    def __init__(self, array: Any) -> None:
        self.array = np.asarray(array)


def _library_tensor(nn: Any, values: Any) -> Any:
    """A float32 tensor of the library whose ``nn`` this is."""
    array = np.asarray(values, dtype=np.float32)
    return torch.from_numpy(array) if nn is torch.nn else gw.tensor(array)


TOLERANCE = {np.float32: (2e-4, 2e-5), np.float64: (1e-9, 1e-11)}
BOOL_MASK = np.array([[True, False, True, True], [True, True, False, False],
                      [True, True, True, False]])  # (L=3, S=4)
CAUSAL_FLOAT = np.triu(np.full((4, 4), -np.inf), 1)
PADDING = np.array([[False, False, True, True], [False, False, False, True]])  # (N=2, S=4)
SIGNS = np.array([1.0, -1.0, -1.0, 1.0])


def fn(name: str, **kwargs: Any):
    """``nn.functional.<name>`` with keyword arguments, for either library."""
    return lambda nn: partial(getattr(nn.functional, name), **kwargs)


ACTIVATION_CASES = [
    ("hardsigmoid", lambda nn: nn.Hardsigmoid(), [X(3, 7, scale=4)]),
    ("hardswish", lambda nn: nn.Hardswish(), [X(3, 7, scale=4)]),
    ("mish", lambda nn: nn.Mish(), [X(3, 7)]),
    ("softsign", lambda nn: nn.Softsign(), [X(3, 7)]),
    ("tanhshrink", lambda nn: nn.Tanhshrink(), [X(3, 7)]),
    ("logsigmoid", lambda nn: nn.LogSigmoid(), [X(3, 7, scale=20)]),
    ("selu", lambda nn: nn.SELU(), [X(3, 7)]),
    ("celu", lambda nn: nn.CELU(0.7), [X(3, 7)]),
    ("threshold", lambda nn: nn.Threshold(0.1, 2.0), [X(3, 7)]),
    ("hardshrink", lambda nn: nn.Hardshrink(0.3), [X(3, 7)]),
    ("softshrink", lambda nn: nn.Softshrink(0.3), [X(3, 7)]),
    ("glu", lambda nn: nn.GLU(1), [X(3, 6, 2)]),
    ("softmin", lambda nn: nn.Softmin(1), [X(3, 5, 2)]),
    ("softmax2d", lambda nn: nn.Softmax2d(), [X(2, 3, 2, 2)]),
    ("prelu_shared", lambda nn: nn.PReLU(), [X(3, 7)]),
    ("prelu_channels", lambda nn: nn.PReLU(3, init=0.1), [X(2, 3, 4)]),
    ("softplus_beta", lambda nn: nn.Softplus(beta=2.0, threshold=3.0), [X(3, 7)]),
    ("rrelu_eval", lambda nn: nn.RReLU(0.1, 0.3).eval(), [X(3, 7)]),
]

def _pool_unpool(nn: Any, rank: int, kernel: int, stride: int, padding: int, size: Any):
    """max pooling with indices then unpooling, as an autoencoder's down and up path."""
    pool = getattr(nn, f"MaxPool{rank}d")(kernel, stride, padding, return_indices=True)
    unpool = getattr(nn, f"MaxUnpool{rank}d")(kernel, stride, padding)
    return lambda x: unpool(*pool(x), output_size=size)


CONV_POOL_CASES = [
    ("conv1d", lambda nn: nn.Conv1d(3, 4, 3, stride=2, padding=1, dilation=2), [X(2, 3, 11)]),
    ("conv1d_no_bias", lambda nn: nn.Conv1d(2, 3, 2, bias=False), [X(2, 2, 5)]),
    ("conv1d_same_even_kernel_dilated", lambda nn: nn.Conv1d(2, 3, 4, padding="same",
                                                             dilation=2), [X(2, 2, 7)]),
    ("conv1d_same_odd", lambda nn: nn.Conv1d(2, 3, 3, padding="same"), [X(2, 2, 5)]),
    ("conv1d_valid", lambda nn: nn.Conv1d(2, 3, 3, padding="valid"), [X(2, 2, 5)]),
    ("conv1d_reflect", lambda nn: nn.Conv1d(2, 3, 3, padding=2, padding_mode="reflect"),
     [X(2, 2, 6)]),
    ("conv1d_circular_same", lambda nn: nn.Conv1d(2, 3, 4, padding="same",
                                                  padding_mode="circular"), [X(2, 2, 6)]),
    ("conv1d_replicate", lambda nn: nn.Conv1d(2, 3, 2, stride=2, padding=1,
                                              padding_mode="replicate"), [X(2, 2, 7)]),
    ("conv1d_unbatched", lambda nn: nn.Conv1d(2, 3, 3, padding=1), [X(2, 6)]),
    ("conv_transpose2d", lambda nn: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1,
                                                       output_padding=1), [X(2, 3, 4, 3)]),
    ("conv_transpose2d_rect", lambda nn: nn.ConvTranspose2d(2, 3, (2, 3), bias=False),
     [X(1, 2, 3, 4)]),
    ("conv_transpose2d_dilated", lambda nn: nn.ConvTranspose2d(2, 2, 3, stride=(1, 2),
                                                               padding=(2, 0), dilation=2),
     [X(2, 2, 5, 4)]),
    ("conv_transpose1d", lambda nn: nn.ConvTranspose1d(3, 2, 4, stride=3, padding=1),
     [X(2, 3, 5)]),
    ("maxpool1d", lambda nn: nn.MaxPool1d(3, 2, 1), [X(2, 3, 9)]),
    ("avgpool1d", lambda nn: nn.AvgPool1d(2), [X(2, 3, 9)]),
    ("adaptive_avg2d", lambda nn: nn.AdaptiveAvgPool2d((3, 2)), [X(2, 3, 7, 5)]),
    ("adaptive_avg2d_global", lambda nn: nn.AdaptiveAvgPool2d(1), [X(2, 3, 4, 5)]),
    ("adaptive_avg2d_none", lambda nn: nn.AdaptiveAvgPool2d((None, 3)), [X(2, 3, 4, 5)]),
    ("adaptive_avg1d", lambda nn: nn.AdaptiveAvgPool1d(3), [X(2, 3, 10)]),
    ("adaptive_max2d", lambda nn: nn.AdaptiveMaxPool2d((2, 3)), [X(2, 3, 5, 7)]),
    ("adaptive_max2d_indices", fn("adaptive_max_pool2d", output_size=(2, 2),
                                  return_indices=True), [X(2, 3, 5, 4)]),
    ("maxpool2d_indices", lambda nn: nn.MaxPool2d(3, 2, 1, return_indices=True),
     [X(2, 3, 7, 6)]),
    ("maxpool1d_indices_fn", fn("max_pool1d_with_indices", kernel_size=2), [X(2, 3, 7)]),
    ("maxpool_unpool2d_overlapping", lambda nn: _pool_unpool(nn, 2, 3, 2, 1, (7, 6)),
     [X(2, 3, 7, 6)]),
    ("maxpool_unpool2d", lambda nn: _pool_unpool(nn, 2, 2, 2, 0, None), [X(1, 2, 4, 6)]),
    ("maxpool_unpool1d", lambda nn: _pool_unpool(nn, 1, 3, 2, 1, None), [X(2, 2, 9)]),
    ("adaptive_max1d_with_indices", fn("adaptive_max_pool1d_with_indices", output_size=3),
     [X(2, 3, 7)]),
    ("lppool2d", lambda nn: nn.LPPool2d(2, 2), [X(2, 3, 4, 5)]),
    ("lppool2d_p3_stride", lambda nn: nn.LPPool2d(3.0, (2, 3), stride=1),
     [X(1, 2, 3, 4)]),
    ("lppool1d", lambda nn: nn.LPPool1d(1.5, 3, stride=2), [C(np.abs(np.arange(30.0))
                                                              .reshape(2, 3, 5) / 7 + 0.1)]),
    ("adaptive_max1d", lambda nn: nn.AdaptiveMaxPool1d(4), [X(2, 3, 10)]),
]

RESAMPLE_CASES = [
    ("upsample_nearest_scale", lambda nn: nn.Upsample(scale_factor=2), [X(2, 3, 3, 4)]),
    ("upsample_nearest_size", lambda nn: nn.Upsample(size=(5, 7)), [X(2, 3, 3, 4)]),
    ("upsample_nearest_down", fn("interpolate", size=(2, 3)), [X(2, 3, 5, 7)]),
    ("bilinear_align", lambda nn: nn.Upsample(size=(5, 6), mode="bilinear",
                                              align_corners=True), [X(2, 3, 3, 4)]),
    ("bilinear_no_align", lambda nn: nn.Upsample(size=(5, 6), mode="bilinear",
                                                 align_corners=False), [X(2, 3, 3, 4)]),
    ("bilinear_scale_1_5", fn("interpolate", scale_factor=1.5, mode="bilinear"),
     [X(1, 2, 4, 5)]),
    ("bilinear_down", fn("interpolate", size=(2, 3), mode="bilinear", align_corners=False),
     [X(1, 2, 5, 7)]),
    ("nearest_scale_1_7", fn("interpolate", scale_factor=1.7), [X(1, 2, 3, 4)]),
    ("nearest_scale_pair_down", fn("interpolate", scale_factor=(0.5, 0.7)), [X(1, 2, 6, 5)]),
    ("bilinear_scale_half_align", fn("interpolate", scale_factor=0.5, mode="bilinear",
                                     align_corners=True), [X(1, 2, 6, 5)]),
    ("nearest_1d_size", fn("interpolate", size=5), [X(2, 3, 3)]),
    ("linear_1d", fn("interpolate", size=7, mode="linear", align_corners=False),
     [X(2, 3, 4)]),
    ("upsampling_bilinear2d", lambda nn: nn.UpsamplingBilinear2d(scale_factor=2),
     [X(1, 2, 3, 3)]),
    ("pixel_shuffle", lambda nn: nn.PixelShuffle(2), [X(2, 8, 3, 2)]),
    ("pixel_unshuffle", lambda nn: nn.PixelUnshuffle(2), [X(2, 2, 4, 6)]),
    ("unfold", lambda nn: nn.Unfold((2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
     [X(2, 3, 5, 6)]),
    ("fold", lambda nn: nn.Fold((5, 6), (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
     [X(2, 18, 12)]),
    ("fold_overlapping", fn("fold", output_size=4, kernel_size=2), [X(1, 8, 9)]),
    ("unflatten", lambda nn: nn.Unflatten(1, (2, -1)), [X(3, 8)]),
    ("zeropad2d", lambda nn: nn.ZeroPad2d((1, 2, 0, 1)), [X(2, 3, 3)]),
    ("constantpad1d", lambda nn: nn.ConstantPad1d(2, 0.5), [X(2, 3, 4)]),
    ("reflectionpad2d", lambda nn: nn.ReflectionPad2d(2), [X(1, 2, 3, 4)]),
    ("reflectionpad1d", lambda nn: nn.ReflectionPad1d((3, 1)), [X(2, 2, 5)]),
    ("replicationpad2d", lambda nn: nn.ReplicationPad2d((1, 3, 2, 0)), [X(1, 2, 3, 4)]),
    ("replicationpad1d", lambda nn: nn.ReplicationPad1d((1, 3)), [X(2, 2, 3)]),
    ("circularpad2d", lambda nn: nn.CircularPad2d(1), [X(1, 2, 3, 4)]),
    ("zeropad3d", lambda nn: nn.ZeroPad3d((1, 0, 2, 1, 0, 1)), [X(1, 2, 2, 3, 2)]),
    ("reflectionpad3d", lambda nn: nn.ReflectionPad3d(1), [X(1, 2, 2, 3, 3)]),
    ("replicationpad3d", lambda nn: nn.ReplicationPad3d((0, 2, 1, 0, 1, 1)),
     [X(1, 1, 2, 3, 2)]),
    ("upsample_nearest_fn", fn("upsample_nearest", scale_factor=2), [X(1, 2, 2, 3)]),
    ("upsample_bilinear_fn", fn("upsample_bilinear", size=(3, 5)), [X(1, 2, 2, 3)]),
    ("pad_reflect_3d_input", fn("pad", pad=(2, 1), mode="reflect"), [X(2, 3, 5)]),
]

NORM_CASES = [
    ("groupnorm", lambda nn: nn.GroupNorm(2, 4), [X(3, 4, 5)]),
    ("groupnorm_no_affine", lambda nn: nn.GroupNorm(1, 4, affine=False), [X(3, 4, 2, 3)]),
    ("instancenorm2d", lambda nn: nn.InstanceNorm2d(3), [X(2, 3, 4, 5)]),
    ("instancenorm2d_affine_running", lambda nn: nn.InstanceNorm2d(
        3, affine=True, track_running_stats=True), [X(2, 3, 4, 5)]),
    ("instancenorm2d_running_eval", lambda nn: nn.InstanceNorm2d(
        3, track_running_stats=True).eval(), [X(2, 3, 4, 5)]),
    ("instancenorm1d", lambda nn: nn.InstanceNorm1d(3, affine=True), [X(2, 3, 6)]),
    ("batchnorm3d", lambda nn: nn.BatchNorm3d(3), [X(2, 3, 2, 3, 2)]),
    ("instancenorm3d", lambda nn: nn.InstanceNorm3d(3, affine=True), [X(2, 3, 2, 3, 2)]),
    ("groupnorm_no_bias", lambda nn: nn.GroupNorm(2, 4, bias=False), [X(3, 4, 5)]),
    ("batchnorm2d_no_bias", lambda nn: nn.BatchNorm2d(3, bias=False), [X(4, 3, 2, 2)]),
    ("instancenorm1d_no_bias", lambda nn: nn.InstanceNorm1d(3, affine=True, bias=False),
     [X(2, 3, 5)]),
    ("rmsnorm", lambda nn: nn.RMSNorm(4), [X(3, 4)]),
    ("rmsnorm_eps_2d_no_affine", lambda nn: nn.RMSNorm((2, 4), eps=1e-3,
                                                       elementwise_affine=False), [X(3, 2, 4)]),
    ("local_response_norm", lambda nn: nn.LocalResponseNorm(3, alpha=0.1, k=2.0),
     [X(2, 5, 3)]),
    ("local_response_norm_even_4d", lambda nn: nn.LocalResponseNorm(2), [X(2, 4, 2, 3)]),
    ("channel_shuffle", lambda nn: nn.ChannelShuffle(2), [X(2, 6, 3)]),
    ("layernorm_no_bias", lambda nn: nn.LayerNorm(4, bias=False), [X(3, 4)]),
    ("layernorm_no_affine", lambda nn: nn.LayerNorm((2, 4), elementwise_affine=False),
     [X(3, 2, 4)]),
]

EMBEDDING_CASES = [
    ("bilinear", lambda nn: nn.Bilinear(3, 4, 2), [X(5, 3), X(5, 4)]),
    ("bilinear_3d_no_bias", lambda nn: nn.Bilinear(3, 2, 4, bias=False), [X(2, 5, 3),
                                                                          X(2, 5, 2)]),
    ("embeddingbag_mean_2d", lambda nn: nn.EmbeddingBag(10, 3), [C([[1, 2, 4], [4, 3, 9]])]),
    ("embeddingbag_sum_offsets", lambda nn: nn.EmbeddingBag(10, 3, mode="sum"),
     [C([1, 2, 4, 5, 4, 3, 2, 9]), C([0, 2, 2, 5])]),
    ("embeddingbag_max", lambda nn: nn.EmbeddingBag(10, 3, mode="max"),
     [C([1, 2, 4, 5, 4, 3]), C([0, 2])]),
    ("embeddingbag_padding_mean", lambda nn: nn.EmbeddingBag(10, 3, padding_idx=2),
     [C([[1, 2, 2], [2, 3, 9]])]),
    ("embeddingbag_weights", lambda nn: nn.EmbeddingBag(10, 3, mode="sum"),
     [C([1, 2, 4, 5]), C([0, 1]), X(4)]),
    ("embedding_max_norm", lambda nn: nn.Embedding(6, 4, max_norm=1.0),
     [C([[0, 2, 2], [5, 1, 0]])]),
    ("embedding_padding_max_norm", lambda nn: nn.Embedding(6, 3, padding_idx=1, max_norm=2.0,
                                                           norm_type=1.0), [C([[0, 1], [1, 3]])]),
]


def _rnn(cls: str, **kwargs: Any):
    return lambda nn: getattr(nn, cls)(3, 4, **kwargs)


def _lstm_with_state(layer: Any) -> tuple[Any, Any]:
    """(a call taking x, h_0, c_0 as separate inputs, the LSTM)."""
    return (lambda x, h, c: layer(x, (h, c))), layer


def _packed(cls: str, lengths: list[int], enforce_sorted: bool = False, **kwargs: Any):
    """A recurrent layer run on pack_padded_sequence(x, lengths): the padded output, h_n (and
    c_n), and the packed data compared."""
    def build(nn):
        layer = getattr(nn, cls)(3, 4, **kwargs)
        rnn_utils = nn.utils.rnn
        batch_first = kwargs.get("batch_first", False)

        def call(x):
            packed = rnn_utils.pack_padded_sequence(x, lengths, batch_first=batch_first,
                                                    enforce_sorted=enforce_sorted)
            out, state = layer(packed)
            padded, _ = rnn_utils.pad_packed_sequence(out, batch_first=batch_first,
                                                      total_length=6)
            return padded, state, out.data
        return call, layer
    return build


RECURRENT_CASES = [
    ("lstm_packed_unsorted_bidirectional", _packed("LSTM", [3, 5, 2], num_layers=2,
                                                   bidirectional=True), [X(5, 3, 3)]),
    ("gru_packed_sorted_batch_first", _packed("GRU", [4, 4, 1], True, batch_first=True),
     [X(3, 4, 3)]),
    ("rnn_packed_relu", _packed("RNN", [2, 5], nonlinearity="relu"), [X(5, 2, 3)]),
    ("rnn_tanh", _rnn("RNN"), [X(5, 2, 3)]),
    ("rnn_relu_2layers", _rnn("RNN", num_layers=2, nonlinearity="relu"), [X(5, 2, 3)]),
    ("rnn_h0", _rnn("RNN"), [X(5, 2, 3), X(1, 2, 4)]),
    ("rnn_unbatched", _rnn("RNN", bias=False), [X(4, 3)]),
    ("lstm", _rnn("LSTM"), [X(5, 2, 3)]),
    ("lstm_deep_bidirectional_batch_first", _rnn("LSTM", num_layers=2, bidirectional=True,
                                                 batch_first=True), [X(2, 5, 3)]),
    ("lstm_proj", _rnn("LSTM", proj_size=2), [X(5, 2, 3)]),
    ("lstm_proj_deep_bidirectional_h0", lambda nn: _lstm_with_state(nn.LSTM(
        3, 4, proj_size=3, num_layers=2, bidirectional=True)), [X(4, 2, 3), X(4, 2, 3),
                                                                X(4, 2, 4)]),
    ("lstm_h0_c0_batch_first", lambda nn: _lstm_with_state(nn.LSTM(3, 4, batch_first=True)),
     [X(2, 5, 3), X(1, 2, 4), X(1, 2, 4)]),
    ("lstm_no_bias", _rnn("LSTM", bias=False), [X(4, 2, 3)]),
    ("gru", _rnn("GRU"), [X(5, 2, 3)]),
    ("gru_bidirectional_h0", _rnn("GRU", bidirectional=True), [X(5, 2, 3), X(2, 2, 4)]),
    ("gru_3layers_batch_first", _rnn("GRU", num_layers=3, batch_first=True), [X(2, 4, 3)]),
    ("rnn_cell", lambda nn: nn.RNNCell(3, 4), [X(2, 3), X(2, 4)]),
    ("rnn_cell_relu_no_h", lambda nn: nn.RNNCell(3, 4, nonlinearity="relu"), [X(2, 3)]),
    ("gru_cell", lambda nn: nn.GRUCell(3, 4), [X(2, 3), X(2, 4)]),
    ("gru_cell_unbatched", lambda nn: nn.GRUCell(3, 4, bias=False), [X(3)]),
    ("lstm_cell", lambda nn: nn.LSTMCell(3, 4), [X(2, 3)]),
]


def _sdpa(**kwargs: Any):
    return fn("scaled_dot_product_attention", **kwargs)


def _mha(forward_kwargs: dict[str, Any] | None = None, **kwargs: Any):
    return lambda nn: _with_kwargs(nn.MultiheadAttention(8, 2, **kwargs),
                                   **(forward_kwargs or {}))


ATTENTION_CASES = [
    ("sdpa", _sdpa(), [X(2, 3, 4, 5), X(2, 3, 6, 5), X(2, 3, 6, 2)]),
    ("sdpa_bool_mask", _sdpa(attn_mask=Mask(BOOL_MASK)), [X(2, 3, 5), X(2, 4, 5), X(2, 4, 3)]),
    ("sdpa_float_mask_scale", _sdpa(attn_mask=Mask(np.full((3, 4), 0.5)), scale=0.3),
     [X(2, 3, 5), X(2, 4, 5), X(2, 4, 3)]),
    ("sdpa_causal", _sdpa(is_causal=True), [X(2, 4, 5), X(2, 4, 5), X(2, 4, 3)]),
    ("mha", _mha(), [X(4, 2, 8), X(4, 2, 8), X(4, 2, 8)]),
    ("mha_batch_first_heads", _mha({"average_attn_weights": False}, batch_first=True),
     [X(2, 3, 8), X(2, 4, 8), X(2, 4, 8)]),
    ("mha_key_padding", _mha({"key_padding_mask": Mask(PADDING)}, batch_first=True),
     [X(2, 3, 8), X(2, 4, 8), X(2, 4, 8)]),
    ("mha_attn_mask_no_weights", _mha({"attn_mask": Mask(~BOOL_MASK), "need_weights": False}),
     [X(3, 2, 8), X(4, 2, 8), X(4, 2, 8)]),
    ("mha_float_causal", _mha({"attn_mask": Mask(CAUSAL_FLOAT)}), [X(4, 2, 8), X(4, 2, 8),
                                                             X(4, 2, 8)]),
    ("mha_kdim_vdim_no_bias", _mha(kdim=5, vdim=3, bias=False),
     [X(3, 2, 8), X(4, 2, 5), X(4, 2, 3)]),
    ("mha_unbatched", _mha(), [X(3, 8), X(4, 8), X(4, 8)]),
]


def _with_kwargs(module: Any, **kwargs: Any) -> tuple[partial, Any]:
    """(the module called with ``kwargs``, the module whose state is copied)."""
    return partial(module, **kwargs), module


def _encoder_layer(**kwargs: Any):
    return lambda nn: nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                                 **kwargs)


TRANSFORMER_CASES = [
    ("encoder_layer", _encoder_layer(), [X(4, 2, 8)]),
    ("encoder_layer_norm_first_gelu_batch_first",
     _encoder_layer(norm_first=True, activation="gelu", batch_first=True), [X(2, 4, 8)]),
    ("encoder_layer_masks", lambda nn: _with_kwargs(
        _encoder_layer(batch_first=True)(nn), src_mask=Mask(CAUSAL_FLOAT),
        src_key_padding_mask=Mask(PADDING)), [X(2, 4, 8)]),
    ("encoder_stack_norm", lambda nn: nn.TransformerEncoder(
        _encoder_layer()(nn), 2, norm=nn.LayerNorm(8)), [X(4, 2, 8)]),
    ("transformer", lambda nn: nn.Transformer(8, 2, 1, 2, 16, dropout=0.0),
     [X(4, 2, 8), X(3, 2, 8)]),
    ("transformer_masks_batch_first", lambda nn: _with_kwargs(
        nn.Transformer(8, 2, 2, 1, 16, dropout=0.0, batch_first=True),
        tgt_mask=Mask(np.triu(np.full((3, 3), -np.inf), 1)), src_key_padding_mask=Mask(PADDING),
        memory_key_padding_mask=Mask(PADDING)), [X(2, 4, 8), X(2, 3, 8)]),
    ("decoder_layer", lambda nn: nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0),
     [X(3, 2, 8), X(4, 2, 8)]),
    ("decoder_stack_norm_first", lambda nn: nn.TransformerDecoder(nn.TransformerDecoderLayer(
        8, 2, 16, dropout=0.0, norm_first=True, batch_first=True), 2), [X(2, 3, 8), X(2, 4, 8)]),
]

TARGET = np.array([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0], [0.3, 0.3, 0.4]])
LOSS_CASES = [
    ("kl_div_batchmean", lambda nn: nn.KLDivLoss(reduction="batchmean"), [X(3, 3), C(TARGET)]),
    ("kl_div_mean", lambda nn: nn.KLDivLoss(), [X(3, 3), C(TARGET)]),
    ("kl_div_log_target_sum", lambda nn: nn.KLDivLoss(reduction="sum", log_target=True),
     [X(3, 3), X(3, 3)]),
    ("margin_ranking", lambda nn: nn.MarginRankingLoss(0.5), [X(4), X(4), C(SIGNS)]),
    ("hinge_embedding", lambda nn: nn.HingeEmbeddingLoss(reduction="none"), [X(4), C(SIGNS)]),
    ("soft_margin", lambda nn: nn.SoftMarginLoss(), [X(4), C(SIGNS)]),
    ("multilabel_soft_margin", lambda nn: nn.MultiLabelSoftMarginLoss(),
     [X(2, 3), C([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])]),
    ("cosine_embedding", lambda nn: nn.CosineEmbeddingLoss(0.1), [X(4, 5), X(4, 5), C(SIGNS)]),
    ("triplet_margin", lambda nn: nn.TripletMarginLoss(), [X(4, 5), X(4, 5), X(4, 5)]),
    ("triplet_margin_swap_p1", lambda nn: nn.TripletMarginLoss(0.5, p=1.0, swap=True),
     [X(4, 5), X(4, 5), X(4, 5)]),
    ("poisson_nll", lambda nn: nn.PoissonNLLLoss(), [X(3, 3, scale=0.5), C(TARGET * 4)]),
    ("poisson_nll_full_no_log", lambda nn: nn.PoissonNLLLoss(log_input=False, full=True),
     [C(TARGET + 0.5), C(TARGET * 4)]),
    ("gaussian_nll", lambda nn: nn.GaussianNLLLoss(), [X(4, 2), C(np.ones((4, 2))),
                                                       C(np.full((4, 1), 0.5))]),
    ("gaussian_nll_full", lambda nn: nn.GaussianNLLLoss(full=True, reduction="sum"),
     [X(4, 2), X(4, 2), C(np.full((4, 2), 1e-8))]),
    ("multi_margin", lambda nn: nn.MultiMarginLoss(), [X(4, 3), C([0, 2, 1, 2])]),
    ("multi_margin_p2_weight", lambda nn: nn.MultiMarginLoss(
        p=2, margin=0.5, weight=_library_tensor(nn, [0.5, 1.0, 2.0]), reduction="none"),
     [X(4, 3), C([0, 2, 1, 2])]),
    ("cross_entropy_weight_buffer", lambda nn: nn.CrossEntropyLoss(
        weight=_library_tensor(nn, [0.5, 1.0, 2.0])), [X(4, 3), C([0, 2, 1, 2])]),
    ("bce_logits_weight_buffers", lambda nn: nn.BCEWithLogitsLoss(
        weight=_library_tensor(nn, [0.5, 1.0, 2.0]),
        pos_weight=_library_tensor(nn, [3.0, 1.0, 0.5])), [X(4, 3), C(np.eye(4, 3))]),
    ("triplet_with_distance", lambda nn: nn.TripletMarginWithDistanceLoss(
        distance_function=lambda a, b: 1.0 - nn.functional.cosine_similarity(a, b), margin=0.5,
        swap=True), [X(4, 5), X(4, 5), X(4, 5)]),
    ("triplet_with_default_distance", lambda nn: nn.TripletMarginWithDistanceLoss(),
     [X(4, 5), X(4, 5), X(4, 5)]),
    ("pdist", fn("pdist"), [X(4, 3)]),
    ("pdist_p1", fn("pdist", p=1.0), [X(3, 5)]),
    ("pairwise_distance", lambda nn: nn.PairwiseDistance(keepdim=True), [X(4, 5), X(4, 5)]),
    ("cosine_similarity", lambda nn: nn.CosineSimilarity(dim=1), [X(4, 5), X(4, 5)]),
]

ALL_CASES = (ACTIVATION_CASES + CONV_POOL_CASES + RESAMPLE_CASES + NORM_CASES + EMBEDDING_CASES
             + RECURRENT_CASES + ATTENTION_CASES + TRANSFORMER_CASES + LOSS_CASES)


# torch's CPU hardsigmoid/hardswish kernels use float32 constants (1.0f / 6.0f) in float64 too,
# and its celu gradient carries float32 rounding of 1 / alpha, so their float64 gradients are
# only float32-accurate; ours are exact (celu's checked against mpmath: exp(x / alpha))
FLOAT32_CONSTANTS_IN_TORCH = {"hardsigmoid", "hardswish", "celu"}


def _outputs(value: Any) -> list[Any]:
    """The tensors in a (nested) output, in order; None entries dropped."""
    if isinstance(value, tuple | list):
        return [t for item in value for t in _outputs(item)]
    return [] if value is None else [value]


def _resolve_masks(call: Any, library: Any, dtype: Any) -> Any:
    """``call`` with its Mask keyword arguments made tensors of ``library``."""
    if not isinstance(call, partial):
        return call
    keywords = {}
    for key, value in call.keywords.items():
        if isinstance(value, Mask):
            array = value.array.astype(dtype) if value.array.dtype.kind == "f" else value.array
            value = torch.from_numpy(array.copy()) if library is torch else gw.tensor(array)
        keywords[key] = value
    return partial(call.func, *call.args, **keywords)


def _module_of(built: Any) -> Any:
    if isinstance(built, tuple):
        return built[1]
    return built if hasattr(built, "state_dict") else None


def _close(what: str, ours: Any, theirs: Any, dtype: Any, loose: bool = False) -> None:
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    if theirs.dtype.kind == "f":
        assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != {theirs.dtype}"
    rtol, atol = TOLERANCE[np.float32 if loose else dtype]
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)


def run_case(build: Any, specs: list[tuple[str, Any]], dtype: Any, seed: int = 0,
             loose_grads: bool = False) -> None:
    rng = np.random.default_rng(seed)
    arrays = []
    for kind, spec in specs:
        if kind == "grad":
            shape, scale = spec
            arrays.append((True, (rng.standard_normal(shape) * scale).astype(dtype)))
        else:
            arrays.append((False, spec.astype(dtype) if spec.dtype.kind == "f" else spec))
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    ours_built, theirs_built = build(gw.nn), build(torch.nn)
    ours_module, theirs_module = _module_of(ours_built), _module_of(theirs_built)
    ours_call = _resolve_masks(ours_built[0] if isinstance(ours_built, tuple) else ours_built,
                               gw, dtype)
    theirs_call = _resolve_masks(
        theirs_built[0] if isinstance(theirs_built, tuple) else theirs_built, torch, dtype)
    if ours_module is not None:
        if dtype == np.float64:
            ours_module.double()
        theirs_module.to(torch_dtype)
        theirs_module.load_state_dict(
            {k: torch.from_numpy(np.array(v)) for k, v in ours_module.state_dict().items()})
        ours_module.load_state_dict(theirs_module.state_dict())
    ours_in = [gw.tensor(a.copy(), requires_grad=g) for g, a in arrays]
    theirs_in = [torch.from_numpy(a.copy()).requires_grad_(g) for g, a in arrays]
    ours_out, theirs_out = _outputs(ours_call(*ours_in)), _outputs(theirs_call(*theirs_in))
    assert len(ours_out) == len(theirs_out)
    ours_loss, theirs_loss = 0, 0
    for i, (o, t) in enumerate(zip(ours_out, theirs_out, strict=True)):
        _close(f"output {i}", o.numpy() if hasattr(o, "numpy") else o, t, dtype)
        if t.requires_grad:
            upstream = rng.standard_normal(tuple(t.shape)).astype(dtype)
            finite = np.isfinite(t.detach().numpy())
            upstream = np.where(finite, upstream, 0).astype(dtype)
            ours_loss = ours_loss + (o * gw.tensor(upstream)).sum()
            theirs_loss = theirs_loss + (t * torch.from_numpy(upstream)).sum()
    if not isinstance(theirs_loss, int):
        ours_loss.backward()
        theirs_loss.backward()
    for i, (ours_x, theirs_x) in enumerate(zip(ours_in, theirs_in, strict=True)):
        if theirs_x.requires_grad and theirs_x.grad is not None:
            _close(f"grad of input {i}", np.asarray(ours_x.grad), theirs_x.grad, dtype,
                   loose_grads)
    if ours_module is not None:
        theirs_params = dict(theirs_module.named_parameters())
        for name, param in ours_module.named_parameters():
            if theirs_params[name].grad is not None:
                _close(f"grad of {name}", np.asarray(param.grad), theirs_params[name].grad, dtype)
        theirs_state = theirs_module.state_dict()
        for name, value in ours_module.state_dict().items():
            _close(f"state {name}", np.asarray(value), theirs_state[name], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "build", "specs"), ALL_CASES, ids=[c[0] for c in ALL_CASES])
def test_matches_torch(name, build, specs, dtype):
    run_case(build, specs, dtype, loose_grads=name in FLOAT32_CONSTANTS_IN_TORCH)
