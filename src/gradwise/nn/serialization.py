"""Weights to and from safetensors files, the format PyTorch, JAX and the Hugging Face hub share.

One call each way, keys and layouts as in PyTorch, so a file goes both ways between the two:

    gw.nn.save_safetensors(model, "model.safetensors")      # torch: model.load_state_dict(
                                                            #     safetensors.torch.load_file(p))
    gw.nn.load_safetensors(model, "model.safetensors")      # torch: safetensors.torch.save_file(
                                                            #     model.state_dict(), p)

safetensors holds only named arrays and string metadata: nothing in it is executed on load
(no pickle).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from gradwise._atomic import atomic_write_bytes
from gradwise._shown import shown
from gradwise.nn.module import IncompatibleKeys, Module
from gradwise.safetensors_io import dump_safetensors, read_safetensors

__all__ = ["load_safetensors", "save_safetensors"]


def save_safetensors(
    model: Module, path: str | os.PathLike[str], metadata: dict[str, str] | None = None
) -> None:
    """Write ``model.state_dict()`` (parameters and persistent buffers) to a safetensors file.

    The file is written atomically: a crash or a full disk leaves the old file, never half a
    new one. Keys are PyTorch's (``0.weight``, ``1.running_mean``, ``1.num_batches_tracked``),
    so ``torch_model.load_state_dict(safetensors.torch.load_file(path))`` reads it into the
    equivalent PyTorch model.

    Args:
        metadata: strings stored in the file's header (e.g. {"classes": "..."}).

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, or metadata is not str -> str.
        OSError: the file cannot be written (names it).
    """
    if not isinstance(model, Module):
        raise TypeError(f"save_safetensors: expected an nn.Module, got {type(model).__name__}")
    if metadata is not None and not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise TypeError("save_safetensors: metadata must map strings to strings")
    # np.require, not np.ascontiguousarray: the latter turns 0-d arrays (BatchNorm's
    # num_batches_tracked) into shape (1,), which neither gradwise nor PyTorch reads back as 0-d
    state = {key: np.require(np.asarray(value), requirements="C")
             for key, value in model.state_dict().items()}
    # canonical header: the same weights always give the same bytes
    atomic_write_bytes(Path(path), dump_safetensors(state, metadata=metadata))


def pickle_file_kind(data: bytes) -> str | None:
    """Say whether ``data`` starts like a PyTorch ``torch.save`` file, without unpickling it.

    ``torch.save`` writes a zip archive holding a pickle since PyTorch 1.6 (the zip local-file
    magic ``PK\\x03\\x04``, PKWARE APPNOTE 4.3.7) and a bare pickle before that (protocol 2+
    pickles open with the PROTO opcode ``\\x80`` and the protocol number, PEP 307). A
    safetensors file opens with its 8-byte little-endian header length instead, which can start
    with these bytes by chance: call this only on data that safetensors failed to read.

    Returns:
        ``"zip archive from torch.save"``, ``"pickle from torch.save"`` or None.
    """
    if data[:4] == b"PK\x03\x04":
        return "zip archive from torch.save"
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return "pickle from torch.save"
    return None


def _first_bytes(path: Path, count: int = 8) -> bytes:
    """The first ``count`` bytes of a regular file (empty for anything else: never block on a
    FIFO or a device)."""
    try:
        if not path.is_file():
            return b""
        with path.open("rb") as handle:
            return handle.read(count)
    except OSError:
        return b""


def load_safetensors(
    model: Module, path: str | os.PathLike[str], strict: bool = True
) -> IncompatibleKeys:
    """Load a safetensors file of weights (e.g. written by PyTorch) into ``model`` in place.

    A file written by ``safetensors.torch.save_file(torch_model.state_dict(), path)`` loads into
    the gradwise model built the same way (same layer order and sizes). Values are cast to each
    parameter's dtype.

    Args:
        strict: missing or unexpected keys are an error (shape mismatches always are).

    Returns:
        the missing and unexpected keys (empty lists when ``strict``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not safetensors (a PyTorch ``.pt``/``.pth`` pickle file is
            named as such and never unpickled), or holds a dtype NumPy cannot represent
            (bfloat16: convert it with ``tensor.float()`` in PyTorch before saving).
        gradwise.nn.StateDictError: keys or shapes do not fit the model; names every one, and
            then nothing has been loaded.
    """
    if not isinstance(model, Module):
        raise TypeError(f"load_safetensors: expected an nn.Module, got {type(model).__name__}")
    path = Path(path)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"load_safetensors: no file at {shown(path)}")
    try:
        # the guarded reader: regular files only, every cap checked before parsing
        state: dict[str, Any] = read_safetensors(path, error=ValueError)[0]
    except ValueError as error:
        kind = pickle_file_kind(_first_bytes(path))
        if kind is not None:
            raise ValueError(
                f"load_safetensors: {shown(path)} is a PyTorch pickle file ({kind}), not "
                "safetensors; "
                "gradwise never unpickles (a pickle runs code from the file). Convert it in "
                "PyTorch: safetensors.torch.save_file(torch.load(path, weights_only=True), "
                "'model.safetensors')"
            ) from None
        text = str(error)
        hint = (" (bfloat16 has no NumPy dtype: save the weights as float32 in PyTorch)"
                if "bf16" in text.lower() or "bfloat16" in text.lower() else "")
        raise ValueError(f"load_safetensors: {shown(path)}: not a readable safetensors file: "
                         f"{text}{hint}") from None
    return model.load_state_dict(state, strict=strict)
