"""Recurrent layers: RNN, LSTM, GRU (stacked, bidirectional) and their single-step cells.

Compositions of existing ops (``F.lstm_cell`` ...), so they need no backward of their own and
work with ``create_graph=True``. Parameter names, shapes and gate order are torch's, so a torch
state dict loads unchanged: ``weight_ih_l{k}`` (gates * H, in), ``weight_hh_l{k}``
(gates * H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (and LSTM's ``weight_hr_l{k}`` with
``proj_size``), with ``_reverse`` for the backward
direction; gates are (i, f, g, o) for LSTM and (r, z, n) for GRU.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradwise.autograd.functional import cat, stack
from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.init import as_generator, uniform_
from gradwise.nn.layers._utils import positive_int
from gradwise.nn.module import Module, Parameter
from gradwise.nn.utils.rnn import PackedSequence, _pack, pad_packed_sequence

#: rows of the stacked gate matrices per hidden unit
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _as_tensor(value: Any, dtype: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value
    return Tensor._make(np.asarray(value, dtype=dtype), False, None)


class RNNBase(Module):
    """The shared body of RNN, LSTM and GRU (torch.nn.RNNBase): parameters, checks and the
    loop over layers, directions and time steps."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, *, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        name = type(self).__name__
        self.mode = mode
        self.input_size = positive_int(name, "input_size", input_size)
        self.hidden_size = positive_int(name, "hidden_size", hidden_size)
        self.num_layers = positive_int(name, "num_layers", num_layers)
        if not 0.0 <= float(dropout) <= 1.0 or isinstance(dropout, bool):
            raise ValueError(f"{name}: dropout must be a probability in [0, 1], got {dropout}")
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(f"{name}: proj_size must be a non-negative int, got {proj_size!r}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"{name}: proj_size is only supported for LSTM")
        if proj_size >= hidden_size:
            raise ValueError(f"{name}: proj_size ({proj_size}) has to be smaller than "
                             f"hidden_size ({hidden_size})")
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        self.proj_size = proj_size
        gates = _GATES[mode] * hidden_size
        directions = 2 if bidirectional else 1
        output_size = proj_size or hidden_size  # the size of h
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else output_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes: list[tuple[str, tuple[int, ...]]] = [
                    ("weight_ih", (gates, layer_input)), ("weight_hh", (gates, output_size))]
                if bias:
                    shapes += [("bias_ih", (gates,)), ("bias_hh", (gates,))]
                if proj_size:
                    shapes += [("weight_hr", (proj_size, hidden_size))]
                for kind, shape in shapes:
                    setattr(self, kind + suffix, Parameter(np.empty(shape, dtype=dtype)))
                    self._flat_weights_names.append(kind + suffix)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """Every weight and bias U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) (torch's)."""
        generator = as_generator(rng)
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name in self._flat_weights_names:
            uniform_(getattr(self, name), -bound, bound, generator)

    def _weights(self, layer: int, direction: int) -> tuple[Any, ...]:
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
        return tuple(getattr(self, n + suffix)
                     if (self.bias or not n.startswith("bias"))
                     and (self.proj_size or n != "weight_hr") else None
                     for n in names)

    def _step(self, x_gates: Tensor, state: Any, weights: tuple[Any, ...]) -> Any:
        """One time step from the input's gate pre-activations ``x_t W_ih^T + b_ih``."""
        w_hh, b_hh, projection = weights[1], weights[3], weights[4]
        if self.mode == "LSTM":
            h, c = F.lstm_step(x_gates, state, w_hh, b_hh)
            # LSTM with projections (Sak et al. 2014): h is projected to proj_size
            return (h if projection is None else F.linear(h, projection)), c
        if self.mode == "GRU":
            return F.gru_step(x_gates, state, w_hh, b_hh)
        return F.rnn_step(x_gates, state, w_hh, b_hh,
                          "tanh" if self.mode == "RNN_TANH" else "relu")

    def _check_input(self, x: Tensor) -> bool:
        """True when the input is batched; raises for a wrong rank or feature size."""
        name = type(self).__name__
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            layout = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
            raise ValueError(f"{name}(input_size={self.input_size}): expected input {layout} "
                             f"or (L, H_in) with H_in = {self.input_size}, got {tuple(x.shape)}")
        return x.ndim == 3

    def _initial_state(self, hx: Any, batch: int, batched: bool, like: Tensor,
                       what: str) -> Tensor:
        directions = 2 if self.bidirectional else 1
        size = self.proj_size if self.proj_size and what != "c_0" else self.hidden_size
        shape = (self.num_layers * directions, batch, size)
        if hx is None:
            return Tensor._make(np.zeros(shape, dtype=like.dtype), False, None)
        hx = _as_tensor(hx, like.dtype)
        expected = shape if batched else (shape[0], shape[2])
        if tuple(hx.shape) != expected:
            raise ValueError(f"{type(self).__name__}: {what} must have shape {expected}, got "
                             f"{tuple(hx.shape)}")
        return hx if batched else hx.unsqueeze(1)

    def _run_packed(self, packed: PackedSequence, hx: Any) -> tuple[PackedSequence, Any]:
        """Run a PackedSequence: padded (in the batch's own order), each sequence's state frozen
        after its last step, the output packed again in the input's order (torch's rule: h_n
        and hx are in the batch's original order)."""
        padded, lengths = pad_packed_sequence(packed)  # (T, B, *) in the original order
        sizes = np.asarray(lengths._data)
        batch_first, self.batch_first = self.batch_first, False
        try:
            output, state = self._run(padded, hx, sizes)
        finally:
            self.batch_first = batch_first
        order = None if packed.sorted_indices is None else np.asarray(packed.sorted_indices._data)
        return _pack(output, sizes, order), state

    def _step_running(self, x_t: Tensor, state: Any, weights: tuple[Any, ...],
                      running: np.ndarray) -> Any:
        """One step of a packed batch: only the sequences still running (``running``, (B,)
        bool) take it; those already ended keep their state (so h_n is each one's state at its
        own last step, and the reverse pass starts there). As torch's packed layers, an ended
        sequence's state never enters the step's matmul, so its value (an inf) cannot meet a
        zero gradient there (0 * inf = NaN in weight_hh's gradient, issue 12).
        Shapes: x_t (B, H_in); state (B, H) or a pair of them."""
        active, ended = np.flatnonzero(running), np.flatnonzero(~running)
        if active.size == 0:
            return state
        x_gates = F.linear(x_t[active], weights[0], weights[2])
        if self.mode == "LSTM":
            stepped = self._step(x_gates, (state[0][active], state[1][active]), weights)
        else:
            stepped = self._step(x_gates, state[active], weights)
        if ended.size == 0:
            return stepped
        back = np.argsort(np.concatenate([active, ended]))  # the batch's own order again

        def merge(new: Tensor, old: Tensor) -> Tensor:
            return cat([new, old[ended]], 0)[back]

        if self.mode == "LSTM":
            return merge(stepped[0], state[0]), merge(stepped[1], state[1])
        return merge(stepped, state)

    def _run(self, x: Any, hx: Any, lengths: np.ndarray | None = None) -> tuple[Any, Any]:
        if isinstance(x, PackedSequence):
            return self._run_packed(x, hx)
        batched = self._check_input(x)
        x = _as_tensor(x, self.weight_ih_l0._data.dtype)
        if x._data.dtype != self.weight_ih_l0._data.dtype:
            # torch's own check (no promotion: a float64 or integer batch is a forgotten cast)
            raise ValueError(f"{type(self).__name__}: input dtype ({x._data.dtype}) does not "
                             f"match weight dtype ({self.weight_ih_l0._data.dtype}) (torch: "
                             "\"RNN input dtype ... does not match weight dtype\"); cast the "
                             "input: x.float() or x.to(weight.dtype)")
        if not batched:
            x = x.unsqueeze(1)  # (L, 1, H_in)
        elif self.batch_first:
            x = x.transpose(0, 1)  # (L, N, H_in)
        steps, batch = x.shape[0], x.shape[1]
        if steps == 0:
            raise ValueError(f"{type(self).__name__}: the input has no time steps")
        if self.mode == "LSTM":
            if hx is not None and (not isinstance(hx, tuple | list) or len(hx) != 2):
                raise ValueError("LSTM: hx must be a tuple (h_0, c_0)")
            h0 = self._initial_state(None if hx is None else hx[0], batch, batched, x, "h_0")
            c0 = self._initial_state(None if hx is None else hx[1], batch, batched, x, "c_0")
        else:
            h0 = self._initial_state(hx, batch, batched, x, "hx")
        directions = 2 if self.bidirectional else 1
        # the sequence as a list of steps, split once: the layers pass per-step tensors on, so
        # no step's backward has to fill a gradient of the whole sequence
        step_inputs = [x[t] for t in range(steps)]  # each (N, H_in)
        last_h, last_c = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                state: Any = (h0[index], c0[index]) if self.mode == "LSTM" else h0[index]
                weights = self._weights(layer, direction)
                order = range(steps - 1, -1, -1) if direction else range(steps)
                hs: list[Tensor] = [None] * steps  # type: ignore[list-item]
                for t in order:
                    if lengths is not None and t >= lengths.min():
                        state = self._step_running(step_inputs[t], state, weights, t < lengths)
                    else:
                        x_gates = F.linear(step_inputs[t], weights[0], weights[2])
                        state = self._step(x_gates, state, weights)
                    hs[t] = state[0] if self.mode == "LSTM" else state
                outputs.append(hs)
                if self.mode == "LSTM":
                    last_h.append(state[0])
                    last_c.append(state[1])
                else:
                    last_h.append(state)
            step_inputs = outputs[0] if directions == 1 else [
                cat([forward, backward], -1) for forward, backward in zip(*outputs, strict=True)]
            if self.dropout and self.training and layer < self.num_layers - 1:
                step_inputs = [F.dropout(h, self.dropout, True) for h in step_inputs]
        output = stack(step_inputs, 0)  # (L, N, directions * H)
        h_n = stack(last_h, 0)  # (layers * directions, N, H)
        if not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        if self.mode == "LSTM":
            c_n = stack(last_c, 0)
            return output, (h_n, c_n if batched else c_n.squeeze(1))
        return output, h_n

    def forward(self, input: Tensor | PackedSequence, hx: Any = None) -> tuple[Any, Any]:
        return self._run(input, hx)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"  # torch's RNNBase.extra_repr order
        if self.proj_size:
            text += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


class RNN(RNNBase):
    """Elman RNN (torch.nn.RNN): ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``
    (``nonlinearity='relu'``: relu), stacked ``num_layers`` deep, optionally bidirectional,
    with dropout between layers in training.

    Shape:
        input (L, N, H_in) [(N, L, H_in) with batch_first, or unbatched (L, H_in)] or a
        PackedSequence, h_0 (layers * directions, N, H) or None (zeros)
        -> output (L, N, directions * H) (a PackedSequence for a packed input),
        h_n (layers * directions, N, H)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         rng=rng, dtype=dtype)


class LSTM(RNNBase):
    """Long short-term memory (torch.nn.LSTM; gates i, f, g, o, see ``F.lstm_cell``).

    ``proj_size`` > 0 projects each h by ``weight_hr_l{k}`` (proj_size, H) (Sak et al. 2014), so
    h, the output and the next layer's input have proj_size features (P below; H without).

    Shape:
        input as RNN; hx = (h_0 (layers * directions, N, P), c_0 (layers * directions, N, H))
        or None -> output (L, N, directions * P), (h_n, c_n)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, *, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, rng=rng, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit (torch.nn.GRU; gates r, z, n, see ``F.gru_cell``).

    Shape: as RNN.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, rng=rng, dtype=dtype)


class RNNCellBase(Module):
    """One time step: parameters weight_ih (gates * H, in), weight_hh (gates * H, H),
    bias_ih, bias_hh (torch.nn.RNNCellBase), initialised U(-1/sqrt(H), 1/sqrt(H))."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 rng: Any = None, dtype: Any = np.float32) -> None:
        super().__init__()
        name = type(self).__name__
        self.input_size = positive_int(name, "input_size", input_size)
        self.hidden_size = positive_int(name, "hidden_size", hidden_size)
        self.bias = bias
        rows = self.gates * hidden_size
        self.weight_ih = Parameter(np.empty((rows, input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((rows, hidden_size), dtype=dtype))
        for kind in ("bias_ih", "bias_hh"):
            self.register_parameter(kind, Parameter(np.empty(rows, dtype=dtype)) if bias
                                    else None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """Every weight and bias U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) (torch's)."""
        generator = as_generator(rng)
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            uniform_(param, -bound, bound, generator)

    def _prepare(self, x: Any, hx: Any) -> tuple[Tensor, Tensor | None, bool]:
        name = type(self).__name__
        x = _as_tensor(x, np.float32)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}({self.input_size}, {self.hidden_size}): expected input "
                             f"(N, {self.input_size}) or ({self.input_size},), got "
                             f"{tuple(x.shape)}")
        batched = x.ndim == 2
        return (x if batched else x.unsqueeze(0)), None, batched

    def _state(self, hx: Any, x: Tensor, batched: bool) -> Tensor:
        shape = (x.shape[0], self.hidden_size)
        if hx is None:
            return Tensor._make(np.zeros(shape, dtype=x.dtype), False, None)
        hx = _as_tensor(hx, x.dtype)
        expected = shape if batched else shape[1:]
        if tuple(hx.shape) != expected:
            raise ValueError(f"{type(self).__name__}: hidden state must have shape {expected}, "
                             f"got {tuple(hx.shape)}")
        return hx if batched else hx.unsqueeze(0)

    def _weights(self) -> tuple[Any, ...]:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def extra_repr(self) -> str:
        # torch's RNNCellBase.extra_repr
        text = f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity}"
        return text


class RNNCell(RNNCellBase):
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu) (torch.nn.RNNCell).

    Shape: input (N, in) or (in,), hx (N, H) or None -> h' (N, H)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", *, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got "
                             f"{nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, rng=rng, dtype=dtype)

    def forward(self, input: Any, hx: Any = None) -> Tensor:
        x, _, batched = self._prepare(input, hx)
        cell = F.rnn_tanh_cell if self.nonlinearity == "tanh" else F.rnn_relu_cell
        h = cell(x, self._state(hx, x, batched), *self._weights())
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step (torch.nn.LSTMCell; gates i, f, g, o).

    Shape: input (N, in), hx = (h, c) each (N, H) or None -> (h', c')
    """

    gates = 4

    def forward(self, input: Any, hx: Any = None) -> tuple[Tensor, Tensor]:
        x, _, batched = self._prepare(input, hx)
        h = self._state(None if hx is None else hx[0], x, batched)
        c = self._state(None if hx is None else hx[1], x, batched)
        h, c = F.lstm_cell(x, (h, c), *self._weights())
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step (torch.nn.GRUCell; gates r, z, n).

    Shape: input (N, in), hx (N, H) or None -> h' (N, H)
    """

    gates = 3

    def forward(self, input: Any, hx: Any = None) -> Tensor:
        x, _, batched = self._prepare(input, hx)
        h = F.gru_cell(x, self._state(hx, x, batched), *self._weights())
        return h if batched else h.squeeze(0)
