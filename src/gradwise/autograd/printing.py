"""How tensors print: ``gw.set_printoptions`` (PyTorch's ``torch.set_printoptions``).

The options live in one :class:`PrintOptions` value that ``Tensor.__repr__`` reads; they last
until changed (as in PyTorch), and ``profile="default"`` restores the defaults.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class PrintOptions:
    """PyTorch's print options and defaults.

    Attributes:
        precision: digits after the decimal point of floats (4).
        threshold: more elements than this print summarised with ``...`` (1000).
        edgeitems: items kept at each edge of a summarised dim (3).
        linewidth: characters per line (None: NumPy's 75, what gradwise printed so far;
            PyTorch's default is 80).
        sci_mode: True always scientific, False never, None automatic.
    """

    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int | None = None
    sci_mode: bool | None = None


_PROFILES = {
    "default": PrintOptions(),
    "short": PrintOptions(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": PrintOptions(precision=4, threshold=float("inf"), edgeitems=3, linewidth=80),
}

current = PrintOptions()


def set_printoptions(precision: int | None = None, threshold: float | None = None,
                     edgeitems: int | None = None, linewidth: int | None = None,
                     profile: str | None = None, sci_mode: bool | None = None) -> None:
    """Set how tensors print, as ``torch.set_printoptions``; arguments left None keep their
    value (``profile`` "default", "short" or "full" first resets all of them).

    Raises:
        ValueError: an unknown profile, or a negative number.
    """
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of {sorted(_PROFILES)}, "
                             f"got {profile!r}")
        for field in dataclasses.fields(PrintOptions):
            setattr(current, field.name, getattr(_PROFILES[profile], field.name))
    given: dict[str, Any] = {"precision": precision, "threshold": threshold,
                             "edgeitems": edgeitems, "linewidth": linewidth}
    for name, value in given.items():
        if value is None:
            continue
        if value < 0:
            raise ValueError(f"set_printoptions: {name} must be >= 0, got {value!r}")
        setattr(current, name, value)
    if sci_mode is not None or profile is not None:
        current.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    """The current print options as a dict (``torch._tensor_str.PRINT_OPTS``'s fields)."""
    return dataclasses.asdict(current)
