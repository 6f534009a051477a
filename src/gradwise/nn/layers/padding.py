"""Padding layers (torch.nn.ZeroPad2d, ConstantPad1d, ReflectionPad2d, ...) over ``F.pad``."""

from __future__ import annotations

from typing import Any

from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.module import Module


class _Pad(Module):
    """``padding``: an int for every side or torch's tuple (left, right[, top, bottom])."""

    sides = 2
    mode = "constant"

    def __init__(self, padding: Any, value: float = 0.0) -> None:
        super().__init__()
        if isinstance(padding, int):
            padding = (padding,) * (2 * self.sides)
        padding = tuple(int(p) for p in padding)
        if len(padding) != 2 * self.sides:
            raise ValueError(f"{type(self).__name__}: padding must be an int or "
                             f"{2 * self.sides} ints, got {padding}")
        self.padding, self.value = padding, value

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, self.padding, self.mode, self.value)

    def extra_repr(self) -> str:
        # torch's: ConstantPadNd names both, ZeroPadNd and the index pads print the padding only
        if self.mode == "constant" and not isinstance(self, _ZeroPad):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


class ConstantPad1d(_Pad):
    """Pad the last dim with ``value``. Shape: (*, L) -> (*, L + left + right)."""

    sides = 1


class ConstantPad2d(_Pad):
    """Pad the last two dims with ``value``. Shape: (*, H, W) -> (*, H + t + b, W + l + r)."""


class _ZeroPad:
    """Marks the zero pads, which torch prints as ``ZeroPad2d((1, 1, 1, 1))``."""


class ZeroPad1d(_ZeroPad, ConstantPad1d):
    """Pad the last dim with zeros (torch.nn.ZeroPad1d)."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)


class ZeroPad2d(_ZeroPad, ConstantPad2d):
    """Pad the last two dims with zeros (torch.nn.ZeroPad2d)."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)


class _IndexPad(_Pad):
    """A padding layer that copies input elements: no fill value (torch's signature)."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding)


class ReflectionPad1d(_IndexPad):
    """Mirror the last dim without repeating the edge (torch.nn.ReflectionPad1d)."""

    sides, mode = 1, "reflect"


class ReflectionPad2d(_IndexPad):
    """Mirror the last two dims without repeating the edge (torch.nn.ReflectionPad2d)."""

    mode = "reflect"


class ReplicationPad1d(_IndexPad):
    """Repeat the edge of the last dim (torch.nn.ReplicationPad1d)."""

    sides, mode = 1, "replicate"


class ReplicationPad2d(_IndexPad):
    """Repeat the edges of the last two dims (torch.nn.ReplicationPad2d)."""

    mode = "replicate"


class CircularPad1d(_IndexPad):
    """Wrap the last dim around (torch.nn.CircularPad1d)."""

    sides, mode = 1, "circular"


class CircularPad2d(_IndexPad):
    """Wrap the last two dims around (torch.nn.CircularPad2d)."""

    mode = "circular"


class ConstantPad3d(_Pad):
    """Pad the last three dims with ``value`` (torch.nn.ConstantPad3d)."""

    sides = 3


class ZeroPad3d(_ZeroPad, ConstantPad3d):
    """Pad the last three dims with zeros (torch.nn.ZeroPad3d)."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)


class ReflectionPad3d(_IndexPad):
    """Mirror the last three dims (torch.nn.ReflectionPad3d)."""

    sides, mode = 3, "reflect"


class ReplicationPad3d(_IndexPad):
    """Repeat the edges of the last three dims (torch.nn.ReplicationPad3d)."""

    sides, mode = 3, "replicate"


class CircularPad3d(_IndexPad):
    """Wrap the last three dims around (torch.nn.CircularPad3d)."""

    sides, mode = 3, "circular"
