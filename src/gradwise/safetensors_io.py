"""Safetensors files written byte for byte the same every time, and read with caps first.

Writing: :func:`dump_safetensors` lets the ``safetensors`` package lay out the tensors, then
rewrites the JSON header with sorted keys and no spaces. The package keeps the header in a
hash map whose order changes from process to process, so two identical runs wrote different
bytes about one time in two; the canonical header makes the bytes a function of the tensors
and metadata alone (the tensor data and offsets are untouched).

Reading: :func:`read_safetensors` opens the file through :func:`gradwise.safefile.open_untrusted`
(regular file, inside its folder, size known), reads the 8-byte header length and checks it
against :data:`MAX_HEADER_BYTES` and the file size, counts the tensors before parsing
(:data:`MAX_TENSORS`), checks every dtype, shape and offset (contiguous, no overlap, no gap,
no trailing bytes: the file must be exactly as long as the header says), and only then reads
the tensor data, which cannot exceed the size already checked. A million-key header or 2 GiB
of trailing bytes is refused in microseconds instead of being parsed or read whole.

Format (https://github.com/huggingface/safetensors#format): an unsigned little-endian 64-bit
header length N, N bytes of UTF-8 JSON ``{"name": {"dtype", "shape", "data_offsets": [begin,
end]}, "__metadata__": {str: str}}`` padded with spaces, then the data buffer.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import safetensors.numpy as safetensors_numpy

from gradwise._shown import shown
from gradwise.safefile import UntrustedFileError, open_untrusted

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_TENSORS",
    "available_memory",
    "dump_safetensors",
    "parse_safetensors",
    "read_safetensors",
]

MAX_HEADER_BYTES = 8 << 20
"""Largest JSON header accepted: about 80 000 tensors; real models have hundreds."""
MAX_TENSORS = 65536
"""Most tensors accepted in one file (a million-key header took 12-37 s and 1.9 GB to parse)."""
_METADATA = "__metadata__"
_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_,
}


def available_memory() -> int:
    """Bytes of memory this process may still use: MemAvailable, capped by RLIMIT_AS/DATA.

    Source: ``/proc/meminfo`` (Linux); elsewhere the physical memory from ``sysconf``. Used
    to refuse files and models that could not fit before allocating them.
    """
    limit = None
    try:
        with open("/proc/meminfo", "rb") as handle:
            for line in handle:
                if line.startswith(b"MemAvailable:"):
                    limit = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if limit is None:
        try:
            limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            limit = 1 << 40
    try:
        import resource

        for kind in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
            soft = resource.getrlimit(kind)[0]
            if soft != resource.RLIM_INFINITY:
                limit = min(limit, soft)
    except (ImportError, OSError, ValueError):
        pass
    return int(limit)


def dump_safetensors(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
                     ) -> bytes:
    """The safetensors bytes of ``arrays`` with a canonical (sorted, compact) JSON header.

    Raises:
        ValueError: a metadata key or value is not a string.
    """
    if metadata is not None:
        bad = [k for k, v in metadata.items() if not (isinstance(k, str) and isinstance(v, str))]
        if bad:
            raise ValueError(f"dump_safetensors: metadata {bad[0]!r} must map str to str")
    # np.require keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d)
    contiguous = {name: np.require(array, requirements="C") for name, array in arrays.items()}
    raw = safetensors_numpy.save(contiguous, metadata=dict(metadata) if metadata else None)
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)  # the data buffer starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text + raw[8 + length :]


def _check_header(header: Any, data_bytes: int, source: str) -> list[tuple[str, Any, list, int]]:
    """Validated ``[(name, dtype, shape, begin)]`` in data order; raises ValueError."""
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    metadata = header.get(_METADATA)
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise ValueError("__metadata__ must map strings to strings")
    entries = []
    for name, info in header.items():
        if name == _METADATA:
            continue
        label = name if len(name) <= 60 else name[:57] + "..."
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"tensor {label!r}: entry must have dtype, shape, data_offsets")
        dtype = _DTYPES.get(info["dtype"]) if isinstance(info["dtype"], str) else None
        if dtype is None:
            raise ValueError(
                f"tensor {label!r}: dtype {str(info['dtype'])[:20]!r} is not supported "
                f"(supported: {', '.join(_DTYPES)})"
            )
        shape, offsets = info["shape"], info["data_offsets"]
        if not (isinstance(shape, list) and len(shape) <= 8 and all(_is_count(n) for n in shape)):
            raise ValueError(f"tensor {label!r}: shape must be a list of at most 8 sizes >= 0")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(_is_count(n) for n in offsets) and offsets[0] <= offsets[1]):
            raise ValueError(f"tensor {label!r}: data_offsets must be [begin, end], begin <= end")
        expected = math.prod(shape) * np.dtype(dtype).itemsize
        if offsets[1] - offsets[0] != expected:
            raise ValueError(
                f"tensor {label!r}: shape {shape} {info['dtype']} needs {expected} bytes, the "
                f"offsets give {offsets[1] - offsets[0]}"
            )
        entries.append((name, dtype, shape, offsets[0], offsets[1]))
    entries.sort(key=lambda entry: (entry[3], entry[4]))
    position = 0
    for name, _, _, begin, end in entries:
        if begin != position:
            what = "overlaps the previous one" if begin < position else "leaves a gap"
            raise ValueError(f"tensor {name[:60]!r}: data at byte {begin} {what}")
        position = end
    if position != data_bytes:
        raise ValueError(
            f"the tensors cover {position} bytes of data but {data_bytes} follow the header "
            "(truncated, or trailing bytes)"
        )
    return [(name, dtype, shape, begin) for name, dtype, shape, begin, _ in entries]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 62


def _parse_header(prefix: bytes, file_size: int, source: str,
                  error: type[Exception]) -> tuple[Any, int]:
    """(header JSON, header length) from the first bytes; caps checked before parsing."""
    if file_size < 8 or len(prefix) < 8:
        raise error(f"{shown(source)}: not a safetensors file: {file_size} bytes, shorter than the "
                    "8-byte header length")
    (length,) = struct.unpack("<Q", prefix[:8])
    if length > MAX_HEADER_BYTES:
        raise error(f"{shown(source)}: not a valid safetensors file: header of {length} bytes, "
                    "more "
                    f"than the {MAX_HEADER_BYTES} accepted")
    if 8 + length > file_size:
        raise error(f"{shown(source)}: not a valid safetensors file: the header claims {length} "
                    "bytes "
                    f"but the file has {file_size}")
    raw = prefix[8 : 8 + length]
    count = raw.count(b"data_offsets")
    if count > MAX_TENSORS:
        raise error(f"{shown(source)}: refused: {count} tensors, more than the {MAX_TENSORS} "
                    "accepted")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as failure:
        raise error(f"{shown(source)}: not a valid safetensors file: header is not JSON "
                    f"({str(failure)[:120]})") from None
    return header, length


def parse_safetensors(payload: bytes, source: str = "safetensors",
                      error: type[Exception] = ValueError
                      ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Arrays and metadata from in-memory safetensors bytes, after every check above.

    Returns ``(arrays, metadata)``; arrays are writable copies in header order.

    Raises:
        error: naming ``source`` and the first problem found.
    """
    header, length = _parse_header(payload[: 8 + MAX_HEADER_BYTES], len(payload), source, error)
    try:
        entries = _check_header(header, len(payload) - 8 - length, source)
    except ValueError as failure:
        raise error(f"{shown(source)}: not a valid safetensors file: {failure}") from None
    base = 8 + length
    arrays = {}
    for name, dtype, shape, begin in entries:
        count = math.prod(shape)
        flat = np.frombuffer(payload, dtype=np.dtype(dtype).newbyteorder("<"), count=count,
                             offset=base + begin)
        arrays[name] = flat.astype(dtype, copy=True).reshape(shape)
    order = [name for name in header if name != _METADATA]
    return {name: arrays[name] for name in order}, dict(header.get(_METADATA) or {})


def read_safetensors(
    path: str | os.PathLike[str],
    *,
    within: str | os.PathLike[str] | None = None,
    error: type[Exception] = UntrustedFileError,
    max_bytes: int | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file with every cap checked before the data is read.

    Args:
        within: the folder the file must stay in (see :func:`gradwise.safefile.open_untrusted`).
        max_bytes: the largest file accepted; default: the memory available (a model that
            cannot fit is refused before it is read).

    Returns ``(arrays, metadata)``.

    Raises:
        error: a named, one-line reason (not a regular file, outside its folder, too large,
            malformed header, offsets that do not cover the file exactly).
    """
    limit = available_memory() // 2 if max_bytes is None else max_bytes
    with open_untrusted(path, max_bytes=limit, within=within, error=error,
                        what="weights file") as (handle, size):
        prefix = handle.read(min(size, 8 + MAX_HEADER_BYTES))
        header, length = _parse_header(prefix, size, str(path), error)
        try:
            _check_header(header, size - 8 - length, str(path))
        except ValueError as failure:
            raise error(f"{shown(path)}: not a valid safetensors file: {failure}") from None
        payload = prefix + handle.read(size - len(prefix))
    return parse_safetensors(payload, str(path), error)
