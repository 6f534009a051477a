"""``gw.save`` / ``gw.load``: state dicts and nested dicts/lists of tensors and numbers in one
safetensors file, the structure kept as JSON in its header. Never pickle: loading a file runs
no code from it.

File layout: a flat dict of str -> tensor (a state dict) stores each tensor under its own key,
so ``safetensors.torch.load_file`` in PyTorch reads it as the same state dict. Anything else is
a safetensors file whose tensors are named ``t0, t1, ...`` and whose metadata key
``gradwise.structure`` holds the object as JSON, each tensor replaced by ``{"__tensor__": "t0"}``
(``"__ndarray__"`` for NumPy arrays), tuples by ``{"__tuple__": [...]}`` and dicts whose keys
are not all strings by ``{"__dict__": [[key, value], ...]}`` (optimizer state is keyed by ints).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from gradwise._atomic import atomic_write_bytes
from gradwise._shown import shown
from gradwise.autograd.device import check_device
from gradwise.autograd.tensor import Tensor

STRUCTURE_KEY = "gradwise.structure"
FORMAT_KEY = "gradwise.format"
FORMAT = "gradwise-save-1"

__all__ = ["load", "save"]


def _encode(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(obj, Tensor) or (hasattr(obj, "detach") and hasattr(obj, "numpy")):
        array = obj._data if isinstance(obj, Tensor) else obj.detach().cpu().numpy()
        name = f"t{len(arrays)}"
        arrays[name] = np.ascontiguousarray(array)
        return {"__tensor__": name, "shape": list(np.shape(array))}
    if isinstance(obj, np.ndarray):
        name = f"t{len(arrays)}"
        arrays[name] = np.ascontiguousarray(obj)
        return {"__ndarray__": name, "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        if isinstance(obj, float) and not np.isfinite(obj):
            return {"__float__": repr(obj)}
        return obj
    if isinstance(obj, dict):
        if all(isinstance(key, str) for key in obj) and not any(
            key.startswith("__") and key.endswith("__") for key in obj
        ):
            return {key: _encode(value, arrays, f"{where}[{key!r}]") for key, value in obj.items()}
        return {"__dict__": [[_encode(key, arrays, where), _encode(value, arrays,
                                                                   f"{where}[{key!r}]")]
                             for key, value in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(
        f"save: {where} is a {type(obj).__name__}; gw.save stores tensors, arrays, numbers, "
        "strings, None and dicts/lists/tuples of them (never pickled objects). Save a model "
        "with gw.save(model.state_dict(), path)"
    )


def _decode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    # safetensors stores a 0-d array as shape (1,): the JSON keeps the true shape
    if "__tensor__" in obj:
        return Tensor._make(arrays[obj["__tensor__"]].reshape(obj["shape"]), False, None)
    if "__ndarray__" in obj:
        return arrays[obj["__ndarray__"]].reshape(obj["shape"])
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__tuple__" in obj:
        return tuple(_decode(v, arrays) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {_decode(k, arrays): _decode(v, arrays) for k, v in obj["__dict__"]}
    return {key: _decode(value, arrays) for key, value in obj.items()}


def _is_tensor_like(value: Any) -> bool:
    return isinstance(value, Tensor | np.ndarray) or (
        hasattr(value, "detach") and hasattr(value, "numpy"))


def _raw_array(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value._data
    if isinstance(value, np.ndarray):
        return value
    return value.detach().cpu().numpy()


def _is_state_dict(obj: Any) -> bool:
    """A non-empty flat dict of str -> tensor/array whose keys are plain names (not the
    ``__name__`` forms the JSON structure reserves)."""
    return (isinstance(obj, dict) and bool(obj) and all(
        isinstance(key, str) and key and not (key.startswith("__") and key.endswith("__"))
        and _is_tensor_like(value) for key, value in obj.items()))


def save(obj: Any, f: str | os.PathLike[str]) -> None:
    """Write ``obj`` (a state dict, or nested dicts/lists/tuples of tensors, arrays, numbers,
    strings and None) to the file ``f``, atomically (a crash leaves the old file). A state
    dict (flat str -> tensor) is stored under its own keys, so PyTorch's
    ``safetensors.torch.load_file(f)`` reads it directly.

    Raises:
        TypeError: ``obj`` holds something else (a Module, a function ...), naming where; or
            ``f`` is not a path (file objects are not supported: docs/PORTING.md).
        OSError: the file cannot be written.
    """
    if not isinstance(f, str | os.PathLike):
        raise TypeError(f"save: f must be a file path, got {type(f).__name__}")
    arrays: dict[str, np.ndarray] = {}
    if _is_state_dict(obj):
        # the tensors under their own names: a PyTorch user's safetensors.torch.load_file
        # reads the same state dict (gw.load still restores ndarray vs Tensor from the JSON)
        structure: Any = {}
        for key, value in obj.items():
            array = _raw_array(value)
            arrays[key] = np.ascontiguousarray(array)
            kind = "__ndarray__" if isinstance(value, np.ndarray) else "__tensor__"
            structure[key] = {kind: key, "shape": list(np.shape(array))}
    else:
        structure = _encode(obj, arrays, "obj")
    metadata = {STRUCTURE_KEY: json.dumps(structure), FORMAT_KEY: FORMAT}
    atomic_write_bytes(Path(f), safetensors.numpy.save(arrays, metadata=metadata))


def load(f: str | os.PathLike[str], map_location: Any = None, weights_only: bool = True,
         **kwargs: Any) -> Any:
    """Read what :func:`save` wrote. ``map_location`` may name the CPU (anything else raises);
    ``weights_only`` is accepted (loading never runs code). A plain safetensors file (e.g.
    from ``safetensors.torch.save_file``) loads as a dict of tensors.

    Raises:
        FileNotFoundError: no file at ``f``.
        ValueError: the file is not a safetensors file (a pickle ``.pt`` from ``torch.save``
            cannot be read: save it with safetensors in PyTorch, docs/PORTING.md).
    """
    if map_location is not None and not callable(map_location) and not isinstance(
        map_location, dict
    ):
        check_device(map_location, "load")
    path = Path(f)
    if not path.is_file():
        raise FileNotFoundError(f"load: no file at {shown(path)}")
    data = path.read_bytes()
    try:
        arrays = safetensors.numpy.load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len])
    except Exception as error:  # safetensors raises its own error types
        raise ValueError(
            f"load: {shown(path)} is not a file written by gw.save (safetensors): {error}. A "
            "pickle "
            "checkpoint from torch.save cannot be read (gradwise never unpickles); in PyTorch "
            "write it with safetensors.torch.save_file(state_dict, path)"
        ) from None
    metadata = header.get("__metadata__") or {}
    if STRUCTURE_KEY not in metadata:
        return {name: Tensor._make(array, False, None) for name, array in arrays.items()}
    return _decode(json.loads(metadata[STRUCTURE_KEY]), arrays)
