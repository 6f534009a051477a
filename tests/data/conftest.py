"""Shared fixtures for gw.data tests: isolated search folders, tiny IDX data sets, an HTTP server.

No test here touches the network, the user's cache or the system's data folders.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from gradwise.data import datasets, download
from gradwise.data.datasets import IDXDatasetSpec
from gradwise.data.download import RemoteFile
from gradwise.data.idx import write_idx

FILE_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@pytest.fixture(autouse=True)
def isolated_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the cache at a temporary folder and hide GRADWISE_DATA and the system folders."""
    cache_home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIRS", ())
    monkeypatch.setattr(download, "RETRY_WAIT_SECONDS", 0.0)  # retries, without the pauses
    return cache_home / "gradwise"


def write_tiny_dataset(
    directory: Path, n_train: int = 12, n_test: int = 6, offset: int = 0, gzip: bool = True
) -> tuple[np.ndarray, ...]:
    """Write the four MNIST-style files into ``directory``; ``offset`` makes copies distinct."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(offset)
    x_train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    y_train = ((np.arange(n_train) + offset) % 10).astype(np.uint8)
    y_test = ((np.arange(n_test) + offset) % 10).astype(np.uint8)
    for name, array in zip(FILE_NAMES, (x_train, y_train, x_test, y_test), strict=True):
        target = name if gzip else name.removesuffix(".gz")
        write_idx(directory / target, array, gzip=gzip)
    return x_train, y_train, x_test, y_test


def spec_for(directory: Path, mirrors: tuple[str, ...], name: str = "tiny") -> IDXDatasetSpec:
    """A data set spec whose checksums are those of the gzip files in ``directory``."""
    remotes = []
    for file_name in FILE_NAMES:
        data = (directory / file_name).read_bytes()
        remotes.append(
            RemoteFile(
                file_name,
                sha256=hashlib.sha256(data).hexdigest(),
                md5=hashlib.md5(data).hexdigest(),
                size=len(data),
            )
        )
    return IDXDatasetSpec(
        name=name,
        train_images=remotes[0],
        train_labels=remotes[1],
        test_images=remotes[2],
        test_labels=remotes[3],
        mirrors=mirrors,
        classes=tuple(str(digit) for digit in range(10)),
    )


STALL_SECONDS = 3.0
_FLAKY_SEEN: set[str] = set()


@dataclass
class LocalServer:
    root: Path
    base_url: str

    def url(self, folder: str) -> str:
        return f"{self.base_url}/{folder}/"


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files; anything under /broken/ announces its full size, then hangs up halfway;
    /stall/ sends the headers and half the bytes, then goes silent for STALL_SECONDS;
    /flaky/ answers 503 to the first request for each file and serves it afterwards."""

    def do_GET(self) -> None:
        if self.path.startswith("/stall/"):
            path = Path(self.directory) / "good" / self.path.removeprefix("/stall/")
            data = path.read_bytes() if path.is_file() else b"x" * 1000
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                time.sleep(STALL_SECONDS)
            self.close_connection = True
            return
        if self.path.startswith("/flaky/"):
            if self.path not in _FLAKY_SEEN:
                _FLAKY_SEEN.add(self.path)
                self.send_error(503, "Service Unavailable")
                return
            self.path = "/good/" + self.path.removeprefix("/flaky/")
        if self.path.startswith("/broken/"):
            path = Path(self.directory) / self.path.lstrip("/")
            data = path.read_bytes() if path.is_file() else b"x" * 1000
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LocalServer]:
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "www"``, stopped after the test."""
    root = tmp_path / "www"
    root.mkdir()
    _FLAKY_SEEN.clear()

    def handler(*args, **kwargs):
        return _Handler(*args, directory=str(root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.daemon = True
    thread.start()
    try:
        yield LocalServer(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def files_under(directory: Path) -> list[str]:
    """Every file below ``directory`` (hidden temp files included), as sorted relative paths."""
    if not directory.exists():
        return []
    return sorted(
        str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file()
    )


@pytest.fixture
def tiny_dataset():
    """``write_tiny_dataset(directory, ...)``: write a small MNIST-style data set."""
    return write_tiny_dataset


@pytest.fixture
def make_spec():
    """``spec_for(directory, mirrors)``: a spec whose checksums match the files written there."""
    return spec_for


@pytest.fixture
def list_files():
    """``files_under(directory)``: every file below a folder, temp files included."""
    return files_under
