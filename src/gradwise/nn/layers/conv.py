"""Conv2d: 2-D cross-correlation over NCHW batches."""

from __future__ import annotations

from collections.abc import Callable
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
        kernel_size, stride, padding, dilation: an int or an (h, w) pair each.
        bias: learn a per-output-channel bias.
        init, rng: as for Linear (default: PyTorch's kaiming_uniform_(a=sqrt(5)) and
            U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias, fan_in = in_channels * kh * kw).

    Shape:
        x: (N, in_channels, H, W) -> (N, out_channels, H_out, W_out) with
        H_out = (H + 2 * padding - dilation * (kh - 1) - 1) // stride + 1 (W likewise).

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
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        init: str | Callable[..., Any] = "default",
        rng: Any = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        self.in_channels = positive_int("Conv2d", "in_channels", in_channels)
        self.out_channels = positive_int("Conv2d", "out_channels", out_channels)
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size)
        self.stride = pair("Conv2d", "stride", stride)
        self.padding = pair("Conv2d", "padding", padding, minimum=0)
        self.dilation = pair("Conv2d", "dilation", dilation)
        self._initializer = get_initializer(init, "Conv2d")
        shape = (out_channels, in_channels, *self.kernel_size)
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
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2d({self.in_channels}, {self.out_channels}): expected input of shape "
                f"(N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        return text
