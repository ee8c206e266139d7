"""Torch-Pruning (the PyPI package `torch-pruning`, Fang et al. 2023, "DepGraph") as a benchmark peer.

Its dependency-graph pruner runs on the Hugging Face model itself, loaded with `transformers` from the model
directory, as its documented Hugging Face BERT path does: `MetaPruner` with L2 magnitude importance, local (per
layer) pruning, whole attention heads (`prune_num_heads`, the heads' query, key, value and output channels as
one group) and FFN neurons at one ratio. Like the other peers it leaves the hidden width alone: the groups
rooted at the residual stream are passed over. The ratio is found by bisection so that the pruned model's size
is the run's budget; the model Torch-Pruning pruned is run once to check it works.

What it pruned becomes the run's unit scores (kept units above removed ones, each side in Torch-Pruning's
importance order), so the common exact cut keeps Torch-Pruning's choice, give or take the few units that
separate its ratio's size from the exact budget, and the common fine-tuning follows.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .baselines import _full_scores
from .budget import size_of
from .errors import UserError
from .prune import KeepSet
from .shards import Shards
from .structure import ModelShape

FAMILIES = ("bert", "roberta")


@dataclass
class Plan:
    """What Torch-Pruning removes at one ratio: head and neuron indices per layer, with its importance of each."""

    heads: list[set[int]] = field(default_factory=list)  # removed heads per layer
    ffn: list[set[int]] = field(default_factory=list)  # removed neurons per layer
    head_importance: list[torch.Tensor] = field(default_factory=list)  # every head's, per layer
    ffn_importance: list[torch.Tensor] = field(default_factory=list)

    def keep_set(self, s: ModelShape) -> KeepSet:
        def kept(n: int, removed: set[int]) -> torch.Tensor:
            return torch.tensor([i for i in range(n) if i not in removed], dtype=torch.long)

        return KeepSet(
            torch.arange(s.hidden),
            [kept(l.kv_heads, r) for l, r in zip(s.layers, self.heads)],
            [kept(l.ffn, r) for l, r in zip(s.layers, self.ffn)],
        )


def _load(model_dir: str):
    try:
        import torch_pruning as tp
    except ImportError:
        raise UserError(
            "method torch-pruning needs the Python package torch-pruning, which is not installed in the backend's environment.",
            "pip install torch-pruning==1.6.1 (backend/requirements.txt), or pick another method.",
        ) from None
    from transformers import AutoModelForSequenceClassification

    hf = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    return tp, hf


def _encoder(hf):
    base = getattr(hf, hf.base_model_prefix)
    return base, base.encoder.layer


def _plan(tp, hf, example: dict, ratio: float, prune: bool) -> tuple[Plan, Any]:
    """One pass of Torch-Pruning at `ratio`: on a copy of `hf`, pruned for real, when `prune`; else a dry pass that
    only lists what it would remove (the bisection's passes, which leave the model as it is)."""
    model = copy.deepcopy(hf) if prune else hf
    base, layers = _encoder(model)
    heads = model.config.num_attention_heads
    head_dim = model.config.hidden_size // heads
    num_heads = {
        lin: heads for layer in layers for lin in (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value)
    }
    ignored = [model.classifier] + ([base.pooler] if getattr(base, "pooler", None) is not None else [])
    importance = tp.importance.MagnitudeImportance(p=2, group_reduction="mean")
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=importance,
        global_pruning=False,
        pruning_ratio=ratio,
        num_heads=num_heads,
        prune_num_heads=True,
        prune_head_dims=False,
        head_pruning_ratio=ratio,
        ignored_layers=ignored,
        output_transform=lambda out: out.logits.sum(),
    )
    attn_out = {layer.attention.output.dense: i for i, layer in enumerate(layers)}
    ffn_in = {layer.intermediate.dense: i for i, layer in enumerate(layers)}
    plan = Plan([set() for _ in layers], [set() for _ in layers])
    with torch.no_grad():  # its importance of every channel, on whole groups, before anything is pruned
        for layer in layers:
            proj, up = layer.attention.output.dense, layer.intermediate.dense
            channels = importance(pruner.DG.get_pruning_group(proj, tp.prune_linear_in_channels, idxs=list(range(proj.in_features))))
            plan.head_importance.append(channels.detach().float().cpu().view(-1, head_dim).mean(1))
            neurons = importance(pruner.DG.get_pruning_group(up, tp.prune_linear_out_channels, idxs=list(range(up.out_features))))
            plan.ffn_importance.append(neurons.detach().float().cpu())
    for group in pruner.step(interactive=True):
        dep, idxs = group[0].dep, list(group[0].idxs)
        module = dep.target.module
        if module in attn_out:  # a group of whole heads: the output projection's input channels, head by head
            plan.heads[attn_out[module]].update(c // head_dim for c in idxs)
        elif module in ffn_in:
            plan.ffn[ffn_in[module]].update(idxs)
        else:
            continue  # the residual stream's width: left alone, as by the other peers
        if prune:
            group.prune()
    if prune:
        for layer in layers:
            sa = layer.attention.self
            sa.num_attention_heads = pruner.num_heads[sa.query]
            sa.all_head_size = sa.query.out_features
            sa.attention_head_size = head_dim
    return plan, model


def torch_pruning_scores(
    model_dir: str, shape: ModelShape, shards: Shards, keep: float, kind: str, seq_len: float
) -> tuple[dict[str, torch.Tensor], dict]:
    """The unit scores of Torch-Pruning's choice at the run's budget, and a summary (ratio, its size, heads and
    neurons it removed) for the log."""
    if shape.family not in FAMILIES:
        raise UserError(
            f"method torch-pruning runs on BERT and RoBERTa classifiers (Torch-Pruning's Hugging Face path); this model is {shape.family}.",
            "Pick another method for this model.",
        )
    tp, hf = _load(model_dir)
    b = shards.batch(np.arange(min(2, len(shards))))
    example = {"input_ids": b.input_ids, "attention_mask": b.attention_mask}
    if b.token_type_ids is not None:
        example["token_type_ids"] = b.token_type_ids
    full = size_of(shape, kind, seq_len)
    fraction = lambda plan: size_of(plan.keep_set(shape).pruned_shape(shape), kind, seq_len) / full  # noqa: E731
    lo, hi = 0.0, 0.99
    for _ in range(14):  # the size falls as the ratio grows: the smallest ratio at or under the budget (to 1e-4)
        mid = (lo + hi) / 2
        if fraction(_plan(tp, hf, example, mid, prune=False)[0]) > keep:
            lo = mid
        else:
            hi = mid
    plan, pruned = _plan(tp, hf, example, hi, prune=True)
    with torch.no_grad():  # Torch-Pruning's own pruned model runs
        pruned(**example)

    def ordered(removed: set[int], importance: torch.Tensor) -> torch.Tensor:
        """Kept units in [1, 2), removed ones in [0, 1), each side ranked by Torch-Pruning's importance."""
        rank = importance.argsort().argsort().float() / max(len(importance) - 1, 1)
        chosen = torch.tensor([0.0 if i in removed else 1.0 for i in range(len(importance))])
        return chosen + 0.999 * rank

    heads = torch.cat([ordered(r, imp) for r, imp in zip(plan.heads, plan.head_importance)])
    ffn = torch.cat([ordered(r, imp) for r, imp in zip(plan.ffn, plan.ffn_importance)])
    summary = {
        "ratio": hi,
        "achieved": fraction(plan),
        "headsRemoved": sum(len(r) for r in plan.heads),
        "neuronsRemoved": sum(len(r) for r in plan.ffn),
    }
    return _full_scores(shape, heads, ffn), summary
