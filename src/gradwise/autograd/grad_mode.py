"""Gradient recording mode: the engine's one piece of global state, held in a ContextVar."""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import Any

_grad_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "gradwise_grad_enabled", default=True
)


def is_grad_enabled() -> bool:
    """Whether operations on tensors that require grad are recorded for backward."""
    return _grad_enabled.get()


class _GradMode:
    """Context manager and decorator that sets grad recording on or off for a block."""

    enabled: bool

    def __enter__(self) -> None:
        self._token = _grad_enabled.set(self.enabled)

    def __exit__(self, *exc: object) -> None:
        _grad_enabled.reset(self._token)

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Record nothing inside the block: for evaluation and for weight updates.

    Example:
        >>> with gw.no_grad():
        ...     y = model(x)          # y.requires_grad is False
    """

    enabled = False


class inference_mode(_GradMode):
    """``torch.inference_mode``: here the same as ``no_grad`` (``mode=False`` records as
    usual). PyTorch additionally skips version counting for speed; gradwise's counters are
    cheap, so the tensors made inside may be used in recorded ops later (a deliberate,
    more permissive difference: docs/PORTING.md).

    Example:
        >>> with gw.inference_mode():
        ...     y = model(x)
    """

    def __init__(self, mode: bool = True) -> None:
        self.enabled = not mode

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        enabled = self.enabled

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _grad_enabled.set(enabled)
            try:
                return fn(*args, **kwargs)
            finally:
                _grad_enabled.reset(token)

        return wrapper


class enable_grad(_GradMode):
    """Record operations again inside a ``no_grad`` block."""

    enabled = True


class set_grad_enabled(_GradMode):
    """Turn recording on or off according to ``mode``: as a statement, a context manager or a
    decorator, like ``torch.set_grad_enabled``.

    As a plain statement (``gw.set_grad_enabled(False)``) it takes effect at once and lasts
    until changed again; as ``with gw.set_grad_enabled(mode):`` the previous mode comes back
    at the end of the block; as a decorator it applies to each call of the function.
    """

    def __init__(self, mode: bool) -> None:
        self.enabled = bool(mode)
        self._previous = _grad_enabled.get()
        _grad_enabled.set(self.enabled)  # takes effect now, as PyTorch's does

    def __enter__(self) -> None:
        self._token = _grad_enabled.set(self.enabled)

    def __exit__(self, *exc: object) -> None:
        _grad_enabled.reset(self._token)
        _grad_enabled.set(self._previous)

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        _grad_enabled.set(self._previous)  # decorating does not change the mode
        mode = self.enabled

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper
