"""The schema of a run folder's ``run.json``, checked before the run is used.

``run.json`` says what a run trained on (data set, input shape, class names, input scaling)
and where it stands. Evaluate, predict and resume build models and scale inputs from it, so
every field they use is validated first (see :mod:`gradwise.schema`): a ``std`` of 0 would
divide by zero and evaluate to garbage with exit 0; ``input_shape: [-3]``, ``mean: "abc"`` or
an unknown data set would fail deep inside NumPy; two million class names would take 1.5 GB.
"""

from __future__ import annotations

from typing import Any

from gradwise.recipes import IMAGE_DATASETS, TOY_DATASETS
from gradwise.schema import Field, check_fields

__all__ = ["MAX_CLASSES", "MAX_INPUT_ELEMENTS", "RUN_INFO_FIELDS", "check_run_info"]

MAX_CLASSES = 1000
"""Most class names a run may list (ImageNet has 1000; the recipes use 2 or 10)."""
MAX_INPUT_ELEMENTS = 1 << 24
"""Most numbers in one input sample (a 4096 x 4096 picture)."""
_COUNT = Field("int", low=0, high=2**53)
RUN_STATUSES = ("running", "interrupted", "finished", "stopped")

RUN_INFO_FIELDS: dict[str, Field] = {
    "format": Field("str", choices=("gradwise.run",)),
    "recipe": Field("str", max_length=200, printable=True),
    "dataset": Field("str", choices=IMAGE_DATASETS + TOY_DATASETS),
    "input_shape": Field("list", min_length=1, max_length=3,
                         item=Field("int", low=1, high=MAX_INPUT_ELEMENTS)),
    "classes": Field("list", min_length=2, max_length=MAX_CLASSES,
                     item=Field("str", min_length=1, max_length=200, printable=True)),
    "mean": Field("float", low=-1e6, high=1e6),
    "std": Field("float", low=0.0, low_open=True, high=1e6),
    "status": Field("str", choices=RUN_STATUSES),
    "epoch": _COUNT,
    "step": _COUNT,
    "resumed": _COUNT,
}
"""Every run.json field gradwise reads back, with its type, range and allowed names."""


def check_run_info(info: Any, where: str, error: type[Exception],
                   trained: bool = False) -> None:
    """Validate ``run.json``'s contents; ``trained``: the fields training adds are required.

    Raises:
        error: naming the file and the first bad field.
    """
    check_fields(info, RUN_INFO_FIELDS, where, error)
    if trained:
        missing = [key for key in ("input_shape", "classes") if key not in info]
        if missing:
            raise error(f"{where}: lacks {' and '.join(missing)} (did training start?)")
        elements = 1
        for size in info["input_shape"]:
            elements *= size
        if elements > MAX_INPUT_ELEMENTS:
            raise error(f"{where}: input_shape {info['input_shape']} has {elements} numbers per "
                        f"sample, more than {MAX_INPUT_ELEMENTS}")
