"""gradwise: a readable, fast deep-learning library on NumPy that shows why training works or fails.

Example:
    >>> import gradwise as gw
    >>> w = gw.tensor([0.5, 0.3], requires_grad=True)
    >>> loss = ((w * gw.tensor([1.0, 2.0])).sum() - 1) ** 2
    >>> loss.backward()
    >>> w.grad
"""

from gradwise import (
    accelerator,
    backends,
    cuda,
    distributed,
    doctor,
    linalg,
    nn,
    onnx,
    optim,
    special,
    train,
    utils,
    viz,
)
from gradwise._malloc import reuse_freed_memory
from gradwise.autograd import (
    AnomalyError,
    Function,
    GradcheckError,
    Tensor,
    broadcast_to,
    cat,
    detect_anomaly,
    enable_grad,
    from_numpy,
    gradcheck,
    gradgradcheck,
    inference_mode,
    is_anomaly_enabled,
    is_grad_enabled,
    maximum,
    minimum,
    no_grad,
    pad,
    set_grad_enabled,
    stack,
    tensor,
    where,
)
from gradwise.autograd import dtypes as _dtypes
from gradwise.autograd import namespace as _namespace
from gradwise.autograd.device import device
from gradwise.autograd.factories import (
    arange,
    bernoulli,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    linspace,
    logspace,
    multinomial,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    zeros,
    zeros_like,
)
from gradwise.autograd.printing import get_printoptions, set_printoptions
from gradwise.autograd.random import (
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)
from gradwise.autograd.serialization import load, save
from gradwise.autograd.tensor import MaxResult, MinResult, SortResult, TopkResult

# torch.<fn>: gw.tanh, gw.sum, gw.clamp, gw.isnan, gw.histc ... (autograd/namespace.py); names
# that are Python builtins (abs, all, any, max, min, round, sum, pow) are set here too but kept
# out of __all__ so that ``from gradwise import *`` does not shadow the builtins
globals().update({name: getattr(_namespace, name) for name in _namespace.__all__})
concat = concatenate = cat

# PyTorch's dtype names (NumPy dtypes, so gw.float32 == np.float32); kept out of __all__ so that
# ``from gradwise import *`` does not shadow the builtins bool, float and int
bool = _dtypes.bool
double = _dtypes.double
float = _dtypes.float
float16 = _dtypes.float16
float32 = _dtypes.float32
float64 = _dtypes.float64
half = _dtypes.half
int = _dtypes.int
int8 = _dtypes.int8
int16 = _dtypes.int16
int32 = _dtypes.int32
int64 = _dtypes.int64
long = _dtypes.long
short = _dtypes.short
uint8 = _dtypes.uint8
get_default_dtype = _dtypes.get_default_dtype

__version__ = "0.1.0"

_BUILTIN_NAMES = {"abs", "all", "any", "max", "min", "round", "sum", "pow"}
__all__ = [
    *sorted(set(_namespace.__all__) - _BUILTIN_NAMES),
    "Generator",
    "get_printoptions",
    "set_printoptions",
    "MaxResult",
    "MinResult",
    "SortResult",
    "TopkResult",
    "accelerator",
    "backends",
    "bernoulli",
    "concat",
    "concatenate",
    "cuda",
    "default_generator",
    "device",
    "empty",
    "empty_like",
    "eye",
    "full_like",
    "get_rng_state",
    "initial_seed",
    "linspace",
    "load",
    "logspace",
    "manual_seed",
    "multinomial",
    "normal",
    "rand_like",
    "randint",
    "randint_like",
    "randn_like",
    "randperm",
    "save",
    "seed",
    "set_rng_state",
    "utils",
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
    "distributed",
    "doctor",
    "enable_grad",
    "full",
    "gradcheck",
    "gradgradcheck",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "linalg",
    "special",
    "maximum",
    "minimum",
    "nn",
    "onnx",
    "inference_mode",
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
