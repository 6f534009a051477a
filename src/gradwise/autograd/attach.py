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

from gradwise.autograd import _fperr
from gradwise.autograd.tensor import Tensor
from gradwise.autograd.tensor_extras import TensorExtras
from gradwise.autograd.tensor_methods import TensorMethods
from gradwise.autograd.tensor_more import TensorMore
from gradwise.autograd.tensor_ops import TensorOps

# what every class body holds besides its methods
_CLASS_BOOKKEEPING = frozenset({"__module__", "__qualname__", "__doc__", "__slots__", "__dict__",
                                "__weakref__", "__annotations__", "__firstlineno__",
                                "__static_attributes__"})


def attach(cls: type, mixins: tuple[type, ...]) -> None:
    """Set every method (and property) of ``mixins`` on ``cls``. Where two mixins define a name,
    the one earlier in ``mixins`` wins, as Python's method resolution would for bases in that
    order.

    Raises:
        TypeError: a mixin method would replace one written in ``cls``'s own class body (that
            definition must be the one that runs, so the two may not share a name).
    """
    own = set(vars(cls))
    taken: set[str] = set()
    for mixin in mixins:
        for name, value in vars(mixin).items():
            if name in _CLASS_BOOKKEEPING or name in taken:
                continue
            if name in own:
                raise TypeError(f"{cls.__qualname__}.{name} is written both in "
                                f"{cls.__module__} and in {mixin.__module__}.{mixin.__qualname__}")
            taken.add(name)
            setattr(cls, name, value)


#: methods outside Function.apply that compute on the data (in-place updates, indexed writes,
#: casts): NumPy's floating-point warnings off there too, as in every op (``_fperr``)
_AUGMENTED = frozenset({"__setitem__", "__iadd__", "__isub__", "__imul__", "__itruediv__",
                        "__ifloordiv__", "__imod__", "__ipow__", "__init__", "long", "int",
                        "short", "char", "byte", "bool", "half", "float", "double", "bfloat16",
                        "to", "type", "type_as", "new_tensor", "new_full"})


def quiet_methods(cls: type) -> None:
    """Wrap every public in-place method (``add_``, ``div_``, ``fill_``...) and the names in
    ``_AUGMENTED`` with :func:`~gradwise.autograd._fperr.quietly`: ``x.div_(0)`` and
    ``tensor([1e40], dtype=float32)`` give inf silently, as torch's (newcomer review 9 of
    issue 14: 40 of 136 in-place methods printed NumPy RuntimeWarnings)."""
    for name in sorted(set(dir(cls))):
        value = vars(cls).get(name)
        if not callable(value) or isinstance(value, type):
            continue
        if (name.endswith("_") and not name.startswith("_")) or name in _AUGMENTED:
            setattr(cls, name, _fperr.quietly(value))


# the order of _TensorMethods' bases in tensor.py, which type checkers read
attach(Tensor, (TensorMethods, TensorExtras, TensorMore, TensorOps))
quiet_methods(Tensor)
