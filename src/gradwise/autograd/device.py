"""PyTorch's device API for a CPU-only library: ``gw.device('cpu')`` works, a GPU device raises.

Tutorials pick a device with ``torch.cuda.is_available()`` or ``torch.accelerator.is_available()``
and move models and tensors with ``.to(device)``; in gradwise both report False, so such code
takes the CPU branch and runs unchanged.
"""

from __future__ import annotations

from typing import Any

_GPU_TYPES = ("cuda", "mps", "xpu", "hip", "xla", "meta", "mtia", "hpu", "vulkan", "ipu")


class device:  # noqa: N801 - PyTorch's name
    """A device: only the CPU exists in gradwise.

    Args:
        type: ``"cpu"``, ``"cpu:0"``, another ``device``, or an index 0 (PyTorch's shorthand
            for the first accelerator is refused like any GPU).

    Raises:
        RuntimeError: a GPU or other accelerator device (``"cuda"``, ``"mps"`` ...), naming it.
        ValueError: an unknown device string.
    """

    __slots__ = ("type", "index")
    type: str
    index: int | None

    def __init__(self, type: Any = "cpu", index: int | None = None) -> None:  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index
        if isinstance(type, int) and not isinstance(type, bool):
            raise RuntimeError(
                f"device {type!r}: an integer device means an accelerator; gradwise runs on the "
                "CPU only (use 'cpu')"
            )
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string such as 'cpu', got {type!r}")
        name, _, suffix = type.partition(":")
        if suffix:
            index = int(suffix)
        if name in _GPU_TYPES:
            raise RuntimeError(
                f"device {type!r}: gradwise runs on the CPU only (there is no {name} backend); "
                "use 'cpu', or pick it with gw.cuda.is_available() / "
                "gw.accelerator.is_available(), which are False"
            )
        if name != "cpu":
            raise ValueError(f"device: unknown device type {type!r} (gradwise knows 'cpu')")
        self.type = "cpu"
        self.index = index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (RuntimeError, ValueError):
                return False
        return isinstance(other, device) and other.type == self.type

    def __hash__(self) -> int:
        return hash(self.type)

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"


CPU = device("cpu")


def check_device(value: Any, caller: str) -> device:
    """``value`` as a ``device`` (raising for GPUs, naming ``caller``)."""
    try:
        return device(value)
    except (RuntimeError, ValueError) as error:
        raise type(error)(f"{caller}: {error}") from None


def is_device_like(value: Any) -> bool:
    """Whether ``value`` names a device (a ``device`` or a device string) rather than a dtype."""
    if isinstance(value, device):
        return True
    if isinstance(value, str):
        return value.partition(":")[0] in (*_GPU_TYPES, "cpu")
    return False
