"""Closed units physically dropped after the commit (`vib.dropClosed`, drop.py): the smaller student computes what the
masked full one does, for outputs and for every open unit's gradient; its weights and AdamW moments write back into the
full shapes; and a whole run with the drop reaches the model a run without it does."""

import logging

import pytest
import torch
from conftest import settings_for

from vtrans import api
from vtrans.checkpoint import save_model
from vtrans.drop import DroppedStudent, open_units
from vtrans.prune import prune_model
from vtrans.safetensors_io import load_file
from vtrans.settings import VIBSettings
from vtrans.shards import Batch
from vtrans.teacher import hidden_mse
from vtrans.testing import build_tiny, random_keep_sets
from vtrans.vib import VIBGates

FAMILIES = [("bert", "classification"), ("gpt2", "lm"), ("llama", "lm")]
NO_DROPOUT = {
    "bert": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    "gpt2": {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0},
}


def committed_gates(model, seed: int) -> tuple[VIBGates, object]:
    """VIB gates with varied μ and σ, committed to a random keep-set (a layer without attention, one without FFN, a
    layer that lost a key/value group)."""
    s = model.shape
    gates = VIBGates(s, VIBSettings())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in gates.mu:
            gates.mu[name].copy_(0.5 + torch.rand(gates.mu[name].shape, generator=g))
            gates.logvar[name].copy_(-3.0 + torch.rand(gates.logvar[name].shape, generator=g))
    keep = random_keep_sets(s, 1, seed)[0]
    gates.commit(keep)
    gates.noise = torch.Generator().manual_seed(seed)
    return gates, keep


def batch_for(model, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 90, (4, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # padding: the norms' statistics and the hidden-state loss must ignore it alike
    return Batch(input_ids=ids, attention_mask=mask, labels=torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("family,task", FAMILIES)
def test_dropped_student_computes_the_masked_outputs_and_gradients(family, task):
    full = build_tiny(family, task, seed=1, **NO_DROPOUT.get(family, {})).train()
    gates, keep = committed_gates(full, seed=2)
    dropped = DroppedStudent(full, open_units(gates), torch.device("cpu"))
    opened = open_units(gates)
    assert torch.equal(opened.hidden, keep.hidden.sort().values)
    assert [len(h) for h in opened.heads] == [len(h) for h in keep.heads]
    dropped.model.train()
    batch = batch_for(full, seed=3)
    teacher = [torch.randn(4, 11, full.shape.hidden, generator=torch.Generator().manual_seed(i)) for i in range(full.shape.n_layers)]

    def loss_of(model, model_gates, norm_dims, widen=None):
        out = model.run(batch.input_ids, batch.attention_mask, gates=model_gates)
        weights = torch.randn(out.logits.shape, generator=torch.Generator().manual_seed(4))
        mse = hidden_mse(out.hidden_states[1:], teacher, batch, widen, norm_dims)
        return out, (out.logits * weights).sum() + mse

    z = gates.sample(4, track=True)
    out_full, loss_full = loss_of(full, z, z.norm_dims)
    loss_full.backward()
    full_grads = {n: p.grad.clone() for n, p in full.named_parameters()}
    gate_grads = {n: p.grad.clone() for n, p in gates.named_parameters()}
    gates.zero_grad()

    gates.noise = torch.Generator().manual_seed(2)  # the same draws again
    z = gates.sample(4, track=True)
    out_small, loss_small = loss_of(dropped.model, dropped.gates(z), z.norm_dims, dropped.widen)
    assert torch.allclose(out_small.logits, out_full.logits, atol=1e-5), "the same logits"
    assert float(loss_small.detach()) == pytest.approx(float(loss_full.detach()), rel=1e-5)
    loss_small.backward()
    for name, p in dropped.model.named_parameters():
        want = full_grads[name].reshape(-1)[dropped.index[name].view(-1)].view(p.shape)
        tol = 1e-5 * max(1.0, float(want.abs().max()))  # float32 sums of a different length
        assert torch.allclose(p.grad, want, atol=tol), f"{family}: the gradient of {name}"
    for name, p in gates.named_parameters():
        assert torch.allclose(p.grad, gate_grads[name], atol=1e-5), f"{family}: the gates' gradient of {name}"


def test_weights_and_adamw_moments_write_back_into_the_full_shapes():
    full = build_tiny("gpt2", "lm", seed=1, **NO_DROPOUT["gpt2"]).train()
    gates, _ = committed_gates(full, seed=5)
    keep = open_units(gates)
    opt = torch.optim.AdamW(full.parameters(), lr=1e-2, weight_decay=0.01)
    batch = batch_for(full, seed=6)
    full.run(batch.input_ids, batch.attention_mask, gates=gates.sample(4)).logits.square().mean().backward()
    opt.step()
    before = {k: v.clone() for k, v in full.state_dict().items()}

    dropped = DroppedStudent(full, keep, torch.device("cpu"))
    small_opt = dropped.optimizer(opt)
    for _ in range(2):
        small_opt.zero_grad()
        dropped.model.run(batch.input_ids, batch.attention_mask, gates=dropped.gates(gates.sample(4))).logits.square().mean().backward()
        small_opt.step()

    state = dropped.full_state()
    assert state.keys() == before.keys() and all(state[k].shape == before[k].shape for k in state)
    restored = build_tiny("gpt2", "lm", seed=9)
    restored.load_state_dict(state)
    again = prune_model(restored, keep)
    for name, p in dropped.model.state_dict().items():
        assert torch.equal(again.state_dict()[name], p), f"{name}: the trained entries are written back in place"
    untouched = torch.ones(before["transformer.wte.weight"].numel(), dtype=torch.bool)
    untouched[dropped.index["transformer.wte.weight"].view(-1)] = False
    assert untouched.any(), "the keep-set dropped hidden dimensions"
    assert torch.equal(state["transformer.wte.weight"].view(-1)[untouched], before["transformer.wte.weight"].view(-1)[untouched])

    # The full optimiser state a checkpoint holds: loaded into a full AdamW and dropped again, the same moments.
    full_opt = torch.optim.AdamW(restored.parameters(), lr=1e-2, weight_decay=0.01)
    full_opt.load_state_dict(dropped.full_optimizer_state(small_opt))
    resliced = DroppedStudent(restored, keep, torch.device("cpu")).optimizer(full_opt)
    for p, q in zip(small_opt.param_groups[0]["params"], resliced.param_groups[0]["params"]):
        for k in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(small_opt.state[p][k], resliced.state[q][k]), k


@pytest.fixture(scope="module")
def dropout_free_task(task_dir, tmp_path_factory):
    """The test task with a teacher without dropout: runs with and without the drop then differ by float rounding only."""
    d = tmp_path_factory.mktemp("nodropout")
    model = build_tiny("bert", "classification", seed=0, hidden_size=48, intermediate_size=96, **NO_DROPOUT["bert"])
    save_model(model, str(d / "model"))
    for split in ("train", "eval"):
        (d / split).symlink_to(task_dir / split)
    return d


def compress_logged(caplog, params: dict, job: api.Job | None = None) -> tuple[dict, bool]:
    """A run's result, and whether it dropped its closed units."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vtrans"):
        result = api.call("compress", params, job or api.Job())
    return result, any("closed units dropped" in r.getMessage() for r in caplog.records)


def outputs(run) -> tuple[dict, dict]:
    return load_file(str(run / "masks.safetensors")), load_file(str(run / "model" / "model.safetensors"))


@pytest.mark.parametrize("method", ["vtrans", "faster"])
def test_a_run_with_the_drop_reaches_the_same_model(dropout_free_task, tmp_path, caplog, method):
    common = dict(method=method, keep=0.4, minPruneSteps=40, minFinetuneSteps=10, sweep=[0.7], probeExamples=0, threads=1, seed=1)
    runs = {}
    for drop in (False, True):
        run = tmp_path / f"drop-{drop}"
        result, dropped_any = compress_logged(caplog, settings_for(dropout_free_task, run, vib={"dropClosed": drop}, **common))
        assert dropped_any == drop
        runs[drop] = (result, *outputs(run))
    (plain, plain_masks, plain_model), (dropped, dropped_masks, dropped_model) = runs[False], runs[True]
    assert dropped["achieved"] == plain["achieved"]
    for k in plain_masks:
        # A closed unit's Fisher information is its gate's gradient, which a dropped unit no longer has; its μ is 0,
        # so no cut reads it (the importance is ½·F·μ²).
        open_ = plain_masks[k.replace(".fisher", ".mu")] != 0
        assert torch.allclose(plain_masks[k][open_], dropped_masks[k][open_], atol=1e-4), k
    assert plain_model.keys() == dropped_model.keys()
    for k in plain_model:
        if k.endswith("key.bias"):
            continue  # its gradient is 0 in exact arithmetic (softmax ignores a constant per query): AdamW follows rounding
        assert torch.allclose(plain_model[k], dropped_model[k], atol=1e-4), f"{k}: {(plain_model[k] - dropped_model[k]).abs().max()}"


def test_a_run_resumed_after_the_drop_reaches_the_same_model(dropout_free_task, tmp_path, caplog):
    """Cancelled after the commit (its checkpoint holds the full shapes), then resumed: the drop again, the same model."""
    common = dict(method="vtrans", keep=0.4, minPruneSteps=40, minFinetuneSteps=10, sweep=[], probeExamples=0, threads=1, seed=1)
    common.update(vib={"dropClosed": True}, checkpointEvery=5)
    whole = tmp_path / "whole"
    compress_logged(caplog, settings_for(dropout_free_task, whole, **common))
    job = api.Job()
    job.progress = lambda p: job.cancelled.set() if p["phase"] == "prune" and p["step"] >= 32 else None
    params = settings_for(dropout_free_task, tmp_path / "cut", **common)
    with pytest.raises(Exception) as err:
        compress_logged(caplog, params, job)
    assert type(err.value).__name__ == "Cancelled"
    _, dropped_again = compress_logged(caplog, {**params, "resume": True})
    assert dropped_again, "the resumed run drops the units its checkpoint's gates hold closed"
    (a_masks, a_model), (b_masks, b_model) = outputs(whole), outputs(tmp_path / "cut")
    for k in a_masks:
        if k.endswith(".mu"):
            assert torch.allclose(a_masks[k], b_masks[k], atol=1e-5), k
    for k in a_model:
        if not k.endswith("key.bias"):
            assert torch.allclose(a_model[k], b_model[k], atol=1e-5), k
