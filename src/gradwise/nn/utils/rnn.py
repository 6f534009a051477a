"""Sequence helpers for recurrent layers (torch.nn.utils.rnn): padding a batch of sequences,
and packing it (PackedSequence) so RNN/LSTM/GRU stop each sequence at its own length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from gradwise.autograd.functional import pad as _pad_widths
from gradwise.autograd.functional import stack
from gradwise.autograd.tensor import Tensor

__all__ = ["PackedSequence", "pack_padded_sequence", "pack_sequence", "pad_packed_sequence",
           "pad_sequence", "unpad_sequence"]


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


class PackedSequence(NamedTuple):
    """Sequences of different lengths packed time step by time step (torch's layout):
    ``data`` holds, for t = 0, 1, ..., the step-t elements of the ``batch_sizes[t]`` sequences
    that are that long, longest first; ``sorted_indices`` maps that order to the batch
    (None when the batch was already sorted), ``unsorted_indices`` back.

    Shape: data (sum of lengths, *), batch_sizes (max length,) int64
    """

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None


def _lengths_array(lengths: Any) -> np.ndarray:
    values = np.asarray(lengths._data if isinstance(lengths, Tensor) else lengths)
    if values.ndim != 1 or values.dtype.kind not in "iu":
        raise ValueError(f"pack_padded_sequence: lengths must be a 1-d integer sequence, got "
                         f"{values.tolist()!r}")
    return values.astype(np.int64)


def pack_padded_sequence(input: Any, lengths: Any, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (torch.nn.utils.rnn.pack_padded_sequence); the gradient flows back
    to the valid elements of ``input``.

    Shape: input (T, B, *) [(B, T, *) with batch_first], lengths (B,) -> PackedSequence

    Raises:
        ValueError: a length outside [1, T], a length count that is not B, or unsorted lengths
            with enforce_sorted=True.
    """
    if not isinstance(input, Tensor):
        input = Tensor._make(np.asarray(input), False, None)
    sizes = _lengths_array(lengths)
    steps = input.shape[1] if batch_first else input.shape[0]
    batch = input.shape[0] if batch_first else input.shape[1]
    if sizes.shape[0] != batch or (sizes.size and (sizes.min() < 1 or sizes.max() > steps)):
        raise ValueError(f"pack_padded_sequence: lengths {sizes.tolist()} must be {batch} values "
                         f"in [1, {steps}] for input {tuple(input.shape)}")
    if enforce_sorted:
        if np.any(np.diff(sizes) > 0):
            raise ValueError("pack_padded_sequence: lengths must be sorted in decreasing order "
                             "with enforce_sorted=True (or pass enforce_sorted=False), got "
                             f"{sizes.tolist()}")
        order = None
    else:
        order = np.argsort(-sizes, kind="stable")
    return _pack(input.transpose(0, 1) if batch_first else input, sizes, order)


def _pack(input: Tensor, sizes: np.ndarray, order: np.ndarray | None) -> PackedSequence:
    """Pack time-major ``input`` (T, B, *) whose sequences have ``sizes``, sorted by ``order``
    (None: already longest first)."""
    if order is not None:
        input = input.index_select(1, order)
        sizes = sizes[order]
    steps = int(sizes.max())
    batch_sizes = (sizes[None, :] > np.arange(steps)[:, None]).sum(1)  # (T,)
    from gradwise.autograd.functional import cat
    data = cat([input[t, :int(n)] for t, n in enumerate(batch_sizes)], 0)
    unsorted = None if order is None else np.argsort(order)
    return PackedSequence(data, Tensor._make(batch_sizes.astype(np.int64), False, None),
                          _index_tensor(order), _index_tensor(unsorted))


def _index_tensor(values: np.ndarray | None) -> Tensor | None:
    return None if values is None else Tensor._make(np.asarray(values, np.int64), False, None)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None
                        ) -> tuple[Tensor, Tensor]:
    """Unpack to a padded batch in the original order, and the lengths
    (torch.nn.utils.rnn.pad_packed_sequence).

    Shape: -> (T, B, *) [(B, T, *) with batch_first], lengths (B,) int64

    Raises:
        ValueError: total_length shorter than the longest sequence.
    """
    batch_sizes = np.asarray(sequence.batch_sizes._data)
    steps, batch = batch_sizes.shape[0], int(batch_sizes[0])
    if total_length is not None and total_length < steps:
        raise ValueError(f"pad_packed_sequence: total_length ({total_length}) is shorter than "
                         f"the longest sequence ({steps})")
    rows, start = [], 0
    for n in batch_sizes.tolist():
        step = sequence.data[start:start + n]
        if n < batch:
            step = _pad_widths(step, ((0, batch - n),) + ((0, 0),) * (step.ndim - 1),
                               padding_value)
        rows.append(step)
        start += n
    length = steps if total_length is None else total_length
    padded = stack(rows, 0)  # (T, B, *)
    if length > steps:
        padded = _pad_widths(padded, ((0, length - steps),) + ((0, 0),) * (padded.ndim - 1),
                             padding_value)
    lengths = (batch_sizes[None, :] > np.arange(batch)[:, None]).sum(1).astype(np.int64)
    if sequence.unsorted_indices is not None:
        order = np.asarray(sequence.unsorted_indices._data)
        padded = padded.index_select(1, order)
        lengths = lengths[order]
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, Tensor._make(lengths, False, None)


def pack_sequence(sequences: Sequence[Any], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of (L_i, *) sequences (torch.nn.utils.rnn.pack_sequence)."""
    lengths = [len(s) for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)
