"""Neural-network building blocks on the engine."""

from gradwise.nn import functional

__all__ = ["functional"]
