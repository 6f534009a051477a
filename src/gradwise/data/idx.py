"""Reading and writing IDX files (the MNIST format), plain or gzip-compressed.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the
big-endian payload in C order:

    byte 0, 1   zero
    byte 2      type code: 0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double
    byte 3      number of dimensions
    4 * ndim    the dimensions, big-endian uint32

The reader checks every one of those fields, and checks that the payload is exactly
prod(dims) * itemsize bytes before it allocates the array, so a forged header cannot make it
allocate (or, for gzip, decompress) more than the file really holds.
"""

from __future__ import annotations

import gzip as gzip_lib
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gradwise._atomic import atomic_open

__all__ = ["IDXError", "MAX_NDIM", "read_idx", "write_idx"]

MAX_NDIM = 4
"""Most dimensions the reader accepts; MNIST-like data uses 1 (labels) or 3 (images)."""

DEFAULT_MAX_BYTES = 8 * 2**30
"""Largest payload read_idx accepts unless told otherwise (8 GiB)."""

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
        max_bytes: refuse payloads larger than this many bytes (None: no limit).

    Returns:
        An array with the header's shape and the type code's dtype (uint8, int8, int16, int32,
        float32 or float64).

    Raises:
        IDXError: bad magic number, type code or dimension count; payload shorter or longer
            than the header says; payload over ``max_bytes``; corrupt gzip stream.
        OSError: the file cannot be opened.

    Example:
        >>> images = read_idx("train-images-idx3-ubyte.gz")   # doctest: +SKIP
        >>> images.shape, images.dtype
        ((60000, 28, 28), dtype('uint8'))
    """
    path = Path(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if compressed:
            try:
                with gzip_lib.GzipFile(fileobj=raw, mode="rb") as stream:
                    return _read_stream(stream, path, None, max_bytes)
            except (OSError, EOFError, zlib.error) as error:
                raise IDXError(f"{path}: corrupt gzip stream ({error})") from error
        return _read_stream(raw, path, os.fstat(raw.fileno()).st_size, max_bytes)


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
        raise IDXError(f"{path}: IDX cannot store dtype {array.dtype}; use one of {supported}")
    if not 1 <= array.ndim <= MAX_NDIM:
        raise IDXError(f"{path}: IDX needs 1 to {MAX_NDIM} dimensions, got shape {array.shape}")
    if any(dim >= 2**32 for dim in array.shape):
        raise IDXError(f"{path}: dimension in {array.shape} does not fit in uint32")
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
    stream: BinaryIO, path: Path, file_size: int | None, max_bytes: int | None
) -> np.ndarray:
    """Parse the header from ``stream``, check the payload size, then read the payload.

    ``file_size`` is the on-disk size for plain files (checked before reading anything) and None
    for decompressed streams, which are read in chunks and never past the claimed size + 1.
    """
    magic = _read_exactly(stream, 4, path, "magic number")
    zero_a, zero_b, code, ndim = magic
    if zero_a != 0 or zero_b != 0:
        raise IDXError(
            f"{path}: not an IDX file (magic number {magic.hex()} should start with 0000)"
        )
    if code not in _CODE_TO_DTYPE:
        known = ", ".join(f"0x{known:02X}" for known in _CODE_TO_DTYPE)
        raise IDXError(f"{path}: unknown IDX type code 0x{code:02X} (expected one of {known})")
    if not 1 <= ndim <= MAX_NDIM:
        raise IDXError(f"{path}: header says {ndim} dimensions; expected 1 to {MAX_NDIM}")
    dims = struct.unpack(f">{ndim}I", _read_exactly(stream, 4 * ndim, path, "dimensions"))
    dtype = _CODE_TO_DTYPE[code]
    header_bytes = 4 + 4 * ndim
    need = math.prod(dims) * dtype.itemsize  # Python int: cannot overflow
    if max_bytes is not None and need > max_bytes:
        raise IDXError(
            f"{path}: header dims {dims} need {need} bytes, over the {max_bytes}-byte limit"
        )

    if file_size is not None:
        have = file_size - header_bytes
        if have != need:
            raise IDXError(f"{path}: payload is {have} bytes but header dims {dims} need {need}")
        payload = np.fromfile(stream, dtype=dtype, count=math.prod(dims))
        if payload.nbytes != need:  # the file shrank while we read it
            raise IDXError(
                f"{path}: payload is {payload.nbytes} bytes but header dims {dims} need {need}"
            )
    else:
        data = _read_bounded(stream, need + 1)
        if len(data) != need:
            more = " or more" if len(data) > need else ""
            raise IDXError(
                f"{path}: payload is {len(data)}{more} bytes but header dims {dims} need {need}"
            )
        payload = np.frombuffer(data, dtype=dtype)
    return payload.astype(dtype.newbyteorder("="), copy=False).reshape(dims)


def _read_exactly(stream: BinaryIO, count: int, path: Path, what: str) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise IDXError(
            f"{path}: file ends inside the header ({what}: {len(data)} of {count} bytes)"
        )
    return data


def _read_bounded(stream: BinaryIO, limit: int) -> bytearray:
    """Read until EOF or ``limit`` bytes, whichever comes first, in fixed-size chunks.

    Chunked on purpose: ``stream.read(limit)`` preallocates ``limit`` bytes, which a forged
    header could make enormous.
    """
    data = bytearray()
    while len(data) < limit:
        chunk = stream.read(min(_CHUNK_BYTES, limit - len(data)))
        if not chunk:
            break
        data += chunk
    return data
