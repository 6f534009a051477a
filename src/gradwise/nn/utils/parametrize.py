"""Parametrizations: a module's tensor computed from other tensors on every access, as
``torch.nn.utils.parametrize``.

``register_parametrization(module, "weight", P())`` moves the parameter ``weight`` to
``module.parametrizations.weight.original`` (or ``original0``, ``original1``, ... when
``P.right_inverse`` returns several tensors) and makes ``module.weight`` a property that returns
``P()(original)``, recorded for autograd, so the gradient reaches the originals. Assigning
``module.weight = value`` stores ``P.right_inverse(value)``. The state-dict keys are torch's
(``parametrizations.weight.original``), so a parametrized torch model's state dict loads.

Example:
    >>> class Symmetric(gw.nn.Module):
    ...     def forward(self, x):
    ...         return x.triu() + x.triu(1).transpose(0, 1)
    >>> layer = gw.nn.Linear(3, 3)
    >>> parametrize.register_parametrization(layer, "weight", Symmetric())
    >>> with parametrize.cached():   # compute each parametrized tensor once in this block
    ...     out = layer(x) + layer(y)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from gradwise.autograd.grad_mode import no_grad
from gradwise.autograd.tensor import Tensor
from gradwise.nn.layers.container import ModuleDict, ModuleList
from gradwise.nn.module import Module, Parameter

__all__ = ["ParametrizationList", "cached", "is_parametrized", "register_parametrization",
           "remove_parametrizations", "type_before_parametrizations"]

# the values computed inside ``cached()``, keyed by (id(module), tensor name); None outside
_cache: ContextVar[dict[tuple[int, str], Tensor] | None] = ContextVar("parametrize_cache",
                                                                      default=None)


@contextlib.contextmanager
def cached() -> Iterator[None]:
    """Inside this block each parametrized tensor is computed once, at its first access, and
    the same Tensor is returned after (torch's ``parametrize.cached``). Nested blocks share the
    outer cache. Use it when a layer is called several times per step (a recurrent cell)."""
    if _cache.get() is not None:
        yield
        return
    token = _cache.set({})
    try:
        yield
    finally:
        _cache.reset(token)


def _register_parameter_or_buffer(module: Module, name: str, value: Tensor) -> None:
    if isinstance(value, Parameter):
        module.register_parameter(name, value)
    else:
        module.register_buffer(name, value)


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order, and the original tensor(s) they
    start from (``original``, or ``original0``, ``original1``, ... when the first
    parametrization's ``right_inverse`` returns a sequence).

    Args:
        modules: the parametrizations (Modules).
        original: the parameter or buffer being parametrized; its storage is reused for
            ``original`` (as torch's ``set_``), so an optimizer holding it keeps working.
        unsafe: skip the checks that the parametrization keeps the shape and dtype.

    Raises:
        ValueError: (unless ``unsafe``) the parametrization changes the tensor's shape or
            dtype, or ``right_inverse`` returns something other than Tensors.
    """

    def __init__(self, modules: list[Module], original: Tensor, unsafe: bool = False) -> None:
        if not modules:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        with no_grad():
            new: Any = original
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    new = module.right_inverse(new)
        if isinstance(new, Tensor):
            self.is_tensor, self.ntensors = True, 1
            if not unsafe:
                _check_same(new, original, "right_inverse", "the original tensor")
            original._data = new._data.copy() if new is not original else original._data
            original._version[0] += 1
            _register_parameter_or_buffer(self, "original", original)
        else:
            if not isinstance(new, tuple | list) or not all(isinstance(t, Tensor) for t in new):
                raise ValueError("'right_inverse' must return a Tensor or a Sequence of tensors "
                                 f"(list, tuple...). Got {type(new).__name__}")
            self.is_tensor, self.ntensors = False, len(new)
            for i, tensor in enumerate(new):
                value: Tensor
                if isinstance(original, Parameter):
                    value = Parameter(tensor._data.copy(), requires_grad=original.requires_grad)
                else:
                    value = Tensor._make(tensor._data.copy(), False, None)
                _register_parameter_or_buffer(self, f"original{i}", value)
        if not unsafe:
            produced = self()
            _check_same(produced, original, "the parametrization", "the original tensor")

    def right_inverse(self, value: Tensor) -> None:
        """Store ``value`` as the parametrized tensor: run the ``right_inverse`` of each
        parametrization in reverse order and copy the result into the originals.

        Raises:
            ValueError: (unless ``unsafe``) the result's shape or dtype differs from the
                originals', or its count differs.
        """
        with no_grad():
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    value = module.right_inverse(value)
                elif not self.unsafe:
                    raise RuntimeError(f"parametrization {type(module).__name__} does not "
                                       "implement right_inverse.")
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ValueError(f"`right_inverse` should return a tensor. Got "
                                     f"{type(value).__name__}")
                target = self.original
                if not self.unsafe:
                    _check_same(value, target, "right_inverse", "the original tensor")
                target._data[...] = value._data
                target._version[0] += 1
            else:
                if not isinstance(value, tuple | list) or len(value) != self.ntensors:
                    raise ValueError(f"'right_inverse' must return a sequence of "
                                     f"{self.ntensors} tensors")
                for i, tensor in enumerate(value):
                    target = getattr(self, f"original{i}")
                    if not self.unsafe:
                        _check_same(tensor, target, "right_inverse", f"original{i}")
                    target._data[...] = tensor._data
                    target._version[0] += 1

    def forward(self) -> Tensor:
        """The parametrized tensor, recorded for autograd."""
        modules = list(self)
        if self.is_tensor:
            x = modules[0](self.original)
        else:
            x = modules[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in modules[1:]:
            x = module(x)
        return x


def _check_same(new: Any, original: Tensor, what: str, against: str) -> None:
    if not isinstance(new, Tensor):
        raise ValueError(f"{what} must return a tensor. Got {type(new).__name__}")
    if new.shape != original.shape or new._data.dtype != original._data.dtype:
        raise ValueError(
            f"Registering a parametrization may not change the shape or dtype of the tensor, "
            f"unless `unsafe` flag is enabled: {what} gave shape {tuple(new.shape)} dtype "
            f"{new._data.dtype}, {against} has shape {tuple(original.shape)} dtype "
            f"{original._data.dtype}")


def _inject_new_class(module: Module) -> None:
    """Give ``module`` a class of its own (a subclass of its class) to hold the properties."""
    cls = module.__class__
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), {})


def _inject_property(module: Module, tensor_name: str) -> None:
    def get_parametrized(self: Module) -> Tensor:
        parametrization = self.parametrizations[tensor_name]
        cache = _cache.get()
        if cache is None:
            return parametrization()
        key = (id(self), tensor_name)
        if key not in cache:
            cache[key] = parametrization()
        return cache[key]

    def set_original(self: Module, value: Tensor) -> None:
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has any parametrization (or one on ``tensor_name``)."""
    parametrizations = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def type_before_parametrizations(module: Module) -> type:
    """The class ``module`` had before it was parametrized (its class if it is not)."""
    if is_parametrized(module):
        return module.__class__.__bases__[0]
    return type(module)


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make ``module.<tensor_name>`` the output of ``parametrization`` applied to the original
    tensor (see the module docstring); a second call on the same name appends to the chain.

    Args:
        module: the module holding the parameter or buffer ``tensor_name``.
        tensor_name: its name.
        parametrization: a Module whose ``forward`` maps the original(s) to the tensor;
            optional ``right_inverse(tensor)`` maps back (a Tensor or a sequence of them).
        unsafe: allow the parametrization to change the shape or dtype.

    Returns:
        ``module``.

    Raises:
        ValueError: ``module`` has no parameter, buffer or parametrized tensor of that name, or
            (unless ``unsafe``) the parametrization changes its shape or dtype.
    """
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        chain = module.parametrizations[tensor_name]
        if not unsafe and not chain.unsafe:
            current = getattr(module, tensor_name)
            produced = parametrization(current)
            _check_same(produced, current, "the parametrization", "the parametrized tensor")
            if hasattr(parametrization, "right_inverse"):
                _check_same(parametrization.right_inverse(current), current, "right_inverse",
                            "the parametrized tensor")
        chain.append(parametrization)
        chain.unsafe |= unsafe
        return module
    registries = module.__dict__
    if tensor_name in registries.get("_parameters", {}) or tensor_name in registries.get(
            "_buffers", {}):
        original = getattr(module, tensor_name)
        if not isinstance(original, Tensor):
            raise ValueError(f"register_parametrization: {type(module).__name__}.{tensor_name} "
                             "is None")
        chain = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = chain
        return module
    raise ValueError(f"Module '{type(module).__name__}' does not have a parameter, a buffer, or "
                     f"a parametrized element with name '{tensor_name}'")


def remove_parametrizations(module: Module, tensor_name: str,
                            leave_parametrized: bool = True) -> Module:
    """Undo :func:`register_parametrization` on ``tensor_name``.

    Args:
        leave_parametrized: True keeps the current parametrized value as the plain parameter
            (in the original's storage object, so optimizers still hold it); False restores
            the original (only possible when there is one original tensor).

    Returns:
        ``module`` (its class restored once no parametrization is left).

    Raises:
        ValueError: ``tensor_name`` is not parametrized, or ``leave_parametrized=False`` with
            several originals.
    """
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {type(module).__name__} does not have a parametrization on "
                         f"{tensor_name}")
    chain = module.parametrizations[tensor_name]
    if chain.is_tensor:
        original = chain.original
        if leave_parametrized:
            with no_grad():
                value = getattr(module, tensor_name)
            original._data = value._data.copy()
            original._version[0] += 1
    else:
        if not leave_parametrized:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor "
                             "that is parametrized in terms of a sequence of tensors.")
        with no_grad():
            value = getattr(module, tensor_name)
        first = chain.original0
        if isinstance(first, Parameter):
            original = Parameter(value._data.copy(), requires_grad=first.requires_grad)
        else:
            original = Tensor._make(value._data.copy(), False, None)
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    return module
