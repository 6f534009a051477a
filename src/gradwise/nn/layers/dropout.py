"""Dropout: inverted dropout with a Generator owned by the layer."""

from __future__ import annotations

from typing import Any

from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.init import as_generator
from gradwise.nn.module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` in training and scale the rest by 1/(1-p).

    In evaluation mode it is the identity. The mask comes from ``self.rng``, a numpy Generator
    owned by the layer (seed it with ``rng=``); ``Module.rng_state()`` / ``set_rng_state()``
    save and restore it with a checkpoint.

    Shape:
        any -> same

    Example:
        >>> drop = gw.nn.Dropout(0.2, rng=0)
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, rng: Any = None, *,
                 generator: Any = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.inplace = bool(inplace)  # PyTorch's flag; the output is always a new tensor
        self.rng = as_generator(rng, generator)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"
