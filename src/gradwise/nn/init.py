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
    "dirac_",
    "eye_",
    "get_initializer",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "orthogonal_",
    "reset_weight_and_bias_",
    "ones_",
    "sparse_",
    "trunc_normal_",
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


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight laid out (out, in, *kernel), as torch's helper of that
    name (which tutorials call to initialise a bias): ``in * prod(kernel)``,
    ``out * prod(kernel)``.

    Raises:
        ValueError: a tensor with fewer than 2 dims (torch's message).
    """
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 "
                         "dimensions")
    return _fans(tensor, "_calculate_fan_in_and_fan_out")


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



def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, rng: Any = None, generator: Any = None) -> Tensor:
    """Fill with N(mean, std^2) truncated to [a, b] (absolute bounds, as
    ``torch.nn.init.trunc_normal_``), by inverting the normal CDF on the uniform draws
    between the bounds' probabilities (``scipy.special.ndtr``/``ndtri``; exact, no rejection).

    Raises:
        ValueError: ``a`` >= ``b`` or ``std`` <= 0.
    """
    from scipy import special
    if not a < b or not std > 0:
        raise ValueError(f"trunc_normal_: need a < b and std > 0, got a={a}, b={b}, std={std}")
    low, high = special.ndtr((a - mean) / std), special.ndtr((b - mean) / std)
    uniform = as_generator(rng, generator).uniform(low, high, tensor.shape)
    return _fill(tensor, np.clip(mean + std * special.ndtri(uniform), a, b))


def orthogonal_(tensor: Tensor, gain: float = 1.0, rng: Any = None,
                generator: Any = None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2013), as
    ``torch.nn.init.orthogonal_``: the Q of a Gaussian matrix's QR, signs fixed by R's
    diagonal so the distribution is uniform; dims after the first are flattened.

    Raises:
        ValueError: fewer than 2 dims.
    """
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: needs at least 2 dims, got shape {tuple(tensor.shape)}")
    rows = tensor.shape[0]
    cols = tensor._data.size // rows if rows else 0
    flat = as_generator(rng, generator).normal(0.0, 1.0, (rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, (gain * q).reshape(tensor.shape))


def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, rng: Any = None,
            generator: Any = None) -> Tensor:
    """Fill a 2-d tensor with N(0, std^2) and zero ``ceil(sparsity * rows)`` random entries
    of each column (Martens 2010), as ``torch.nn.init.sparse_``.

    Raises:
        ValueError: not 2-d, or ``sparsity`` outside [0, 1].
    """
    if tensor.ndim != 2:
        raise ValueError(f"sparse_: needs a 2-d tensor, got shape {tuple(tensor.shape)}")
    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparse_: sparsity must be in [0, 1], got {sparsity}")
    stream = as_generator(rng, generator)
    rows, cols = tensor.shape
    values = stream.normal(0.0, std, (rows, cols))
    zeros = int(np.ceil(sparsity * rows))
    for col in range(cols):
        values[stream.permutation(rows)[:zeros], col] = 0
    return _fill(tensor, values)


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3-, 4- or 5-d convolution weight with the Dirac delta, so the convolution is the
    identity on as many channels as fit (per group), as ``torch.nn.init.dirac_``.

    Raises:
        ValueError: other dims, or out channels not divisible by ``groups``.
    """
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: needs a 3-, 4- or 5-d tensor, got shape {tuple(tensor.shape)}")
    out_channels = tensor.shape[0]
    if groups < 1 or out_channels % groups:
        raise ValueError(f"dirac_: out channels {out_channels} not divisible by groups {groups}")
    per_group = out_channels // groups
    values = np.zeros(tensor.shape, dtype=tensor._data.dtype)
    centre = tuple(n // 2 for n in tensor.shape[2:])
    for g in range(groups):
        for d in range(min(per_group, tensor.shape[1])):
            values[(g * per_group + d, d) + centre] = 1
    return _fill(tensor, values)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-d tensor with the identity (ones on the main diagonal), as
    ``torch.nn.init.eye_``.

    Raises:
        ValueError: not 2-d.
    """
    if tensor.ndim != 2:
        raise ValueError(f"eye_: needs a 2-d tensor, got shape {tuple(tensor.shape)}")
    return _fill(tensor, np.eye(*tensor.shape, dtype=tensor._data.dtype))


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
