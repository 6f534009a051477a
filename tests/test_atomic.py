"""atomic_open / atomic_write_bytes: all or nothing, no temp files left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gradwise._atomic import atomic_open, atomic_write_bytes


class SimulatedCrashError(Exception):
    pass


def test_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


def test_text_mode_writes_utf8(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    with atomic_open(target, "w") as handle:
        handle.write("λ = 0.1\n")
    assert target.read_bytes() == "λ = 0.1\n".encode()


def test_exception_mid_write_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "checkpoint.bin"
    target.write_bytes(b"old contents")
    with pytest.raises(SimulatedCrashError), atomic_open(target) as handle:
        handle.write(b"half of the new")
        raise SimulatedCrashError
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.bin"]


def test_failed_first_write_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(SimulatedCrashError), atomic_open(tmp_path / "new.bin") as handle:
        handle.write(b"partial")
        raise SimulatedCrashError
    assert list(tmp_path.iterdir()) == []


def test_keeps_existing_permissions(tmp_path: Path) -> None:
    target = tmp_path / "private.bin"
    target.write_bytes(b"x")
    target.chmod(0o600)
    atomic_write_bytes(target, b"y")
    assert target.stat().st_mode & 0o777 == 0o600


def test_new_file_gets_normal_permissions(tmp_path: Path) -> None:
    target = tmp_path / "public.bin"
    atomic_write_bytes(target, b"y")
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_rejects_read_and_append_modes(tmp_path: Path) -> None:
    for mode in ("r", "ab", "r+b"):
        with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "x", mode):
            pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("problem", ["missing", "a_file"])
def test_a_missing_folder_names_the_destination_not_the_temp_file(tmp_path: Path,
                                                                  problem: str) -> None:
    """Regression: the error named '.e.onnx.XXXX.tmp', a file the caller never asked for."""
    parent = tmp_path / "nonexistent"
    if problem == "a_file":
        parent.write_text("")
    target = parent / "e.onnx"
    expected = FileNotFoundError if problem == "missing" else NotADirectoryError
    with pytest.raises(expected) as caught:
        atomic_write_bytes(target, b"x")
    message = str(caught.value)
    assert f"cannot write {target}" in message and str(parent) in message
    assert ".tmp" not in message
