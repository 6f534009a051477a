"""Atomic file writes: readers see the old file or the complete new one, never half of it.

The data is written to a temporary file in the destination's directory (so the final rename
stays on one file system), flushed and fsynced, then renamed over the destination with
``os.replace``. On any error the temporary file is removed and the destination is untouched.

Example:
    >>> with atomic_open("report.json", "w") as f:   # doctest: +SKIP
    ...     json.dump(report, f)
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from gradwise._shown import shown

__all__ = ["atomic_open", "atomic_write_bytes", "check_output_file", "is_atomic_temp_name",
           "remove_leftover_temp_files"]

_ALLOWED_MODES = ("wb", "w")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` atomically when the block exits cleanly.

    Args:
        path: the destination. Its directory must exist: if not (or it cannot be written to),
            the OSError names ``path`` and the folder, never the temporary file.
        mode: ``"wb"`` for bytes or ``"w"`` for UTF-8 text.

    Raises whatever the block raises, after deleting the temporary file; ``path`` is then
    exactly as it was before. An OSError that names no file (ENOSPC from a write or fsync) is
    re-raised with ``path`` as its filename. A ``path`` that is a folder, a device, a FIFO or
    a socket is refused before anything is created (see :func:`check_output_file`): the
    rename would otherwise replace the device node or fail with a message naming the
    temporary file.
    """
    if mode not in _ALLOWED_MODES:
        raise ValueError(f"atomic_open: mode must be one of {_ALLOWED_MODES}, got {mode!r}")
    destination = Path(path)
    check_output_file(destination)
    directory = destination.parent
    try:
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{destination.name}.",
                                         suffix=".tmp")
    except OSError as error:
        # mkstemp's error names its temporary file, which the caller never asked for
        raise _destination_error(error, destination) from None
    temp_path = Path(temp_name)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file 0600; give it the mode a plain open() would have given.
        os.chmod(temp_path, _file_mode_for(destination))
        os.replace(temp_path, destination)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            temp_path.unlink()
        if isinstance(error, OSError) and error.filename is None and error.errno is not None:
            # A failed write or fsync (a full disk: ENOSPC) names no file; name the one we
            # were saving. OSError() picks the same subclass for the same errno.
            raise OSError(error.errno, f"{error.strerror}, saving", str(destination)) from error
        raise
    _fsync_directory(directory)


def check_output_file(path: str | os.PathLike[str]) -> None:
    """Refuse a write destination that is not a regular file (or a name not yet taken).

    A folder raises IsADirectoryError; a character or block device (``/dev/full``), a FIFO,
    a socket, or a symlink to any of these (or to a folder) raises an OSError with errno
    EINVAL. Both messages are one line naming ``path`` and what it is. A symlink to a regular
    file is allowed: the atomic rename replaces the link itself, never its target.
    """
    destination = Path(path)
    try:
        info = destination.stat()  # follows a symlink: what the user's name points at
    except OSError:
        return  # a new name (or a dangling link): the rename creates a regular file
    if stat.S_ISREG(info.st_mode):
        return
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, f"cannot write {shown(destination)}: it is a folder; "
                                "give a file name")
    kind = ("a character device" if stat.S_ISCHR(info.st_mode)
            else "a block device" if stat.S_ISBLK(info.st_mode)
            else "a FIFO" if stat.S_ISFIFO(info.st_mode)
            else "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file")
    raise OSError(errno.EINVAL, f"cannot write {shown(destination)}: it is {kind}, not a regular "
                  "file")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def _destination_error(error: OSError, destination: Path) -> OSError:
    """``error`` (from creating the temporary file) reworded to name ``destination``."""
    directory = destination.parent
    if not directory.exists():
        reason = f"the folder {shown(directory)} does not exist"
    elif not directory.is_dir():
        reason = f"{shown(directory)} is not a folder"
    else:
        reason = f"cannot create a file in {shown(directory)}: {error.strerror}"
    # OSError(errno, ...) picks the subclass for the errno (FileNotFoundError, PermissionError);
    # no filename argument, which str() would print a second time
    return OSError(error.errno, f"cannot write {shown(destination)}: {reason}")

_TEMP_NAME = re.compile(r"\..+\.[A-Za-z0-9_]{6,}\.tmp")


def is_atomic_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file of :func:`atomic_open` (``.NAME.XXXXXXXX.tmp``)."""
    return _TEMP_NAME.fullmatch(name) is not None


def remove_leftover_temp_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files a killed write left anywhere under ``directory``.

    Only names :func:`atomic_open` makes are touched, and symlinks are never followed, so
    nothing else in the folder is at risk. Call it when a run starts or resumes, before any
    write of its own: a temporary file is never one a running writer still needs. Returns the
    paths removed (failures to remove are ignored: a leftover is harmless).
    """
    removed = []
    for root, _folders, files in os.walk(directory, followlinks=False):
        for name in files:
            if is_atomic_temp_name(name):
                path = Path(root) / name
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed


def _file_mode_for(destination: Path) -> int:
    """Keep an existing regular file's permission bits; otherwise 0o666 minus the umask.

    ``lstat``, not ``stat``: a destination that is a symlink (perhaps to a setuid file
    outside the folder) must not lend its target's mode to the new file, which replaces the
    link. Set-user-ID, set-group-ID and sticky bits are never carried over.
    """
    try:
        info = destination.lstat()
        if stat.S_ISREG(info.st_mode):
            return info.st_mode & 0o777
    except OSError:
        pass
    # Reading the umask with os.umask() briefly changes it for every thread, so read it from
    # /proc where we can and assume the common 022 elsewhere.
    umask = 0o022
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
                break
    except (OSError, ValueError, IndexError):
        pass
    return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not every platform lets a directory be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
