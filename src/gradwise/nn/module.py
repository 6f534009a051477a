"""Module and Parameter: the containers that hold weights, buffers, sub-modules and hooks.

A Module registers every ``Parameter``, sub-``Module`` and buffer assigned to it as an attribute,
in assignment order, so ``parameters()``, ``state_dict()`` and ``repr`` walk the model the way it
was written. ``state_dict`` keys and array layouts match PyTorch's, so weights move between the
two with ``torch_module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in
sd.items()})``.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from gradwise.autograd.device import check_device, is_device_like
from gradwise.autograd.function import Function
from gradwise.autograd.grad_mode import _grad_enabled
from gradwise.autograd.tensor import Tensor

__all__ = ["Module", "Parameter", "RemovableHandle", "StateDictError",
           "register_module_forward_pre_hook", "register_module_forward_hook",
           "register_module_full_backward_pre_hook", "register_module_full_backward_hook",
           "register_module_backward_hook"]


class Parameter(Tensor):
    """A Tensor that a Module registers as a learnable weight; it requires grad by default.

    Python numbers and lists become float32; NumPy arrays keep their dtype (float64 for
    gradcheck), integer arrays become float32. A Tensor's array is shared, not copied.

    Example:
        >>> w = gw.nn.Parameter(np.zeros((3, 2), dtype=np.float32))
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.empty(0, dtype=np.float32)
        array = data._data if isinstance(data, Tensor) else data
        if isinstance(array, np.ndarray) and array.dtype.kind in "iub":
            array = array.astype(np.float32)
        super().__init__(array, requires_grad=requires_grad)
        if isinstance(data, Tensor):
            self._data = data._data  # share the storage, as torch.nn.Parameter(t) does

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict[int, Any]) -> Parameter:
        """A copy with its own memory, the same ``requires_grad`` and no ``.grad``, as torch's
        ``Parameter.__deepcopy__`` (a copied model starts with clean gradients)."""
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self._data.copy(), self.requires_grad)
        result.name = self.name
        memo[id(self)] = result
        return result


# the per-module registries of the state-dict hooks (torch's names)
_STATE_HOOKS = ("_state_dict_pre_hooks", "_state_dict_post_hooks",
                "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")
_EXTRA_STATE = "_extra_state"  # torch's key for get_extra_state()


def _overrides(module: Any, method: str) -> bool:
    """Whether the module's class defines ``method`` itself (not Module's base one)."""
    return getattr(type(module), method) is not getattr(Module, method)


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods; ``remove()`` takes the hook off again."""

    _next_id = 0

    def __init__(self, hooks: dict[int, Any]) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        """Unregister the hook this handle was returned for; removing twice is harmless."""
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


# ---- global hooks: run for every Module, before each module's own (torch.nn.modules.module) ----
_global_forward_pre_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
_global_forward_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
_global_backward_pre_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
_global_backward_hooks: OrderedDict[int, Callable[..., Any]] = OrderedDict()
_global_hooks_with_kwargs: set[int] = set()


def _any_global_hooks() -> bool:
    """Whether any global module hook is registered (Sequential's fused paths then stand down)."""
    return bool(_global_forward_pre_hooks or _global_forward_hooks or _global_backward_pre_hooks
                or _global_backward_hooks)


def _register_global(hooks: OrderedDict[int, Callable[..., Any]],
                     hook: Callable[..., Any]) -> RemovableHandle:
    if not callable(hook):
        raise TypeError(f"expected a callable hook, got {type(hook).__name__}")
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def register_module_forward_pre_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """``hook(module, args)`` before the forward of EVERY Module, ahead of the module's own
    pre-hooks; it may return replacement args (a tuple, or one value), as
    ``torch.nn.modules.module.register_module_forward_pre_hook``. Meant for debugging and
    profiling: it disables Sequential's fused paths while registered.

    Raises:
        TypeError: ``hook`` is not callable.
    """
    return _register_global(_global_forward_pre_hooks, hook)


def register_module_forward_hook(hook: Callable[..., Any], *, with_kwargs: bool = False,
                                 always_call: bool = False) -> RemovableHandle:
    """``hook(module, args, output)`` after the forward of EVERY Module, ahead of the module's
    own forward hooks; it may return a replacement output (torch's
    ``register_module_forward_hook``). ``with_kwargs=True`` calls ``hook(module, args, kwargs,
    output)``; ``always_call`` is accepted (as :meth:`Module.register_forward_hook`).

    Raises:
        TypeError: ``hook`` is not callable.
    """
    handle = _register_global(_global_forward_hooks, hook)
    if with_kwargs:
        _global_hooks_with_kwargs.add(handle.id)
    return handle


def register_module_full_backward_pre_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """``hook(module, grad_output)`` when dL/d(output) of EVERY Module arrives, ahead of the
    module's own; it may return a replacement (torch's
    ``register_module_full_backward_pre_hook``; what is passed: see
    :meth:`Module.register_full_backward_pre_hook`).

    Raises:
        TypeError: ``hook`` is not callable.
    """
    return _register_global(_global_backward_pre_hooks, hook)


def register_module_full_backward_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """``hook(module, grad_input, grad_output)`` once backward has passed through EVERY Module,
    ahead of the module's own (torch's ``register_module_full_backward_hook``; what is passed:
    see :meth:`Module.register_full_backward_hook`).

    Raises:
        TypeError: ``hook`` is not callable.
    """
    return _register_global(_global_backward_hooks, hook)


def register_module_backward_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """torch's deprecated global form: registered as :func:`register_module_full_backward_hook`
    (as :meth:`Module.register_backward_hook` is; docs/PORTING.md)."""
    return register_module_full_backward_hook(hook)


class StateDictError(RuntimeError):
    """load_state_dict found problems; nothing was loaded. Lists every problem at once."""

    def __init__(
        self,
        module: str,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    ) -> None:
        self.missing_keys, self.unexpected_keys, self.mismatched = missing, unexpected, mismatched
        lines = [f"Error(s) in loading state_dict for {module} (nothing was loaded):"]
        if missing:
            lines.append("  missing key(s): " + ", ".join(missing))
        if unexpected:
            lines.append("  unexpected key(s): " + ", ".join(unexpected))
        for key, got, expected in mismatched:
            lines.append(f"  shape mismatch for {key}: checkpoint has {got}, model has {expected}")
        super().__init__("\n".join(lines))


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        # PyTorch's form: a notebook cell ending in load_state_dict(...) shows this
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (f"_IncompatibleKeys(missing_keys={self.missing_keys!r}, "
                f"unexpected_keys={self.unexpected_keys!r})")


class _BackwardHookIdentity(Function):
    """Identity node around a module's inputs and output; its tensor hooks see the gradients.

    Because the node sits right at the module's boundary, the gradient reaching an input-side
    node is exactly the gradient this module passes back to that input (nothing else in the
    graph has used the wrapped tensor), and the output-side node receives dL/d(output).
    """

    saves_inputs = False
    returns_view = True

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, grad):
        return (grad,)

    @staticmethod
    def backward_graph(ctx, grad):
        return (grad,)


class _BackwardHookCall:
    """Collects one forward call's grad_output and grad_inputs, then calls the module's hooks.

    The full backward pre-hooks run when dL/d(output) arrives and may replace it; the full
    backward hooks run once every input's gradient has arrived (at once when no input
    requires grad) and may replace grad_input, as torch's ``BackwardHook``.
    """

    def __init__(self, module: Module, hooks: list[Callable[..., Any]],
                 pre_hooks: list[Callable[..., Any]], n_inputs: int) -> None:
        self.module, self.hooks, self.pre_hooks = module, hooks, pre_hooks
        self.grad_inputs: list[Tensor | None] = [None] * n_inputs
        self.pending = 0
        self.grad_output: tuple[Tensor, ...] | None = None

    def output_hook(self, grad: Tensor) -> Tensor:
        for hook in self.pre_hooks:
            result = hook(self.module, (grad,))
            if result is not None:
                grad = _one_gradient(result, grad, "a full backward pre-hook", "grad_output")
        self.grad_output = (grad,)
        if self.pending == 0:
            self._fire()
        return grad

    def input_hook(self, position: int) -> Callable[[Tensor], Tensor | None]:
        def hook(grad: Tensor) -> Tensor | None:
            self.grad_inputs[position] = grad
            self.pending -= 1
            if self.pending == 0 and self.grad_output is not None:
                replaced = self._fire()
                if replaced is not None:
                    return replaced[position]
            return None

        return hook

    def _fire(self) -> tuple[Any, ...] | None:
        """Call the hooks; a hook's non-None return replaces grad_input for the hooks after it
        and for the gradient passed on (only possible for the input whose gradient arrived
        last, so a module with several inputs that require grad refuses a replacement)."""
        replaced = None
        grad_inputs = tuple(self.grad_inputs)
        for hook in self.hooks:
            result = hook(self.module, grad_inputs, self.grad_output)
            if result is None:
                continue
            result = tuple(result) if isinstance(result, tuple | list) else (result,)
            if len(result) != len(grad_inputs):
                raise RuntimeError(f"{type(self.module).__name__} full backward hook returned "
                                   f"{len(result)} gradients for {len(grad_inputs)} inputs")
            if sum(g is not None for g in grad_inputs) > 1:
                raise NotImplementedError(
                    f"{type(self.module).__name__} full backward hook: replacing grad_input of "
                    "a module with several inputs that require grad is not supported "
                    "(docs/PORTING.md)")
            grad_inputs = tuple(
                None if old is None else _one_gradient(new, old, "a full backward hook",
                                                       "grad_input")
                for new, old in zip(result, grad_inputs, strict=True))
            replaced = grad_inputs
        return replaced


def _one_gradient(value: Any, like: Tensor, who: str, what: str) -> Tensor:
    """A hook's replacement gradient: a 1-tuple or a Tensor shaped like ``like``."""
    if isinstance(value, tuple | list):
        if len(value) != 1:
            raise RuntimeError(f"{who} returned {len(value)} values for a 1-tuple {what}")
        value = value[0]
    value = value if isinstance(value, Tensor) else Tensor(value)
    if value.shape != like.shape:
        raise RuntimeError(f"{who} returned a {what} of shape {tuple(value.shape)}, expected "
                           f"{tuple(like.shape)}")
    return value


def state_shape_fits(saved: tuple[int, ...], own: tuple[int, ...]) -> bool:
    """Whether an array of shape ``saved`` loads into a tensor of shape ``own``.

    Equal shapes, and PyTorch's one exception (``Module._load_from_state_dict``): a one-element
    1-d array loads into a 0-d tensor, as counters such as ``num_batches_tracked`` were stored
    by older writers (PyTorch 0.3, and gradwise's own files before 0-d arrays kept their shape).
    """
    saved, own = tuple(saved), tuple(own)
    return saved == own or (own == () and saved == (1,))

class Module:
    """Base class of every layer and model: subclass it, assign layers in ``__init__``, write
    ``forward``, and call the instance.

    Example:
        >>> class MLP(gw.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc1 = gw.nn.Linear(784, 128, rng=0)
        ...         self.fc2 = gw.nn.Linear(128, 10, rng=1)
        ...     def forward(self, x):
        ...         return self.fc2(gw.nn.functional.relu(self.fc1(x)))
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_hooks_with_kwargs", set())
        for registry in _STATE_HOOKS:
            object.__setattr__(self, registry, OrderedDict())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation of this module; called by ``module(*args)`` (after pre-hooks, before
        hooks).

        Subclasses override it; the base raises NotImplementedError naming the class. As
        ``torch.nn.Module.forward``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __deepcopy__(self, memo: dict[int, Any]) -> Module:
        """A deep copy (``copy.deepcopy``) that still draws from the default generator.

        Everything is copied except the default generator's stream, which layers built without
        ``rng=`` (Dropout and its kin) hold: copying it would give every copy the same masks and
        detach the copies from ``gw.manual_seed``. In torch a module never holds the global
        generator, so its copies draw from it too; this keeps that behaviour. A stream given
        explicitly (``rng=``/``generator=``) is copied with the module, as any other attribute.
        """
        import copy

        from gradwise.autograd.random import default_generator

        memo.setdefault(id(default_generator._rng), default_generator._rng)
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            object.__setattr__(clone, name, copy.deepcopy(value, memo))
        return clone

    # ---- registration -------------------------------------------------------------------------
    def _registry(self, name: str) -> dict[str, Any]:
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning parameters, "
                "buffers or sub-modules"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Parameter):
            self._forget(name)
            self._registry("_parameters")[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            self._registry("_modules")[name] = value
        elif name in self.__dict__.get("_parameters", ()):
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}.{name}: cannot assign {type(value).__name__} to a "
                    "parameter (wrap it in nn.Parameter, or None)"
                )
            self._parameters[name] = None
        elif name in self.__dict__.get("_modules", ()):
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}.{name}: cannot assign {type(value).__name__} to a "
                    "sub-module (expected a Module or None)"
                )
            self._modules[name] = None
        elif name in self.__dict__.get("_buffers", ()):
            self._buffers[name] = self._as_buffer(name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # called only when normal lookup fails: parameters, buffers and modules live in dicts
        for registry in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__.get(registry)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__.get(registry)
            if values is not None and name in values:
                del values[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        for registry in ("_parameters", "_buffers", "_modules"):
            self._registry(registry).pop(name, None)
        self.__dict__.pop(name, None)

    @staticmethod
    def _as_buffer(name: str, value: Any) -> Tensor | None:
        if value is None or isinstance(value, Tensor):
            return value
        if isinstance(value, np.ndarray | np.generic):
            return Tensor(value)
        raise TypeError(f"buffer {name!r} must be a Tensor, an ndarray or None, got {value!r}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add ``param`` under ``name`` (None keeps the slot, e.g. ``bias=False``)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"register_parameter: {name!r} must be a Parameter or None, got "
                f"{type(param).__name__}"
            )
        self._forget(name)
        self._registry("_parameters")[name] = param

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Add state that is not learnt (e.g. running statistics); it goes into state_dict."""
        self._forget(name)
        self._registry("_buffers")[name] = self._as_buffer(name, tensor)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def register_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as a child called ``name`` (or a None placeholder), as ``torch``'s.

        Raises:
            TypeError: ``module`` is neither a Module nor None.
        """
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"register_module: {name!r} must be a Module, got {module!r}")
        self._forget(name)
        self._registry("_modules")[name] = module

    add_module = register_module

    # ---- traversal ----------------------------------------------------------------------------
    def get_submodule(self, target: str) -> Module:
        """The descendant at dotted path ``target`` ("" is self), as
        ``torch.nn.Module.get_submodule``.

        Raises:
            AttributeError: a step of the path is missing or is not a Module (naming the step
                and the module it was looked up in).
        """
        module = self
        if target == "":
            return module
        walked: list[str] = []
        for step in target.split("."):
            child = module._modules.get(step) if step in module._modules else None
            if child is None:
                where = ".".join(walked) or type(self).__name__
                raise AttributeError(f"get_submodule: {type(module).__name__} ({where}) has no "
                                     f"submodule {step!r} (path {target!r})")
            module = child
            walked.append(step)
        return module

    def set_submodule(self, target: str, module: Module, strict: bool = False) -> None:
        """Put ``module`` at dotted path ``target`` (``"block.act"``), as
        ``torch.nn.Module.set_submodule``: the modules on the way must exist; the last name is
        added unless ``strict`` (then it must exist already).

        Raises:
            ValueError: an empty ``target`` (torch's message).
            AttributeError: a step of the path is missing, or names something that is not a
                Module (torch's messages).
        """
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        *path, name = target.split(".")
        parent = self
        for step in path:
            if not hasattr(parent, step):
                raise AttributeError(f"{type(parent).__name__} has no attribute `{step}`")
            parent = getattr(parent, step)
            if not isinstance(parent, Module):
                raise AttributeError(f"`{step}` is not an nn.Module")
        if hasattr(parent, name):
            if not isinstance(getattr(parent, name), Module):
                raise AttributeError(f"`{name}` is not an nn.Module")
        elif strict:
            raise AttributeError(f"{type(parent).__name__} has no attribute `{name}`")
        setattr(parent, name, module)

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at dotted path ``target`` (``"block.fc.weight"``), as
        ``torch.nn.Module.get_parameter``.

        Raises:
            AttributeError: the module path is missing, or it holds no parameter by that name.
        """
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if module._parameters.get(name) is None:
            raise AttributeError(f"get_parameter: {type(module).__name__} has no parameter "
                                 f"{name!r} (path {target!r})")
        return module._parameters[name]

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at dotted path ``target`` (``"norm.running_mean"``), as
        ``torch.nn.Module.get_buffer``.

        Raises:
            AttributeError: the module path is missing, or it holds no buffer by that name.
        """
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if module._buffers.get(name) is None:
            raise AttributeError(f"get_buffer: {type(module).__name__} has no buffer {name!r} "
                                 f"(path {target!r})")
        return module._buffers[name]

    def named_modules(self, prefix: str = "", memo: set[int] | None = None
                      ) -> Iterator[tuple[str, Module]]:
        """This module and every descendant, depth first, each once, with its qualified name."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator[Module]:
        """Yield this module and every descendant once, depth first (as
        ``torch.nn.Module.modules``).
        """
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Yield ``(name, child)`` for the direct children, each module once (a shared one is not
        repeated).
        """
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        """Yield the direct child modules, each once (as ``torch.nn.Module.children``)."""
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry: str, prefix: str, recurse: bool
                       ) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in module.__dict__[registry].items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[tuple[str, Parameter]]:
        """(qualified name, Parameter) pairs, each parameter once, in registration order.

        Also names each parameter (``p.name``, read by the anomaly detector and the doctor): an
        unnamed parameter takes its qualified name, and a name is replaced by a longer one that
        ends with it, so the outermost model's names ("encoder.0.weight") win over a
        sub-module's ("0.weight") whichever was asked first.
        """
        for name, param in self._named_members("_parameters", prefix, recurse):
            if param.name is None or (name != param.name and name.endswith("." + param.name)):
                param.name = name
            yield name, param  # type: ignore[misc]  # the _parameters registry holds Parameters

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Yield every Parameter (of descendants too when ``recurse``), each once, in registration
        order.

        As ``torch.nn.Module.parameters``; pass the result to an optimizer.
        """
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True
                      ) -> Iterator[tuple[str, Tensor]]:
        """Yield ``(dotted_name, buffer)`` for every registered buffer (running statistics, masks).
        """
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Yield every registered buffer (descendants' too when ``recurse``), each once."""
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every sub-module (children first) and then on this one."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout drops, BatchNorm uses batch statistics) on every module."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` on every parameter (freeze with False); returns ``self``, as
        torch's.
        """
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's ``.grad`` (to None, or to zeros in place)."""
        for param in self.parameters():
            if set_to_none:
                param._grad = None
            elif param._grad is not None:
                param._grad[...] = 0

    # ---- state --------------------------------------------------------------------------------
    def _state_tensors(self) -> OrderedDict[str, Tensor]:
        """name -> Tensor in PyTorch's order: each module's parameters, its buffers, children."""
        state: OrderedDict[str, Tensor] = OrderedDict()
        for module_prefix, module in self.named_modules():
            dot = f"{module_prefix}." if module_prefix else ""
            for name, param in module._parameters.items():
                if param is not None:
                    state[dot + name] = param
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent:
                    state[dot + name] = buffer
        return state

    def state_dict(self, *, destination: Any = None, prefix: str = "",
                   keep_vars: bool = False) -> Any:
        """Every parameter and persistent buffer as a detached Tensor, keyed like PyTorch.

        As ``torch.nn.Module.state_dict``: the Tensors share memory (and the version counter)
        with the parameters and buffers, so they change as training continues; copy them
        (``{k: v.clone() for k, v in sd.items()}``) to keep a snapshot. ``np.asarray(value)``
        gives each one's array without a copy. ``prefix`` is put before every key,
        ``keep_vars=True`` gives the Parameters and buffers themselves (not detached), and
        ``destination`` (a dict) is filled and returned instead of a new OrderedDict.

        Each module, depth first, runs its state-dict pre-hooks ``hook(module, prefix,
        keep_vars)``, adds its own entries (and ``<prefix>_extra_state`` when its class defines
        :meth:`get_extra_state`), then its children's, then its post-hooks ``hook(module,
        state_dict, prefix, local_metadata)``, as torch.

        Raises:
            RuntimeError: a post-hook returned something other than None (torch's rule).
        """
        out = OrderedDict() if destination is None else destination
        self._state_dict_into(out, prefix, keep_vars, set())
        return out

    def _state_dict_into(self, out: Any, prefix: str, keep_vars: bool, seen: set[int]) -> None:
        seen.add(id(self))  # each module once, as named_modules()
        for hook in self._state_hooks("_state_dict_pre_hooks"):
            hook(self, prefix, keep_vars)
        for name, param in self._parameters.items():
            if param is not None:
                out[prefix + name] = param if keep_vars else param.detach()
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent:
                out[prefix + name] = buffer if keep_vars else buffer.detach()
        if _overrides(self, "get_extra_state"):
            out[prefix + _EXTRA_STATE] = self.get_extra_state()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                child._state_dict_into(out, f"{prefix}{name}.", keep_vars, seen)
        for hook in self._state_hooks("_state_dict_post_hooks"):
            if hook(self, out, prefix, {}) is not None:
                raise RuntimeError("state_dict post-hook must return None")

    def _state_hooks(self, registry: str) -> list[Callable[..., Any]]:
        return list(self.__dict__.get(registry, {}).values())

    def _register_state_hook(self, registry: str, hook: Callable[..., Any]) -> RemovableHandle:
        if registry not in self.__dict__:
            object.__setattr__(self, registry, OrderedDict())
        hooks = self.__dict__[registry]
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def register_state_dict_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """``hook(module, prefix, keep_vars)`` before this module's entries are gathered by
        ``state_dict()``, as torch's; ``remove()`` on the handle takes it off."""
        return self._register_state_hook("_state_dict_pre_hooks", hook)

    def register_state_dict_post_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata)`` after this module's entries
        (and its children's) are in ``state_dict``; it may change the dict in place and must
        return None, as torch's."""
        return self._register_state_hook("_state_dict_post_hooks", hook)

    def register_load_state_dict_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` before ``load_state_dict`` matches keys, for this module
        (``prefix`` its dotted name plus a dot), as torch's: it may change ``state_dict`` (a
        copy of the caller's), append to the key lists, or append messages to
        ``error_msgs``, which then raise."""
        return self._register_state_hook("_load_state_dict_pre_hooks", hook)

    def register_load_state_dict_post_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """``hook(module, incompatible_keys)`` after ``load_state_dict`` has loaded, as torch's:
        it may clear or extend ``incompatible_keys.missing_keys`` / ``unexpected_keys`` in
        place, which the ``strict`` check then sees; it must return None. With such a hook,
        the values are copied before the strict check (torch's order), not after it."""
        return self._register_state_hook("_load_state_dict_post_hooks", hook)

    def get_extra_state(self) -> Any:
        """What a subclass adds to its state dict under ``<prefix>_extra_state`` (any value;
        ``gw.save`` stores tensors, numbers, strings and nested lists/dicts of them). Define it
        with :meth:`set_extra_state`; the base is never called (torch's message).

        Raises:
            RuntimeError: called on a class that does not define it.
        """
        raise RuntimeError(
            "Reached a code path in Module.get_extra_state() that should never be called. "
            "Please file an issue at https://github.com/pytorch/pytorch/issues/new?template="
            "bug-report.yml to report this bug.")

    def set_extra_state(self, state: Any) -> None:
        """Take back what :meth:`get_extra_state` returned, from ``load_state_dict``.

        Raises:
            RuntimeError: called on a class that does not define it (torch's message).
        """
        raise RuntimeError(
            "Reached a code path in Module.set_extra_state() that should never be called. "
            "Please file an issue at https://github.com/pytorch/pytorch/issues/new?template="
            "bug-report.yml to report this bug.")

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> IncompatibleKeys:
        """Copy Tensors (or torch tensors, or, as a gradwise extension, NumPy arrays and
        array-likes) into the parameters and buffers in place, as PyTorch's
        ``Module.load_state_dict``.

        Every problem (missing keys and unexpected keys when ``strict``, shape mismatches always)
        is reported in one StateDictError, and then nothing has been loaded. As in PyTorch, a
        one-element 1-d array loads into a 0-d tensor (``num_batches_tracked`` saved as ``(1,)``).
        """
        if isinstance(state_dict, str | os.PathLike):
            raise TypeError(
                f"load_state_dict: got a file path ({os.fspath(state_dict)!r}), not a state "
                "dict; call model.load_state_dict(gw.load(path)) (or "
                "gw.nn.load_safetensors(model, path) for a safetensors file)"
            )
        own = self._state_tensors()
        state_dict = dict(state_dict)  # the upgrades below must not change the caller's dict
        modules = [(f"{name}." if name else "", module) for name, module in self.named_modules()]
        hook_missing: list[str] = []
        hook_unexpected: list[str] = []
        error_msgs: list[str] = []
        for module_prefix, module in modules:
            hooks = module._state_hooks("_load_state_dict_pre_hooks")
            if hooks:
                # torch hands each module the entries under its prefix; what its hooks change
                # there is what gets loaded
                local = {key: value for key, value in state_dict.items()
                         if key.startswith(module_prefix)}
                before = set(local)
                for hook in hooks:
                    hook(module, local, module_prefix, {}, strict, hook_missing,
                         hook_unexpected, error_msgs)
                for key in before - set(local):
                    del state_dict[key]
                state_dict.update(local)
            module._upgrade_state_dict(module_prefix, state_dict)
        if error_msgs:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(error_msgs))
        extra = {module_prefix + _EXTRA_STATE: module for module_prefix, module in modules
                 if _overrides(module, "set_extra_state")}
        missing = [key for key in [*own, *extra] if key not in state_dict] + hook_missing
        unexpected = [key for key in state_dict if key not in own and key not in extra]
        unexpected += hook_unexpected
        arrays: dict[str, np.ndarray] = {}
        mismatched = []
        for key, tensor in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if isinstance(value, Tensor):
                value = value._data
            elif hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
                value = value.detach().cpu().numpy()
            array = np.asarray(value)
            if state_shape_fits(array.shape, tensor.shape):
                array = array.reshape(tensor.shape)
            if array.shape != tensor.shape:
                mismatched.append((key, tuple(array.shape), tuple(tensor.shape)))
            arrays[key] = array
        post_hooks = [(module, hook) for _, module in modules
                      for hook in module._state_hooks("_load_state_dict_post_hooks")]
        if mismatched or not post_hooks:  # check first, so a refused load changes nothing
            self._check_load(mismatched, strict, missing, unexpected)
        for key, array in arrays.items():
            tensor = own[key]
            tensor._data[...] = array
            tensor._version[0] += 1
        for key, module in extra.items():
            if key in state_dict:
                module.set_extra_state(state_dict[key])
        result = IncompatibleKeys(missing, unexpected)
        for module, hook in post_hooks:
            if hook(module, result) is not None:
                raise RuntimeError("load_state_dict post-hook must return None")
        if post_hooks:  # torch's order: the hooks may clear keys the strict check would refuse
            self._check_load(mismatched, strict, missing, unexpected)
        return result

    def _check_load(self, mismatched: list[Any], strict: bool, missing: list[str],
                    unexpected: list[str]) -> None:
        if mismatched or (strict and (missing or unexpected)):
            raise StateDictError(
                type(self).__name__, missing if strict else [],
                unexpected if strict else [], mismatched,
            )

    # ---- device and dtype (PyTorch's API; gradwise has only the CPU) --------------------------
    def to(self, *args: Any, **kwargs: Any) -> Module:
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or keywords, in place; returns
        self. Floating parameters and buffers take the dtype; the CPU is the only device.

        Raises:
            RuntimeError: a GPU device, naming it.
        """
        dtype = kwargs.pop("dtype", None)
        if kwargs.get("device") is not None:
            check_device(kwargs["device"], "Module.to")
        kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"Module.to: unexpected arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif is_device_like(arg):
                check_device(arg, "Module.to")
            elif arg is not None:
                dtype = arg
        if dtype is not None:
            self._cast_floating(np.dtype(dtype))
        return self

    def _cast_floating(self, dtype: np.dtype) -> None:
        if dtype.kind != "f":
            raise TypeError(f"Module.to: only floating dtypes are allowed, got {dtype}")
        for tensor in [*self.parameters(), *self.buffers()]:
            if tensor._data.dtype.kind == "f" and tensor._data.dtype != dtype:
                tensor._data = tensor._data.astype(dtype)
                if tensor._grad is not None:
                    tensor._grad = tensor._grad.astype(dtype)
                tensor._version[0] += 1

    def to_empty(self, *, device: Any, recurse: bool = True) -> Module:
        """Give every parameter and buffer new, uninitialised memory of the same shape and dtype
        on ``device`` (the CPU), as ``torch.nn.Module.to_empty``; returns self. ``recurse``:
        this module's descendants too. Values are garbage until initialised
        (``reset_parameters()`` or ``load_state_dict``).

        Raises:
            RuntimeError: a GPU device, naming it.
        """
        if device is not None:
            check_device(device, "Module.to_empty")
        modules = [module for _, module in self.named_modules()] if recurse else [self]
        for module in modules:
            for tensor in [*module._parameters.values(), *module._buffers.values()]:
                if tensor is not None:
                    tensor._data = np.empty_like(tensor._data)
                    tensor._grad = None
                    tensor._version[0] += 1
        return self

    def double(self) -> Module:
        """Floating parameters and buffers to float64, in place."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Floating parameters and buffers to float32, in place."""
        return self.to(np.float32)

    def half(self) -> Module:
        """Floating parameters and buffers to float16, in place."""
        return self.to(np.float16)

    def cpu(self) -> Module:
        """Self: everything is on the CPU."""
        return self

    def cuda(self, device: Any = None) -> Module:
        """Raises: gradwise has no CUDA backend."""
        raise RuntimeError("Module.cuda(): gradwise runs on the CPU only; use .to('cpu')")

    def _upgrade_state_dict(self, prefix: str, state_dict: dict[str, Any]) -> None:
        """Fill in, in ``state_dict``, entries that older writers of this module left out.

        Called by ``load_state_dict`` for every submodule (``prefix`` is its dotted name plus
        a dot) before keys are matched; the default has nothing to upgrade. PyTorch does the
        same in ``_load_from_state_dict``.
        """

    def rng_state(self) -> dict[str, dict[str, Any]]:
        """The state of every Generator the model owns (Dropout's), JSON-serialisable.

        Keys are the qualified names of the modules whose ``rng`` attribute is a Generator;
        the values are ``Generator.bit_generator.state`` dicts.
        """
        return {
            name: module.__dict__["rng"].bit_generator.state
            for name, module in self.named_modules()
            if isinstance(module.__dict__.get("rng"), np.random.Generator)
        }

    def set_rng_state(self, state: dict[str, dict[str, Any]]) -> None:
        """Restore what ``rng_state()`` returned, so training resumes with the same randomness."""
        owners = {
            name: module.__dict__["rng"]
            for name, module in self.named_modules()
            if isinstance(module.__dict__.get("rng"), np.random.Generator)
        }
        if set(owners) != set(state):
            raise KeyError(
                f"set_rng_state: the model's generators are at {sorted(owners)}, the state has "
                f"{sorted(state)}"
            )
        for name, generator in owners.items():
            generator.bit_generator.state = state[name]

    # ---- hooks --------------------------------------------------------------------------------
    def register_forward_pre_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """``hook(module, inputs)`` before forward; it may return new inputs (a tuple or one).

        As torch's: ``with_kwargs=True`` calls ``hook(module, args, kwargs)``, which may return
        ``(args, kwargs)``; ``prepend=True`` runs it before the hooks already registered.
        """
        return self._add_forward_hook(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_forward_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                              with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """``hook(module, inputs, output)`` after forward; it may return a replacement output.

        As torch's: ``with_kwargs=True`` calls ``hook(module, args, kwargs, output)``;
        ``prepend=True`` runs it first; ``always_call`` is accepted (a forward that raises
        propagates its error without calling hooks).
        """
        return self._add_forward_hook(self._forward_hooks, hook, prepend, with_kwargs)

    def _add_forward_hook(self, hooks: OrderedDict, hook: Callable[..., Any], prepend: bool,
                          with_kwargs: bool) -> RemovableHandle:
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        if with_kwargs:
            self._hooks_with_kwargs.add(handle.id)
        return handle

    def register_full_backward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` once backward has passed through the module.

        What is provided, exactly: ``grad_output`` is a 1-tuple holding dL/d(output) as a Tensor
        (forward must return a single Tensor; other outputs are not hooked). ``grad_input`` has
        one entry per positional argument of forward: dL/d(that input) as this module passes it
        back (exact, also when the input feeds other layers too) for Tensor inputs that require
        grad, and None for the rest (the data batch, integer indices, non-Tensors). Nothing fires
        for a forward run under ``no_grad()`` or whose output does not require grad. As in
        torch, a hook may return a new grad_input tuple, which is passed on instead; for a
        module with several inputs that require grad that raises NotImplementedError
        (docs/PORTING.md).
        """
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        return handle

    def register_backward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """torch's deprecated form, ``hook(module, grad_input, grad_output)``: registered as
        :meth:`register_full_backward_hook` (what torch recommends instead). torch's legacy
        hook sees the gradients of the module's last autograd node, not of its inputs; gradwise
        gives the module's input gradients (docs/PORTING.md)."""
        return self.register_full_backward_hook(hook)

    def register_full_backward_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """``hook(module, grad_output)`` when dL/d(output) reaches the module, before its
        backward runs; returning a 1-tuple (or a Tensor) replaces grad_output, as torch's.
        The same conditions as :meth:`register_full_backward_hook` (one Tensor output).

        Raises:
            RuntimeError (at backward): a replacement of the wrong shape or length.
        """
        handle = RemovableHandle(self._backward_pre_hooks)
        self._backward_pre_hooks[handle.id] = hook
        return handle

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for arg in args:
            if isinstance(arg, np.ndarray):
                # a NumPy batch (what a NumPy data pipeline yields) is a constant input: wrap it,
                # without copying, so every layer sees a Tensor
                args = tuple(Tensor._make(a, False, None) if isinstance(a, np.ndarray) else a
                             for a in args)
                break
        pre_hooks = list(self._forward_pre_hooks.items())
        if _global_forward_pre_hooks:  # torch runs the global hooks first
            pre_hooks = list(_global_forward_pre_hooks.items()) + pre_hooks
        for key, hook in pre_hooks:
            if key in self._hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            "forward pre-hook must return None or a tuple of (new_args, "
                            f"new_kwargs), but got {result!r:.80}.")
                    args, kwargs = result
                    args = args if isinstance(args, tuple) else (args,)
                continue
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        backward_call = None
        if (self._backward_hooks or self._backward_pre_hooks or _global_backward_hooks
                or _global_backward_pre_hooks) and _grad_enabled.get():
            backward_call = _BackwardHookCall(
                self, [*_global_backward_hooks.values(), *self._backward_hooks.values()],
                [*_global_backward_pre_hooks.values(), *self._backward_pre_hooks.values()],
                len(args))
            wrapped = []
            for position, arg in enumerate(args):
                if isinstance(arg, Tensor) and arg.requires_grad:
                    arg = _BackwardHookIdentity.apply(arg)
                    arg.register_hook(backward_call.input_hook(position))
                    backward_call.pending += 1
                wrapped.append(arg)
            args = tuple(wrapped)
        output = self.forward(*args, **kwargs)
        hooks = list(self._forward_hooks.items())
        if _global_forward_hooks:
            hooks = list(_global_forward_hooks.items()) + hooks
        for key, hook in hooks:
            with_kwargs = key in self._hooks_with_kwargs or key in _global_hooks_with_kwargs
            result = (hook(self, args, kwargs, output) if with_kwargs
                      else hook(self, args, output))
            if result is not None:
                output = result
        if backward_call is not None and isinstance(output, Tensor) and output.requires_grad:
            output = _BackwardHookIdentity.apply(output)
            output.register_hook(backward_call.output_hook)
        return output

    # ---- printing -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The layer's settings for ``repr``, e.g. ``in_features=784, out_features=10``."""
        return ""

    def __repr__(self) -> str:
        # torch's layout (Module.__repr__): a one-line extra_repr without children stays on the
        # name's line; otherwise every extra_repr line and child goes on its own indented line
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + repr(child).replace("\n", "\n  ")
                       for name, child in self._modules.items()]
        if len(extra_lines) == 1 and not child_lines:
            return f"{type(self).__name__}({extra_lines[0]})"
        if not extra_lines and not child_lines:
            return f"{type(self).__name__}()"
        body = "\n  ".join(extra_lines + child_lines)
        return f"{type(self).__name__}(\n  {body}\n)"

    def __dir__(self) -> list[str]:
        names = set(super().__dir__())
        for registry in ("_parameters", "_buffers", "_modules"):
            names.update(self.__dict__.get(registry, ()))
        return sorted(names)
