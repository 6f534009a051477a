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
        max_norm, norm_type: rows looked up with a larger norm are rescaled in place to it.

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
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Any = None,
        _freeze: bool = False,
        *,
        init: str | Callable[..., Any] = "default",
        rng: Any = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        if scale_grad_by_freq or sparse:
            raise ValueError("Embedding: scale_grad_by_freq and sparse are not supported "
                             "(docs/PORTING.md)")
        self.num_embeddings = positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("Embedding", "embedding_dim", embedding_dim)
        self._initializer = get_initializer(init, "Embedding")
        self.padding_idx = (None if padding_idx is None
                            else F._padding_row("Embedding", padding_idx, num_embeddings))
        self.max_norm, self.norm_type = max_norm, norm_type
        if _weight is None:
            self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype),
                                    requires_grad=not _freeze)
            self.reset_parameters(rng)
        else:
            values = _weight._data if isinstance(_weight, Tensor) else np.asarray(_weight)
            if values.shape != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight has shape {values.shape}, expected "
                                 f"{(num_embeddings, embedding_dim)}")
            self.weight = Parameter(np.array(values, copy=True), requires_grad=not _freeze)

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True,
                        padding_idx: int | None = None, max_norm: float | None = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """An Embedding holding a copy of the 2-D ``embeddings``, frozen by default (torch's).

        Raises:
            ValueError: ``embeddings`` is not 2-D.
        """
        values = embeddings._data if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        if values.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape "
                             f"{values.shape}")
        return cls(values.shape[0], values.shape[1], padding_idx, max_norm, norm_type,
                   scale_grad_by_freq, sparse, _weight=values, _freeze=freeze)

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
        return F.embedding(indices, self.weight, self.padding_idx, self.max_norm,
                           self.norm_type)

    def extra_repr(self) -> str:
        # torch's Embedding.extra_repr: the arguments that are not their defaults
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type}"
        return text


class EmbeddingBag(Module):
    """Sum, mean or max of the embeddings in each bag, without materialising the (B, L, dim)
    lookups' padding (torch.nn.EmbeddingBag); see ``F.embedding_bag`` for bags and offsets.

    Args:
        mode: "mean" (default), "sum" or "max". Other arguments as Embedding.

    Shape:
        input (B, L), or (n,) with offsets (B,) -> (B, embedding_dim)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm: float | None = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                 sparse: bool = False, _weight: Any = None, include_last_offset: bool = False,
                 padding_idx: int | None = None, *, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"EmbeddingBag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
        if scale_grad_by_freq or sparse:
            raise ValueError("EmbeddingBag: scale_grad_by_freq and sparse are not supported")
        self.num_embeddings = positive_int("EmbeddingBag", "num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("EmbeddingBag", "embedding_dim", embedding_dim)
        self.max_norm, self.norm_type, self.mode = max_norm, norm_type, mode
        self.include_last_offset = include_last_offset
        self.padding_idx = (None if padding_idx is None
                            else F._padding_row("EmbeddingBag", padding_idx, num_embeddings))
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype))
        if _weight is None:
            self.reset_parameters(rng)
        else:
            self.weight._data[...] = _weight._data if isinstance(_weight, Tensor) else _weight

    def reset_parameters(self, rng: Any = None) -> None:
        """N(0, 1) weights, the padding row zero (torch's)."""
        normal_(self.weight, 0.0, 1.0, as_generator(rng))
        if self.padding_idx is not None:
            self.weight._data[self.padding_idx] = 0

    def forward(self, input: Any, offsets: Any = None, per_sample_weights: Any = None) -> Tensor:
        return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                               mode=self.mode, per_sample_weights=per_sample_weights,
                               include_last_offset=self.include_last_offset,
                               padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"
