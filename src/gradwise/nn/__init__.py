"""Neural-network building blocks on the engine: Module, Parameter, layers, losses, init, utils.

Example:
    >>> import gradwise as gw
    >>> model = gw.nn.Sequential(gw.nn.Linear(784, 128, rng=0), gw.nn.ReLU(),
    ...                          gw.nn.Linear(128, 10, rng=1))
    >>> loss = gw.nn.CrossEntropyLoss()(model(x), y)
"""

from gradwise.nn import functional, init, parallel, utils
from gradwise.nn.layers import (
    ELU,
    GELU,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ModuleList,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from gradwise.nn.losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)
from gradwise.nn.module import Module, Parameter, RemovableHandle, StateDictError
from gradwise.nn.serialization import load_safetensors, save_safetensors

__all__ = [
    "ELU",
    "GELU",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Flatten",
    "L1Loss",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "RemovableHandle",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "StateDictError",
    "Tanh",
    "functional",
    "load_safetensors",
    "save_safetensors",
    "init",
    "parallel",
    "utils",
]
