"""Trains a demo model from scratch on token shards, with the backend's own model classes, and saves it as a
Hugging Face style directory (config.json, model.safetensors, tokenizer files) plus training.json.

    PYTHONPATH=backend python3 examples/build/train_model.py --config cfg.json --tokenizer DIR \
        --train SHARDS --dev SHARDS --test SHARDS --out MODEL_DIR [--epochs N | --steps N] [--seed S]

Deterministic for a seed and thread count. Classification batches are drawn from length buckets (less
padding); language-model batches are random blocks. The dev split picks the best epoch; the test split is
only evaluated at the end. For language models the test perplexity of an add-one unigram model over the same
tokens is reported beside the model's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch

from vtrans.checkpoint import save_model
from vtrans.evaluate import evaluate, task_loss
from vtrans.models import build_model
from vtrans.schema import dump
from vtrans.shards import Shards
from vtrans.structure import count_params, shape_from_config


def init_weights(model: torch.nn.Module, std: float = 0.02) -> None:
    """Hugging Face's initialisation: normal(0, 0.02) matrices and embeddings, zero biases, unit norms."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, std)
            elif name.endswith(("LayerNorm.weight", "norm.weight")) or (".ln_" in name and name.endswith("weight")):
                p.fill_(1.0)
            else:
                p.zero_()


def bucketed_batches(shards: Shards, batch_size: int, rng: np.random.Generator):
    """Random batches of similar length: shuffle, sort chunks of 50 batches by length, shuffle the batches."""
    order = rng.permutation(len(shards))
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(shards.lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def unigram_perplexity(train: Shards, test: Shards, vocab: int) -> float:
    counts = np.bincount(train.ids, minlength=vocab).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    # The same tokens the model is scored on: every token after the first of each block.
    targets = np.concatenate([test.ids[test.offsets[i] + 1 : test.offsets[i + 1]] for i in range(len(test))])
    return float(math.exp(-logp[targets].mean()))


def main() -> None:
    ap = argparse.ArgumentParser()
    for flag in ("--config", "--tokenizer", "--train", "--dev", "--test", "--out"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=0, help="a fixed number of steps instead of epochs")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    with open(a.config, encoding="utf-8") as f:
        config = json.load(f)
    train, dev, test = Shards(a.train), Shards(a.dev), Shards(a.test)
    shape = shape_from_config(config, a.config, train.task)
    model = build_model(shape)
    init_weights(model)
    steps_per_epoch = math.ceil(len(train) / a.batch_size)
    total = a.steps or int(a.epochs * steps_per_epoch)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    warmup = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(total - warmup, 1))))
    device = torch.device("cpu")
    t0 = time.time()
    best, best_state, history = None, None, []
    batches = []
    step = 0
    eval_every = steps_per_epoch if not a.steps else max(1, total // 4)
    model.train()
    while step < total:
        if not batches:
            batches = bucketed_batches(train, a.batch_size, rng)
        batch = train.batch(batches.pop())
        loss = task_loss(train.task, model.run(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits, batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        if step % 20 == 0:
            print(f"step {step}/{total} loss {float(loss):.4f} ({time.time() - t0:.0f}s)", flush=True)
        if step % eval_every == 0 or step == total:
            metric = dump(evaluate(model, dev, device))
            history.append({"step": step, "dev": metric})
            print(f"step {step}: dev {metric['name']} {metric['value']:.4f}", flush=True)
            lower = metric["name"] == "perplexity"
            if best is None or (metric["value"] < best if lower else metric["value"] > best):
                best = metric["value"]
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            model.train()
    model.load_state_dict(best_state)
    model.eval()
    result = {
        "seed": a.seed,
        "steps": total,
        "batchSize": a.batch_size,
        "lr": a.lr,
        "threads": a.threads,
        "seconds": round(time.time() - t0, 1),
        "params": count_params(shape),
        "history": history,
        "dev": dump(evaluate(model, dev, device)),
        "test": dump(evaluate(model, test, device)),
    }
    if train.task == "lm":
        result["unigramTestPerplexity"] = unigram_perplexity(train, test, shape.vocab)
    save_model(model, a.out, config, tokenizer_from=a.tokenizer)
    with open(os.path.join(a.out, "training.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: result[k] for k in ("dev", "test", "seconds")}), flush=True)


if __name__ == "__main__":
    main()
