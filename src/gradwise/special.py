"""``torch.special`` for gradwise: ``gw.special.expit(x)``, ``gw.special.ndtr(x)`` ...

Every function is elementwise (softmax, log_softmax and logsumexp reduce along ``dim``),
differentiable, and takes a tensor or anything ``gw.tensor`` accepts; integer and bool input
is promoted to the default float dtype first, as in PyTorch. Values come from
``scipy.special`` (the same library scipy's users trust; PyTorch's CPU kernels agree with it to
float rounding); the local derivatives and their sources are in
:mod:`gradwise.autograd.ops.special` (Abramowitz and Stegun) or, for the ones built from other
ops, in the op they are built from.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd import dtypes as _dtypes
from gradwise.autograd.ops import special as _ops
from gradwise.autograd.tensor import Tensor, tensor

__all__ = ["digamma", "entr", "erf", "erfc", "erfcx", "erfinv", "exp2", "expit", "expm1",
           "gammaln", "i0", "i0e", "i1", "i1e", "log1p", "log_ndtr", "log_softmax", "logit",
           "logsumexp", "ndtr", "ndtri", "polygamma", "psi", "round", "sinc", "softmax",
           "xlog1py", "xlogy"]


def _float(input: Any) -> Tensor:  # noqa: A002 - torch's name
    x = input if isinstance(input, Tensor) else tensor(input)
    if x._data.dtype.kind not in "fc":
        x = x.to(_dtypes.get_default_dtype())
    return x


def expit(input: Any) -> Tensor:  # noqa: A002
    """The logistic sigmoid 1 / (1 + exp(-x)), as ``torch.special.expit``."""
    return _float(input).sigmoid()


def logit(input: Any, eps: float | None = None) -> Tensor:  # noqa: A002
    """log(p / (1 - p)), p clamped to [eps, 1 - eps] when ``eps`` is given."""
    return _float(input).logit(eps)


def erf(input: Any) -> Tensor:  # noqa: A002
    """The error function (2 / sqrt(pi)) int_0^x exp(-t^2) dt."""
    return _float(input).erf()


def erfc(input: Any) -> Tensor:  # noqa: A002
    """1 - erf(x), accurate where erf(x) is near 1."""
    return _float(input).erfc()


def erfinv(input: Any) -> Tensor:  # noqa: A002
    """The inverse error function on (-1, 1) (+-inf at +-1, NaN outside)."""
    return _float(input).erfinv()


def erfcx(input: Any) -> Tensor:  # noqa: A002
    """exp(x^2) erfc(x), finite where erfc underflows."""
    return _ops.Erfcx.apply(_float(input))


def gammaln(input: Any) -> Tensor:  # noqa: A002
    """log |Gamma(x)| (``torch.lgamma``)."""
    return _float(input).lgamma()


def digamma(input: Any) -> Tensor:  # noqa: A002
    """psi(x) = Gamma'(x) / Gamma(x) (also ``psi``)."""
    return _float(input).digamma()


psi = digamma


def polygamma(n: int, input: Any) -> Tensor:  # noqa: A002
    """The n-th derivative of digamma, psi^(n)(x) (n = 0: digamma), as
    ``torch.special.polygamma(n, input)``; differentiable to any order (the derivative of
    polygamma(n) is polygamma(n + 1), from ``scipy.special.polygamma``).

    Raises:
        ValueError: n is not a non-negative integer.
    """
    return _ops.Polygamma.apply(_float(input), n)


def i0(input: Any) -> Tensor:  # noqa: A002
    """The modified Bessel function of the first kind of order 0."""
    return _ops.I0.apply(_float(input))


def i0e(input: Any) -> Tensor:  # noqa: A002
    """exp(-|x|) I0(x), finite for large |x|."""
    return _ops.I0e.apply(_float(input))


def i1(input: Any) -> Tensor:  # noqa: A002
    """The modified Bessel function of the first kind of order 1."""
    return _ops.I1.apply(_float(input))


def i1e(input: Any) -> Tensor:  # noqa: A002
    """The scaled Bessel function exp(-|x|) I1(x), finite for large |x|."""
    return _ops.I1e.apply(_float(input))


def ndtr(input: Any) -> Tensor:  # noqa: A002
    """The standard normal CDF Phi(x)."""
    return _ops.Ndtr.apply(_float(input))


def ndtri(input: Any) -> Tensor:  # noqa: A002
    """The inverse of the standard normal CDF on (0, 1) (-inf at 0, inf at 1, NaN outside)."""
    return _ops.Ndtri.apply(_float(input))


def log_ndtr(input: Any) -> Tensor:  # noqa: A002
    """log Phi(x), accurate far in the left tail (where Phi underflows)."""
    return _ops.LogNdtr.apply(_float(input))


def entr(input: Any) -> Tensor:  # noqa: A002
    """-x log x elementwise (0 at 0, -inf for x < 0), the entropy term."""
    return _ops.Entr.apply(_float(input))


def sinc(input: Any) -> Tensor:  # noqa: A002
    """sin(pi x) / (pi x), 1 at 0 (the normalised sinc)."""
    return _float(input).sinc()


def xlogy(input: Any, other: Any) -> Tensor:  # noqa: A002
    """x log y, 0 where x is 0 (see ``Tensor.xlogy``)."""
    return _float(input).xlogy(other)


def xlog1py(input: Any, other: Any) -> Tensor:  # noqa: A002
    """x log(1 + y), 0 where x is 0 (unless y is NaN), as ``torch.special.xlog1py``;
    recorded: d/dx = log1p(y), d/dy = x / (1 + y)."""
    from gradwise.autograd.functional import where
    x = _float(input)
    y = other if isinstance(other, Tensor) else tensor(np.asarray(other, x._data.dtype))
    # where x is 0 and log1p(y) is not finite (y <= -1 or inf) the product is 0 by definition;
    # y is swapped for 0 there so no NaN/inf reaches the gradient
    undefined = (x._data == 0) & ((y._data <= -1) | (y._data == np.inf))
    safe_y = where(undefined, 0.0, y)
    return x * safe_y.log1p()


def expm1(input: Any) -> Tensor:  # noqa: A002
    """exp(x) - 1, accurate for small x."""
    return _float(input).expm1()


def exp2(input: Any) -> Tensor:  # noqa: A002
    """2 ** x elementwise."""
    return _float(input).exp2()


def log1p(input: Any) -> Tensor:  # noqa: A002
    """log(1 + x), accurate for small x."""
    return _float(input).log1p()


def round(input: Any, decimals: int = 0) -> Tensor:  # noqa: A001, A002 - torch's names
    """Round half to even (to ``decimals`` places), keeping the dtype, as ``torch.round``."""
    x = input if isinstance(input, Tensor) else tensor(input)
    return x.round(decimals)


def softmax(input: Any, dim: int, dtype: Any = None) -> Tensor:  # noqa: A002
    """Softmax along ``dim`` (the input cast to ``dtype`` first when given)."""
    x = _float(input)
    return (x.to(dtype) if dtype is not None else x).softmax(dim)


def log_softmax(input: Any, dim: int, dtype: Any = None) -> Tensor:  # noqa: A002
    """log(softmax) along ``dim``, computed stably (cast to ``dtype`` first when given)."""
    x = _float(input)
    return (x.to(dtype) if dtype is not None else x).log_softmax(dim)


def logsumexp(input: Any, dim: Any, keepdim: bool = False) -> Tensor:  # noqa: A002
    """log(sum(exp(x))) over ``dim``, computed stably."""
    return _float(input).logsumexp(dim, keepdim)
