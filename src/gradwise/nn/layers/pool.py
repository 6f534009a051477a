"""MaxPool2d and AvgPool2d over NCHW batches."""

from __future__ import annotations

from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.layers._utils import pair
from gradwise.nn.module import Module


class _Pool2d(Module):
    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        layer = type(self).__name__
        pair(layer, "kernel_size", kernel_size)
        if stride is not None:
            pair(layer, "stride", stride)
        pair(layer, "padding", padding, minimum=0)
        # kept as given (int or pair), like PyTorch's repr
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(
                f"{type(self).__name__}: expected input of shape (N, C, H, W), got "
                f"{tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Maximum over each kernel window; stride defaults to the kernel size.

    Shape:
        x: (N, C, H, W) -> (N, C, (H + 2 * padding - kh) // stride + 1, ...)
    """

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over each kernel window; stride defaults to the kernel size.

    Shape:
        x: (N, C, H, W) -> (N, C, (H + 2 * padding - kh) // stride + 1, ...)
    """

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)
