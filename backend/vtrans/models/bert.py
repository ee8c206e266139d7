"""BERT for sequence classification, as Hugging Face computes it (post-LayerNorm blocks, pooler, classifier).

Parameter names are Hugging Face's (`bert.encoder.layer.0.attention.self.query.weight`, ...), so checkpoints load
by name. Layers may have any number of heads and FFN neurons (pruned models); with 0 heads the attention
projections are absent but the block's LayerNorm stays, as in the hard-masked model.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..structure import LayerShape, ModelShape
from .common import NO_GATES, AttentionCapture, Gates, ModelOutput, activation, attend, layer_norm, padding_bias


def namespace(**children: nn.Module | None) -> nn.Module:
    """An empty module holding children under the given names (mirrors Hugging Face's nesting)."""
    m = nn.Module()
    for name, child in children.items():
        if child is not None:
            m.add_module(name, child)
    return m


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

    def forward(self, input_ids, token_type_ids, gates: Gates):
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = (
            self.word_embeddings(input_ids)
            + self.token_type_embeddings(token_type_ids)
            + self.position_embeddings(self.position_ids(input_ids))
        )
        return self.dropout(gates.scale_hidden(layer_norm(x, self.LayerNorm, gates)))


class BertLayer(nn.Module):
    def __init__(self, s: ModelShape, shape: LayerShape, act, eps: float, dropout: float, attn_dropout: float):
        super().__init__()
        H, d, h, F = s.hidden, s.head_dim, shape.heads, shape.ffn
        self.n_heads, self.head_dim = h, d
        attn_self = namespace(query=nn.Linear(H, h * d), key=nn.Linear(H, h * d), value=nn.Linear(H, h * d)) if h else None
        self.attention = namespace(
            **{"self": attn_self, "output": namespace(dense=nn.Linear(h * d, H) if h else None, LayerNorm=nn.LayerNorm(H, eps=eps))}
        )
        self.intermediate = namespace(dense=nn.Linear(H, F)) if F else None
        self.output = namespace(dense=nn.Linear(F, H) if F else None, LayerNorm=nn.LayerNorm(H, eps=eps))
        self.act = act
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = nn.Dropout(attn_dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, x, bias, gates: Gates, index: int, capture: AttentionCapture | None, use_sdpa: bool):
        out = self.attention.output
        if self.n_heads:
            sa = self.attention.self
            q, k, v = self._split(sa.query(x)), self._split(sa.key(x)), self._split(sa.value(x))
            p = self.attn_dropout.p if self.training else 0.0
            ctx = attend(q, k, v, bias, 1.0 / math.sqrt(self.head_dim), capture, index, use_sdpa, p)
            ctx = gates.scale_heads(index, ctx, 1)
            ctx = ctx.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
            a = gates.scale_hidden(gates.scale_attn(index, self.dropout(out.dense(ctx))))
            x = gates.scale_hidden(layer_norm(a + x, out.LayerNorm, gates))
        else:
            x = gates.scale_hidden(layer_norm(x, out.LayerNorm, gates))
        if self.intermediate is not None:
            h = gates.scale_ffn(index, self.act(self.intermediate.dense(x)))
            o = gates.scale_hidden(gates.scale_ffn_layer(index, self.dropout(self.output.dense(h))))
            x = gates.scale_hidden(layer_norm(o + x, self.output.LayerNorm, gates))
        else:
            x = gates.scale_hidden(layer_norm(x, self.output.LayerNorm, gates))
        return x


class BertEncoderModel(nn.Module):
    """The body: embeddings and blocks (Hugging Face's BertModel without the pooler)."""

    embeddings_class = BertEmbeddings

    def __init__(self, s: ModelShape):
        super().__init__()
        cfg = s.config
        eps = float(cfg.get("layer_norm_eps", 1e-12))
        dropout = float(cfg.get("hidden_dropout_prob", 0.1))
        act = activation(cfg.get("hidden_act", "gelu"), "config.json")
        self.embeddings = self.embeddings_class(s, eps, dropout)
        self.encoder = namespace(
            layer=nn.ModuleList(BertLayer(s, l, act, eps, dropout, float(cfg.get("attention_probs_dropout_prob", 0.1))) for l in s.layers)
        )
        self.use_sdpa = True

    def forward(self, input_ids, attention_mask, token_type_ids, gates: Gates, capture) -> list:
        x = self.embeddings(input_ids, token_type_ids, gates)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        bias = padding_bias(attention_mask, x.dtype, causal=False, q_len=input_ids.shape[1])
        states = [x]
        for i, layer in enumerate(self.encoder.layer):
            x = layer(x, bias, gates, i, capture, self.use_sdpa)
            states.append(x)
        return states


class BertForSequenceClassification(nn.Module):
    family = "bert"
    body_prefix = "bert."

    def __init__(self, s: ModelShape):
        super().__init__()
        self.shape = s
        self.bert = BertEncoderModel(s)
        self.bert.add_module("pooler", namespace(dense=nn.Linear(s.hidden, s.head_hidden)))
        cfg = s.config
        self.dropout = nn.Dropout(float(cfg.get("classifier_dropout") or cfg.get("hidden_dropout_prob", 0.1)))
        self.classifier = nn.Linear(s.head_hidden, max(s.num_labels, 1))

    @property
    def body(self) -> BertEncoderModel:
        return self.bert

    def run(
        self, input_ids, attention_mask=None, token_type_ids=None, gates: Gates = NO_GATES, capture: AttentionCapture | None = None
    ) -> ModelOutput:
        states = self.bert(input_ids, attention_mask, token_type_ids, gates, capture)
        pooled = torch.tanh(self.bert.pooler.dense(states[-1][:, 0]))
        return ModelOutput(self.classifier(self.dropout(pooled)), states)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return self.run(input_ids, attention_mask, token_type_ids).logits
