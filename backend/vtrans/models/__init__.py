"""The four supported families; `build_model` picks the class for a shape's family and task."""

from __future__ import annotations

from torch import nn

from ..errors import CheckpointError
from ..structure import ModelShape
from .bert import BertForSequenceClassification
from .common import NO_GATES, AttentionCapture, Gates, ModelOutput
from .gpt2 import GPT2ForSequenceClassification, GPT2LMHeadModel
from .llama import LlamaForCausalLM, LlamaForSequenceClassification
from .roberta import RobertaForSequenceClassification

CLASSES = {
    ("bert", "classification"): BertForSequenceClassification,
    ("roberta", "classification"): RobertaForSequenceClassification,
    ("gpt2", "classification"): GPT2ForSequenceClassification,
    ("gpt2", "lm"): GPT2LMHeadModel,
    ("llama", "classification"): LlamaForSequenceClassification,
    ("llama", "lm"): LlamaForCausalLM,
}

ARCHITECTURES = {
    cls: name
    for name, cls in (
        ("BertForSequenceClassification", BertForSequenceClassification),
        ("RobertaForSequenceClassification", RobertaForSequenceClassification),
        ("GPT2ForSequenceClassification", GPT2ForSequenceClassification),
        ("GPT2LMHeadModel", GPT2LMHeadModel),
        ("LlamaForSequenceClassification", LlamaForSequenceClassification),
        ("LlamaForCausalLM", LlamaForCausalLM),
    )
}


def build_model(shape: ModelShape) -> nn.Module:
    cls = CLASSES.get((shape.family, shape.task))
    if cls is None:
        raise CheckpointError(
            f"config.json: {shape.family} models support tasks {', '.join(t for f, t in CLASSES if f == shape.family)}, not {shape.task!r}."
        )
    return cls(shape)


__all__ = ["build_model", "CLASSES", "Gates", "NO_GATES", "AttentionCapture", "ModelOutput", "ARCHITECTURES"]
