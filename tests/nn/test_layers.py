"""Every layer against PyTorch with copied weights: outputs, input and parameter gradients."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise.nn import functional as F
from helpers import torch
from nn.layer_helpers import assert_layer_matches_torch

pytestmark = pytest.mark.skipif(torch is None, reason="PyTorch oracle not installed")

needs_conv = pytest.mark.skipif(
    not hasattr(F, "conv2d"), reason="F.conv2d / pooling have not landed yet"
)
IDS = np.array([[1, 3, 3, 0], [9, 3, 1, 1]])

# (id, gradwise layer, torch layer, input shape or int array, options)
PLAIN_CASES = [
    ("linear", lambda: gw.nn.Linear(5, 4, rng=0), lambda: torch.nn.Linear(5, 4), (3, 5), {}),
    ("linear_3d_no_bias", lambda: gw.nn.Linear(5, 4, bias=False, rng=0),
     lambda: torch.nn.Linear(5, 4, bias=False), (2, 3, 5), {}),
    ("batchnorm1d_2d", lambda: gw.nn.BatchNorm1d(4), lambda: torch.nn.BatchNorm1d(4),
     (8, 4), {"steps": 3}),
    ("batchnorm1d_3d", lambda: gw.nn.BatchNorm1d(3, momentum=0.3),
     lambda: torch.nn.BatchNorm1d(3, momentum=0.3), (4, 3, 5), {"steps": 3}),
    ("batchnorm1d_cumulative", lambda: gw.nn.BatchNorm1d(3, momentum=None),
     lambda: torch.nn.BatchNorm1d(3, momentum=None), (6, 3), {"steps": 3}),
    ("batchnorm1d_no_affine", lambda: gw.nn.BatchNorm1d(3, affine=False),
     lambda: torch.nn.BatchNorm1d(3, affine=False), (6, 3), {"steps": 2}),
    ("batchnorm1d_no_running", lambda: gw.nn.BatchNorm1d(3, track_running_stats=False),
     lambda: torch.nn.BatchNorm1d(3, track_running_stats=False), (6, 3), {}),
    ("batchnorm2d", lambda: gw.nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3),
     (4, 3, 5, 5), {"steps": 3}),
    ("layernorm", lambda: gw.nn.LayerNorm(6), lambda: torch.nn.LayerNorm(6), (2, 3, 6), {}),
    ("layernorm_2d_shape", lambda: gw.nn.LayerNorm((3, 4)), lambda: torch.nn.LayerNorm((3, 4)),
     (2, 3, 4), {}),
    ("layernorm_no_affine", lambda: gw.nn.LayerNorm(4, elementwise_affine=False),
     lambda: torch.nn.LayerNorm(4, elementwise_affine=False), (5, 4), {}),
    ("embedding", lambda: gw.nn.Embedding(10, 3, rng=0), lambda: torch.nn.Embedding(10, 3),
     IDS, {}),
    ("flatten", lambda: gw.nn.Flatten(), lambda: torch.nn.Flatten(), (2, 3, 4, 5), {}),
    ("flatten_range", lambda: gw.nn.Flatten(0, 1), lambda: torch.nn.Flatten(0, 1), (2, 3, 4), {}),
    ("relu", gw.nn.ReLU, lambda: torch.nn.ReLU(), (4, 5), {}),
    ("leaky_relu", lambda: gw.nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2), (4, 5), {}),
    ("elu", lambda: gw.nn.ELU(0.7), lambda: torch.nn.ELU(0.7), (4, 5), {}),
    ("gelu", gw.nn.GELU, lambda: torch.nn.GELU(), (4, 5), {}),
    ("gelu_tanh", lambda: gw.nn.GELU("tanh"), lambda: torch.nn.GELU("tanh"), (4, 5), {}),
    ("sigmoid", gw.nn.Sigmoid, lambda: torch.nn.Sigmoid(), (4, 5), {}),
    ("tanh", gw.nn.Tanh, lambda: torch.nn.Tanh(), (4, 5), {}),
    ("softmax", lambda: gw.nn.Softmax(axis=1), lambda: torch.nn.Softmax(dim=1), (4, 5), {}),
    ("log_softmax", lambda: gw.nn.LogSoftmax(axis=-1), lambda: torch.nn.LogSoftmax(dim=-1),
     (4, 5), {}),
    ("sequential", lambda: gw.nn.Sequential(
        gw.nn.Linear(6, 8, rng=0), gw.nn.BatchNorm1d(8), gw.nn.ReLU(), gw.nn.Linear(8, 3, rng=1)),
     lambda: torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3)),
     (5, 6), {"steps": 2}),
]
CONV_CASES = [
    ("conv2d", lambda: gw.nn.Conv2d(3, 4, 3, rng=0), lambda: torch.nn.Conv2d(3, 4, 3),
     (2, 3, 7, 6), {}),
    ("conv2d_stride_pad_dilation",
     lambda: gw.nn.Conv2d(2, 3, (3, 2), stride=2, padding=(1, 2), dilation=(2, 1), rng=0),
     lambda: torch.nn.Conv2d(2, 3, (3, 2), stride=2, padding=(1, 2), dilation=(2, 1)),
     (2, 2, 9, 8), {}),
    ("conv2d_no_bias", lambda: gw.nn.Conv2d(2, 3, 1, bias=False, rng=0),
     lambda: torch.nn.Conv2d(2, 3, 1, bias=False), (2, 2, 4, 4), {}),
    ("max_pool2d", lambda: gw.nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (2, 3, 6, 6), {}),
    ("max_pool2d_stride_pad", lambda: gw.nn.MaxPool2d(3, stride=2, padding=1),
     lambda: torch.nn.MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 7), {}),
    ("avg_pool2d", lambda: gw.nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), (2, 3, 6, 6), {}),
    ("avg_pool2d_stride_pad", lambda: gw.nn.AvgPool2d(3, stride=2, padding=1),
     lambda: torch.nn.AvgPool2d(3, stride=2, padding=1), (2, 2, 7, 7), {}),
]
CASES = [pytest.param(*case, id=case[0]) for case in PLAIN_CASES] + [
    pytest.param(*case, id=case[0], marks=needs_conv) for case in CONV_CASES
]


@pytest.mark.parametrize(("name", "make_gw", "make_torch", "shape", "options"), CASES)
def test_layer_matches_torch(name, make_gw, make_torch, shape, options):
    torch.manual_seed(0)
    if isinstance(shape, np.ndarray):
        assert_layer_matches_torch(make_gw(), make_torch(), inputs=shape, **options)
    else:
        assert_layer_matches_torch(make_gw(), make_torch(), shape, **options)


def test_embedding_gradient_accumulates_over_repeated_indices():
    emb = gw.nn.Embedding(5, 2, rng=0)
    emb(np.array([1, 1, 1, 4])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad[:, 0], [0, 3, 0, 0, 1])


def test_layer_repr_is_readable():
    model = gw.nn.Sequential(
        gw.nn.Conv2d(1, 8, 3, padding=1, bias=False), gw.nn.ReLU(), gw.nn.MaxPool2d(2),
        gw.nn.Flatten(), gw.nn.Dropout(0.25), gw.nn.Linear(8 * 14 * 14, 10),
    )
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
        "  (1): ReLU()\n"
        "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (3): Flatten(start_dim=1, end_dim=-1)\n"
        "  (4): Dropout(p=0.25, inplace=False)\n"
        "  (5): Linear(in_features=1568, out_features=10, bias=True)\n"
        ")"
    )


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: gw.nn.Linear(4, 2)(gw.zeros(3, 5)), ValueError, r"\(3, 5\).*4 features"),
        (lambda: gw.nn.Conv2d(3, 4, 3)(gw.zeros(2, 8, 8)), ValueError,  # unbatched is (3, H, W)
         r"\(N, 3, H, W\) or \(3, H, W\), got \(2, 8, 8\)"),
        (lambda: gw.nn.Conv2d(3, 4, 3)(gw.zeros(1, 2, 8, 8)), ValueError, r"\(1, 2, 8, 8\)"),
        (lambda: gw.nn.MaxPool2d(2)(gw.zeros(8, 8)), ValueError,  # (C, H, W) is unbatched
         r"max_pool2d: expected input of shape \(N, C, H, W\) or \(C, H, W\), got \(8, 8\)"),
        (lambda: gw.nn.Dropout(-0.1), ValueError, r"Dropout: p must be .* got -0.1"),
        (lambda: gw.nn.Dropout(1.5), ValueError, "Dropout: p"),
        (lambda: gw.nn.Linear(4, 2, init="glorot"), ValueError, r"Linear: unknown init 'glorot'"),
        (lambda: gw.nn.Linear(0, 2), ValueError, "Linear: in_features must be a positive"),
        (lambda: gw.nn.Conv2d(1, 2, 0), ValueError, "Conv2d: kernel_size must be at least 1"),
        (lambda: gw.nn.BatchNorm2d(3)(gw.zeros(2, 3, 4)), ValueError,
         r"BatchNorm2d\(3\): expected input of shape \(N, 3, H, W\), got \(2, 3, 4\)"),
        (lambda: gw.nn.BatchNorm1d(3)(gw.zeros(2, 4)), ValueError, r"\(N, 3\).*\(2, 4\)"),
        (lambda: gw.nn.BatchNorm1d(3)(gw.zeros(1, 3)), ValueError, "more than 1 value"),
        (lambda: gw.nn.LayerNorm(4)(gw.zeros(2, 5)), ValueError, r"\(2, 5\).*\(4,\)"),
        (lambda: gw.nn.Embedding(5, 2)(np.array([0, 5])), IndexError, r"\[0, 5\)"),
        (lambda: gw.nn.Embedding(5, 2)(np.array([0.0, 1.0])), TypeError, "integers"),
        (lambda: gw.nn.Flatten(3)(gw.zeros(2, 3)), ValueError, "start_dim=3"),
        (lambda: gw.nn.GELU("fast"), ValueError, "approximate"),
    ],
)
def test_bad_input_raises_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
