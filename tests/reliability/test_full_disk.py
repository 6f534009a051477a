"""A full disk never damages what was saved before, and the error says what could not be saved.

Two ways to fill the disk, every scenario run under both:
- ``tmpfs``: a real 256 KiB tmpfs mounted over a temporary folder, then filled with a ballast
  file (needs root and mount permission; skipped otherwise);
- ``patched``: the file object behind gradwise's atomic writer stops accepting bytes after a
  budget, as a full disk does (part of a write lands, then ENOSPC), runnable anywhere.

Each scenario saves once with room to spare, fills the disk, saves again and checks that the
second save raises an OSError (ENOSPC) naming the file, that the first save reads back exactly
as before, and that no temporary file is left behind.

A static scan also checks that every write in the package goes through gradwise._atomic.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import functools
import hashlib
import http.server
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import gradwise
import gradwise._atomic as atomic_module
from gradwise.data.download import RemoteFile, download_file
from gradwise.data.idx import read_idx, write_idx
from gradwise.train.checkpoint import CheckpointData, load_checkpoint, save_checkpoint

TMPFS_BYTES = 256 * 1024
ROOM_LEFT = 2048


class _BudgetedFile:
    """Wraps a real file: writes succeed until ``budget[0]`` bytes are used, then ENOSPC."""

    def __init__(self, handle: Any, budget: list[int]):
        self._handle, self._budget = handle, budget

    def write(self, data: Any) -> int:
        size = len(data.encode() if isinstance(data, str) else data)
        if size <= self._budget[0]:
            self._budget[0] -= size
            return self._handle.write(data)
        fits = self._budget[0]
        self._budget[0] = 0
        self._handle.write(data[:fits])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _BudgetedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


@dataclass
class Disk:
    """A folder on a disk that :meth:`fill_up` can fill (see the module docstring)."""

    root: Path
    fill_up: Callable[[], None]


def _ballast(root: Path) -> None:
    """Fill a tmpfs with zeros until ENOSPC, then free ROOM_LEFT bytes."""
    ballast = root / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while os.write(fd, b"\0" * 4096):
                pass
    finally:
        os.close(fd)
    os.truncate(ballast, max(0, ballast.stat().st_size - ROOM_LEFT))


@contextlib.contextmanager
def _tmpfs(directory: Path) -> Iterator[Disk]:
    directory.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(directory)],
        capture_output=True, text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield Disk(directory, lambda: _ballast(directory))
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


@contextlib.contextmanager
def _patched(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    directory.mkdir()
    budget = [1 << 40]
    real_fdopen = os.fdopen
    fake_os = SimpleNamespace(
        **{name: getattr(os, name) for name in dir(os) if not name.startswith("__")}
    )
    fake_os.fdopen = lambda *a, **k: _BudgetedFile(real_fdopen(*a, **k), budget)
    monkeypatch.setattr(atomic_module, "os", fake_os)
    yield Disk(directory, lambda: budget.__setitem__(0, ROOM_LEFT))


@pytest.fixture(params=["tmpfs", "patched"])
def disk(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if request.param == "tmpfs":
        with _tmpfs(tmp_path / "disk") as mounted:
            yield mounted
    else:
        with _patched(tmp_path / "disk", monkeypatch) as patched:
            yield patched


# ---- scenarios: (save the first version, save the second version, read back, saved path) ----


def _model_state(width: int) -> dict[str, np.ndarray]:
    return {"fc.weight": np.full((width, 64), width, dtype=np.float32)}


def _checkpoint_scenario(root: Path) -> tuple:
    path = root / "ckpt"
    return (
        lambda: save_checkpoint(path, CheckpointData(model_state=_model_state(4))),
        lambda: save_checkpoint(path, CheckpointData(model_state=_model_state(64))),
        lambda: load_checkpoint(path).model_state["fc.weight"].tobytes(),
        path,
    )


def _idx_scenario(root: Path) -> tuple:
    path = root / "images.idx"
    return (
        lambda: write_idx(path, np.zeros((2, 8, 8), np.uint8)),
        lambda: write_idx(path, np.ones((64, 28, 28), np.uint8)),
        lambda: read_idx(path).tobytes(),
        path,
    )


def _history_scenario(root: Path) -> tuple:
    from gradwise.train import CSVLogger

    path = root / "metrics.csv"
    logger = CSVLogger(path)

    def log_epochs(count: int) -> None:
        epochs = [{"epoch": i + 1, "loss": 1.0 / (i + 1), "note": "x" * 100} for i in range(count)]
        logger.trainer = SimpleNamespace(history=SimpleNamespace(epochs=epochs))
        logger.on_epoch_end(count - 1, epochs[-1])

    return lambda: log_epochs(1), lambda: log_epochs(100), path.read_bytes, path


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


SCENARIOS = {
    "checkpoint": _checkpoint_scenario,
    "idx": _idx_scenario,
    "history_csv": _history_scenario,
}


def check_disk_full_keeps_previous(save_old, save_new, read, saved_path: Path, disk: Disk) -> None:
    """The helper behind every scenario: see the module docstring."""
    save_old()
    before = read()
    disk.fill_up()
    with pytest.raises(OSError) as caught:
        save_new()
    assert caught.value.errno == errno.ENOSPC or "No space left" in str(caught.value)
    assert saved_path.name in str(caught.value), f"error does not name the file: {caught.value}"
    assert read() == before
    leftovers = [p for p in saved_path.parent.rglob("*.tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_full_disk_keeps_previous_save(disk: Disk, scenario: str) -> None:
    check_disk_full_keeps_previous(*SCENARIOS[scenario](disk.root), disk)


def test_full_disk_during_download_keeps_previous_file(disk: Disk, http_server) -> None:
    base_url, served = http_server
    new_payload = os.urandom(64 * 1024)
    (served / "data.bin").write_bytes(new_payload)
    remote = RemoteFile("data.bin", sha256=hashlib.sha256(new_payload).hexdigest())
    destination = disk.root / "data.bin"
    check_disk_full_keeps_previous(
        lambda: destination.write_bytes(b"previous verified copy"),
        lambda: download_file(f"{base_url}/data.bin", destination, remote, progress=False),
        destination.read_bytes,
        destination,
        disk,
    )


# ---- every write goes through gradwise._atomic -----------------------------------------------

PATH_WRITERS = {"write_text", "write_bytes", "savefig", "save_file", "tofile"}
NUMPY_WRITERS = {"save", "savez", "savez_compressed", "savetxt"}
HANDLE_NAMES = {"handle", "file", "stream", "f", "buffer"}


def direct_writes(source: str, filename: str) -> list[str]:
    """Calls in ``source`` that write a file without gradwise._atomic, as 'file:line: what'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        owner = getattr(getattr(func, "value", None), "id", None)
        if name == "open":
            modes = node.args[1:2] + [k.value for k in node.keywords if k.arg == "mode"]
            if any(isinstance(m, ast.Constant) and set(str(m.value)) & set("wax+") for m in modes):
                found.append(f"{filename}:{node.lineno}: open(..., {modes[0].value!r})")
        elif name in PATH_WRITERS or (name in NUMPY_WRITERS and owner in {"np", "numpy"}):
            target = node.args[0] if node.args else None
            # savefig(handle) into an atomic_open handle is fine; a path is not.
            if isinstance(target, ast.Name) and target.id in HANDLE_NAMES:
                continue
            found.append(f"{filename}:{node.lineno}: {name}() straight to a path")
    return found


def test_every_write_in_the_package_is_atomic() -> None:
    root = Path(gradwise.__file__).parent
    problems = [
        problem
        for module in sorted(root.rglob("*.py"))
        if module.name != "_atomic.py"
        for problem in direct_writes(module.read_text(encoding="utf-8"), str(module))
    ]
    assert not problems, "writes that bypass gradwise._atomic:\n" + "\n".join(problems)
