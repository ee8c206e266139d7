"""Physical pruning: from a keep-set and per-unit scales (the VIB μ), a smaller model whose logits equal the
hard-masked model's.

The units (DESIGN.md): hidden dimensions (one set for the whole residual stream), attention heads per key/value
group, FFN neurons; a layer whose heads (neurons) are all gone loses its attention (FFN) sublayer. Scales fold
into the weights that produce each unit's output: hidden scales into embeddings, norm weights and output
projection rows (a tied LM head gets the inverse scales in the final norm instead); head scales into the output projection's columns; neuron scales into the down projection's
columns; sublayer scales into the output projection. Norm statistics cover only the kept hidden dimensions, so the
masked model computes them the same way (`Gates.norm_dims`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .checkpoint import load_state
from .models import Gates, build_model
from .structure import LayerShape, ModelShape, shape_from_config


@dataclass
class KeepSet:
    """Indices of kept units: hidden dims, key/value groups per layer, FFN neurons per layer."""

    hidden: torch.Tensor
    heads: list[torch.Tensor]
    ffn: list[torch.Tensor]

    @staticmethod
    def full(s: ModelShape) -> KeepSet:
        return KeepSet(torch.arange(s.hidden), [torch.arange(l.kv_heads) for l in s.layers], [torch.arange(l.ffn) for l in s.layers])

    def counts(self) -> dict:
        return {"hidden": len(self.hidden), "heads": [len(h) for h in self.heads], "ffn": [len(f) for f in self.ffn]}

    def pruned_shape(self, s: ModelShape) -> ModelShape:
        layers = [LayerShape(len(g) * l.group_size, len(g), len(f)) for l, g, f in zip(s.layers, self.heads, self.ffn)]
        return s.with_layers(len(self.hidden), layers)


@dataclass
class UnitScales:
    """Per-unit multipliers (VIB μ of kept units); ones when the keep-set is applied as a plain mask."""

    hidden: torch.Tensor
    heads: list[torch.Tensor]
    attn: torch.Tensor
    ffn: list[torch.Tensor]
    ffn_layer: torch.Tensor

    @staticmethod
    def ones(s: ModelShape) -> UnitScales:
        return UnitScales(
            torch.ones(s.hidden),
            [torch.ones(l.kv_heads) for l in s.layers],
            torch.ones(s.n_layers),
            [torch.ones(l.ffn) for l in s.layers],
            torch.ones(s.n_layers),
        )


def masked_gates(s: ModelShape, keep: KeepSet, scales: UnitScales | None = None, device=None) -> Gates:
    """Gates that apply a keep-set as a hard mask (times the scales) to the unpruned model."""
    scales = scales or UnitScales.ones(s)

    def mask(n: int, idx: torch.Tensor) -> torch.Tensor:
        m = torch.zeros(n)
        m[idx] = 1.0
        return m

    hidden_mask = mask(s.hidden, keep.hidden)
    gates = Gates(hidden=scales.hidden * hidden_mask, norm_dims=hidden_mask)
    for i, l in enumerate(s.layers):
        gates.heads.append(scales.heads[i] * mask(l.kv_heads, keep.heads[i]))
        gates.attn.append(scales.attn[i] * float(len(keep.heads[i]) > 0))
        gates.ffn.append(scales.ffn[i] * mask(l.ffn, keep.ffn[i]))
        gates.ffn_layer.append(scales.ffn_layer[i] * float(len(keep.ffn[i]) > 0))
    if device is not None:
        gates = Gates(
            gates.hidden.to(device),
            gates.norm_dims.to(device),
            [g.to(device) for g in gates.heads],
            [g.to(device) for g in gates.attn],
            [g.to(device) for g in gates.ffn],
            [g.to(device) for g in gates.ffn_layer],
        )
    return gates


def query_channels(groups: torch.Tensor, group_size: int, head_dim: int) -> torch.Tensor:
    """Channel indices of the query heads of the kept key/value groups (query head j reads group j // group_size)."""
    heads = (groups[:, None] * group_size + torch.arange(group_size)[None, :]).reshape(-1)
    return (heads[:, None] * head_dim + torch.arange(head_dim)[None, :]).reshape(-1)


def group_channels(groups: torch.Tensor, head_dim: int) -> torch.Tensor:
    return (groups[:, None] * head_dim + torch.arange(head_dim)[None, :]).reshape(-1)


def pruned_config(s: ModelShape, p: ModelShape) -> dict:
    """The source config with the pruned sizes (docs/model-format.md)."""
    cfg = dict(s.config)
    cfg["n_embd" if s.family == "gpt2" else "hidden_size"] = p.hidden
    cfg["head_dim"] = s.head_dim
    cfg["layer_num_attention_heads"] = [l.heads for l in p.layers]
    if s.family == "llama":
        cfg["layer_num_key_value_heads"] = [l.kv_heads for l in p.layers]
    cfg["layer_intermediate_size"] = [l.ffn for l in p.layers]
    if s.family == "gpt2":
        cfg["n_inner"] = max(l.ffn for l in s.layers)
    if s.family in ("bert", "roberta"):
        cfg["head_hidden_size"] = s.head_hidden
    return cfg


class _Slicer:
    """Builds the pruned state dict: `rows`/`cols` select kept indices and multiply in scales."""

    def __init__(self, state: dict[str, torch.Tensor]):
        self.src = state
        self.out: dict[str, torch.Tensor] = {}

    def put(self, name: str, rows=None, cols=None, row_scale=None, col_scale=None, source: str | None = None) -> None:
        t = self.src[source or name]
        if rows is not None:
            t = t.index_select(0, rows)
        if cols is not None:
            t = t.index_select(1, cols)
        if row_scale is not None:
            t = t * (row_scale[:, None] if t.dim() == 2 else row_scale)
        if col_scale is not None:
            t = t * col_scale[None, :]
        self.out[name] = t

    def has(self, name: str) -> bool:
        return name in self.src


def _prune_bert(s: ModelShape, keep: KeepSet, sc: UnitScales, st: _Slicer, prefix: str) -> None:
    hid = keep.hidden
    sh = sc.hidden[hid]
    e = f"{prefix}embeddings."
    for n in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        st.put(f"{e}{n}.weight", cols=hid)
    for n in ("weight", "bias"):
        st.put(f"{e}LayerNorm.{n}", rows=hid, row_scale=sh)
    for i in range(s.n_layers):
        p = f"{prefix}encoder.layer.{i}."
        if len(keep.heads[i]):
            qi = query_channels(keep.heads[i], 1, s.head_dim)
            sq = sc.heads[i][keep.heads[i]].repeat_interleave(s.head_dim)
            for m in ("query", "key", "value"):
                st.put(f"{p}attention.self.{m}.weight", rows=qi, cols=hid)
                st.put(f"{p}attention.self.{m}.bias", rows=qi)
            st.put(f"{p}attention.output.dense.weight", rows=hid, cols=qi, row_scale=sh * sc.attn[i], col_scale=sq)
            st.put(f"{p}attention.output.dense.bias", rows=hid, row_scale=sh * sc.attn[i])
        if len(keep.ffn[i]):
            fi = keep.ffn[i]
            st.put(f"{p}intermediate.dense.weight", rows=fi, cols=hid)
            st.put(f"{p}intermediate.dense.bias", rows=fi)
            st.put(f"{p}output.dense.weight", rows=hid, cols=fi, row_scale=sh * sc.ffn_layer[i], col_scale=sc.ffn[i][fi])
            st.put(f"{p}output.dense.bias", rows=hid, row_scale=sh * sc.ffn_layer[i])
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            for n in ("weight", "bias"):
                st.put(f"{p}{ln}.{n}", rows=hid, row_scale=sh)
    if s.family == "bert":
        st.put(f"{prefix}pooler.dense.weight", cols=hid)
        st.put(f"{prefix}pooler.dense.bias")
        st.put("classifier.weight")
        st.put("classifier.bias")
    else:
        st.put("classifier.dense.weight", cols=hid)
        for n in ("classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias"):
            st.put(n)


def _prune_gpt2(s: ModelShape, keep: KeepSet, sc: UnitScales, st: _Slicer) -> None:
    hid = keep.hidden
    sh = sc.hidden[hid]
    t = "transformer."
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
    _prune_decoder_head(s, hid, sh, st, norm=f"{t}ln_f", embedding=f"{t}wte.weight")


def _prune_llama(s: ModelShape, keep: KeepSet, sc: UnitScales, st: _Slicer) -> None:
    hid = keep.hidden
    sh = sc.hidden[hid]
    st.put("model.embed_tokens.weight", cols=hid, col_scale=sh)
    for i, l in enumerate(s.layers):
        p = f"model.layers.{i}."
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
    _prune_decoder_head(s, hid, sh, st, norm="model.norm", embedding="model.embed_tokens.weight")


def _prune_decoder_head(s: ModelShape, hid: torch.Tensor, sh: torch.Tensor, st: _Slicer, norm: str, embedding: str) -> None:
    """The final norm's output is only masked (not scaled). An LM head tied to the input embeddings, which now
    carry the hidden scales, reads the norm output divided by those scales: folded into the norm's weights.

    A kept dimension whose gate closed (scale 0, as hard-concrete gates give when the budget is filled back with
    closed units) has a zero column in the tied head, so nothing can reach the logits through it: its norm weight
    becomes 0 rather than 1/0."""
    tied = s.task == "lm" and s.tied_embeddings
    inverse = torch.where(sh.abs() > 1e-12, sh.reciprocal(), torch.zeros_like(sh))
    for n in ("weight", "bias"):
        if st.has(f"{norm}.{n}"):
            st.put(f"{norm}.{n}", rows=hid, row_scale=inverse if tied else None)
    if s.task == "lm" and not tied:
        st.put("lm_head.weight", cols=hid)
    elif s.task != "lm":
        st.put("score.weight", cols=hid)


def prune_model(model: nn.Module, keep: KeepSet, scales: UnitScales | None = None) -> nn.Module:
    """A new, smaller model with only the kept units and the scales folded in (the source is left unchanged)."""
    s: ModelShape = model.shape
    scales = scales or UnitScales.ones(s)
    keep = KeepSet(keep.hidden.sort().values, [h.sort().values for h in keep.heads], [f.sort().values for f in keep.ffn])
    p = keep.pruned_shape(s)
    cfg = pruned_config(s, p)
    target = build_model(shape_from_config(cfg, "pruned config", s.task))
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    st = _Slicer(state)
    with torch.no_grad():
        if s.family in ("bert", "roberta"):
            _prune_bert(s, keep, scales, st, model.body_prefix)
        elif s.family == "gpt2":
            _prune_gpt2(s, keep, scales, st)
        else:
            _prune_llama(s, keep, scales, st)
    load_state(target, st.out, "pruned weights")
    return target.eval()
