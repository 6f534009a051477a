"""Conv2d: 2-D cross-correlation over NCHW batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.init import get_initializer, reset_weight_and_bias_
from gradwise.nn.layers._utils import pair, positive_int
from gradwise.nn.module import Module, Parameter


class Conv2d(Module):
    """2-D convolution (cross-correlation, as in PyTorch) with weight (out, in, kh, kw).

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

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
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
        from gradwise.autograd.device import check_device

        if device is not None:
            check_device(device, "Conv2d")
        dtype = np.float32 if dtype is None else dtype
        self.in_channels = positive_int("Conv2d", "in_channels", in_channels)
        self.out_channels = positive_int("Conv2d", "out_channels", out_channels)
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size)
        self.stride = pair("Conv2d", "stride", stride)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"Conv2d: padding must be an int, a pair, 'valid' or 'same', "
                                 f"got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("Conv2d: padding='same' is not supported for strided "
                                 f"convolutions (stride={self.stride}), as in torch")
            self.padding: Any = padding
        else:
            self.padding = pair("Conv2d", "padding", padding, minimum=0)
        self.dilation = pair("Conv2d", "dilation", dilation)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or (
                in_channels % groups or out_channels % groups):
            raise ValueError(f"Conv2d: groups must be a positive int dividing in_channels "
                             f"({in_channels}) and out_channels ({out_channels}), got {groups!r}")
        self.groups = groups
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"Conv2d: padding_mode must be 'zeros', 'reflect', 'replicate' or "
                             f"'circular', got {padding_mode!r}")
        self.padding_mode = padding_mode
        self._initializer = get_initializer(init, "Conv2d")
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_channels, dtype=dtype)) if bias
                                else None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """Draw fresh weights and bias from ``rng`` (a seed or Generator; default: the global one).

        The default is torch's: kaiming_uniform_(a=sqrt(5)) for the weight and
        U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias; ``initializer=`` replaces it.
        """
        reset_weight_and_bias_(self.weight, self.bias, self._initializer, rng)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(
                f"Conv2d({self.in_channels}, {self.out_channels}): expected input of shape "
                f"(N, {self.in_channels}, H, W) or ({self.in_channels}, H, W), got "
                f"{tuple(x.shape)}"
            )
        padding = self.padding
        if self.padding_mode != "zeros":  # pad by the mode first, then convolve without
            if isinstance(padding, str):
                totals = [0, 0] if padding == "valid" else [
                    d * (k - 1) for d, k in zip(self.dilation, self.kernel_size, strict=True)]
                widths = (totals[1] // 2, totals[1] - totals[1] // 2,
                          totals[0] // 2, totals[0] - totals[0] // 2)
            else:
                widths = (padding[1], padding[1], padding[0], padding[0])
            x = F.pad(x, widths, mode=self.padding_mode)
            padding = (0, 0)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)

    def extra_repr(self) -> str:
        return conv_extra_repr(self)


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


def _as_int(layer: str, name: str, value: Any, minimum: int = 1) -> int:
    """An int or a 1-tuple (torch's _single) as an int, at least ``minimum``."""
    if isinstance(value, tuple | list):
        if len(value) != 1:
            raise TypeError(f"{layer}: {name} must be an int or a 1-tuple, got {value!r}")
        value = value[0]
    return pair(layer, name, value, minimum=minimum)[0]


class Conv1d(Module):
    """1-D convolution (cross-correlation) over (N, C, L), as torch.nn.Conv1d with groups=1.

    Args:
        in_channels, out_channels, kernel_size, stride, dilation, bias: torch's.
        padding: an int, "valid" or "same" (stride 1), as torch's.
        padding_mode: "zeros", "reflect", "replicate" or "circular" (torch's).
        init, rng: as for Linear (default: torch's kaiming_uniform_(a=sqrt(5)) weight and
            U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias, fan_in = in_channels * kernel_size).

    Shape:
        x: (N, in_channels, L) or (in_channels, L) -> (N, out_channels, L_out),
        L_out = (L + 2 padding - dilation (kernel_size - 1) - 1) // stride + 1
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", init: str | Callable[..., Any] = "default",
                 rng: Any = None, dtype: Any = np.float32) -> None:
        super().__init__()
        if groups != 1:
            raise ValueError(f"Conv1d: only groups=1 is supported, got groups={groups}")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"Conv1d: padding_mode must be 'zeros', 'reflect', 'replicate' or "
                             f"'circular', got {padding_mode!r}")
        self.in_channels = positive_int("Conv1d", "in_channels", in_channels)
        self.out_channels = positive_int("Conv1d", "out_channels", out_channels)
        self.kernel_size = (_as_int("Conv1d", "kernel_size", kernel_size),)
        self.stride = (_as_int("Conv1d", "stride", stride),)
        self.dilation = (_as_int("Conv1d", "dilation", dilation),)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Conv1d: padding must be an int, 'valid' or 'same', got "
                                 f"{padding!r}")
            if padding == "same" and self.stride != (1,):
                raise ValueError("Conv1d: padding='same' needs stride 1")
            self.padding: Any = padding
        else:
            self.padding = (_as_int("Conv1d", "padding", padding, 0),)
        self.padding_mode = padding_mode
        self._initializer = get_initializer(init, "Conv1d")
        self.weight = Parameter(np.empty((out_channels, in_channels, *self.kernel_size),
                                         dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_channels, dtype=dtype)) if bias
                                else None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """torch's kaiming_uniform_(a=sqrt(5)) weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        bias (or the ``init`` given)."""
        reset_weight_and_bias_(self.weight, self.bias, self._initializer, rng)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 3) or x.shape[-2] != self.in_channels:
            raise ValueError(
                f"Conv1d({self.in_channels}, {self.out_channels}): expected input of shape "
                f"(N, {self.in_channels}, L), got {tuple(x.shape)}"
            )
        if self.padding_mode == "zeros":
            return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        # torch's padding modes: pad the input that way first, then convolve without padding
        if self.padding == "valid":
            widths = (0, 0)
        elif self.padding == "same":
            total = self.dilation[0] * (self.kernel_size[0] - 1)
            widths = (total // 2, total - total // 2)
        else:
            widths = (self.padding[0], self.padding[0])
        padded = F.pad(x, widths, mode=self.padding_mode)
        return F.conv1d(padded, self.weight, self.bias, self.stride, 0, self.dilation)

    def extra_repr(self) -> str:
        return conv_extra_repr(self)


class _ConvTranspose(Module):
    """Shared body of ConvTranspose1d/2d: weight (in_channels, out_channels, *kernel)."""

    rank = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = "zeros",
                 init: str | Callable[..., Any] = "default", rng: Any = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        name = type(self).__name__
        if groups != 1 or padding_mode != "zeros":
            raise ValueError(f"{name}: only groups=1 and padding_mode='zeros' are supported, "
                             f"got groups={groups}, padding_mode={padding_mode!r}")
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        if self.rank == 1:
            def parse(n: str, v: Any, m: int = 1) -> tuple[int, ...]:
                return (_as_int(name, n, v, m),)
        else:
            def parse(n: str, v: Any, m: int = 1) -> tuple[int, ...]:
                return pair(name, n, v, minimum=m)
        self.kernel_size = parse("kernel_size", kernel_size)
        self.stride = parse("stride", stride)
        self.padding = parse("padding", padding, 0)
        self.output_padding = parse("output_padding", output_padding, 0)
        self.dilation = parse("dilation", dilation)
        self._initializer = get_initializer(init, name)
        self.weight = Parameter(np.empty((in_channels, out_channels, *self.kernel_size),
                                         dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_channels, dtype=dtype)) if bias
                                else None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """torch's: kaiming_uniform_(a=sqrt(5)) with fan_in = out_channels * kernel elements
        (the weight's dim 1, as torch computes it), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        reset_weight_and_bias_(self.weight, self.bias, self._initializer, rng)

    def forward(self, x: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        """``output_size`` (the spatial sizes, optionally with the batch and channel dims
        before them) picks the output padding that gives exactly that size, as torch's."""
        if x.ndim not in (self.rank + 1, self.rank + 2) or \
                x.shape[-self.rank - 1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}({self.in_channels}, {self.out_channels}): "
                             f"input {tuple(x.shape)} does not have {self.in_channels} channels")
        function = F.conv_transpose1d if self.rank == 1 else F.conv_transpose2d
        output_padding = (self.output_padding if output_size is None else
                          _output_padding(self, tuple(x.shape), output_size))
        return function(x, self.weight, self.bias, self.stride, self.padding,
                        output_padding, 1, self.dilation)

    def extra_repr(self) -> str:
        return conv_extra_repr(self)


def _output_padding(layer: _ConvTranspose, shape: tuple[int, ...],
                    output_size: Sequence[int]) -> tuple[int, ...]:
    """The output padding that makes ``layer``'s output ``output_size`` (torch's
    ``_ConvTransposeNd._output_padding``: each size must lie between the size with no
    output padding and that plus ``stride - 1``).

    Raises:
        ValueError: a wrong number of sizes, or a size outside that range (torch's messages).
    """
    rank = layer.rank
    leading = 2 if len(shape) == rank + 2 else 1
    if len(output_size) == leading + rank:
        output_size = output_size[leading:]
    sizes = tuple(int(n) for n in output_size)
    if len(sizes) != rank:
        raise ValueError(f"ConvTranspose{rank}D: for {len(shape)}D input, output_size must have "
                         f"{rank} or {leading + rank} elements (got {len(sizes)})")
    low = [(shape[leading + d] - 1) * layer.stride[d] - 2 * layer.padding[d]
           + layer.dilation[d] * (layer.kernel_size[d] - 1) + 1 for d in range(rank)]
    high = [low[d] + layer.stride[d] - 1 for d in range(rank)]
    if any(not low[d] <= sizes[d] <= high[d] for d in range(rank)):
        raise ValueError(f"requested an output size of {output_size}, but valid sizes range "
                         f"from {low} to {high} (for an input of {tuple(shape[leading:])})")
    return tuple(sizes[d] - low[d] for d in range(rank))


class ConvTranspose1d(_ConvTranspose):
    """Transposed 1-D convolution (torch.nn.ConvTranspose1d, groups=1).

    Shape: (N, C_in, L) -> (N, C_out, (L - 1) s - 2 p + d (k - 1) + output_padding + 1)
    """

    rank = 1


class ConvTranspose2d(_ConvTranspose):
    """Transposed 2-D convolution (torch.nn.ConvTranspose2d, groups=1), e.g. a decoder's
    learnt upsampling.

    Shape: (N, C_in, H, W) -> (N, C_out, (H - 1) s - 2 p + d (kh - 1) + output_padding + 1, ...)
    """

    rank = 2
