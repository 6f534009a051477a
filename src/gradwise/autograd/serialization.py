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

from gradwise._atomic import atomic_write_bytes
from gradwise._shown import short_repr, shown
from gradwise.autograd.device import check_device
from gradwise.autograd.tensor import Tensor
from gradwise.safetensors_io import dump_safetensors, read_safetensors

STRUCTURE_KEY = "gradwise.structure"
FORMAT_KEY = "gradwise.format"
FORMAT = "gradwise-save-1"

__all__ = ["SaveFileError", "load", "save"]


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
        if isinstance(obj, int) and not isinstance(obj, bool) and (
            obj.bit_length() > MAX_INT_BITS
        ):
            raise ValueError(f"save: {where} is an integer of {obj.bit_length()} bits, more than "
                             f"the {MAX_INT_BITS} gw.load accepts")
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
    """The object ``obj`` describes; ``obj`` has passed :func:`_validate`."""
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    # the JSON keeps the true shape (older safetensors writers stored a 0-d array as (1,))
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


class SaveFileError(ValueError):
    """A file given to :func:`load` is refused: not a regular file, too large, not safetensors,
    or its ``gradwise.structure`` header breaks the schema (the message names the file and the
    JSON path of the bad field, e.g. ``$["model"]["weight"].shape[0]``)."""


MAX_DEPTH = 64
"""Deepest nesting of lists/dicts/tuples :func:`load` accepts (a state dict is 3-5 deep; the
attacker's 100 000 brackets ended in RecursionError)."""
MAX_INT_BITS = 256
"""Largest Python int :func:`save` writes and :func:`load` reads, in bits: holds a PCG64 or
Philox generator state (128 bits); anything longer is refused on both sides (a 5000-digit
literal hit Python's 4300-digit ``int`` limit as a bare ValueError)."""
_FLOAT_WORDS = ("inf", "-inf", "nan")
_KINDS = {"__tensor__", "__ndarray__", "__float__", "__tuple__", "__dict__"}


def _refuse_constant(word: str) -> Any:
    raise ValueError(f"the JSON literal {word} is not allowed (non-finite floats are stored as "
                     '{"__float__": "inf"})')


def _parse_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(f"the number {text[:40]} overflows a float64")
    return value


def _parse_int(text: str) -> int:
    # ~0.30103 decimal digits per bit: refuse before int() builds a huge number (or raises)
    if len(text.lstrip("-")) > MAX_INT_BITS * 0.30103 + 1:
        raise ValueError(f"an integer of {len(text)} digits, more than {MAX_INT_BITS} bits")
    return int(text)


class _Schema:
    """Walks the decoded structure JSON once, checking every node against the layout
    :func:`_encode` writes; raises :class:`SaveFileError` naming the JSON path."""

    def __init__(self, source: str, arrays: dict[str, np.ndarray]) -> None:
        self.source, self.arrays = source, arrays
        self.used: set[str] = set()

    def fail(self, where: str, reason: str) -> SaveFileError:
        return SaveFileError(f"load: {shown(self.source)}: refused: {where}: {reason}")

    def check(self, obj: Any, where: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.fail(where, f"nested more than {MAX_DEPTH} levels deep")
        if obj is None or isinstance(obj, bool | str):
            return
        if isinstance(obj, int):
            if obj.bit_length() > MAX_INT_BITS:
                raise self.fail(where, f"an integer of more than {MAX_INT_BITS} bits")
            return
        if isinstance(obj, float):
            if not np.isfinite(obj):
                raise self.fail(where, "a non-finite float outside a __float__ node")
            return
        if isinstance(obj, list):
            for index, value in enumerate(obj):
                self.check(value, f"{where}[{index}]", depth + 1)
            return
        if not isinstance(obj, dict):  # json.loads makes nothing else; kept as a guard
            raise self.fail(where, f"a {type(obj).__name__}, not a JSON value")
        kinds = [key for key in obj if key.startswith("__") and key.endswith("__")]
        if not kinds:
            for key, value in obj.items():
                self.check(value, f"{where}[{short_repr(key, 60)}]", depth + 1)
            return
        kind = kinds[0]
        if len(kinds) > 1 or kind not in _KINDS:
            raise self.fail(where, f"unknown node kind {short_repr(kinds, 60)} (known: "
                            f"{', '.join(sorted(_KINDS))})")
        if kind in ("__tensor__", "__ndarray__"):
            self.tensor(obj, kind, where)
        elif kind == "__float__":
            if set(obj) != {kind} or obj[kind] not in _FLOAT_WORDS:
                raise self.fail(f"{where}.__float__", 'must be {"__float__": "inf" | "-inf" '
                                f'| "nan"}}, got {short_repr(obj, 60)}')
        elif kind == "__tuple__":
            if set(obj) != {kind} or not isinstance(obj[kind], list):
                raise self.fail(f"{where}.__tuple__", "must be a list (the only key), got "
                                f"{short_repr(obj[kind], 60)}")
            self.check(obj[kind], f"{where}.__tuple__", depth + 1)
        else:
            self.pairs(obj, where, depth)

    def pairs(self, obj: dict, where: str, depth: int) -> None:
        items = obj["__dict__"]
        if set(obj) != {"__dict__"} or not isinstance(items, list):
            raise self.fail(f"{where}.__dict__", "must be a list of [key, value] pairs (the "
                            f"only key), got {short_repr(items, 60)}")
        seen: set[Any] = set()
        for index, pair in enumerate(items):
            at = f"{where}.__dict__[{index}]"
            if not (isinstance(pair, list) and len(pair) == 2):
                raise self.fail(at, f"must be a [key, value] pair, got {short_repr(pair, 60)}")
            key = pair[0]
            if isinstance(key, list | dict) and not (
                isinstance(key, dict) and set(key) == {"__tuple__"}
            ) and not (isinstance(key, dict) and set(key) == {"__float__"}):
                raise self.fail(f"{at}[0]", f"a key must be a number, string, None or tuple, "
                                f"got {short_repr(key, 60)}")
            self.check(pair, at, depth + 1)
            try:
                hashable = _decode(key, self.arrays)
                if hashable in seen:
                    raise self.fail(f"{at}[0]", f"key {short_repr(hashable, 60)} appears twice")
                seen.add(hashable)
            except TypeError:
                raise self.fail(f"{at}[0]", f"key {short_repr(key, 60)} is not hashable "
                                "(a tuple holding a list)") from None

    def tensor(self, obj: dict, kind: str, where: str) -> None:
        at = f"{where}.{kind}"
        if set(obj) != {kind, "shape"}:
            missing = "shape" if "shape" not in obj else sorted(set(obj) - {kind, "shape"})
            raise self.fail(where, f"a {kind} node holds exactly {kind} and shape; "
                            f"{'missing shape' if missing == 'shape' else f'extra {missing}'}")
        name, shape = obj[kind], obj["shape"]
        if not isinstance(name, str) or name not in self.arrays:
            raise self.fail(at, f"names tensor {short_repr(name, 60)}, which the file does not "
                            f"hold (it holds {len(self.arrays)} tensors)")
        if name in self.used:
            raise self.fail(at, f"tensor {short_repr(name, 60)} is used twice (gw.save stores "
                            "each tensor once)")
        self.used.add(name)
        if not isinstance(shape, list) or len(shape) > 32:
            raise self.fail(f"{where}.shape", f"must be a list of at most 32 sizes, got "
                            f"{short_repr(shape, 60)}")
        for index, size in enumerate(shape):
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise self.fail(f"{where}.shape[{index}]", f"must be a size >= 0, got "
                                f"{short_repr(size, 60)}")
        stored = list(self.arrays[name].shape)
        # older safetensors writers stored a 0-d array as shape [1]
        if shape != stored and not (shape == [] and stored == [1]):
            raise self.fail(f"{where}.shape", f"{shape} but tensor {name!r} is stored with "
                            f"shape {stored}")


def _structure(text: str, arrays: dict[str, np.ndarray], source: str) -> Any:
    """The structure JSON of a gw.save file, parsed and checked against the schema."""
    try:
        structure = json.loads(text, parse_constant=_refuse_constant, parse_float=_parse_float,
                               parse_int=_parse_int)
    except RecursionError:
        raise SaveFileError(f"load: {shown(source)}: refused: $: the structure is nested more "
                            f"than {MAX_DEPTH} levels deep") from None
    except ValueError as failure:  # JSONDecodeError included
        raise SaveFileError(f"load: {shown(source)}: refused: the {STRUCTURE_KEY} metadata is "
                            f"not valid: {str(failure)[:200]}") from None
    schema = _Schema(source, arrays)
    schema.check(structure, "$", 0)
    unused = sorted(set(arrays) - schema.used)
    if unused:
        raise SaveFileError(f"load: {shown(source)}: refused: $: {len(unused)} stored tensor(s) "
                            f"that the structure never uses (first: {short_repr(unused[0], 60)})")
    return structure


def save(obj: Any, f: str | os.PathLike[str]) -> None:
    """Write ``obj`` (a state dict, or nested dicts/lists/tuples of tensors, arrays, numbers,
    strings and None) to the file ``f``, atomically (a crash leaves the old file) and byte for
    byte the same for the same ``obj`` (canonical header, :func:`dump_safetensors`). A state
    dict (flat str -> tensor) is stored under its own keys, so PyTorch's
    ``safetensors.torch.load_file(f)`` reads it directly.

    Raises:
        TypeError: ``obj`` holds something else (a Module, a function ...), naming where; or
            ``f`` is not a path (file objects are not supported: docs/PORTING.md).
        ValueError: ``obj`` nests deeper than :data:`MAX_DEPTH` or holds an int of more than
            :data:`MAX_INT_BITS` bits (:func:`load` would refuse the file).
        OSError: the file cannot be written (the destination is a folder, a FIFO ...).
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
    text = json.dumps(structure)
    depth = _depth(structure)
    if depth > MAX_DEPTH:
        raise ValueError(f"save: obj is nested {depth} levels deep, more than the {MAX_DEPTH} "
                         "gw.load accepts")
    metadata = {STRUCTURE_KEY: text, FORMAT_KEY: FORMAT}
    atomic_write_bytes(Path(f), dump_safetensors(arrays, metadata))


def _depth(obj: Any) -> int:
    """Nesting depth of decoded JSON, iteratively (no recursion on hostile input)."""
    deepest, stack = 0, [(obj, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(
            node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def load(f: str | os.PathLike[str], map_location: Any = None, weights_only: bool = True,
         **kwargs: Any) -> Any:
    """Read what :func:`save` wrote. ``map_location`` may name the CPU (anything else raises);
    ``weights_only`` is accepted (loading never runs code). A plain safetensors file (e.g.
    from ``safetensors.torch.save_file``) loads as a dict of tensors.

    The file is opened like every untrusted file (:func:`gradwise.safefile.open_untrusted`:
    a regular file only, never a FIFO, device or folder; at most half the available memory;
    the safetensors header, tensor count and offsets checked before the data is read,
    :func:`gradwise.safetensors_io.read_safetensors`). The ``gradwise.structure`` header is
    then checked against the layout :func:`save` writes before anything is built: format
    ``gradwise-save-1``; known node kinds with exactly their keys; each ``__tensor__`` /
    ``__ndarray__`` names a stored tensor, each stored tensor used exactly once, with the
    stored shape (sizes >= 0); nesting at most :data:`MAX_DEPTH`; ints at most
    :data:`MAX_INT_BITS` bits; no ``NaN``/``Infinity`` literal or float overflowing float64.

    Raises:
        FileNotFoundError: no file at ``f``.
        SaveFileError: (a ValueError) the file is refused: not a regular file, too large,
            not a safetensors file (a pickle ``.pt`` from ``torch.save`` cannot be read: save
            it with safetensors in PyTorch, docs/PORTING.md), or a header field breaks the
            schema; the message names the file and the JSON path of the field.
    """
    if map_location is not None and not callable(map_location) and not isinstance(
        map_location, dict
    ):
        check_device(map_location, "load")
    path = Path(f)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"load: no file at {shown(path)}")
    try:
        arrays, metadata = read_safetensors(path, error=SaveFileError)
    except SaveFileError as failure:
        hint = (". A pickle checkpoint from torch.save cannot be read (gradwise never "
                "unpickles); in PyTorch write it with safetensors.torch.save_file(state_dict, "
                "path)") if "safetensors" in str(failure) else ""
        raise SaveFileError(f"load: {failure}{hint}") from None
    if STRUCTURE_KEY not in metadata:
        if FORMAT_KEY in metadata:
            raise SaveFileError(f"load: {shown(path)}: refused: metadata {FORMAT_KEY} is set "
                                f"but {STRUCTURE_KEY} is missing")
        return {name: Tensor._make(array, False, None) for name, array in arrays.items()}
    version = metadata.get(FORMAT_KEY)
    if version != FORMAT:
        raise SaveFileError(f"load: {shown(path)}: refused: metadata {FORMAT_KEY} is "
                            f"{short_repr(version, 60)}; this gradwise reads {FORMAT!r}")
    return _decode(_structure(metadata[STRUCTURE_KEY], arrays, str(path)), arrays)
