"""``gw.backends``: the backend queries tutorials make (``torch.backends.mps.is_available()``),
plus ``gw.backends.jit``, the switch for gradwise's numba kernels."""

from gradwise.backends import cudnn, jit, mps

__all__ = ["cudnn", "jit", "mps"]
