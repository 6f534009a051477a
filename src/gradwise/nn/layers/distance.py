"""CosineSimilarity and PairwiseDistance as modules (torch.nn's)."""

from __future__ import annotations

from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.module import Module


class CosineSimilarity(Module):
    """Cosine similarity of x1 and x2 along ``dim`` (see ``F.cosine_similarity``).

    Shape: (*, D, *) twice -> the broadcast shape without ``dim``
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """``||x1 - x2 + eps||_p`` over the last dim (torch.nn.PairwiseDistance).

    Shape: (N, D) twice -> (N,) (or (N, 1) with keepdim)
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
