"""Downloading files from a list of mirrors with checksum verification.

A download streams into a temporary file beside its destination, hashes the bytes as they
arrive, and only renames the file into place once the size and every known checksum match.
Anything that goes wrong (timeout, HTTP error, connection dropped mid-transfer, checksum
mismatch) deletes the temporary file, so the destination directory never holds a partial or
unverified file. The next mirror is then tried.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gradwise._atomic import atomic_open

__all__ = ["DownloadError", "RemoteFile", "download_file", "fetch_from_mirrors", "verify_file"]

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for a connection or for the next block of data."""

_CHUNK_BYTES = 1 << 16
_USER_AGENT = "gradwise-data/0.1 (+https://pypi.org/project/gradwise/)"


@dataclass(frozen=True)
class RemoteFile:
    """A file available from mirrors, with the checksums it must match.

    Attributes:
        name: the file name on every mirror and on disk, e.g. ``"train-images-idx3-ubyte.gz"``.
        sha256: published SHA-256 of the file, lowercase hex, or None when none is published.
        md5: published MD5, checked as well when given.
        size: exact size in bytes, or None.
    """

    name: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None


class DownloadError(OSError):
    """No mirror delivered a verified copy of a file.

    Attributes:
        attempts: ``(url, reason)`` for every URL tried, in order.
    """

    def __init__(self, message: str, attempts: list[tuple[str, str]]):
        super().__init__(message)
        self.attempts = attempts


class _VerificationError(Exception):
    """Internal: the bytes arrived but are not the bytes we expected."""


def download_file(
    url: str,
    destination: str | os.PathLike[str],
    remote: RemoteFile,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``destination`` and verify it against ``remote``'s size and hashes.

    The file appears at ``destination`` only once it is complete and verified; on any failure
    nothing is left behind and :class:`DownloadError` is raised with the reason.
    """
    destination = Path(destination)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise DownloadError(f"{url}: only http and https URLs are supported", [(url, "bad scheme")])
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with (
            urllib.request.urlopen(request, timeout=timeout) as response,
            atomic_open(destination, "wb") as handle,
        ):
            _stream_and_verify(response, handle, remote, url, progress)
    except _VerificationError as error:
        raise DownloadError(f"{url}: {error}", [(url, str(error))]) from None
    except urllib.error.HTTPError as error:
        reason = f"HTTP {error.code} {error.reason}"
        raise DownloadError(f"{url}: {reason}", [(url, reason)]) from error
    except urllib.error.URLError as error:
        reason = str(error.reason)
        raise DownloadError(f"{url}: {reason}", [(url, reason)]) from error
    except (OSError, ValueError, http.client.HTTPException) as error:
        # timeouts, resets, a malformed response, an unwritable destination directory
        reason = f"{type(error).__name__}: {error}"
        raise DownloadError(f"{url}: {reason}", [(url, reason)]) from error
    return destination


def fetch_from_mirrors(
    remote: RemoteFile,
    mirrors: tuple[str, ...] | list[str],
    directory: str | os.PathLike[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> tuple[Path, str]:
    """Download ``remote`` into ``directory``, trying each mirror (a base URL) in turn.

    Returns ``(path, url)``: the verified file and the URL it came from. Raises
    :class:`DownloadError` listing every URL and why it failed when no mirror works.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    destination = directory / remote.name
    attempts: list[tuple[str, str]] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + remote.name
        try:
            download_file(url, destination, remote, timeout=timeout, progress=progress)
            return destination, url
        except DownloadError as error:
            attempts.extend(error.attempts)
    tried = "\n".join(f"  {url}: {reason}" for url, reason in attempts) or "  (no mirrors)"
    raise DownloadError(f"could not download {remote.name}; tried:\n{tried}", attempts)


def verify_file(path: str | os.PathLike[str], remote: RemoteFile) -> str | None:
    """Check a file on disk against ``remote``; return None if it matches, else the reason."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if remote.size is not None and size != remote.size:
            return f"size is {size} bytes, expected {remote.size}"
        hashers = _hashers(remote)
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                for hasher in hashers.values():
                    hasher.update(chunk)
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    return _checksum_problem(hashers, remote)


def _stream_and_verify(response, handle, remote: RemoteFile, url: str, progress: bool) -> None:
    """Copy the response body to ``handle`` while hashing; raise _VerificationError on mismatch."""
    header_length = response.headers.get("Content-Length")
    announced = int(header_length) if header_length and header_length.isdigit() else None
    if remote.size is not None and announced is not None and announced != remote.size:
        raise _VerificationError(f"server announces {announced} bytes, expected {remote.size}")
    # Never accept more bytes than the file can legitimately have.
    limit = remote.size if remote.size is not None else announced
    hashers = _hashers(remote)
    received = 0
    with tqdm(
        total=limit,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=remote.name,
        disable=not progress,
        leave=False,
    ) as bar:
        while chunk := response.read(_CHUNK_BYTES):
            received += len(chunk)
            if limit is not None and received > limit:
                raise _VerificationError(f"server sent more than the expected {limit} bytes")
            handle.write(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
            bar.update(len(chunk))
    # http.client returns a short body rather than raising when the connection drops early.
    expected = announced if announced is not None else remote.size
    if expected is not None and received != expected:
        raise _VerificationError(f"connection closed after {received} of {expected} bytes")
    problem = _checksum_problem(hashers, remote)
    if problem is not None:
        raise _VerificationError(problem)


def _hashers(remote: RemoteFile) -> dict[str, Any]:
    hashers = {}
    if remote.sha256 is not None:
        hashers["sha256"] = hashlib.sha256()
    if remote.md5 is not None:
        hashers["md5"] = hashlib.md5(usedforsecurity=False)
    return hashers


def _checksum_problem(hashers: dict[str, Any], remote: RemoteFile) -> str | None:
    for algorithm, hasher in hashers.items():
        expected = getattr(remote, algorithm).lower()
        actual = hasher.hexdigest()
        if actual != expected:
            return f"{algorithm} mismatch: got {actual}, expected {expected}"
    return None
