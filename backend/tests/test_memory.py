"""Memory: the estimate against measured peaks, the check that refuses a run that cannot fit, activation
checkpointing, the frozen copy in its stored dtype, and the GPU benchmark's code path on the CPU (its dry mode)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import settings_for

from vtrans.checkpoint import load_model
from vtrans.errors import UserError
from vtrans.models import build_model
from vtrans.safetensors_io import save_file
from vtrans.settings import VIBSettings, parse_settings
from vtrans.structure import shape_from_config
from vtrans.testing import build_tiny, randomize, tiny_config, write_shards
from vtrans.train import Compressor
from vtrans.vib import VIBGates

BACKEND = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _benchmark(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": BACKEND}
    r = subprocess.run(
        [sys.executable, "-m", "vtrans.benchmarks", *args], capture_output=True, text=True, env=env, cwd=BACKEND, check=False
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_estimate_is_within_a_quarter_of_the_measured_peak():
    """A LLaMA-shaped slice (hidden 512, two layers, vocabulary 32000, bf16 weights): each method in its own process,
    so that ru_maxrss is that run's peak."""
    out = _benchmark("memory", "--dry")
    runs = {r["method"]: r for r in out["runs"]}
    assert set(runs) == {"faster", "vtrans"}
    for r in runs.values():
        assert r["frozenDtype"] == "bfloat16"
        assert abs(r["estimateError"]) < 0.25, (r["method"], r["peakBytes"], r["estimatedBytes"], r["estimateParts"])
    # VTrans trains an fp32 copy with AdamW beside the frozen one; Faster-VTrans trains the gates alone.
    assert runs["vtrans"]["peakBytes"] > runs["faster"]["peakBytes"]
    assert runs["faster"]["estimateParts"].get("trained weights, gradients, AdamW", 0) == 0


def _bf16_llama(tmp_path, name="llama-bf16"):
    """A tiny LLaMA whose checkpoint stores bf16, and the same weights (bf16-rounded) stored as fp32."""
    cfg = tiny_config("llama", "lm")
    model = build_model(shape_from_config(cfg, "tiny", "lm"))
    randomize(model, 0)
    state = {k: v.detach().to(torch.bfloat16) for k, v in model.state_dict().items()}
    dirs = {}
    for label, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        d = tmp_path / f"{name}-{label}"
        d.mkdir()
        save_file({k: v.to(dtype) for k, v in state.items()}, str(d / "model.safetensors"))
        (d / "config.json").write_text(json.dumps({**cfg, "torch_dtype": str(dtype).split(".")[-1]}))
        dirs[label] = str(d)
    rng = np.random.default_rng(0)
    data = write_shards(str(tmp_path / f"{name}-data"), [rng.integers(3, cfg["vocab_size"], 24).tolist() for _ in range(16)], task="lm")
    return dirs, data


def _compressor(model_dir, data, run_dir, method, **extra):
    s = {"modelDir": model_dir, "trainShards": data, "evalShards": data, "runDir": str(run_dir), "method": method, "device": "cpu"}
    c = Compressor(parse_settings({**s, "dataFraction": 1.0, "batchSize": 8, **extra}))
    c.load()
    return c


def test_a_bf16_checkpoint_stays_bf16_and_matches_fp32(tmp_path):
    dirs, data = _bf16_llama(tmp_path)
    kept = load_model(dirs["bf16"], dtype=None)
    assert {p.dtype for p in kept.parameters()} == {torch.bfloat16}
    assert kept.body.inv_freq.dtype == torch.float32  # rotary frequencies are computed, not rounded to bf16
    assert {p.dtype for p in load_model(dirs["bf16"]).parameters()} == {torch.float32}  # the default stays fp32

    runs = {}
    for label in ("bf16", "fp32"):
        torch.manual_seed(0)
        c = _compressor(dirs[label], data, tmp_path / f"run-{label}", "faster")
        st = c.setup_prune()
        # Faster-VTrans: one frozen copy, shared by teacher and student; the gates are the only trained state.
        assert c.student is c.teacher
        assert not any(p.requires_grad for p in c.student.parameters())
        assert {id(p) for g in st.opt_g.param_groups for p in g["params"]} == {id(p) for p in c.gates.parameters()}
        assert st.opt_w is None
        batch = c.train.batch(np.arange(8))
        with torch.no_grad(), c.autocast():
            logits = c.teacher.run(batch.input_ids, batch.attention_mask).logits.float()
        torch.manual_seed(1)
        loss = c.prune_step(batch, 0.9, st, 0)["loss"]
        runs[label] = (c, logits, loss)
    (c16, l16, loss16), (c32, l32, loss32) = runs["bf16"], runs["fp32"]
    assert c16.frozen_dtype == torch.bfloat16 and c32.frozen_dtype == torch.float32
    assert (l16 - l32).abs().max() < 0.05 * l32.abs().max()
    assert loss16 == pytest.approx(loss32, rel=0.05)
    bytes_of = lambda m: sum(p.numel() * p.element_size() for p in m.parameters())  # noqa: E731
    assert bytes_of(c16.teacher) * 2 == bytes_of(c32.teacher)
    assert c16.memory.parts["frozen weights"] * 2 == c32.memory.parts["frozen weights"]

    # VTrans on the bf16 checkpoint: the teacher stays bf16, the student that trains is fp32.
    v = _compressor(dirs["bf16"], data, tmp_path / "run-vtrans", "vtrans")
    v.setup_prune()
    assert {p.dtype for p in v.teacher.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in v.student.parameters()} == {torch.float32}


def test_precision_fp32_loads_a_bf16_checkpoint_in_fp32(tmp_path):
    dirs, data = _bf16_llama(tmp_path)
    c = _compressor(dirs["bf16"], data, tmp_path / "run", "faster", precision="fp32")
    assert {p.dtype for p in c.teacher.parameters()} == {torch.float32}


def _saved_bytes(fn) -> int:
    """Bytes of the tensors autograd keeps for the backward while `fn` runs (parameters excluded)."""
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(seen.values())


@pytest.mark.parametrize("family,task", [("llama", "lm"), ("bert", "classification"), ("gpt2", "lm")])
def test_activation_checkpointing_gives_the_same_gradients(family, task):
    model = build_tiny(family, task, seed=0, num_hidden_layers=4) if family != "gpt2" else build_tiny(family, task, seed=0, n_layer=4)
    model.train()  # dropout on: the recomputation must draw the same masks
    gates_module = VIBGates(model.shape, VIBSettings())
    torch.manual_seed(3)
    gates = gates_module.sample(4, track=False)
    ids = torch.randint(3, model.shape.vocab, (4, 12))
    mask = torch.ones(4, 12, dtype=torch.long)
    results = {}
    for on in (False, True):
        model.zero_grad()
        gates_module.zero_grad()
        model.body.checkpointing = on
        torch.manual_seed(5)
        logits, saved = _saved_bytes(lambda: model.run(ids, mask, gates=gates).logits)
        logits.float().pow(2).mean().backward(retain_graph=True)
        grads = {n: p.grad.clone() for n, p in list(model.named_parameters()) + list(gates_module.named_parameters()) if p.grad is not None}
        results[on] = (logits.detach(), grads, saved)
    (l0, g0, s0), (l1, g1, s1) = results[False], results[True]
    assert torch.equal(l0, l1)
    assert g0.keys() == g1.keys() and any(k.startswith("mu") for k in g0)
    for k in g0:
        torch.testing.assert_close(g1[k], g0[k], rtol=1e-5, atol=1e-6, msg=k)
    assert s1 < s0 / 2, "checkpointing keeps each layer's input only"


def test_activation_checkpointing_setting(tmp_path, task_dir):
    auto = _compressor_from(task_dir, tmp_path / "a")
    assert not auto.memory.activation_checkpointing  # a tiny model: auto is off
    on = _compressor_from(task_dir, tmp_path / "b", activationCheckpointing="on")
    on.setup_prune()
    assert on.memory.activation_checkpointing and on.student.body.checkpointing
    assert on.memory.parts["activations"] < auto.memory.parts["activations"]


def _compressor_from(task_dir, run_dir, **extra):
    c = Compressor(parse_settings(settings_for(task_dir, run_dir, **extra)))
    c.load()
    return c


def test_the_memory_check_refuses_a_run_that_cannot_fit(tmp_path):
    """A LLaMA LM with a 200,000-token vocabulary at batch 256 × 60 tokens: its logits alone need about 100 GB."""
    model_dir = str(tmp_path / "model")
    build_tiny("llama", "lm", model_dir, vocab_size=200_000)
    rng = np.random.default_rng(0)
    data = write_shards(str(tmp_path / "data"), [rng.integers(3, 200_000, 60).tolist() for _ in range(256)], task="lm")
    s = {
        "modelDir": model_dir,
        "trainShards": data,
        "evalShards": data,
        "runDir": str(tmp_path / "run"),
        "method": "vtrans",
        "batchSize": 256,
    }
    with pytest.raises(UserError, match=r"memory: the run needs an estimated .* GiB") as e:
        Compressor(parse_settings(s)).load()
    for setting in ("batchSize (now 256)", "maxLength", "method faster", "activationCheckpointing on", "memoryCheck"):
        assert setting in str(e.value)
    # memoryCheck false starts anyway (here: loads, which needs little).
    c = Compressor(parse_settings({**s, "memoryCheck": False}))
    c.load()
    assert c.memory.device_bytes > 50 * 2**30


def test_the_gpu_benchmark_runs_its_code_path_on_the_cpu(tmp_path):
    """`npm run bench -- --gpu --dry`'s command: every figure the GPU run records, from tiny shapes."""
    out_file = tmp_path / "gpu.json"
    out = _benchmark("gpu", "--dry", "--out", str(out_file))
    assert json.loads(out_file.read_text()) == out
    assert out["dry"] is True and out["device"] == "cpu" and out["peakTflops"] is None
    f = out["faster7b"]
    assert f["stepSeconds"] > 0 and f["tokensPerSecond"] > 0 and f["achievedTflops"] > 0 and f["mfu"] is None
    assert f["estimatedBytes"] > 0
    b = out["bertVtrans"]
    assert b["stepSeconds"] > 0 and b["samplesPerSecond"] > 0 and b["params"] > 0
    eq = out["bf16VsFp32"]
    assert eq["relLogitDiff"] < 0.05 and eq["argmaxAgreement"] >= 0.9 and eq["relLossDiff"] < 0.05
