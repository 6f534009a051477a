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
        return f"p={self.p}, inplace={self.inplace}"  # torch's form


class _FeatureDropout(Dropout):
    """Channel dropout: whole channels zeroed (Tompson et al. 2015), its Generator the layer's."""

    function: Any = None

    def forward(self, x: Tensor) -> Tensor:
        return type(self).function(x, self.p, self.training, generator=self.rng)


class Dropout1d(_FeatureDropout):
    """Zero whole channels of (N, C, L) with probability p in training (torch.nn.Dropout1d).

    Shape: (N, C, L) or (C, L) -> same
    """

    function = staticmethod(F.dropout1d)


class Dropout2d(_FeatureDropout):
    """Zero whole feature maps of (N, C, H, W) with probability p in training
    (torch.nn.Dropout2d). Shape: (N, C, H, W) or (C, H, W) -> same
    """

    function = staticmethod(F.dropout2d)


class Dropout3d(_FeatureDropout):
    """Zero whole channels of (N, C, D, H, W) with probability p in training
    (torch.nn.Dropout3d). Shape: (N, C, D, H, W) or (C, D, H, W) -> same
    """

    function = staticmethod(F.dropout3d)


class AlphaDropout(_FeatureDropout):
    """Dropout for SELU networks, keeping zero mean and unit variance (torch.nn.AlphaDropout;
    Klambauer et al. 2017). Shape: any -> same
    """

    function = staticmethod(F.alpha_dropout)


class FeatureAlphaDropout(_FeatureDropout):
    """Alpha dropout of whole channels (torch.nn.FeatureAlphaDropout). Shape: (N, C, *) -> same
    """

    function = staticmethod(F.feature_alpha_dropout)
