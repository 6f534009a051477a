"""MultiheadAttention (Vaswani et al. 2017) with torch's parameter layout and masks."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.autograd.tensor import Tensor
from gradwise.nn import functional as F
from gradwise.nn.init import as_generator, constant_, xavier_uniform_
from gradwise.nn.layers._utils import positive_int
from gradwise.nn.layers.linear import NonDynamicallyQuantizableLinear
from gradwise.nn.module import Module, Parameter


class MultiheadAttention(Module):
    """Multi-head attention as torch.nn.MultiheadAttention.

    Parameters (torch's names, so state dicts load unchanged): ``in_proj_weight`` (3E, E) and
    ``in_proj_bias`` (3E,) stacking the query, key and value projections (or
    ``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` when kdim or vdim differ from E), and
    ``out_proj`` (a Linear(E, E)). Initialised as torch's: xavier_uniform_ projections, zero
    biases, out_proj's weight as a Linear's.

    Args:
        dropout: dropout on the attention weights in training.
        batch_first: inputs (N, L, E) instead of (L, N, E).

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False):
        key_padding_mask (N, S): True (or -inf added) marks keys to ignore.
        attn_mask (L, S) or (N * heads, L, S): True marks pairs that may NOT attend (the
            opposite of scaled_dot_product_attention's bool mask), or a float mask added.
        is_causal: a hint in torch that attn_mask is causal; here, without attn_mask, it applies
            a causal mask.
        A query whose keys are all masked gets NaN with need_weights=True and 0 attention
        (output = out_proj's bias) with need_weights=False, as torch (whose second path runs
        scaled_dot_product_attention's safe softmax).

    Shape:
        query (L, N, E), key (S, N, kdim), value (S, N, vdim) [batch_first: N first;
        unbatched: no N] -> output (L, N, E), weights (N, L, S) averaged over heads, or
        (N, heads, L, S), or None when need_weights is False

    Raises:
        ValueError: embed_dim not divisible by num_heads, add_bias_kv/add_zero_attn (not
            supported), inputs or masks of the wrong shape.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 *, rng: Any = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.embed_dim = positive_int("MultiheadAttention", "embed_dim", embed_dim)
        self.num_heads = positive_int("MultiheadAttention", "num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by "
                             f"num_heads ({num_heads})")
        if add_bias_kv or add_zero_attn:
            raise ValueError("MultiheadAttention: add_bias_kv and add_zero_attn are not "
                             "supported (docs/PORTING.md)")
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=dtype))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = Parameter(np.empty((embed_dim, embed_dim), dtype=dtype))
            self.k_proj_weight = Parameter(np.empty((embed_dim, self.kdim), dtype=dtype))
            self.v_proj_weight = Parameter(np.empty((embed_dim, self.vdim), dtype=dtype))
        self.register_parameter(
            "in_proj_bias", Parameter(np.empty(3 * embed_dim, dtype=dtype)) if bias else None)
        generator = as_generator(rng)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias,
                                                        rng=generator, dtype=dtype)
        self.reset_parameters(generator)

    def reset_parameters(self, rng: Any = None) -> None:
        """torch's initialisation: xavier_uniform_ projections, zero in/out biases."""
        generator = as_generator(rng)
        if self._qkv_same_embed_dim:
            xavier_uniform_(self.in_proj_weight, rng=generator)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                xavier_uniform_(weight, rng=generator)
        if self.in_proj_bias is not None:
            constant_(self.in_proj_bias, 0.0)
            constant_(self.out_proj.bias, 0.0)

    def _projections(self) -> tuple[Tensor, Tensor, Tensor]:
        if self._qkv_same_embed_dim:
            w_q, w_k, w_v = self.in_proj_weight.chunk(3, 0)  # (E, E) each
            return w_q, w_k, w_v
        return self.q_proj_weight, self.k_proj_weight, self.v_proj_weight

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Any = None,
                need_weights: bool = True, attn_mask: Any = None,
                average_attn_weights: bool = True, is_causal: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"MultiheadAttention: query {tuple(query.shape)}, key "
                             f"{tuple(key.shape)} and value {tuple(value.shape)} must all be "
                             "(L, N, E) (batch_first: (N, L, E)) or unbatched (L, E)")
        if not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if isinstance(key_padding_mask, Tensor):  # a float mask keeps its graph
                key_padding_mask = key_padding_mask.unsqueeze(0)
            elif key_padding_mask is not None:
                key_padding_mask = np.asarray(key_padding_mask)[None]
        elif not self.batch_first:  # (L, N, E) -> (N, L, E)
            query, key, value = (query.transpose(0, 1), key.transpose(0, 1),
                                 value.transpose(0, 1))
        batch, length, _ = query.shape
        source = key.shape[1]
        if query.shape[-1] != self.embed_dim or key.shape[-1] != self.kdim \
                or value.shape[-1] != self.vdim or value.shape[1] != source:
            raise ValueError(f"MultiheadAttention(embed_dim={self.embed_dim}): query, key, value "
                             f"of shapes {tuple(query.shape)}, {tuple(key.shape)}, "
                             f"{tuple(value.shape)} (batch first) do not fit")
        w_q, w_k, w_v = self._projections()
        b_q = b_k = b_v = None
        if self.in_proj_bias is not None:
            b_q, b_k, b_v = self.in_proj_bias.chunk(3, 0)
        heads, head_dim = self.num_heads, self.head_dim

        def split_heads(x: Tensor, n: int) -> Tensor:
            return x.reshape(batch, n, heads, head_dim).transpose(1, 2)  # (N, heads, n, d)

        q = split_heads(F.linear(query, w_q, b_q), length)
        k = split_heads(F.linear(key, w_k, b_k), source)
        v = split_heads(F.linear(value, w_v, b_v), source)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / float(np.sqrt(head_dim)))  # (N, h, L, S)
        if attn_mask is None and is_causal:
            attn_mask = ~np.tril(np.ones((length, source), dtype=bool))
        mask = F._additive_mask(attn_mask, scores, allowed_when_true=False)
        if mask is not None:
            if mask.ndim == 3:
                if tuple(mask.shape) != (batch * heads, length, source):
                    raise ValueError(f"MultiheadAttention: a 3-D attn_mask must be "
                                     f"{(batch * heads, length, source)}, got {tuple(mask.shape)}")
                mask = mask.reshape(batch, heads, length, source)
            elif tuple(mask.shape) != (length, source):
                raise ValueError(f"MultiheadAttention: attn_mask must be {(length, source)} or "
                                 f"{(batch * heads, length, source)}, got {tuple(mask.shape)}")
            scores = scores + mask
        padding = F._additive_mask(key_padding_mask, scores, allowed_when_true=False)
        if padding is not None:
            if tuple(padding.shape) != (batch, source):
                raise ValueError(f"MultiheadAttention: key_padding_mask must be "
                                 f"{(batch, source)}, got {tuple(padding.shape)}")
            scores = scores + padding.reshape(batch, 1, 1, source)
        # torch computes need_weights=False through scaled_dot_product_attention, whose safe
        # softmax gives a fully padded row 0 (not NaN); with the weights it uses plain softmax
        weights = F.softmax(scores, dim=-1) if need_weights else F._safe_softmax(scores)
        attended = F.dropout(weights, self.dropout, self.training) if self.dropout else weights
        out = (attended @ v).transpose(1, 2).reshape(batch, length, self.embed_dim)
        out = self.out_proj(out)  # (N, L, E)
        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        weights = attended  # torch returns the weights after dropout
        if average_attn_weights:
            weights = weights.mean(1)  # (N, L, S)
        return out, (weights if batched else weights.squeeze(0))

