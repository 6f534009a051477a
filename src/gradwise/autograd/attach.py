"""Gives :class:`~gradwise.autograd.tensor.Tensor` its methods that run ops, once, when
``gradwise.autograd`` is imported (its first import), as torch attaches its methods to its
Tensor class.

The engine's imports run one way: ``tensor`` (Tensor's data, grad, version, hooks, views; no op)
<- ``function`` (the op base class) <- ``ops/`` <- ``higher_order`` (the create_graph engine),
``functional`` <- the four modules of methods that run ops (``tensor_methods``,
``tensor_extras``, ``tensor_more``, ``tensor_ops``) <- this module. Type checkers see those
methods through Tensor's base ``_TensorMethods`` (tensor.py), which names the four mixins only
for them; at run time Tensor's base is ``object`` and the methods are set on the class here, so
setting a dunder fills its slot (``a + b`` dispatches as if it were written in the class).
"""

from __future__ import annotations

from gradwise.autograd.tensor import Tensor
from gradwise.autograd.tensor_extras import TensorExtras
from gradwise.autograd.tensor_methods import TensorMethods
from gradwise.autograd.tensor_more import TensorMore
from gradwise.autograd.tensor_ops import TensorOps

# what every class body holds besides its methods
_CLASS_BOOKKEEPING = frozenset({"__module__", "__qualname__", "__doc__", "__slots__", "__dict__",
                                "__weakref__", "__annotations__", "__firstlineno__",
                                "__static_attributes__"})


def attach() -> None:
    """Set every method of the four mixins on Tensor. Where two define a name, the one earlier
    in ``_TensorMethods``' bases wins (the order Python's method resolution gave when they were
    Tensor's bases at run time): TensorMethods, TensorExtras, TensorMore, TensorOps.

    Raises:
        TypeError: a mixin method would replace one written in Tensor's own class body (the
            class's own definition must be the one that runs, so the two may not share a name).
    """
    mixins = (TensorMethods, TensorExtras, TensorMore, TensorOps)
    own = set(vars(Tensor))
    taken: dict[str, type] = {}
    for mixin in mixins:
        for name, value in vars(mixin).items():
            if name in _CLASS_BOOKKEEPING or name in taken:
                continue
            if name in own:
                raise TypeError(f"Tensor.{name} is written both in tensor.py and in "
                                f"{mixin.__module__}.{mixin.__qualname__}")
            taken[name] = mixin
            setattr(Tensor, name, value)


attach()
