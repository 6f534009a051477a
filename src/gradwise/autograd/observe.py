"""Observe the outputs of activation and loss ops as they run, wherever they are called.

The training doctor needs the outputs of every activation (``nn.ReLU`` modules, ``F.relu``,
``x.tanh()`` inside a custom ``forward``...) and the targets a loss saw. Ops that matter carry a
class attribute ``observe_kind`` (``"relu"``, ``"sigmoid"``, ``"loss"``...); ``Function.apply``
hands their output to the observer installed here, if any. With no observer installed an op pays
one class-attribute test; ops without ``observe_kind`` pay nothing more.

An observer only reads: it must not change the arrays it is given.

Example:
    >>> seen = []
    >>> with observing(lambda kind, args, out: seen.append((kind, out.shape))):  # doctest: +SKIP
    ...     model(x)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

import numpy as np

__all__ = ["Observer", "install", "observing", "uninstall"]

#: ``observer(kind, arrays, out)``: kind is the op's ``observe_kind``, arrays the op's arguments
#: (Tensors unwrapped to np.ndarray, the rest as passed), out the op's output array
Observer = Callable[[str, tuple[Any, ...], np.ndarray], None]

_observer: ContextVar[Observer | None] = ContextVar("gradwise_observer", default=None)


def install(observer: Observer) -> Token:
    """Install ``observer`` for the current context; returns the token :func:`uninstall` takes."""
    return _observer.set(observer)


def uninstall(token: Token) -> None:
    """Restore the observer that was installed before ``install`` returned ``token``."""
    _observer.reset(token)


@contextmanager
def observing(observer: Observer) -> Iterator[None]:
    """Install ``observer`` for the ``with`` block."""
    token = install(observer)
    try:
        yield
    finally:
        uninstall(token)
