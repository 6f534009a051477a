"""gradwise: a readable, fast deep-learning library on NumPy that shows why training works or fails.

Example:
    >>> import gradwise as gw
    >>> w = gw.tensor([0.5, 0.3], requires_grad=True)
    >>> loss = ((w * gw.tensor([1.0, 2.0])).sum() - 1) ** 2
    >>> loss.backward()
    >>> w.grad
"""

from gradwise import doctor, nn, onnx, optim, train, viz
from gradwise._malloc import reuse_freed_memory
from gradwise.autograd import (
    AnomalyError,
    Function,
    GradcheckError,
    Tensor,
    arange,
    broadcast_to,
    cat,
    detect_anomaly,
    enable_grad,
    from_numpy,
    full,
    gradcheck,
    is_anomaly_enabled,
    is_grad_enabled,
    maximum,
    minimum,
    no_grad,
    ones,
    ones_like,
    pad,
    rand,
    randn,
    set_grad_enabled,
    stack,
    tensor,
    where,
    zeros,
    zeros_like,
)

__version__ = "0.1.0"

__all__ = [
    "reuse_freed_memory",
    "AnomalyError",
    "Function",
    "GradcheckError",
    "Tensor",
    "__version__",
    "arange",
    "from_numpy",
    "broadcast_to",
    "cat",
    "detect_anomaly",
    "doctor",
    "enable_grad",
    "full",
    "gradcheck",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "maximum",
    "minimum",
    "nn",
    "onnx",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "pad",
    "rand",
    "randn",
    "set_grad_enabled",
    "stack",
    "tensor",
    "train",
    "viz",
    "where",
    "zeros",
    "zeros_like",
]
