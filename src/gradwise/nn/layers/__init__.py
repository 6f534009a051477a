"""Layers: one concept per file, each computing through a stateless ``nn.functional`` function."""

from gradwise.nn.layers.activation import (
    ELU,
    GELU,
    Hardtanh,
    Identity,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from gradwise.nn.layers.container import ModuleDict, ModuleList, Sequential
from gradwise.nn.layers.conv import Conv2d
from gradwise.nn.layers.dropout import Dropout
from gradwise.nn.layers.embedding import Embedding
from gradwise.nn.layers.flatten import Flatten
from gradwise.nn.layers.linear import Linear
from gradwise.nn.layers.norm import BatchNorm1d, BatchNorm2d, LayerNorm
from gradwise.nn.layers.pool import AvgPool2d, MaxPool2d

__all__ = [
    "ELU",
    "GELU",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Embedding",
    "Flatten",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "Hardtanh",
    "Identity",
    "ModuleDict",
    "ModuleList",
    "ReLU6",
    "SiLU",
    "Softplus",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
