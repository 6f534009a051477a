"""The run folder on disk: its file names, creating it, and reading and writing its files.

Every file is written atomically (see :mod:`gradwise._atomic`); JSON is strict (a non-finite
number, such as a diverged loss, is written as null).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import gradwise as gw
from gradwise import nn
from gradwise._atomic import atomic_open, atomic_write_bytes, check_output_file
from gradwise._shown import plural, shown
from gradwise.recipes import TrainConfig
from gradwise.runinfo import check_run_info
from gradwise.safefile import open_untrusted, read_untrusted
from gradwise.safetensors_io import dump_safetensors, read_safetensors
from gradwise.train.checkpoint import MAX_MANIFEST_BYTES, CheckpointError, load_checkpoint

__all__ = [
    "BEST_CHECKPOINT",
    "CHECKPOINTS_DIR",
    "CONFIG_NAME",
    "CURVES_NAME",
    "HISTORY_NAME",
    "LAST_CHECKPOINT",
    "METRICS_NAME",
    "REPORT_NAME",
    "RUN_FORMAT",
    "RUN_INFO_NAME",
    "WEIGHTS_NAME",
    "WEIGHTS_DIGEST_KEY",
    "CHECKPOINT_DIGESTS_KEY",
    "Notify",
    "RunError",
    "check_digest",
    "default_run_dir",
    "read_config",
    "run_status",
]

CONFIG_NAME = "config.json"
RUN_INFO_NAME = "run.json"
METRICS_NAME = "metrics.jsonl"
HISTORY_NAME = "history.json"
WEIGHTS_NAME = "weights.safetensors"
CURVES_NAME = "learning_curves.png"
REPORT_NAME = "report.html"
CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT = f"{CHECKPOINTS_DIR}/last"
BEST_CHECKPOINT = f"{CHECKPOINTS_DIR}/best"
RUN_FORMAT = "gradwise.run"

WEIGHTS_DIGEST_KEY = "weights_sha256"
"""run.json key: the SHA-256 (hex) of ``weights.safetensors`` as training wrote it."""
CHECKPOINT_DIGESTS_KEY = "checkpoint_sha256"
"""run.json key: ``{"best": hex, "last": hex}``, the SHA-256 of each checkpoint's
``checkpoint.json`` when run.json was last written at a stop (finish or interrupt). A manifest
names every array file of its checkpoint by SHA-256, so pinning it pins the whole checkpoint."""
IGNORE_DIGEST_HINT = "--ignore-digest (ignore_digest=True in Python)"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

Notify = Callable[[str], Any]
"""Receives the lines meant for people; the CLI prints them, library callers may ignore them."""


class RunError(Exception):
    """A run cannot be started, resumed or read; the message names the file or setting."""


def quiet(message: str) -> None:
    """A :data:`Notify` that drops every message."""


def default_run_dir(recipe: str, root: str | os.PathLike[str] = "runs") -> Path:
    """``runs/<recipe>-<YYYYmmdd-HHMMSS>``, with a ``-2``, ``-3``... suffix if it exists."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{recipe}-{stamp}"
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def prepare_run_dir(config: TrainConfig, run_dir: Path, resume: bool,
                    ignore_digest: bool = False, notify: Notify = quiet) -> dict[str, Any]:
    """Create (or check, when resuming) the run folder; return run.json's contents.

    Resuming a run that stopped cleanly (interrupted, finished, stopped) checks
    ``checkpoints/last`` against the digest run.json pinned (see :func:`check_digest`;
    ``ignore_digest`` only warns). The digests are then dropped from the returned contents:
    the checkpoints change as soon as training goes on, and the next stop pins them again.

    When resuming nothing is written: the caller writes run.json (and config.json for an
    extended run) only after the checkpoint has been restored, so a refused resume leaves
    the folder byte for byte as it was.
    """
    if resume:
        check_run_files(run_dir)
        info_path = run_dir / RUN_INFO_NAME
        info = read_json(info_path) if os.path.lexists(info_path) else new_run_info(config)
        check_run_info(info, str(info_path), RunError)
        check_digest_fields(info, str(info_path))
        if info.get("status") != "running":
            check_checkpoint_digest(run_dir, "last", info, ignore_digest, notify)
        info.pop(CHECKPOINT_DIGESTS_KEY, None)
        info.pop(WEIGHTS_DIGEST_KEY, None)  # rewritten with the weights at the next finish
        if info.get("status") == "finished":
            done = int(info.get("epoch") or 0)
            if config.epochs <= done:
                raise RunError(f"{shown(run_dir)}: this run already finished its "
                               f"{plural(done, 'epoch')}; "
                               "nothing to resume (give a larger --epochs to extend it)")
            # extended: train on from the last checkpoint to config.epochs (config.json is
            # rewritten by the caller once the checkpoint has loaded: a refused resume
            # changes no file)
            info.setdefault("extended", []).append({"from": done, "to": config.epochs})
        info.pop("interrupted_by", None)
        info["resumed"] = int(info.get("resumed", 0)) + 1
        return info
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"{shown(run_dir)} exists and is not a folder")
    if (run_dir / CONFIG_NAME).exists():
        raise RunError(
            f"{shown(run_dir)} already holds a run; choose another --out folder, or continue it "
            f"with --resume {shown(run_dir)}"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / CONFIG_NAME, config.to_dict())
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise RunError(f"{shown(run_dir)}: cannot create the run folder: {reason}") from error
    return new_run_info(config)


RUN_FILES = (CONFIG_NAME, RUN_INFO_NAME, METRICS_NAME, HISTORY_NAME, WEIGHTS_NAME, CURVES_NAME,
             REPORT_NAME)
"""The files of a run folder that training reads or rewrites."""


def check_run_files(run_dir: Path) -> None:
    """Before a resume does any work: every file it will read or rewrite is a regular file
    (or absent) and every checkpoint folder a folder. A FIFO ``history.json`` used to be found
    only after the remaining epochs had trained and ``checkpoints/last`` and ``config.json``
    had been rewritten, leaving run.json "running"; a refused resume changes no file.

    Raises:
        RunError: naming the file and what it is (a FIFO, a device, a folder ...).
    """
    for name in RUN_FILES:
        try:
            check_output_file(run_dir / name)
        except OSError as error:
            raise RunError(f"{shown(run_dir)}: cannot resume: {error.strerror or error}"
                           ) from None
    for name in (CHECKPOINTS_DIR, LAST_CHECKPOINT, BEST_CHECKPOINT):
        folder = run_dir / name
        if os.path.lexists(folder) and not folder.is_dir():
            raise RunError(f"{shown(run_dir)}: cannot resume: {shown(folder)} is not a folder")


def run_status(run_dir: str | os.PathLike[str]) -> tuple[str, int]:
    """``(status, epochs done)`` from ``run.json``: status is ``finished``, ``stopped``,
    ``interrupted``, ``running`` (or killed while running) or ``new`` (no run.json yet).

    Raises:
        RunError: run.json exists but cannot be read.
    """
    path = Path(run_dir) / RUN_INFO_NAME
    if not os.path.lexists(path):  # a FIFO or a folder named run.json is refused, not "new"
        return "new", 0
    info = read_json(path)
    check_run_info(info, str(path), RunError)  # the schema resume and evaluate apply
    epoch = info.get("epoch")
    return str(info.get("status", "new")), epoch if isinstance(epoch, int) else 0


def new_run_info(config: TrainConfig) -> dict[str, Any]:
    """run.json's first contents: format, version, recipe and creation time."""
    return {
        "format": RUN_FORMAT,
        "gradwise_version": gw.__version__,
        "recipe": config.recipe,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def read_config(run_dir: str | os.PathLike[str]) -> TrainConfig:
    """The TrainConfig saved in ``run_dir/config.json``.

    Raises:
        RunError: the folder or its config.json is missing, unreadable or invalid.
    """
    path = Path(run_dir) / CONFIG_NAME
    if not Path(run_dir).is_dir():
        raise RunError(f"{shown(run_dir)}: no such run folder")
    try:
        return TrainConfig.from_dict(read_json(path))
    except ValueError as error:
        raise RunError(f"{shown(path)}: {error}") from error


# ---- weights ----------------------------------------------------------------------------------
def all_finite(model: nn.Module) -> bool:
    """Whether every floating-point array in ``model.state_dict()`` is finite."""
    return all(
        array.dtype.kind != "f" or bool(np.all(np.isfinite(array)))
        for array in map(np.asarray, model.state_dict().values())
    )


def save_weights(model: nn.Module, path: Path, config: TrainConfig) -> str:
    """Write ``model``'s state as safetensors, refusing non-finite values; return the SHA-256
    (hex) of the bytes written (run.json records it as ``weights_sha256``).

    Raises:
        RunError: an array holds NaN or Inf (nothing is written).
    """
    state = {name: np.require(np.asarray(array), requirements="C")  # 0-d stays 0-d
             for name, array in model.state_dict().items()}
    bad = [name for name, array in state.items()
           if array.dtype.kind == "f" and not np.all(np.isfinite(array))]
    if bad:
        raise RunError(f"{shown(path)}: not written: non-finite values in {', '.join(bad)}")
    metadata = {"format": "gradwise.weights", "recipe": config.recipe}
    payload = dump_safetensors(state, metadata=metadata)
    atomic_write_bytes(path, payload)
    return hashlib.sha256(payload).hexdigest()


def file_sha256(path: Path, within: Path, max_bytes: int) -> str:
    """SHA-256 (hex) of a run folder's file, read through the guarded opener in 1 MiB blocks
    (the memory used does not grow with the file).

    Args:
        max_bytes: the largest file hashed, checked before reading (the loader's own cap).

    Raises:
        RunError: the file is missing, not a regular file, outside ``within`` or too large.
    """
    digest = hashlib.sha256()
    with open_untrusted(path, max_bytes=max_bytes, within=within, error=RunError,
                        what=path.name) as (handle, _):
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_digest(path: Path, expected: str | None, run_dir: Path, ignore: bool = False,
                 notify: Notify = quiet, max_bytes: int = MAX_MANIFEST_BYTES) -> None:
    """Compare ``path``'s SHA-256 with the one run.json recorded (``expected``; None: nothing
    was recorded, e.g. a run written before gradwise recorded digests: not checked).

    PyTorch has no such check (``torch.load`` reads whatever file it is given); gradwise
    records the digests because run folders are passed between people.

    Args:
        ignore: a mismatch is reported through ``notify`` instead of raised (to inspect a
            modified run).
        max_bytes: the largest file hashed (default: a checkpoint manifest's cap).

    Raises:
        RunError: the digests differ; the message names the file and both digests.
    """
    if expected is None:
        return
    actual = file_sha256(path, run_dir, max_bytes)
    if actual == expected:
        return
    message = (f"{shown(path)}: SHA-256 {actual} does not match {expected}, recorded in "
               f"{RUN_INFO_NAME} when the run wrote it; the file was changed or replaced after "
               "training")
    if ignore:
        notify(f"Warning: {message}; loading it anyway ({IGNORE_DIGEST_HINT})")
        return
    raise RunError(f"{message}. Restore it, or pass {IGNORE_DIGEST_HINT} to load it anyway")


def checkpoint_digests(run_dir: Path) -> dict[str, str]:
    """``{"best": hex, "last": hex}`` of the run's checkpoint manifests that exist now."""
    digests = {}
    for name, folder in (("best", BEST_CHECKPOINT), ("last", LAST_CHECKPOINT)):
        manifest = run_dir / folder / "checkpoint.json"
        if manifest.is_file():
            digests[name] = file_sha256(manifest, run_dir, MAX_MANIFEST_BYTES)
    return digests


def check_checkpoint_digest(run_dir: Path, name: str, info: dict[str, Any],
                            ignore: bool = False, notify: Notify = quiet) -> None:
    """Check ``checkpoints/<name>/checkpoint.json`` against run.json's pinned digest, if any.

    Raises:
        RunError: see :func:`check_digest`.
    """
    pinned = info.get(CHECKPOINT_DIGESTS_KEY) or {}
    folder = BEST_CHECKPOINT if name == "best" else LAST_CHECKPOINT
    check_digest(run_dir / folder / "checkpoint.json", pinned.get(name), run_dir, ignore, notify)


def check_digest_fields(info: dict[str, Any], where: str) -> None:
    """run.json's digest fields, when present, are 64 lower-case hex digits.

    Raises:
        RunError: naming the file and the field.
    """
    fields = [(WEIGHTS_DIGEST_KEY, info.get(WEIGHTS_DIGEST_KEY, "0" * 64))]
    pinned = info.get(CHECKPOINT_DIGESTS_KEY, {})
    if not isinstance(pinned, dict) or not set(pinned) <= {"best", "last"}:
        raise RunError(f"{shown(where)}: {CHECKPOINT_DIGESTS_KEY} must be an object with keys "
                       "best and/or last")
    fields += [(f"{CHECKPOINT_DIGESTS_KEY}.{key}", value) for key, value in pinned.items()]
    for name, value in fields:
        if not (isinstance(value, str) and _SHA256_HEX.fullmatch(value)):
            raise RunError(f"{shown(where)}: {name} must be 64 lower-case hex digits (a "
                           f"SHA-256), got {str(value)[:80]!r}")


def load_checkpoint_weights(model: nn.Module, path: Path, allow_non_finite: bool = False) -> Any:
    """Load the weights of the checkpoint at ``path`` into ``model``; return the epoch it was
    taken at (``"?"`` when the checkpoint does not say).

    Raises:
        RunError: the checkpoint is missing, damaged, non-finite (unless ``allow_non_finite``)
            or does not fit ``model``.
    """
    try:
        data = load_checkpoint(path, model, allow_non_finite=allow_non_finite)
    except CheckpointError as error:
        raise RunError(str(error).splitlines()[0]) from error
    model.load_state_dict(data.model_state)
    return data.trainer_state.get("epoch", "?")


def load_weights(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a run's safetensors file: a guarded read inside the run folder, with every
    cap checked before parsing (see :mod:`gradwise.safetensors_io`).

    Raises:
        RunError: the file is missing, not a regular file, outside the run folder, too large,
            or not valid safetensors.
    """
    return read_safetensors(path, within=path.parent, error=RunError)[0]


# ---- JSON files -------------------------------------------------------------------------------
def write_json(path: Path, value: Any) -> None:
    """Strict JSON, atomically; non-finite numbers (a diverged loss) are written as null."""
    with atomic_open(path, "w") as handle:
        json.dump(_finite_or_none(value), handle, indent=2, allow_nan=False)
        handle.write("\n")


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


MAX_RUN_JSON_BYTES = 16 << 20
"""Largest config.json / run.json read (a real one is a few KB, even with 1000 class names)."""


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``.

    Raises:
        RunError: the file is missing, unreadable, not JSON, or not an object.
    """
    if not os.path.lexists(path):
        raise RunError(f"{shown(path)}: missing (is {path.parent} a gradwise run folder?)")
    payload = read_untrusted(path, max_bytes=MAX_RUN_JSON_BYTES, within=path.parent,
                             error=RunError, what=path.name)
    try:
        value = json.loads(payload.decode("utf-8"))
    except RecursionError:
        raise RunError(f"{shown(path)}: unreadable: nested too deeply") from None
    except (OSError, ValueError) as error:  # ValueError: bad UTF-8, bad JSON, huge numbers
        raise RunError(f"{shown(path)}: unreadable: {str(error).splitlines()[0]}") from None
    if not isinstance(value, dict):
        raise RunError(f"{shown(path)}: expected a JSON object")
    return value
