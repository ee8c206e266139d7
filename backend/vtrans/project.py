"""Turning a pretrained checkpoint into a model project VTrans can compress: a sequence-classification head on
the pretrained body (Hugging Face's class for the family, so `transformers` loads it too), initialised as
Hugging Face initialises new heads (normal(0, initializer_range) weights, zero biases) from a seed.

The source directory is only read; the project is written to a new folder.
"""

from __future__ import annotations

import json
import os

import torch

from .checkpoint import WeightSource, copy_tokenizer, load_state, save_model
from .errors import UserError
from .models import ARCHITECTURES, CLASSES, FAMILIES, build_model
from .structure import read_config, shape_from_config


def check_labels(labels: list[str]) -> list[str]:
    names = [str(x).strip() for x in labels]
    if len(names) < 2:
        raise UserError(f"labels: a classifier needs at least two labels, got {names}.")
    if len(set(names)) != len(names) or any(not n for n in names):
        raise UserError(f"labels: must be distinct and non-empty, got {names}.")
    return names


def add_classification_head(source_dir: str, out_dir: str, labels: list[str], seed: int = 0) -> dict:
    """Writes `out_dir` (config.json, model.safetensors, tokenizer files); returns what it wrote."""
    labels = check_labels(labels)
    src, out = os.path.realpath(source_dir), os.path.realpath(out_dir)
    if out == src or out.startswith(src + os.sep) or src.startswith(out + os.sep):
        raise UserError(
            f"{out_dir}: the new project must not be inside, equal to or contain the source model {source_dir}. Pick another output folder."
        )
    if os.path.exists(out) and os.listdir(out):
        raise UserError(f"{out_dir}: exists and is not empty. Pick a new output folder.")
    cfg = read_config(source_dir)
    model_type = cfg.get("model_type")
    family = FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if family is None or "classification" not in family.classes:
        raise UserError(
            f"{os.path.join(source_dir, 'config.json')}: model_type {model_type!r} has no classification head here "
            f"(supported: {', '.join(f for f, t in CLASSES if t == 'classification')})."
        )
    cls = family.classes["classification"]
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    cfg.update(
        architectures=[ARCHITECTURES[cls]],
        id2label={str(i): n for i, n in enumerate(labels)},
        label2id={n: i for i, n in enumerate(labels)},
        num_labels=len(labels),
    )
    if family.causal and cfg.get("pad_token_id") is None:
        cfg["pad_token_id"] = cfg.get("eos_token_id")  # decoders read the last non-padding token
    shape = shape_from_config(cfg, os.path.join(source_dir, "config.json"), "classification")
    model = build_model(shape)
    std = float(cfg.get("initializer_range", 0.02))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(family.new_head_weights):
                p.copy_(torch.randn(p.shape, generator=g) * std if p.dim() > 1 else torch.zeros(p.shape))
    weights = WeightSource(source_dir)
    load_state(model, weights, weights.path, fresh=family.new_head_weights)
    save_model(model.eval(), out_dir, cfg)
    copy_tokenizer(source_dir, out_dir)
    with open(os.path.join(out_dir, "vtrans-source.json"), "w", encoding="utf-8") as f:
        json.dump({"source": src, "labels": labels, "seed": seed, "head": "new (untrained)"}, f, indent=2)
    return {"modelDir": out, "family": family.name, "labels": labels, "params": sum(p.numel() for p in model.parameters())}
