"""Hand-forged hostile files, one per known attack on a loader: each is refused cleanly.

Every case goes through harness.check_untrusted_input, so besides raising the loader's own error
it must finish within the time limit and allocate no more than the bytes on disk justify.
"""

from __future__ import annotations

import gzip
import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from reliability.harness import check_untrusted_input, load_targets, safetensors_bytes

TARGETS = load_targets()

IDX_FORGERIES: dict[str, bytes] = {
    "1e12 elements, 4 bytes of payload": struct.pack(">BBBBIII", 0, 0, 8, 3, 10**4, 10**4, 10**4)
    + b"\0" * 4,
    "max uint32 dims, float64": struct.pack(">BBBB4I", 0, 0, 0x0E, 4, *(2**32 - 1,) * 4),
    "zero dimensions": struct.pack(">BBBB", 0, 0, 8, 0),
    "255 dimensions": struct.pack(">BBBB", 0, 0, 8, 255) + b"\xff" * 1020,
    "unknown type code": struct.pack(">BBBBI", 0, 0, 0x42, 1, 1) + b"\0",
    "header cut short": struct.pack(">BBBB", 0, 0, 8, 3) + b"\0\0",
    "trailing data": struct.pack(">BBBBI", 0, 0, 8, 1, 2) + b"\1\2\3",
    "gzip, 1e12 claimed": gzip.compress(struct.pack(">BBBBII", 0, 0, 8, 2, 10**6, 10**6)),
    "gzip, truncated stream": gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 4) + b"abcd")[:-6],
}


@pytest.mark.parametrize("case", sorted(IDX_FORGERIES))
def test_forged_idx_is_refused(tmp_path: Path, case: str) -> None:
    path = tmp_path / "forged.idx"
    path.write_bytes(IDX_FORGERIES[case])
    assert check_untrusted_input(TARGETS["idx"], path) == "refused"


def _tensor(dtype: str, shape: list[int], start: int, end: int) -> dict:
    return {"fc1.weight": {"dtype": dtype, "shape": shape, "data_offsets": [start, end]}}


SAFETENSORS_FORGERIES: dict[str, bytes] = {
    "header length 1e12": safetensors_bytes(_tensor("F32", [4, 3], 0, 48), b"\0" * 48, 10**12),
    "header length 2^64-1": safetensors_bytes(_tensor("F32", [4, 3], 0, 48), b"", 2**64 - 1),
    "header length past the end": safetensors_bytes({}, b"", 64),
    "invalid JSON header": safetensors_bytes(b"{\"fc1.weight\": {", b"\0" * 48),
    "header is a JSON list": safetensors_bytes([1, 2, 3]),
    "offsets past the end": safetensors_bytes(_tensor("F32", [4, 3], 0, 48), b"\0" * 8),
    "offsets reversed": safetensors_bytes(_tensor("F32", [4, 3], 48, 0), b"\0" * 48),
    "shape claims 1e12 elements": safetensors_bytes(_tensor("F32", [10**6, 10**6], 0, 48),
                                                    b"\0" * 48),
    "dtype size mismatch (F64 in 48 bytes for 4x3)": safetensors_bytes(
        _tensor("F64", [4, 3], 0, 48), b"\0" * 48
    ),
    "unknown dtype": safetensors_bytes(_tensor("Q7", [4, 3], 0, 48), b"\0" * 48),
    "negative shape": safetensors_bytes(_tensor("F32", [-4, -3], 0, 48), b"\0" * 48),
    "empty file": b"",
    "7 bytes": b"\x01" * 7,
}


@pytest.mark.parametrize("case", sorted(SAFETENSORS_FORGERIES))
def test_forged_safetensors_weights_are_refused(tmp_path: Path, case: str) -> None:
    """The manifest is re-signed for the forged file, so the safetensors parser must refuse it."""
    target = TARGETS.get("checkpoint_weights") or pytest.skip("no checkpoint loader yet")
    path = target.write_valid(tmp_path)
    path.write_bytes(SAFETENSORS_FORGERIES[case])
    assert check_untrusted_input(target, path) == "refused"


def _edit(change: Callable[[dict], None]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        manifest = json.loads(text)
        change(manifest)
        return json.dumps(manifest)

    return apply


MANIFEST_FORGERIES: dict[str, Callable[[str], str]] = {
    "nested 100000 deep": lambda text: "[" * 100_000 + "]" * 100_000,
    "size 1e400 (inf)": lambda text: text.replace('"bytes": ', '"bytes": 1e400, "x": ', 1),
    "weights file path escapes the folder": _edit(
        lambda m: m["files"]["model"].update(file="../../etc/passwd")
    ),
    "weights file is absolute": _edit(lambda m: m["files"]["model"].update(file="/etc/passwd")),
    "weights file name has a NUL byte": _edit(lambda m: m["files"]["model"].update(file="a\0b")),
    "tensor table is a list": _edit(lambda m: m["model"].update(tensors=[1])),
    "tensor entry is null": _edit(lambda m: m["model"]["tensors"].update({"fc1.weight": None})),
    "optimizer state is null": _edit(lambda m: m["optimizer"]["meta"].update(state=None)),
    "bad non-finite float tag": _edit(lambda m: m.update(trainer={"x": {"__float__": "abc"}})),
    "other format version": _edit(lambda m: m.update(version=99)),
    "not a gradwise manifest": _edit(lambda m: m.update(format="safetensors")),
    "weights file missing": _edit(lambda m: m["files"]["model"].update(file="gone.safetensors")),
    "size off by one": _edit(lambda m: m["files"]["model"].update(bytes=m["files"]["model"]
                                                                  ["bytes"] - 1)),
    "hash altered": _edit(lambda m: m["files"]["model"].update(sha256="0" * 64)),
    "manifest truncated": lambda text: text[: len(text) // 2],
    "manifest not UTF-8": lambda text: "\udcff",
}


# These cases leaked RecursionError, OverflowError, AttributeError, TypeError or ValueError from
# the first version of the checkpoint loader, which trusted the manifest's structure.
@pytest.mark.parametrize("case", sorted(MANIFEST_FORGERIES))
def test_forged_manifest_is_refused(tmp_path: Path, case: str) -> None:
    target = TARGETS.get("checkpoint_manifest") or pytest.skip("no checkpoint loader yet")
    path = target.write_valid(tmp_path)
    text = MANIFEST_FORGERIES[case](path.read_text())
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert check_untrusted_input(target, path) == "refused"


CONFIG_FORGERIES: dict[str, tuple[str, str]] = {
    # case: (target, file text)
    "JSON nested 100000 deep": ("config_json", "[" * 100_000 + "]" * 100_000),
    "JSON integer of 5000 digits": ("config_json", '{"epochs": ' + "9" * 5000 + "}"),
    "JSON recipe is a list": ("config_json", '{"recipe": ["spiral"]}'),
    "JSON NaN learning rate": ("config_json", '{"recipe": "spiral", "lr": NaN}'),
    "JSON unknown recipe": ("config_json", '{"recipe": "nope"}'),
    "JSON unknown key": ("config_json", '{"recipe": "spiral", "__class__": 1}'),
    "TOML nested 100000 deep": ("config_toml", "a = " + "[" * 100_000 + "]" * 100_000),
    "TOML recipe is a table": ("config_toml", "[recipe]\nx = 1\n"),
    "run config nested 100000 deep": ("run_config", "[" * 100_000 + "]" * 100_000),
    "run config recipe is a list": ("run_config", '{"recipe": ["spiral"]}'),
    "run config recipe is an object": ("run_config", '{"recipe": {"a": 1}, "epochs": 2}'),
    "run config integer of 5000 digits": ("run_config", '{"epochs": ' + "9" * 5000 + "}"),
}
# Found by these tests and fixed in gradwise.recipes and gradwise.runs: json/tomllib raise
# RecursionError for deep nesting and ValueError for huge integers, and TrainConfig.from_dict
# looked an unhashable recipe up in a dict.
@pytest.mark.parametrize("case", sorted(CONFIG_FORGERIES))
def test_forged_config_is_refused(tmp_path: Path, case: str) -> None:
    target_name, text = CONFIG_FORGERIES[case]
    target = TARGETS.get(target_name) or pytest.skip("no config loader yet")
    path = target.write_valid(tmp_path)
    path.write_text(text)
    assert check_untrusted_input(target, path) == "refused"
