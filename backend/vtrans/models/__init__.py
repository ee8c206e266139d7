"""The four supported families, one module each (forward pass, config fields, size accounting, weight slicing):
`FAMILIES` maps a config's `model_type` to its family object; `build_model` picks the class for a shape's family
and task."""

from __future__ import annotations

from ..structure import ModelShape, family_of
from .bert import BERT
from .common import NO_GATES, AttentionCapture, Family, Gates, ModelOutput, VTransModel
from .gpt2 import GPT2
from .llama import LLAMA
from .roberta import ROBERTA

FAMILIES: dict[str, Family] = {f.name: f for f in (BERT, ROBERTA, GPT2, LLAMA)}

CLASSES: dict[tuple[str, str], type[VTransModel]] = {(f.name, task): cls for f in FAMILIES.values() for task, cls in f.classes.items()}

# The `architectures` entry of a saved config: the classes carry Hugging Face's names.
ARCHITECTURES: dict[type[VTransModel], str] = {cls: cls.__name__ for cls in CLASSES.values()}


def build_model(shape: ModelShape) -> VTransModel:
    return family_of(shape.family).model_class(shape.task)(shape)


__all__ = [
    "build_model",
    "FAMILIES",
    "CLASSES",
    "Family",
    "VTransModel",
    "Gates",
    "NO_GATES",
    "AttentionCapture",
    "ModelOutput",
    "ARCHITECTURES",
]
