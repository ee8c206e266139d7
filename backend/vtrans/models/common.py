"""Pieces every family shares: the gates VTrans multiplies into a forward pass, norms restricted to kept hidden
dimensions, the attention kernel (PyTorch's scaled_dot_product_attention; the explicit product when attention maps
are captured or a model is exported).

Gates (all optional, each either one value per unit or one per example and unit, shape (B, n)):
    hidden     (H,)    every hidden dimension: multiplied into the embedding output, every norm output and every
                       residual write, so a dimension at 0 is absent from the whole residual stream (CoFi); a
                       decoder's final norm output gets only the keep weights (`mask_hidden`)
    norm_dims  (H,)    weights of the hidden dimensions in norm statistics (1 kept, 0 pruned; soft in training):
                       with binary weights a norm over the masked stream equals the norm of the pruned model
    heads[l]   (G_l,)  one per key/value group (a head under multi-head attention): scales that group's context
    attn[l]    ()      the whole attention sublayer output of layer l (per example: (B,))
    ffn[l]     (F_l,)  every intermediate neuron of layer l
    ffn_layer[l] ()    the whole FFN sublayer output of layer l (per example: (B,))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Gates:
    hidden: torch.Tensor | None = None
    norm_dims: torch.Tensor | None = None
    heads: list[torch.Tensor | None] = field(default_factory=list)
    attn: list[torch.Tensor | None] = field(default_factory=list)
    ffn: list[torch.Tensor | None] = field(default_factory=list)
    ffn_layer: list[torch.Tensor | None] = field(default_factory=list)

    @staticmethod
    def _at(xs: list[torch.Tensor | None], i: int) -> torch.Tensor | None:
        return xs[i] if i < len(xs) else None

    def scale_hidden(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, H)."""
        g = self.hidden
        if g is None:
            return x
        return x * (g.unsqueeze(1) if g.dim() == 2 else g).to(x.dtype)

    def mask_hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The keep weights without the scales: applied to a decoder's final norm output, so that an output
        projection tied to the (scaled) input embeddings can fold the inverse scales into that norm."""
        w = self.norm_dims
        return x if w is None else x * w.to(x.dtype)

    def scale_heads(self, layer: int, ctx: torch.Tensor, group_size: int) -> torch.Tensor:
        """ctx: (B, heads, T, head_dim); the gate holds one value per key/value group."""
        g = self._at(self.heads, layer)
        if g is None:
            return ctx
        if group_size > 1:
            g = g.repeat_interleave(group_size, dim=-1)
        g = g.view(-1, ctx.shape[1], 1, 1) if g.dim() == 2 else g.view(1, -1, 1, 1)
        return ctx * g.to(ctx.dtype)

    def _scale_sublayer(self, xs, layer: int, out: torch.Tensor) -> torch.Tensor:
        g = self._at(xs, layer)
        if g is None:
            return out
        return out * (g.view(-1, 1, 1) if g.dim() == 1 else g).to(out.dtype)  # scalar, or one per example

    def scale_attn(self, layer: int, out: torch.Tensor) -> torch.Tensor:
        return self._scale_sublayer(self.attn, layer, out)

    def scale_ffn_layer(self, layer: int, out: torch.Tensor) -> torch.Tensor:
        return self._scale_sublayer(self.ffn_layer, layer, out)

    def scale_ffn(self, layer: int, act: torch.Tensor) -> torch.Tensor:
        """act: (B, T, F)."""
        g = self._at(self.ffn, layer)
        if g is None:
            return act
        return act * (g.unsqueeze(1) if g.dim() == 2 else g).to(act.dtype)


NO_GATES = Gates()


def layer_norm(x: torch.Tensor, norm: nn.LayerNorm, gates: Gates) -> torch.Tensor:
    """LayerNorm whose statistics cover only the kept hidden dimensions (weighted by `gates.norm_dims`)."""
    w = gates.norm_dims
    if w is None:
        return norm(x)
    w = w.to(x.dtype)
    total = w.sum()
    mean = (x * w).sum(-1, keepdim=True) / total
    var = (((x - mean) ** 2) * w).sum(-1, keepdim=True) / total
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


class RMSNorm(nn.Module):
    """LLaMA's RMSNorm, computed in float32 as Hugging Face does."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor, dim_weights: torch.Tensor | None = None) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        if dim_weights is None:
            var = x.pow(2).mean(-1, keepdim=True)
        else:
            var = (x.pow(2) * dim_weights.float()).sum(-1, keepdim=True) / dim_weights.float().sum()
        return self.weight * (x * torch.rsqrt(var + self.eps)).to(dtype)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's "gelu_new", written out so ONNX export and Hugging Face agree exactly."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_tanh,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
}


def activation(name: str, source: str):
    from ..errors import CheckpointError

    if name not in ACTIVATIONS:
        raise CheckpointError(f"{source}: activation {name!r} is not supported (supported: {', '.join(sorted(ACTIVATIONS))}).")
    return ACTIVATIONS[name]


def padding_bias(
    attention_mask: torch.Tensor | None, dtype: torch.dtype, causal: bool, q_len: int, device: torch.device | None = None
) -> torch.Tensor | None:
    """Additive attention bias (B, 1, T, T) from a (B, T) 0/1 mask plus, for decoders, the causal mask.
    Built from comparisons of aranges so that exported graphs keep the sequence axis dynamic."""
    neg = torch.finfo(dtype).min
    bias = None
    if attention_mask is not None:
        bias = (1.0 - attention_mask[:, None, None, :].to(dtype)) * neg
    if causal:
        pos = torch.arange(q_len, device=device)
        future = (pos[None, :] > pos[:, None]).to(dtype)[None, None] * neg
        bias = future if bias is None else (bias + future).clamp(min=neg)
    return bias


class AttentionCapture:
    """Collects per-layer attention probabilities (B, heads, T, T) when passed to a forward."""

    def __init__(self):
        self.maps: list[torch.Tensor | None] = []

    def add(self, layer: int, probs: torch.Tensor | None) -> None:
        while len(self.maps) <= layer:
            self.maps.append(None)
        self.maps[layer] = probs


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None,
    scale: float,
    capture: AttentionCapture | None,
    layer: int,
    use_sdpa: bool,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Scaled dot-product attention over (B, heads, T, d) tensors; k/v already expanded to the query heads.
    `dropout_p` drops attention probabilities (training only: callers pass 0 in eval mode)."""
    if use_sdpa and capture is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p, scale=scale)
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    if bias is not None:
        scores = scores + bias
    probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    if capture is not None:
        capture.add(layer, probs.detach())
    if dropout_p > 0:
        probs = F.dropout(probs, dropout_p)
    return torch.matmul(probs, v)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, kv, T, d) -> (B, kv * n_rep, T, d); query head j reads key/value head j // n_rep."""
    if n_rep == 1:
        return x
    b, kv, t, d = x.shape
    return x[:, :, None].expand(b, kv, n_rep, t, d).reshape(b, kv * n_rep, t, d)


def last_token_index(input_ids: torch.Tensor, pad_token_id: int | None) -> torch.Tensor:
    """Index of the rightmost non-padding token per row, as Hugging Face's decoder classifiers pick it."""
    if pad_token_id is None:
        return torch.full((input_ids.shape[0],), input_ids.shape[1] - 1, dtype=torch.long, device=input_ids.device)
    non_pad = (input_ids != pad_token_id).to(torch.int64)
    positions = torch.arange(input_ids.shape[1], device=input_ids.device, dtype=torch.int64)
    return (positions * non_pad).argmax(-1)


@dataclass
class ModelOutput:
    logits: torch.Tensor
    hidden_states: list[torch.Tensor] = field(default_factory=list)  # embedding output + each layer's output


class DecoderModel(nn.Module):
    """GPT-2 and LLaMA: a body stored under Hugging Face's attribute name (`body_prefix`) and one of two heads."""

    family = ""
    body_prefix = ""

    def __init__(self, s, body: nn.Module):
        super().__init__()
        self.shape = s
        self.add_module(self.body_prefix.rstrip("."), body)

    @property
    def body(self) -> nn.Module:
        return getattr(self, self.body_prefix.rstrip("."))

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return self.run(input_ids, attention_mask).logits


class CausalLM(DecoderModel):
    """Logits over the vocabulary; the output projection is the input embedding table unless untied."""

    def __init__(self, s, body: nn.Module):
        super().__init__(s, body)
        if not s.tied_embeddings:
            self.lm_head = nn.Linear(s.hidden, s.vocab, bias=False)

    def output_embeddings(self) -> torch.Tensor:
        return self.lm_head.weight if hasattr(self, "lm_head") else self.body.input_embeddings.weight

    def run(
        self, input_ids, attention_mask=None, token_type_ids=None, gates: Gates = NO_GATES, capture: AttentionCapture | None = None
    ) -> ModelOutput:
        states = self.body(input_ids, attention_mask, gates, capture)
        return ModelOutput(torch.matmul(states[-1], self.output_embeddings().t()), states)


class LastTokenClassifier(DecoderModel):
    """Sequence classification from the rightmost non-padding token, as Hugging Face's decoder classifiers do."""

    def __init__(self, s, body: nn.Module):
        super().__init__(s, body)
        self.score = nn.Linear(s.hidden, max(s.num_labels, 1), bias=False)
        self.pad_token_id = s.config.get("pad_token_id")

    def run(
        self, input_ids, attention_mask=None, token_type_ids=None, gates: Gates = NO_GATES, capture: AttentionCapture | None = None
    ) -> ModelOutput:
        states = self.body(input_ids, attention_mask, gates, capture)
        last = last_token_index(input_ids, self.pad_token_id)
        pooled = states[-1][torch.arange(input_ids.shape[0], device=input_ids.device), last]
        return ModelOutput(self.score(pooled), states)
