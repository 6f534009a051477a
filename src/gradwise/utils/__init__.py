"""``gradwise.utils``: PyTorch-named utilities (``gradwise.utils.data``)."""

from gradwise.utils import data

__all__ = ["data"]
