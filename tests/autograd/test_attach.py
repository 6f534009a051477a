"""Tensor's op-running methods are written in four mixins above the ops and set on the class by
autograd/attach.py: every one must reach Tensor, the earlier mixin must win a shared name (as
the bases type checkers read), and none may replace a method of tensor.py's class body."""

from __future__ import annotations

import pytest

import gradwise as gw
from gradwise.autograd.attach import _CLASS_BOOKKEEPING, attach
from gradwise.autograd.tensor_extras import TensorExtras
from gradwise.autograd.tensor_methods import TensorMethods
from gradwise.autograd.tensor_more import TensorMore
from gradwise.autograd.tensor_ops import TensorOps

MIXINS = (TensorMethods, TensorExtras, TensorMore, TensorOps)


def test_every_mixin_method_is_on_tensor_from_the_first_mixin_that_defines_it():
    wrong = {}
    for name in {name for mixin in MIXINS for name in vars(mixin)} - _CLASS_BOOKKEEPING:
        first = next(vars(mixin)[name] for mixin in MIXINS if name in vars(mixin))
        got = vars(gw.Tensor).get(name)
        # in-place methods and casts are wrapped by _fperr.quietly (attach.quiet_methods)
        if got is not first and getattr(got, "__wrapped__", None) is not first:
            wrong[name] = got
    assert not wrong
    assert gw.Tensor.__bases__ == (object,)  # at run time; type checkers see the mixins


def test_attach_keeps_the_first_definition_and_refuses_to_replace_the_class_own():
    class First:
        def shared(self):
            return "first"

        def only_first(self):
            return 1

    class Second:
        def shared(self):
            return "second"

    class Target:
        def own(self):
            return "own"

    attach(Target, (First, Second))
    assert Target().shared() == "first" and Target().only_first() == 1
    assert Target().own() == "own"

    class Clashing:
        def own(self):
            return "mixin"

    class Other:
        def own(self):
            return "own"

    with pytest.raises(TypeError, match=r"Other\.own is written both in .* and in .*Clashing"):
        attach(Other, (Clashing,))
