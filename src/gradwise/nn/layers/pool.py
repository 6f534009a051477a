"""Pooling: max, average, power-average and adaptive pooling (1-d and 2-d), and unpooling."""

from __future__ import annotations

from typing import Any

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
    """Maximum over each kernel window; stride defaults to the kernel size (as PyTorch).

    Args:
        kernel_size, stride, padding: an int or an (h, w) pair each; the padding counts as
            -inf, so it is never the maximum.
        return_indices: the forward returns ``(values, indices)`` for ``MaxUnpool2d``.

    Shape:
        x: (N, C, H, W) -> (N, C, (H + 2 * padding - kh) // stride + 1, ...)

    Raises:
        ValueError: at construction, a kernel size or stride that is not a positive int or
            pair, a negative padding, ``dilation`` other than 1 or ``ceil_mode=True`` (not
            supported); at forward, an input that is not 4-D.
    """

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding)
        if pair("MaxPool2d", "dilation", dilation) != (1, 1) or ceil_mode:
            raise ValueError("MaxPool2d: dilation != 1 and ceil_mode=True are not supported")
        self.return_indices = return_indices

    def forward(self, x: Tensor) -> Any:
        self._check_input(x)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding,
                            return_indices=self.return_indices)


class AvgPool2d(_Pool2d):
    """Mean over each kernel window; stride defaults to the kernel size.

    Shape:
        x: (N, C, H, W) -> (N, C, (H + 2 * padding - kh) // stride + 1, ...)
    """

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class _Pool1d(Module):
    function: Any = None

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        return type(self).function(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool1d(_Pool1d):
    """Maximum over each window of (N, C, L) (torch.nn.MaxPool1d); ``return_indices=True``
    returns ``(values, indices)`` for ``MaxUnpool1d``.

    Shape: (N, C, L) -> (N, C, (L + 2 padding - kernel_size) // stride + 1)
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding)
        if dilation not in (1, (1,)) or ceil_mode:
            raise ValueError("MaxPool1d: dilation != 1 and ceil_mode=True are not supported")
        self.return_indices = return_indices

    def forward(self, x: Tensor) -> Any:
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding,
                            return_indices=self.return_indices)


class _MaxUnpool(Module):
    function: Any = None

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x: Tensor, indices: Any, output_size: Any = None) -> Tensor:
        return type(self).function(x, indices, self.kernel_size, self.stride, self.padding,
                                   output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpool):
    """Values put back at the indices MaxPool1d returned, zeros elsewhere
    (torch.nn.MaxUnpool1d). Shape: (N, C, l) -> (N, C, (l - 1) s - 2 p + k)"""

    function = staticmethod(F.max_unpool1d)


class MaxUnpool2d(_MaxUnpool):
    """Values put back at the indices MaxPool2d returned, zeros elsewhere (torch.nn.MaxUnpool2d;
    SegNet's decoder). Shape: (N, C, h, w) -> (N, C, (h - 1) s - 2 p + k, ...)"""

    function = staticmethod(F.max_unpool2d)


class AvgPool1d(_Pool1d):
    """Mean over each window of (N, C, L) (torch.nn.AvgPool1d, padded zeros counted).

    Shape: (N, C, L) -> (N, C, (L + 2 padding - kernel_size) // stride + 1)
    """

    function = staticmethod(F.avg_pool1d)


class _AdaptivePool(Module):
    function: Any = None

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return type(self).function(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePool):
    """Mean over torch's adaptive windows so the length becomes ``output_size``.

    Shape: (N, C, L) -> (N, C, output_size)
    """

    function = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptivePool):
    """Mean over torch's adaptive windows so (H, W) becomes ``output_size`` (e.g. 1 for global
    average pooling). Shape: (N, C, H, W) -> (N, C, out_h, out_w)
    """

    function = staticmethod(F.adaptive_avg_pool2d)


class _AdaptiveMaxPool(_AdaptivePool):
    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, x: Tensor) -> Any:
        return type(self).function(x, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """Max over adaptive windows (torch.nn.AdaptiveMaxPool1d).

    Shape: (N, C, L) -> (N, C, output_size)
    """

    function = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """Max over adaptive windows (torch.nn.AdaptiveMaxPool2d).

    Shape: (N, C, H, W) -> (N, C, out_h, out_w)
    """

    function = staticmethod(F.adaptive_max_pool2d)


class _LPPool(Module):
    function: Any = None

    def __init__(self, norm_type: float, kernel_size: Any, stride: Any = None,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type, self.kernel_size = norm_type, kernel_size
        self.stride, self.ceil_mode = stride, ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        return type(self).function(x, self.norm_type, self.kernel_size, self.stride,
                                   self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")


class LPPool1d(_LPPool):
    """Power-average pooling over (N, C, L) (torch.nn.LPPool1d; see ``F.lp_pool1d``)."""

    function = staticmethod(F.lp_pool1d)


class LPPool2d(_LPPool):
    """Power-average pooling over (N, C, H, W) (torch.nn.LPPool2d; see ``F.lp_pool2d``)."""

    function = staticmethod(F.lp_pool2d)
