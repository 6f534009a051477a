"""Reading and writing IDX files (the MNIST format), plain or gzip-compressed.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the
big-endian payload in C order:

    byte 0, 1   zero
    byte 2      type code: 0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double
    byte 3      number of dimensions
    4 * ndim    the dimensions, big-endian uint32

The reader checks every one of those fields, and checks that the payload is exactly
prod(dims) * itemsize bytes before it allocates the array, so a forged header cannot make it
allocate (or, for gzip, decompress) more than the file really holds. The size the header
declares must also fit ``max_bytes`` (1 GiB by default, above the largest IDX data set in
common use, EMNIST ByClass at 0.55 GB) and half the memory available, so a 1.9 MB gzip bomb
declaring 1.96 GB is refused before one byte is decompressed, with a one-line IDXError
instead of a MemoryError. Decompression writes straight into the preallocated array: the peak
is the array itself. Files are opened through :func:`gradwise.safefile.open_untrusted`
(regular files only: a FIFO or ``/dev/zero`` is refused, not read forever).
"""

from __future__ import annotations

import gzip as gzip_lib
import math
import os
import struct
import zlib
from pathlib import Path
from typing import IO, cast

import numpy as np

from gradwise._atomic import atomic_open
from gradwise._shown import shown
from gradwise.safefile import open_untrusted
from gradwise.safetensors_io import available_memory

__all__ = ["IDXError", "MAX_NDIM", "read_idx", "write_idx"]

MAX_NDIM = 4
"""Most dimensions the reader accepts; MNIST-like data uses 1 (labels) or 3 (images)."""

DEFAULT_MAX_BYTES = 2**30
"""Largest payload read_idx accepts unless told otherwise (1 GiB; EMNIST ByClass is 0.55 GB)."""

GZIP_MAGIC = b"\x1f\x8b"

# type code -> big-endian dtype of the payload
_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_KIND_SIZE_TO_CODE = {(dtype.kind, dtype.itemsize): code for code, dtype in _CODE_TO_DTYPE.items()}

_CHUNK_BYTES = 1 << 20


class IDXError(ValueError):
    """An IDX file is malformed, truncated or has trailing data; the message names the file."""


def read_idx(path: str | os.PathLike[str], max_bytes: int | None = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not) into a native-endian array.

    Compression is detected from the first two bytes (1f 8b), not from the file name.

    Args:
        path: the file.
        max_bytes: refuse payloads larger than this many bytes (None: only the memory limit,
            half the memory available, applies).

    Returns:
        An array with the header's shape and the type code's dtype (uint8, int8, int16, int32,
        float32 or float64).

    Raises:
        IDXError: bad magic number, type code or dimension count; payload shorter or longer
            than the header says; payload over ``max_bytes`` or the memory available; corrupt
            gzip stream; not a regular file; missing or unreadable.

    Example:
        >>> images = read_idx("train-images-idx3-ubyte.gz")   # doctest: +SKIP
        >>> images.shape, images.dtype
        ((60000, 28, 28), dtype('uint8'))
    """
    path = Path(path)
    memory = available_memory() // 2
    limit = memory if max_bytes is None else min(max_bytes, memory)
    with open_untrusted(path, max_bytes=limit + 64, error=IDXError,
                        what="IDX file") as (raw, size):
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if compressed:
            try:
                with gzip_lib.GzipFile(fileobj=raw, mode="rb") as stream:
                    return _read_stream(cast(IO[bytes], stream), path, None, limit)
            except (OSError, EOFError, zlib.error) as error:
                raise IDXError(f"{shown(path)}: corrupt gzip stream ({error})") from error
        return _read_stream(raw, path, size, limit)


def write_idx(path: str | os.PathLike[str], array: np.ndarray, gzip: bool = False) -> None:
    """Write ``array`` as an IDX file, atomically; with ``gzip=True`` it is gzip-compressed.

    The dtype must be one IDX can store: uint8, int8, int16, int32, float32 or float64.

    Raises:
        IDXError: unsupported dtype, 0 or more than MAX_NDIM dimensions, or a dimension that
            does not fit in uint32.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _KIND_SIZE_TO_CODE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        supported = ", ".join(str(dtype.newbyteorder("=")) for dtype in _CODE_TO_DTYPE.values())
        raise IDXError(f"{shown(path)}: IDX cannot store dtype {array.dtype}; use one of "
                       f"{supported}")
    if not 1 <= array.ndim <= MAX_NDIM:
        raise IDXError(f"{shown(path)}: IDX needs 1 to {MAX_NDIM} dimensions, got shape "
                       f"{array.shape}")
    if any(dim >= 2**32 for dim in array.shape):
        raise IDXError(f"{shown(path)}: dimension in {array.shape} does not fit in uint32")
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
    payload = np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()
    with atomic_open(path, "wb") as handle:
        if gzip:
            # mtime=0 keeps the output byte-identical from run to run.
            with gzip_lib.GzipFile(fileobj=handle, mode="wb", mtime=0) as compressed:
                compressed.write(header)
                compressed.write(payload)
        else:
            handle.write(header)
            handle.write(payload)


def _read_stream(
    stream: IO[bytes], path: Path, file_size: int | None, max_bytes: int | None
) -> np.ndarray:
    """Parse the header from ``stream``, check the payload size, then read the payload.

    ``file_size`` is the on-disk size for plain files (checked before reading anything) and None
    for decompressed streams, which are read in chunks and never past the claimed size + 1.
    """
    magic = _read_exactly(stream, 4, path, "magic number")
    zero_a, zero_b, code, ndim = magic
    if zero_a != 0 or zero_b != 0:
        raise IDXError(
            f"{shown(path)}: not an IDX file (magic number {magic.hex()} should start with 0000)"
        )
    if code not in _CODE_TO_DTYPE:
        known = ", ".join(f"0x{known:02X}" for known in _CODE_TO_DTYPE)
        raise IDXError(f"{shown(path)}: unknown IDX type code 0x{code:02X} (expected one of "
                       f"{known})")
    if not 1 <= ndim <= MAX_NDIM:
        raise IDXError(f"{shown(path)}: header says {ndim} dimensions; expected 1 to {MAX_NDIM}")
    dims = struct.unpack(f">{ndim}I", _read_exactly(stream, 4 * ndim, path, "dimensions"))
    dtype = _CODE_TO_DTYPE[code]
    header_bytes = 4 + 4 * ndim
    need = math.prod(dims) * dtype.itemsize  # Python int: cannot overflow
    if file_size is not None and file_size - header_bytes != need:
        have = file_size - header_bytes
        raise IDXError(f"{shown(path)}: payload is {have} bytes but header dims {dims} need {need}")
    if max_bytes is not None and need > max_bytes:
        raise IDXError(
            f"{shown(path)}: refused: header dims {dims} need {need} bytes, over the "
            f"{max_bytes}-byte "
            "limit (read_idx max_bytes, at most half the memory available)"
        )

    if file_size is not None:
        payload = np.fromfile(stream, dtype=dtype, count=math.prod(dims))
        if payload.nbytes != need:  # the file shrank while we read it
            raise IDXError(
                f"{shown(path)}: payload is {payload.nbytes} bytes but header dims {dims} need "
                f"{need}"
            )
    else:
        try:
            payload = np.empty(math.prod(dims), dtype=dtype)
        except MemoryError:
            raise IDXError(f"{shown(path)}: refused: {need} bytes do not fit in memory") from None
        got = _read_into(stream, payload.data.cast("B"))
        extra = stream.read(1) if got == need else b""
        if got != need or extra:
            more = " or more" if extra else ""
            raise IDXError(
                f"{shown(path)}: payload is {got + len(extra)}{more} bytes but header dims {dims} "
                f"need {need}"
            )
    return payload.astype(dtype.newbyteorder("="), copy=False).reshape(dims)


def _read_exactly(stream: IO[bytes], count: int, path: Path, what: str) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise IDXError(
            f"{shown(path)}: file ends inside the header ({what}: {len(data)} of {count} bytes)"
        )
    return data


def _read_into(stream: IO[bytes], buffer: memoryview) -> int:
    """Fill ``buffer`` from ``stream`` in fixed-size chunks; return the bytes read (EOF stops).

    The buffer was sized from the header and checked against the limits, so decompression
    never produces more than the header declared (plus the one byte that detects extra data).
    """
    filled = 0
    while filled < len(buffer):
        chunk = stream.read(min(_CHUNK_BYTES, len(buffer) - filled))
        if not chunk:
            break
        buffer[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    return filled
