"""Linear: y = x W^T + b."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.init import as_generator, get_initializer, reset_weight_and_bias_, uniform_
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


class NonDynamicallyQuantizableLinear(Linear):
    """A Linear under torch's name for MultiheadAttention's ``out_proj`` (torch uses it to keep
    that projection out of dynamic quantization); here it only makes the repr torch's.

    Shape and Raises: as :class:`Linear`.
    """


class Bilinear(Module):
    """``y_k = x1^T A_k x2 + b_k`` (torch.nn.Bilinear), weight (out, in1, in2).

    Initialised as torch's: weight and bias U(-1/sqrt(in1), 1/sqrt(in1)).

    Shape: x1 (*, in1_features), x2 (*, in2_features) -> (*, out_features)
    """

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, rng: Any = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.in1_features = positive_int("Bilinear", "in1_features", in1_features)
        self.in2_features = positive_int("Bilinear", "in2_features", in2_features)
        self.out_features = positive_int("Bilinear", "out_features", out_features)
        self.weight = Parameter(np.empty((out_features, in1_features, in2_features), dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_features, dtype=dtype)) if bias
                                else None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """Weight and bias U(-1/sqrt(in1_features), 1/sqrt(in1_features)) (torch's)."""
        generator = as_generator(rng)
        bound = 1.0 / np.sqrt(self.in1_features)
        uniform_(self.weight, -bound, bound, generator)
        if self.bias is not None:
            uniform_(self.bias, -bound, bound, generator)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.bilinear(x1, x2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class LazyLinear(Linear):
    """A Linear whose ``in_features`` is read from the first input (torch.nn.LazyLinear).

    Until then ``weight`` is an empty (out_features, 0) Parameter; the first forward (or a
    ``load_state_dict`` with a full weight) gives it its shape and torch's default
    initialisation in place, so an optimizer built before that call updates it. Best practice,
    as in torch: run one batch before building the optimizer.

    Shape: (*, in) -> (*, out_features)
    """

    def __init__(self, out_features: int, bias: bool = True, *, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        Module.__init__(self)
        self.in_features = 0
        self.out_features = positive_int("LazyLinear", "out_features", out_features)
        self._initializer = None
        self._rng = rng
        self.weight = Parameter(np.empty((out_features, 0), dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_features, dtype=dtype)) if bias
                                else None)

    def has_uninitialized_params(self) -> bool:
        """True until the input size is known."""
        return self.in_features == 0

    def initialize_parameters(self, in_features: int) -> None:
        """Give ``weight`` its (out_features, in_features) shape and torch's initialisation."""
        self.in_features = positive_int("LazyLinear", "in_features", in_features)
        self.weight._data = np.empty((self.out_features, in_features), self.weight._data.dtype)
        self.reset_parameters(self._rng)

    def _upgrade_state_dict(self, prefix: str, state_dict: dict[str, Any]) -> None:
        # a full weight in the dict decides the input size, as torch's lazy modules do
        weight = state_dict.get(prefix + "weight")
        if self.has_uninitialized_params() and weight is not None and np.ndim(weight) == 2:
            self.initialize_parameters(int(np.shape(weight)[1]))

    def forward(self, x: Tensor) -> Tensor:
        if self.has_uninitialized_params():
            if x.ndim == 0:
                raise ValueError("LazyLinear: the input needs a feature dim, got a 0-d tensor")
            self.initialize_parameters(int(x.shape[-1]))
        return super().forward(x)
