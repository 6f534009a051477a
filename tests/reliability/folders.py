"""Compare run folders and checkpoints byte for byte, apart from wall-clock fields.

Two runs of the same training can only differ in how long things took and when they started;
:data:`WALL_CLOCK_FIELDS` names every such field gradwise writes. Every other byte must match:
safetensors files are compared raw, JSON and JSON Lines files after dropping those fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WALL_CLOCK_FIELDS = frozenset({"epoch_time", "seconds", "created", "resumed", "interrupted_by",
                               "checkpoint_sha256"})
"""Durations and timestamps, and run.json's count of resumes: all legitimately differ; and
run.json's digests of the checkpoint manifests, whose histories hold ``epoch_time`` (the
manifests themselves are compared, those fields removed; ``weights_sha256`` is compared)."""
NOT_COMPARED = ("report.html", "learning_curves.png")
"""Rendered from the compared files (the report also shows timings)."""


def _without_clock(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_clock(v) for k, v in value.items() if k not in WALL_CLOCK_FIELDS}
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


def comparable_files(folder: Path) -> dict[str, bytes]:
    """``{relative path: bytes}`` of every file under ``folder``, wall-clock fields removed."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name in NOT_COMPARED:
            continue
        data = path.read_bytes()
        if path.suffix == ".json":
            data = json.dumps(_without_clock(json.loads(data)), sort_keys=True).encode()
        elif path.suffix == ".jsonl":
            data = b"\n".join(
                json.dumps(_without_clock(json.loads(line)), sort_keys=True).encode()
                for line in data.splitlines()
            )
        files[str(path.relative_to(folder))] = data
    return files


def assert_same_folders(got: Path, expected: Path) -> None:
    """Same files, same bytes (see the module docstring); names the first difference."""
    a, b = comparable_files(got), comparable_files(expected)
    assert sorted(a) == sorted(b), f"different files: {sorted(set(a) ^ set(b))}"
    for name in a:
        assert a[name] == b[name], f"{name} differs between {got} and {expected}"
