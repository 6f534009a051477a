"""reuse_freed_memory: applies on Linux/glibc, is idempotent, and is a no-op elsewhere."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from gradwise import _malloc

on_glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not on_glibc, reason="mallopt tuning exists only on Linux with glibc")
def test_applies_on_glibc_and_twice_is_fine():
    assert _malloc.reuse_freed_memory() is True
    assert _malloc.reuse_freed_memory() is True


def test_is_a_no_op_elsewhere(monkeypatch):
    monkeypatch.setattr(_malloc, "_applied", False)
    monkeypatch.setattr(_malloc.platform, "system", lambda: "Darwin")
    assert _malloc.reuse_freed_memory() is False


def test_importing_gradwise_does_not_tune_the_allocator():
    # process-wide tuning is the program's choice; the flag stays down until someone calls it
    code = "import gradwise, gradwise._malloc as m; print(m._applied)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
