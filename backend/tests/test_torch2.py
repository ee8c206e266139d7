"""The PyTorch 2 paths, run here on the CPU: bf16 autocast for training and evaluation, and the device choice."""

import pytest
import torch
from conftest import settings_for

from vtrans import api
from vtrans.checkpoint import load_model
from vtrans.errors import UserError
from vtrans.evaluate import evaluate, task_loss
from vtrans.runs import RunDir
from vtrans.shards import Shards
from vtrans.testing import build_tiny
from vtrans.train import autocast_for, pick_device

CPU = torch.device("cpu")
# bf16 keeps 8 bits of mantissa: a loss within 2 % and gradients pointing the same way is what it can promise.
LOSS_RTOL = 0.02
GRAD_COSINE = 0.99


def test_bf16_training_step_on_cpu_stays_close_to_fp32(task_dir):
    shards = Shards(str(task_dir / "train"))
    batch = shards.batch(list(range(32)))
    results = {}
    for precision in ("fp32", "bf16"):
        model = load_model(str(task_dir / "model")).train()
        torch.manual_seed(0)
        model.body.embeddings.dropout.p = 0.0  # the same forward in both precisions
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        with autocast_for(CPU, precision)():
            out = model.run(batch.input_ids, batch.attention_mask)
            loss = task_loss("classification", out.logits, batch)
        assert (out.logits.dtype == torch.bfloat16) == (precision == "bf16")
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        opt.step()
        assert all(torch.isfinite(p).all() for p in model.parameters())
        results[precision] = (float(loss), grads)
    (l32, g32), (l16, g16) = results["fp32"], results["bf16"]
    assert abs(l16 - l32) <= LOSS_RTOL * abs(l32)
    assert float(torch.nn.functional.cosine_similarity(g32, g16, dim=0)) > GRAD_COSINE


def test_bf16_evaluation_on_cpu_matches_fp32(task_dir):
    model = load_model(str(task_dir / "model"))
    shards = Shards(str(task_dir / "eval"))
    fp32 = evaluate(model, shards, CPU, autocast=autocast_for(CPU, "fp32"))
    bf16 = evaluate(model, shards, CPU, autocast=autocast_for(CPU, "bf16"))
    assert fp32.count == bf16.count == 80
    assert abs(fp32.value - bf16.value) <= 2 / 80  # at most two of 80 predictions flip


def test_a_compression_runs_under_bf16_autocast_on_cpu(task_dir, tmp_path):
    result = api.call(
        "compress", settings_for(task_dir, tmp_path / "run", precision="bf16", method="faster", minPruneSteps=20, sweep=[]), api.Job()
    )
    assert result["status"] == "done" and RunDir(str(tmp_path / "run")).read().settings.precision == "bf16"
    assert 0 <= result["student"]["metric"]["value"] <= 1


def test_auto_picks_cuda_when_torch_sees_a_gpu(monkeypatch):
    """Only the device check is faked: what `auto` does with its answer is the real code."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("cuda")
    assert pick_device("cpu") == CPU


def test_auto_picks_the_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == CPU
    with pytest.raises(UserError, match="device: cuda was requested but torch sees no CUDA GPU"):
        pick_device("cuda")


def test_precision_is_checked():
    with pytest.raises(UserError, match="precision: must be one of auto, fp32, bf16"):
        autocast_for(CPU, "fp8")
    assert autocast_for(CPU, "auto")().__class__.__name__ == "nullcontext"  # fp32 on a CPU unless asked


def test_sdpa_is_the_default_attention_kernel():
    model = build_tiny("gpt2", "lm")
    assert model.body.use_sdpa
