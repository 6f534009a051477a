"""torch's ``torch.nn.modules.module`` import path: ``Module`` and the global module hooks,
re-exported from :mod:`gradwise.nn.module`."""

from gradwise.nn.module import (
    Module,
    RemovableHandle,
    register_module_backward_hook,
    register_module_forward_hook,
    register_module_forward_pre_hook,
    register_module_full_backward_hook,
    register_module_full_backward_pre_hook,
)

__all__ = ["Module", "RemovableHandle", "register_module_backward_hook",
           "register_module_forward_hook", "register_module_forward_pre_hook",
           "register_module_full_backward_hook", "register_module_full_backward_pre_hook"]
