"""Micro-benchmarks for `npm run bench` (results in bench/results.json and BENCHMARKS.md).

python -m vtrans.benchmarks overhead --model DIR --shards DIR [--batch-size 32] [--steps 10]
    time of a VTrans mask-training step (teacher forward, gated student forward/backward, both optimisers)
    and of a Faster-VTrans step (gates only) ÷ a plain training step of the same model and batch
python -m vtrans.benchmarks throughput [--steps 20]
    samples/s and model FLOPs utilisation of the mask-training loop on a BERT-base-sized random model (GPU)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch

from .checkpoint import load_model
from .evaluate import task_loss
from .settings import parse_settings
from .shards import Shards
from .structure import count_params
from .train import Compressor, autocast_for, pick_device, set_threads


def _timed(fn, steps: int, device) -> float:
    """Median seconds per call after two warm-up calls."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def overhead(model_dir: str, shards_dir: str, batch_size: int = 32, steps: int = 10, device: str = "auto") -> dict:
    dev = pick_device(device)
    threads = set_threads(None)
    shards = Shards(shards_dir)
    batch = shards.batch(np.arange(min(batch_size, len(shards)))).to(dev)
    autocast = autocast_for(dev)
    plain = load_model(model_dir, task=shards.task).to(dev).train()
    opt = torch.optim.AdamW(plain.parameters(), lr=1e-5)

    def plain_step():
        with autocast():
            loss = task_loss(shards.task, plain.run(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()

    t_plain = _timed(plain_step, steps, dev)
    result = {
        "device": str(dev),
        "threads": threads,
        "batchSize": int(batch.size),
        "seqLen": int(batch.input_ids.shape[1]),
        "plainStepSeconds": t_plain,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("vtrans", "faster"):
            c = Compressor(
                parse_settings(
                    {
                        "modelDir": model_dir,
                        "trainShards": shards_dir,
                        "evalShards": shards_dir,
                        "runDir": os.path.join(tmp, method),
                        "method": method,
                        "lr": 1e-5,
                        "device": str(dev),
                    }
                )
            )
            c.load()
            st = c.setup_prune()
            t = _timed(lambda c=c, st=st: c.prune_step(batch, 0.5, st, 0), steps, dev)
            result[f"{method}StepSeconds"] = t
            result[f"{method}Overhead"] = t / t_plain
    return result


def throughput(steps: int = 20, batch_size: int = 32, seq_len: int = 128) -> dict:
    """BERT-base (12 × 768, 12 heads, FFN 3072) with random weights: VTrans phase-1 steps on the GPU."""
    from .testing import build_tiny, write_shards

    dev = pick_device("auto")
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny(
            "bert",
            "classification",
            os.path.join(tmp, "model"),
            seed=0,
            num_labels=2,
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            vocab_size=30522,
            max_position_embeddings=512,
        )
        rng = np.random.default_rng(0)
        write_shards(
            os.path.join(tmp, "data"),
            [rng.integers(5, 30522, seq_len).tolist() for _ in range(batch_size)],
            [0, 1] * (batch_size // 2),
            label_names=["a", "b"],
        )
        c = Compressor(
            parse_settings(
                {
                    "modelDir": os.path.join(tmp, "model"),
                    "trainShards": os.path.join(tmp, "data"),
                    "evalShards": os.path.join(tmp, "data"),
                    "runDir": os.path.join(tmp, "run"),
                    "method": "vtrans",
                    "device": str(dev),
                }
            )
        )
        c.load()
        st = c.setup_prune()
        batch = c.train.batch(np.arange(batch_size)).to(dev)
        t = _timed(lambda c=c, st=st: c.prune_step(batch, 0.5, st, 0), steps, dev)
        params = count_params(c.shape)
        # Training FLOPs ≈ teacher forward (2N) + student forward and backward (6N) per token, N = non-embedding params.
        n = params["nonEmbedding"]
        flops = (2 + 6) * n * batch_size * seq_len / t
        peak = None
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
        if "H100" in name:
            peak = 989e12  # dense bf16, SXM
        elif "H200" in name:
            peak = 989e12
        elif "A100" in name:
            peak = 312e12
        return {
            "device": name,
            "batchSize": batch_size,
            "seqLen": seq_len,
            "stepSeconds": t,
            "samplesPerSecond": batch_size / t,
            "achievedTflops": flops / 1e12,
            "mfu": flops / peak if peak else None,
            "peakTflops": peak / 1e12 if peak else None,
            "params": params["total"],
        }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m vtrans.benchmarks")
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--model", required=True)
    o.add_argument("--shards", required=True)
    o.add_argument("--batch-size", type=int, default=32)
    o.add_argument("--steps", type=int, default=10)
    o.add_argument("--device", default="auto")
    t = sub.add_parser("throughput")
    t.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    out = overhead(a.model, a.shards, a.batch_size, a.steps, a.device) if a.cmd == "overhead" else throughput(a.steps)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
