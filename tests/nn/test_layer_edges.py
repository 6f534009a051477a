"""The edge grid over every layer, functional and loss (issue 12, part C).

Every case of test_torch_layers.py (and the cases below for the names it lacks) runs here again
with its inputs at the edges and with non-finite gradients arriving from above, in float32 and
float64, against torch.autograd:

- input variants: all zeros with alternating signs (ties, constant channels, zero norms), exact
  ties (values in {-1, 0, 1}), a planted +-inf, a planted NaN, values near overflow (sqrt of the
  dtype's max, so squares overflow) and near underflow (the smallest normal);
- upstream variants: every output's incoming gradient all inf, -inf, NaN, 0, -0, huge, or a mix;
- shape variants: the batch axis at size 0 and size 1;
- normalisation and dropout layers in train and in eval mode.

Each run compares output shapes, dtypes and values, the input gradients and every parameter's
gradient, and the state (running statistics) afterwards. When torch raises, gradwise must raise
too. A deliberate difference is listed in ``DIFFERENCES`` with its reason (docs/NUMERICS.md) and
must still differ, so the list cannot go stale.

The registry walk (``test_every_function_layer_and_op_is_in_the_grid``) fails when a public
``nn.functional`` function, an ``nn`` layer or a Function class is reached by no case.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import gradwise as gw
import gradwise.nn.functional as F
from helpers import torch

pytestmark = pytest.mark.skipif(torch is None, reason="PyTorch oracle not installed")

from nn.test_torch_layers import (  # noqa: E402
    ALL_CASES,
    FLOAT32_CONSTANTS_IN_TORCH,
    C,
    X,
    _module_of,
    _outputs,
    _resolve_masks,
    fn,
)

INF, NAN = math.inf, math.nan
DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: (2e-4, 1e-5), np.float64: (1e-9, 1e-11)}

LABELS = np.array([0, 2, 1, 2])
BINARY = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])


def _probs(nn: Any) -> Callable[..., Any]:
    """binary_cross_entropy on sigmoid(x): the probabilities stay inside [0, 1] at every edge."""
    return lambda x, t: nn.functional.binary_cross_entropy(x.sigmoid(), t)


def _mlp(nn: Any) -> Any:
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Dropout(0.0), nn.Linear(5, 3),
                         nn.LogSoftmax(1))


def _cnn(nn: Any) -> Any:
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 2))


def _with_state(cell: Any) -> tuple[Any, Any]:
    """(a call taking x, h and c as separate inputs, the LSTM cell whose weights are copied)."""
    return (lambda x, h, c: cell(x, (h, c))), cell


def _first_of(modules: Any) -> tuple[Any, Any]:
    """(the container's first module as the call, the container whose state is copied)."""
    return next(iter(modules.values())), modules


def _unpool_layers(nn: Any, rank: int = 2) -> tuple[Any, Any]:
    """MaxPool (with indices) then MaxUnpool as layers, both in one container."""
    pool = getattr(nn, f"MaxPool{rank}d")(2, return_indices=True)
    unpool = getattr(nn, f"MaxUnpool{rank}d")(2)
    return (lambda x: unpool(*pool(x))), nn.ModuleList([pool, unpool])


def _on_sigmoid(loss: Any) -> tuple[Any, Any]:
    """(the loss of sigmoid(x), the loss module)."""
    return (lambda x, t: loss(x.sigmoid(), t)), loss


#: cases for the functions and layers test_torch_layers.py does not run, in its format
EXTRA_CASES = [
    # the first layers, whole models, their functional forms
    ("linear", lambda nn: nn.Linear(4, 3), [X(5, 4)]),
    ("lazy_linear", lambda nn: nn.Linear(4, 3), [X(5, 4)]),
    ("conv2d", lambda nn: nn.Conv2d(2, 3, 3, padding=1, stride=2), [X(2, 2, 5, 5)]),
    ("maxpool2d", lambda nn: nn.MaxPool2d(2, 2, 1), [X(2, 2, 5, 5)]),
    ("avgpool2d", lambda nn: nn.AvgPool2d(3, 2, 1), [X(2, 2, 5, 5)]),
    ("batchnorm1d", lambda nn: nn.BatchNorm1d(3), [X(4, 3)]),
    ("batchnorm2d_momentum_none", lambda nn: nn.BatchNorm2d(2, momentum=None), [X(3, 2, 2, 2)]),
    ("layernorm", lambda nn: nn.LayerNorm(4), [X(3, 4)]),
    ("embedding", lambda nn: nn.Embedding(5, 3), [C([[0, 3, 3], [4, 3, 0]])]),
    ("embedding_fn", lambda nn: (lambda w: nn.functional.embedding(
        (torch.tensor if nn is torch.nn else gw.tensor)(np.array([1, 1, 0])), w)), [X(4, 3)]),
    ("mlp", _mlp, [X(6, 4)]),
    ("cnn", _cnn, [X(2, 2, 4, 4)]),
    ("identity", lambda nn: nn.Identity(), [X(3, 4)]),
    ("flatten", lambda nn: nn.Flatten(), [X(2, 3, 4)]),
    ("module_list", lambda nn: nn.Sequential(*nn.ModuleList([nn.Tanh(), nn.Sigmoid()])),
     [X(3, 4)]),
    ("module_dict", lambda nn: _first_of(nn.ModuleDict({"a": nn.SiLU()})), [X(3, 4)]),
    ("max_unpool_layers", lambda nn: _unpool_layers(nn), [X(1, 2, 4, 4)]),
    ("max_unpool1d_layer", lambda nn: _unpool_layers(nn, 1), [X(1, 2, 6)]),
    ("zeropad1d", lambda nn: nn.ZeroPad1d((2, 1)), [X(2, 3, 4)]),
    ("constantpad2d", lambda nn: nn.ConstantPad2d((1, 0, 2, 1), -2.0), [X(1, 2, 3, 3)]),
    ("constantpad3d", lambda nn: nn.ConstantPad3d(1, 0.5), [X(1, 2, 2, 2, 2)]),
    ("circularpad1d", lambda nn: nn.CircularPad1d((1, 2)), [X(2, 3, 4)]),
    ("circularpad3d", lambda nn: nn.CircularPad3d(1), [X(1, 2, 2, 3, 3)]),
    ("upsampling_nearest2d", lambda nn: nn.UpsamplingNearest2d(scale_factor=2), [X(1, 2, 2, 3)]),
    # 3-d convolution and pooling (torch-pool)
    ("conv3d", lambda nn: nn.Conv3d(2, 3, 2, padding=1, stride=2), [X(2, 2, 3, 3, 3)]),
    ("conv_transpose3d", lambda nn: nn.ConvTranspose3d(2, 2, 2, stride=2), [X(1, 2, 2, 2, 2)]),
    ("maxpool3d", lambda nn: nn.MaxPool3d(2, 2, 1), [X(1, 2, 3, 3, 3)]),
    ("avgpool3d", lambda nn: nn.AvgPool3d(2, 1, 1), [X(1, 2, 3, 3, 3)]),
    ("adaptive_avgpool3d", lambda nn: nn.AdaptiveAvgPool3d((2, 1, 2)), [X(1, 2, 3, 3, 3)]),
    ("adaptive_maxpool3d", lambda nn: nn.AdaptiveMaxPool3d(2), [X(1, 2, 3, 3, 3)]),
    ("lppool3d", lambda nn: nn.LPPool3d(2, 2), [X(1, 2, 2, 4, 4, scale=0.5)]),
    ("max_unpool3d_layer", lambda nn: _unpool_layers(nn, 3), [X(1, 2, 4, 2, 2)]),
    # activations
    ("relu", lambda nn: nn.ReLU(), [X(3, 5)]),
    ("relu6", lambda nn: nn.ReLU6(), [X(3, 5, scale=5)]),
    ("leaky_relu", lambda nn: nn.LeakyReLU(0.2), [X(3, 5)]),
    ("elu", lambda nn: nn.ELU(0.5), [X(3, 5)]),
    ("gelu", lambda nn: nn.GELU(), [X(3, 5)]),
    ("gelu_tanh", lambda nn: nn.GELU("tanh"), [X(3, 5)]),
    ("silu", lambda nn: nn.SiLU(), [X(3, 5)]),
    ("sigmoid", lambda nn: nn.Sigmoid(), [X(3, 5)]),
    ("tanh", lambda nn: nn.Tanh(), [X(3, 5)]),
    ("softplus", lambda nn: nn.Softplus(), [X(3, 5)]),
    ("hardtanh", lambda nn: nn.Hardtanh(-0.5, 1.0), [X(3, 5)]),
    ("softmax", lambda nn: nn.Softmax(1), [X(3, 5)]),
    ("log_softmax", lambda nn: nn.LogSoftmax(0), [X(3, 5)]),
    ("gumbel_softmax_free", fn("softmax", dim=-1), [X(3, 5)]),
    ("normalize", fn("normalize", dim=1), [X(3, 5)]),
    ("normalize_p1", fn("normalize", p=1.0, dim=0), [X(3, 5)]),
    ("rrelu_eval_fn", fn("rrelu", training=False), [X(3, 5)]),
    ("prelu_fn", lambda nn: (lambda x, w: nn.functional.prelu(x, w)), [X(2, 3, 4), X(3)]),
    ("conv2d_fn", fn("conv2d", padding=1), [X(2, 2, 4, 4), X(3, 2, 3, 3), X(3)]),
    ("conv1d_fn", fn("conv1d", stride=2), [X(2, 2, 7), X(3, 2, 3)]),
    ("conv_transpose1d_fn", fn("conv_transpose1d", stride=2), [X(2, 2, 4), X(2, 3, 3)]),
    ("conv_transpose2d_fn", fn("conv_transpose2d", padding=1), [X(1, 2, 3, 3), X(2, 3, 3, 3)]),
    ("linear_fn", fn("linear"), [X(5, 4), X(3, 4), X(3)]),
    ("bilinear_fn", fn("bilinear"), [X(5, 3), X(5, 2), X(4, 3, 2), X(4)]),
    ("max_pool1d_fn", fn("max_pool1d", kernel_size=2, stride=1), [X(2, 3, 5)]),
    ("max_pool2d_fn", fn("max_pool2d", kernel_size=3, stride=1, padding=1), [X(1, 2, 4, 4)]),
    ("avg_pool1d_fn", fn("avg_pool1d", kernel_size=3, padding=1), [X(2, 3, 5)]),
    ("avg_pool2d_fn", fn("avg_pool2d", kernel_size=2), [X(1, 2, 4, 4)]),
    ("adaptive_avg_pool1d_fn", fn("adaptive_avg_pool1d", output_size=2), [X(2, 3, 5)]),
    ("adaptive_avg_pool2d_fn", fn("adaptive_avg_pool2d", output_size=2), [X(1, 2, 5, 4)]),
    ("adaptive_max_pool1d_fn", fn("adaptive_max_pool1d", output_size=2), [X(2, 3, 5)]),
    ("adaptive_max_pool2d_fn", fn("adaptive_max_pool2d", output_size=2), [X(1, 2, 5, 4)]),
    ("lp_pool1d_fn", fn("lp_pool1d", norm_type=2.0, kernel_size=2), [X(2, 3, 6)]),
    ("lp_pool2d_fn", fn("lp_pool2d", norm_type=2.0, kernel_size=2), [X(1, 2, 4, 4)]),
    ("pixel_shuffle_fn", fn("pixel_shuffle", upscale_factor=2), [X(1, 4, 2, 3)]),
    ("pixel_unshuffle_fn", fn("pixel_unshuffle", downscale_factor=2), [X(1, 1, 4, 2)]),
    ("unfold_fn", fn("unfold", kernel_size=2), [X(1, 2, 3, 3)]),
    ("pad_constant", fn("pad", pad=(1, 2), value=-1.0), [X(2, 3)]),
    ("channel_shuffle_fn", fn("channel_shuffle", groups=2), [X(1, 4, 3)]),
    ("glu_fn", fn("glu", dim=0), [X(4, 3)]),
    ("softmin_fn", fn("softmin", dim=1), [X(3, 4)]),
    ("group_norm_fn", fn("group_norm", num_groups=2), [X(3, 4, 2)]),
    ("instance_norm_fn", fn("instance_norm"), [X(2, 3, 4)]),
    ("layer_norm_fn", lambda nn: (lambda x, w, b: nn.functional.layer_norm(x, (4,), w, b)),
     [X(3, 4), X(4), X(4)]),
    ("rms_norm_fn", lambda nn: (lambda x, w: nn.functional.rms_norm(x, (4,), w)),
     [X(3, 4), X(4)]),
    ("local_response_norm_fn", fn("local_response_norm", size=2), [X(2, 3, 4)]),
    ("batch_norm_fn_eval", lambda nn: (lambda x, w, b: nn.functional.batch_norm(
        x, x.detach()[0] * 0, x.detach()[0] * 0 + 1, w, b)), [X(4, 3), X(3), X(3)]),
    ("embedding_bag_fn", lambda nn: (lambda w: nn.functional.embedding_bag(
        _library(nn, np.array([[0, 2], [1, 1]])), w, mode="max")), [X(3, 4)]),
    ("interpolate_linear", fn("interpolate", size=5, mode="linear"), [X(1, 2, 3)]),
    ("upsample_fn", fn("upsample", scale_factor=2), [X(1, 2, 3)]),
    ("cosine_similarity_fn", fn("cosine_similarity"), [X(3, 4), X(3, 4)]),
    ("pairwise_distance_fn", fn("pairwise_distance"), [X(3, 4), X(3, 4)]),
    ("scaled_dot_product_attention", fn("scaled_dot_product_attention"),
     [X(2, 3, 4), X(2, 5, 4), X(2, 5, 3)]),
    ("max_unpool_fns", lambda nn: (lambda x: nn.functional.max_unpool1d(
        *nn.functional.max_pool1d(x, 2, return_indices=True), 2)), [X(1, 2, 6)]),
    ("max_unpool2d_fn", lambda nn: (lambda x: nn.functional.max_unpool2d(
        *nn.functional.max_pool2d(x, 2, return_indices=True), 2)), [X(1, 2, 4, 4)]),
    # the recurrent steps the layers are built on
    ("rnn_tanh_cell_fn", lambda nn: nn.RNNCell(3, 4), [X(2, 3), X(2, 4)]),
    ("gru_cell_fn", lambda nn: nn.GRUCell(3, 4), [X(2, 3), X(2, 4)]),
    ("lstm_cell_h_c", lambda nn: _with_state(nn.LSTMCell(3, 4)), [X(2, 3), X(2, 4), X(2, 4)]),
    # dropout: eval mode (and p = 0 in training) is the identity in both
    ("dropout", lambda nn: nn.Dropout(0.0), [X(3, 4)]),
    ("dropout_eval", lambda nn: nn.Dropout(0.5).eval(), [X(3, 4)]),
    ("dropout1d_eval", lambda nn: nn.Dropout1d(0.5).eval(), [X(2, 3, 4)]),
    ("dropout2d_eval", lambda nn: nn.Dropout2d(0.5).eval(), [X(2, 3, 2, 2)]),
    ("dropout3d_eval", lambda nn: nn.Dropout3d(0.5).eval(), [X(2, 3, 2, 2, 1)]),
    ("alpha_dropout_eval", lambda nn: nn.AlphaDropout(0.5).eval(), [X(3, 4)]),
    ("feature_alpha_dropout_eval", lambda nn: nn.FeatureAlphaDropout(0.5).eval(),
     [X(2, 3, 4)]),
    ("dropout_fns_eval", lambda nn: (lambda x: nn.functional.dropout1d(
        nn.functional.alpha_dropout(nn.functional.feature_alpha_dropout(x, 0.5, False), 0.5,
                                    False), 0.5, False)), [X(2, 3, 4)]),
    ("dropout2d_fn_eval", fn("dropout2d", p=0.5, training=False), [X(2, 3, 2, 2)]),
    ("dropout3d_fn_eval", fn("dropout3d", p=0.5, training=False), [X(2, 3, 2, 2, 1)]),
    # losses: every reduction, weights, ignore_index
    ("cross_entropy", lambda nn: nn.CrossEntropyLoss(), [X(4, 3), C(LABELS)]),
    ("cross_entropy_ignore_smooth_none", lambda nn: nn.CrossEntropyLoss(
        ignore_index=2, label_smoothing=0.2, reduction="none"), [X(4, 3), C(LABELS)]),
    ("cross_entropy_weight_ignore_sum", lambda nn: nn.CrossEntropyLoss(
        weight=_library_float(nn, [0.5, 1.0, 2.0]), ignore_index=1, reduction="sum"),
     [X(4, 3), C(LABELS)]),
    ("nll", lambda nn: nn.NLLLoss(weight=_library_float(nn, [0.5, 1.0, 2.0]),
                                  ignore_index=0), [X(4, 3), C(LABELS)]),
    ("nll_none", lambda nn: nn.NLLLoss(reduction="none"), [X(4, 3), C(LABELS)]),
    ("bce", lambda nn: _probs(nn), [X(4, 3), C(BINARY)]),
    ("bce_module_sum", lambda nn: _on_sigmoid(nn.BCELoss(
        weight=_library_float(nn, [1.0, 0.5, 2.0]), reduction="sum")), [X(4, 3), C(BINARY)]),
    ("bce_logits", lambda nn: nn.BCEWithLogitsLoss(reduction="none"), [X(4, 3), C(BINARY)]),
    ("mse", lambda nn: nn.MSELoss(), [X(4, 3), X(4, 3)]),
    ("mse_none", lambda nn: nn.MSELoss(reduction="none"), [X(4, 3), C(BINARY)]),
    ("l1", lambda nn: nn.L1Loss(reduction="sum"), [X(4, 3), X(4, 3)]),
    ("huber", lambda nn: nn.HuberLoss(delta=0.5), [X(4, 3), X(4, 3)]),
    ("smooth_l1", lambda nn: nn.SmoothL1Loss(beta=0.5, reduction="sum"), [X(4, 3), X(4, 3)]),
    ("smooth_l1_beta0", lambda nn: nn.SmoothL1Loss(beta=0.0), [X(4, 3), C(BINARY)]),
    ("kl_div_fn", fn("kl_div", reduction="sum"), [X(3, 3), C(np.full((3, 3), 1 / 3))]),
    ("poisson_nll_fn", fn("poisson_nll_loss"), [X(3, 3), C(np.ones((3, 3)))]),
    ("gaussian_nll_fn", fn("gaussian_nll_loss"), [X(4, 2), X(4, 2), C(np.ones((4, 2)))]),
    ("margin_ranking_fn", fn("margin_ranking_loss"), [X(4), X(4), C(np.sign(LABELS - 0.5))]),
    ("hinge_embedding_fn", fn("hinge_embedding_loss"), [X(4), C(np.sign(LABELS - 0.5))]),
    ("soft_margin_fn", fn("soft_margin_loss"), [X(4), C(np.sign(LABELS - 0.5))]),
    ("multilabel_soft_margin_fn", fn("multilabel_soft_margin_loss"), [X(4, 3), C(BINARY)]),
    ("multi_margin_fn", fn("multi_margin_loss"), [X(4, 3), C(LABELS)]),
    ("cosine_embedding_fn", fn("cosine_embedding_loss"), [X(4, 3), X(4, 3),
                                                          C(np.sign(LABELS - 0.5))]),
    ("triplet_margin_fn", fn("triplet_margin_loss"), [X(4, 3), X(4, 3), X(4, 3)]),
    ("triplet_with_distance_fn", fn("triplet_margin_with_distance_loss"),
     [X(4, 3), X(4, 3), X(4, 3)]),
]

CASES = {name: (build, specs) for name, build, specs in ALL_CASES + EXTRA_CASES}
assert len(CASES) == len(ALL_CASES) + len(EXTRA_CASES), "case names must be unique"


def _library(nn: Any, array: Any) -> Any:
    return torch.from_numpy(np.asarray(array)) if nn is torch.nn else gw.tensor(array)


def _library_float(nn: Any, values: Any) -> Any:
    return _library(nn, np.asarray(values, dtype=np.float32))


# ---- the variants ------------------------------------------------------------------------------
def _zeros(x: np.ndarray) -> np.ndarray:
    signs = np.resize(np.array([1.0, -1.0]), x.shape)
    return (np.zeros(x.shape) * signs).astype(x.dtype)  # 0 and -0 alternating


def _ties(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -1, 1).astype(x.dtype)


def _plant(value: float, where: int) -> Callable[[np.ndarray], np.ndarray]:
    def plant(x: np.ndarray) -> np.ndarray:
        x = x.copy()
        if x.size:
            x.flat[where % x.size] = value
        return x
    return plant


def _plant_infinities(x: np.ndarray) -> np.ndarray:
    return _plant(-INF, -1)(_plant(INF, 0)(x))


def _near_overflow(x: np.ndarray) -> np.ndarray:
    return (x * np.sqrt(np.finfo(x.dtype).max)).astype(x.dtype)  # squares overflow


def _near_underflow(x: np.ndarray) -> np.ndarray:
    return (x * np.finfo(x.dtype).tiny).astype(x.dtype)  # products underflow


#: input variants: name -> (transform of the first differentiable input, or of all of them)
INPUTS = {
    "zeros": (_zeros, "all"),
    "ties": (_ties, "all"),
    "inf": (_plant_infinities, "first"),
    "nan": (_plant(NAN, 1), "first"),
    "huge": (_near_overflow, "first"),
    "tiny": (_near_underflow, "first"),
}


def _filled(value: float) -> Callable[..., np.ndarray]:
    return lambda shape, dtype: np.full(shape, value, dtype)


#: upstream variants: the gradient that arrives at every output
UPSTREAMS = {
    "up_inf": _filled(INF), "up_-inf": _filled(-INF), "up_nan": _filled(NAN),
    "up_zeros": _filled(0.0), "up_-zeros": _filled(-0.0),
    # huge, yet summing a few dozen of them times O(1) weights does not overflow: an overflow
    # inside a sum depends on the order of the terms, which neither library promises
    "up_huge": lambda shape, dtype: np.full(shape, np.finfo(dtype).max / 1e4, dtype),
}

#: shape variants: the leading (batch) axis of every input that shares it, cut to 0 or 1
SHAPES = {"batch_0": 0, "batch_1": 1}

#: every variant in float64; float32 takes those where its own limits matter (the selection
#: rules do not depend on the dtype; the overflow points do), which keeps the grid within its
#: time
VARIANTS = {
    np.float64: ["plain", *INPUTS, *UPSTREAMS, *SHAPES],
    np.float32: ["plain", "zeros", "inf", "nan", "huge", "tiny", "up_inf", "batch_0"],
}
#: the variants also run in the second mode (eval) of a layer with running statistics or dropout
BOTH_MODES = {"plain", "zeros", "nan", "huge", "batch_0"}
#: the slowest cases (whole transformers, ~0.3 s a run) take a cut of the variants, one mode
SHORT = ["plain", "zeros", "inf", "nan", "up_inf", "up_nan", "batch_1"]
SLOW_CASES = {"transformer", "transformer_masks_batch_first", "decoder_stack_norm_first",
              "encoder_stack_norm", "encoder_layer", "decoder_layer", "encoder_layer_masks",
              "encoder_layer_norm_first_gelu_batch_first"}


def _arrays(specs: list[tuple[str, Any]], dtype: Any, variant: str, seed: int = 0):
    """(differentiable?, array) per input of a case, for one variant."""
    rng = np.random.default_rng(seed)
    arrays = []
    for kind, spec in specs:
        if kind == "grad":
            shape, scale = spec
            arrays.append((True, (rng.standard_normal(shape) * scale).astype(dtype)))
        else:
            arrays.append((False, spec.astype(dtype) if spec.dtype.kind == "f" else spec))
    if variant in INPUTS:
        transform, which = INPUTS[variant]
        done = False
        for i, (grad, array) in enumerate(arrays):
            if grad and not (done and which == "first"):
                arrays[i] = (grad, transform(array))
                done = True
    if variant in SHAPES:
        lead = next(a.shape[0] for g, a in sorted(arrays, key=lambda p: not p[0]) if a.ndim)
        size = SHAPES[variant]
        arrays = [(g, a[:size] if a.ndim and a.shape[0] == lead else a) for g, a in arrays]
    return arrays


# ---- one run of a case in both libraries ------------------------------------------------------
ERRORS = (RuntimeError, ValueError, IndexError, TypeError)


def _build_both(build: Any, dtype: Any):
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
    return ours_call, theirs_call, ours_module, theirs_module


def _close(what: str, ours: Any, theirs: Any, dtype: Any, loose: bool = False,
           scale: float = 1.0) -> None:
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch {theirs.shape}"
    if theirs.dtype.kind == "f":
        assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != torch {theirs.dtype}"
    rtol, atol = TOLERANCE[np.float32 if loose else dtype]
    atol *= scale
    finite = np.abs(theirs[np.isfinite(theirs)]) if theirs.dtype.kind == "f" else np.empty(0)
    if finite.size and (loose or dtype == np.float32):
        # a float32 element that is the difference of large terms (a norm layer's gradient:
        # values ~1e2 around one ~5e-2) carries an absolute error of a few float32 ulps of the
        # largest terms, whichever order of summation is used (the NumPy path of group_norm
        # and torch differ by 2.8e-5 there); so never ask for less than 16 ulps of the array
        atol = max(atol, 16 * float(np.finfo(np.float32).eps) * float(finite.max()))
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(ours.astype(np.float64), theirs.astype(np.float64), rtol=rtol,
                                   atol=atol, equal_nan=True, err_msg=what)


#: runs torch 2.13 cannot do: its pdist backward on fewer than two rows is a segmentation
#: fault; its pixel_shuffle backward on an empty batch returns a gradient of the wrong shape
TORCH_CRASHES = {"pdist-batch_0", "pdist_p1-batch_0", "pdist-batch_1", "pdist_p1-batch_1",
                 "pixel_shuffle-batch_0", "pixel_shuffle_fn-batch_0"}


def run_variant(name: str, variant: str, dtype: Any, mode: str | None = None) -> None:
    """One case, one variant, one dtype (and mode): raises AssertionError on a disagreement."""
    build, specs = CASES[name]
    if f"{name}-{variant}" in TORCH_CRASHES:
        return
    arrays = _arrays(specs, dtype, variant)
    ours_call, theirs_call, ours_module, theirs_module = _build_both(build, dtype)
    if mode is not None:
        ours_module.train(mode == "train")
        theirs_module.train(mode == "train")
    ours_in = [gw.tensor(a.copy(), requires_grad=g) for g, a in arrays]
    theirs_in = [torch.from_numpy(a.copy()).requires_grad_(g) for g, a in arrays]
    try:
        theirs_out = _outputs(theirs_call(*theirs_in))
    except (*ERRORS, AssertionError) as error:  # torch's MultiheadAttention asserts shapes
        try:
            with np.errstate(all="ignore"):
                ours_call(*ours_in)
        except ERRORS:
            return
        raise AssertionError(f"torch raises ({error}) but gradwise does not") from None
    try:
        with np.errstate(all="ignore"):
            ours_out = _outputs(ours_call(*ours_in))
    except ValueError as error:
        # deliberate (docs/NUMERICS.md): a mean over an empty batch is named, not NaN
        if "empty" in str(error) and (variant == "batch_0" or all(
                np.isnan(t.detach().numpy()).all() for t in theirs_out)):
            return
        raise
    assert len(ours_out) == len(theirs_out), "number of outputs"
    for i, (o, t) in enumerate(zip(ours_out, theirs_out, strict=True)):
        _close(f"output {i}", o.numpy() if hasattr(o, "numpy") else o, t, dtype)
    if ours_module is not None:
        theirs_state = theirs_module.state_dict()
        for key, value in ours_module.state_dict().items():
            _close(f"state {key}", np.asarray(value), theirs_state[key], dtype)
    pairs = [(o, t) for o, t in zip(ours_out, theirs_out, strict=True) if t.requires_grad]
    if not pairs:
        return
    rng = np.random.default_rng(1)
    upstreams = [UPSTREAMS[variant](tuple(t.shape), t.detach().numpy().dtype)
                 if variant in UPSTREAMS else
                 rng.uniform(0.5, 1.5, tuple(t.shape)).astype(t.detach().numpy().dtype)
                 for _, t in pairs]
    theirs_params = dict(theirs_module.named_parameters()) if theirs_module is not None else {}
    ours_params = dict(ours_module.named_parameters()) if ours_module is not None else {}
    names = [f"input {i}" for i, t in enumerate(theirs_in) if t.requires_grad]
    theirs_leaves = [t for t in theirs_in if t.requires_grad]
    ours_leaves = [o for o, t in zip(ours_in, theirs_in, strict=True) if t.requires_grad]
    for key, param in theirs_params.items():
        if param.requires_grad and key in ours_params:
            names.append(f"grad of {key}")
            theirs_leaves.append(param)
            ours_leaves.append(ours_params[key])
    theirs_grads = torch.autograd.grad([t for _, t in pairs], theirs_leaves,
                                       [torch.from_numpy(u.copy()) for u in upstreams],
                                       allow_unused=True)
    with np.errstate(all="ignore"):
        ours_grads = gw.autograd.grad([o for o, _ in pairs], ours_leaves,
                                      [gw.tensor(u.copy()) for u in upstreams],
                                      allow_unused=True)
    loose = name in FLOAT32_CONSTANTS_IN_TORCH
    # a gradient is linear in the upstream one, and so is its rounding: under a huge upstream
    # gradient, a difference of a few ulps of it (a sum that cancels, such as a normalisation's
    # g - mean(g)) is rounding in both libraries, not a disagreement
    scale = float(np.abs(upstreams[0]).max(initial=1.0)) if variant == "up_huge" else 1.0
    for what, ours, theirs in zip(names, ours_grads, theirs_grads, strict=True):
        if theirs is None:
            assert ours is None or not np.asarray(ours).any(), f"{what}: torch has no gradient"
            continue
        assert ours is not None, f"{what}: gradwise has no gradient, torch has one"
        _close(f"gradient {what}", np.asarray(ours), theirs, dtype, loose, scale)


def _modes(name: str) -> list[str | None]:
    """Both modes for a case whose module holds running statistics or dropout, else one."""
    build, _specs = CASES[name]
    module = _module_of(build(gw.nn))
    if module is None:
        return [None]
    kinds = {type(m).__name__ for m in module.modules()}
    if any("Norm" in kind or "Dropout" in kind for kind in kinds):
        if not module.training:
            return [None]  # the case chose eval on purpose
        return ["train", "eval"]
    return [None]


# Where gradwise and torch differ, by case and variant ("case-variant", or "case-variant-f32"
# for one dtype), with the reason. Each entry must still differ, so the lists cannot go stale.
def _each(cases: str, variants: str, why: str) -> dict[str, str]:
    return {f"{case}-{variant}": why for case in cases.split() for variant in variants.split()}


_CROSS_ENTROPY = ("cross_entropy cross_entropy_ignore_smooth_none cross_entropy_weight_buffer "
                  "cross_entropy_weight_ignore_sum")
_INSTANCE_NORMS = ("instancenorm1d instancenorm1d_no_bias instancenorm2d_affine_running "
                   "instancenorm3d")
_NAN_LOOPS = "torch's vectorised and scalar loops disagree at NaN (test_edges_upstream.py)"

#: deliberate: docs/NUMERICS.md ("Layers, losses and models at the edges") gives each reason
DIFFERENCES: dict[str, str] = {
    **_each(_CROSS_ENTROPY, "up_inf up_-inf",
            "torch's log_softmax backward g - softmax sum(g) gives -inf - -inf = NaN at the "
            "label; gradwise's g (softmax - onehot) gives the limit, +-inf"),
    **_each("multi_margin multi_margin_fn multi_margin_p2_weight", "up_inf up_-inf up_nan",
            "torch multiplies a row's active count (0) by the inf/NaN gradient at the label; "
            "gradwise selects, 0"),
    **_each("conv_transpose2d_fn", "inf nan up_inf up_-inf",
            "torch's weight gradient also multiplies 0 (the cropped border) by inf/NaN"),
    **_each("conv_transpose2d conv_transpose2d_dilated", "inf-f64 nan-f64",
            "as conv_transpose2d_fn"),
    "conv_transpose1d-inf-f64": "as conv_transpose2d_fn",
    **_each("conv3d", "up_inf-f32 up_-inf-f32",
            "torch's float32 conv3d (oneDNN) leaves the padding out of the weight gradient; "
            "its float64 path, like gradwise, multiplies the padded zeros by inf (NaN)"),
    **_each("layernorm layernorm_no_affine layernorm_no_bias layer_norm_fn group_norm_fn "
            "groupnorm_no_affine", "huge", "a variance that overflows: torch's inf / inf gives "
            "NaN; gradwise 0 or the normalised values (it scales before squaring)"),
    **_each(_INSTANCE_NORMS, "batch_0", "torch's instance norm fails on an empty batch "
            "(select(): index 0 out of range); gradwise returns the empty result"),
    **_each("pixel_unshuffle pixel_unshuffle_fn", "batch_0",
            "torch returns an empty batch unshuffled, (0, C, H, W); gradwise (0, C r^2, H/r, W/r)"),
    **_each("soft_margin soft_margin_fn", "inf huge",
            "log(1 + e^-yx) overflows in torch; gradwise's softplus is stable (finite value, "
            "limit gradient)"),
    **_each("gelu_tanh", "huge", "torch's tanh-GELU backward overflows x^3 (NaN); gradwise "
            "gives the limits 1 and 0"),
    **_each("cnn", "zeros tiny", "batch norm of a constant channel is exactly 0 in gradwise, "
            "~3e-5 of rounding in torch (NUMERICS: conventions); the ReLU after it then sees its "
            "kink at 0 (gradient 0) where torch sees the rounding's sign"),
    **_each("cosine_embedding cosine_embedding_fn", "tiny-f64",
            "squares of the smallest normal underflow; the cosine's rounding differs by 2e-9"),
    **_each("mha_attn_mask_no_weights", "huge",
            "attention scores that overflow: softmax of inf - inf in a different order"),
    **_each("pdist_p1", "nan", "torch's pdist kernel takes sign(NaN) = NaN; gradwise's p = 1 "
            "norm follows abs (sgn(NaN) = 0), as torch's own norm(p=1) does"),
    **_each("elu hardshrink softshrink", "nan", _NAN_LOOPS),
    **_each("celu selu", "nan-f32", _NAN_LOOPS),
    **_each("hardswish hardtanh relu6", "nan-f64", _NAN_LOOPS),
    "gelu-inf-f32": "torch's vectorised float32 GELU gives NaN at +inf (test_edges.py)",
}

#: faults the grid found that are not fixed yet (docs/NUMERICS.md, "Not covered yet")
KNOWN_FAULTS: dict[str, str] = {
}
EXPECTED = {**DIFFERENCES, **KNOWN_FAULTS}


def _failures(name: str, dtype: Any) -> dict[str, str]:
    """The variants of one case that disagree with torch: key -> the first lines of why."""
    found = {}
    tag = "f32" if dtype == np.float32 else "f64"
    for mode in [None] if name in SLOW_CASES else _modes(name):
        for variant in SHORT if name in SLOW_CASES else VARIANTS[dtype]:
            if mode == "eval" and variant not in BOTH_MODES:
                continue
            try:
                run_variant(name, variant, dtype, mode)
            except AssertionError as error:
                key = f"{name}-{variant}"
                key = f"{key}-{tag}" if f"{key}-{tag}" in EXPECTED else key
                where = "" if mode is None else f" ({mode})"
                found[key] = f"{name}-{variant}-{tag}{where}: " + " ".join(
                    str(error).split())[:500]
    return found


#: listed differences that come and go with torch's rounding (run order, threads): the tiny
#: constant channel's residue in torch's batch norm is sometimes exactly 0 there too. (The packed
#: ReLU RNN's inf-input case came and went with the weights the run order drew; it was gradwise's
#: fault, fixed in issue 12: tests/nn/test_recurrent_packed_edges.py)
MAY_AGREE = {"cnn-tiny"}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_case_at_the_edges_matches_torch(name, dtype):
    tag = "f32" if dtype == np.float32 else "f64"
    found = _failures(name, dtype)
    unexpected = [why for key, why in found.items() if key not in EXPECTED]
    assert not unexpected, "\n".join(unexpected)
    variants = SHORT if name in SLOW_CASES else VARIANTS[dtype]
    listed = {f"{name}-{v}{suffix}" for v in variants for suffix in ("", f"-{tag}")} & set(
        EXPECTED)
    gone = sorted(listed - set(found) - MAY_AGREE)
    assert not gone, f"listed differences that are gone (take them off the lists): {gone}"


# ---- the registry walk --------------------------------------------------------------------------
#: public nn.functional names with no gradient to compare (integer outputs, argument helpers) or
#: random in training (their eval/p=0 forms are in the grid through the layers)
NOT_DIFFERENTIABLE = {"one_hot", "dim_arg"}
RANDOM = {"gumbel_softmax"}
#: public names no case reaches yet: name -> why. Exactly these, so a new name fails the test
#: and a name a case reaches must come off the list.
FUNCTIONS_NOT_IN_GRID = {
    "l1_penalty": "a gradwise extra (no torch counterpart to compare with)",
    "l2_penalty": "a gradwise extra (no torch counterpart to compare with)",
}
LAYERS_NOT_IN_GRID = {
    "Module": "the base class", "RNNBase": "an abstract base", "RNNCellBase": "an abstract base",
    "ParameterDict": "holds parameters, computes nothing",
    "ParameterList": "holds parameters, computes nothing",
    "LazyLinear": "its weights exist only after a first call, so they cannot be copied from "
                  "torch before it; Linear's cases cover its forward",
}


def _public_functions() -> dict[str, Any]:
    return {name: value for name, value in vars(F).items() if not name.startswith("_")
            and inspect.isfunction(value) and value.__module__.startswith("gradwise")}


def _public_layers() -> set[str]:
    return {name for name, value in vars(gw.nn).items()
            if inspect.isclass(value) and issubclass(value, gw.nn.Module)}


def _function_classes(tensors: list[Any]) -> set[type]:
    found, seen, stack = set(), set(), [t for t in tensors if isinstance(t, gw.Tensor)]
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        if tensor.grad_fn is not None:
            found.add(type(tensor.grad_fn))
            stack.extend(tensor.grad_fn.inputs)
    return found


def _reached(monkeypatch) -> tuple[set[str], set[str], set[type]]:
    """(F functions called, layer classes built, Function classes recorded) by one plain float64
    run of every case."""
    called: set[str] = set()

    def recording(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            called.add(name)
            return function(*args, **kwargs)
        return wrapper

    for name, function in _public_functions().items():
        monkeypatch.setattr(F, name, recording(name, function))
    layers: set[str] = set()
    ops: set[type] = set()
    for build, specs in CASES.values():
        module = _module_of(build(gw.nn))
        if module is not None:
            layers |= {type(m).__name__ for m in module.modules()}
        ours_call, _, _, _ = _build_both(build, np.float64)
        inputs = [gw.tensor(a, requires_grad=g) for g, a in _arrays(specs, np.float64, "plain")]
        ops |= _function_classes(_outputs(ours_call(*inputs)))
    return called, layers, ops


def test_every_function_and_layer_is_in_the_grid(monkeypatch):
    called, layers, _ops = _reached(monkeypatch)
    functions = set(_public_functions()) - NOT_DIFFERENTIABLE - RANDOM
    missing = sorted(functions - called - set(FUNCTIONS_NOT_IN_GRID))
    assert not missing, f"nn.functional names no edge case reaches: {missing}"
    reached_now = sorted(set(FUNCTIONS_NOT_IN_GRID) & called)
    assert not reached_now, f"reached now, take off FUNCTIONS_NOT_IN_GRID: {reached_now}"
    from gradwise.nn.parallel import SyncBatchNorm

    assert SyncBatchNorm.__name__ not in _public_layers()  # needs a process group: its own tests
    missing = sorted(_public_layers() - layers - set(LAYERS_NOT_IN_GRID))
    assert not missing, f"nn layers no edge case builds: {missing}"
    reached_now = sorted(set(LAYERS_NOT_IN_GRID) & layers)
    assert not reached_now, f"built now, take off LAYERS_NOT_IN_GRID: {reached_now}"
