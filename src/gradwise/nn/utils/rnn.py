"""Sequence helpers for recurrent layers (torch.nn.utils.rnn): padding a batch of sequences.

Packed sequences (pack_padded_sequence and friends) are not supported (docs/PORTING.md): pad
with :func:`pad_sequence` and mask instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradwise.autograd.functional import pad as _pad_widths
from gradwise.autograd.functional import stack
from gradwise.autograd.tensor import Tensor

__all__ = ["pad_sequence", "unpad_sequence"]


def pad_sequence(sequences: Sequence[Any], batch_first: bool = False,
                 padding_value: float = 0.0, padding_side: str = "right") -> Tensor:
    """Stack sequences of different lengths, padded with ``padding_value`` to the longest
    (torch.nn.utils.rnn.pad_sequence); the gradient flows back to each sequence.

    Shape: sequences of (L_i, *) -> (L_max, B, *) or (B, L_max, *) with batch_first

    Raises:
        ValueError: no sequences, trailing shapes that differ, or padding_side not
            "right"/"left".
    """
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'right' or 'left', got "
                         f"{padding_side!r}")
    tensors = [s if isinstance(s, Tensor) else Tensor._make(np.asarray(s), False, None)
               for s in sequences]
    if not tensors:
        raise ValueError("pad_sequence: got no sequences")
    trailing = {tuple(t.shape[1:]) for t in tensors}
    if len(trailing) != 1 or any(t.ndim == 0 for t in tensors):
        raise ValueError(f"pad_sequence: sequences must share their trailing shape, got "
                         f"{[tuple(t.shape) for t in tensors]}")
    longest = max(t.shape[0] for t in tensors)
    padded = []
    for t in tensors:
        missing = longest - t.shape[0]
        widths = ((0, missing) if padding_side == "right" else (missing, 0),) \
            + ((0, 0),) * (t.ndim - 1)
        padded.append(_pad_widths(t, widths, padding_value) if missing else t)
    return stack(padded, 0 if batch_first else 1)


def unpad_sequence(padded_sequences: Tensor, lengths: Any, batch_first: bool = False
                   ) -> list[Tensor]:
    """The inverse of :func:`pad_sequence` (right padding): each sequence cut to its length.

    Shape: (L_max, B, *) or (B, L_max, *) with lengths (B,) -> B tensors (L_i, *)
    """
    lengths = np.asarray(lengths._data if isinstance(lengths, Tensor) else lengths)
    batch = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    return [batch[i, :int(n)] for i, n in enumerate(lengths)]
