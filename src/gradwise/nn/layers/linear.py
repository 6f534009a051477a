"""Linear: y = x W^T + b."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.init import get_initializer, reset_weight_and_bias_
from gradwise.nn.layers._utils import positive_int
from gradwise.nn.module import Module, Parameter


class Linear(Module):
    """Fully connected layer: y = x W^T + b, with W of shape (out_features, in_features).

    Args:
        in_features, out_features: sizes of each input and output sample.
        bias: learn an additive bias.
        init: "default" (PyTorch's: kaiming_uniform_(a=sqrt(5)) weight, bias
            U(-1/sqrt(in), 1/sqrt(in))), a name from ``nn.init.get_initializer`` or a callable
            ``init(weight, rng)``; non-default inits set the bias to zeros.
        rng: a numpy Generator or seed for the initial weights.

    Shape:
        x: (*, in_features) -> (*, out_features)

    Example:
        >>> fc = gw.nn.Linear(784, 10, rng=0)
        >>> fc(gw.zeros(32, 784)).shape
        (32, 10)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str | Callable[..., Any] = "default",
        rng: Any = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        self._initializer = get_initializer(init, "Linear")
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_features, dtype=dtype)) if bias
                                else None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """Draw fresh weights and bias from ``rng`` (a seed or Generator; default: the global one).

        The default is torch's: kaiming_uniform_(a=sqrt(5)) for the weight and
        U(-1/sqrt(in_features), 1/sqrt(in_features)) for the bias; ``initializer=`` replaces it.
        """
        reset_weight_and_bias_(self.weight, self.bias, self._initializer, rng)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear(in_features={self.in_features}, out_features={self.out_features}): "
                f"input of shape {tuple(x.shape)} does not end with {self.in_features} features"
            )
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
