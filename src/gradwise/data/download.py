"""Downloading files from a list of mirrors with checksum verification, on pooch.

The transfer itself is pooch's :class:`pooch.HTTPDownloader` (requests, streamed, with a
progress bar); this module adds what a data set needs around it:

- mirrors: each base URL is tried in turn until one delivers a verified copy;
- retries: a transient failure once the server has answered (a read timeout, a connection
  dropped mid-transfer, HTTP 408/429/5xx) is retried on the same mirror ``retries`` times,
  waiting ``RETRY_WAIT_SECONDS * attempt`` in between (pooch's own ``retry_if_failed`` uses the
  same linear back-off). No connection at all (refused, unknown host, connect timeout) moves to
  the next mirror at once: offline, retrying would only delay the fallback;
- verification: SHA-256 (and MD5 and the exact size, when published) are computed as the bytes
  arrive and checked before the file is kept;
- a size cap: never more bytes than the published size, or than ``max_bytes`` when no size is
  published; a server announcing a larger ``Content-Length`` is refused before any byte is kept;
- atomic writes: bytes go to a temporary file beside the destination
  (:func:`gradwise._atomic.atomic_open`), which is renamed into place only once complete and
  verified. Anything that goes wrong deletes the temporary file, so the destination directory
  never holds a partial or unverified file.

Every failure is a :class:`DownloadError` naming the URL and the reason.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from gradwise._atomic import atomic_open

__all__ = ["DownloadError", "RemoteFile", "download_file", "fetch_from_mirrors", "verify_file"]

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for a connection or for the next block of data (requests' read timeout)."""

DEFAULT_RETRIES = 2
"""Extra attempts on the same mirror after a transient failure."""

DEFAULT_MAX_BYTES = 1 << 30
"""Largest download accepted (1 GiB) when the file's size is not published."""

RETRY_WAIT_SECONDS = 1.0
"""Pause before retry ``k`` is ``k * RETRY_WAIT_SECONDS`` (tests set it to 0)."""

_CHUNK_BYTES = 1 << 16
_USER_AGENT = "gradwise-data/0.1 (+https://pypi.org/project/gradwise/)"
# HTTP statuses worth asking again: too many requests and the server-side errors (RFC 9110 15.6)
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


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

    The message names every URL tried and why it failed.

    Attributes:
        attempts: ``(url, reason)`` for every URL tried, in order (a URL retried after a
            transient failure appears once per attempt).
    """

    def __init__(self, message: str, attempts: list[tuple[str, str]]):
        super().__init__(message)
        self.attempts = attempts


class _VerificationError(Exception):
    """Internal: the bytes arrived (or were announced) but are not the bytes we expected."""


class _TransientError(Exception):
    """Internal: a failure worth retrying on the same mirror (timeout, dropped connection, 5xx)."""


class _UnreachableError(Exception):
    """Internal: no connection at all (refused, unknown host, connect timeout): the next mirror
    is tried at once, since asking again offline only makes a fallback wait."""


class _VerifyingWriter:
    """The file object pooch writes into: counts, caps and hashes the bytes on their way."""

    def __init__(self, handle: IO[bytes], remote: RemoteFile, cap: int):
        self.handle = handle
        self.cap = cap
        self.received = 0
        self.hashers = _hashers(remote)

    def write(self, chunk: bytes) -> int:
        self.received += len(chunk)
        if self.received > self.cap:
            raise _VerificationError(f"server sent more than the expected {self.cap} bytes")
        for hasher in self.hashers.values():
            hasher.update(chunk)
        return self.handle.write(chunk)

    def flush(self) -> None:
        self.handle.flush()


class _Progress:
    """The progress object pooch drives: checks the announced size, then shows a tqdm bar.

    pooch sets ``total`` from ``Content-Length`` (0 when absent) before the first byte is
    written, which is where an oversized or wrongly sized file is refused.
    """

    def __init__(self, remote: RemoteFile, cap: int, show: bool):
        self.remote = remote
        self.cap = cap
        self.show = show
        self.announced: int | None = None
        self.bar: tqdm[Any] | None = None

    @property
    def total(self) -> int:
        return self.announced or 0

    @total.setter
    def total(self, announced: int) -> None:
        self.announced = announced or None
        size = self.remote.size
        if self.announced is not None:
            if size is not None and self.announced != size:
                raise _VerificationError(f"server announces {self.announced} bytes, "
                                         f"expected {size}")
            if self.announced > self.cap:
                raise _VerificationError(f"server announces {self.announced} bytes, more "
                                         f"than the {self.cap}-byte cap")
        self.bar = tqdm(total=self.announced or size, unit="B", unit_scale=True,
                        unit_divisor=1024, desc=self.remote.name, disable=not self.show,
                        leave=False, dynamic_ncols=True)

    def update(self, count: int) -> None:
        if self.bar is not None:
            self.bar.update(count)

    def reset(self) -> None:
        if self.bar is not None:
            self.bar.reset()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def download_file(
    url: str,
    destination: str | os.PathLike[str],
    remote: RemoteFile,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
    retries: int = DEFAULT_RETRIES,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Path:
    """Download ``url`` to ``destination`` and verify it against ``remote``'s size and hashes.

    Args:
        url: an ``http`` or ``https`` URL.
        destination: the file to create or replace; its folder must exist.
        remote: the expected name, size and checksums.
        timeout: seconds to wait for the connection and for each block of data; a server that
            stalls longer fails the attempt (no hang).
        progress: show a tqdm progress bar on stderr.
        retries: extra attempts after a transient failure (read timeout, connection dropped
            mid-transfer, HTTP 408/429/5xx), waiting ``RETRY_WAIT_SECONDS * attempt`` between;
            no connection at all is not retried.
        max_bytes: the cap when ``remote.size`` is None (with a size, the size is the cap).

    Returns:
        ``destination`` as a Path. The file appears there only once complete and verified.

    Raises:
        DownloadError: the URL is not http(s), or every attempt failed; the message names the
            URL and the reason (``HTTP 404 Not Found``, ``sha256 mismatch``, ``connection closed
            after 500 of 1000 bytes``, ``timed out``...). Nothing is left behind.
    """
    destination = Path(destination)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise DownloadError(f"{url}: only http and https URLs are supported", [(url, "bad scheme")])
    if retries < 0:
        raise ValueError(f"download_file: retries must be >= 0, got {retries}")
    attempts: list[tuple[str, str]] = []
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(RETRY_WAIT_SECONDS * attempt)
        try:
            _download_once(url, destination, remote, timeout, progress, max_bytes)
            return destination
        except _TransientError as error:
            attempts.append((url, str(error)))
        except (_VerificationError, _UnreachableError) as error:
            attempts.append((url, str(error)))
            break
        except OSError as error:
            # an unwritable destination folder, a full disk: asking again will not help
            attempts.append((url, f"{type(error).__name__}: {error}"))
            break
    reason = attempts[-1][1]
    if len(attempts) > 1:
        reason += f" ({len(attempts)} attempts)"
    raise DownloadError(f"{url}: {reason}", attempts)


def fetch_from_mirrors(
    remote: RemoteFile,
    mirrors: tuple[str, ...] | list[str],
    directory: str | os.PathLike[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
    retries: int = DEFAULT_RETRIES,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[Path, str]:
    """Download ``remote`` into ``directory``, trying each mirror (a base URL) in turn.

    Each mirror gets :func:`download_file`'s retries for transient failures before the next
    one is tried; a checksum or size mismatch moves on at once.

    Returns:
        ``(path, url)``: the verified file and the URL it came from.

    Raises:
        DownloadError: no mirror worked; the message lists every URL tried and why it failed.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    destination = directory / remote.name
    attempts: list[tuple[str, str]] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + remote.name
        try:
            download_file(url, destination, remote, timeout=timeout, progress=progress,
                          retries=retries, max_bytes=max_bytes)
            return destination, url
        except DownloadError as error:
            attempts.extend(error.attempts)
    tried = "\n".join(f"  {url}: {reason}" for url, reason in attempts) or "  (no mirrors)"
    raise DownloadError(f"could not download {remote.name}; tried:\n{tried}", attempts)


def verify_file(path: str | os.PathLike[str], remote: RemoteFile) -> str | None:
    """Check a file on disk against ``remote``'s size, SHA-256 and MD5.

    Returns:
        None when it matches, else the reason (``"size is 90 bytes, expected 100"``,
        ``"sha256 mismatch: got ..., expected ..."``, or the OSError that stopped the read).
    """
    import pooch  # here, not at the top: `import gradwise` should not pay for requests

    path = Path(path)
    try:
        size = path.stat().st_size
        if remote.size is not None and size != remote.size:
            return f"size is {size} bytes, expected {remote.size}"
        for algorithm in ("sha256", "md5"):
            expected = getattr(remote, algorithm)
            if expected is not None:
                actual = pooch.file_hash(str(path), alg=algorithm)
                if actual != expected.lower():
                    return f"{algorithm} mismatch: got {actual}, expected {expected.lower()}"
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    return None


def _download_once(url: str, destination: Path, remote: RemoteFile, timeout: float,
                   progress: bool, max_bytes: int) -> None:
    """One attempt: stream through pooch into an atomic file, then check length and hashes."""
    import pooch
    import requests

    cap = remote.size if remote.size is not None else max_bytes
    bar = _Progress(remote, cap, progress)
    # identity: a server that gzips on the fly would make requests hand us other bytes
    downloader = pooch.HTTPDownloader(
        progressbar=bar, chunk_size=_CHUNK_BYTES, timeout=timeout,
        headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"},
    )
    writer: _VerifyingWriter | None = None
    try:
        with atomic_open(destination, "wb") as handle:
            writer = _VerifyingWriter(handle, remote, cap)
            downloader(url, writer, None)
            _check_complete(writer, bar, remote)
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else 0
        reason = f"HTTP {status} {error.response.reason if error.response is not None else ''}"
        if status in _TRANSIENT_STATUS:
            raise _TransientError(reason.strip()) from error
        raise _VerificationError(reason.strip()) from error
    except requests.exceptions.ChunkedEncodingError as error:
        received = max(writer.received if writer is not None else 0, _bytes_read(error))
        expected = bar.announced or remote.size
        of = f" of {expected}" if expected is not None else ""
        raise _TransientError(f"connection closed after {received}{of} bytes") from error
    except requests.exceptions.ConnectTimeout as error:
        raise _UnreachableError(f"no connection within {timeout:g} s") from error
    except (requests.Timeout, requests.ConnectionError) as error:
        text = str(error)
        if isinstance(error, requests.Timeout) or "timed out" in text.lower():
            raise _TransientError(f"timed out (no data for {timeout:g} s)") from error
        if bar.bar is not None:  # the server had answered: the connection dropped mid-body
            raise _TransientError(f"connection lost: {text}") from error
        if "refused" in text.lower():
            raise _UnreachableError("connection refused") from error
        raise _UnreachableError(f"{type(error).__name__}: {text}") from error
    except requests.RequestException as error:  # a malformed URL or response
        raise _VerificationError(f"{type(error).__name__}: {error}") from error
    finally:
        bar.close()


def _bytes_read(error: BaseException) -> int:
    """Bytes urllib3 had read when the body ended early (its IncompleteRead, wrapped by requests).

    The partial chunk never reaches the writer, so this is the only place the count survives.
    """
    import urllib3

    pending: list[object] = [error]
    while pending:
        item = pending.pop()
        if isinstance(item, urllib3.exceptions.IncompleteRead) and isinstance(item.partial, int):
            return item.partial
        if isinstance(item, BaseException):
            pending.extend(item.args)
    return 0


def _check_complete(writer: _VerifyingWriter, bar: _Progress, remote: RemoteFile) -> None:
    """Raise when fewer bytes arrived than announced, or a checksum differs."""
    expected = bar.announced if bar.announced is not None else remote.size
    if expected is not None and writer.received != expected:
        raise _TransientError(f"connection closed after {writer.received} of {expected} bytes")
    problem = _checksum_problem(writer.hashers, remote)
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
