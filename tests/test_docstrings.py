"""Every public function, class and method of gradwise has a docstring worth reading.

Walks every public module (no leading underscore anywhere in its dotted name), takes its
``__all__`` (or, without one, the non-underscore names it defines itself), and for each class
also the public methods and properties the class defines. A docstring fails when it is missing
or shorter than ``MIN_WORDS`` words ("Forward.", "Reset."). ``inspect.getdoc`` is used, so a
method overriding a documented one (``forward``, ``step``) inherits its contract, as in Sphinx.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator

import pytest

import gradwise
from gradwise.autograd.function import Function

MIN_WORDS = 3

# Modules that run code on import (a program, not a library face) or need an optional extra.
SKIPPED_MODULES = {"gradwise.__main__"}


def public_modules() -> list[str]:
    """Dotted names of gradwise's public modules, importable ones only."""
    names = ["gradwise"]
    for info in pkgutil.walk_packages(gradwise.__path__, prefix="gradwise."):
        parts = info.name.split(".")
        if any(part.startswith("_") for part in parts) or info.name in SKIPPED_MODULES:
            continue
        names.append(info.name)
    return sorted(names)


def _is_ours(obj: object) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == "gradwise" or module.startswith("gradwise.")


def _public_names(module) -> list[str]:
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == module.__name__
    ]


def _members(cls: type) -> Iterator[tuple[str, object]]:
    """Public methods and properties ``cls`` defines itself (not inherited ones).

    An op's ``backward_graph`` is skipped: it is the Function protocol (documented once on
    ``Function.backward``: the same local derivative in Tensor ops), and the op's class
    docstring states that derivative.
    """
    is_op = issubclass(cls, Function)
    for name, attribute in vars(cls).items():
        if name.startswith("_") or (is_op and name == "backward_graph"):
            continue
        if isinstance(attribute, (staticmethod, classmethod)):
            attribute = attribute.__func__
        if inspect.isfunction(attribute) or isinstance(attribute, property):
            yield name, getattr(cls, name, attribute)


def documented_objects() -> dict[str, object]:
    """``qualified name -> object`` for everything the public API exposes, each once."""
    found: dict[str, object] = {}
    seen: set[int] = set()
    for module_name in public_modules():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:  # an optional extra (onnx, mpi4py) not installed
            if (error.name or "").startswith("gradwise"):
                raise
            continue
        for name in _public_names(module):
            obj = getattr(module, name, None)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or not _is_ours(obj):
                continue
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            qualified = f"{obj.__module__}.{obj.__qualname__}"
            found[qualified] = obj
            if inspect.isclass(obj):
                for member_name, member in _members(obj):
                    found[f"{qualified}.{member_name}"] = member
    return found


def docstring_problem(obj: object, name: str) -> str | None:
    """Why ``obj``'s docstring is not enough, or None."""
    if isinstance(obj, property):
        doc = inspect.getdoc(obj.fget) if obj.fget is not None else None
        doc = obj.__doc__ or doc
    else:
        doc = inspect.getdoc(obj)
        if inspect.isclass(obj) and doc is not None and doc == inspect.getdoc(object):
            doc = None
    if not doc or not doc.strip():
        return "missing"
    if len(doc.split()) < MIN_WORDS:
        return f"too short: {doc.strip()!r}"
    return None


def test_the_walk_finds_the_public_api() -> None:
    objects = documented_objects()
    for expected in ("gradwise.autograd.tensor.Tensor.sum", "gradwise.nn.layers.linear.Linear",
                     "gradwise.optim.adam.Adam", "gradwise.nn.functional.cross_entropy"):
        assert expected in objects, expected
    assert len(objects) > 700


def test_docstring_problem_flags_missing_and_one_word_docstrings() -> None:
    def bare():
        pass

    def terse():
        """Forward."""

    def good():
        """Add two tensors elementwise."""

    assert docstring_problem(bare, "bare") == "missing"
    assert docstring_problem(terse, "terse").startswith("too short")
    assert docstring_problem(good, "good") is None
    assert docstring_problem(type("Bare", (), {}), "Bare") == "missing"


def test_every_public_function_and_class_has_a_docstring() -> None:
    problems = [
        f"{name}: {problem}"
        for name, obj in documented_objects().items()
        if (problem := docstring_problem(obj, name)) is not None
    ]
    if problems:
        pytest.fail(f"{len(problems)} public objects need a docstring (at least {MIN_WORDS} "
                    "words: purpose, shapes, errors, source):\n" + "\n".join(sorted(problems)))
