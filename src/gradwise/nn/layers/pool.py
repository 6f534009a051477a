"""Pooling layers: max, average, power-average and adaptive pooling (1-d to 3-d), and unpooling.

Each keeps its arguments as torch keeps them (as given, or as torch's _single/_pair/_triple
tuples where torch converts them), so ``repr`` and attribute reads match torch's; the work is
the matching ``F`` function's, which checks the arguments.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.module import Module


def _as_tuple(value: Any, rank: int) -> tuple:
    """torch's _single/_pair/_triple: an int repeated ``rank`` times, a sequence as a tuple."""
    return tuple(value) if isinstance(value, tuple | list) else (value,) * rank


def _check_kernel(layer: str, rank: int, kernel_size: Any, stride: Any, padding: Any,
                  dilation: Any = 1) -> None:
    """The arguments' types and ranges checked at construction, not at the first forward."""
    for name, value, minimum in (("kernel_size", kernel_size, 1), ("stride", stride, 1),
                                 ("padding", padding, 0), ("dilation", dilation, 1)):
        if value is not None:
            F._sizes(layer, name, value, rank, minimum)


class _MaxPoolNd(Module):
    """torch's _MaxPoolNd: kernel_size, stride (default: kernel_size), padding, dilation as
    given; return_indices; ceil_mode."""

    rank: ClassVar[int] = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        _check_kernel(type(self).__name__, self.rank, kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, x: Tensor) -> Any:
        function = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[self.rank]
        return function(x, self.kernel_size, self.stride, self.padding, self.dilation,
                        ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Maximum over each window of (N, C, L) or (C, L) (torch.nn.MaxPool1d; see
    ``F.max_pool1d`` for the options); ``return_indices=True`` returns ``(values, indices)``
    for ``MaxUnpool1d``.

    Shape: (N, C, L) -> (N, C, (L + 2 padding - dilation (k - 1) - 1) // stride + 1), rounded
    up with ceil_mode

    Raises:
        ValueError / TypeError: bad kernel_size, stride, padding or dilation (at construction);
            at forward, another input rank, padding above half the kernel, an empty output.
    """

    rank = 1


class MaxPool2d(_MaxPoolNd):
    """Maximum over each kernel window; stride defaults to the kernel size (torch.nn.MaxPool2d).

    Args:
        kernel_size, stride, padding, dilation: an int or an (h, w) pair each; the padding
            counts as -inf, so it is never the maximum.
        return_indices: the forward returns ``(values, indices)`` for ``MaxUnpool2d``.
        ceil_mode: round the output size up (torch's rule for the last window).

    Shape:
        x: (N, C, H, W) or (C, H, W) -> (..., (H + 2 p - d (kh - 1) - 1) // s + 1, ...)

    Raises:
        ValueError / TypeError: bad kernel_size, stride, padding or dilation (at construction);
            at forward, another input rank, padding above half the kernel, an empty output.
    """

    rank = 2


class MaxPool3d(_MaxPoolNd):
    """Maximum over each (kd, kh, kw) window (torch.nn.MaxPool3d; options as MaxPool2d).

    Shape: (N, C, D, H, W) or (C, D, H, W) -> (..., D_out, H_out, W_out)

    Raises:
        ValueError / TypeError: as :class:`MaxPool2d`.
    """

    rank = 3


class _AvgPoolNd(Module):
    rank: ClassVar[int] = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__()
        _check_kernel(type(self).__name__, self.rank, kernel_size, stride, padding)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x: Tensor) -> Tensor:
        function = F.avg_pool2d if self.rank == 2 else F.avg_pool3d
        return function(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                        self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Mean over each window of (N, C, L) or (C, L) (torch.nn.AvgPool1d; kernel_size, stride
    and padding kept as 1-tuples, as torch).

    Args:
        ceil_mode: round the output length up; count_include_pad: padded zeros count in the
            divisor (default) or not.

    Shape: (N, C, L) -> (N, C, (L + 2 padding - kernel_size) // stride + 1)

    Raises:
        ValueError / TypeError: bad kernel_size, stride or padding (at construction); at
            forward, another input rank, padding above half the kernel, an empty output.
    """

    rank = 1

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.kernel_size = _as_tuple(kernel_size, 1)
        self.stride = _as_tuple(stride if stride is not None else kernel_size, 1)
        self.padding = _as_tuple(padding, 1)
        del self.divisor_override  # torch's AvgPool1d has none

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """Mean over each kernel window; stride defaults to the kernel size (torch.nn.AvgPool2d).

    Args:
        ceil_mode, count_include_pad, divisor_override: as ``F.avg_pool2d``.

    Shape:
        x: (N, C, H, W) or (C, H, W) -> (..., (H + 2 padding - kh) // stride + 1, ...)

    Raises:
        ValueError / TypeError: bad kernel_size, stride or padding (at construction); at
            forward, another input rank, padding above half the kernel, an empty output.
    """

    rank = 2


class AvgPool3d(_AvgPoolNd):
    """Mean over each (kd, kh, kw) window (torch.nn.AvgPool3d; options as AvgPool2d).

    Shape: (N, C, D, H, W) or (C, D, H, W) -> (..., D_out, H_out, W_out)

    Raises:
        ValueError / TypeError: as :class:`AvgPool2d`, and an input smaller than the kernel
            (torch's avg_pool3d check).
    """

    rank = 3


class _MaxUnpool(Module):
    rank: ClassVar[int] = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        _check_kernel(type(self).__name__, self.rank, kernel_size, stride, padding)
        self.kernel_size = _as_tuple(kernel_size, self.rank)
        self.stride = _as_tuple(stride if stride is not None else kernel_size, self.rank)
        self.padding = _as_tuple(padding, self.rank)

    def forward(self, x: Tensor, indices: Any, output_size: Any = None) -> Tensor:
        function = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}[self.rank]
        return function(x, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpool):
    """Values put back at the indices MaxPool1d returned, zeros elsewhere
    (torch.nn.MaxUnpool1d). Shape: (N, C, l) -> (N, C, (l - 1) s - 2 p + k) or output_size

    Raises:
        ValueError / TypeError: bad kernel_size, stride or padding (at construction); at
            forward, indices of another shape or outside the output, an output_size not
            within a stride of the default (see ``F.max_unpool1d``).
    """

    rank = 1


class MaxUnpool2d(_MaxUnpool):
    """Values put back at the indices MaxPool2d returned, zeros elsewhere (torch.nn.MaxUnpool2d;
    SegNet's decoder). Shape: (N, C, h, w) -> (N, C, (h - 1) s - 2 p + k, ...) or output_size

    Raises:
        ValueError / TypeError: as :class:`MaxUnpool1d`.
    """

    rank = 2


class MaxUnpool3d(_MaxUnpool):
    """Values put back at the indices MaxPool3d returned, zeros elsewhere
    (torch.nn.MaxUnpool3d). Shape: (N, C, d, h, w) -> (N, C, (d - 1) s - 2 p + k, ...)

    Raises:
        ValueError / TypeError: as :class:`MaxUnpool1d`.
    """

    rank = 3


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


class AdaptiveAvgPool3d(_AdaptivePool):
    """Mean over torch's adaptive windows so (D, H, W) becomes ``output_size``
    (torch.nn.AdaptiveAvgPool3d). Shape: (N, C, D, H, W) -> (N, C, out_d, out_h, out_w)
    """

    function = staticmethod(F.adaptive_avg_pool3d)


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


class AdaptiveMaxPool3d(_AdaptiveMaxPool):
    """Max over adaptive windows (torch.nn.AdaptiveMaxPool3d).

    Shape: (N, C, D, H, W) -> (N, C, out_d, out_h, out_w)
    """

    function = staticmethod(F.adaptive_max_pool3d)


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
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPool):
    """Power-average pooling over (N, C, L) (torch.nn.LPPool1d; see ``F.lp_pool1d``)."""

    function = staticmethod(F.lp_pool1d)


class LPPool2d(_LPPool):
    """Power-average pooling over (N, C, H, W) (torch.nn.LPPool2d; see ``F.lp_pool2d``)."""

    function = staticmethod(F.lp_pool2d)


class LPPool3d(_LPPool):
    """Power-average pooling over (N, C, D, H, W) (torch.nn.LPPool3d; see ``F.lp_pool3d``).

    Shape: (N, C, D, H, W) -> (N, C, (D - kd) // s + 1, ...) (rounded up with ceil_mode)
    """

    function = staticmethod(F.lp_pool3d)
