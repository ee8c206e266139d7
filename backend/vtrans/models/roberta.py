"""RoBERTa for sequence classification: BERT's body with position ids that skip padding (counted from
`pad_token_id + 1`, as Hugging Face derives them from the input ids) and a two-layer head on the <s> token; the
family (`ROBERTA`) is BERT's but for that head and one segment type by default."""

from __future__ import annotations

import torch
from torch import nn

from ..structure import Count, ModelShape
from .bert import BertEmbeddings, BertEncoderModel, BertFamily
from .common import NO_GATES, Gates, ModelOutput, Slicer, VTransModel


class RobertaEmbeddings(BertEmbeddings):
    def __init__(self, s: ModelShape, eps: float, dropout: float):
        super().__init__(s, eps, dropout)
        self.padding_idx = int(s.config.get("pad_token_id", 1))

    def position_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = input_ids.ne(self.padding_idx).to(torch.int64)
        return torch.cumsum(mask, dim=1) * mask + self.padding_idx


class RobertaEncoderModel(BertEncoderModel):
    embeddings_class = RobertaEmbeddings


class RobertaClassificationHead(nn.Module):
    def __init__(self, hidden: int, head_hidden: int, labels: int):
        super().__init__()
        self.dense = nn.Linear(hidden, head_hidden)
        self.out_proj = nn.Linear(head_hidden, labels)


class RobertaForSequenceClassification(VTransModel):
    body_prefix = "roberta."
    body_class = RobertaEncoderModel
    roberta: RobertaEncoderModel

    def __init__(self, s: ModelShape):
        super().__init__(s)
        cfg = s.config
        self.dropout = nn.Dropout(float(cfg.get("classifier_dropout") or cfg.get("hidden_dropout_prob", 0.1)))
        self.classifier = RobertaClassificationHead(s.hidden, s.head_hidden, max(s.num_labels, 1))

    def run(self, input_ids, attention_mask=None, token_type_ids=None, gates: Gates = NO_GATES, capture=None) -> ModelOutput:
        states = self.roberta(input_ids, attention_mask, token_type_ids, gates, capture)
        x = torch.tanh(self.classifier.dense(self.dropout(states[-1][:, 0])))
        return ModelOutput(self.classifier.out_proj(self.dropout(x)), states)


class RobertaFamily(BertFamily):
    name = "roberta"
    body_prefix = "roberta."
    classes = {"classification": RobertaForSequenceClassification}
    new_head_weights = ("classifier.",)
    default_type_vocab = 1

    def head_params(self, s: ModelShape, H: Count) -> Count:
        C, P = s.num_labels, s.head_hidden
        return H * P + P + P * C + C if C else 0  # no pooler: the head's dense layer takes its place

    def slice_head(self, hid: torch.Tensor, st: Slicer, outputs: torch.Tensor | None = None) -> None:
        st.put("classifier.dense.weight", rows=outputs, cols=hid)
        st.put("classifier.dense.bias", rows=outputs)
        st.put("classifier.out_proj.weight", cols=outputs)
        st.put("classifier.out_proj.bias")

    remote_files = ("modeling_vtrans_roberta.py", "modeling_vtrans_bert.py")
    remote_config = "VTransRobertaConfig"
    remote_classes = {
        "classification": {
            "AutoModel": "VTransRobertaModel",
            "AutoModelForSequenceClassification": "VTransRobertaForSequenceClassification",
        }
    }
    head_reader = "classifier.out_proj.weight"


ROBERTA = RobertaFamily()
