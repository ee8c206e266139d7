"""Micro-benchmarks for `npm run bench` (results in bench/results.json and BENCHMARKS.md).

python -m vtrans.benchmarks overhead --model DIR --shards DIR [--batch-size 32] [--steps 10]
    time of a VTrans mask-training step (teacher forward, gated student forward/backward, both optimisers)
    and of a Faster-VTrans step (gates only) ÷ a plain training step of the same model and batch
python -m vtrans.benchmarks throughput [--steps 20]
    samples/s and model FLOPs utilisation of the mask-training loop on a BERT-base-sized random model (GPU)
python -m vtrans.benchmarks shapes --run RUNDIR --budgets 0.5,0.3 [--budget kind] [--eval-limit N] [--json]
    a finished run's masks cut at each budget in both output shapes (heterogeneous, uniform): the metric on the
    run's eval data, parameters, FLOPs and the latency onnxruntime measures (batch 1 and 32), side by side
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


def onnx_latency(model, seq_len: int, batch_sizes=(1, 32), threads: int | None = None, warmup: int = 3) -> dict[str, float]:
    """Median milliseconds of one onnxruntime inference per batch size, on pseudo-random ids without padding (as
    src/core/onnxEval.ts measures in onnxruntime-node: 20 timed runs at batch 1, 5 at larger batches)."""
    import onnxruntime as ort

    from .export import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        export_onnx(model, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        rng = np.random.default_rng(12345)
        out = {}
        for b in batch_sizes:
            ids = rng.integers(5, max(model.shape.vocab, 6), (b, seq_len), dtype=np.int64)
            feeds = {k: v for k, v in {"input_ids": ids, "attention_mask": np.ones_like(ids)}.items() if k in names}
            for _ in range(warmup):
                session.run(["logits"], feeds)
            times = []
            for _ in range(20 if b == 1 else 5):
                t0 = time.perf_counter()
                session.run(["logits"], feeds)
                times.append((time.perf_counter() - t0) * 1000)
            out[str(b)] = float(np.median(times))
        return out


def shapes(run_dir: str, budgets: list[float], kind: str | None = None, eval_limit: int | None = None, device: str = "auto") -> dict:
    """Heterogeneous against uniform at each budget, from one finished run's masks (no training): the metric on the
    run's eval shards, the sizes, and the onnxruntime latency at sequence length 128 (or the model's longest)."""
    from .artifacts import artifacts
    from .evaluate import evaluate
    from .report import UnitCounts
    from .schema import dump
    from .settings import SHAPES

    art = artifacts(run_dir)
    dev = pick_device(device)
    threads = set_threads(None)
    kind = kind or art.settings.budget
    shards = Shards(art.settings.eval_shards)
    seq_len = min(128, art.shape.max_positions - (2 if art.shape.family == "roberta" else 0))
    points = []
    for keep in sorted(set(budgets), reverse=True):
        for shape in SHAPES:
            sel, _, model = art.selector.cut(keep, kind, shape=shape)
            metric = evaluate(model.to(dev), shards, dev, limit=eval_limit, autocast=autocast_for(dev, art.settings.precision))
            summary = art.selector.point("sweep", keep, kind, sel.shape, metric, UnitCounts.of(art.shape, sel.keep), shape)
            points.append(
                {
                    "keep": keep,
                    "kind": kind,
                    "shape": shape,
                    "achieved": sel.fraction,
                    "params": summary.params,
                    "encoderParams": summary.encoder_params,
                    "flopsPerToken": summary.flops_per_token,
                    "metric": dump(metric),
                    "latencyMs": onnx_latency(model.cpu(), seq_len, threads=threads),
                    "units": dump(summary.units),
                }
            )
    return {
        "runDir": os.path.abspath(run_dir),
        "family": art.shape.family,
        "task": art.shape.task,
        "kind": kind,
        "latency": {"engine": "onnxruntime", "seqLen": seq_len, "threads": threads},
        "points": points,
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
    s = sub.add_parser("shapes")
    s.add_argument("--run", required=True, help="a finished run directory (with masks.safetensors)")
    s.add_argument("--budgets", required=True, help="comma-separated fractions, e.g. 0.5,0.3")
    s.add_argument("--budget", choices=["params", "encoder-params", "flops"], default=None, help="default: the run's kind")
    s.add_argument("--eval-limit", type=int, default=None)
    s.add_argument("--device", default="auto")
    s.add_argument("--json", action="store_true", help="one JSON object on the last line (the default output is a table)")
    a = ap.parse_args()
    if a.cmd == "shapes":
        out = shapes(a.run, [float(b) for b in a.budgets.split(",") if b], a.budget, a.eval_limit, a.device)
        if not a.json:
            for p in out["points"]:
                m = p["metric"]
                print(
                    f"keep {p['keep']:.2f} {p['shape']:<13} achieved {p['achieved']:.4f} params {p['params']:>10} "
                    f"{m['name']} {m['value']:.4f} latency b1 {p['latencyMs']['1']:.2f} ms b32 {p['latencyMs']['32']:.2f} ms"
                )
            return
    else:
        out = overhead(a.model, a.shards, a.batch_size, a.steps, a.device) if a.cmd == "overhead" else throughput(a.steps)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
