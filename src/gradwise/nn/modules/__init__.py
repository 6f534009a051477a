"""torch's ``torch.nn.modules`` import path: the layers and ``Module``, so programs that import
from there (``from torch.nn.modules.module import register_module_forward_hook``,
``torch.nn.modules.Linear``) run after changing the import. The code lives in
:mod:`gradwise.nn.module` and :mod:`gradwise.nn.layers`; this package only re-exports."""

from gradwise.nn.layers import *  # noqa: F403
from gradwise.nn.layers import __all__ as _layers
from gradwise.nn.module import Module
from gradwise.nn.modules import module

__all__ = ["Module", "module", *_layers]
