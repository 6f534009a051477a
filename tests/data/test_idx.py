"""IDX reader/writer: round trips, and every malformed file refused with IDXError naming it."""

from __future__ import annotations

import gzip
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradwise.data.idx import IDXError, read_idx, write_idx

DTYPES = (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64)


def header(code: int, dims: tuple[int, ...], ndim: int | None = None) -> bytes:
    ndim = len(dims) if ndim is None else ndim
    return struct.pack(f">BBBB{len(dims)}I", 0, 0, code, ndim, *dims)


def write_raw(path: Path, data: bytes, compress: bool) -> Path:
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def assert_idx_error(path: Path, *fragments: str) -> None:
    with pytest.raises(IDXError) as info:
        read_idx(path)
    message = str(info.value)
    assert path.name in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip(tmp_path: Path, dtype: type, compress: bool) -> None:
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = tmp_path / "array.idx"
    write_idx(path, array, gzip=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    loaded = read_idx(path)
    assert loaded.dtype == np.dtype(dtype) and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize("shape", [(7,), (2, 3), (2, 3, 4), (1, 2, 3, 2), (0, 28, 28)])
def test_round_trip_shapes(tmp_path: Path, shape: tuple[int, ...]) -> None:
    array = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    write_idx(tmp_path / "a.idx", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), array)


def test_detects_gzip_by_magic_bytes_not_name(tmp_path: Path) -> None:
    array = np.arange(10, dtype=np.int32)
    write_idx(tmp_path / "labels-without-gz-suffix", array, gzip=True)
    write_idx(tmp_path / "plain.gz", array, gzip=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels-without-gz-suffix"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), array)


def test_matches_big_endian_layout(tmp_path: Path) -> None:
    path = tmp_path / "known.idx"
    path.write_bytes(header(0x0B, (2,)) + b"\x01\x02\xff\xfe")
    np.testing.assert_array_equal(read_idx(path), np.array([258, -2], dtype=np.int16))


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.gz", np.arange(100, dtype=np.uint8), gzip=True)
    # bytes 4..8 of a gzip header are its timestamp; zero keeps the output byte-identical
    assert (tmp_path / "a.gz").read_bytes()[4:8] == bytes(4)


MALFORMED = {
    "truncated payload": (header(0x08, (4, 5)) + bytes(19), "payload is 19 bytes", "need 20"),
    "extra bytes": (header(0x08, (4, 5)) + bytes(21), "21", "need 20"),
    "bad magic": (b"\x01\x00\x08\x01" + struct.pack(">I", 2) + bytes(2), "magic number"),
    "bad type code": (header(0x0A, (2,)) + bytes(2), "type code 0x0A"),
    "ndim 0": (header(0x08, (), ndim=0), "0 dimensions"),
    "ndim huge": (header(0x08, (), ndim=200) + bytes(64), "200 dimensions"),
    "header cut short": (header(0x08, (4, 5))[:9], "ends inside the header"),
    "empty file": (b"", "ends inside the header"),
}


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_files_raise_idx_error_naming_the_file(
    tmp_path: Path, case: str, compress: bool
) -> None:
    data, *fragments = MALFORMED[case]
    path = write_raw(tmp_path / "train-images-idx3-ubyte.gz", data, compress)
    assert_idx_error(path, *fragments)


def test_error_message_reads_like_the_documented_example(tmp_path: Path) -> None:
    data = header(0x08, (60000, 28, 28)) + bytes(1000)
    path = write_raw(tmp_path / "train-images-idx3-ubyte.gz", data, compress=True)
    assert_idx_error(path, "payload is 1000 bytes but header dims (60000, 28, 28) need 47040000")


def test_corrupt_gzip_stream(tmp_path: Path) -> None:
    path = tmp_path / "broken.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"not deflate data at all" * 4)
    assert_idx_error(path, "gzip")


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_forged_header_claiming_1e12_elements_is_refused_without_allocating(
    tmp_path: Path, compress: bool
) -> None:
    # (1_000_000, 1_000_000) uint8 claims 10**12 bytes; the file holds 1000.
    path = write_raw(tmp_path / "forged.idx", header(0x08, (10**6, 10**6)) + bytes(1000), compress)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        # plain: the file size contradicts the header; gzip: the cap refuses before inflating
        expected = "need 1000000000000 bytes, over" if compress else "1000 bytes.*need 10{12}"
        with pytest.raises(IDXError, match="forged.idx.*" + expected):
            read_idx(path, max_bytes=None)  # no size cap: the payload check alone must refuse
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 16 * 2**20


def test_default_size_cap_refuses_absurd_headers(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "huge.idx.gz", header(0x0E, (2**31, 2**31)), compress=True)
    assert_idx_error(path, "limit")


def test_gzip_bomb_declaring_2_gb_is_refused_before_inflating(tmp_path: Path) -> None:
    """Issue 13 item 6: 1.9 MB of gzip declaring 1.96 GB was decompressed (the cap was 8 GiB);
    one declaring 7.8 GB ended in a raw MemoryError. Both are now one-line IDXErrors."""
    for count, name in ((1_960_000_000, "bomb2.idx.gz"), (7_800_000_000, "bomb8.idx.gz")):
        path = tmp_path / name
        with gzip.open(path, "wb", compresslevel=9) as handle:
            handle.write(header(0x08, (count // 784, 28, 28)))
            handle.write(bytes(1 << 20))
        tracemalloc.start()
        try:
            assert_idx_error(path, "refused", "limit")
            assert tracemalloc.get_traced_memory()[1] < 16 << 20
        finally:
            tracemalloc.stop()


def test_cap_is_configurable(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "small.idx.gz", header(0x08, (50, 28, 28)) + bytes(50 * 784), True)
    assert read_idx(path).shape == (50, 28, 28)
    assert_idx_error_with(path, 1000, "over the 1000-byte limit")


def assert_idx_error_with(path: Path, max_bytes: int, fragment: str) -> None:
    with pytest.raises(IDXError, match=fragment):
        read_idx(path, max_bytes=max_bytes)


def test_gzip_is_never_decompressed_past_the_claimed_size(tmp_path: Path) -> None:
    # 64 MiB of zeros compresses to ~64 KiB; a header claiming 100 bytes must stop the read early.
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(header(0x08, (100,)))
        handle.write(bytes(64 * 2**20))
    tracemalloc.start()
    try:
        with pytest.raises(IDXError, match="bomb.gz: payload is 101 or more bytes"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (np.zeros(3, dtype=np.int64), "cannot store dtype int64"),
        (np.zeros(3, dtype=bool), "cannot store dtype bool"),
        (np.array(5, dtype=np.uint8), "1 to 4 dimensions"),
        (np.zeros((1, 1, 1, 1, 1), dtype=np.uint8), "1 to 4 dimensions"),
    ],
)
def test_write_refuses_what_idx_cannot_hold(tmp_path: Path, array: np.ndarray, fragment: str):
    with pytest.raises(IDXError, match=fragment):
        write_idx(tmp_path / "out.idx", array)
    assert list(tmp_path.iterdir()) == []


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prefix=st.sampled_from([b"", b"\x00\x00\x08\x01", b"\x00\x00\x0d\x02", b"\x00\x00\x0e\x03"]),
    body=st.binary(max_size=64),
    compress=st.booleans(),
)
def test_random_bytes_either_load_or_raise_idx_error(
    tmp_path: Path, prefix: bytes, body: bytes, compress: bool
) -> None:
    path = write_raw(tmp_path / "fuzz.idx", prefix + body, compress)
    try:
        array = read_idx(path)
    except IDXError as error:
        assert "fuzz.idx" in str(error)
    else:
        assert isinstance(array, np.ndarray)
