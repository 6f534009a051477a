"""Flatten: merge a range of axes into one."""

from __future__ import annotations

from gradwise.autograd.tensor import Tensor
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
