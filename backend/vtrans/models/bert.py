"""BERT for sequence classification, as Hugging Face computes it (post-LayerNorm blocks, pooler, classifier), and
everything else VTrans knows of the family (`BERT`): its config fields, size accounting and weight slicing.

Parameter names are Hugging Face's (`bert.encoder.layer.0.attention.self.query.weight`, ...), so checkpoints load
by name. Layers may have any number of heads and FFN neurons (pruned models); with 0 heads the attention
projections are absent but the block's LayerNorm stays, as in the hard-masked model. RoBERTa (roberta.py) shares
the body.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, cast

import torch
from torch import nn

from ..structure import ConfigReader, Count, LayerShape, ModelShape
from .common import (
    NO_GATES,
    AttentionCapture,
    Block,
    Body,
    Family,
    Gates,
    ModelOutput,
    Slicer,
    UnitWeight,
    VTransModel,
    activation,
    attend,
    layer_norm,
    padding_bias,
    query_channels,
)

if TYPE_CHECKING:
    from ..prune import KeepSet, UnitScales


class BertEmbeddings(nn.Module):
    def __init__(self, s: ModelShape, eps: float, dropout: float):
        super().__init__()
        self.word_embeddings = nn.Embedding(s.vocab, s.hidden)
        self.position_embeddings = nn.Embedding(s.max_positions, s.hidden)
        self.token_type_embeddings = nn.Embedding(max(s.type_vocab, 1), s.hidden)
        self.LayerNorm = nn.LayerNorm(s.hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def position_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0).expand_as(input_ids)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, gates: Gates) -> torch.Tensor:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = (
            self.word_embeddings(input_ids)
            + self.token_type_embeddings(token_type_ids)
            + self.position_embeddings(self.position_ids(input_ids))
        )
        return self.dropout(layer_norm(x, self.LayerNorm, gates))


class BertSelfAttention(nn.Module):
    def __init__(self, hidden: int, width: int):
        super().__init__()
        self.query = nn.Linear(hidden, width)
        self.key = nn.Linear(hidden, width)
        self.value = nn.Linear(hidden, width)


class BertOutput(nn.Module):
    """`attention.output` and `output`: a sublayer's output projection (absent with the sublayer) and the post-LN
    LayerNorm, which stays either way."""

    def __init__(self, n_in: int, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(n_in, hidden) if n_in else None
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(
        self,
        h: torch.Tensor | None,
        x: torch.Tensor,
        gates: Gates,
        write: Callable[[torch.Tensor], torch.Tensor],
        dropout: nn.Dropout,
    ) -> torch.Tensor:
        if self.dense is not None and h is not None:
            x = write(dropout(self.dense(h))) + x
        return layer_norm(x, self.LayerNorm, gates)


class BertAttention(nn.Module):
    def __init__(self, hidden: int, width: int, eps: float):
        super().__init__()
        self.self = BertSelfAttention(hidden, width) if width else None
        self.output = BertOutput(width, hidden, eps)


class BertIntermediate(nn.Module):
    def __init__(self, hidden: int, ffn: int):
        super().__init__()
        self.dense = nn.Linear(hidden, ffn)


class BertLayer(Block):
    def __init__(self, s: ModelShape, shape: LayerShape, act, eps: float, dropout: float, attn_dropout: float):
        super().__init__()
        H, d, h, F = s.hidden, s.head_dim, shape.heads, shape.ffn
        self.n_heads, self.head_dim = h, d
        self.attention = BertAttention(H, h * d, eps)
        self.intermediate = BertIntermediate(H, F) if F else None
        self.output = BertOutput(F, H, eps)
        self.act = act
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = nn.Dropout(attn_dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

    def _context(self, sa: BertSelfAttention, x, bias, gates: Gates, index: int, capture: AttentionCapture | None, use_sdpa: bool):
        q, k, v = self._split(sa.query(x)), self._split(sa.key(x)), self._split(sa.value(x))
        p = self.attn_dropout.p if self.training else 0.0
        ctx = attend(q, k, v, bias, 1.0 / math.sqrt(self.head_dim), capture, index, use_sdpa, p)
        ctx = gates.scale_heads(index, ctx, 1)
        return ctx.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)

    def forward(self, x, bias, gates: Gates, index: int, capture: AttentionCapture | None, use_sdpa: bool):
        sa = self.attention.self
        ctx = None if sa is None else self._context(sa, x, bias, gates, index, capture, use_sdpa)
        x = self.attention.output(ctx, x, gates, lambda a: gates.write("attn", index, a), self.dropout)
        act = None if self.intermediate is None else gates.scale_ffn(index, self.act(self.intermediate.dense(x)))
        return self.output(act, x, gates, lambda o: gates.write("ffn", index, o), self.dropout)

    def unit_weights(self) -> list[UnitWeight]:
        d = self.head_dim
        out = []
        sa, proj = self.attention.self, self.attention.output.dense
        if sa is not None and proj is not None:
            out += [UnitWeight("heads", m.weight, 0, d) for m in (sa.query, sa.key, sa.value)]
            out.append(UnitWeight("heads", proj.weight, 1, d))
        if self.intermediate is not None and self.output.dense is not None:
            out += [UnitWeight("ffn", self.intermediate.dense.weight, 0, 1), UnitWeight("ffn", self.output.dense.weight, 1, 1)]
        return out


class BertEncoder(nn.Module):
    def __init__(self, layers: list[BertLayer]):
        super().__init__()
        self.layer = nn.ModuleList(layers)


class BertEncoderModel(Body):
    """The body: embeddings and blocks (Hugging Face's BertModel without the pooler)."""

    embeddings_class: ClassVar[type[BertEmbeddings]] = BertEmbeddings

    def __init__(self, s: ModelShape):
        super().__init__(s)
        cfg = s.config
        eps = float(cfg.get("layer_norm_eps", 1e-12))
        dropout = float(cfg.get("hidden_dropout_prob", 0.1))
        act = activation(cfg.get("hidden_act", "gelu"), "config.json")
        attn_dropout = float(cfg.get("attention_probs_dropout_prob", 0.1))
        self.embeddings = self.embeddings_class(s, eps, dropout)
        self.encoder = BertEncoder([BertLayer(s, l, act, eps, dropout, attn_dropout) for l in s.layers])

    @property
    def input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def blocks(self) -> list[Block]:
        return [cast(Block, b) for b in self.encoder.layer]

    def forward(self, input_ids, attention_mask, token_type_ids, gates: Gates, capture) -> list[torch.Tensor]:
        x = self.embeddings(input_ids, token_type_ids, gates)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        bias = padding_bias(attention_mask, x.dtype, causal=False, q_len=input_ids.shape[1])
        states = [x]
        for i, layer in enumerate(self.encoder.layer):
            x = self.block(layer, x, bias, gates, i, capture, self.use_sdpa)
            states.append(x)
        return states


class BertPooler(nn.Module):
    def __init__(self, hidden: int, out: int):
        super().__init__()
        self.dense = nn.Linear(hidden, out)


class BertModel(BertEncoderModel):
    """Hugging Face's BertModel: the body with the pooler on the [CLS] token."""

    def __init__(self, s: ModelShape):
        super().__init__(s)
        self.pooler = BertPooler(s.hidden, s.head_hidden)


class BertForSequenceClassification(VTransModel):
    body_prefix = "bert."
    body_class = BertModel
    bert: BertModel

    def __init__(self, s: ModelShape):
        super().__init__(s)
        cfg = s.config
        self.dropout = nn.Dropout(float(cfg.get("classifier_dropout") or cfg.get("hidden_dropout_prob", 0.1)))
        self.classifier = nn.Linear(s.head_hidden, max(s.num_labels, 1))

    def run(self, input_ids, attention_mask=None, token_type_ids=None, gates: Gates = NO_GATES, capture=None) -> ModelOutput:
        states = self.bert(input_ids, attention_mask, token_type_ids, gates, capture)
        pooled = torch.tanh(self.bert.pooler.dense(states[-1][:, 0]))
        return ModelOutput(self.classifier(self.dropout(pooled)), states)


class BertFamily(Family):
    name = "bert"
    body_prefix = "bert."
    classes = {"classification": BertForSequenceClassification}
    new_head_weights: ClassVar[tuple[str, ...]] = ("classifier.", "bert.pooler.")
    unused_weights = ("embeddings.position_ids",)
    default_type_vocab = 2

    def shape_from_config(self, c: ConfigReader, task: str | None) -> ModelShape:
        hidden = c.num("hidden_size")
        n_layers = c.num("num_hidden_layers")
        heads = c.num("num_attention_heads")
        head_dim = c.head_dim(hidden, heads, heads)
        layers = c.layers(n_layers, heads, heads, c.num("intermediate_size"), grouped_query=False)
        labels = c.labels
        return ModelShape(
            family=self.name,
            hidden=hidden,
            head_dim=head_dim,
            layers=layers,
            vocab=c.num("vocab_size"),
            max_positions=c.num("max_position_embeddings", 2048),
            type_vocab=c.num("type_vocab_size", self.default_type_vocab),
            num_labels=labels,
            task=task or self.default_task(labels),
            tied_embeddings=c.flag("tie_word_embeddings", True),
            head_hidden=c.num("head_hidden_size", hidden),
            config=c.cfg,
        )

    def pruned_config_extras(self, s: ModelShape) -> dict:
        return {"head_hidden_size": s.head_hidden}  # the pooler's output keeps its width; its input is pruned

    def pruned_config(self, s: ModelShape, p: ModelShape) -> dict[str, Any]:
        cfg = super().pruned_config(s, p)
        cfg["head_hidden_size"] = p.head_hidden  # narrower only in the uniform shape (`uniform_head`)
        return cfg

    def layer_params(self, s: ModelShape, H: Count, h: Count, g: Count, F: Count, attn_on: Count, ffn_on: Count) -> Count:
        d = s.head_dim
        attn = 3 * (H * h * d + h * d) + h * d * H + H
        ffn = 2 * H * F + F + H
        return attn_on * attn + ffn_on * ffn + 4 * H  # both post-LN LayerNorms stay

    def embedding_params(self, s: ModelShape, H: Count) -> Count:
        return (s.vocab + s.max_positions + s.type_vocab) * H + 2 * H

    def head_params(self, s: ModelShape, H: Count) -> Count:
        C, P = s.num_labels, s.head_hidden
        return H * P + P + (P * C + C if C else 0)

    def classifier_flops(self, s: ModelShape, H: Count) -> Count:
        return 2 * H * s.head_hidden + 2 * s.head_hidden * s.num_labels

    def slice_weights(self, s: ModelShape, keep: KeepSet, sc: UnitScales, st: Slicer) -> None:
        hid = keep.hidden
        sh = sc.hidden[hid]
        e = f"{self.body_prefix}embeddings."
        for n in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
            st.put(f"{e}{n}.weight", cols=hid)
        for n in ("weight", "bias"):
            st.put(f"{e}LayerNorm.{n}", rows=hid, row_scale=sh)
        for i in range(s.n_layers):
            self._slice_layer(s, i, keep, sc, st)
        self.slice_head(hid, st, keep.head_dims)

    def _slice_layer(self, s: ModelShape, i: int, keep: KeepSet, sc: UnitScales, st: Slicer) -> None:
        hid = keep.hidden
        sh = sc.hidden[hid]
        p = f"{self.body_prefix}encoder.layer.{i}."
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

    def slice_head(self, hid: torch.Tensor, st: Slicer, outputs: torch.Tensor | None = None) -> None:
        """The pooler reads the kept hidden dimensions; its output and the classifier are unchanged, unless the
        uniform shape keeps only some pooler outputs (`outputs`)."""
        st.put(f"{self.body_prefix}pooler.dense.weight", rows=outputs, cols=hid)
        st.put(f"{self.body_prefix}pooler.dense.bias", rows=outputs)
        st.put("classifier.weight", cols=outputs)
        st.put("classifier.bias")

    # -- output shapes ----------------------------------------------------------------------------------------

    remote_files: ClassVar[tuple[str, ...]] = ("modeling_vtrans_bert.py",)
    remote_config = "VTransBertConfig"
    remote_classes: ClassVar[dict[str, dict[str, str]]] = {
        "classification": {"AutoModel": "VTransBertModel", "AutoModelForSequenceClassification": "VTransBertForSequenceClassification"}
    }
    # The classifier's weight that reads the pooler's (tanh) outputs, one column each.
    head_reader = "classifier.weight"

    def uniform_shape(self, s: ModelShape, hidden: int, kv_heads: int, ffn: int) -> ModelShape:
        """The standard config's pooler (RoBERTa: classifier dense layer) is hidden × hidden."""
        return replace(super().uniform_shape(s, hidden, kv_heads, ffn), head_hidden=hidden)

    def uniform_problem(self, p: ModelShape) -> str | None:
        if p.head_hidden != p.hidden:
            return f"its pooler has {p.head_hidden} outputs, not its hidden width {p.hidden}"
        return super().uniform_problem(p)

    def uniform_head(self, model: VTransModel, hidden: int) -> torch.Tensor | None:
        """The pooler outputs the uniform shape keeps: it has as many as the hidden width. A dropped output j
        changes logit i by at most |C[i, j]| (it is a tanh, in [-1, 1]), so the outputs whose classifier columns
        have the largest L1 norms stay."""
        reader = dict(model.named_parameters())[self.head_reader].detach().float().cpu()
        if hidden >= reader.shape[1]:
            return None
        return torch.sort(reader.abs().sum(0), descending=True, stable=True).indices[:hidden].sort().values


BERT = BertFamily()
