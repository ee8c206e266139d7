"""LLaMA as Hugging Face computes it: RMSNorm (in float32), rotary position embeddings (default, linear and
llama3 frequency scaling), grouped-query attention, SiLU-gated MLP; causal LM or sequence classification. And the
family (`LLAMA`): its config fields (key/value heads, optional projection biases, an untied LM head by default),
size accounting and weight slicing.

Parameter names are Hugging Face's (`model.layers.0.self_attn.q_proj.weight`, ...). VTrans prunes attention
per key/value group: a group's key/value head goes together with its query heads.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from ..errors import CheckpointError
from ..structure import ConfigReader, Count, LayerShape, ModelShape
from .common import (
    AttentionCapture,
    Block,
    Body,
    CausalLM,
    DecoderFamily,
    Gates,
    LastTokenClassifier,
    RMSNorm,
    Slicer,
    UnitWeight,
    activation,
    attend,
    group_channels,
    padding_bias,
    query_channels,
    repeat_kv,
)

if TYPE_CHECKING:
    from ..prune import KeepSet, UnitScales


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


class LlamaAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, kv_heads: int, head_dim: int, bias: bool):
        super().__init__()
        self.q_proj = nn.Linear(hidden, heads * head_dim, bias=bias)
        self.k_proj = nn.Linear(hidden, kv_heads * head_dim, bias=bias)
        self.v_proj = nn.Linear(hidden, kv_heads * head_dim, bias=bias)
        self.o_proj = nn.Linear(heads * head_dim, hidden, bias=bias)


class LlamaMLP(nn.Module):
    def __init__(self, hidden: int, ffn: int, bias: bool):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, ffn, bias=bias)
        self.up_proj = nn.Linear(hidden, ffn, bias=bias)
        self.down_proj = nn.Linear(ffn, hidden, bias=bias)


class LlamaDecoderLayer(Block):
    def __init__(self, s: ModelShape, shape: LayerShape):
        super().__init__()
        cfg = s.config
        H, d, h, g, F = s.hidden, s.head_dim, shape.heads, shape.kv_heads, shape.ffn
        eps = float(cfg.get("rms_norm_eps", 1e-6))
        self.n_heads, self.n_kv, self.head_dim = h, g, d
        # A removed sublayer takes its norm with it (pre-norm).
        self.input_layernorm = RMSNorm(H, eps) if h else None
        self.self_attn = LlamaAttention(H, h, g, d, s.attention_bias) if h else None
        self.post_attention_layernorm = RMSNorm(H, eps) if F else None
        self.mlp = LlamaMLP(H, F, s.mlp_bias) if F else None
        self.act = activation(cfg.get("hidden_act", "silu"), "config.json")
        self.attn_dropout_p = float(cfg.get("attention_dropout", 0.0))

    def forward(self, x, bias, cos, sin, gates: Gates, index: int, capture: AttentionCapture | None, use_sdpa: bool):
        b, t, _ = x.shape
        sa = self.self_attn
        if sa is not None and self.input_layernorm is not None:
            a_in = self.input_layernorm(x, gates.norm_dims, gates.hidden_factor())
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
            x = x + gates.write("attn", index, a)
        if self.mlp is not None and self.post_attention_layernorm is not None:
            m_in = self.post_attention_layernorm(x, gates.norm_dims, gates.hidden_factor())
            h = gates.scale_ffn(index, self.act(self.mlp.gate_proj(m_in)) * self.mlp.up_proj(m_in))
            x = x + gates.write("ffn", index, self.mlp.down_proj(h))
        return x

    def unit_weights(self) -> list[UnitWeight]:
        d, group_size = self.head_dim, (self.n_heads // self.n_kv if self.n_kv else 1)
        out = []
        if self.self_attn is not None:
            sa = self.self_attn
            out += [
                UnitWeight("heads", sa.q_proj.weight, 0, d * group_size),
                UnitWeight("heads", sa.k_proj.weight, 0, d),
                UnitWeight("heads", sa.v_proj.weight, 0, d),
                UnitWeight("heads", sa.o_proj.weight, 1, d * group_size),
            ]
        if self.mlp is not None:
            out += [
                UnitWeight("ffn", m.weight, axis, 1)
                for m, axis in ((self.mlp.gate_proj, 0), (self.mlp.up_proj, 0), (self.mlp.down_proj, 1))
            ]
        return out


class LlamaModel(Body):
    inv_freq: torch.Tensor

    def __init__(self, s: ModelShape):
        super().__init__(s)
        self.embed_tokens = nn.Embedding(s.vocab, s.hidden)
        self.layers = nn.ModuleList(LlamaDecoderLayer(s, l) for l in s.layers)
        self.norm = RMSNorm(s.hidden, float(s.config.get("rms_norm_eps", 1e-6)))
        self._rope = (s.config, s.head_dim)
        self.register_buffer("inv_freq", rope_inv_freq(s.config, s.head_dim), persistent=False)

    def init_buffers(self) -> None:
        self.inv_freq = rope_inv_freq(*self._rope).to(self.embed_tokens.weight.device)

    @property
    def input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def blocks(self) -> list[Block]:
        return [cast(Block, b) for b in self.layers]

    def rotary(self, t: int, device, dtype):
        pos = torch.arange(t, device=device, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq.float().to(device))
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)

    def forward(self, input_ids, attention_mask, gates: Gates, capture) -> list[torch.Tensor]:
        x = gates.scale_hidden(self.embed_tokens(input_ids))
        t = input_ids.shape[1]
        bias = padding_bias(attention_mask, x.dtype, causal=True, q_len=t, device=x.device)
        cos, sin = self.rotary(t, x.device, x.dtype)
        states = [x]
        for i, layer in enumerate(self.layers):
            x = self.block(layer, x, bias, cos, sin, gates, i, capture, self.use_sdpa)
            states.append(x)
        states[-1] = gates.mask_hidden(self.norm(x, gates.norm_dims))
        return states


class LlamaForCausalLM(CausalLM):
    body_prefix = "model."
    body_class = LlamaModel


class LlamaForSequenceClassification(LastTokenClassifier):
    body_prefix = "model."
    body_class = LlamaModel


class LlamaFamily(DecoderFamily):
    name = "llama"
    body_prefix = "model."
    classes = {"classification": LlamaForSequenceClassification, "lm": LlamaForCausalLM}
    new_head_weights = ("score.",)
    unused_weights = ("rotary_emb.inv_freq", "lm_head.weight")  # a buffer older checkpoints saved; a tied head
    grouped_query = True
    ffn_matrices = 3  # gate, up, down
    final_norm = "model.norm"
    norm_vectors = 1

    def shape_from_config(self, c: ConfigReader, task: str | None) -> ModelShape:
        hidden = c.num("hidden_size")
        n_layers = c.num("num_hidden_layers")
        heads = c.num("num_attention_heads")
        kv_heads = c.num("num_key_value_heads", heads)
        head_dim = c.head_dim(hidden, heads, kv_heads)
        layers = c.layers(n_layers, heads, kv_heads, c.num("intermediate_size"), grouped_query=True)
        labels = c.labels
        return ModelShape(
            family=self.name,
            hidden=hidden,
            head_dim=head_dim,
            layers=layers,
            vocab=c.num("vocab_size"),
            max_positions=c.num("max_position_embeddings", 2048),
            type_vocab=0,
            num_labels=labels,
            task=task or self.default_task(labels),
            tied_embeddings=c.flag("tie_word_embeddings", False),
            attention_bias=c.flag("attention_bias", False),
            mlp_bias=c.flag("mlp_bias", False),
            config=c.cfg,
        )

    # -- output shapes ----------------------------------------------------------------------------------------

    head_dim_from_hidden = False  # LlamaConfig names head_dim
    remote_files = ("modeling_vtrans_llama.py",)
    remote_config = "VTransLlamaConfig"
    remote_classes = {
        "classification": {"AutoModel": "VTransLlamaModel", "AutoModelForSequenceClassification": "VTransLlamaForSequenceClassification"},
        "lm": {"AutoModel": "VTransLlamaModel", "AutoModelForCausalLM": "VTransLlamaForCausalLM"},
    }

    def uniform_hidden_step(self, heads: int, round_to: int) -> int:
        """transformers 5 checks that hidden_size is a multiple of num_attention_heads, head_dim notwithstanding."""
        return math.lcm(round_to, max(heads, 1))

    def uniform_problem(self, p: ModelShape) -> str | None:
        problem = super().uniform_problem(p)
        if problem is None and p.hidden % p.layers[0].heads:
            return f"its hidden width {p.hidden} is not a multiple of its {p.layers[0].heads} query heads (LlamaConfig checks that)"
        return problem

    def remote_code_config(self, p: ModelShape) -> dict[str, Any]:
        """transformers 5 checks hidden_size against the global num_attention_heads even where the modeling code
        reads the per-layer lists (AutoTokenizer loads the config with the stock LlamaConfig): the global head
        counts are 1, the per-layer lists hold the real ones."""
        cfg = super().remote_code_config(p)
        cfg["num_attention_heads"] = cfg["num_key_value_heads"] = 1
        return cfg

    def layer_params(self, s: ModelShape, H: Count, h: Count, g: Count, F: Count, attn_on: Count, ffn_on: Count) -> Count:
        d = s.head_dim
        attn = H + H * h * d + 2 * H * g * d + h * d * H + ((h * d + 2 * g * d + H) if s.attention_bias else 0)
        ffn = H + 3 * H * F + ((2 * F + H) if s.mlp_bias else 0)
        return attn_on * attn + ffn_on * ffn

    def embedding_params(self, s: ModelShape, H: Count) -> Count:
        return s.vocab * H

    def slice_weights(self, s: ModelShape, keep: KeepSet, sc: UnitScales, st: Slicer) -> None:
        hid = keep.hidden
        sh = sc.hidden[hid]
        st.put(f"{self.body_prefix}embed_tokens.weight", cols=hid, col_scale=sh)
        for i, l in enumerate(s.layers):
            p = f"{self.body_prefix}layers.{i}."
            if len(keep.heads[i]):
                g = keep.heads[i]
                qi, kvi = query_channels(g, l.group_size, s.head_dim), group_channels(g, s.head_dim)
                sq = sc.heads[i][g].repeat_interleave(l.group_size * s.head_dim)
                st.put(f"{p}input_layernorm.weight", rows=hid, row_scale=sh)
                st.put(f"{p}self_attn.q_proj.weight", rows=qi, cols=hid)
                st.put(f"{p}self_attn.k_proj.weight", rows=kvi, cols=hid)
                st.put(f"{p}self_attn.v_proj.weight", rows=kvi, cols=hid)
                st.put(f"{p}self_attn.o_proj.weight", rows=hid, cols=qi, row_scale=sh * sc.attn[i], col_scale=sq)
                if s.attention_bias:
                    st.put(f"{p}self_attn.q_proj.bias", rows=qi)
                    st.put(f"{p}self_attn.k_proj.bias", rows=kvi)
                    st.put(f"{p}self_attn.v_proj.bias", rows=kvi)
                    st.put(f"{p}self_attn.o_proj.bias", rows=hid, row_scale=sh * sc.attn[i])
            if len(keep.ffn[i]):
                fi = keep.ffn[i]
                st.put(f"{p}post_attention_layernorm.weight", rows=hid, row_scale=sh)
                for m in ("gate_proj", "up_proj"):
                    st.put(f"{p}mlp.{m}.weight", rows=fi, cols=hid)
                    if s.mlp_bias:
                        st.put(f"{p}mlp.{m}.bias", rows=fi)
                st.put(f"{p}mlp.down_proj.weight", rows=hid, cols=fi, row_scale=sh * sc.ffn_layer[i], col_scale=sc.ffn[i][fi])
                if s.mlp_bias:
                    st.put(f"{p}mlp.down_proj.bias", rows=hid, row_scale=sh * sc.ffn_layer[i])
        self.slice_head(s, hid, sh, st)


LLAMA = LlamaFamily()
