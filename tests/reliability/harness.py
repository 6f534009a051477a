"""Shared pieces of the reliability tests: hostile payloads and the untrusted-file harness.

Every loader of untrusted files is described once as a :class:`LoadTarget`; the fuzz tests, the
crafted-payload tests and ``benchmarks/fuzz_long.py`` all drive targets through
:func:`check_untrusted_input`, which demands that an input either loads or raises the library's
own error, within a time limit and a memory budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import struct
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradwise.data.idx import IDXError, read_idx, write_idx

# ---- hostile payloads -------------------------------------------------------------------------


def pickle_payloads(marker: Path) -> dict[str, bytes]:
    """Pickle streams that would create ``marker`` if anything ever unpickled them.

    Built by hand (protocol 0 and protocol 2 opcodes) so that no test ever calls pickle; the
    payloads run ``os.system("touch <marker>")`` through ``__reduce__``-style GLOBAL + REDUCE.
    """
    command = f"touch {marker}".encode()
    protocol0 = b"cos\nsystem\n(S'" + command + b"'\ntR."
    length = struct.pack("<I", len(command))
    protocol2 = b"\x80\x02cposix\nsystem\nq\x00X" + length + command + b"q\x01\x85q\x02Rq\x03."
    builtins_exec = (
        b"cbuiltins\nexec\n(S'import os; os.system(\"" + command + b"\")'\ntR."
    )
    return {"protocol0": protocol0, "protocol2": protocol2, "builtins_exec": builtins_exec}


def torch_style_zip(marker: Path) -> bytes:
    """A zip archive laid out like ``torch.save`` output, whose data.pkl is a pickle payload."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle_payloads(marker)["protocol2"])
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def safetensors_bytes(header: Any, payload: bytes = b"", header_length: int | None = None) -> bytes:
    """A safetensors file with an arbitrary header (dict or raw bytes) and declared length."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(raw) if header_length is None else header_length
    return struct.pack("<Q", length) + raw + payload


# ---- time and memory limits -------------------------------------------------------------------


class TimeLimitError(Exception):
    """A loader ran past its time limit (a hang, or work far beyond the input's size)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeLimitError in the main thread if the block runs longer than ``seconds``."""

    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeLimitError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def peak_allocation() -> Iterator[list[int]]:
    """Measure the peak bytes allocated (Python and NumPy) inside the block: ``box[0]``."""
    box = [0]
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        yield box
    finally:
        box[0] = tracemalloc.get_traced_memory()[1] - base
        if not already:
            tracemalloc.stop()


# ---- loaders of untrusted files ---------------------------------------------------------------


@dataclass(frozen=True)
class LoadTarget:
    """One loader of untrusted files.

    Attributes:
        name: short name used in test ids and in the fuzz report.
        errors: the library's own exception type(s) the loader may raise for bad input.
        write_valid: writes a valid input under a directory and returns the path to mutate.
        load: loads the input at a path (after mutation).
        finalize: fixes up companion files after the mutated file is written (for checkpoints:
            re-sign the manifest so the mutation reaches the safetensors parser), or None.
    """

    name: str
    errors: tuple[type[BaseException], ...]
    write_valid: Callable[[Path], Path]
    load: Callable[[Path], Any]
    finalize: Callable[[Path], None] | None = None


TRIED: Counter[str] = Counter()
"""Inputs tried per target in this process (reported by benchmarks/fuzz_long.py)."""

OUTCOMES: Counter[tuple[str, str]] = Counter()
"""(target, "loaded" | "refused") counts in this process."""

TIME_LIMIT_S = 5.0
MEMORY_OVERHEAD_BYTES = 4 << 20
MEMORY_FACTOR = 8


def check_untrusted_input(target: LoadTarget, path: Path) -> str:
    """Load ``path`` with ``target``: it must load or raise ``target.errors``, fast and small.

    The peak allocation must stay under ``MEMORY_FACTOR`` x the bytes on disk plus a fixed
    overhead, so a header that claims more than the file holds cannot make the loader
    allocate it. Returns ``"loaded"`` or ``"refused"``; any other exception propagates.
    """
    if target.finalize is not None:
        target.finalize(path)
    on_disk = sum(f.stat().st_size for f in path.parent.iterdir() if f.is_file())
    outcome = "loaded"
    with peak_allocation() as peak, time_limit(TIME_LIMIT_S):
        try:
            target.load(path)
        except target.errors as error:
            assert str(error), f"{target.name}: {type(error).__name__} with an empty message"
            outcome = "refused"
    budget = MEMORY_FACTOR * on_disk + MEMORY_OVERHEAD_BYTES
    assert peak[0] <= budget, (
        f"{target.name}: loading {on_disk} bytes allocated {peak[0]} bytes (budget {budget})"
    )
    TRIED[target.name] += 1
    OUTCOMES[target.name, outcome] += 1
    return outcome


def _write_idx_seed(directory: Path, compress: bool) -> Path:
    path = directory / ("images.idx.gz" if compress else "images.idx")
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(path, images, gzip=compress)
    return path


def _checkpoint_state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "fc1.weight": rng.standard_normal((4, 3)).astype(np.float32),
        "fc1.bias": np.zeros(4, dtype=np.float32),
        "fc2.weight": rng.standard_normal((2, 4)).astype(np.float32),
    }


def _write_checkpoint_seed(directory: Path) -> Path:
    from gradwise.train.checkpoint import CheckpointData, save_checkpoint

    state = _checkpoint_state()
    optimizer_state = {
        "state": {0: {"step": 3, "momentum_buffer": np.ones((4, 3), dtype=np.float32)}},
        "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1, 2]}],
    }
    save_checkpoint(
        directory,
        CheckpointData(
            model_state=state,
            model_class="MLP",
            optimizer_state=optimizer_state,
            trainer_state={"epoch": 1, "step": 7, "best": float("inf")},
            history={"loss": [1.0, 0.5]},
        ),
    )
    return directory


def _checkpoint_manifest_seed(directory: Path) -> Path:
    from gradwise.train.checkpoint import MANIFEST_NAME

    return _write_checkpoint_seed(directory) / MANIFEST_NAME


def _checkpoint_weights_seed(directory: Path) -> Path:
    manifest = json.loads((_write_checkpoint_seed(directory) / "checkpoint.json").read_text())
    return directory / manifest["files"]["model"]["file"]


def resign_manifest(weights_path: Path) -> None:
    """Rewrite the manifest's size and SHA-256 for ``weights_path`` (as an attacker would)."""
    manifest_path = weights_path.parent / "checkpoint.json"
    manifest = json.loads(manifest_path.read_text())
    payload = weights_path.read_bytes()
    manifest["files"]["model"].update(
        file=weights_path.name, bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest()
    )
    manifest_path.write_text(json.dumps(manifest))


def _load_checkpoint(path: Path) -> Any:
    from gradwise.train.checkpoint import load_checkpoint

    return load_checkpoint(path.parent)


def _checkpoint_errors() -> tuple[type[BaseException], ...]:
    from gradwise.train.checkpoint import CheckpointError

    return (CheckpointError,)


def _write_config_seed(directory: Path, suffix: str) -> Path:
    path = directory / f"settings{suffix}"
    if suffix == ".toml":
        path.write_text('recipe = "spiral"\nepochs = 3\nlr = 0.01\nhidden = [8, 8]\n')
    else:
        path.write_text(json.dumps({"recipe": "spiral", "epochs": 3, "lr": 0.01, "hidden": [8]}))
    return path


def _load_config_file(path: Path) -> Any:
    """What ``gradwise train --config FILE`` does with the file before training."""
    from types import SimpleNamespace

    from gradwise.cli import _train_config

    return _train_config(SimpleNamespace(recipe=None, config=str(path)), {}, {})


def _write_run_config_seed(directory: Path) -> Path:
    from gradwise.recipes import TrainConfig

    path = directory / "config.json"
    path.write_text(json.dumps(TrainConfig.from_recipe("spiral").to_dict()))
    return path


def _load_run_config(path: Path) -> Any:
    """What ``gradwise train --resume RUN_DIR`` reads first: the run's config.json."""
    from gradwise.runs import read_config

    return read_config(path.parent)


def _config_targets() -> dict[str, LoadTarget]:
    from gradwise.recipes import ConfigError
    from gradwise.runs import RunError

    return {
        "config_json": LoadTarget("config_json", (ConfigError,),
                                  lambda d: _write_config_seed(d, ".json"), _load_config_file),
        "config_toml": LoadTarget("config_toml", (ConfigError,),
                                  lambda d: _write_config_seed(d, ".toml"), _load_config_file),
        "run_config": LoadTarget("run_config", (RunError, ConfigError), _write_run_config_seed,
                                 _load_run_config),
    }


def load_targets() -> dict[str, LoadTarget]:
    """Every untrusted-file loader that exists in this tree, by name."""
    targets = {
        "idx": LoadTarget("idx", (IDXError,), lambda d: _write_idx_seed(d, False), read_idx),
        "idx_gzip": LoadTarget("idx_gzip", (IDXError,), lambda d: _write_idx_seed(d, True),
                               read_idx),
    }
    with contextlib.suppress(ImportError):
        errors = _checkpoint_errors()
        targets["checkpoint_manifest"] = LoadTarget(
            "checkpoint_manifest", errors, _checkpoint_manifest_seed, _load_checkpoint
        )
        targets["checkpoint_weights"] = LoadTarget(
            "checkpoint_weights", errors, _checkpoint_weights_seed, _load_checkpoint,
            finalize=resign_manifest,
        )
    with contextlib.suppress(ImportError):
        targets.update(_config_targets())
    return targets


# ---- mutations --------------------------------------------------------------------------------

INTERESTING_INTS = (0, 1, 2, 7, 255, 256, 2**16 - 1, 2**31 - 1, 2**31, 2**32 - 1, 10**6, 10**12)
"""Values written over header fields: edges of int types and absurd sizes."""

Mutation = tuple[Any, ...]
"""("flip", pos, bit) | ("set", pos, byte) | ("truncate", pos) | ("insert", pos, bytes) |
("delete", pos, count) | ("u32be" | "u32le" | "u64le", pos, value)"""


def mutate(data: bytes, mutations: list[Mutation]) -> bytes:
    """Apply byte-level mutations in order; positions wrap around the current length."""
    buffer = bytearray(data)
    for kind, position, *rest in mutations:
        where = position % (len(buffer) + 1)
        if kind == "flip" and where < len(buffer):
            buffer[where] ^= 1 << rest[0]
        elif kind == "set" and where < len(buffer):
            buffer[where] = rest[0]
        elif kind == "truncate":
            del buffer[where:]
        elif kind == "insert":
            buffer[where:where] = rest[0]
        elif kind == "delete":
            del buffer[where : where + rest[0]]
        elif kind in _INT_FORMATS:
            fmt = _INT_FORMATS[kind]
            packed = struct.pack(fmt, rest[0] % (1 << (8 * struct.calcsize(fmt))))
            buffer[where : where + len(packed)] = packed
    return bytes(buffer)


_INT_FORMATS = {"u32be": ">I", "u32le": "<I", "u64le": "<Q"}


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (tuple of keys/indices) into a JSON value, the root included."""
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += json_paths(item, (*prefix, index))
    return paths


def replace_at(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of JSON ``value`` with the item at ``path`` replaced by ``new``."""
    if not path:
        return new
    head, *tail = path
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = replace_at(value[head], tuple(tail), new)
    return copy
