"""BERT with per-layer sizes, as VTrans prunes it, for Hugging Face `transformers` (`trust_remote_code=True`).

VTrans writes this file next to a pruned checkpoint whose layers differ in size; config.json's `auto_map` points
the Auto classes here:

    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)

config.json holds the pruned sizes (docs/model-format.md of VTrans):
    hidden_size                 the pruned hidden width
    head_dim                    size of one attention head (no longer hidden_size / num_attention_heads)
    layer_num_attention_heads   [L] heads per layer; 0: the attention sublayer is gone
    layer_intermediate_size     [L] FFN neurons per layer; 0: the FFN sublayer is gone
    head_hidden_size            output width of the pooler (its input is the pruned hidden width)
The VTrans scales are folded into the weights, so every layer is plain BERT arithmetic on fewer units. A post-LN
layer keeps both LayerNorms when a sublayer is gone (the residual stream still passes through them). Parameter
names are Hugging Face's, so the checkpoint is an ordinary `model.safetensors`. This file needs only `torch` and
`transformers`.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndCrossAttentions, SequenceClassifierOutput


def layer_sizes(config) -> list[tuple[int, int]]:
    """(heads, FFN neurons) of every layer: the per-layer lists, else the uniform sizes."""
    n = config.num_hidden_layers
    heads = getattr(config, "layer_num_attention_heads", None) or [config.num_attention_heads] * n
    ffn = getattr(config, "layer_intermediate_size", None) or [config.intermediate_size] * n
    return list(zip(heads, ffn))


def head_dim_of(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


class VTransBertConfig(BertConfig):
    """BERT's config with the per-layer sizes above; `hidden_size` need not be a multiple of the heads."""

    def validate_architecture(self):
        n = self.num_hidden_layers
        for key in ("layer_num_attention_heads", "layer_intermediate_size"):
            v = getattr(self, key, None)
            if v is not None and len(v) != n:
                raise ValueError(f"{key} lists {len(v)} layers, but num_hidden_layers is {n}.")


def padding_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(B, T) of 1 (token) / 0 (padding) -> an additive (B, 1, 1, T) bias."""
    if attention_mask is None:
        return None
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class VTransBertEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def position_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0).expand_as(input_ids)

    def forward(self, input_ids, token_type_ids=None, position_ids=None):
        if position_ids is None:
            position_ids = self.position_ids(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids) + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


class VTransBertSelfAttention(nn.Module):
    def __init__(self, config, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim_of(config)
        width = heads * self.head_dim
        self.query = nn.Linear(config.hidden_size, width)
        self.key = nn.Linear(config.hidden_size, width)
        self.value = nn.Linear(config.hidden_size, width)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (m(x).view(b, t, self.heads, self.head_dim).transpose(1, 2) for m in (self.query, self.key, self.value))
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.head_dim**-0.5
        if bias is not None:
            scores = scores + bias
        probs = self.dropout(torch.softmax(scores.float(), dim=-1).to(q.dtype))
        return torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)


class VTransBertOutput(nn.Module):
    """A sublayer's output projection (absent with the sublayer) and the post-LN LayerNorm, which stays."""

    def __init__(self, config, n_in: int):
        super().__init__()
        self.dense = nn.Linear(n_in, config.hidden_size) if n_in else None
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        if self.dense is not None and h is not None:
            x = self.dropout(self.dense(h)) + x
        return self.LayerNorm(x)


class VTransBertAttention(nn.Module):
    def __init__(self, config, heads: int):
        super().__init__()
        self.self = VTransBertSelfAttention(config, heads) if heads else None
        self.output = VTransBertOutput(config, heads * head_dim_of(config))


class VTransBertIntermediate(nn.Module):
    def __init__(self, config, ffn: int):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, ffn)
        self.act = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class VTransBertLayer(nn.Module):
    def __init__(self, config, heads: int, ffn: int):
        super().__init__()
        self.attention = VTransBertAttention(config, heads)
        self.intermediate = VTransBertIntermediate(config, ffn) if ffn else None
        self.output = VTransBertOutput(config, ffn)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        sa = self.attention.self
        x = self.attention.output(None if sa is None else sa(x, bias), x)
        return self.output(None if self.intermediate is None else self.intermediate(x), x)


class VTransBertEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList(VTransBertLayer(config, h, f) for h, f in layer_sizes(config))


class VTransBertPooler(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, getattr(config, "head_hidden_size", None) or config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(states[:, 0]))


class VTransBertPreTrainedModel(PreTrainedModel):
    config_class = VTransBertConfig
    base_model_prefix = "bert"
    _no_split_modules = ["VTransBertLayer"]


class VTransBertModel(VTransBertPreTrainedModel):
    embeddings_class: type[nn.Module] = VTransBertEmbeddings

    def __init__(self, config, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = self.embeddings_class(config)
        self.encoder = VTransBertEncoder(config)
        self.pooler = VTransBertPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        output_hidden_states=None,
        return_dict=None,
        **kwargs,
    ):
        x = self.embeddings(input_ids, token_type_ids, position_ids)
        bias = padding_mask(attention_mask, x.dtype)
        states = [x]
        for layer in self.encoder.layer:
            x = layer(x, bias)
            states.append(x)
        pooled = self.pooler(x) if self.pooler is not None else None
        return BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=x, pooler_output=pooled, hidden_states=tuple(states) if output_hidden_states else None
        )


def classification_loss(config, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if config.num_labels == 1:
        return nn.functional.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
    return nn.functional.cross_entropy(logits.view(-1, config.num_labels), labels.view(-1))


class VTransBertForSequenceClassification(VTransBertPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = VTransBertModel(config)
        self.dropout = nn.Dropout(getattr(config, "classifier_dropout", None) or config.hidden_dropout_prob)
        self.classifier = nn.Linear(getattr(config, "head_hidden_size", None) or config.hidden_size, config.num_labels)
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
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = classification_loss(self.config, logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)
