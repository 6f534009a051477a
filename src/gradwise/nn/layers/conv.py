"""Convolutions: Conv1d/2d/3d and ConvTranspose1d/2d/3d, one body each for every rank."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.init import get_initializer, reset_weight_and_bias_
from gradwise.nn.layers._utils import positive_int
from gradwise.nn.module import Module, Parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_LAYOUTS = {1: "L", 2: "H, W", 3: "D, H, W"}


def _tuple(layer: str, name: str, value: Any, rank: int, minimum: int = 1) -> tuple[int, ...]:
    """torch's _single/_pair/_triple with ``F``'s checks (an int or a tuple of ``rank`` ints, a
    1-tuple repeated, each at least ``minimum``; the error names the layer and argument)."""
    return F._sizes(layer, name, value, rank, minimum)


class _ConvNd(Module):
    """What Conv1d/2d/3d and ConvTranspose1d/2d/3d share: torch's argument checks, the weight
    and bias, initialisation and repr; ``rank`` is the number of spatial dims."""

    rank: ClassVar[int] = 2
    transposed: ClassVar[bool] = False

    def _setup(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any,
               padding: Any, dilation: Any, groups: Any, bias: bool, padding_mode: str,
               device: Any, dtype: Any, init: Any, rng: Any, output_padding: Any = 0) -> None:
        name, rank = type(self).__name__, self.rank
        if device is not None:
            from gradwise.autograd.device import check_device

            check_device(device, name)
        dtype = np.float32 if dtype is None else dtype
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        self.groups = groups
        self.kernel_size = _tuple(name, "kernel_size", kernel_size, rank)
        self.stride = _tuple(name, "stride", stride, rank)
        self.dilation = _tuple(name, "dilation", dilation, rank)
        if isinstance(padding, str):
            if self.transposed or padding not in ("valid", "same"):
                allowed = "an int or a tuple" + ("" if self.transposed else ", 'valid' or 'same'")
                raise ValueError(f"{name}: padding must be {allowed}, got {padding!r}")
            if padding == "same" and set(self.stride) != {1}:
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions (stride={self.stride}), as in torch")
            self.padding: Any = padding
        else:
            self.padding = _tuple(name, "padding", padding, rank, minimum=0)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        if self.transposed and padding_mode != "zeros":
            raise ValueError(f'{name}: Only "zeros" padding mode is supported (torch\'s '
                             f"rule), got {padding_mode!r}")
        self.padding_mode = padding_mode
        if self.transposed:
            self.output_padding = _tuple(name, "output_padding", output_padding, rank, 0)
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self._initializer = get_initializer(init, name)
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_channels, dtype=dtype)) if bias
                                else None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """Draw fresh weights and bias from ``rng`` (a seed or Generator; default: the global one).

        torch's default: kaiming_uniform_(a=sqrt(5)) for the weight and U(-1/sqrt(fan_in),
        1/sqrt(fan_in)) for the bias, fan_in = the weight's dim 1 times the kernel's elements
        (in_channels / groups for a convolution, out_channels / groups for a transposed one,
        as torch computes it); ``init=`` replaces it.
        """
        reset_weight_and_bias_(self.weight, self.bias, self._initializer, rng)

    def _check_input(self, x: Tensor) -> None:
        rank = self.rank
        if x.ndim not in (rank + 1, rank + 2) or x.shape[-rank - 1] != self.in_channels:
            layout = _LAYOUTS[rank]
            raise ValueError(
                f"{type(self).__name__}({self.in_channels}, {self.out_channels}): expected input "
                f"of shape (N, {self.in_channels}, {layout}) or ({self.in_channels}, {layout}), "
                f"got {tuple(x.shape)}")

    def extra_repr(self) -> str:
        return conv_extra_repr(self)


class _Conv(_ConvNd):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = np.float32,
        *,
        init: str | Callable[..., Any] = "default",
        rng: Any = None,
    ) -> None:
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                    bias, padding_mode, device, dtype, init, rng)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        function = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[self.rank]
        padding = self.padding
        if self.padding_mode != "zeros":  # pad by the mode first, then convolve without
            if isinstance(padding, str):
                totals = [0] * self.rank if padding == "valid" else [
                    d * (k - 1) for d, k in zip(self.dilation, self.kernel_size, strict=True)]
                before = [t // 2 for t in totals]
                after = [t - t // 2 for t in totals]
            else:
                before = after = list(padding)
            widths: list[int] = []
            for axis in reversed(range(self.rank)):  # F.pad's order: the last dim first
                widths += [before[axis], after[axis]]
            x = F.pad(x, tuple(widths), mode=self.padding_mode)
            padding = 0
        return function(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)


class Conv1d(_Conv):
    """1-D convolution (cross-correlation, as torch.nn.Conv1d) with weight
    (out_channels, in_channels / groups, kernel_size).

    Args:
        in_channels, out_channels: channels of the input and of the output.
        kernel_size, stride, dilation: an int (or 1-tuple) each.
        padding: an int, "valid" or "same" (stride 1; an odd total puts the extra zero after).
        groups: channel groups (``groups = in_channels`` is a depthwise convolution).
        bias: learn a per-output-channel bias.
        padding_mode: "zeros", "reflect", "replicate" or "circular" (torch's).
        device, dtype: torch's positions (only the CPU exists; dtype default float32).
        init, rng: keyword-only, gradwise's (default: torch's kaiming_uniform_(a=sqrt(5))
            weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias, fan_in = in_channels / groups
            * kernel_size).

    Shape:
        x: (N, in_channels, L) or (in_channels, L) -> (N, out_channels, L_out),
        L_out = (L + 2 padding - dilation (kernel_size - 1) - 1) // stride + 1

    Raises:
        ValueError / TypeError: at construction, torch's argument errors (channels, kernel,
            stride, dilation, groups, padding, padding_mode), each naming the argument; at
            forward, an input that is not (N, in_channels, L) or (in_channels, L).
    """

    rank = 1


class Conv2d(_Conv):
    """2-D convolution (cross-correlation, as in PyTorch) with weight (out, in / groups, kh, kw).

    Args:
        in_channels, out_channels: channels of the input and of the output.
        kernel_size, stride, dilation: an int or an (h, w) pair each.
        padding: an int or (h, w) pair, "valid" or "same" (stride 1), as torch's.
        groups: channel groups (torch's; ``groups = in_channels`` is a depthwise convolution);
            the weight is (out_channels, in_channels / groups, kh, kw).
        bias: learn a per-output-channel bias.
        padding_mode: "zeros", "reflect", "replicate" or "circular" (torch's).
        device, dtype: torch's positions (only the CPU exists; dtype default float32).
        init, rng: keyword-only, gradwise's (default: PyTorch's kaiming_uniform_(a=sqrt(5)) and
            U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias, fan_in = in_channels / groups * kh * kw).

    Shape:
        x: (N, in_channels, H, W) or unbatched (in_channels, H, W) ->
        (N, out_channels, H_out, W_out) with
        H_out = (H + 2 * padding - dilation * (kh - 1) - 1) // stride + 1 (W likewise).

    Raises:
        ValueError / TypeError: at construction, channels, kernel size, stride or dilation
            not positive ints (or pairs), a negative padding, groups not dividing the
            channels, an unknown padding string or padding_mode, an unknown ``init``; at
            forward, an input that is not (N, in_channels, H, W) (the error names both).

    Example:
        >>> conv = gw.nn.Conv2d(1, 8, kernel_size=3, padding=1, rng=0)
        >>> conv(gw.zeros(2, 1, 28, 28)).shape
        (2, 8, 28, 28)
    """

    rank = 2


class Conv3d(_Conv):
    """3-D convolution (cross-correlation, as torch.nn.Conv3d) with weight
    (out_channels, in_channels / groups, kd, kh, kw), e.g. over video or volumes.

    Args: as :class:`Conv2d`, with (d, h, w) triples for kernel_size, stride, padding and
    dilation.

    Shape:
        x: (N, in_channels, D, H, W) or (in_channels, D, H, W) -> (N, out_channels, D_out,
        H_out, W_out), each (L + 2 padding - dilation (k - 1) - 1) // stride + 1

    Raises:
        ValueError / TypeError: as :class:`Conv2d`.
    """

    rank = 3


def conv_extra_repr(layer: Module) -> str:
    """torch's ``_ConvNd.extra_repr``: channels, kernel_size and stride always; padding,
    dilation, output_padding, groups, bias=False and padding_mode only where not the default.
    """
    text = (f"{layer.in_channels}, {layer.out_channels}, kernel_size={layer.kernel_size}, "
            f"stride={layer.stride}")
    padding = layer.padding
    if isinstance(padding, str) or any(padding):
        text += f", padding={padding}"
    if any(d != 1 for d in getattr(layer, "dilation", ())):
        text += f", dilation={layer.dilation}"
    if any(getattr(layer, "output_padding", ())):
        text += f", output_padding={layer.output_padding}"
    if getattr(layer, "groups", 1) != 1:
        text += f", groups={layer.groups}"
    if layer.bias is None:
        text += ", bias=False"
    if getattr(layer, "padding_mode", "zeros") != "zeros":
        text += f", padding_mode={layer.padding_mode}"
    return text


class _ConvTranspose(_ConvNd):
    """Shared body of ConvTranspose1d/2d/3d: weight (in_channels, out_channels / groups,
    *kernel)."""

    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = np.float32, *, init: str | Callable[..., Any] = "default",
                 rng: Any = None) -> None:
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                    bias, padding_mode, device, dtype, init, rng, output_padding)

    def forward(self, x: Tensor, output_size: Any = None) -> Tensor:
        """Args: output_size: the output's spatial size (or the whole shape), which picks the
        output_padding as torch does; it must lie in [minimum, minimum + stride - 1]."""
        self._check_input(x)
        function = {1: F.conv_transpose1d, 2: F.conv_transpose2d,
                    3: F.conv_transpose3d}[self.rank]
        return function(x, self.weight, self.bias, self.stride, self.padding,
                        self._output_padding(x, output_size), self.groups, self.dilation)

    def _output_padding(self, x: Tensor, output_size: Any) -> tuple[int, ...]:
        """torch's ``_ConvTransposeNd._output_padding``."""
        if output_size is None:
            return self.output_padding
        rank = self.rank
        lead = x.ndim - rank
        wanted = [int(n) for n in output_size]
        if len(wanted) == lead + rank:
            wanted = wanted[lead:]
        if len(wanted) != rank:
            raise ValueError(f"{type(self).__name__}: output_size must have {rank} or "
                             f"{lead + rank} elements (got {len(wanted)})")
        smallest = [(int(x.shape[lead + d]) - 1) * self.stride[d] - 2 * self.padding[d]
                    + self.dilation[d] * (self.kernel_size[d] - 1) + 1 for d in range(rank)]
        largest = [low + s - 1 for low, s in zip(smallest, self.stride, strict=True)]
        if any(not low <= n <= high for n, low, high in zip(wanted, smallest, largest,
                                                            strict=True)):
            raise ValueError(f"{type(self).__name__}: requested an output size of "
                             f"{tuple(output_size)}, but valid sizes range from {smallest} to "
                             f"{largest} (for an input of {tuple(x.shape[lead:])})")
        return tuple(n - low for n, low in zip(wanted, smallest, strict=True))


class ConvTranspose1d(_ConvTranspose):
    """Transposed 1-D convolution (torch.nn.ConvTranspose1d), the adjoint of Conv1d.

    Shape: (N, C_in, L) or (C_in, L) -> (N, C_out, (L - 1) s - 2 p + d (k - 1)
    + output_padding + 1)

    Raises:
        ValueError / TypeError: torch's argument errors at construction (padding_mode other
            than "zeros" included); at forward, a wrong input or an output_size out of range.
    """

    rank = 1


class ConvTranspose2d(_ConvTranspose):
    """Transposed 2-D convolution (torch.nn.ConvTranspose2d), e.g. a decoder's learnt
    upsampling.

    Shape: (N, C_in, H, W) -> (N, C_out, (H - 1) s - 2 p + d (kh - 1) + output_padding + 1, ...)

    Raises:
        ValueError / TypeError: as :class:`ConvTranspose1d`.
    """

    rank = 2


class ConvTranspose3d(_ConvTranspose):
    """Transposed 3-D convolution (torch.nn.ConvTranspose3d).

    Shape: (N, C_in, D, H, W) -> (N, C_out, (D - 1) s - 2 p + d (kd - 1) + output_padding + 1,
    ...)

    Raises:
        ValueError / TypeError: as :class:`ConvTranspose1d`.
    """

    rank = 3
