"""Every differentiable op: gradcheck in float64 and, when PyTorch is installed, torch.autograd."""

from __future__ import annotations

import numpy as np
import pytest

import gradwise as gw
from gradwise.nn import functional as F
from helpers import check_op, torch

T = torch  # short alias for the oracle lambdas; None when PyTorch is absent

LABELS = np.array([2, 0, 1, 2, 1])
BINARY = np.random.default_rng(3).integers(0, 2, size=(5, 3)).astype(np.float64)
PROBS = np.random.default_rng(4).uniform(0.05, 0.95, size=(5, 3))
COND = np.random.default_rng(5).random((3, 4)) > 0.5
IGNORING = np.array([2, 1, 0, 1, 2])  # with ignore_index=1, rows 1 and 3 add nothing
CLASS_WEIGHT = np.array([0.5, 2.0, 1.5])
INF = float("inf")
# (name, gradwise fn, torch fn, input shapes, options)
CASES = [
    ("add", lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (3, 4)], {}),
    ("add_broadcast", lambda a, b: a + b, lambda a, b: a + b, [(2, 3, 4), (3, 1)], {}),
    ("add_scalar", lambda a: a + 2.5, lambda a: a + 2.5, [(3,)], {}),
    ("radd_scalar", lambda a: 2.5 + a, lambda a: 2.5 + a, [(3,)], {}),
    ("sub_broadcast", lambda a, b: a - b, lambda a, b: a - b, [(4, 1), (1, 5)], {}),
    ("rsub", lambda a: 1.0 - a, lambda a: 1.0 - a, [(3,)], {}),
    ("mul_broadcast", lambda a, b: a * b, lambda a, b: a * b, [(2, 3, 4), (4,)], {}),
    ("rmul_array", lambda a: np.arange(4.0) * a, lambda a: T.arange(4.0, dtype=T.float64) * a,
     [(3, 4)], {}),
    ("div_broadcast", lambda a, b: a / b, lambda a, b: a / b, [(3, 4), (1, 4)],
     {"positive": True}),
    ("rdiv", lambda a: 2.0 / a, lambda a: 2.0 / a, [(3,)], {"positive": True}),
    ("pow_scalar", lambda a: a**3, lambda a: a**3, [(3, 2)], {}),
    ("pow_square", lambda a: a**2, lambda a: a**2, [(3, 2)], {}),
    ("pow_fraction", lambda a: a**0.5, lambda a: a**0.5, [(3,)], {"positive": True}),
    ("pow_tensor", lambda a, b: a**b, lambda a, b: a**b, [(3, 2), (3, 2)], {"positive": True}),
    ("rpow", lambda a: 2.0**a, lambda a: 2.0**a, [(4,)], {}),
    ("neg", lambda a: -a, lambda a: -a, [(3,)], {}),
    ("exp", lambda a: a.exp(), lambda a: a.exp(), [(3, 2)], {}),
    ("log", lambda a: a.log(), lambda a: a.log(), [(3, 2)], {"positive": True}),
    ("sqrt", lambda a: a.sqrt(), lambda a: a.sqrt(), [(3, 2)], {"positive": True}),
    ("abs", lambda a: a.abs(), lambda a: a.abs(), [(3, 2)], {}),
    ("clip", lambda a: a.clip(-0.5, 0.5), lambda a: a.clamp(-0.5, 0.5), [(4, 3)], {}),
    ("clip_low", lambda a: a.clip(lo=0.0), lambda a: a.clamp(min=0.0), [(4, 3)], {}),
    ("maximum", lambda a, b: gw.maximum(a, b), lambda a, b: T.maximum(a, b),
     [(3, 4), (4,)], {}),
    ("minimum", lambda a, b: gw.minimum(a, b), lambda a, b: T.minimum(a, b),
     [(3, 4), (3, 1)], {}),
    ("where", lambda a, b: gw.where(COND, a, b),
     lambda a, b: T.where(T.tensor(COND), a, b), [(3, 4), (1, 4)], {}),
    ("matmul_2d", lambda a, b: a @ b, lambda a, b: a @ b, [(3, 4), (4, 5)], {}),
    ("matmul_vec_mat", lambda a, b: a @ b, lambda a, b: a @ b, [(4,), (4, 5)], {}),
    ("matmul_mat_vec", lambda a, b: a @ b, lambda a, b: a @ b, [(3, 4), (4,)], {}),
    ("matmul_vec_vec", lambda a, b: a @ b, lambda a, b: a @ b, [(4,), (4,)], {}),
    ("matmul_batched", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3, 4), (2, 4, 5)], {}),
    ("matmul_broadcast", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 1, 3, 4), (3, 4, 2)], {}),
    ("matmul_batch_vec", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3, 4), (4,)], {}),
    # reductions
    ("sum_all", lambda a: a.sum(), lambda a: a.sum(), [(3, 4)], {}),
    ("sum_axis", lambda a: a.sum(axis=1), lambda a: a.sum(dim=1), [(3, 4, 2)], {}),
    ("sum_axes_keep", lambda a: a.sum(axis=(0, 2), keepdims=True),
     lambda a: a.sum(dim=(0, 2), keepdim=True), [(3, 4, 2)], {}),
    ("sum_negative_axis", lambda a: a.sum(axis=-1), lambda a: a.sum(dim=-1), [(3, 4)], {}),
    ("mean_all", lambda a: a.mean(), lambda a: a.mean(), [(3, 4)], {}),
    ("mean_axis", lambda a: a.mean(axis=0), lambda a: a.mean(dim=0), [(3, 4)], {}),
    ("mean_keep", lambda a: a.mean(axis=(1,), keepdims=True),
     lambda a: a.mean(dim=1, keepdim=True), [(3, 4)], {}),
    ("max_all", lambda a: a.max(), lambda a: a.amax(), [(3, 4)], {}),
    ("max_axis", lambda a: a.amax(axis=1), lambda a: a.amax(dim=1), [(3, 4)], {}),
    ("max_ties", lambda a: (a * 0).amax(axis=1), lambda a: (a * 0).amax(dim=1), [(3, 4)], {}),
    ("min_keep", lambda a: a.amin(axis=0, keepdims=True), lambda a: a.amin(dim=0, keepdim=True),
     [(3, 4)], {}),
    ("var_all", lambda a: a.var(), lambda a: a.var(), [(3, 4)], {}),
    ("var_all_biased", lambda a: a.var(unbiased=False), lambda a: a.var(correction=0),
     [(3, 4)], {}),
    ("var_dim_correction", lambda a: a.var(dim=0, correction=2, keepdim=True),
     lambda a: a.var(dim=0, correction=2, keepdim=True), [(5, 2)], {}),
    ("std_all", lambda a: a.std(), lambda a: a.std(), [(3, 4)], {}),
    ("std_dim_positional_unbiased", lambda a: a.std(1, False), lambda a: a.std(1, False),
     [(3, 4)], {}),
    ("max_dim_values", lambda a: a.max(dim=1).values, lambda a: a.max(dim=1).values,
     [(3, 4)], {}),
    ("max_dim_keepdim", lambda a: a.max(0, keepdim=True)[0], lambda a: a.max(0, True)[0],
     [(3, 4)], {}),
    ("min_dim_values", lambda a: a.min(-1).values, lambda a: a.min(-1).values, [(3, 4)], {}),
    ("sum_dim_keepdim", lambda a: a.sum(dim=1, keepdim=True), lambda a: a.sum(1, True),
     [(3, 4)], {}),
    ("mean_dim_tuple", lambda a: a.mean(dim=(0, 2)), lambda a: a.mean(dim=(0, 2)),
     [(2, 3, 4)], {}),
    ("logsumexp_dim", lambda a: a.logsumexp(dim=1), lambda a: a.logsumexp(dim=1), [(3, 4)], {}),
    ("softmax_method_dim", lambda a: a.softmax(dim=0), lambda a: a.softmax(dim=0), [(3, 4)],
     {}),
    ("transpose_two_dims_3d", lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2),
     [(2, 3, 4)], {}),
    ("transpose_2d_0_1", lambda a: a.transpose(0, 1), lambda a: a.transpose(0, 1), [(2, 3)],
     {}),
    ("squeeze_dim", lambda a: a.squeeze(dim=1), lambda a: a.squeeze(dim=1), [(3, 1, 2)], {}),
    ("unsqueeze_dim", lambda a: a.unsqueeze(dim=-1), lambda a: a.unsqueeze(dim=-1), [(3, 2)],
     {}),
    ("var_axis_ddof", lambda a: a.var(axis=1, ddof=1), lambda a: a.var(dim=1), [(3, 4)], {}),
    ("std_axis", lambda a: a.std(axis=0, ddof=0), lambda a: a.std(dim=0, correction=0),
     [(5, 2)], {}),
    ("logsumexp", lambda a: a.logsumexp(axis=1), lambda a: a.logsumexp(dim=1), [(3, 4)], {}),
    ("logsumexp_keep", lambda a: a.logsumexp(axis=(0, 1), keepdims=True),
     lambda a: a.logsumexp(dim=(0, 1), keepdim=True), [(3, 4)], {}),
    # norms (the inputs are random, so no entry ties and none is 0: gradcheck needs smoothness)
    ("norm_fro", lambda a: a.norm(), lambda a: a.norm(), [(3, 4)], {}),
    ("norm_2_dim", lambda a: a.norm(2, dim=1), lambda a: a.norm(2, dim=1), [(3, 4)], {}),
    ("norm_1_keep", lambda a: a.norm(1, dim=0, keepdim=True),
     lambda a: a.norm(1, dim=0, keepdim=True), [(3, 4)], {}),
    ("norm_3", lambda a: gw.linalg.vector_norm(a, 3), lambda a: T.linalg.vector_norm(a, 3),
     [(3, 4)], {}),
    ("norm_inf", lambda a: gw.linalg.vector_norm(a, INF, dim=(0, 1)),
     lambda a: T.linalg.vector_norm(a, INF, dim=(0, 1)), [(2, 3, 2)], {}),
    ("matrix_norm_1", lambda a: gw.linalg.matrix_norm(a, 1),
     lambda a: T.linalg.matrix_norm(a, 1), [(2, 3, 4)], {}),
    ("matrix_norm_inf_dims", lambda a: gw.linalg.matrix_norm(a, INF, dim=(0, 2)),
     lambda a: T.linalg.matrix_norm(a, INF, dim=(0, 2)), [(3, 2, 4)], {}),
    ("matrix_norm_2", lambda a: gw.linalg.matrix_norm(a, 2),
     lambda a: T.linalg.matrix_norm(a, 2), [(2, 3, 4)], {}),
    ("matrix_norm_-2_keep", lambda a: gw.linalg.matrix_norm(a, -2, keepdim=True),
     lambda a: T.linalg.matrix_norm(a, -2, keepdim=True), [(4, 3)], {}),
    ("matrix_norm_nuc", lambda a: gw.linalg.matrix_norm(a, "nuc"),
     lambda a: T.linalg.matrix_norm(a, "nuc"), [(3, 4)], {}),
    ("linalg_norm_matrix_dims", lambda a: gw.linalg.norm(a, "fro", dim=(1, 2)),
     lambda a: T.linalg.norm(a, "fro", dim=(1, 2)), [(2, 3, 4)], {}),
    ("std_ddof1", lambda a: a.std(axis=1, ddof=1), lambda a: a.std(dim=1), [(3, 4)], {}),
    # shape
    ("reshape", lambda a: a.reshape(4, 3), lambda a: a.reshape(4, 3), [(3, 4)], {}),
    ("reshape_infer", lambda a: a.reshape(-1), lambda a: a.reshape(-1), [(3, 4)], {}),
    ("transpose_T", lambda a: a.T, lambda a: a.T, [(3, 4)], {}),
    ("transpose_axes", lambda a: a.transpose(2, 0, 1), lambda a: a.permute(2, 0, 1),
     [(2, 3, 4)], {}),
    ("permute", lambda a: a.permute(1, 2, 0), lambda a: a.permute(1, 2, 0), [(2, 3, 4)], {}),
    ("swapaxes", lambda a: a.swapaxes(0, 2), lambda a: a.transpose(0, 2), [(2, 3, 4)], {}),
    ("flatten", lambda a: a.flatten(1), lambda a: a.flatten(1), [(2, 3, 4)], {}),
    ("squeeze", lambda a: a.squeeze(1), lambda a: a.squeeze(1), [(3, 1, 2)], {}),
    ("squeeze_all", lambda a: a.squeeze(), lambda a: a.squeeze(), [(1, 3, 1)], {}),
    ("unsqueeze", lambda a: a.unsqueeze(-1), lambda a: a.unsqueeze(-1), [(3, 2)], {}),
    ("expand", lambda a: a.expand(2, 3, -1), lambda a: a.expand(2, 3, -1), [(3, 1)], {}),
    ("broadcast_to", lambda a: gw.broadcast_to(a, (2, 3, 4)),
     lambda a: T.broadcast_to(a, (2, 3, 4)), [(3, 1)], {}),
    ("getitem_slice", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [(4, 5)], {}),
    ("getitem_int", lambda a: a[1], lambda a: a[1], [(4, 5)], {}),
    ("getitem_none_ellipsis", lambda a: a[None, ..., 1], lambda a: a[None, ..., 1],
     [(2, 3, 4)], {}),
    ("getitem_int_array_repeats", lambda a: a[np.array([0, 2, 0, 0])],
     lambda a: a[T.tensor([0, 2, 0, 0])], [(3, 4)], {}),
    ("getitem_pairs", lambda a: a[np.array([0, 1, 1]), np.array([2, 2, 0])],
     lambda a: a[T.tensor([0, 1, 1]), T.tensor([2, 2, 0])], [(3, 4)], {}),
    ("getitem_bool", lambda a: a[COND], lambda a: a[T.tensor(COND)], [(3, 4)], {}),
    ("cat", lambda a, b: gw.cat([a, b], axis=1), lambda a, b: T.cat([a, b], dim=1),
     [(2, 3), (2, 4)], {}),
    ("stack", lambda a, b: gw.stack([a, b], axis=-1), lambda a, b: T.stack([a, b], dim=-1),
     [(2, 3), (2, 3)], {}),
    ("pad", lambda a: gw.pad(a, ((1, 0), (2, 1)), value=0.5),
     lambda a: T.nn.functional.pad(a, (2, 1, 1, 0), value=0.5), [(2, 3)], {}),
    # activations
    ("relu", F.relu, lambda a: T.relu(a), [(4, 5)], {}),
    ("leaky_relu", lambda a: F.leaky_relu(a, 0.1),
     lambda a: T.nn.functional.leaky_relu(a, 0.1), [(4, 5)], {}),
    ("elu", F.elu, lambda a: T.nn.functional.elu(a), [(4, 5)], {}),
    ("gelu", F.gelu, lambda a: T.nn.functional.gelu(a), [(4, 5)], {"atol": 1e-6}),
    ("gelu_tanh", lambda a: F.gelu(a, approximate="tanh"),
     lambda a: T.nn.functional.gelu(a, approximate="tanh"), [(4, 5)], {}),
    ("sigmoid", F.sigmoid, lambda a: T.sigmoid(a), [(4, 5)], {}),
    ("tanh", F.tanh, lambda a: T.tanh(a), [(4, 5)], {}),
    ("softplus", F.softplus, lambda a: T.nn.functional.softplus(a), [(4, 5)], {}),
    ("softmax", lambda a: F.softmax(a, axis=1), lambda a: T.softmax(a, dim=1), [(3, 4)], {}),
    ("softmax_axis0", lambda a: F.softmax(a, axis=0), lambda a: T.softmax(a, dim=0), [(3, 4)], {}),
    ("log_softmax", lambda a: F.log_softmax(a), lambda a: T.log_softmax(a, dim=-1), [(3, 4)], {}),
    ("linear", F.linear, lambda x, w, b: T.nn.functional.linear(x, w, b),
     [(5, 4), (3, 4), (3,)], {}),
    ("linear_no_bias", F.linear, lambda x, w: T.nn.functional.linear(x, w), [(5, 4), (3, 4)], {}),
    ("linear_3d", F.linear, lambda x, w, b: T.nn.functional.linear(x, w, b),
     [(2, 5, 4), (3, 4), (3,)], {}),
    # losses, every reduction of each
    *[
        (f"{name}_{reduction}", fn(reduction), tfn(reduction), shapes, opts)
        for reduction in ("mean", "sum", "none")
        for name, fn, tfn, shapes, opts in [
            ("mse", lambda r: lambda a, b: F.mse_loss(a, b, reduction=r),
             lambda r: lambda a, b: T.nn.functional.mse_loss(a, b, reduction=r),
             [(4, 3), (4, 3)], {}),
            ("l1", lambda r: lambda a, b: F.l1_loss(a, b, reduction=r),
             lambda r: lambda a, b: T.nn.functional.l1_loss(a, b, reduction=r),
             [(4, 3), (4, 3)], {}),
            ("bce", lambda r: lambda p: F.binary_cross_entropy(p, BINARY, reduction=r),
             lambda r: lambda p: T.nn.functional.binary_cross_entropy(
                 p, T.tensor(BINARY), reduction=r), [PROBS], {}),
            ("bce_logits", lambda r: lambda x: F.binary_cross_entropy_with_logits(
                x, BINARY, reduction=r),
             lambda r: lambda x: T.nn.functional.binary_cross_entropy_with_logits(
                 x, T.tensor(BINARY), reduction=r), [(5, 3)], {}),
            ("cross_entropy", lambda r: lambda x: F.cross_entropy(x, LABELS, reduction=r),
             lambda r: lambda x: T.nn.functional.cross_entropy(
                 x, T.tensor(LABELS), reduction=r), [(5, 3)], {}),
            ("cross_entropy_smoothing",
             lambda r: lambda x: F.cross_entropy(x, LABELS, reduction=r, label_smoothing=0.2),
             lambda r: lambda x: T.nn.functional.cross_entropy(
                 x, T.tensor(LABELS), reduction=r, label_smoothing=0.2), [(5, 3)], {}),
            ("cross_entropy_all_options",
             lambda r: lambda x: F.cross_entropy(x, IGNORING, CLASS_WEIGHT, ignore_index=1,
                                                 reduction=r, label_smoothing=0.2),
             lambda r: lambda x: T.nn.functional.cross_entropy(
                 x, T.tensor(IGNORING), T.tensor(CLASS_WEIGHT), ignore_index=1, reduction=r,
                 label_smoothing=0.2), [(5, 3)], {}),
            ("nll_weight_ignore",
             lambda r: lambda x: F.nll_loss(F.log_softmax(x), IGNORING, CLASS_WEIGHT,
                                            ignore_index=1, reduction=r),
             lambda r: lambda x: T.nn.functional.nll_loss(
                 T.log_softmax(x, dim=-1), T.tensor(IGNORING), T.tensor(CLASS_WEIGHT),
                 ignore_index=1, reduction=r), [(5, 3)], {}),
            ("bce_weight", lambda r: lambda p: F.binary_cross_entropy(
                p, BINARY, np.array([0.5, 1.0, 2.0]), reduction=r),
             lambda r: lambda p: T.nn.functional.binary_cross_entropy(
                 p, T.tensor(BINARY), T.tensor([0.5, 1.0, 2.0], dtype=T.float64), reduction=r),
             [PROBS], {}),
            ("bce_logits_pos_weight", lambda r: lambda x: F.binary_cross_entropy_with_logits(
                x, BINARY, np.array([0.5, 1.0, 2.0]), reduction=r,
                pos_weight=np.array([3.0, 1.0, 0.5])),
             lambda r: lambda x: T.nn.functional.binary_cross_entropy_with_logits(
                 x, T.tensor(BINARY), T.tensor([0.5, 1.0, 2.0], dtype=T.float64), reduction=r,
                 pos_weight=T.tensor([3.0, 1.0, 0.5], dtype=T.float64)), [(5, 3)], {}),
            ("nll", lambda r: lambda x: F.nll_loss(F.log_softmax(x), LABELS, reduction=r),
             lambda r: lambda x: T.nn.functional.nll_loss(
                 T.log_softmax(x, dim=-1), T.tensor(LABELS), reduction=r), [(5, 3)], {}),
        ]
    ],
]


@pytest.mark.parametrize(
    ("gw_fn", "torch_fn", "shapes", "options"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_op(gw_fn, torch_fn, shapes, options):
    check_op(gw_fn, torch_fn if torch is not None else None, shapes, **options)
