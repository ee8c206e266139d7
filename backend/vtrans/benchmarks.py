"""Micro-benchmarks for `npm run bench` (results in bench/results.json and BENCHMARKS.md).

python -m vtrans.benchmarks overhead --model DIR --shards DIR [--batch-size 32] [--steps 10]
    time of a VTrans mask-training step (teacher forward, gated student forward/backward, both optimisers)
    and of a Faster-VTrans step (gates only) ÷ a plain training step of the same model and batch
python -m vtrans.benchmarks throughput [--steps 20]
    samples/s and model FLOPs utilisation of the mask-training loop on a BERT-base-sized random model (GPU)
python -m vtrans.benchmarks shapes --run RUNDIR --budgets 0.5,0.3 [--budget kind] [--eval-limit N] [--json]
    a finished run's masks cut at each budget in both output shapes (heterogeneous, uniform): the metric on the
    run's eval data, parameters, FLOPs and the latency onnxruntime measures (batch 1 and 32), side by side
python -m vtrans.benchmarks select [--round-to 1] [--kind params] [--rule fisher]
    seconds of the exact cut of a LLaMA-2-7B shape: ranking once, then one keep-set per budget
python -m vtrans.benchmarks predict [--round-to 1]
    seconds of the `predict` request (live budget tuning) on a run with LLaMA-2-7B-shaped masks
python -m vtrans.benchmarks phase1 --model DIR --shards DIR [--method faster] [--keep 0.3] [--budget encoder-params]
    expected and achieved (threshold keep-set) size at the end of phase 1, against the target

python -m vtrans.benchmarks memory [--dry]
    peak resident memory per parameter of Faster-VTrans and VTrans on a LLaMA-2-7B-shaped slice (hidden 4096, 32
    heads, FFN 11008, two layers, vocabulary 32000, bf16 weights), each method in its own process, against the
    estimate of vtrans/memory.py; then the time of select_keep, predict, the heatmap data and the report for a full
    LLaMA-2-7B-shaped masks file. --dry: a small slice (hidden 512), for the tests
python -m vtrans.benchmarks memory-probe --model DIR --shards DIR --method M [--batch-size 4]
    one process: load, set up phase 1, two steps; its peak resident memory (ru_maxrss) and the estimate
python -m vtrans.benchmarks gpu [--dry]
    the GPU benchmark: Faster-VTrans steps on a LLaMA-2-7B-shaped model (32 layers, random bf16 weights), a BERT-base
    VTrans step, the MFU of the mask-training loop, and bf16 GPU results against CPU fp32 on a small model, with the
    card's name. --dry: the same code path with tiny shapes, on whatever device there is (CPU here)

Every command prints one JSON line (`--json` is accepted for the bench harness).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .budget import size_of
from .checkpoint import load_model
from .evaluate import task_loss
from .selection import summarize
from .settings import BUDGETS, parse_settings
from .shards import Shards
from .structure import count_params
from .testing import LLAMA_2_7B
from .train import Compressor, autocast_for, pick_device, set_threads


def _timed(fn, steps: int, device) -> float:
    """Median seconds per call after two warm-up calls."""
    return _interleaved({"f": fn}, steps, device)["f"]


def _interleaved(fns: dict, steps: int, device, clock: str = "wall") -> dict[str, float]:
    """Median seconds per call of each function, called in turn (so that load on a shared machine hits all of them
    alike), after two warm-up rounds. clock "cpu": the process's CPU time instead of wall time (CPU only), which a
    loaded machine inflates far less."""
    for _ in range(2):
        for fn in fns.values():
            fn()
    now = time.process_time if clock == "cpu" else time.perf_counter
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(steps):
        for k, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = now()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[k].append(now() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def _compressor(model_dir: str, shards_dir: str, run_dir: str, method: str, dev, extra: dict | None = None) -> Compressor:
    c = Compressor(
        parse_settings(
            {
                "modelDir": model_dir,
                "trainShards": shards_dir,
                "evalShards": shards_dir,
                "runDir": run_dir,
                "method": method,
                "lr": 1e-5,
                "device": str(dev),
                **(extra or {}),
            }
        )
    )
    c.load()
    return c


DROPPED_AT = 0.3  # the keep (of the encoder's parameters) a dropped step's student is cut at


def overhead(
    model_dir: str,
    shards_dir: str,
    batch_size: int = 32,
    steps: int = 10,
    device: str = "auto",
    threads: int | None = None,
    clock: str = "wall",
) -> dict:
    """Seconds per step of phase 1 ÷ a plain fine-tuning step (task loss, backward, gradient clipping, AdamW) of the
    same model and batch, the steps interleaved.

    vtrans: masks and weights (distillation from the teacher's outputs, read from the cache as in every epoch after
    the first and in phase 2; `vtransUncachedOverhead` with the teacher's forward in the step); faster: the masks
    alone on the frozen weights; vtransDropped: a VTrans step after a commit at keep 0.3 of the encoder's parameters
    with `vib.dropClosed` (the smaller student)."""
    dev = pick_device(device)
    threads = set_threads(threads)
    shards = Shards(shards_dir)
    idx = np.arange(min(batch_size, len(shards)))
    batch = shards.batch(idx).to(dev)
    autocast = autocast_for(dev)
    plain = load_model(model_dir, task=shards.task).to(dev).train()
    opt = torch.optim.AdamW(plain.parameters(), lr=1e-5)

    def plain_step():
        with autocast():
            loss = task_loss(shards.task, plain.run(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits, batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(plain.parameters(), 1.0)
        opt.step()

    fns: dict[str, Callable[[], object]] = {"plain": plain_step}
    with tempfile.TemporaryDirectory() as tmp:
        # vtransDropped: the second half of phase 1 with `vib.dropClosed`, committed at keep 0.3 of the encoder's
        # parameters (the benchmark's budget kind), the closed units dropped.
        dropped = {"keep": DROPPED_AT, "budget": "encoder-params", "vib": {"dropClosed": True}}
        for name, method, extra in (("vtrans", "vtrans", None), ("faster", "faster", None), ("vtransDropped", "vtrans", dropped)):
            c = _compressor(model_dir, shards_dir, os.path.join(tmp, name), method, dev, extra)
            st = c.setup_prune()
            cache = c.new_teacher_cache()
            if cache is not None:
                cache.fill(idx)
            target = 0.5
            if extra is dropped:
                c.commit(st)
                target = DROPPED_AT
            fns[name] = functools.partial(c.prune_step, batch, target, st, 0, idx)
            if name == "vtrans":
                fns["vtransUncached"] = functools.partial(c.prune_step, batch, 0.5, st, 0)
        t = _interleaved(fns, steps, dev, clock if dev.type == "cpu" else "wall")
    return {
        "clock": clock if dev.type == "cpu" else "wall",
        "device": str(dev),
        "threads": threads,
        "batchSize": int(batch.size),
        "seqLen": int(batch.input_ids.shape[1]),
        "steps": steps,
        "plainStepSeconds": t["plain"],
        "vtransStepSeconds": t["vtrans"],
        "fasterStepSeconds": t["faster"],
        "vtransUncachedStepSeconds": t["vtransUncached"],
        "vtransOverhead": t["vtrans"] / t["plain"],
        "fasterOverhead": t["faster"] / t["plain"],
        "vtransUncachedOverhead": t["vtransUncached"] / t["plain"],
        "droppedAt": DROPPED_AT,
        "vtransDroppedStepSeconds": t["vtransDropped"],
        "vtransDroppedOverhead": t["vtransDropped"] / t["plain"],
    }


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


def _trained_like_gates(shape, seed: int = 0):
    """VIB gates with a spread of log α and Fisher information, as a finished phase 1 leaves them."""
    from .settings import VIBSettings
    from .vib import GRANULARITIES, VIBGates

    gates = VIBGates(shape, VIBSettings())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in GRANULARITIES:
            n = gates.mu[name].numel()
            gates.mu[name].copy_(0.2 + torch.rand(n, generator=g))
            gates.logvar[name].copy_(-3 * torch.randn(n, generator=g) - 2)
            gates.fisher(name).copy_(torch.rand(n, generator=g) ** 4)
        gates.fisher_steps.fill_(1)
    return gates


def select(
    keeps: list[float] | None = None, round_to: int = 1, kind: str = "params", rule: str = "fisher", seq_len: float = 2048.0
) -> dict:
    """Seconds of the exact cut of a LLaMA-2-7B shape (4096 hidden, 32 layers × 32 heads and 11008 neurons):
    ranking the 356K units once, then one keep-set per budget."""
    from .budget import Ranking
    from .structure import shape_from_config

    keeps = keeps or [0.9, 0.7, 0.5, 0.3, 0.1, 0.05]
    shape = shape_from_config(LLAMA_2_7B, "LLaMA-2-7B shape", "lm")
    gates = _trained_like_gates(shape)
    values = None if rule == "score" else gates.values(rule)
    t0 = time.perf_counter()
    ranking = Ranking(shape, gates.scores(), kind, seq_len, round_to, values)
    rank_s = time.perf_counter() - t0
    per = {}
    for keep in keeps:
        t = time.perf_counter()
        sel = ranking.select(keep)
        per[str(keep)] = {"seconds": time.perf_counter() - t, "achieved": sel.fraction}
    worst = max(v["seconds"] for v in per.values())
    return {
        "shape": "llama-2-7b",
        "units": shape.hidden + sum(l.kv_heads + l.ffn for l in shape.layers),
        "roundTo": round_to,
        "kind": kind,
        "rule": rule,
        "rankSeconds": rank_s,
        "selectSeconds": per,
        "firstKeepSetSeconds": rank_s + per[str(keeps[0])]["seconds"],
        "worstKeepSetSeconds": worst,
    }


def _llama_masks_run(tmp: str, round_to: int = 1) -> str:
    """A finished Faster-VTrans run directory whose masks have the LLaMA-2-7B shape (config only: no weights)."""
    from .checkpoint import load_shape
    from .runs import RunDir
    from .safetensors_io import save_file
    from .testing import write_shards

    model_dir = os.path.join(tmp, "model")
    os.makedirs(model_dir)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(LLAMA_2_7B, f)
    data = write_shards(os.path.join(tmp, "data"), [list(range(3, 515))] * 4, task="lm")
    run = RunDir(os.path.join(tmp, "run"))
    settings = parse_settings(
        {
            "modelDir": model_dir,
            "trainShards": data,
            "evalShards": data,
            "runDir": run.path,
            "method": "faster",
            "keep": 0.5,
            "roundTo": round_to,
        }
    )
    run.create(settings)
    gates = _trained_like_gates(load_shape(model_dir, "lm"))
    save_file(gates.state(), run.file("masks.safetensors"), metadata={"format": "vtrans-vib", "version": "1"})
    run.update(status="done")
    return run.path


def predict(keeps: list[float] | None = None, round_to: int = 1) -> dict:
    """Seconds of the `predict` request (live budget tuning) on a run whose masks have a LLaMA-2-7B shape: the first
    request (masks loaded, units ranked) and the following ones, through the same handler the server calls."""
    from . import api
    from .artifacts import _cache

    keeps = keeps or [0.5, 0.45, 0.3, 0.2, 0.1, 0.61, 0.9]
    with tempfile.TemporaryDirectory() as tmp:
        run_path = _llama_masks_run(tmp, round_to)
        _cache.clear()
        times = []
        for keep in keeps:
            t = time.perf_counter()
            r = api.call("predict", {"runDir": run_path, "keep": keep})
            times.append({"keep": keep, "seconds": time.perf_counter() - t, "achieved": r["achieved"]})
        _cache.clear()
    return {
        "shape": "llama-2-7b",
        "roundTo": round_to,
        "firstSeconds": times[0]["seconds"],
        "worstLaterSeconds": max(t["seconds"] for t in times[1:]),
        "requests": times,
    }


def phase1(
    model_dir: str, shards_dir: str, method: str = "faster", keep: float = 0.3, budget: str = "encoder-params", extra: str = "{}"
) -> dict:
    """Expected size (under the soft gates at the final slope) and achieved size (the keep-set the threshold gives)
    at the end of phase 1, against the target; the recipe's defaults unless `extra` (JSON settings) says otherwise."""
    from .budget import threshold_keep

    dev = pick_device("auto")
    with tempfile.TemporaryDirectory() as tmp:
        c = _compressor(model_dir, shards_dir, os.path.join(tmp, "run"), method, dev, {"keep": keep, "budget": budget, **json.loads(extra)})
        c.run.create(c.s)
        t0 = time.perf_counter()
        c.phase_prune(None)
        seconds = time.perf_counter() - t0
        last = [json.loads(line) for line in open(c.run.file("metrics.jsonl"), encoding="utf-8")]
        expected = 1.0 - [r for r in last if r["phase"] == "prune"][-1]["sparsity"]
        kept = threshold_keep(c.shape, c.gates.scores())
        achieved = size_of(kept.pruned_shape(c.shape), budget, c.seq_len) / size_of(c.shape, budget, c.seq_len)
        steps = c.plan("prune", c.sched.prune_epochs, c.sched.min_prune_steps).steps
    return {
        "method": method,
        "budget": budget,
        "target": keep,
        "steps": steps,
        "seconds": seconds,
        "expected": expected,
        "achieved": achieved,
        "expectedGap": expected - keep,
        "achievedGap": achieved - keep,
    }


# ----------------------------------------------------------------------------------------------------------------
# Memory: measured peaks against vtrans/memory.py's estimate, and the cost of a 7B-shaped masks file.

# The LLaMA-2-7B layer shape on two layers (666M parameters, most of them in the embedding table and the LM head).
LLAMA_7B_SLICE: dict[str, Any] = {**LLAMA_2_7B, "num_hidden_layers": 2}
# A slice small enough for the tests (39M parameters, a few seconds a method).
LLAMA_SMALL_SLICE: dict[str, Any] = {
    **LLAMA_2_7B,
    "num_hidden_layers": 2,
    "hidden_size": 512,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
    "intermediate_size": 1376,
}


def write_random_llama(model_dir: str, config: dict, dtype: torch.dtype = torch.bfloat16, seed: int = 0) -> int:
    """A LLaMA checkpoint of `config` with random weights stored in `dtype`, written one tensor at a time (the writer
    never holds an fp32 copy of the model); returns its parameter count."""
    from .checkpoint import write_json_atomic
    from .models import build_model
    from .structure import shape_from_config

    os.makedirs(model_dir, exist_ok=True)
    shape = shape_from_config(config, "benchmark config", "lm")
    with torch.device("meta"):
        skeleton = build_model(shape)
    # Drawn on the GPU where there is one: 7B normal draws take minutes on a CPU, milliseconds there.
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    g = torch.Generator(device=dev).manual_seed(seed)
    state = {}
    for name, p in skeleton.named_parameters():
        if name.endswith("norm.weight"):
            state[name] = torch.ones(p.shape, dtype=dtype)
        else:
            state[name] = (torch.randn(p.shape, generator=g, device=dev) * 0.02).to(dtype).cpu()
    from .safetensors_io import save_file

    save_file(state, os.path.join(model_dir, "model.safetensors"), metadata={"format": "pt"})
    write_json_atomic(
        os.path.join(model_dir, "config.json"), {**config, "architectures": ["LlamaForCausalLM"], "torch_dtype": str(dtype).split(".")[-1]}
    )
    return sum(t.numel() for t in state.values())


def _lm_shards(out_dir: str, vocab: int, examples: int, length: int, seed: int = 0) -> str:
    from .testing import write_shards

    rng = np.random.default_rng(seed)
    return write_shards(out_dir, [rng.integers(3, vocab, length).tolist() for _ in range(examples)], task="lm")


def memory_probe(model_dir: str, shards_dir: str, method: str, batch_size: int = 4, extra: str = "{}") -> dict:
    """In this process (run it alone: ru_maxrss is the process's peak): load and set up phase 1 as `compress` does,
    fill the teacher cache, run two phase-1 steps; the peak resident memory against the estimate."""
    from .schema import dump

    with tempfile.TemporaryDirectory() as tmp:
        c = _compressor(
            model_dir, shards_dir, os.path.join(tmp, "run"), method, torch.device("cpu"), {"batchSize": batch_size, **json.loads(extra)}
        )
        st = c.setup_prune()
        plan = c.plan("prune", c.sched.prune_epochs, c.sched.min_prune_steps)
        c.teacher_for(plan)
        t0 = time.perf_counter()
        for step in range(2):
            idx, batch = c.batch_for(plan, step, 1)
            c.prune_step(batch, 0.9, st, step, idx)
        seconds = (time.perf_counter() - t0) / 2
        params = count_params(c.shape)["total"]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        return {
            "method": method,
            "params": params,
            "batchSize": batch_size,
            "seqLen": int(c.train.meta.max_len),
            "frozenDtype": str(c.frozen_dtype).split(".")[-1],
            "activationCheckpointing": c.memory.activation_checkpointing,
            "peakBytes": int(peak),
            "estimatedBytes": c.memory.total_bytes,
            "estimateParts": dict(c.memory.parts),
            "bytesPerParam": peak / params,
            "estimateError": c.memory.total_bytes / peak - 1,
            "stepSeconds": seconds,
            "settings": {k: v for k, v in dump(c.s).items() if k in ("method", "batchSize", "maxLength", "precision")},
        }


def _probe(model_dir: str, shards_dir: str, method: str, batch_size: int, extra: dict | None = None) -> dict:
    """`memory_probe` in a fresh interpreter, so that its ru_maxrss is that run's alone."""
    backend = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": backend + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "vtrans.benchmarks", "memory-probe", "--model", model_dir, "--shards", shards_dir]
    cmd += ["--method", method, "--batch-size", str(batch_size), "--extra", json.dumps(extra or {})]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"memory-probe {method} failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def masks_7b() -> dict:
    """Seconds of what a LLaMA-2-7B-shaped masks file costs after training: `select_keep` (ranking and one keep-set),
    the heatmap data (report.json's per-layer, per-head table) and the whole report (the 100-row prediction table,
    the report built and written); `predict` is `predict()`'s figure."""
    from .artifacts import _cache, artifacts
    from .budget import select_keep
    from .report import build_report, layer_reports, write_report

    with tempfile.TemporaryDirectory() as tmp:
        run_path = _llama_masks_run(tmp)
        _cache.clear()
        art = artifacts(run_path)
        shape = art.shape
        scores = _trained_like_gates(shape).scores()  # the masks the run directory holds
        t = time.perf_counter()
        sel = select_keep(shape, scores, "params", 0.5, 2048.0)
        select_s = time.perf_counter() - t
        t = time.perf_counter()
        layers = layer_reports(shape, sel.keep, scores, None)
        heatmap_s = time.perf_counter() - t
        t = time.perf_counter()
        summary = summarize(shape, 2048.0, None)
        report = build_report(
            settings=art.settings,
            run_id="llama-7b",
            shape=shape,
            selection=sel,
            scores=scores,
            threshold=0.0,
            teacher=summary,
            student=summarize(sel.keep.pruned_shape(shape), 2048.0, None),
            points=[],
            probes=None,
            wall_seconds=None,
            test=None,
            environment=None,
            predictions=art.selector.prediction_table([]),
        )
        write_report(os.path.join(tmp, "report.json"), report)
        report_s = time.perf_counter() - t
        _cache.clear()
    return {
        "shape": "llama-2-7b",
        "units": shape.hidden + sum(l.kv_heads + l.ffn for l in shape.layers),
        "cells": sum(len(l.heads) for l in layers),
        "selectKeepSeconds": select_s,
        "heatmapDataSeconds": heatmap_s,
        "reportSeconds": report_s,
    }


def memory(dry: bool = False, batch_size: int = 4, length: int = 128) -> dict:
    """Faster-VTrans and VTrans on a LLaMA-2-7B-shaped slice with bf16 weights, each in its own process."""
    config = LLAMA_SMALL_SLICE if dry else LLAMA_7B_SLICE
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "model")
        params = write_random_llama(model_dir, config)
        # All of the data in both methods (dataFraction 1), 32 examples: the teacher cache is filled in one forward of
        # them, as a run on that little data would.
        shards = _lm_shards(os.path.join(tmp, "data"), int(config["vocab_size"]), 32, 64 if dry else length)
        runs = [_probe(model_dir, shards, m, batch_size, {"dataFraction": 1.0}) for m in ("faster", "vtrans")]
    out = {
        "slice": {k: config[k] for k in ("hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers", "vocab_size")},
        "params": params,
        "dtype": "bfloat16",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "runs": runs,
    }
    if not dry:
        out["masks7b"] = {**masks_7b(), "predict": predict()}
    return out


# ----------------------------------------------------------------------------------------------------------------
# The GPU benchmark (`npm run bench -- --gpu`): one command, under 10 minutes on one H100/H200.

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}  # dense, per card


def _peak_tflops(name: str) -> float | None:
    for key, v in PEAK_BF16_TFLOPS.items():
        if key in name:
            return v
    return None


def _bert_config(dry: bool) -> dict:
    if dry:
        return dict(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, vocab_size=1000, max_position_embeddings=64
        )
    return dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, vocab_size=30522, max_position_embeddings=512
    )


def _step_figures(c: Compressor, batch: int, seq: int, seconds: float, flops_per_param: int, peak: float | None) -> dict:
    """A timed step's size, time and model FLOPs utilisation: `flops_per_param` FLOPs per non-embedding parameter and
    token, against the card's `peak` TFLOPS."""
    params = count_params(c.shape)
    flops = flops_per_param * params["nonEmbedding"] * batch * seq / seconds
    return {
        "params": params["total"],
        "batchSize": batch,
        "seqLen": seq,
        "stepSeconds": seconds,
        "achievedTflops": flops / 1e12,
        "mfu": flops / (peak * 1e12) if peak else None,
    }


def gpu(dry: bool = False, steps: int | None = None) -> dict:
    """Faster-VTrans on a 7B shape, a BERT-base VTrans step with its MFU, bf16 GPU results against fp32 CPU."""
    from .testing import build_tiny, write_shards

    dev = pick_device("auto")
    if dev.type != "cuda" and not dry:
        raise SystemExit("gpu: torch sees no CUDA GPU here; run it on a GPU machine, or with --dry for the tiny CPU check.")
    steps = steps or (2 if dry else 10)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    peak = _peak_tflops(name)
    out: dict = {"device": name, "dry": dry, "torch": torch.__version__, "peakTflops": peak}
    with tempfile.TemporaryDirectory() as tmp:
        # 1. Faster-VTrans on the LLaMA-2-7B shape (random bf16 weights): memory and step time.
        llama: dict[str, Any] = {**LLAMA_SMALL_SLICE, "vocab_size": 1000} if dry else dict(LLAMA_2_7B)
        seq = 32 if dry else 512
        batch = 2 if dry else 8
        model_dir = os.path.join(tmp, "llama")
        write_random_llama(model_dir, llama)
        shards = _lm_shards(os.path.join(tmp, "llama-data"), int(llama["vocab_size"]), 64, seq)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        c = _compressor(model_dir, shards, os.path.join(tmp, "run-llama"), "faster", dev, {"batchSize": batch, "dataFraction": 1.0})
        st = c.setup_prune()
        plan = c.plan("prune", 1, 0)
        _, b = c.batch_for(plan, 0, 1)
        t = _timed(functools.partial(c.prune_step, b, 0.9, st, 0), steps, dev)
        # Faster-VTrans: the teacher forward (2N) and the gated forward and backward to the activations (4N: no weight gradients).
        out["faster7b"] = {
            **_step_figures(c, batch, seq, t, 6, peak),
            "tokensPerSecond": batch * seq / t,
            "peakMemoryBytes": int(torch.cuda.max_memory_allocated(dev)) if dev.type == "cuda" else None,
            "estimatedBytes": c.memory.device_bytes,
            "activationCheckpointing": c.memory.activation_checkpointing,
        }
        del c, st, b
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        # 2. A BERT-base VTrans step (masks and weights, teacher forward in the step) and its MFU.
        bert = _bert_config(dry)
        batch, seq = (4, 16) if dry else (32, 128)
        build_tiny("bert", "classification", os.path.join(tmp, "bert"), seed=0, num_labels=2, **bert)
        rng = np.random.default_rng(0)
        write_shards(
            os.path.join(tmp, "bert-data"),
            [rng.integers(5, bert["vocab_size"], seq).tolist() for _ in range(batch)],
            [0, 1] * (batch // 2),
            label_names=["a", "b"],
        )
        c = _compressor(os.path.join(tmp, "bert"), os.path.join(tmp, "bert-data"), os.path.join(tmp, "run-bert"), "vtrans", dev)
        st = c.setup_prune()
        bb = c.train.batch(np.arange(batch)).to(dev)
        t = _timed(functools.partial(c.prune_step, bb, 0.5, st, 0), steps, dev)
        # VTrans: teacher forward (2N) + student forward and backward (6N) per token.
        out["bertVtrans"] = {**_step_figures(c, batch, seq, t, 8, peak), "samplesPerSecond": batch / t}
        del c, st
        # 3. bf16 on the device against fp32 on the CPU: the same small model and batch, teacher logits and one
        #    gated forward's loss.
        out["bf16VsFp32"] = _bf16_vs_fp32(tmp, dev)
    return out


def _bf16_vs_fp32(tmp: str, dev: torch.device) -> dict:
    from .testing import build_tiny, write_shards

    cfg = dict(
        hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256, vocab_size=500, max_position_embeddings=128
    )
    model_dir = os.path.join(tmp, "small")
    build_tiny("bert", "classification", model_dir, seed=1, num_labels=3, **cfg)
    rng = np.random.default_rng(1)
    write_shards(
        os.path.join(tmp, "small-data"),
        [rng.integers(5, 500, 32).tolist() for _ in range(16)],
        [0, 1, 2, 0] * 4,
        label_names=["a", "b", "c"],
    )
    data = os.path.join(tmp, "small-data")
    logits, losses = {}, {}
    for label, device, precision in (("fp32", torch.device("cpu"), "fp32"), ("bf16", dev, "bf16")):
        torch.manual_seed(0)
        c = _compressor(model_dir, data, os.path.join(tmp, f"run-{label}"), "faster", device, {"precision": precision})
        st = c.setup_prune()
        batch = c.train.batch(np.arange(16)).to(device)
        with torch.no_grad(), c.autocast():
            logits[label] = c.teacher.run(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits.float().cpu()
        torch.manual_seed(0)
        losses[label] = c.prune_step(batch, 0.9, st, 0)["loss"]
    diff = (logits["bf16"] - logits["fp32"]).abs().max().item()
    scale = logits["fp32"].abs().max().item()
    agree = float((logits["bf16"].argmax(-1) == logits["fp32"].argmax(-1)).float().mean())
    return {
        "device": str(dev),
        "maxAbsLogitDiff": diff,
        "relLogitDiff": diff / scale,
        "argmaxAgreement": agree,
        "lossFp32": losses["fp32"],
        "lossBf16": losses["bf16"],
        "relLossDiff": abs(losses["bf16"] - losses["fp32"]) / abs(losses["fp32"]),
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
    o.add_argument("--threads", type=int, default=None)
    o.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    t = sub.add_parser("throughput")
    t.add_argument("--steps", type=int, default=20)
    s = sub.add_parser("shapes")
    s.add_argument("--run", required=True, help="a finished run directory (with masks.safetensors)")
    s.add_argument("--budgets", required=True, help="comma-separated fractions, e.g. 0.5,0.3")
    s.add_argument("--budget", choices=list(BUDGETS), default=None, help="default: the run's kind")
    s.add_argument("--eval-limit", type=int, default=None)
    s.add_argument("--device", default="auto")
    s.add_argument("--json", action="store_true", help="one JSON object on the last line (the default output is a table)")
    k = sub.add_parser("select")
    k.add_argument("--round-to", type=int, default=1)
    k.add_argument("--kind", default="params")
    k.add_argument("--rule", default="fisher")
    p = sub.add_parser("predict")
    p.add_argument("--round-to", type=int, default=1)
    f = sub.add_parser("phase1")
    f.add_argument("--model", required=True)
    f.add_argument("--shards", required=True)
    f.add_argument("--method", default="faster")
    f.add_argument("--keep", type=float, default=0.3)
    f.add_argument("--budget", default="encoder-params")
    f.add_argument("--extra", default="{}", help="JSON settings on top of the recipe")
    m = sub.add_parser("memory")
    m.add_argument("--dry", action="store_true", help="a small slice (for the tests)")
    mp = sub.add_parser("memory-probe")
    mp.add_argument("--model", required=True)
    mp.add_argument("--shards", required=True)
    mp.add_argument("--method", default="faster")
    mp.add_argument("--batch-size", type=int, default=4)
    mp.add_argument("--extra", default="{}", help="JSON settings")
    gp = sub.add_parser("gpu")
    gp.add_argument("--dry", action="store_true", help="tiny shapes on any device (the CPU check of this command)")
    gp.add_argument("--out", default=None, help="also write the JSON result to this file")
    for parser in (o, t, k, p, f, m, mp, gp):
        parser.add_argument("--json", action="store_true", help="print the result as one JSON line (the default)")
    a = ap.parse_args()
    if a.cmd == "shapes":
        out = shapes(a.run, [float(b) for b in a.budgets.split(",") if b], a.budget, a.eval_limit, a.device)
        if not a.json:
            for pt in out["points"]:
                m = pt["metric"]
                print(
                    f"keep {pt['keep']:.2f} {pt['shape']:<13} achieved {pt['achieved']:.4f} params {pt['params']:>10} "
                    f"{m['name']} {m['value']:.4f} latency b1 {pt['latencyMs']['1']:.2f} ms b32 {pt['latencyMs']['32']:.2f} ms"
                )
            return
    elif a.cmd == "overhead":
        out = overhead(a.model, a.shards, a.batch_size, a.steps, a.device, a.threads, a.clock)
    elif a.cmd == "throughput":
        out = throughput(a.steps)
    elif a.cmd == "select":
        out = select(round_to=a.round_to, kind=a.kind, rule=a.rule)
    elif a.cmd == "predict":
        out = predict(round_to=a.round_to)
    elif a.cmd == "memory":
        out = memory(a.dry)
    elif a.cmd == "memory-probe":
        out = memory_probe(a.model, a.shards, a.method, a.batch_size, a.extra)
    elif a.cmd == "gpu":
        out = gpu(a.dry)
        if a.out:
            with open(a.out, "w", encoding="utf-8") as fh:
                json.dump(out, fh, indent=2)
    else:
        out = phase1(a.model, a.shards, a.method, a.keep, a.budget, a.extra)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
