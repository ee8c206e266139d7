"""Trains a demo model on token shards, with the backend's own model classes, and saves it as a Hugging Face
style directory (config.json, model.safetensors, tokenizer files) plus training.json.

    PYTHONPATH=backend python3 examples/build/train_model.py --config cfg.json --tokenizer DIR \
        --train SHARDS --dev SHARDS --test SHARDS --out MODEL_DIR [--epochs N | --steps N] [--seed S]
    PYTHONPATH=backend python3 examples/build/train_model.py --pretrained DIR --labels a,b \
        --train SHARDS --dev SHARDS --test SHARDS --out MODEL_DIR [--epochs N | --steps N] [--seed S]

With --config the model starts from random weights (Hugging Face's initialisation). With --pretrained it is
fine-tuned from a pretrained checkpoint: a sequence-classification head for --labels is put on the
pretrained body by `vtrans.project.add_classification_head` (seeded, as `vtrans add-head` does), and the
tokenizer is the pretrained model's own.

Deterministic for a seed and thread count. Classification batches are drawn from length buckets (less
padding); language-model batches are random blocks. The dev split picks the best of --evals evaluations
(default: after every epoch, or 4 for --steps); the test split is only evaluated at the end. For language
models the test perplexity of an add-one unigram model over the same tokens is reported beside the model's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time

import numpy as np
import torch

from vtrans.checkpoint import load_model, save_model
from vtrans.evaluate import evaluate, task_loss
from vtrans.models import build_model
from vtrans.project import add_classification_head
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
    for flag in ("--train", "--dev", "--test", "--out"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--config", help="config.json of a model trained from random weights (with --tokenizer)")
    ap.add_argument("--tokenizer", help="folder of the tokenizer files to copy into the model (with --config)")
    ap.add_argument("--pretrained", help="a pretrained model folder to fine-tune instead (with --labels)")
    ap.add_argument("--labels", help="comma-separated class names of the new classification head (with --pretrained)")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=0, help="a fixed number of steps instead of epochs")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--evals", type=int, default=0, help="dev evaluations over the run (default: every epoch, or 4 with --steps)")
    a = ap.parse_args()
    if bool(a.config) == bool(a.pretrained) or bool(a.config) != bool(a.tokenizer) or bool(a.pretrained) != bool(a.labels):
        ap.error("give either --config and --tokenizer, or --pretrained and --labels")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    train, dev, test = Shards(a.train), Shards(a.dev), Shards(a.test)
    if a.pretrained:
        with tempfile.TemporaryDirectory() as tmp:
            project = os.path.join(tmp, "project")
            add_classification_head(a.pretrained, project, a.labels.split(","), seed=a.seed)
            with open(os.path.join(project, "config.json"), encoding="utf-8") as f:
                config = json.load(f)
            model = load_model(project, task=train.task)
        shape = shape_from_config(config, os.path.join(a.pretrained, "config.json"), train.task)
        tokenizer_from = a.pretrained
    else:
        with open(a.config, encoding="utf-8") as f:
            config = json.load(f)
        shape = shape_from_config(config, a.config, train.task)
        model = build_model(shape)
        init_weights(model)
        tokenizer_from = a.tokenizer
    steps_per_epoch = math.ceil(len(train) / a.batch_size)
    total = a.steps or int(a.epochs * steps_per_epoch)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    warmup = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(total - warmup, 1))))
    device = torch.device("cpu")
    t0 = time.time()
    best, best_metric, best_state, history = None, None, None, []
    eval_seconds = 0.0
    batches = []
    step = 0
    eval_every = max(1, total // a.evals) if a.evals else steps_per_epoch if not a.steps else max(1, total // 4)
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
            print(f"step {step}/{total} loss {loss.item():.4f} ({time.time() - t0:.0f}s)", flush=True)
        if step % eval_every == 0 or step == total:
            t_eval = time.time()
            metric = dump(evaluate(model, dev, device))
            eval_seconds += time.time() - t_eval
            history.append({"step": step, "dev": metric})
            print(f"step {step}: dev {metric['name']} {metric['value']:.4f}", flush=True)
            lower = metric["name"] == "perplexity"
            if best is None or (metric["value"] < best if lower else metric["value"] > best):
                best, best_metric = metric["value"], metric
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            model.train()
    model.load_state_dict(best_state)
    model.eval()
    result = {
        **({"pretrained": os.path.realpath(a.pretrained), "labels": a.labels.split(",")} if a.pretrained else {}),
        "seed": a.seed,
        "steps": total,
        "batchSize": a.batch_size,
        "lr": a.lr,
        "threads": a.threads,
        "seconds": round(time.time() - t0, 1),
        "devEvalSeconds": round(eval_seconds, 1),
        "params": count_params(shape),
        "history": history,
        "dev": best_metric,  # the dev evaluation that picked these weights
        "test": dump(evaluate(model, test, device)),
    }
    if train.task == "lm":
        result["unigramTestPerplexity"] = unigram_perplexity(train, test, shape.vocab)
    save_model(model, a.out, config, tokenizer_from=tokenizer_from)
    with open(os.path.join(a.out, "training.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: result[k] for k in ("dev", "test", "seconds")}), flush=True)


if __name__ == "__main__":
    main()
