"""Fixtures for the CLI tests: an isolated working folder and data locations, no network."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gradwise.data import datasets

UNREACHABLE_MIRROR = "http://127.0.0.1:9/"  # the discard port: refused at once, never the internet


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a temporary folder; hide the user's cache, GRADWISE_DATA, the system data folders
    and the real download mirrors."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv("GRADWISE_DEBUG", raising=False)
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIRS", ())
    for name, spec in list(datasets._SPECS.items()):
        offline = dataclasses.replace(spec, mirrors=(UNREACHABLE_MIRROR,))
        monkeypatch.setitem(datasets._SPECS, name, offline)
    return tmp_path
