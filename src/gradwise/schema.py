"""Small declarative schemas for the JSON and TOML files gradwise reads back from disk.

A run folder's ``run.json`` and ``config.json`` (and ``--config`` files) come from anyone. Each
field a loader uses is described once as a :class:`Field` (type, range, allowed names, length),
and :func:`check_fields` validates a parsed object against them before any work starts, so a
``std`` of 0 cannot evaluate to garbage with exit 0, a ``mean`` of ``"abc"`` cannot leak a
``ValueError``, and two million class names are refused by count, not after building them.

Example:
    >>> check_fields(info, RUN_INFO_FIELDS, "run.json", RunError)   # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gradwise._shown import short_repr

__all__ = ["Field", "check_fields", "check_value"]


@dataclass(frozen=True)
class Field:
    """What one field may hold.

    Attributes:
        kind: ``"int"``, ``"float"`` (ints accepted), ``"str"``, ``"bool"``, or ``"list"``.
        low, high: inclusive bounds for numbers (``low_open``: ``low`` itself excluded).
        choices: the allowed strings (known names), or None.
        max_length: most characters (str) or items (list).
        min_length: fewest items (list) or characters (str).
        item: the schema of each list item.
        required: a missing field is an error.
        nullable: ``None`` (JSON null) is allowed.
        printable: a string may hold only printable characters (``str.isprintable``: no
            newline, carriage return, tab or terminal escape), as a name shown to people must.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: Sequence[str] | None = None
    max_length: int | None = None
    min_length: int = 0
    item: Field | None = None
    required: bool = False
    nullable: bool = False
    printable: bool = False


def _show(value: Any) -> str:
    return short_repr(value, 60)


def check_value(value: Any, field: Field, name: str) -> str | None:
    """What is wrong with ``value`` under ``field`` (a phrase naming ``name``), or None."""
    if value is None:
        return None if field.nullable else f"{name} must not be null"
    kind = field.kind
    if kind == "bool":
        if isinstance(value, bool):
            return None
        return f"{name} must be true or false, got {_show(value)}"
    if kind in ("int", "float"):
        numeric = (int,) if kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, numeric):
            noun = "an integer" if kind == "int" else "a number"
            return f"{name} must be {noun}, got {_show(value)}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name} must be finite, got {value}"
        if field.low is not None and (value < field.low or (field.low_open and value == field.low)):
            relation = ">" if field.low_open else ">="
            return f"{name} must be {relation} {field.low:g}, got {_show(value)}"
        if field.high is not None and value > field.high:
            return f"{name} must be <= {field.high:g}, got {_show(value)}"
        return None
    if kind == "str":
        if not isinstance(value, str):
            return f"{name} must be a string, got {_show(value)}"
        if field.max_length is not None and len(value) > field.max_length:
            return f"{name} is {len(value)} characters, more than {field.max_length}"
        if len(value) < field.min_length:
            return f"{name} must not be empty"
        if field.printable and not value.isprintable():
            bad = next(char for char in value if not char.isprintable())
            return (f"{name} holds the control character {bad!r} (a name shown on a "
                    f"terminal must be printable), got {_show(value)}")
        if field.choices is not None and value not in field.choices:
            return f"{name} must be one of {', '.join(field.choices)}, got {_show(value)}"
        return None
    if kind == "list":
        if not isinstance(value, list):
            return f"{name} must be a list, got {_show(value)}"
        if field.max_length is not None and len(value) > field.max_length:
            return f"{name} has {len(value)} items, more than {field.max_length}"
        if len(value) < field.min_length:
            return f"{name} has {len(value)} items, fewer than {field.min_length}"
        if field.item is not None:
            for index, item in enumerate(value):
                problem = check_value(item, field.item, f"{name}[{index}]")
                if problem is not None:
                    return problem
        return None
    raise ValueError(f"schema: unknown field kind {kind!r}")


def check_fields(
    data: Any, fields: Mapping[str, Field], where: str, error: type[Exception]
) -> None:
    """Validate the fields of ``data`` that ``fields`` describes; other keys are left alone.

    Raises:
        error: ``"<where>: <field> must be ..."`` for the first problem found.
    """
    if not isinstance(data, dict):
        raise error(f"{where}: expected a JSON object, got {type(data).__name__}")
    for name, field in fields.items():
        if name not in data:
            if field.required:
                raise error(f"{where}: {name} is missing")
            continue
        problem = check_value(data[name], field, name)
        if problem is not None:
            raise error(f"{where}: {problem}")
