"""LLaMA as Hugging Face computes it: RMSNorm (in float32), rotary position embeddings (default, linear and
llama3 frequency scaling), grouped-query attention, SiLU-gated MLP; causal LM or sequence classification.

Parameter names are Hugging Face's (`model.layers.0.self_attn.q_proj.weight`, ...). VTrans prunes attention
per key/value group: a group's key/value head goes together with its query heads.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import CheckpointError
from ..structure import LayerShape, ModelShape
from .common import AttentionCapture, CausalLM, Gates, LastTokenClassifier, RMSNorm, activation, attend, padding_bias, repeat_kv


def rope_inv_freq(cfg: dict, head_dim: int) -> torch.Tensor:
    base = float(cfg.get("rope_theta", 10000.0))
    dim = int(head_dim * float(cfg.get("partial_rotary_factor", 1.0)))
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    scaling = cfg.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv_freq
    if kind == "linear":
        return inv_freq / float(scaling["factor"])
    if kind == "llama3":
        factor, low, high = float(scaling["factor"]), float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
        old_ctx = float(scaling["original_max_position_embeddings"])
        low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_ctx / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        return torch.where(medium, smoothed, scaled)
    raise CheckpointError(f"config.json: rope_scaling type {kind!r} is not supported (supported: default, linear, llama3).")


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaDecoderLayer(nn.Module):
    def __init__(self, s: ModelShape, shape: LayerShape):
        super().__init__()
        cfg = s.config
        H, d, h, g, F = s.hidden, s.head_dim, shape.heads, shape.kv_heads, shape.ffn
        eps = float(cfg.get("rms_norm_eps", 1e-6))
        self.n_heads, self.n_kv, self.head_dim = h, g, d
        if h:
            self.input_layernorm = RMSNorm(H, eps)
            attn = nn.Module()
            attn.q_proj = nn.Linear(H, h * d, bias=s.attention_bias)
            attn.k_proj = nn.Linear(H, g * d, bias=s.attention_bias)
            attn.v_proj = nn.Linear(H, g * d, bias=s.attention_bias)
            attn.o_proj = nn.Linear(h * d, H, bias=s.attention_bias)
            self.self_attn = attn
        if F:
            self.post_attention_layernorm = RMSNorm(H, eps)
            mlp = nn.Module()
            mlp.gate_proj = nn.Linear(H, F, bias=s.mlp_bias)
            mlp.up_proj = nn.Linear(H, F, bias=s.mlp_bias)
            mlp.down_proj = nn.Linear(F, H, bias=s.mlp_bias)
            self.mlp = mlp
        self.act = activation(cfg.get("hidden_act", "silu"), "config.json")
        self.attn_dropout_p = float(cfg.get("attention_dropout", 0.0))

    def forward(self, x, bias, cos, sin, gates: Gates, index: int, capture: AttentionCapture | None, use_sdpa: bool):
        b, t, _ = x.shape
        if self.n_heads:
            a_in = gates.scale_hidden(self.input_layernorm(x, gates.norm_dims))
            sa = self.self_attn
            q = sa.q_proj(a_in).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
            k = sa.k_proj(a_in).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
            v = sa.v_proj(a_in).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
            rot = cos.shape[-1]
            q = torch.cat((q[..., :rot] * cos + rotate_half(q[..., :rot]) * sin, q[..., rot:]), dim=-1)
            k = torch.cat((k[..., :rot] * cos + rotate_half(k[..., :rot]) * sin, k[..., rot:]), dim=-1)
            rep = self.n_heads // self.n_kv
            p = self.attn_dropout_p if self.training else 0.0
            ctx = attend(q, repeat_kv(k, rep), repeat_kv(v, rep), bias, 1.0 / math.sqrt(self.head_dim), capture, index, use_sdpa, p)
            ctx = gates.scale_heads(index, ctx, rep)
            a = sa.o_proj(ctx.transpose(1, 2).reshape(b, t, -1))
            x = x + gates.scale_hidden(gates.scale_attn(index, a))
        if hasattr(self, "mlp"):
            m_in = gates.scale_hidden(self.post_attention_layernorm(x, gates.norm_dims))
            h = gates.scale_ffn(index, self.act(self.mlp.gate_proj(m_in)) * self.mlp.up_proj(m_in))
            x = x + gates.scale_hidden(gates.scale_ffn_layer(index, self.mlp.down_proj(h)))
        return x


class LlamaModel(nn.Module):
    def __init__(self, s: ModelShape):
        super().__init__()
        self.embed_tokens = nn.Embedding(s.vocab, s.hidden)
        self.layers = nn.ModuleList(LlamaDecoderLayer(s, l) for l in s.layers)
        self.norm = RMSNorm(s.hidden, float(s.config.get("rms_norm_eps", 1e-6)))
        self.register_buffer("inv_freq", rope_inv_freq(s.config, s.head_dim), persistent=False)
        self.use_sdpa = True

    @property
    def input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def rotary(self, t: int, device, dtype):
        pos = torch.arange(t, device=device, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq.float().to(device))
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)

    def forward(self, input_ids, attention_mask, gates: Gates, capture) -> list:
        x = gates.scale_hidden(self.embed_tokens(input_ids))
        t = input_ids.shape[1]
        bias = padding_bias(attention_mask, x.dtype, causal=True, q_len=t, device=x.device)
        cos, sin = self.rotary(t, x.device, x.dtype)
        states = [x]
        for i, layer in enumerate(self.layers):
            x = layer(x, bias, cos, sin, gates, i, capture, self.use_sdpa)
            states.append(x)
        states[-1] = gates.mask_hidden(self.norm(x, gates.norm_dims))
        return states


class LlamaForCausalLM(CausalLM):
    family = "llama"
    body_prefix = "model."

    def __init__(self, s: ModelShape):
        super().__init__(s, LlamaModel(s))


class LlamaForSequenceClassification(LastTokenClassifier):
    family = "llama"
    body_prefix = "model."

    def __init__(self, s: ModelShape):
        super().__init__(s, LlamaModel(s))
