"""``gw.backends``: the backend queries tutorials make (``torch.backends.mps.is_available()``)."""

from gradwise.backends import cudnn, mps

__all__ = ["cudnn", "mps"]
