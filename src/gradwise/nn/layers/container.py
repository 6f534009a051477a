"""Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict: containers."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from gradwise.autograd import anomaly, observe
from gradwise.autograd.grad_mode import _grad_enabled
from gradwise.autograd.kernels import activation as _activation_kernels
from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.layers.activation import ReLU
from gradwise.nn.layers.conv import Conv2d
from gradwise.nn.layers.linear import Linear
from gradwise.nn.layers.pool import MaxPool2d
from gradwise.nn.module import Module, Parameter, _any_global_hooks


def _check_module(container: str, value: Any) -> Module:
    if not isinstance(value, Module):
        raise TypeError(f"{container}: expected a Module, got {type(value).__name__}")
    return value


class _IndexedModules(Module):
    """Shared indexing over modules registered under "0", "1", ..."""

    def _index(self, index: int) -> int:
        if not isinstance(index, int):
            raise TypeError(f"{type(self).__name__}: indices must be int or slice, got {index!r}")
        if not -len(self) <= index < len(self):
            raise IndexError(
                f"{type(self).__name__}: index {index} is out of range for {len(self)} modules"
            )
        return index % len(self)

    def _values(self) -> list[Module]:
        return list(self._modules.values())

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._values())

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            items = list(self._modules.items())[index]
            if isinstance(self, Sequential):
                return Sequential(OrderedDict(items))
            return ModuleList(module for _, module in items)
        return self._values()[self._index(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        key = list(self._modules)[self._index(index)]
        self._modules[key] = _check_module(type(self).__name__, module)

    def append(self, module: Module) -> _IndexedModules:
        self.register_module(str(len(self)), _check_module(type(self).__name__, module))
        return self

    def extend(self, modules: Iterable[Module]) -> _IndexedModules:
        for module in modules:
            self.append(module)
        return self


class Sequential(_IndexedModules):
    """Modules applied one after another; ``Sequential(a, b)(x) == b(a(x))``.

    Takes modules (named "0", "1", ...) or one OrderedDict of name -> module.

    Example:
        >>> model = gw.nn.Sequential(gw.nn.Linear(784, 128), gw.nn.ReLU(), gw.nn.Linear(128, 10))
        >>> model[0], len(model)
    """

    def __init__(self, *modules: Module | OrderedDict[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.register_module(name, _check_module("Sequential", module))
        else:
            for item in modules:
                self.append(_check_module(type(self).__name__, item))

    def forward(self, x: Any) -> Any:
        modules = list(self._modules.values())
        fuse = observe._observer.get() is None and anomaly._detector.get() is None
        # the inference path (grad off, nothing observing): a ReLU works in place on an array
        # this forward made and nobody else holds
        inference = fuse and not _grad_enabled.get()
        owned = False  # x's array is a temporary made here by a layer in _FRESH_OUTPUT
        index = 0
        while index < len(modules):
            module = modules[index]
            following = modules[index + 1] if index + 1 < len(modules) else None
            if (fuse and following is not None
                    and _fusable_linear_relu(module, following)
                    and isinstance(x, Tensor) and x.ndim >= 1
                    and x.shape[-1] == module.in_features):
                # Linear then ReLU as one node (ops/linalg.py LinearReLU): same values and
                # gradients, one pass over the activations fewer each way
                x = F._linear_relu(x, module.weight, module.bias)
                owned, index = inference, index + 2
                continue
            if (fuse and following is not None
                    and _swappable_relu_max_pool(module, following)
                    and isinstance(x, Tensor) and x.ndim == 4):
                # ReLU then max-pooling, run as max-pooling then ReLU: relu is monotone, so
                # relu(max(window)) == max(relu(window)) bit for bit (ties, NaN and -0.0
                # included: both pick the same element, relu maps every x <= 0 to +0.0), and
                # so are the gradients (the picked element gets relu'(its value) * grad,
                # every other element 0); the ReLU's mask and passes then cover the pooled,
                # 4x smaller array (issue 14)
                pooled = following(x)
                if (inference and isinstance(pooled, Tensor)
                        and not np.may_share_memory(pooled._data, x._data)):
                    _activation_kernels.relu_(pooled._data)  # a new array, ours: in place
                    x = pooled
                else:
                    x = module(pooled)
                owned, index = inference, index + 2
                continue
            if inference and owned and isinstance(x, Tensor) and _plain(module, ReLU):
                _activation_kernels.relu_(x._data)
                index += 1
                continue
            before = x
            x = module(x)
            owned = (inference and isinstance(x, Tensor) and isinstance(before, Tensor)
                     and any(_plain(module, cls) for cls in _FRESH_OUTPUT)
                     and not np.may_share_memory(x._data, before._data))
            index += 1
        return x


#: layers whose forward returns a new array (never the input, a view of it or a cached buffer),
#: so an activation after them may overwrite it in place when nothing records or observes
_FRESH_OUTPUT = (Linear, Conv2d)


def _plain(module: Module, cls: type) -> bool:
    """``module`` is exactly ``cls``, with its own forward and no hooks (nothing to bypass)."""
    return (type(module) is cls and "forward" not in module.__dict__
            and not module._forward_pre_hooks and not module._forward_hooks
            and not module._backward_hooks and not module._backward_pre_hooks
            and not _any_global_hooks())


def _fusable_linear_relu(first: Module, second: Module) -> bool:
    return _plain(first, Linear) and _plain(second, ReLU)


def _swappable_relu_max_pool(first: Module, second: Module) -> bool:
    """ReLU followed by a MaxPool2d that returns values only (not ``(values, indices)``), and
    without dilation: a dilated window can step over every input element and give -inf, which
    the ReLU after it would turn into 0."""
    dilation = getattr(second, "dilation", 1)
    return (_plain(first, ReLU) and _plain(second, MaxPool2d)
            and not getattr(second, "return_indices", False)
            and all(d == 1 for d in (dilation if isinstance(dilation, tuple | list)
                                     else (dilation,))))


class ModuleList(_IndexedModules):
    """A list of modules whose parameters belong to the parent; no forward of its own.

    Example:
        >>> blocks = gw.nn.ModuleList([gw.nn.Linear(64, 64) for _ in range(4)])
    """

    def __repr__(self) -> str:
        """torch's ModuleList repr: a run of equal entries is shown once, as
        ``(0-3): 4 x Linear(...)``."""
        reprs = [repr(module) for module in self._modules.values()]
        if not reprs:
            return f"{type(self).__name__}()"
        runs: list[list[Any]] = []  # [first index, last index, repr]
        for index, text in enumerate(reprs):
            if runs and runs[-1][2] == text:
                runs[-1][1] = index
            else:
                runs.append([index, index, text])
        lines = []
        for first, last, text in runs:
            label = f"({first}): " if first == last else f"({first}-{last}): {last - first + 1} x "
            lines.append("  " + (label + text).replace("\n", "\n  "))
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward(); iterate over it in your own")


class ModuleDict(Module):
    """Modules held by name, in insertion order, each registered as a submodule (so its
    parameters, state_dict keys and ``.to()`` follow), as ``torch.nn.ModuleDict``.

    Example:
        >>> heads = nn.ModuleDict({"cls": nn.Linear(8, 3), "box": nn.Linear(8, 4)})
        >>> heads["cls"](x)
    """

    def __init__(self, modules: Any = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.register_module(key, _check_module("ModuleDict", module))

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> Iterable[str]:
        """The names in insertion order (as ``dict.keys``)."""
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        """The modules in insertion order (as ``dict.values``)."""
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        """``(name, module)`` pairs in insertion order (as ``dict.items``)."""
        return self._modules.items()

    def pop(self, key: str) -> Module:
        """Remove the module called ``key`` and return it; KeyError when there is none."""
        module = self._modules[key]
        del self._modules[key]
        return module

    def clear(self) -> None:
        """Remove every module (as ``dict.clear``)."""
        self._modules.clear()

    def update(self, modules: Any) -> None:
        """Add (name, module) pairs from a mapping or an iterable of pairs.

        Raises:
            TypeError: a value is not a Module.
        """
        pairs = modules.items() if hasattr(modules, "items") else modules
        for key, module in pairs:
            self[key] = module


def _as_parameter(container: str, value: Any) -> Parameter:
    """A Parameter as is; a Tensor or array becomes one (torch wraps plain tensors too)."""
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value._data, requires_grad=True)
    try:
        return Parameter(np.asarray(value))
    except (TypeError, ValueError):
        raise TypeError(f"{container}: expected a Parameter or tensor, got "
                        f"{type(value).__name__}") from None


class ParameterList(Module):
    """Parameters held in a list, registered as "0", "1", ... (torch.nn.ParameterList), so
    they appear in ``parameters()`` and the state dict.

    Example:
        >>> scales = nn.ParameterList([nn.Parameter(gw.ones(4)) for _ in range(3)])
    """

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        super().__init__()
        if values is not None:
            self.extend(values)

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._parameters.values())

    def _key(self, index: int) -> str:
        if not isinstance(index, int) or not -len(self) <= index < len(self):
            raise IndexError(f"ParameterList: index {index!r} is out of range for {len(self)} "
                             "parameters")
        return str(index % len(self))

    def __getitem__(self, index: int) -> Parameter:
        return self._parameters[self._key(index)]

    def __setitem__(self, index: int, value: Any) -> None:
        self._parameters[self._key(index)] = _as_parameter("ParameterList", value)

    def append(self, value: Any) -> ParameterList:
        """Add one parameter (a tensor or array becomes a Parameter) under the next index."""
        self.register_parameter(str(len(self)), _as_parameter("ParameterList", value))
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        """Append every value in order."""
        for value in values:
            self.append(value)
        return self

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ParameterList has no forward(); index it in your own")

    def extra_repr(self) -> str:
        """torch's lines: ``  (0): Parameter containing: [gradwise.float32 of size 2x3]`` (the
        package's name where torch prints ``torch.``)."""
        return "\n".join(f"  ({i}): Parameter containing: [gradwise.{p.dtype} of size "
                         f"{_size_text(p)}]" for i, p in enumerate(self))


def _size_text(parameter: Parameter) -> str:
    """A shape as torch's container reprs print it: ``2x3`` (empty for a 0-d parameter)."""
    return "x".join(str(size) for size in parameter.shape)


class ParameterDict(Module):
    """Parameters held by name, in insertion order (torch.nn.ParameterDict).

    Example:
        >>> gains = nn.ParameterDict({"a": nn.Parameter(gw.ones(2))})
    """

    def __init__(self, parameters: Any = None) -> None:
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str) -> Parameter:
        return self._parameters[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.register_parameter(key, _as_parameter("ParameterDict", value))

    def __delitem__(self, key: str) -> None:
        del self._parameters[key]

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[str]:
        return iter(self._parameters)

    def __contains__(self, key: object) -> bool:
        return key in self._parameters

    def keys(self) -> Iterable[str]:
        """The names, in insertion order."""
        return self._parameters.keys()

    def values(self) -> Iterable[Parameter]:
        """The parameters, in insertion order."""
        return self._parameters.values()

    def items(self) -> Iterable[tuple[str, Parameter]]:
        """(name, parameter) pairs, in insertion order."""
        return self._parameters.items()

    def update(self, parameters: Any) -> None:
        """Add (name, parameter) pairs from a mapping or an iterable of pairs; a tensor or array
        becomes a Parameter.

        Raises:
            TypeError: a value that is not a tensor or array.
        """
        pairs = parameters.items() if hasattr(parameters, "items") else parameters
        for key, value in pairs:
            self[key] = value

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ParameterDict has no forward(); index it in your own")

    def extra_repr(self) -> str:
        """torch's lines: ``  (a): Parameter containing: [gradwise.FloatTensor of size 2x3]``
        (torch's legacy type name, with the package's name where torch prints ``torch.``)."""
        return "\n".join(f"  ({key}): Parameter containing: [{p.type()} of size "
                         f"{_size_text(p)}]" for key, p in self.items())
