"""BatchNorm1d, BatchNorm2d and LayerNorm."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.init import ones_, zeros_
from gradwise.nn.layers._utils import positive_int
from gradwise.nn.module import Module, Parameter


class _NormBase(Module):
    """What batch and instance normalisation share (torch's _NormBase): the affine parameters,
    the running statistics and their reset."""

    #: the input ranks the layer accepts, and how they read
    ranks: tuple[int, ...] = ()
    layout = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        bias: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = positive_int(name, "num_features", num_features)
        if eps <= 0:
            raise ValueError(f"{name}: eps must be positive, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1] or None, got {momentum}")
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.empty(num_features, dtype=dtype))
            # bias=False: a learnt scale without shift (torch's argument)
            self.register_parameter(
                "bias", Parameter(np.empty(num_features, dtype=dtype)) if bias else None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def _upgrade_state_dict(self, prefix: str, state_dict: dict[str, Any]) -> None:
        # state dicts from PyTorch before 0.4.1 have no num_batches_tracked; PyTorch then keeps
        # the module's own count (0 for a fresh module) instead of calling the key missing
        key = prefix + "num_batches_tracked"
        if self.track_running_stats and key not in state_dict:
            state_dict[key] = np.array(self.num_batches_tracked._data, copy=True)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0

    def reset_parameters(self, rng: Any = None) -> None:
        """Running stats to (0, 1), weight to ones, bias to zeros (``rng`` is not needed)."""
        self.reset_running_stats()
        if self.affine:
            ones_(self.weight)
            if self.bias is not None:
                zeros_(self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class _BatchNorm(_NormBase):
    """Batch normalisation over every axis but the channels (see BatchNorm1d)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self.ranks or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}): expected input of shape "
                f"{self.layout.format(C=self.num_features)}, got {tuple(x.shape)}"
            )
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data[...] += 1
            if momentum is None:  # cumulative moving average, as in PyTorch
                momentum = 1.0 / float(self.num_batches_tracked._data)
        # without running stats (None) batch statistics are used in evaluation too
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=self.training or not self.track_running_stats,
            momentum=0.0 if momentum is None else momentum,
            eps=self.eps,
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs, per channel C, PyTorch's semantics.

    Training normalises with the batch mean and biased variance and moves the running stats
    by ``momentum`` towards the batch mean and the unbiased variance (``momentum=None``: a
    cumulative average); evaluation normalises with the running stats.

    Shape:
        x: (N, C) or (N, C, L) -> same
    """

    ranks = (2, 3)
    layout = "(N, {C}) or (N, {C}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of NCHW inputs per channel C, PyTorch's semantics: training
    normalises with the batch's mean and biased variance over (N, H, W) and moves the running
    stats by ``momentum`` towards the batch mean and unbiased variance; evaluation uses the
    running stats (Ioffe & Szegedy, 2015).

    Args:
        num_features: C, the channels.
        eps: added to the variance, > 0.
        momentum: weight of the new batch in the running stats, in [0, 1]; None for a
            cumulative average.
        affine: learn a per-channel scale ``weight`` (ones) and shift ``bias`` (zeros).
        track_running_stats: keep running stats (False: batch stats in evaluation too).

    Shape:
        x: (N, C, H, W) -> same

    Raises:
        ValueError: at construction, num_features not a positive int, eps <= 0 or momentum
            outside [0, 1]; at forward, an input that is not (N, C, H, W) with this C.
    """

    ranks = (4,)
    layout = "(N, {C}, H, W)"


class LayerNorm(Module):
    """Normalise each sample over its trailing ``normalized_shape`` axes, then scale and shift.

    Shape:
        x: (*, *normalized_shape) -> same

    Example:
        >>> gw.nn.LayerNorm(64)(gw.zeros(8, 16, 64)).shape
        (8, 16, 64)
    """

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape = tuple(
            positive_int("LayerNorm", "normalized_shape", n) for n in shape
        )
        if eps <= 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps}")
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.empty(self.normalized_shape, dtype=dtype))
            self.register_parameter(
                "bias", Parameter(np.empty(self.normalized_shape, dtype=dtype)) if bias else None
            )
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self, rng: Any = None) -> None:
        """Weight to ones, bias to zeros (``rng`` is not needed)."""
        if self.weight is not None:
            ones_(self.weight)
        if self.bias is not None:
            zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """Group normalisation (Wu & He 2018; torch.nn.GroupNorm): per sample, each of
    ``num_groups`` channel groups normalised by its mean and biased variance, then a learnt
    per-channel scale (ones) and shift (zeros). Independent of the batch size.

    Shape: (N, C, *) -> same
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, bias: bool = True, dtype: Any = np.float32) -> None:
        super().__init__()
        self.num_groups = positive_int("GroupNorm", "num_groups", num_groups)
        self.num_channels = positive_int("GroupNorm", "num_channels", num_channels)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.eps, self.affine = eps, affine
        if affine:
            self.weight = Parameter(np.empty(num_channels, dtype=dtype))
            self.register_parameter(
                "bias", Parameter(np.empty(num_channels, dtype=dtype)) if bias else None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self, rng: Any = None) -> None:
        """Weight to ones, bias to zeros (``rng`` is not needed)."""
        if self.affine:
            ones_(self.weight)
            if self.bias is not None:
                zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm({self.num_groups}, {self.num_channels}): expected "
                             f"input (N, {self.num_channels}, *), got {tuple(x.shape)}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")


class _InstanceNorm(_NormBase):
    """Instance normalisation; torch's defaults: no affine, no running stats."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, bias: bool = True,
                 dtype: Any = np.float32) -> None:
        if momentum is None:
            raise ValueError(f"{type(self).__name__}: momentum=None is not supported")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, bias, dtype)

    def forward(self, x: Tensor) -> Tensor:
        unbatched = x.ndim == min(self.ranks) - 1
        if unbatched:
            x = x.unsqueeze(0)
        if x.ndim not in self.ranks or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}): expected input of shape "
                f"{self.layout.format(C=self.num_features)}, got {tuple(x.shape)}"
            )
        # torch's instance norm never counts batches (num_batches_tracked stays 0)
        use_input_stats = self.training or not self.track_running_stats
        out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              use_input_stats, float(self.momentum or 0.0), self.eps)
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) (torch.nn.InstanceNorm1d): each sample and channel
    normalised over L. Shape: (N, C, L) or (C, L) -> same"""

    ranks = (3,)
    layout = "(N, {C}, L)"


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) (torch.nn.InstanceNorm2d; Ulyanov et al. 2016),
    the style-transfer normalisation. Shape: (N, C, H, W) or (C, H, W) -> same"""

    ranks = (4,)
    layout = "(N, {C}, H, W)"


class RMSNorm(Module):
    """Root-mean-square normalisation over the trailing ``normalized_shape`` dims with a learnt
    scale (Zhang & Sennrich 2019; torch.nn.RMSNorm; eps None: the dtype's machine epsilon).

    Shape: (*, *normalized_shape) -> same
    """

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float | None = None,
                 elementwise_affine: bool = True, dtype: Any = np.float32) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape = tuple(positive_int("RMSNorm", "normalized_shape", n)
                                      for n in shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.register_parameter(
            "weight", Parameter(np.empty(self.normalized_shape, dtype=dtype))
            if elementwise_affine else None)
        self.reset_parameters()

    def reset_parameters(self, rng: Any = None) -> None:
        """Weight to ones (``rng`` is not needed)."""
        if self.weight is not None:
            ones_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class LocalResponseNorm(Module):
    """Normalisation across neighbouring channels (torch.nn.LocalResponseNorm; AlexNet's).

    Shape: (N, C, *) -> same
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1.0) -> None:
        super().__init__()
        self.size = positive_int("LocalResponseNorm", "size", size)
        self.alpha, self.beta, self.k = alpha, beta, k

    def forward(self, x: Tensor) -> Tensor:
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of (N, C, D, H, W) per channel; see BatchNorm1d for the semantics.

    Shape: (N, C, D, H, W) -> same
    """

    ranks = (5,)
    layout = "(N, {C}, D, H, W)"


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W) (torch.nn.InstanceNorm3d).

    Shape: (N, C, D, H, W) or (C, D, H, W) -> same
    """

    ranks = (5,)
    layout = "(N, {C}, D, H, W)"
