"""RoBERTa with per-layer sizes, as VTrans prunes it, for Hugging Face `transformers` (`trust_remote_code=True`).

BERT's pruned body (modeling_vtrans_bert.py, next to this file: see its docstring for the config fields) with
RoBERTa's position ids, which skip padding (counted from `pad_token_id + 1`), and RoBERTa's classification head on
the <s> token: a dense layer (`head_hidden_size` outputs) and `out_proj`.

    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import RobertaConfig
from transformers.modeling_outputs import SequenceClassifierOutput

from .modeling_vtrans_bert import (
    VTransBertConfig,
    VTransBertEmbeddings,
    VTransBertModel,
    VTransBertPreTrainedModel,
    classification_loss,
)


class VTransRobertaConfig(RobertaConfig):
    """RoBERTa's config with VTrans's per-layer sizes; `hidden_size` need not be a multiple of the heads."""

    validate_architecture = VTransBertConfig.validate_architecture


class VTransRobertaEmbeddings(VTransBertEmbeddings):
    def __init__(self, config):
        super().__init__(config)
        self.padding_idx = config.pad_token_id

    def position_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = input_ids.ne(self.padding_idx).to(torch.int64)
        return torch.cumsum(mask, dim=1) * mask + self.padding_idx


class VTransRobertaPreTrainedModel(VTransBertPreTrainedModel):
    config_class = VTransRobertaConfig  # type: ignore[assignment]  # RoBERTa's config is no BertConfig
    base_model_prefix = "roberta"


class VTransRobertaModel(VTransRobertaPreTrainedModel, VTransBertModel):
    embeddings_class = VTransRobertaEmbeddings


class VTransRobertaClassificationHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        width = getattr(config, "head_hidden_size", None) or config.hidden_size
        self.dense = nn.Linear(config.hidden_size, width)
        self.dropout = nn.Dropout(getattr(config, "classifier_dropout", None) or config.hidden_dropout_prob)
        self.out_proj = nn.Linear(width, config.num_labels)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.dense(self.dropout(states[:, 0])))
        return self.out_proj(self.dropout(x))


class VTransRobertaForSequenceClassification(VTransRobertaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.roberta = VTransRobertaModel(config, add_pooling_layer=False)
        self.classifier = VTransRobertaClassificationHead(config)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        labels=None,
        output_hidden_states=None,
        return_dict=None,
        **kwargs,
    ):
        out = self.roberta(input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states=output_hidden_states)
        logits = self.classifier(out.last_hidden_state)
        loss = classification_loss(self.config, logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)
