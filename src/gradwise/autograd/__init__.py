"""The engine: Tensor, Function, grad modes, gradcheck and anomaly detection."""

# attach first: it gives Tensor its methods that run ops, which everything after relies on
from gradwise.autograd import attach  # noqa: I001, F401
from gradwise.autograd import functional
from gradwise.autograd.anomaly import (
    AnomalyError,
    detect_anomaly,
    is_anomaly_enabled,
    set_detect_anomaly,
)
from gradwise.autograd.factories import (
    arange,
    full,
    ones,
    ones_like,
    rand,
    randn,
    zeros,
    zeros_like,
)
from gradwise.autograd.function import Function
from gradwise.autograd.functional import broadcast_to, cat, maximum, minimum, pad, stack, where
from gradwise.autograd.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from gradwise.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from gradwise.autograd.higher_order import backward, grad
from gradwise.autograd.tensor import Tensor, from_numpy, tensor

__all__ = [
    "AnomalyError",
    "Function",
    "GradcheckError",
    "Tensor",
    "arange",
    "from_numpy",
    "broadcast_to",
    "cat",
    "detect_anomaly",
    "backward",
    "enable_grad",
    "full",
    "functional",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "maximum",
    "minimum",
    "inference_mode",
    "no_grad",
    "ones",
    "ones_like",
    "pad",
    "rand",
    "randn",
    "set_detect_anomaly",
    "set_grad_enabled",
    "stack",
    "tensor",
    "where",
    "zeros",
    "zeros_like",
]
