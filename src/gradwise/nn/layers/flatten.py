"""Flatten and Unflatten (merge or split axes), Unfold and Fold (patches to columns and back)."""

from __future__ import annotations

from typing import Any

from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.module import Module


class Flatten(Module):
    """Flatten axes ``start_dim`` .. ``end_dim`` (inclusive) into one; keeps the batch axis.

    Shape:
        x: (N, C, H, W) -> (N, C * H * W) with the defaults.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        for name, dim in (("start_dim", self.start_dim), ("end_dim", self.end_dim)):
            if not -x.ndim <= dim < max(x.ndim, 1):
                raise ValueError(
                    f"Flatten: {name}={dim} is out of range for input of shape {tuple(x.shape)}"
                )
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (torch.nn.Unflatten; one entry may be -1).

    Shape: (*, prod(unflattened_size), *) -> (*, *unflattened_size, *)

    Raises:
        ValueError: the sizes do not multiply to the dim's length.
    """

    def __init__(self, dim: int, unflattened_size: tuple[int, ...]) -> None:
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        dim = self.dim % x.ndim if -x.ndim <= self.dim < x.ndim else None
        if dim is None:
            raise ValueError(f"Unflatten: dim={self.dim} is out of range for input of shape "
                             f"{tuple(x.shape)}")
        sizes = list(self.unflattened_size)
        known = 1
        for size in sizes:
            known *= size if size != -1 else 1
        if -1 in sizes:
            sizes[sizes.index(-1)] = x.shape[dim] // known if known else 0
        product = 1
        for size in sizes:
            product *= size
        if product != x.shape[dim]:
            raise ValueError(f"Unflatten: sizes {self.unflattened_size} do not multiply to "
                             f"{x.shape[dim]}, the size of dim {self.dim} of {tuple(x.shape)}")
        return x.reshape(*x.shape[:dim], *sizes, *x.shape[dim + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Unfold(Module):
    """Sliding patches as columns (torch.nn.Unfold; see ``F.unfold``).

    Shape: (N, C, H, W) -> (N, C * kh * kw, L)
    """

    def __init__(self, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
                 stride: Any = 1) -> None:
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Fold(Module):
    """Columns of patches summed back into an image (torch.nn.Fold; see ``F.fold``).

    Shape: (N, C * kh * kw, L) -> (N, C, *output_size)
    """

    def __init__(self, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
                 stride: Any = 1) -> None:
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.fold(x, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")
