"""GPT-2 as Hugging Face computes it: pre-LayerNorm blocks, Conv1D weights stored (in, out), learned positions,
a causal LM head tied to the token embeddings, or a sequence classifier read at the last non-padding token; and the
family (`GPT2`): its config fields (`n_embd`, `n_layer`, `n_head`, `n_inner`, `n_positions`), size accounting and
weight slicing.

Parameter names are Hugging Face's (`transformer.h.0.attn.c_attn.weight`, ...). Pruned models may have any
number of heads and FFN neurons per layer (0 removes the sublayer with its LayerNorm) and an untied LM head
(the hidden-dimension scales folded into the embeddings must not reach the output projection).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from ..structure import ConfigReader, Count, LayerShape, ModelShape
from .common import (
    AttentionCapture,
    Block,
    Body,
    CausalLM,
    DecoderFamily,
    Gates,
    LastTokenClassifier,
    Slicer,
    UnitWeight,
    activation,
    attend,
    layer_norm,
    padding_bias,
    query_channels,
)

if TYPE_CHECKING:
    from ..prune import KeepSet, UnitScales


class Conv1D(nn.Module):
    """Hugging Face's GPT-2 linear layer: weight (in, out), y = x W + b."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out).normal_(std=0.02))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


class GPT2Attention(nn.Module):
    def __init__(self, hidden: int, width: int):
        super().__init__()
        self.c_attn = Conv1D(hidden, 3 * width)  # q | k | v
        self.c_proj = Conv1D(width, hidden)


class GPT2MLP(nn.Module):
    def __init__(self, hidden: int, ffn: int):
        super().__init__()
        self.c_fc = Conv1D(hidden, ffn)
        self.c_proj = Conv1D(ffn, hidden)


class GPT2Block(Block):
    def __init__(self, s: ModelShape, shape: LayerShape, index: int):
        super().__init__()
        cfg = s.config
        H, d, h, F = s.hidden, s.head_dim, shape.heads, shape.ffn
        eps = float(cfg.get("layer_norm_epsilon", 1e-5))
        self.n_heads, self.head_dim = h, d
        self.scale = (1.0 / math.sqrt(d) if cfg.get("scale_attn_weights", True) else 1.0) / (
            index + 1 if cfg.get("scale_attn_by_inverse_layer_idx", False) else 1
        )
        # A removed sublayer takes its LayerNorm with it (pre-LN).
        self.ln_1 = nn.LayerNorm(H, eps=eps) if h else None
        self.attn = GPT2Attention(H, h * d) if h else None
        self.ln_2 = nn.LayerNorm(H, eps=eps) if F else None
        self.mlp = GPT2MLP(H, F) if F else None
        self.act = activation(cfg.get("activation_function", "gelu_new"), "config.json")
        self.dropout = nn.Dropout(float(cfg.get("resid_pdrop", 0.1)))
        self.attn_dropout_p = float(cfg.get("attn_pdrop", 0.1))

    def forward(self, x, bias, gates: Gates, index: int, capture: AttentionCapture | None, use_sdpa: bool):
        b, t, _ = x.shape
        if self.attn is not None and self.ln_1 is not None:
            qkv = self.attn.c_attn(layer_norm(x, self.ln_1, gates))
            q, k, v = (z.view(b, t, self.n_heads, self.head_dim).transpose(1, 2) for z in qkv.split(self.n_heads * self.head_dim, dim=2))
            p = self.attn_dropout_p if self.training else 0.0
            ctx = gates.scale_heads(index, attend(q, k, v, bias, self.scale, capture, index, use_sdpa, p), 1)
            a = self.dropout(self.attn.c_proj(ctx.transpose(1, 2).reshape(b, t, -1)))
            x = x + gates.write("attn", index, a)
        if self.mlp is not None and self.ln_2 is not None:
            h = gates.scale_ffn(index, self.act(self.mlp.c_fc(layer_norm(x, self.ln_2, gates))))
            o = self.dropout(self.mlp.c_proj(h))
            x = x + gates.write("ffn", index, o)
        return x

    def unit_weights(self) -> list[UnitWeight]:
        d = self.head_dim
        out = []
        if self.attn is not None:
            q_k_v = self.attn.c_attn.weight.split(self.n_heads * d, dim=1)  # Conv1D: (in, out)
            out += [UnitWeight("heads", part, 1, d) for part in q_k_v]
            out.append(UnitWeight("heads", self.attn.c_proj.weight, 0, d))
        if self.mlp is not None:
            out += [UnitWeight("ffn", self.mlp.c_fc.weight, 1, 1), UnitWeight("ffn", self.mlp.c_proj.weight, 0, 1)]
        return out


class GPT2Model(Body):
    def __init__(self, s: ModelShape):
        super().__init__(s)
        self.wte = nn.Embedding(s.vocab, s.hidden)
        self.wpe = nn.Embedding(s.max_positions, s.hidden)
        self.drop = nn.Dropout(float(s.config.get("embd_pdrop", 0.1)))
        self.h = nn.ModuleList(GPT2Block(s, l, i) for i, l in enumerate(s.layers))
        self.ln_f = nn.LayerNorm(s.hidden, eps=float(s.config.get("layer_norm_epsilon", 1e-5)))

    @property
    def input_embeddings(self) -> nn.Embedding:
        return self.wte

    def blocks(self) -> list[Block]:
        return [cast(Block, b) for b in self.h]

    def forward(self, input_ids, attention_mask, gates: Gates, capture) -> list[torch.Tensor]:
        pos = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = gates.scale_hidden(self.drop(self.wte(input_ids) + self.wpe(pos)))
        bias = padding_bias(attention_mask, x.dtype, causal=True, q_len=input_ids.shape[1], device=x.device)
        states = [x]
        for i, block in enumerate(self.h):
            x = self.block(block, x, bias, gates, i, capture, self.use_sdpa)
            states.append(x)
        states[-1] = gates.mask_hidden(layer_norm(x, self.ln_f, gates, scaled=False))
        return states


class GPT2LMHeadModel(CausalLM):
    body_prefix = "transformer."
    body_class = GPT2Model


class GPT2ForSequenceClassification(LastTokenClassifier):
    body_prefix = "transformer."
    body_class = GPT2Model


class GPT2Family(DecoderFamily):
    name = "gpt2"
    body_prefix = "transformer."
    classes = {"classification": GPT2ForSequenceClassification, "lm": GPT2LMHeadModel}
    new_head_weights = ("score.",)
    unused_weights = (".attn.bias", ".attn.masked_bias", "lm_head.weight")  # causal-mask buffers; the tied head
    hidden_key = "n_embd"
    final_norm = "transformer.ln_f"
    norm_vectors = 2

    def shape_from_config(self, c: ConfigReader, task: str | None) -> ModelShape:
        hidden = c.num("n_embd")
        n_layers = c.num("n_layer")
        heads = c.num("n_head")
        head_dim = c.head_dim(hidden, heads, heads)
        layers = c.layers(n_layers, heads, heads, c.num("n_inner", 4 * hidden), grouped_query=False)
        labels = c.labels
        return ModelShape(
            family=self.name,
            hidden=hidden,
            head_dim=head_dim,
            layers=layers,
            vocab=c.num("vocab_size"),
            max_positions=c.num("n_positions", 1024),
            type_vocab=0,
            num_labels=labels,
            task=task or self.default_task(labels),
            tied_embeddings=c.flag("tie_word_embeddings", True),
            config=c.cfg,
        )

    def pruned_config_extras(self, s: ModelShape) -> dict:
        return {"n_inner": max(l.ffn for l in s.layers)}  # its default (4 × n_embd) would follow the pruned width

    heads_key = "n_head"
    ffn_key = "n_inner"
    remote_files = ("modeling_vtrans_gpt2.py",)
    remote_config = "VTransGPT2Config"
    remote_classes = {
        "classification": {"AutoModel": "VTransGPT2Model", "AutoModelForSequenceClassification": "VTransGPT2ForSequenceClassification"},
        "lm": {"AutoModel": "VTransGPT2Model", "AutoModelForCausalLM": "VTransGPT2LMHeadModel"},
    }

    def layer_params(self, s: ModelShape, H: Count, h: Count, g: Count, F: Count, attn_on: Count, ffn_on: Count) -> Count:
        d = s.head_dim
        attn = 2 * H + H * 3 * h * d + 3 * h * d + h * d * H + H
        ffn = 2 * H + H * F + F + F * H + H
        return attn_on * attn + ffn_on * ffn

    def embedding_params(self, s: ModelShape, H: Count) -> Count:
        return (s.vocab + s.max_positions) * H

    def slice_weights(self, s: ModelShape, keep: KeepSet, sc: UnitScales, st: Slicer) -> None:
        hid = keep.hidden
        sh = sc.hidden[hid]
        t = self.body_prefix
        st.put(f"{t}wte.weight", cols=hid, col_scale=sh)
        st.put(f"{t}wpe.weight", cols=hid, col_scale=sh)
        for i, l in enumerate(s.layers):
            p = f"{t}h.{i}."
            hd = l.heads * s.head_dim
            if len(keep.heads[i]):
                qi = query_channels(keep.heads[i], 1, s.head_dim)
                sq = sc.heads[i][keep.heads[i]].repeat_interleave(s.head_dim)
                qkv = torch.cat([qi, qi + hd, qi + 2 * hd])
                for n in ("weight", "bias"):
                    st.put(f"{p}ln_1.{n}", rows=hid, row_scale=sh)
                st.put(f"{p}attn.c_attn.weight", rows=hid, cols=qkv)
                st.put(f"{p}attn.c_attn.bias", rows=qkv)
                st.put(f"{p}attn.c_proj.weight", rows=qi, cols=hid, row_scale=sq, col_scale=sh * sc.attn[i])
                st.put(f"{p}attn.c_proj.bias", rows=hid, row_scale=sh * sc.attn[i])
            if len(keep.ffn[i]):
                fi = keep.ffn[i]
                for n in ("weight", "bias"):
                    st.put(f"{p}ln_2.{n}", rows=hid, row_scale=sh)
                st.put(f"{p}mlp.c_fc.weight", rows=hid, cols=fi)
                st.put(f"{p}mlp.c_fc.bias", rows=fi)
                st.put(f"{p}mlp.c_proj.weight", rows=fi, cols=hid, row_scale=sc.ffn[i][fi], col_scale=sh * sc.ffn_layer[i])
                st.put(f"{p}mlp.c_proj.bias", rows=hid, row_scale=sh * sc.ffn_layer[i])
        self.slice_head(s, hid, sh, st)


GPT2 = GPT2Family()
