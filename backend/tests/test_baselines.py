"""The benchmark's baselines: their keep-set selection, and the same harness running them to the budget."""

import json

import numpy as np
import pytest
import torch
from conftest import settings_for

from vtrans import api
from vtrans.baselines import magnitude_scores, random_scores, taylor_scores
from vtrans.budget import select_keep
from vtrans.testing import build_tiny, synthetic_classification, write_shards


def _dead_units(model):
    """Zeroes the weights of head 1 in layer 0 and neuron 5 in layer 2 (they do nothing any more)."""
    s = model.shape
    d = s.head_dim
    with torch.no_grad():
        layer0, layer2 = model.bert.encoder.layer[0], model.bert.encoder.layer[2]
        for m in (layer0.attention.self.query, layer0.attention.self.key, layer0.attention.self.value):
            m.weight[d : 2 * d] = 0
            m.bias[d : 2 * d] = 0
        layer0.attention.output.dense.weight[:, d : 2 * d] = 0
        layer2.intermediate.dense.weight[5] = 0
        layer2.intermediate.dense.bias[5] = 0
        layer2.output.dense.weight[:, 5] = 0


@pytest.mark.parametrize("criterion", ["magnitude", "taylor"])
def test_criteria_rank_dead_units_last(tmp_path, criterion):
    model = build_tiny("bert", "classification", seed=1)
    _dead_units(model)
    s = model.shape
    if criterion == "magnitude":
        scores = magnitude_scores(model)
    else:
        seqs, labels = synthetic_classification(64, seed=2)
        from vtrans.shards import Shards

        scores = taylor_scores(
            model, Shards(write_shards(str(tmp_path / "d"), seqs, labels, label_names=["a", "b", "c"])), torch.device("cpu"), batches=2
        )
    heads_first = torch.argsort(scores["heads"])[0].item()
    assert heads_first == 1, "head 1 of layer 0 (flat index 1) is the weakest"
    ffn_layer2_start = sum(l.ffn for l in s.layers[:2])
    assert torch.argsort(scores["ffn"])[0].item() == ffn_layer2_start + 5
    # Baselines never prune hidden dimensions or whole sublayers directly.
    assert bool((scores["hidden"] > 1e8).all()) and bool((scores["attn"] > 1e8).all())
    sel = select_keep(s, scores, "encoder-params", 0.6, 10.0)
    assert 1 not in sel.keep.heads[0].tolist() and 5 not in sel.keep.ffn[2].tolist()
    assert len(sel.keep.hidden) == s.hidden


def test_random_scores_are_seeded():
    s = build_tiny("gpt2", "lm").shape
    a, b, c = random_scores(s, 1), random_scores(s, 1), random_scores(s, 2)
    assert torch.equal(a["heads"], b["heads"]) and not torch.equal(a["ffn"], c["ffn"])


@pytest.mark.parametrize("method", ["random", "magnitude", "taylor", "torch-pruning", "cofi"])
def test_baselines_run_through_the_same_harness(task_dir, tmp_path, method):
    result = api.call(
        "compress",
        settings_for(
            task_dir,
            tmp_path / "run",
            method=method,
            budget="encoder-params",
            keep=0.5,
            sweep=[],
            probeExamples=0,
            finetuneEpochs=0,
            minFinetuneSteps=10,
        ),
        api.Job(),
    )
    assert 0.49 <= result["achieved"] <= 0.5
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["method"] == method and report["student"]["metric"]["count"] == 80
    if method != "cofi":
        assert result["units"]["hidden"]["kept"] == result["units"]["hidden"]["total"]


def test_torch_pruning_prunes_the_hugging_face_model_as_the_cut_does(task_dir):
    """Torch-Pruning, run for real on the Hugging Face model, removes whole heads and FFN neurons; the same units
    cut from the project's model give the same logits, so its choice is read off correctly."""
    from vtrans.checkpoint import load_model
    from vtrans.prune import prune_model
    from vtrans.shards import Shards
    from vtrans.torch_pruning_peer import _load, _plan

    tp, hf = _load(str(task_dir / "model"))
    b = Shards(str(task_dir / "eval")).batch(np.arange(8))
    example = {"input_ids": b.input_ids, "attention_mask": b.attention_mask}
    plan, pruned = _plan(tp, hf, example, 0.5, prune=True)
    ours = load_model(str(task_dir / "model"))
    keep = plan.keep_set(ours.shape)
    assert all(len(h) == 2 for h in keep.heads) and all(len(f) == 48 for f in keep.ffn), keep.counts()
    assert pruned.bert.encoder.layer[0].attention.self.query.out_features == 2 * 12
    with torch.no_grad():
        theirs = pruned(**example).logits
        cut = prune_model(ours, keep).run(b.input_ids, b.attention_mask, b.token_type_ids).logits
    assert torch.allclose(theirs, cut, atol=1e-4), (theirs - cut).abs().max()


def test_torch_pruning_scores_put_its_choice_first_and_meet_the_budget(task_dir):
    from vtrans.checkpoint import load_model
    from vtrans.shards import Shards
    from vtrans.torch_pruning_peer import torch_pruning_scores

    shape = load_model(str(task_dir / "model")).shape
    scores, chosen = torch_pruning_scores(str(task_dir / "model"), shape, Shards(str(task_dir / "train")), 0.4, "encoder-params", 16)
    assert 0.37 <= chosen["achieved"] <= 0.4 and chosen["headsRemoved"] > 0 and chosen["neuronsRemoved"] > 0
    sel = select_keep(shape, scores, "encoder-params", 0.4, 16)
    assert abs(sel.fraction - 0.4) < 0.01
    # Its choice is at or under the budget, so the exact cut keeps all of it and fills the rest in its importance order.
    for kind, per_layer, count in (("heads", sel.keep.heads, "kv_heads"), ("ffn", sel.keep.ffn, "ffn")):
        offsets = np.cumsum([0] + [getattr(l, count) for l in shape.layers])
        for layer, kept in enumerate(per_layer):
            chosen = torch.nonzero(scores[kind][offsets[layer] : offsets[layer + 1]] >= 1).flatten()
            assert set(chosen.tolist()) <= set(kept.tolist()), (kind, layer)


def _cofi_gates():
    from vtrans.l0 import HardConcreteGates
    from vtrans.vib import VIBSettings

    torch.manual_seed(0)
    return HardConcreteGates(build_tiny("bert", "classification", seed=1).shape, VIBSettings())


def test_cofi_gates_start_as_cofi_and_sample_once_per_step():
    """CoFi's start: heads, sublayers and hidden dimensions open (log α 10), FFN neurons at drop rate 0.5 (log α 0),
    with 0.01 jitter; one hard-concrete draw per unit shared by the whole batch."""
    g = _cofi_gates()
    for name in ("heads", "attn", "ffn_layer", "hidden"):
        assert torch.allclose(g.log_alpha[name], torch.full_like(g.log_alpha[name], 10.0), atol=0.05), name
    ffn = g.log_alpha["ffn"].detach()
    assert abs(float(ffn.mean())) < 0.01 and 0.005 < float(ffn.std()) < 0.02
    gates = g.sample(8)
    assert gates.hidden.shape == (g.shape.hidden,) and gates.ffn[0].shape == (g.shape.layers[0].ffn,), "one draw for the batch"
    first, second = g.sample(8).ffn[0], g.sample(8).ffn[0]
    assert not torch.equal(first, second), "a new draw every step"


def test_cofi_deterministic_cut_closes_the_expected_number_per_layer_and_type():
    from vtrans.budget import threshold_keep
    from vtrans.l0 import BETA, SOFT_MASK_FACTOR

    g = _cofi_gates()
    n0 = g.shape.layers[0].ffn
    with torch.no_grad():
        g.log_alpha["ffn"][:n0] = torch.linspace(-4, 4, n0)  # layer 0: about half expected closed
        g.log_alpha["attn"][1] = -4.0  # layer 1's attention: closed
        g.log_alpha["heads"][0] = -4.0  # head 0 of layer 0
        g.log_alpha["hidden"][:3] = -4.0
    keep = threshold_keep(g.shape, g.scores())
    expected_closed = round(n0 - float(g.keep_probs("ffn")[:n0].detach().sum()))
    assert len(keep.ffn[0]) == n0 - expected_closed and keep.ffn[0].min() == n0 - len(keep.ffn[0]), "lowest log α closed"
    assert len(keep.heads[1]) == 0 and 0 not in keep.heads[0].tolist()
    assert len(keep.hidden) == g.shape.hidden - 3 and min(keep.hidden.tolist()) == 3
    scale = g.unit_scales()["ffn"][n0 - 1]
    assert torch.isclose(scale, torch.sigmoid(torch.tensor(4.0) / BETA * SOFT_MASK_FACTOR)), "kept units carry their soft mask"


def test_cofi_log_alpha_stays_in_its_clamp_through_training(task_dir, tmp_path):
    from vtrans.l0 import LOG_ALPHA_MAX, LOG_ALPHA_MIN
    from vtrans.safetensors_io import load_file

    run = tmp_path / "run"
    settings = dict(method="cofi", keep=0.5, sweep=[], probeExamples=0, pruneEpochs=0, minPruneSteps=3, finetuneEpochs=0)
    api.call("compress", settings_for(task_dir, run, minFinetuneSteps=1, **settings), api.Job())
    masks = load_file(str(run / "masks.safetensors"))
    alphas = [t for k, t in masks.items() if "log_alpha" in k]
    assert alphas, sorted(masks)
    assert all(float(t.max()) <= LOG_ALPHA_MAX + 1e-6 and float(t.min()) >= LOG_ALPHA_MIN - 1e-6 for t in alphas), (
        "clamped after every step"
    )
