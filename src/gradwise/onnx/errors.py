"""The exporter's error, in a module of its own so that the converters (ops.py) and the tracer
(export.py) both import it and neither imports the other's module for it."""

from __future__ import annotations


class ExportError(RuntimeError):
    """The model cannot be exported; the message names the op (and module) that stopped it."""
