"""Weight initialisers with PyTorch's formulas; each fills a tensor in place from a Generator.

Every function takes ``rng``: a ``numpy.random.Generator`` (advanced by the call) or a seed
(the same seed gives the same values); None draws fresh entropy. The tensor's ``.data`` is
overwritten (no graph is recorded) and the tensor is returned.

Example:
    >>> w = gw.nn.Parameter(np.empty((128, 784), dtype=np.float32))
    >>> gw.nn.init.kaiming_normal_(w, nonlinearity="relu", rng=0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from gradwise.autograd import random as _random
from gradwise.autograd.tensor import Tensor

__all__ = [
    "as_generator",
    "calculate_gain",
    "constant_",
    "get_initializer",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "reset_weight_and_bias_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def as_generator(rng: Any = None, generator: Any = None) -> np.random.Generator:
    """The NumPy stream for ``rng``/``generator``: a ``gw.Generator`` or numpy Generator itself,
    a new stream seeded by an int, and the default generator's stream (``gw.manual_seed``) for
    None, so layers built without ``rng=`` are reproducible after ``gw.manual_seed``."""
    return _random.resolve(generator, rng, "init")


def _fill(tensor: Tensor, values: Any) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init: expected a gradwise Tensor, got {type(tensor).__name__}")
    tensor._data[...] = values
    tensor._version[0] += 1  # a graph that saved the old values must not backprop through them
    return tensor


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain PyTorch recommends for a nonlinearity (scales the init's standard deviation).

    linear/conv*/sigmoid: 1, tanh: 5/3, relu: sqrt(2), leaky_relu: sqrt(2 / (1 + slope^2))
    (slope ``param``, default 0.01), selu: 3/4.
    """
    linear_fns = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d", "sigmoid")
    if nonlinearity in linear_fns:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, int | float):
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a number")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fans(tensor: Tensor, name: str) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight laid out (out, in, *kernel) as in PyTorch."""
    if tensor.ndim < 2:
        raise ValueError(
            f"{name}: fan in and fan out need a tensor with at least 2 dimensions, got shape "
            f"{tensor.shape}"
        )
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: Tensor, mode: str, name: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(tensor, name)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, rng: Any = None,
            generator: Any = None) -> Tensor:
    """Fill with U(a, b)."""
    return _fill(tensor, as_generator(rng, generator).uniform(a, b, tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, rng: Any = None,
            generator: Any = None) -> Tensor:
    """Fill with N(mean, std^2)."""
    return _fill(tensor, as_generator(rng, generator).normal(mean, std, tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    return _fill(tensor, val)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with zeros in place (no graph recorded) and return it, as
    ``torch.nn.init``'s.
    """
    return _fill(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with ones in place (no graph recorded) and return it, as ``torch.nn.init``'s.
    """
    return _fill(tensor, 1)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, rng: Any = None,
            generator: Any = None) -> Tensor:
    """Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, as_generator(rng, generator))


def xavier_normal_(tensor: Tensor, gain: float = 1.0, rng: Any = None,
            generator: Any = None) -> Tensor:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor, "xavier_normal_")
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)),
                   as_generator(rng, generator))


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    rng: Any = None,
    generator: Any = None,
) -> Tensor:
    """He uniform: U(-b, b), b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a)."""
    fan = _fan(tensor, mode, "kaiming_uniform_")
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, as_generator(rng, generator))


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    rng: Any = None,
    generator: Any = None,
) -> Tensor:
    """He normal: N(0, std^2), std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    fan = _fan(tensor, mode, "kaiming_normal_")
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan),
                   as_generator(rng, generator))


#: the ``init=`` names a layer accepts besides "default"; each fills the weight, biases get zeros
_NAMED: dict[str, Callable[[Tensor, np.random.Generator], Tensor]] = {
    "xavier_uniform": lambda w, rng: xavier_uniform_(w, rng=rng),
    "xavier_normal": lambda w, rng: xavier_normal_(w, rng=rng),
    "kaiming_uniform": lambda w, rng: kaiming_uniform_(w, nonlinearity="relu", rng=rng),
    "kaiming_normal": lambda w, rng: kaiming_normal_(w, nonlinearity="relu", rng=rng),
    "normal": lambda w, rng: normal_(w, 0.0, 0.01, rng=rng),
    "zeros": lambda w, rng: zeros_(w),
}


def get_initializer(
    init: str | Callable[..., Any], layer: str = "layer"
) -> Callable[..., Any] | None:
    """Resolve a layer's ``init=`` argument: None for "default", else ``fn(weight, rng)``.

    Names: "default" (PyTorch's own init for that layer), "xavier_uniform", "xavier_normal",
    "kaiming_uniform" and "kaiming_normal" (relu gain, fan_in), "normal" (N(0, 0.01^2)), "zeros".
    A callable is called as ``init(weight, rng)`` with the layer's Generator.
    """
    if callable(init):
        return init
    if init == "default":
        return None
    if init not in _NAMED:
        choices = ", ".join(["default", *_NAMED])
        raise ValueError(f"{layer}: unknown init {init!r}; choose one of {choices} or a callable")
    return _NAMED[init]


def reset_weight_and_bias_(
    weight: Tensor,
    bias: Tensor | None,
    initializer: Callable[..., Any] | None,
    rng: Any = None,
) -> None:
    """Initialise a Linear/Conv weight and bias: PyTorch's default when ``initializer`` is None.

    PyTorch's default: weight ``kaiming_uniform_(a=sqrt(5))``, i.e. U(-1/sqrt(fan_in),
    1/sqrt(fan_in)), and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)). With an initializer (from
    ``get_initializer``) the weight is filled by it and the bias is set to zeros.
    """
    rng = as_generator(rng)
    if initializer is None:
        kaiming_uniform_(weight, a=math.sqrt(5), rng=rng)
        if bias is not None:
            fan_in, _ = _fans(weight, "reset_parameters")
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            uniform_(bias, -bound, bound, rng)
        return
    initializer(weight, rng)
    if bias is not None:
        zeros_(bias)
