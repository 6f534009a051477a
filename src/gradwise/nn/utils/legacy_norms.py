"""The older, hook-based ``torch.nn.utils.weight_norm`` and ``spectral_norm``: the weight is
recomputed by a forward pre-hook before every call, from parameters with torch's names
(``weight_g``/``weight_v``; ``weight_orig`` with buffers ``weight_u``/``weight_v``), so their
state dicts load both ways. New code should use :mod:`gradwise.nn.utils.parametrizations`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from gradwise.autograd.factories import randn
from gradwise.autograd.grad_mode import no_grad
from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.module import Module, Parameter
from gradwise.nn.utils.parametrizations import norm_except_dim

__all__ = ["remove_spectral_norm", "remove_weight_norm", "spectral_norm", "weight_norm"]


class _WeightNormHook:
    """Forward pre-hook: ``module.<name> = g * v / ||v||`` before each call."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim

    def compute_weight(self, module: Module) -> Tensor:
        g, v = getattr(module, self.name + "_g"), getattr(module, self.name + "_v")
        return v * (g / norm_except_dim(v, 2, self.dim))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module))


def _find_hook(module: Module, kind: type, name: str) -> tuple[Any, Any]:
    """(key, hook) of ``module``'s forward pre-hook of class ``kind`` on ``name``, or Nones."""
    for key, hook in module._forward_pre_hooks.items():
        if isinstance(hook, kind) and getattr(hook, "name", None) == name:
            return key, hook
    return None, None


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Split ``module.<name>`` into ``<name>_g`` (the norms, shaped 1 except at ``dim``) and
    ``<name>_v`` (the direction), recomputing ``<name> = g * v / ||v||`` before every forward
    (torch's deprecated ``nn.utils.weight_norm``; it warns as torch does).

    Raises:
        RuntimeError: weight norm is already registered on ``name``.
        ValueError: ``module`` has no parameter ``name``.
    """
    warnings.warn("`gradwise.nn.utils.weight_norm` is deprecated in favor of "
                  "`gradwise.nn.utils.parametrizations.weight_norm`.", FutureWarning,
                  stacklevel=2)
    if _find_hook(module, _WeightNormHook, name)[1] is not None:
        raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
    weight = module.__dict__["_parameters"].get(name)
    if weight is None:
        raise ValueError(f"weight_norm: {type(module).__name__} has no parameter {name!r}")
    hook = _WeightNormHook(name, -1 if dim is None else dim)
    with no_grad():
        g = norm_except_dim(weight, 2, hook.dim)
    del module._parameters[name]
    module.register_parameter(name + "_g", Parameter(g._data.copy()))
    module.register_parameter(name + "_v", Parameter(weight._data))
    setattr(module, name, hook.compute_weight(module))
    module.register_forward_pre_hook(hook)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`weight_norm`: ``<name>`` becomes one parameter again (its current value).

    Raises:
        ValueError: no weight norm on ``name``.
    """
    key, hook = _find_hook(module, _WeightNormHook, name)
    if hook is None:
        raise ValueError(f"weight_norm of '{name}' not found in {type(module).__name__}")
    with no_grad():
        weight = hook.compute_weight(module)
    module.__dict__.pop(name, None)
    del module._parameters[name + "_g"]
    del module._parameters[name + "_v"]
    module.register_parameter(name, Parameter(weight._data.copy()))
    del module._forward_pre_hooks[key]
    return module


class _SpectralNormHook:
    """Forward pre-hook: ``module.<name> = <name>_orig / sigma`` before each call, sigma from
    the buffers ``<name>_u``/``<name>_v``, advanced by power iteration in training mode (torch's
    ``SpectralNorm``: v first, then u)."""

    def __init__(self, name: str, n_power_iterations: int, dim: int, eps: float) -> None:
        self.name, self.n_power_iterations, self.dim, self.eps = (name, n_power_iterations,
                                                                  dim, eps)

    def reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            matrix = weight_mat._data
            for _ in range(self.n_power_iterations):
                v._data[...] = _normalized(matrix.T @ u._data, self.eps)
                u._data[...] = _normalized(matrix @ v._data, self.eps)
            u._version[0] += 1
            v._version[0] += 1
        u, v = u.clone(), v.clone()
        sigma = (u * (weight_mat @ v)).sum()
        return weight / sigma

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module, module.training))


def _normalized(vector: np.ndarray, eps: float) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), eps)


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Divide ``module.<name>`` by its spectral norm before every forward (torch's hook-based
    ``nn.utils.spectral_norm``): the parameter becomes ``<name>_orig`` and the power-iteration
    vectors the buffers ``<name>_u``/``<name>_v`` (drawn from the default generator).

    Raises:
        RuntimeError: spectral norm is already registered on ``name``.
        ValueError: no parameter ``name``, or n_power_iterations <= 0.
    """
    if _find_hook(module, _SpectralNormHook, name)[1] is not None:
        raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter "
                           f"{name}")
    if n_power_iterations <= 0:
        raise ValueError("Expected n_power_iterations to be positive, but got "
                         f"n_power_iterations={n_power_iterations}")
    weight = module.__dict__["_parameters"].get(name)
    if weight is None:
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter {name!r}")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    hook = _SpectralNormHook(name, n_power_iterations, dim, eps)
    with no_grad():
        rows, cols = hook.reshape_weight_to_matrix(weight).shape
        dtype = weight._data.dtype
        u = F.normalize(randn(rows, dtype=dtype), dim=0, eps=eps)
        v = F.normalize(randn(cols, dtype=dtype), dim=0, eps=eps)
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    setattr(module, name, weight.detach())
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    module.register_forward_pre_hook(hook)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`spectral_norm`: ``<name>`` becomes one parameter (the normalised weight).

    Raises:
        ValueError: no spectral norm on ``name``.
    """
    key, hook = _find_hook(module, _SpectralNormHook, name)
    if hook is None:
        raise ValueError(f"spectral_norm of '{name}' not found in {type(module).__name__}")
    with no_grad():
        weight = hook.compute_weight(module, do_power_iteration=False)
    module.__dict__.pop(name, None)
    del module._parameters[name + "_orig"]
    del module._buffers[name + "_u"]
    del module._buffers[name + "_v"]
    module.register_parameter(name, Parameter(weight._data.copy()))
    del module._forward_pre_hooks[key]
    return module
