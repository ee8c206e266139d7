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


def better_metric(task: str, a: float, b: float) -> bool:
    """Whether metric a beats b: lower perplexity for a language model, higher accuracy for a classifier."""
    return a < b if task == "lm" else a > b


def task_loss(task: str, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    if task == "classification":
        assert batch.labels is not None, "classification shards have labels"
        return F.cross_entropy(logits.float(), batch.labels)
    return lm_loss(logits, batch)


def lm_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Next-token cross-entropy, the mean over the real (unpadded) tokens."""
    sums, counts = lm_losses_per_example(logits, batch)
    return sums.sum() / counts.sum().clamp(min=1)


def lm_losses_per_example(logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Each example's next-token cross-entropy summed over its real tokens, and the number of those tokens."""
    pred = logits[:, :-1].float()
    target = batch.input_ids[:, 1:]
    valid = batch.attention_mask[:, 1:].float()
    losses = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1), reduction="none").view_as(target)
    return (losses * valid).sum(-1), valid.sum(-1).long()


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


def examples_read(shards: Shards, limit: int | None) -> int:
    """How many examples an evaluation with this limit reads: the first ones, in file order."""
    return len(shards) if limit is None else min(int(limit), len(shards))


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
    per_example: dict[str, list] | None = None,
) -> Metric:
    """The model's metric on the shards. `per_example`, when given, receives each example's score in file order:
    "correct" (1 or 0) for classification, "nll" (summed over its predicted tokens) and "tokens" for a language
    model: what a paired bootstrap of two models on the same examples resamples."""
    was_training = model.training
    model.eval()
    # The first `limit` examples in file order (the TypeScript evaluator takes the same ones), by length.
    n = examples_read(shards, limit)
    order = np.argsort(shards.lengths[:n], kind="stable")
    task = shards.task
    preds, golds = [], []
    nll, tokens = 0.0, 0
    example_nll, example_tokens = np.zeros(n), np.zeros(n, dtype=np.int64)
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
                rows = order[start : start + batch_size]
                sums, counts = lm_losses_per_example(logits, batch)
                example_nll[rows], example_tokens[rows] = sums.cpu().numpy(), counts.cpu().numpy()
                nll += float(sums.sum())
                tokens += int(counts.sum())
    finally:
        model.train(was_training)
    if task == "classification":
        pred, gold = torch.cat(preds), torch.cat(golds)
        if per_example is not None:
            correct = np.zeros(n, dtype=np.int64)
            correct[order] = (pred == gold).long().numpy()
            per_example["correct"] = correct.tolist()
        classes = max(int(gold.max()) + 1, int(pred.max()) + 1, len(shards.label_names() or []))
        return Metric("accuracy", float((pred == gold).float().mean()), f1=macro_f1(pred, gold, classes), count=len(gold))
    if per_example is not None:
        per_example["nll"], per_example["tokens"] = example_nll.tolist(), example_tokens.tolist()
    return Metric("perplexity", math.exp(nll / max(tokens, 1)), count=tokens)


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False
