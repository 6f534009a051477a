"""Fuzzing the loaders of untrusted files: IDX (plain and gzip), checkpoints, configs.

Each input must either load or raise the loader's own error (IDXError, CheckpointError,
ConfigError), within a time limit and without allocating more than the file honestly needs
(see harness.check_untrusted_input). Inputs are random bytes, byte-level mutations of a valid
file (bit flips, truncations, insertions, header integers set to absurd values) and, for JSON
files, structural edits (any value replaced by another JSON value).

The suite runs FUZZ_EXAMPLES examples per target (200); GRADWISE_LONG_TESTS=1 raises it to
5000, and benchmarks/fuzz_long.py runs longer campaigns and counts them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability.harness import (
    INTERESTING_INTS,
    check_untrusted_input,
    json_paths,
    load_targets,
    mutate,
    replace_at,
    safetensors_bytes,
)

LONG = os.environ.get("GRADWISE_LONG_TESTS") == "1"
FUZZ_EXAMPLES = int(os.environ.get("GRADWISE_FUZZ_EXAMPLES", 5000 if LONG else 200))

TARGETS = load_targets()
FILE_TARGETS = ["idx", "idx_gzip", "checkpoint_manifest", "checkpoint_weights", "config_json",
                "config_toml", "run_config"]

fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

positions = st.one_of(st.integers(0, 32), st.integers(0, 2**20))
mutations = st.lists(
    st.one_of(
        st.tuples(st.just("flip"), positions, st.integers(0, 7)),
        st.tuples(st.just("set"), positions, st.integers(0, 255)),
        st.tuples(st.just("truncate"), positions),
        st.tuples(st.just("insert"), positions, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("delete"), positions, st.integers(1, 64)),
        st.tuples(
            st.sampled_from(["u32be", "u32le", "u64le"]),
            positions,
            st.one_of(st.sampled_from(INTERESTING_INTS), st.integers(0, 2**64 - 1)),
        ),
    ),
    min_size=1,
    max_size=4,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _fuzz_one(target_name: str, make_input) -> None:
    """Write a valid seed in a fresh directory, replace it with make_input(seed), check it."""
    target = TARGETS[target_name]
    with tempfile.TemporaryDirectory() as directory:
        path = target.write_valid(Path(directory))
        path.write_bytes(make_input(path.read_bytes()))
        check_untrusted_input(target, path)


def _require(target_name: str) -> None:
    if target_name not in TARGETS:
        pytest.skip(f"{target_name} loader not in this tree yet")


@pytest.mark.parametrize("target_name", FILE_TARGETS)
@fuzz_settings
@given(data=st.binary(max_size=512))
def test_random_bytes_load_or_raise_own_error(target_name: str, data: bytes) -> None:
    _require(target_name)
    _fuzz_one(target_name, lambda seed: data)


@pytest.mark.parametrize("target_name", FILE_TARGETS)
@fuzz_settings
@given(edits=mutations)
def test_mutated_valid_files_load_or_raise_own_error(target_name: str, edits: list) -> None:
    _require(target_name)
    _fuzz_one(target_name, lambda seed: mutate(seed, edits))


@fuzz_settings
@given(data=st.data(), new_value=json_values)
def test_manifest_with_any_value_replaced_loads_or_raises(data, new_value) -> None:
    _require("checkpoint_manifest")

    def edit(seed: bytes) -> bytes:
        manifest = json.loads(seed)
        path = data.draw(st.sampled_from(json_paths(manifest)), label="path")
        return json.dumps(replace_at(manifest, path, new_value)).encode()

    _fuzz_one("checkpoint_manifest", edit)


safetensors_headers = st.one_of(
    json_values,
    st.dictionaries(
        st.text(max_size=8),
        st.fixed_dictionaries(
            {
                "dtype": st.sampled_from(["F32", "F64", "F16", "BF16", "I64", "U8", "BOOL", "X"]),
                "shape": st.lists(st.sampled_from(INTERESTING_INTS), max_size=3),
                "data_offsets": st.lists(st.sampled_from(INTERESTING_INTS), max_size=3),
            }
        ),
        max_size=3,
    ),
)


@fuzz_settings
@given(header=safetensors_headers, payload=st.binary(max_size=64),
       claimed=st.one_of(st.none(), st.sampled_from(INTERESTING_INTS)))
def test_safetensors_with_forged_header_is_refused_or_loaded(header, payload, claimed) -> None:
    """Forged headers reach the parser (the manifest is re-signed): shapes, offsets, dtypes."""
    _require("checkpoint_weights")
    _fuzz_one("checkpoint_weights", lambda seed: safetensors_bytes(header, payload, claimed))
