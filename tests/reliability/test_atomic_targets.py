"""atomic_open's destination rules (h5fix items 1-2): regular files only; modes never borrowed
from a symlink's target; set-id bits never carried over."""

from __future__ import annotations

import os
import stat

import pytest

from gradwise._atomic import atomic_write_bytes


def test_refuses_a_folder_without_naming_the_temp_file(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder") as info:
        atomic_write_bytes(tmp_path, b"x")
    assert ".tmp" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make", ["fifo", "chardev", "link_to_fifo"])
def test_refuses_non_regular_targets(tmp_path, make):
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    target = {"fifo": fifo, "chardev": "/dev/null", "link_to_fifo": tmp_path / "l"}[make]
    if make == "link_to_fifo":
        os.symlink(fifo, target)
    with pytest.raises(OSError, match="not a regular file"):
        atomic_write_bytes(target, b"x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["p"] + (["l"] if make == "link_to_fifo" else []))


def test_symlink_target_mode_is_not_copied(tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"secret")
    os.chmod(outside, 0o4777)
    folder = tmp_path / "run"
    folder.mkdir()
    link = folder / "metrics.jsonl"
    os.symlink(outside, link)
    atomic_write_bytes(link, b"new")
    info = os.lstat(link)
    assert stat.S_ISREG(info.st_mode)
    assert info.st_mode & 0o7000 == 0
    assert info.st_mode & 0o777 == 0o666 & ~_umask()
    assert outside.read_bytes() == b"secret"
    assert os.stat(outside).st_mode & 0o7777 == 0o4777


def test_regular_file_keeps_permissions_but_not_setid_bits(tmp_path):
    path = tmp_path / "history.json"
    path.write_bytes(b"old")
    os.chmod(path, 0o6640)
    atomic_write_bytes(path, b"new")
    assert os.stat(path).st_mode & 0o7777 == 0o640


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
