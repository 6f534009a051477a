"""Activation functions as modules (so they show up in Sequential, repr and summary)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd._args import dim_arg
from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.layers._utils import positive_int
from gradwise.nn.module import Module, Parameter


def _with_inplace(text: str, inplace: bool) -> str:
    """torch's activation reprs: ``inplace=True`` appended only when set."""
    if not inplace:
        return text
    return f"{text}, inplace=True" if text else "inplace=True"


class _InplaceFlag(Module):
    """An activation whose torch constructor takes ``inplace``: stored and shown in the repr as
    torch does; the result is always a new tensor and the input is left unchanged
    (docs/PORTING.md)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = bool(inplace)

    def extra_repr(self) -> str:
        return _with_inplace("", self.inplace)


class ReLU(_InplaceFlag):
    """max(0, x) elementwise, as ``torch.nn.ReLU``. Shape: any, output like the input.
    ``inplace`` is accepted (see :class:`_InplaceFlag`)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class LeakyReLU(_InplaceFlag):
    """x for x > 0, negative_slope * x otherwise."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__(inplace)
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return _with_inplace(f"negative_slope={self.negative_slope}", self.inplace)


class ELU(_InplaceFlag):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__(inplace)
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return _with_inplace(f"alpha={self.alpha}", self.inplace)


class GELU(Module):
    """x * Phi(x); ``approximate="tanh"`` uses the tanh form."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """tanh(x) elementwise, as ``torch.nn.Tanh``. Shape: any, output like the input."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Softmax(Module):
    """exp(x) / sum(exp(x)) along ``dim`` (NumPy alias ``axis``; default -1)."""

    def __init__(self, dim: int | None = None, axis: int | None = None) -> None:
        super().__init__()
        self.axis = dim_arg(type(self).__name__, dim, axis, -1)
        # torch's attribute and repr keep what was given (None: the implicit dim; gradwise
        # uses the last one, docs/PORTING.md)
        self.dim = dim if dim is not None else axis

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log(softmax(x)) along ``dim`` (NumPy alias ``axis``; default -1), computed stably."""

    def __init__(self, dim: int | None = None, axis: int | None = None) -> None:
        super().__init__()
        self.axis = dim_arg(type(self).__name__, dim, axis, -1)
        self.dim = dim if dim is not None else axis  # as given, like torch's (see Softmax)

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class SiLU(_InplaceFlag):
    """x * sigmoid(x)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class Hardtanh(_InplaceFlag):
    """x clamped into [min_val, max_val]."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0,
                 inplace: bool = False) -> None:
        super().__init__(inplace)
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x: Tensor) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return _with_inplace(f"min_val={self.min_val}, max_val={self.max_val}", self.inplace)


class ReLU6(_InplaceFlag):
    """min(max(x, 0), 6)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu6(x)


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` (see ``F.softplus``)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. for a removed head); any constructor
    arguments are ignored, as in PyTorch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


class _Elementwise(Module):
    """An activation without arguments: ``forward`` applies ``function`` (set by subclasses)."""

    function: Any = None

    def forward(self, x: Tensor) -> Tensor:
        return type(self).function(x)


class _ElementwiseInplace(_Elementwise):
    """An activation whose torch constructor takes ``inplace`` (accepted; results are new)."""

    #: whether torch's repr of this module shows ``inplace=True`` (SELU, Mish: yes; Hardsigmoid,
    #: Hardswish: no)
    _repr_inplace = False

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = bool(inplace)

    def extra_repr(self) -> str:
        return _with_inplace("", self.inplace and self._repr_inplace)


class Hardsigmoid(_ElementwiseInplace):
    """0 below -3, 1 above 3, x / 6 + 1 / 2 between (torch.nn.Hardsigmoid). Shape: any."""

    function = staticmethod(F.hardsigmoid)


class Hardswish(_ElementwiseInplace):
    """x * hardsigmoid(x) (torch.nn.Hardswish, MobileNetV3). Shape: any."""

    function = staticmethod(F.hardswish)


class Mish(_ElementwiseInplace):
    """x * tanh(softplus(x)) (torch.nn.Mish). Shape: any."""

    function = staticmethod(F.mish)
    _repr_inplace = True


class Softsign(_Elementwise):
    """x / (1 + |x|) (torch.nn.Softsign). Shape: any."""

    function = staticmethod(F.softsign)


class Tanhshrink(_Elementwise):
    """x - tanh(x) (torch.nn.Tanhshrink). Shape: any."""

    function = staticmethod(F.tanhshrink)


class LogSigmoid(_Elementwise):
    """log(sigmoid(x)), stable (torch.nn.LogSigmoid). Shape: any."""

    function = staticmethod(F.logsigmoid)


class SELU(_ElementwiseInplace):
    """scale * elu(x, alpha) with Klambauer et al.'s constants (torch.nn.SELU). Shape: any."""

    function = staticmethod(F.selu)
    _repr_inplace = True


class _AlphaActivation(Module):
    """Base of the one-alpha activations."""

    function: Any = None

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return type(self).function(x, self.alpha)

    def extra_repr(self) -> str:
        return _with_inplace(f"alpha={self.alpha}", self.inplace)


class CELU(_AlphaActivation):
    """max(0, x) + min(0, alpha (exp(x / alpha) - 1)) (torch.nn.CELU). Shape: any."""

    function = staticmethod(F.celu)


class Threshold(Module):
    """x where x > threshold, else value (torch.nn.Threshold). Shape: any."""

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold, self.value = threshold, value
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.threshold(x, self.threshold, self.value)

    def extra_repr(self) -> str:
        return _with_inplace(f"threshold={self.threshold}, value={self.value}", self.inplace)


class _Shrink(Module):
    function: Any = None

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, x: Tensor) -> Tensor:
        return type(self).function(x, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Hardshrink(_Shrink):
    """x where |x| > lambd, else 0 (torch.nn.Hardshrink). Shape: any."""

    function = staticmethod(F.hardshrink)


class Softshrink(_Shrink):
    """x -+ lambd outside [-lambd, lambd], 0 inside (torch.nn.Softshrink). Shape: any."""

    function = staticmethod(F.softshrink)


class GLU(Module):
    """a * sigmoid(b) for the two halves of ``dim`` (torch.nn.GLU).

    Shape: (*, 2n, *) -> (*, n, *)
    """

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.glu(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmin(Module):
    """softmax(-x) along ``dim`` (torch.nn.Softmin; default the last dim). Shape: any."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmin(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax2d(Module):
    """Softmax over the channels of each location (torch.nn.Softmax2d).

    Shape: (N, C, H, W) or (C, H, W) -> same
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected (N, C, H, W) or (C, H, W), got "
                             f"{tuple(x.shape)}")
        return F.softmax(x, -3)


class PReLU(Module):
    """x for x >= 0, a * x below, with a learnt slope per channel (He et al. 2015;
    torch.nn.PReLU).

    Args:
        num_parameters: 1 (one shared slope) or the input's channel count (dim 1).
        init: the initial slope (torch's default 0.25).

    Shape: (N, C, *) or any (num_parameters=1) -> same
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        self.num_parameters = positive_int("PReLU", "num_parameters", num_parameters)
        self.init = init
        self.weight = Parameter(np.empty(num_parameters, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self, rng: Any = None) -> None:
        """The slope to ``init`` (``rng`` is not needed)."""
        self.weight._data[...] = self.init

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Randomized leaky ReLU (torch.nn.RReLU): slopes drawn from U(lower, upper) per element in
    training (from the default generator), the mean slope in evaluation. Shape: any."""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
                 inplace: bool = False) -> None:
        super().__init__()
        if lower > upper:
            raise ValueError(f"RReLU: lower ({lower}) must not exceed upper ({upper})")
        self.lower, self.upper = lower, upper
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.rrelu(x, self.lower, self.upper, self.training)

    def extra_repr(self) -> str:
        return _with_inplace(f"lower={self.lower}, upper={self.upper}", self.inplace)
