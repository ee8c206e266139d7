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


@pytest.mark.parametrize("method", ["random", "magnitude", "taylor", "torch-pruning", "cofi", "kwon"])
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


def test_cofi_layer_matching_goes_down_the_layers_and_skips_layers_without_attention():
    """CoFi's dynamic matching: targets every third teacher layer from the last; each matched to the student layer
    with the lowest error below the previous match, among layers whose attention is on."""
    from vtrans.shards import Batch
    from vtrans.teacher import MatchedLayers

    m = MatchedLayers(8, 8, 6)
    assert m.targets == [2, 5] and MatchedLayers(8, 8, 12).targets == [2, 5, 8, 11]
    with torch.no_grad():
        m.transform.weight.copy_(torch.eye(8))
        m.transform.bias.zero_()
    g = torch.Generator().manual_seed(0)
    teacher = [torch.randn(2, 5, 8, generator=g) for _ in range(6)]
    batch = Batch(torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 5, dtype=torch.long), None)
    noise = lambda t, scale: t + scale * torch.randn(t.shape, generator=g)  # noqa: E731
    student = [torch.randn(2, 5, 8, generator=g) * 3 for _ in range(6)]
    student[1], student[4], student[3] = teacher[2], teacher[5], noise(teacher[5], 0.3)
    assert m.align(m.errors(student, teacher, batch)) == [1, 4]
    assert float(m.loss(student, teacher, batch).detach()) == pytest.approx(0.0, abs=1e-6)
    assert m.align(m.errors(student, teacher, batch), existing=[True, True, True, True, False, True]) == [1, 3]
    # The last target takes student layer 5, which the first target would also match best: it must go below.
    student = [torch.randn(2, 5, 8, generator=g) * 3 for _ in range(6)]
    teacher[5] = noise(teacher[2], 0.05)
    student[5], student[1] = teacher[2], noise(teacher[2], 0.5)
    assert m.align(m.errors(student, teacher, batch)) == [1, 5]
    kept = torch.tensor([0, 2, 3, 7])
    x = torch.zeros(2, 5, 8)
    x[..., kept] = torch.randn(2, 5, 4, generator=g)
    assert torch.allclose(m.narrowed(kept).transform(x[..., kept]), m.transform(x), atol=1e-6), "the kept columns"


def test_cofi_trains_its_layer_map_in_pruning_and_fine_tunes_with_it_narrowed(task_dir, tmp_path):
    from vtrans.runs import RunDir
    from vtrans.safetensors_io import load_file
    from vtrans.teacher import MatchedLayers

    run = tmp_path / "run"
    settings = dict(method="cofi", keep=0.4, sweep=[], probeExamples=0, pruneEpochs=0, minPruneSteps=4, finetuneEpochs=0)
    api.call("compress", settings_for(task_dir, run, minFinetuneSteps=3, checkpointEvery=2, **settings), api.Job())
    trained = load_file(str(run / "checkpoints" / "cofi-layer-map.safetensors"))
    start = MatchedLayers(trained["transform.weight"].shape[1], trained["transform.weight"].shape[0], 2, seed=0).state_dict()
    assert not torch.equal(trained["transform.weight"], start["transform.weight"]), "trained in phase 1"
    state = RunDir(str(run)).load_latest_checkpoint()
    assert state is not None and state["phase"] == "finetune"
    narrowed = state["proj"]["transform.weight"]
    kept_hidden = load_file(str(run / "model" / "model.safetensors"))
    width = next(t.shape[-1] for k, t in kept_hidden.items() if k.endswith("word_embeddings.weight"))
    assert narrowed.shape == (trained["transform.weight"].shape[0], width), "reads the kept hidden dimensions"


def test_kwon_fisher_is_the_sum_of_squared_batch_gradients_and_dead_units_have_none(tmp_path):
    from vtrans.kwon_peer import batch_mask_gradients, fisher_information
    from vtrans.models import Gates
    from vtrans.shards import Shards

    model = build_tiny("bert", "classification", seed=1)
    _dead_units(model)
    seqs, labels = synthetic_classification(48, seed=2)
    shards = Shards(write_shards(str(tmp_path / "d"), seqs, labels, label_names=["a", "b", "c"]))
    grads = batch_mask_gradients(model, shards, torch.device("cpu"), samples=48, batch_size=16, seed=0)
    fisher = fisher_information(grads)
    assert grads["ffn"].shape == (3, sum(l.ffn for l in model.shape.layers)), "one row per mini-batch"
    assert fisher["heads"][1] == 0 and fisher["ffn"][sum(l.ffn for l in model.shape.layers[:2]) + 5] == 0
    order = np.random.default_rng(0).permutation(48)
    s = model.shape
    by_hand = torch.zeros(sum(l.ffn for l in s.layers), dtype=torch.float64)
    model.eval()
    for i in range(3):
        ffn = torch.ones(sum(l.ffn for l in s.layers), requires_grad=True)
        gates = Gates(ffn=list(torch.split(ffn, [l.ffn for l in s.layers])))
        b = shards.batch(order[16 * i : 16 * i + 16])
        logits = model.run(b.input_ids, b.attention_mask, b.token_type_ids, gates=gates).logits
        (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, b.labels), ffn)
        by_hand += g.double().pow(2)
    assert torch.allclose(fisher["ffn"], by_hand, rtol=1e-4, atol=1e-12)
    assert all(p.requires_grad for p in model.parameters()), "the weights' flags are given back"


def test_kwon_mask_search_finds_the_best_pair_of_counts_under_the_budget():
    """Their Algorithm 1: over every number of heads kept (the most important ones), the most important neurons that
    fit; checked against all pairs of counts, and the kept set meets the budget."""
    from vtrans.budget import size_of
    from vtrans.kwon_peer import search
    from vtrans.prune import KeepSet

    s = build_tiny("bert", "classification", seed=1).shape
    g = torch.Generator().manual_seed(3)
    n_heads, n_ffn = sum(l.kv_heads for l in s.layers), sum(l.ffn for l in s.layers)
    fisher = {"heads": torch.rand(n_heads, generator=g) * 50, "ffn": torch.rand(n_ffn, generator=g)}
    kind, keep = "encoder-params", 0.4

    def kept_size(heads: torch.Tensor, ffn: torch.Tensor) -> float:
        split = lambda m, sizes: [torch.nonzero(t).flatten() for t in torch.split(m, sizes)]  # noqa: E731
        ks = KeepSet(torch.arange(s.hidden), split(heads, [l.kv_heads for l in s.layers]), split(ffn, [l.ffn for l in s.layers]))
        return size_of(ks.pruned_shape(s), kind, 10.0)

    full = size_of(s, kind, 10.0)
    chosen = search(s, fisher, keep, kind, 10.0)
    value = float(fisher["heads"][chosen["heads"]].sum() + fisher["ffn"][chosen["ffn"]].sum())
    assert kept_size(chosen["heads"], chosen["ffn"]) <= keep * full + 1e-6
    ho, no = torch.argsort(-fisher["heads"]), torch.argsort(-fisher["ffn"])
    best = 0.0
    for h in range(n_heads + 1):
        heads = torch.zeros(n_heads, dtype=torch.bool)
        heads[ho[:h]] = True
        if kept_size(heads, torch.zeros(n_ffn, dtype=torch.bool)) > keep * full:
            break  # these heads alone are over the budget
        lo, hi = 0, n_ffn  # the most neurons that fit beside h heads (sizes grow with the count)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            ffn = torch.zeros(n_ffn, dtype=torch.bool)
            ffn[no[:mid]] = True
            lo, hi = (mid, hi) if kept_size(heads, ffn) <= keep * full else (lo, mid - 1)
        best = max(best, float(fisher["heads"][ho[:h]].sum() + fisher["ffn"][no[:lo]].sum()))
    assert value == pytest.approx(best, rel=1e-6)


def test_kwon_rearrangement_prunes_together_the_units_whose_gradients_cancel():
    """Inside a layer, two units with large but opposite gradients cost little pruned together; the diagonal Fisher
    prunes the weakest unit instead. The count per layer stays, and the pruned set's block-diagonal loss is never
    above the diagonal choice's."""
    from vtrans.kwon_peer import rearrange

    v, w = torch.tensor([3.0, -1.0, 2.0, 0.5], dtype=torch.float64), torch.tensor([0.4, 0.3, -0.2, 0.1], dtype=torch.float64)
    layer0 = torch.stack([w, 0.99 * v, -v])  # unit 0 weakest by Fisher; units 1 and 2 nearly cancel
    layer1 = torch.stack([0.1 * w, w, v, 2 * v])
    grads = torch.cat([layer0, layer1]).T  # (batches, units)
    kept = torch.tensor([False, False, True, False, True, True, True])  # the diagonal's choice: prune 0 and 1
    out = rearrange(kept, grads, [3, 4])
    assert out[:3].tolist() == [True, False, False], "units 1 and 2 pruned together"
    assert out[3:].tolist() == kept[3:].tolist(), "a layer whose weakest unit is also the best to prune is left"

    def loss(mask: torch.Tensor, g: torch.Tensor) -> float:
        return float(g[:, ~mask].sum(1).pow(2).sum())

    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        g = torch.randn(8, 10, generator=gen, dtype=torch.float64) * torch.rand(10, generator=gen, dtype=torch.float64)
        diagonal = torch.ones(10, dtype=torch.bool)
        diagonal[torch.argsort(g.pow(2).sum(0))[:6]] = False
        got = rearrange(diagonal, g, [10])
        assert int((~got).sum()) == 6 and loss(got, g) <= loss(diagonal, g) + 1e-12


def test_kwon_runs_without_training_and_refits_the_kept_scales(task_dir, tmp_path):
    from vtrans.safetensors_io import load_file

    def run(name: str, **extra):
        out = tmp_path / name
        settings = settings_for(task_dir, out, method="kwon", keep=0.5, budget="encoder-params", sweep=[], probeExamples=0, **extra)
        return out, api.call("compress", settings, api.Job())

    refit, result = run("refit")
    plain, plain_result = run("plain", correction={"enabled": False})
    assert 0.49 <= result["achieved"] <= 0.5 and result["units"] == plain_result["units"], "the same units either way"
    phases = {json.loads(line)["phase"] for line in (refit / "metrics.jsonl").read_text().splitlines()}
    assert "finetune" not in phases, phases
    a, b = load_file(str(refit / "model" / "model.safetensors")), load_file(str(plain / "model" / "model.safetensors"))
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert changed and all("embeddings" not in k for k in changed), "only the kept units' weights are refit"
