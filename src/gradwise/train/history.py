"""History: what happened in each epoch of ``Trainer.fit``, as plain JSON-able records.

Each epoch is one dict with the keys ``epoch`` (1-based), ``loss``, ``val_loss`` (when
validation data were given), one key per metric (``accuracy``, ``val_accuracy``, ...), ``lr``
(the learning rate of the first parameter group at the end of the epoch), ``epoch_time``
(seconds), ``steps`` (optimizer steps in the epoch) and ``samples``.

Example:
    >>> history = trainer.fit((x, y), epochs=3)     # doctest: +SKIP
    >>> history["loss"]                              # one value per epoch  # doctest: +SKIP
    [0.69, 0.41, 0.22]
    >>> history.save("runs/history.json")            # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

from gradwise._atomic import atomic_open
from gradwise._shown import shown

__all__ = ["History"]

_FORMAT = "gradwise.history"
_VERSION = 1


class History:
    """Per-epoch records of a training run, plus why it stopped.

    Attributes:
        epochs: list of per-epoch dicts (see the module docstring).
        stop_reason: None when all requested epochs ran; otherwise a sentence saying why
            training stopped (early stopping, a non-finite loss, a stop request).
    """

    def __init__(
        self, epochs: list[dict[str, Any]] | None = None, stop_reason: str | None = None
    ):
        self.epochs: list[dict[str, Any]] = [dict(record) for record in epochs or []]
        self.stop_reason = stop_reason

    def append(self, record: dict[str, Any]) -> None:
        """Add one epoch's record (copied, so later changes to ``record`` do not leak in)."""
        self.epochs.append(dict(record))

    def __len__(self) -> int:
        return len(self.epochs)

    def __getitem__(self, key: str) -> list[Any]:
        """The values of one key across epochs (None where an epoch lacks it)."""
        if not any(key in record for record in self.epochs):
            raise KeyError(f"History: no epoch recorded {key!r}; keys are {self.keys()}")
        return [record.get(key) for record in self.epochs]

    def __contains__(self, key: object) -> bool:
        return any(key in record for record in self.epochs)

    def keys(self) -> list[str]:
        """Every key recorded in any epoch, in first-seen order."""
        seen: dict[str, None] = {}
        for record in self.epochs:
            seen.update(dict.fromkeys(record))
        return list(seen)

    @property
    def last(self) -> dict[str, Any]:
        """The latest epoch's record (empty before the first epoch ends)."""
        return dict(self.epochs[-1]) if self.epochs else {}

    def to_dict(self) -> dict[str, Any]:
        """The history as plain data: format tag, version, stop reason and one record per epoch."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "stop_reason": self.stop_reason,
            "epochs": [_json_safe_record(record) for record in self.epochs],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text; non-finite floats (a diverged loss) are written as the strings "nan"/"inf"."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Rebuild a History from ``to_dict`` output.

        Raises:
            ValueError: the format tag or version is wrong, or ``epochs`` is not a list of objects.
        """
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("History.from_dict: not a gradwise history (missing format tag)")
        if data.get("version") != _VERSION:
            raise ValueError(
                f"History.from_dict: unsupported history version {data.get('version')!r} "
                f"(this gradwise reads version {_VERSION})"
            )
        epochs = data.get("epochs")
        if not isinstance(epochs, list) or not all(isinstance(r, dict) for r in epochs):
            raise ValueError("History.from_dict: 'epochs' must be a list of objects")
        return cls([_restore_record(record) for record in epochs], data.get("stop_reason"))

    @classmethod
    def from_json(cls, text: str) -> History:
        """Parse ``to_json`` text; ValueError on invalid JSON or a wrong format tag or version."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"History.from_json: invalid JSON ({error})") from error
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_json` to ``path`` atomically (a crash never leaves half a file)."""
        with atomic_open(path, "w") as handle:
            handle.write(self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> History:
        """Read a history saved by ``save``; ValueError names ``path`` when unreadable or not a
        history.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ValueError(f"History.load: cannot read {shown(path)}: {error}") from error
        try:
            return cls.from_json(text)
        except ValueError as error:
            raise ValueError(f"History.load: {shown(path)}: {error}") from error

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, History):
            return NotImplemented
        return self.to_json() == other.to_json()

    def _repr_html_(self) -> str:
        """Jupyter's display: one row per epoch, one column per key, and why training stopped."""
        keys = self.keys()
        head = "".join(f"<th>{html.escape(str(key))}</th>" for key in keys)
        rows = []
        for record in self.epochs:
            cells = "".join(f"<td>{html.escape(_cell(record.get(key)))}</td>" for key in keys)
            rows.append(f"<tr>{cells}</tr>")
        stopped = (f"<p>stopped early: {html.escape(self.stop_reason)}</p>"
                   if self.stop_reason else "")
        return (f"<div><b>History</b> ({len(self)} epochs)<table><thead><tr>{head}</tr>"
                f"</thead><tbody>{''.join(rows)}</tbody></table>{stopped}</div>")

    def __repr__(self) -> str:
        last = self.last
        summary = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if isinstance(v, float))
        return f"History(epochs={len(self)}{', ' + summary if summary else ''})"


def _cell(value: Any) -> str:
    """One value of a record as table text: floats to 4 significant digits, None as blank."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _json_safe_record(record: dict[str, Any]) -> dict[str, Any]:
    safe = {}
    for key, value in record.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        safe[key] = value
    return safe


def _restore_record(record: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _NON_FINITE[value] if isinstance(value, str) and value in _NON_FINITE else value
        for key, value in record.items()
    }
