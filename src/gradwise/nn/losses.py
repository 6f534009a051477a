"""Loss modules: thin wrappers that hold ``reduction`` (and options) over ``nn.functional``.

Each is called as ``loss_fn(input, target)`` and returns a Tensor (0-d unless
``reduction="none"``).
"""

from __future__ import annotations

from typing import Any

from gradwise.autograd.ops.loss import check_reduction
from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.module import Module

__all__ = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "HuberLoss", "L1Loss", "MSELoss",
           "NLLLoss", "SmoothL1Loss"]


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class MSELoss(_Loss):
    """mean((input - target)^2); input and target must have the same shape."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """mean(|input - target|); input and target must have the same shape."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.l1_loss(input, target, self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities in [0, 1] against targets in [0, 1].

    Args:
        weight: a rescaling weight broadcastable to the input (PyTorch's argument order).
        reduction: "mean", "sum" or "none".
    """

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits, fused with the sigmoid (stable for large logits).

    Args:
        weight: a rescaling weight broadcastable to the input.
        reduction: "mean", "sum" or "none".
        pos_weight: the weight of positive examples, broadcastable to the input (one per
            class on the last axis).
    """

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None
                 ) -> None:
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of (N, C) logits against integer class labels (N,).

    Args (PyTorch's order, without its deprecated size_average / reduce):
        weight: (C,) per-class weights, or None.
        ignore_index: rows with this label add nothing (default -100).
        reduction: "mean", "sum" or "none"; "mean" divides by the total weight of the counted
            rows.
        label_smoothing: in [0, 1]; the target becomes (1 - s) * one_hot + s / C.

    Example:
        >>> loss = gw.nn.CrossEntropyLoss()(logits, labels)
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}"
            )
        self.weight, self.ignore_index = weight, ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(
            input, target, self.weight, self.ignore_index, reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )

    def extra_repr(self) -> str:
        parts = [super().extra_repr()]
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(p for p in parts if p)


class NLLLoss(_Loss):
    """Negative log-likelihood of integer labels (N,) under (N, C) log-probabilities.

    Args: ``weight``, ``ignore_index`` and ``reduction`` as in :class:`CrossEntropyLoss`.
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"
                 ) -> None:
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.nll_loss(input, target, self.weight, self.ignore_index, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Smooth L1: quadratic for |input - target| < beta, linear beyond (``F.smooth_l1_loss``)."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class HuberLoss(_Loss):
    """Huber: quadratic for |input - target| < delta, linear beyond (``F.huber_loss``)."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.huber_loss(input, target, self.reduction, self.delta)
