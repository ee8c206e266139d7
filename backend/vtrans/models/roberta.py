"""RoBERTa for sequence classification: BERT's body with position ids that skip padding (counted from
`pad_token_id + 1`, as Hugging Face derives them from the input ids) and a two-layer head on the <s> token."""

from __future__ import annotations

import torch
from torch import nn

from ..structure import ModelShape
from .bert import BertEmbeddings, BertEncoderModel, namespace
from .common import NO_GATES, AttentionCapture, Gates, ModelOutput


class RobertaEmbeddings(BertEmbeddings):
    def __init__(self, s: ModelShape, eps: float, dropout: float):
        super().__init__(s, eps, dropout)
        self.padding_idx = int(s.config.get("pad_token_id", 1))

    def position_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = input_ids.ne(self.padding_idx).to(torch.int64)
        return torch.cumsum(mask, dim=1) * mask + self.padding_idx


class RobertaEncoderModel(BertEncoderModel):
    embeddings_class = RobertaEmbeddings


class RobertaForSequenceClassification(nn.Module):
    family = "roberta"
    body_prefix = "roberta."

    def __init__(self, s: ModelShape):
        super().__init__()
        self.shape = s
        self.roberta = RobertaEncoderModel(s)
        cfg = s.config
        self.dropout = nn.Dropout(float(cfg.get("classifier_dropout") or cfg.get("hidden_dropout_prob", 0.1)))
        self.classifier = namespace(dense=nn.Linear(s.hidden, s.head_hidden), out_proj=nn.Linear(s.head_hidden, max(s.num_labels, 1)))

    @property
    def body(self) -> RobertaEncoderModel:
        return self.roberta

    def run(
        self, input_ids, attention_mask=None, token_type_ids=None, gates: Gates = NO_GATES, capture: AttentionCapture | None = None
    ) -> ModelOutput:
        states = self.roberta(input_ids, attention_mask, token_type_ids, gates, capture)
        x = torch.tanh(self.classifier.dense(self.dropout(states[-1][:, 0])))
        return ModelOutput(self.classifier.out_proj(self.dropout(x)), states)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return self.run(input_ids, attention_mask, token_type_ids).logits
