"""Ready-made parametrizations, as ``torch.nn.utils.parametrizations``: ``weight_norm`` and
``spectral_norm``, built on :mod:`gradwise.nn.utils.parametrize` (torch's state-dict keys:
``parametrizations.weight.original0/1`` and ``parametrizations.weight.original`` with the
power-iteration vectors ``parametrizations.weight.0._u/_v``).
"""

from __future__ import annotations

import numpy as np

from gradwise.autograd.factories import randn
from gradwise.autograd.grad_mode import no_grad
from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.module import Module
from gradwise.nn.utils import parametrize

__all__ = ["norm_except_dim", "spectral_norm", "weight_norm"]


def norm_except_dim(v: Tensor, pow: float = 2, dim: int = 0) -> Tensor:  # noqa: A002
    """The ``pow``-norm of ``v`` over every dim but ``dim``, shaped 1 everywhere except at
    ``dim`` (aten's ``norm_except_dim``). ``dim=-1`` means the norm of the whole tensor
    (a 0-d result), torch's convention, not the last dim.

    Shape: (d0, ..., dn) -> (1, .., d_dim, .., 1); () for dim=-1.
    """
    if dim == -1:
        return v.norm(pow)
    dim = dim % v.ndim
    rows = v.movedim(dim, 0).reshape(v.shape[dim], -1)  # (d_dim, rest)
    shape = [1] * v.ndim
    shape[dim] = v.shape[dim]
    return rows.norm(pow, dim=1).reshape(*shape)


class _WeightNorm(Module):
    """weight = g * v / ||v|| (Salimans & Kingma, 2016), the norm over every dim but ``dim``;
    the originals are ``g`` (original0) and ``v`` (original1)."""

    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return weight_v * (weight_g / norm_except_dim(weight_v, 2, self.dim))

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize ``module.<name>`` as ``g * v / ||v||`` (torch's
    ``parametrizations.weight_norm``): ``g`` (``original0``, shaped 1 except at ``dim``) and
    ``v`` (``original1``) are learned.

    Args:
        module: the module; name: its parameter; dim: the dim kept out of the norm (0, the
            output dim of Linear and Conv; None: one norm for the whole tensor).

    Returns:
        ``module``.

    Example:
        >>> layer = weight_norm(gw.nn.Linear(20, 40))
        >>> layer.parametrizations.weight.original0.shape   # g: (40, 1)
    """
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


class _SpectralNorm(Module):
    """weight / sigma, sigma the largest singular value estimated by power iteration (Miyato et
    al., 2018), with torch's buffers ``_u`` (rows) and ``_v`` (columns) of the weight seen as a
    matrix with ``dim`` first; in training mode each access runs ``n_power_iterations`` more
    iterations. A 1-d weight is divided by its norm."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError("Dimension out of range (expected to be in range of "
                             f"[-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            weight_mat = self._reshape_weight_to_matrix(weight.detach())
            rows, cols = weight_mat.shape
            # random starting vectors from the default generator (gw.manual_seed), as torch
            u = randn(rows, dtype=weight._data.dtype)
            v = randn(cols, dtype=weight._data.dtype)
            self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
            self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
            self._power_method(weight_mat, 15)

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.flatten(1)  # (d_dim, rest)

    def _power_method(self, weight_mat: Tensor, n_power_iterations: int) -> None:
        with no_grad():
            matrix = weight_mat._data
            u, v = self._u._data, self._v._data
            for _ in range(n_power_iterations):
                u[...] = _normalized(matrix @ v, self.eps)
                v[...] = _normalized(matrix.T @ u, self.eps)
            self._u._version[0] += 1
            self._v._version[0] += 1

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = (u * (weight_mat @ v)).sum()
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def _normalized(vector: np.ndarray, eps: float) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), eps)


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Divide ``module.<name>`` by its spectral norm (torch's
    ``parametrizations.spectral_norm``), estimated by power iteration that advances
    ``n_power_iterations`` steps at each access in training mode.

    Args:
        module: the module; name: its parameter or buffer.
        n_power_iterations: power-iteration steps per access (training mode), > 0.
        eps: floor of the norms in the normalisations.
        dim: the output dim (default 1 for ConvTranspose layers, else 0).

    Returns:
        ``module``.

    Raises:
        ValueError: no tensor ``name`` or n_power_iterations <= 0. IndexError: ``dim`` out
            of range.
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{type(module).__name__}' has no parameter or buffer with "
                         f"name '{name}'")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
