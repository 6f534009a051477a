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
    ) -> None:
        super().__init__()
        self.num_embeddings = positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("Embedding", "embedding_dim", embedding_dim)
        self._initializer = get_initializer(init, "Embedding")
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype))
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        rng = as_generator(rng)
        if self._initializer is None:
            normal_(self.weight, 0.0, 1.0, rng)
        else:
            self._initializer(self.weight, rng)

    def forward(self, indices: Any) -> Tensor:
        return F.embedding(indices, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"
