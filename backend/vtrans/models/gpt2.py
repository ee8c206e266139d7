"""GPT-2 as Hugging Face computes it: pre-LayerNorm blocks, Conv1D weights stored (in, out), learned positions,
a causal LM head tied to the token embeddings, or a sequence classifier read at the last non-padding token.

Parameter names are Hugging Face's (`transformer.h.0.attn.c_attn.weight`, ...). Pruned models may have any
number of heads and FFN neurons per layer (0 removes the sublayer with its LayerNorm) and an untied LM head
(the hidden-dimension scales folded into the embeddings must not reach the output projection).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..structure import LayerShape, ModelShape
from .bert import namespace
from .common import AttentionCapture, CausalLM, Gates, LastTokenClassifier, activation, attend, layer_norm, padding_bias


class Conv1D(nn.Module):
    """Hugging Face's GPT-2 linear layer: weight (in, out), y = x W + b."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out).normal_(std=0.02))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


class GPT2Block(nn.Module):
    def __init__(self, s: ModelShape, shape: LayerShape, index: int):
        super().__init__()
        cfg = s.config
        H, d, h, F = s.hidden, s.head_dim, shape.heads, shape.ffn
        eps = float(cfg.get("layer_norm_epsilon", 1e-5))
        self.n_heads, self.head_dim = h, d
        self.scale = (1.0 / math.sqrt(d) if cfg.get("scale_attn_weights", True) else 1.0) / (
            index + 1 if cfg.get("scale_attn_by_inverse_layer_idx", False) else 1
        )
        if h:
            self.ln_1 = nn.LayerNorm(H, eps=eps)
            self.attn = namespace(c_attn=Conv1D(H, 3 * h * d), c_proj=Conv1D(h * d, H))
        if F:
            self.ln_2 = nn.LayerNorm(H, eps=eps)
            self.mlp = namespace(c_fc=Conv1D(H, F), c_proj=Conv1D(F, H))
        self.act = activation(cfg.get("activation_function", "gelu_new"), "config.json")
        self.dropout = nn.Dropout(float(cfg.get("resid_pdrop", 0.1)))
        self.attn_dropout_p = float(cfg.get("attn_pdrop", 0.1))

    def forward(self, x, bias, gates: Gates, index: int, capture: AttentionCapture | None, use_sdpa: bool):
        b, t, _ = x.shape
        if self.n_heads:
            qkv = self.attn.c_attn(gates.scale_hidden(layer_norm(x, self.ln_1, gates)))
            q, k, v = (z.view(b, t, self.n_heads, self.head_dim).transpose(1, 2) for z in qkv.split(self.n_heads * self.head_dim, dim=2))
            p = self.attn_dropout_p if self.training else 0.0
            ctx = gates.scale_heads(index, attend(q, k, v, bias, self.scale, capture, index, use_sdpa, p), 1)
            a = self.dropout(self.attn.c_proj(ctx.transpose(1, 2).reshape(b, t, -1)))
            x = x + gates.scale_hidden(gates.scale_attn(index, a))
        if hasattr(self, "mlp"):
            h = gates.scale_ffn(index, self.act(self.mlp.c_fc(gates.scale_hidden(layer_norm(x, self.ln_2, gates)))))
            o = self.dropout(self.mlp.c_proj(h))
            x = x + gates.scale_hidden(gates.scale_ffn_layer(index, o))
        return x


class GPT2Model(nn.Module):
    def __init__(self, s: ModelShape):
        super().__init__()
        self.wte = nn.Embedding(s.vocab, s.hidden)
        self.wpe = nn.Embedding(s.max_positions, s.hidden)
        self.drop = nn.Dropout(float(s.config.get("embd_pdrop", 0.1)))
        self.h = nn.ModuleList(GPT2Block(s, l, i) for i, l in enumerate(s.layers))
        self.ln_f = nn.LayerNorm(s.hidden, eps=float(s.config.get("layer_norm_epsilon", 1e-5)))
        self.use_sdpa = True

    @property
    def input_embeddings(self) -> nn.Embedding:
        return self.wte

    def forward(self, input_ids, attention_mask, gates: Gates, capture) -> list:
        pos = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = gates.scale_hidden(self.drop(self.wte(input_ids) + self.wpe(pos)))
        bias = padding_bias(attention_mask, x.dtype, causal=True, q_len=input_ids.shape[1], device=x.device)
        states = [x]
        for i, block in enumerate(self.h):
            x = block(x, bias, gates, i, capture, self.use_sdpa)
            states.append(x)
        states[-1] = gates.mask_hidden(layer_norm(x, self.ln_f, gates))
        return states


class GPT2LMHeadModel(CausalLM):
    family = "gpt2"
    body_prefix = "transformer."

    def __init__(self, s: ModelShape):
        super().__init__(s, GPT2Model(s))


class GPT2ForSequenceClassification(LastTokenClassifier):
    family = "gpt2"
    body_prefix = "transformer."

    def __init__(self, s: ModelShape):
        super().__init__(s, GPT2Model(s))
