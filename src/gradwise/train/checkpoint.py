"""Checkpoints: weights in safetensors, everything else in a JSON manifest, verified on load.

A checkpoint is a directory::

    run/ckpt/
      checkpoint.json                   the manifest, written last
      model-<sha256 prefix>.safetensors      model.state_dict(), keys as in the model
      optimizer-<sha256 prefix>.safetensors  the optimizer's arrays (momentum, Adam moments)
      callbacks-<sha256 prefix>.safetensors  arrays in callback states (EarlyStopping's best
                                             weights), when there are any

The manifest holds the format version, the model's class name and parameter shapes, the
optimizer's non-array state, the scheduler state, the trainer state (epoch, step, position in
the epoch, RNG states), the callbacks' states (every callback with ``state_dict``, the
doctor's included), the history, and the byte size and SHA-256 of each safetensors file. There
is no timestamp and every header is canonical, so the same run state always gives the same
bytes.

Consistency: each file is written atomically (temporary file in the same directory, fsync,
rename), the array files get content-addressed names, and the manifest that names them is
written last. A crash at any moment leaves either the previous checkpoint or the new one, never
a mix; stale array files are removed only after the new manifest is in place. Loading checks
every size and hash, so a truncated or altered file raises :class:`CheckpointError` naming the
file. Every file is opened through :func:`gradwise.safefile.open_untrusted`: regular files
only, inside the checkpoint folder, size checked before reading. Loaded weights must be
finite (unless ``allow_non_finite=True``, for inspecting a diverged run) and, when a model is
given, of the model's dtypes. Nothing is ever pickled.

Example:
    >>> trainer.save_checkpoint("runs/ckpt")                 # doctest: +SKIP
    >>> trainer.fit(data, epochs=10, resume_from="runs/ckpt")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradwise._atomic import atomic_write_bytes
from gradwise._shown import shown
from gradwise.nn.module import state_shape_fits
from gradwise.optim.optimizer import join_state, split_state
from gradwise.safefile import read_untrusted
from gradwise.safetensors_io import (
    MAX_TENSORS,
    available_memory,
    dump_safetensors,
    parse_safetensors,
    read_safetensors,
)

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "CheckpointData",
    "CheckpointError",
    "check_state_matches",
    "load_checkpoint",
    "load_model_weights",
    "save_checkpoint",
]

FORMAT_TAG = "gradwise.checkpoint"
FORMAT_VERSION = 1
MANIFEST_NAME = "checkpoint.json"
_ARRAY_FILES = ("model", "optimizer", "callbacks")
MAX_MANIFEST_BYTES = 32 << 20
"""Largest manifest read: a long history with the doctor's records is a few MB, and parsing
JSON takes about ten times its size in memory."""
_ARRAY_MARK = "__array__"


class CheckpointError(Exception):
    """A checkpoint cannot be written or read: missing, truncated, altered or mismatched."""


@dataclass
class CheckpointData:
    """Everything a checkpoint holds, as plain NumPy arrays and JSON data.

    Attributes:
        model_state: ``model.state_dict()``.
        model_class: the model's class name (informative; loading checks keys and shapes).
        optimizer_state: ``optimizer.state_dict()`` (PyTorch structure), or None.
        scheduler_state: ``scheduler.state_dict()``, or None.
        trainer_state: the trainer's JSON state (epoch, step, RNG states, ...).
        history: ``History.to_dict()``, or None.
        callbacks_state: ``{callback key: state}`` for every callback with ``state_dict``;
            states may hold NumPy arrays (stored in a safetensors file), or None.
        path: the directory it was loaded from (set by :func:`load_checkpoint`).
        meta: the manifest as read (set by :func:`load_checkpoint`).
    """

    model_state: dict[str, np.ndarray]
    model_class: str | None = None
    optimizer_state: dict[str, Any] | None = None
    scheduler_state: dict[str, Any] | None = None
    trainer_state: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] | None = None
    callbacks_state: dict[str, Any] | None = None
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)


# ---- saving -----------------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike[str], data: CheckpointData) -> Path:
    """Write ``data`` as a checkpoint directory at ``path`` (created if needed).

    Raises:
        CheckpointError: ``path`` is an existing file, a model array is not finite (a
            diverged model is never checkpointed), or a state is not JSON-serialisable.

    Returns the directory.
    """
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"save_checkpoint: {shown(directory)} exists and is not a directory")
    model_arrays = _as_arrays("model", data.model_state)
    _check_finite(model_arrays, directory)
    optimizer_arrays: dict[str, np.ndarray] = {}
    optimizer_meta: Any = None
    if data.optimizer_state is not None:
        optimizer_arrays, optimizer_meta = split_state(data.optimizer_state)
        optimizer_arrays = _as_arrays("optimizer", optimizer_arrays)
    callback_arrays: dict[str, np.ndarray] = {}
    callbacks_meta = None
    if data.callbacks_state is not None:
        callbacks_meta = _split_arrays(data.callbacks_state, "", callback_arrays)

    manifest: dict[str, Any] = {
        "format": FORMAT_TAG,
        "version": FORMAT_VERSION,
        "model": {
            "class": data.model_class,
            "tensors": {
                name: {"shape": list(array.shape), "dtype": str(array.dtype)}
                for name, array in model_arrays.items()
            },
        },
        "optimizer": None if data.optimizer_state is None else {"meta": optimizer_meta},
        "scheduler": data.scheduler_state,
        "trainer": data.trainer_state,
        "history": data.history,
        "callbacks": callbacks_meta,
    }
    try:
        manifest_text = json.dumps(to_json_safe(manifest), indent=1, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"save_checkpoint: state for {shown(directory)} is not JSON-serialisable: {error}"
        ) from error

    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    for kind, arrays in (("model", model_arrays), ("optimizer", optimizer_arrays),
                         ("callbacks", callback_arrays)):
        if kind == "optimizer" and data.optimizer_state is None:
            continue
        if kind == "callbacks" and not arrays:
            continue
        files[kind] = _write_array_file(directory, kind, arrays)
    # The file table goes in after the JSON check above, so a failed check writes nothing.
    manifest["files"] = files
    manifest_text = json.dumps(to_json_safe(manifest), indent=1, allow_nan=False)
    atomic_write_bytes(directory / MANIFEST_NAME, manifest_text.encode("utf-8"))
    _remove_stale_files(directory, {entry["file"] for entry in files.values()})
    return directory


def _write_array_file(directory: Path, kind: str, arrays: dict[str, np.ndarray]) -> dict:
    payload = dump_safetensors(arrays)
    digest = hashlib.sha256(payload).hexdigest()
    name = f"{kind}-{digest[:16]}.safetensors"
    target = directory / name
    # Same name means same content; an existing identical file needs no rewrite.
    if not (target.is_file() and target.stat().st_size == len(payload)):
        atomic_write_bytes(target, payload)
    return {"file": name, "sha256": digest, "bytes": len(payload)}


def _remove_stale_files(directory: Path, keep: set[str]) -> None:
    stale_files = []
    for kind in _ARRAY_FILES:
        stale_files += [p for p in directory.glob(f"{kind}-*.safetensors") if p.name not in keep]
        # temp files of a save that was killed mid-write (the atomic writer's naming)
        stale_files += directory.glob(f".{kind}-*.safetensors.*.tmp")
    stale_files += directory.glob(f".{MANIFEST_NAME}.*.tmp")
    for stale in stale_files:
        # a leftover file is harmless (the manifest names the right one), so failures are ignored
        with contextlib.suppress(OSError):
            stale.unlink()


def _split_arrays(value: Any, where: str, arrays: dict[str, np.ndarray]) -> Any:
    """JSON data from ``value`` with every array moved into ``arrays`` (a marker left behind)."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise CheckpointError(f"save_checkpoint: callback state {where} is an object array")
        arrays[where] = np.require(value, requirements="C")  # 0-d stays 0-d
        return {_ARRAY_MARK: where}
    if isinstance(value, dict):
        return {str(key): _split_arrays(item, f"{where}/{key}" if where else str(key), arrays)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_arrays(item, f"{where}/{index}", arrays) for index, item in enumerate(value)]
    return value


def _join_arrays(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Undo :func:`_split_arrays`."""
    if isinstance(value, dict):
        if set(value) == {_ARRAY_MARK}:
            key = value[_ARRAY_MARK]
            if not isinstance(key, str) or key not in arrays:
                raise ValueError(f"callback state refers to array {str(key)[:80]!r}, not saved")
            return arrays[key]
        return {key: _join_arrays(item, arrays) for key, item in value.items()}
    if isinstance(value, list):
        return [_join_arrays(item, arrays) for item in value]
    return value


def _as_arrays(kind: str, state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    arrays = {}
    for name, value in state.items():
        if not isinstance(name, str):
            raise CheckpointError(f"save_checkpoint: {kind} state key {name!r} is not a string")
        array = np.asarray(getattr(value, "_data", value))
        if array.dtype == object:
            raise CheckpointError(
                f"save_checkpoint: {kind} state {name!r} is not a numeric array "
                f"(type {type(value).__name__})"
            )
        arrays[name] = np.require(array, requirements="C")
    return arrays


def _check_finite(arrays: dict[str, np.ndarray], directory: Path) -> None:
    bad = [
        name
        for name, array in arrays.items()
        if array.dtype.kind in "fc" and not np.all(np.isfinite(array))
    ]
    if bad:
        raise CheckpointError(
            f"save_checkpoint: refusing to write {shown(directory)}: non-finite values in "
            f"{', '.join(bad)} (training diverged)"
        )


# ---- loading ----------------------------------------------------------------------------------
NON_NEGATIVE_STATE = ("exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum", "acc_delta")
"""Optimizer state entries that are running sums or averages of squares (Adam/AdamW/RMSprop/
Adagrad/Adadelta, names as in PyTorch's ``optimizer.state_dict()``): never negative, and a
negative one would make ``sqrt`` NaN at the first step after a resume."""


def _check_optimizer_arrays(arrays: dict[str, np.ndarray], source: Path) -> None:
    """Refuse NaN/inf anywhere in the optimizer state and negative second moments, naming
    the first offending tensor (CheckpointError)."""
    for name in sorted(arrays):
        array = arrays[name]
        if array.dtype.kind not in "fc":
            continue
        if not np.all(np.isfinite(array)):
            raise CheckpointError(f"{source}: the optimizer state {name} holds non-finite "
                                  "values (NaN or inf); this checkpoint cannot be resumed")
        leaf = name.rsplit(".", 1)[-1]
        if leaf in NON_NEGATIVE_STATE and array.size and float(np.min(array)) < 0:
            raise CheckpointError(f"{source}: the optimizer state {name} holds negative "
                                  f"values (min {float(np.min(array)):.3g}), impossible for a "
                                  "running average of squares; this checkpoint cannot be "
                                  "resumed")


def load_checkpoint(
    path: str | os.PathLike[str], model: Any = None, *, allow_non_finite: bool = False
) -> CheckpointData:
    """Read and verify a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the checkpoint directory (or its ``checkpoint.json``).
        model: optional; when given, the saved weights must match ``model.state_dict()``
            key for key, shape for shape and dtype for dtype.
        allow_non_finite: accept NaN/inf weights (to inspect a diverged run); refused by
            default, since nothing useful can be computed from them.

    Raises:
        CheckpointError: naming the file and the problem: missing, not a checkpoint, an
            unsupported version, truncated (size differs), altered (SHA-256 differs),
            unreadable safetensors, not a regular file or outside the folder, non-finite
            weights, or weights that do not fit ``model``.
    """
    manifest_path = Path(path)
    if not manifest_path.exists():
        raise CheckpointError(f"{shown(manifest_path)}: no such checkpoint directory")
    if manifest_path.is_dir():
        manifest_path = manifest_path / MANIFEST_NAME
    directory = manifest_path.parent
    manifest = _read_manifest(manifest_path)
    files = manifest["files"]
    model_file = directory / files["model"]["file"]
    model_state = _check_against_manifest(
        _read_array_file(directory, "model", files["model"]), manifest, model_file
    )
    if not allow_non_finite:
        check_finite_weights(model_state, model_file, CheckpointError)
    if model is not None:
        check_state_matches(model.state_dict(), model_state, manifest["model"]["class"],
                            model_file, type(model).__name__)

    optimizer_state = None
    if manifest["optimizer"] is not None:
        optimizer_arrays = _read_array_file(directory, "optimizer", files["optimizer"])
        if not allow_non_finite:
            _check_optimizer_arrays(optimizer_arrays, directory / files["optimizer"]["file"])
        try:
            optimizer_state = join_state(
                optimizer_arrays, from_json_safe(manifest["optimizer"]["meta"])
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CheckpointError(
                f"{directory / files['optimizer']['file']}: optimizer arrays do not fit the "
                f"saved optimizer state: {error}"
            ) from error
    callbacks_state = None
    if manifest.get("callbacks") is not None:
        callback_arrays: dict[str, np.ndarray] = {}
        if "callbacks" in files:
            callback_arrays = _read_array_file(directory, "callbacks", files["callbacks"])
        try:
            callbacks_state = _join_arrays(from_json_safe(manifest["callbacks"]), callback_arrays)
        except ValueError as error:
            raise CheckpointError(f"{shown(manifest_path)}: malformed manifest: {error}") from error
    try:
        return CheckpointData(
            model_state=model_state,
            model_class=manifest["model"]["class"],
            optimizer_state=optimizer_state,
            scheduler_state=from_json_safe(manifest.get("scheduler")),
            trainer_state=from_json_safe(manifest.get("trainer") or {}),
            history=from_json_safe(manifest.get("history")),
            callbacks_state=callbacks_state,
            path=directory,
            meta=manifest,
        )
    except ValueError as error:
        raise CheckpointError(f"{shown(manifest_path)}: malformed manifest: {error}") from error


def load_model_weights(path: str | os.PathLike[str], model: Any, *,
                       allow_non_finite: bool = False) -> CheckpointData:
    """Load weights into ``model`` (strictly: every key, every shape); return what was read.

    Args:
        path: a checkpoint directory (or its ``checkpoint.json``), verified as in
            :func:`load_checkpoint`; or a ``.safetensors`` file of weights alone, such as the
            ``weights.safetensors`` of a ``gradwise train`` run folder.
        allow_non_finite: load NaN/inf weights instead of refusing them (to inspect a diverged
            run).

    Raises:
        CheckpointError: naming the file: missing, unreadable, not safetensors, non-finite, or
            weights that do not fit ``model``.
    """
    weights = Path(path)
    if weights.suffix == ".safetensors" and not weights.is_dir():
        data = _load_weights_file(weights, model, allow_non_finite)
    else:
        data = load_checkpoint(path, model, allow_non_finite=allow_non_finite)
    model.load_state_dict(data.model_state)
    return data


def _load_weights_file(path: Path, model: Any, allow_non_finite: bool) -> CheckpointData:
    """A bare safetensors file of weights (no manifest, so no hash to verify against), read
    with the same guards and caps as a checkpoint's files."""
    state = read_safetensors(path, within=path.parent, error=CheckpointError)[0]
    check_state_matches(model.state_dict(), state, source=path,
                        model_class=type(model).__name__)
    if not allow_non_finite:
        check_finite_weights(state, path)
    return CheckpointData(model_state=state, model_class=None, path=path)


def check_finite_weights(state: Mapping[str, np.ndarray], source: Path | str,
                         error: type[Exception] = CheckpointError) -> None:
    """Raise ``error`` naming the tensors that hold NaN or infinite values."""
    bad = [name for name, array in state.items()
           if array.dtype.kind in "fc" and not np.all(np.isfinite(array))]
    if bad:
        shown = ", ".join(bad[:5]) + (f", ... ({len(bad)} in all)" if len(bad) > 5 else "")
        raise error(
            f"{source}: non-finite weights (NaN or inf) in {shown}; the run diverged before "
            "this was saved (pass allow_non_finite=True, or gradwise evaluate --allow-non-finite, "
            "to inspect it)"
        )


def check_state_matches(
    expected: Mapping[str, Any],
    saved: Mapping[str, np.ndarray],
    saved_class: str | None = None,
    source: Path | str = "checkpoint",
    model_class: str | None = None,
) -> None:
    """Raise :class:`CheckpointError` listing missing, unexpected and mis-shaped keys."""
    expected_shapes = {
        key: tuple(np.shape(getattr(value, "_data", value))) for key, value in expected.items()
    }
    missing = [key for key in expected_shapes if key not in saved]
    unexpected = [key for key in saved if key not in expected_shapes]
    mis_shaped = [
        f"{key}: checkpoint {tuple(saved[key].shape)} vs model {shape}"
        for key, shape in expected_shapes.items()
        if key in saved and not state_shape_fits(tuple(saved[key].shape), shape)
    ]
    for key, value in expected.items():
        dtype = np.asarray(getattr(value, "_data", value)).dtype
        if key in saved and tuple(saved[key].shape) == expected_shapes[key] and (
            saved[key].dtype != dtype
        ):
            mis_shaped.append(f"{key}: checkpoint dtype {saved[key].dtype} vs model {dtype}")
    missing, unexpected = missing[:50], unexpected[:50]
    if not (missing or unexpected or mis_shaped):
        return
    lines = [f"{source}: the checkpoint does not fit this model"]
    if saved_class and model_class and saved_class != model_class:
        lines[0] += f" (saved from {saved_class}, loading into {model_class})"
    first = (f"missing {missing[0]}" if missing else f"{unexpected[0]} is not in the model"
             if unexpected else mis_shaped[0])
    lines[0] += f": {first[:120]}" + ("; ..." if len(missing) + len(unexpected)
                                       + len(mis_shaped) > 1 else "")
    for title, items in (
        ("missing from the checkpoint", missing),
        ("not in the model", unexpected),
        ("shape mismatch", mis_shaped),
    ):
        if items:
            shown = ", ".join(items[:10])
            if len(items) > 10:
                shown += f", ... ({len(items)} in all)"
            lines.append(f"  {title}: {shown}")
    raise CheckpointError("\n".join(lines))


def _read_manifest(manifest_path: Path) -> dict[str, Any]:
    """Parse the manifest and check its whole structure: it is untrusted input."""
    if not manifest_path.exists():
        raise CheckpointError(f"{shown(manifest_path)}: no checkpoint manifest here")
    payload = read_untrusted(manifest_path, max_bytes=MAX_MANIFEST_BYTES,
                             within=manifest_path.parent, error=CheckpointError,
                             what="checkpoint manifest")
    try:
        manifest = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CheckpointError(
            f"{shown(manifest_path)}: unreadable manifest (truncated or altered?): "
            f"{type(error).__name__}: {str(error)[:200]}"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_TAG:
        raise CheckpointError(f"{shown(manifest_path)}: not a gradwise checkpoint manifest")
    version = manifest.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise CheckpointError(
            f"{shown(manifest_path)}: checkpoint format version {version!r}; this gradwise reads "
            f"version {FORMAT_VERSION}"
        )
    problem = _manifest_problem(manifest)
    if problem is not None:
        raise CheckpointError(f"{shown(manifest_path)}: malformed manifest: {problem}")
    return manifest


def _manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What is structurally wrong with a manifest, or None."""
    model = manifest.get("model")
    if not isinstance(model, dict):
        return "no model section"
    if model.get("class") is not None and not isinstance(model.get("class"), str):
        return "model class is not a string"
    tensors = model.get("tensors")
    if not isinstance(tensors, dict):
        return "the model's tensor table is not an object"
    if len(tensors) > MAX_TENSORS:
        return f"{len(tensors)} tensors listed, more than the {MAX_TENSORS} accepted"
    for name, info in tensors.items():
        shape = info.get("shape") if isinstance(info, dict) else None
        if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
            return f"tensor {name!r} has no valid shape"
    files = manifest.get("files")
    if not isinstance(files, dict) or "model" not in files:
        return "no model weights file listed"
    for section in ("optimizer", "scheduler", "trainer", "history"):
        if section not in manifest:  # always written, null when absent
            return f"no {section} section"
    optimizer = manifest.get("optimizer")
    if optimizer is not None:
        meta = optimizer.get("meta") if isinstance(optimizer, dict) else None
        if not (
            isinstance(meta, dict)
            and isinstance(meta.get("state"), dict)
            and all(isinstance(entry, dict) for entry in meta["state"].values())
            and isinstance(meta.get("param_groups"), list)
            and all(isinstance(group, dict) for group in meta["param_groups"])
        ):
            return "the optimizer state is not {'state': {...}, 'param_groups': [...]}"
        if "optimizer" not in files:
            return "optimizer state listed without its file"
    for kind in files:
        if kind not in _ARRAY_FILES:
            return f"unknown file kind {kind!r}"
        problem = _file_entry_problem(files[kind])
        if problem is not None:
            return f"{kind} file entry: {problem}"
    if manifest.get("callbacks") is not None and not isinstance(manifest["callbacks"], dict):
        return "the callbacks section is not an object"
    for section in ("trainer", "scheduler", "history"):
        if manifest.get(section) is not None and not isinstance(manifest[section], dict):
            return f"the {section} section is not an object"
    return None


def _file_entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "not an object"
    name, digest, size = entry.get("file"), entry.get("sha256"), entry.get("bytes")
    if not (isinstance(name, str) and _SAFE_FILE_NAME.fullmatch(name)):
        return f"bad file name {name!r} (must be a plain name inside the checkpoint folder)"
    if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
        return "sha256 is not 64 hex digits"
    if not _is_count(size):
        return f"bytes is not a non-negative integer ({size!r})"
    return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_SAFE_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,200}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _read_array_file(directory: Path, kind: str, entry: Any) -> dict[str, np.ndarray]:
    name, digest, size = entry["file"], entry["sha256"], entry["bytes"]  # checked in the manifest
    file_path = directory / name
    if not os.path.lexists(file_path):
        raise CheckpointError(f"{shown(file_path)}: {kind} file named by the manifest is missing")
    if size > available_memory() // 2:
        raise CheckpointError(
            f"{shown(file_path)}: the manifest says the {kind} file is {size} bytes, more than "
            "half "
            "the memory available; refused before reading"
        )
    payload = read_untrusted(file_path, max_bytes=size, within=directory,
                             error=CheckpointError, what=f"{kind} file")
    if len(payload) != size:
        raise CheckpointError(
            f"{shown(file_path)}: {kind} file is {len(payload)} bytes, the manifest says {size} "
            "(truncated or replaced)"
        )
    actual = hashlib.sha256(payload).hexdigest()
    if actual != digest:
        raise CheckpointError(
            f"{shown(file_path)}: {kind} file is altered: SHA-256 {actual[:16]}... does not match "
            f"the manifest's {digest[:16]}..."
        )
    return parse_safetensors(payload, str(file_path), CheckpointError)[0]


def _check_against_manifest(
    model_state: dict[str, np.ndarray], manifest: dict[str, Any], file_path: Path
) -> dict[str, np.ndarray]:
    listed = manifest["model"]["tensors"]
    if set(listed) != set(model_state):
        only_file = sorted(set(model_state) - set(listed))
        only_manifest = sorted(set(listed) - set(model_state))
        raise CheckpointError(
            f"{shown(file_path)}: the file's {len(model_state)} tensors are not the manifest's "
            f"{len(listed)}: only in the file {_few(only_file)}, only in the manifest "
            f"{_few(only_manifest)}"
        )
    for name, info in listed.items():
        if list(model_state[name].shape) != info["shape"]:
            raise CheckpointError(
                f"{shown(file_path)}: tensor {name!r} has shape "
                f"{list(model_state[name].shape)}, the "
                f"manifest says {info['shape']}"
            )
    return {name: model_state[name] for name in listed}  # the model's order, not the file's


def _few(names: list[str], count: int = 3) -> str:
    """At most ``count`` names, each cut to 60 characters: error lines stay short."""
    shown = [name if len(name) <= 60 else name[:57] + "..." for name in names[:count]]
    more = f" and {len(names) - count} more" if len(names) > count else ""
    return (", ".join(shown) or "none") + more


# ---- JSON with numpy values and non-finite floats ---------------------------------------------
_NON_FINITE_TAG = "__float__"


def to_json_safe(value: Any) -> Any:
    """Plain JSON data from nested dicts/lists holding numpy values and non-finite floats.

    Arrays become lists, numpy scalars Python numbers, tuples lists, and inf/nan the object
    ``{"__float__": "inf"}`` (strict JSON has no such numbers); :func:`from_json_safe` undoes
    the last step.
    """
    if isinstance(value, dict):
        return {str(key): to_json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return to_json_safe(value.tolist())
    if isinstance(value, np.generic):
        return to_json_safe(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return {_NON_FINITE_TAG: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    return value


def from_json_safe(value: Any) -> Any:
    """Undo :func:`to_json_safe`'s encoding of non-finite floats."""
    if isinstance(value, dict):
        if set(value) == {_NON_FINITE_TAG}:
            tag = value[_NON_FINITE_TAG]
            if tag not in ("nan", "inf", "-inf"):
                raise ValueError(f"bad non-finite number tag {tag!r}")
            return float(tag)
        return {key: from_json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_json_safe(item) for item in value]
    return value
