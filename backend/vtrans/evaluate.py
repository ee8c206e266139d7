"""Task losses and metrics: accuracy and macro F1 for sequence classification, perplexity for causal LM."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .models import NO_GATES, Gates, VTransModel
from .report import Metric
from .shards import Batch, Shards


def task_loss(task: str, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    if task == "classification":
        assert batch.labels is not None, "classification shards have labels"
        return F.cross_entropy(logits.float(), batch.labels)
    return lm_loss(logits, batch)


def lm_loss(logits: torch.Tensor, batch: Batch, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy over the real (unpadded) tokens."""
    pred = logits[:, :-1].float()
    target = batch.input_ids[:, 1:]
    valid = batch.attention_mask[:, 1:].bool()
    losses = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1), reduction="none").view_as(target)
    losses = losses[valid]
    return losses.sum() if reduction == "sum" else losses.mean()


def macro_f1(pred: torch.Tensor, gold: torch.Tensor, classes: int) -> float:
    scores = []
    for c in range(classes):
        tp = int(((pred == c) & (gold == c)).sum())
        fp = int(((pred == c) & (gold != c)).sum())
        fn = int(((pred != c) & (gold == c)).sum())
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else 0.0


@torch.no_grad()
def evaluate(
    model: VTransModel,
    shards: Shards,
    device: torch.device | str,
    gates: Gates = NO_GATES,
    batch_size: int = 64,
    limit: int | None = None,
    autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
    should_stop: Callable[[], None] = lambda: None,
) -> Metric:
    """The model's metric on the shards."""
    was_training = model.training
    model.eval()
    # The first `limit` examples in file order (the TypeScript evaluator takes the same ones), by length.
    n = len(shards) if limit is None else min(int(limit), len(shards))
    order = np.argsort(shards.lengths[:n], kind="stable")
    task = shards.task
    preds, golds = [], []
    nll, tokens = 0.0, 0
    try:
        for start in range(0, len(order), batch_size):
            should_stop()
            batch = shards.batch(order[start : start + batch_size]).to(device)
            with autocast() if autocast else contextlib.nullcontext():
                logits = model.run(batch.input_ids, batch.attention_mask, batch.token_type_ids, gates=gates).logits
            if batch.labels is not None:
                preds.append(logits.argmax(-1).cpu())
                golds.append(batch.labels.cpu())
            else:
                nll += float(lm_loss(logits, batch, reduction="sum"))
                tokens += int(batch.attention_mask[:, 1:].sum())
    finally:
        model.train(was_training)
    if task == "classification":
        pred, gold = torch.cat(preds), torch.cat(golds)
        classes = max(int(gold.max()) + 1, int(pred.max()) + 1, len(shards.label_names() or []))
        return Metric("accuracy", float((pred == gold).float().mean()), f1=macro_f1(pred, gold, classes), count=len(gold))
    return Metric("perplexity", math.exp(nll / max(tokens, 1)), count=tokens)


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False
