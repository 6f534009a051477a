"""Embedding: a lookup table of learnt vectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.init import as_generator, get_initializer, normal_
from gradwise.nn.layers._utils import positive_int
from gradwise.nn.module import Module, Parameter


class Embedding(Module):
    """Row ``i`` of ``weight`` (num_embeddings, embedding_dim) for each integer index ``i``.

    The gradient of a row sums over every position that looked it up.

    Args:
        init: "default" (N(0, 1), PyTorch's), another ``nn.init.get_initializer`` name, or a
            callable ``init(weight, rng)``.
        rng: a numpy Generator or seed for the initial weights.
        padding_idx: a row initialised to zeros whose lookups send no gradient (PyTorch's).

    Shape:
        indices: (*) integers in [0, num_embeddings) -> (*, embedding_dim)

    Example:
        >>> emb = gw.nn.Embedding(1000, 64, rng=0)
        >>> emb(np.array([[1, 2, 3]])).shape
        (1, 3, 64)
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        init: str | Callable[..., Any] = "default",
        rng: Any = None,
        dtype: Any = np.float32,
        padding_idx: int | None = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("Embedding", "embedding_dim", embedding_dim)
        self._initializer = get_initializer(init, "Embedding")
        self.padding_idx = (None if padding_idx is None
                            else F._padding_row("Embedding", padding_idx, num_embeddings))
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype))
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """Draw fresh rows from N(0, 1) (torch's default) or the given initializer, using ``rng``.
        """
        rng = as_generator(rng)
        if self._initializer is None:
            normal_(self.weight, 0.0, 1.0, rng)
        else:
            self._initializer(self.weight, rng)
        if self.padding_idx is not None:
            self.weight._data[self.padding_idx] = 0  # PyTorch zeroes the padding row

    def forward(self, indices: Any) -> Tensor:
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        extra = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{extra}"
