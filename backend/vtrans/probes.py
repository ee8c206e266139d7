"""Attention probes (the paper's analysis of which heads VTrans keeps): for every layer × head, the mean attention
mass a query puts on special tokens ([CLS]/[SEP]/BOS/EOS), on itself, on the previous token, and on task keywords,
and the mean entropy of its attention distribution (nats). Keywords are the token ids with the highest mean
gradient-saliency (|gradient · embedding|) for the label (classification) or the next token (LM).
Averages run over real (unpadded) query positions of the first `examples` evaluation examples.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .evaluate import task_loss
from .models import AttentionCapture, VTransModel
from .shards import Shards

METRICS = ("special", "current", "previous", "keywords", "entropy")


def keyword_ids(model: VTransModel, shards: Shards, order, device, batch_size: int, exclude: set, top: int = 20) -> list[int]:
    """Token ids with the highest mean gradient × input saliency over the probe examples."""
    emb = model.body.input_embeddings
    captured = {}

    def hook(_m, _i, out):
        # A leaf that requires grad, whatever the model's parameters do (the teacher is frozen).
        leaf = out.detach().requires_grad_(True)
        captured["out"] = leaf
        return leaf

    handle = emb.register_forward_hook(hook)
    totals: dict[int, float] = {}
    counts: dict[int, int] = {}
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            batch = shards.batch(order[start : start + batch_size]).to(device)
            model.zero_grad(set_to_none=True)
            with torch.enable_grad():
                out = model.run(batch.input_ids, batch.attention_mask, batch.token_type_ids)
                task_loss(shards.task, out.logits, batch).backward()
            e = captured["out"]
            sal = (e.grad * e).sum(-1).abs() * batch.attention_mask
            for tok, v, m in zip(batch.input_ids.flatten().tolist(), sal.flatten().tolist(), batch.attention_mask.flatten().tolist()):
                if m and tok not in exclude:
                    totals[tok] = totals.get(tok, 0.0) + v
                    counts[tok] = counts.get(tok, 0) + 1
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    ranked = sorted((totals[t] / counts[t], t) for t in totals if counts[t] >= 2)
    return [t for _, t in reversed(ranked[-top:])]


@torch.no_grad()
def run_probes(
    model: VTransModel,
    shards: Shards,
    device,
    examples: int,
    special_ids: list[int],
    batch_size: int = 16,
    should_stop: Callable[[], None] = lambda: None,
) -> dict:
    order = shards.sorted_order()
    order = order[torch.randperm(len(order), generator=torch.Generator().manual_seed(0))[:examples].sort().values.numpy()]
    specials = {int(i) for i in special_ids}
    keywords = keyword_ids(model, shards, order, device, batch_size, specials | {shards.pad_id})
    layers = model.shape.n_layers
    sums: dict[str, list[torch.Tensor | None]] = {m: [None] * layers for m in METRICS}
    queries = 0.0
    was_training = model.training
    model.eval()
    body = model.body
    sdpa = body.use_sdpa
    try:
        for start in range(0, len(order), batch_size):
            should_stop()
            batch = shards.batch(order[start : start + batch_size]).to(device)
            cap = AttentionCapture()
            model.run(batch.input_ids, batch.attention_mask, batch.token_type_ids, capture=cap)
            q_mask = batch.attention_mask.float()  # (B, T)
            ids = batch.input_ids
            special_keys = torch.zeros_like(q_mask)
            for t in specials:
                special_keys += (ids == t).float()
            keyword_keys = torch.zeros_like(q_mask)
            for t in keywords:
                keyword_keys += (ids == t).float()
            queries += float(q_mask.sum())
            for layer, maps in enumerate(cap.maps):
                if maps is None:
                    continue
                p = maps.float()  # (B, h, T, T)
                t = p.shape[-1]
                per_query = {
                    "special": (p * special_keys[:, None, None, :]).sum(-1),
                    "current": torch.diagonal(p, dim1=-2, dim2=-1),
                    "previous": torch.cat([torch.zeros_like(p[..., :1, 0]), torch.diagonal(p, offset=-1, dim1=-2, dim2=-1)], -1)
                    if t > 1
                    else torch.zeros_like(p[..., 0]),
                    "keywords": (p * keyword_keys[:, None, None, :]).sum(-1),
                    "entropy": -(p * torch.log(p.clamp_min(1e-12))).sum(-1),
                }
                for m, v in per_query.items():  # v: (B, h, T)
                    total = (v * q_mask[:, None, :]).sum((0, 2)).cpu()
                    before = sums[m][layer]
                    sums[m][layer] = total if before is None else before + total
    finally:
        model.train(was_training)
        body.use_sdpa = sdpa
    per_head: list[list[dict[str, float]]] = []
    for layer in range(layers):
        per_metric = [sums[m][layer] for m in METRICS]
        if any(t is None for t in per_metric):  # a layer without attention
            per_head.append([])
            continue
        totals = {m: t for m, t in zip(METRICS, per_metric) if t is not None}
        per_head.append([{m: float(totals[m][h]) / max(queries, 1.0) for m in METRICS} for h in range(totals["special"].numel())])
    return {"examples": int(len(order)), "keywordIds": keywords, "seqLen": float(shards.lengths[order].mean()), "layers": per_head}
