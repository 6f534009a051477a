"""How a user-given path (or any text from outside) appears in a message: one line, inert.

A file name may hold a newline, a carriage return or a terminal escape sequence
(``"\\x1b[2J"`` clears the screen, ``"\\x1b]0;...\\x07"`` retitles the window). Printed as it
is, such a name would split an error over lines, hide the text before a ``\\r``, or drive the
user's terminal. Every message that includes a path goes through :func:`shown`, which leaves
an ordinary path alone and writes any other in Python's ``repr`` form (quoted, escapes
visible), the same rule ``ls --quoting-style=escape`` and Python's own tracebacks follow.
:func:`escape_controls` is the last guard the CLI applies to a whole line before printing.

Example:
    >>> shown("runs/mnist")
    'runs/mnist'
    >>> shown("runs/\\x1b[2Jx")
    "'runs/\\\\x1b[2Jx'"
"""

from __future__ import annotations

import os
import re

__all__ = ["escape_controls", "plural", "short_repr", "shown"]

# C0 and C1 control characters, DEL, and the Unicode line/paragraph separators: everything a
# terminal acts on or that breaks a line. Tab is kept out of messages too (it hides spacing).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def shown(path: str | os.PathLike[str] | bytes) -> str:
    """``path`` for a message: as it is when every character is printable, else its ``repr``
    (one line, escapes visible, no control character left)."""
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    if text.isprintable():
        return text
    return repr(text)


def escape_controls(text: str) -> str:
    """``text`` with every control character written as its escape (``\\x1b``, ``\\n``): what
    reaches the terminal is one line and no escape sequence can act."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters, safe for any size of value.

    Python refuses ``repr`` of an int over 4300 decimal digits (``ValueError``, CVE-2020-10735
    mitigation) and a TOML ``0x...`` literal of any length parses into one, as does
    ``10**5000`` from Python: such an int is shown as ``<an integer of N digits>``; lists show
    their first items and their length.
    """
    if isinstance(value, bool) or value is None or isinstance(value, float):
        text = repr(value)
    elif isinstance(value, int):
        if value.bit_length() > 1000:  # about 300 digits: never a setting, always a mistake
            digits = int(value.bit_length() * 0.30103) + 1
            return f"<an integer of about {digits} digits>"
        text = repr(value)
    elif isinstance(value, (list, tuple)):
        shown_items = [short_repr(item, limit) for item in value[:8]]
        more = f", ... ({len(value)} items)" if len(value) > 8 else ""
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
        text = opening + ", ".join(shown_items) + more + closing
    elif isinstance(value, str):
        text = repr(value[: limit + 1])
    else:
        text = f"<{type(value).__name__}>" if not isinstance(value, dict) else (
            "{" + ", ".join(f"{short_repr(k, 20)}: ..." for k in list(value)[:4]) + "}")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plural(count: int, word: str) -> str:
    """``count`` and ``word``, with an ``s`` unless ``count`` is 1: ``plural(1, "epoch")`` is
    ``"1 epoch"``, ``plural(3, "epoch")`` is ``"3 epochs"`` (every counted noun gradwise prints
    takes a plain ``s``)."""
    return f"{count} {word}{'' if count == 1 else 's'}"
