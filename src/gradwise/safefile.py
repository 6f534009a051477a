"""One guarded way to open a file someone else may have made: every loader of untrusted input.

Weights, checkpoints, run folders, configs, IDX data sets and pictures all arrive from other
people. Before a byte is parsed, :func:`open_untrusted` makes sure that

- the path is a regular file: a FIFO would block the reader forever, ``/dev/zero`` would
  never end, a socket or a directory is no input at all. The type is checked with ``stat``
  before opening, so a device is never opened (opening some devices acts on them), and again
  with ``fstat`` on the opened descriptor, so a file swapped between the check and the read
  cannot slip through (``O_NONBLOCK`` keeps even the open of a FIFO swapped in from
  blocking);
- symlinks are resolved, and the real file lies inside ``within`` (the folder it belongs to,
  e.g. the run folder), so a run folder cannot make gradwise read ``/etc/shadow`` or another
  user's files and report on them;
- its size is known before reading and is at most ``max_bytes``; reading stops at that size,
  so a file that grows while being read cannot take more memory than announced.

Errors are raised as the caller's own exception type (``error=CheckpointError`` ...), with a
message naming the file and the reason, so each loader keeps its named error.

Example:
    >>> payload = read_untrusted(run / "run.json", max_bytes=1 << 20, within=run,
    ...                          error=RunError)              # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from gradwise._shown import shown

__all__ = ["UntrustedFileError", "open_untrusted", "read_untrusted", "resolve_inside"]

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


class UntrustedFileError(OSError):
    """A file was refused before parsing: not a regular file, outside its folder, too large."""


def _format_size(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def resolve_inside(
    path: str | os.PathLike[str],
    within: str | os.PathLike[str] | None,
    error: type[Exception] = UntrustedFileError,
) -> Path:
    """The real path of ``path`` (symlinks resolved), required to lie inside ``within``.

    Raises:
        error: the path, once resolved, leaves ``within`` (names both).
    """
    real = Path(os.path.realpath(path))
    if within is not None:
        root = Path(os.path.realpath(within))
        if real != root and root not in real.parents:
            raise error(
                f"{shown(path)}: refused: it leads to {shown(real)}, outside its folder "
                f"{shown(root)} (a symlink out of the folder a file belongs to is not "
                "followed)"
            )
    return real


@contextlib.contextmanager
def open_untrusted(
    path: str | os.PathLike[str],
    *,
    max_bytes: int,
    within: str | os.PathLike[str] | None = None,
    error: type[Exception] = UntrustedFileError,
    what: str = "file",
) -> Iterator[tuple[IO[bytes], int]]:
    """Open ``path`` for reading after the checks above; yield ``(binary file, size in bytes)``.

    Args:
        max_bytes: the largest size accepted; checked against ``fstat`` before any read.
        within: the folder the real file must lie in (None: anywhere).
        error: the exception type to raise (the caller's named error).
        what: how to call the file in messages ("weights file", "run.json" ...).

    Raises:
        error: missing, unreadable, not a regular file, outside ``within``, or too large. The
            message is one line naming the file.
    """
    real = resolve_inside(path, within, error)
    try:  # a device, FIFO or socket is refused without being opened (opening one can act)
        _check_regular(os.stat(real).st_mode, path, what, error)
    except FileNotFoundError:
        raise error(f"{shown(path)}: {what} is missing") from None
    except OSError as failure:
        raise error(f"{shown(path)}: cannot open {what}: {failure.strerror}") from None
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except FileNotFoundError:
        raise error(f"{shown(path)}: {what} is missing") from None
    except OSError as failure:
        raise error(f"{shown(path)}: cannot open {what}: {failure.strerror}") from None
    try:
        info = os.fstat(fd)  # again on the descriptor: a file swapped after the stat is caught
        _check_regular(info.st_mode, path, what, error)
        if info.st_size > max_bytes:
            raise error(
                f"{shown(path)}: refused: the {what} is {_format_size(info.st_size)}, more than "
                "the "
                f"{_format_size(max_bytes)} such a file may be"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle, int(info.st_size)


def _check_regular(mode: int, path: str | os.PathLike[str], what: str,
                   error: type[Exception]) -> None:
    for test, kind in _KINDS:
        if test(mode):
            raise error(f"{shown(path)}: refused: the {what} is {kind}, not a regular file")
    if not stat.S_ISREG(mode):
        raise error(f"{shown(path)}: refused: the {what} is not a regular file")


def read_untrusted(
    path: str | os.PathLike[str],
    *,
    max_bytes: int,
    within: str | os.PathLike[str] | None = None,
    error: type[Exception] = UntrustedFileError,
    what: str = "file",
) -> bytes:
    """All bytes of ``path`` after :func:`open_untrusted`'s checks, never more than its size.

    Raises:
        error: as :func:`open_untrusted`, or the file changed size while being read.
    """
    with open_untrusted(path, max_bytes=max_bytes, within=within, error=error,
                        what=what) as (handle, size):
        try:
            payload = handle.read(size + 1)
        except OSError as failure:
            raise error(f"{shown(path)}: cannot read {what}: {failure.strerror}") from None
    if len(payload) != size:
        raise error(f"{shown(path)}: the {what} changed size while it was read; try again")
    return payload
