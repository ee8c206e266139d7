"""The algorithm's pieces: schedules, the teacher's cached outputs, closed gates, the norm's precision, the
cost-aware cut on large shapes, the least-squares correction, and the hard cut against the expected size."""

import json

import numpy as np
import pytest
import torch
from conftest import settings_for

from vtrans import api
from vtrans.budget import Ranking, expected_fraction, select_keep, size_of, threshold_keep
from vtrans.correction import Corrector, output_projection, refit_of
from vtrans.evaluate import lm_loss
from vtrans.masks import MaskLadder
from vtrans.models.common import Gates, WeightedLayerNorm, layer_norm
from vtrans.prune import KeepSet, Refit, UnitScales, masked_gates, output_projection_of, prune_model
from vtrans.report import Metric
from vtrans.selection import ScaleChoice, Selector
from vtrans.settings import RECIPES, VIBSettings, parse_settings, schedule_of
from vtrans.shards import Batch, Shards
from vtrans.structure import shape_from_config
from vtrans.teacher import TeacherCache, TeacherOutputs, hidden_mse, lm_distill_loss, topk_kd
from vtrans.testing import LLAMA_2_7B, build_tiny, randomize, write_shards
from vtrans.train import Compressor
from vtrans.vib import GRANULARITIES, VIBGates


def _compressor(task_dir, tmp_path, **overrides) -> Compressor:
    c = Compressor(parse_settings(settings_for(task_dir, tmp_path / "run", **overrides)))
    c.run.create(c.s)
    c.load()
    return c


# ----------------------------------------------------------------------------------------------------------------
# Schedules


def test_fast_and_faster_run_their_epochs_over_the_fraction(task_dir, tmp_path):
    """No floor undoes the data fraction: the phases are epochs over the examples the method reads."""
    for method in ("fast", "faster", "vtrans"):
        s = parse_settings({**settings_for(task_dir, tmp_path / method, method=method), "minPruneSteps": 0, "pruneEpochs": None})
        c = Compressor(s)
        c.load()
        plan = c.plan("prune", c.sched.prune_epochs, c.sched.min_prune_steps)
        n = len(c.train)
        examples = n if method == "vtrans" else max(1, round(n * s.data_fraction))
        assert len(plan.order) == examples
        assert plan.steps == round(RECIPES[method].prune_epochs * -(-examples // s.batch_size))
    defaults = parse_settings({"modelDir": "m", "trainShards": "t", "evalShards": "e", "runDir": "r"})
    assert defaults.prune_epochs is None and defaults.min_prune_steps == 0
    for method, recipe in RECIPES.items():
        sched = schedule_of(parse_settings({"modelDir": "m", "trainShards": "t", "evalShards": "e", "runDir": "r", "method": method}))
        assert (sched.prune_epochs, sched.finetune_epochs) == (recipe.prune_epochs, recipe.finetune_epochs)
        assert sched.fraction == (0.03 if recipe.fraction else 1.0)
    assert not schedule_of(
        parse_settings({"modelDir": "m", "trainShards": "t", "evalShards": "e", "runDir": "r", "method": "faster"})
    ).finetune


# ----------------------------------------------------------------------------------------------------------------
# The teacher: once per example, not at all without distillation, one copy for Faster-VTrans


class _Counter:
    """Examples that went through the teacher's own forward pass (not a copy's: the student is a deep copy)."""

    def __init__(self, model):
        self.examples = 0
        body = model.body

        def hook(module, args):
            if module is body:
                self.examples += args[0].shape[0]

        body.register_forward_pre_hook(hook)


def test_the_teacher_runs_once_per_example_and_not_at_all_without_distillation(task_dir, tmp_path):
    c = _compressor(task_dir, tmp_path, method="fast", pruneEpochs=3, minPruneSteps=0)
    count = _Counter(c.teacher)
    c.phase_prune(None)
    plan = c.plan("prune", 3, 0)
    assert plan.steps == 3 * plan.steps_per_epoch  # three epochs over the fraction
    assert count.examples == len(plan.order)  # each example once, though the phase saw it three times

    off = _compressor(task_dir, tmp_path / "off", method="fast", minPruneSteps=6, distill={"enabled": False})
    count = _Counter(off.teacher)
    off.phase_prune(None)
    assert count.examples == 0


def test_cached_and_recomputed_teacher_outputs_train_the_same_gates(task_dir, tmp_path):
    """A cap below the data recomputes the rest at every step; values go through the same rounding either way."""
    runs = {}
    for cap in (1024, 0):
        c = _compressor(task_dir, tmp_path / str(cap), method="fast", minPruneSteps=12, distill={"cacheMb": cap}, threads=1)
        torch.manual_seed(0)
        c.phase_prune(None)
        runs[cap] = c.gates.state()
    for k in runs[0]:
        assert torch.allclose(runs[0][k], runs[1024][k], atol=1e-4), k


def test_faster_vtrans_holds_one_copy_of_the_model(task_dir, tmp_path):
    c = _compressor(task_dir, tmp_path, method="faster")
    c.setup_prune()
    assert c.student is c.teacher
    assert all(not p.requires_grad for p in c.student.parameters())
    c.new_teacher_cache()
    assert c.teacher_cache is not None and c.teacher_cache.teacher is c.teacher


def test_topk_distillation_is_exact_with_the_whole_vocabulary_and_close_with_the_top_k():
    torch.manual_seed(0)
    V, N, T = 50, 40, 2.0
    s = torch.randn(N, V, requires_grad=True)
    t = torch.randn(N, V) * 3
    full = torch.nn.functional.kl_div(torch.log_softmax(s / T, -1), torch.softmax(t / T, -1), reduction="batchmean") * T * T
    logp = torch.log_softmax(t / T, -1)
    for k in (V, 20):
        top, idx = logp.topk(k, -1)
        tail = torch.log1p(-top.exp().sum(-1).clamp(max=1 - 1e-6))
        kd = topk_kd(s, idx, top, tail, T)
        if k == V:
            assert float(kd.detach()) == pytest.approx(float(full.detach()), rel=1e-4, abs=1e-5)
        else:
            assert 0 < float(kd.detach()) <= float(full.detach()) + 1e-6  # a coarsening never increases the KL
    kd.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_lm_distillation_matches_the_two_losses_side_by_side(dtype):
    """The fused op's value and gradient are those of `lm_loss` and `topk_kd` computed apart, with padding, a
    vocabulary wider than one row block, and a row whose student puts all its mass on the teacher's top k (the clamp)."""
    torch.manual_seed(0)
    B, L, V, k, T, alpha = 3, 7, 70_000, 5, 2.0, 0.3
    ids = torch.randint(0, V, (B, L))
    mask = torch.ones(B, L, dtype=torch.long)
    mask[1, 4:] = 0
    logp = torch.log_softmax(torch.randn(B, L, V) * 4 / T, -1)
    top, idx = logp.topk(k, -1)
    tail = torch.log1p(-top.exp().sum(-1).clamp(max=1 - 1e-6))
    teacher = TeacherOutputs(top_idx=idx, top_logp=top, tail_logp=tail)
    batch = Batch(input_ids=ids, attention_mask=mask, labels=None)
    logits = torch.randn(B, L, V) * 3
    logits[0, 1, idx[0, 1]] = 60.0  # the student's mass all in the teacher's top k: its tail's log is clamped
    logits = logits.to(dtype)
    grads = []
    for fused in (False, True):
        x = logits.clone().requires_grad_(True)
        if fused:
            loss = lm_distill_loss(x, teacher, batch, T, alpha)
        else:
            v = mask.bool()
            loss = (1 - alpha) * lm_loss(x, batch) + alpha * topk_kd(x[v], idx[v], top[v], tail[v], T)
        loss.backward()
        assert x.grad is not None and x.grad.dtype == dtype
        grads.append((float(loss), x.grad.float()))
    (ref, g_ref), (got, g_got) = grads
    assert got == pytest.approx(ref, rel=1e-5)
    assert torch.allclose(g_got, g_ref, atol=1e-3 * float(g_ref.abs().max()))
    assert float(g_got[1, 4:].abs().max()) == 0.0  # padding gets no gradient


def test_lm_teacher_cache_keeps_top_k(tmp_path):
    model = build_tiny("gpt2", "lm", seed=0)
    seqs = [list(np.random.default_rng(i).integers(3, 90, 12 + i % 5)) for i in range(10)]
    write_shards(str(tmp_path / "lm"), seqs, task="lm")
    shards = Shards(str(tmp_path / "lm"))
    import contextlib

    cache = TeacherCache(model, shards, torch.device("cpu"), contextlib.nullcontext, 2.0, 8, True, 2**30)
    assert cache.fill(np.arange(10)) == 10
    idx = np.array([3, 7, 1])
    batch = shards.batch(idx)
    cached = cache.outputs(idx, batch)
    fresh = cache.compute(batch)
    valid = batch.attention_mask.bool()
    assert torch.equal(cached.top_idx[valid], fresh.top_idx[valid])
    assert torch.allclose(cached.top_logp[valid], fresh.top_logp[valid], atol=1e-5)
    assert all(torch.allclose(a[valid], b[valid], atol=1e-2) for a, b in zip(cached.hidden, fresh.hidden))


# ----------------------------------------------------------------------------------------------------------------
# Defects: each of these tests failed before its fix


def test_hidden_mse_cannot_be_lowered_by_closing_dimensions():
    """The keep probabilities weight the error per dimension but get no gradient from it."""
    torch.manual_seed(0)
    student = [torch.randn(2, 5, 8, requires_grad=True)]
    teacher = [torch.randn(2, 5, 8)]

    class B:
        attention_mask = torch.ones(2, 5, dtype=torch.long)

    w = torch.full((8,), 0.9, requires_grad=True)
    loss = hidden_mse(student, teacher, B(), None, w)
    loss.backward()
    assert w.grad is None or float(w.grad.abs().max()) == 0.0
    assert student[0].grad is not None


def test_closed_units_are_exactly_zero_and_stay_closed():
    model = build_tiny("bert", "classification", seed=0)
    s = model.shape
    gates = VIBGates(s, VIBSettings())
    with torch.no_grad():
        gates.mu["ffn"][:5] = 1e-3
        gates.logvar["ffn"][:5] = 4.0  # log α ≈ −17.8: far below the threshold
    for _ in range(3):
        gates.close_units(below=4.0, steps=3)
    assert bool(gates.closed("ffn")[:5].all()) and not bool(gates.closed("ffn")[5:].any())
    z = gates.sample(16)
    assert torch.equal(z.ffn[0][:, :5], torch.zeros(16, 5))  # no noise from closed units
    assert float(gates.keep_probs("ffn")[:5].detach().sum()) == 0.0
    # An optimiser step does not reopen them.
    opt = torch.optim.Adam(gates.parameters(), lr=0.1)
    for _ in range(3):
        loss = sum(t.sum() for t in gates.sample(4).ffn) + gates.kl()
        opt.zero_grad()
        loss.backward()
        opt.step()
        gates.close_units(below=4.0, steps=3)
    assert float(gates.mu["ffn"][:5].abs().max()) == 0.0
    # The closed state survives masks.safetensors (μ = 0).
    again = VIBGates(s, VIBSettings())
    again.load(gates.state())
    assert bool(again.closed("ffn")[:5].all())


def test_masked_layer_norm_computes_its_statistics_in_float32_under_bf16():
    """As nn.LayerNorm does under autocast (the teacher's norm): the same bf16 input normalised in float32."""
    torch.manual_seed(0)
    norm = torch.nn.LayerNorm(64)
    x = (torch.randn(4, 16, 64) + 100.0).bfloat16()  # a large mean: bf16 statistics lose it
    w = torch.ones(64)
    w[::4] = 0.0
    keep = w.bool()
    ref = torch.nn.functional.layer_norm(x.float()[..., keep], (48,), norm.weight[keep], norm.bias[keep], norm.eps)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = layer_norm(x, norm, Gates(norm_dims=w)).float()
    assert float((low[..., keep] - ref).abs().max().detach()) < 1e-2


def _reference_layer_norm(x, w, weight, bias, eps):
    """The weighted LayerNorm written with autograd's operations: the closed-form backward must agree with it."""
    w_hat = w / w.sum()
    mean = (x * w_hat).sum(-1, keepdim=True)
    var = ((x - mean) ** 2 * w_hat).sum(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


@pytest.mark.parametrize("per_example", [False, True])
def test_weighted_layer_norm_gradients_match_autograd(per_example):
    """Every gradient of the closed-form norm (input, dimension weights, the gated weight and bias) against
    autograd through the same formula, in float64."""
    torch.manual_seed(0)
    B, T, H = 3, 5, 8
    x = (torch.randn(B, T, H, dtype=torch.float64) * 2 + 1).requires_grad_()
    w = torch.rand(H, dtype=torch.float64).add(0.1).requires_grad_()
    shape = (B, 1, H) if per_example else (H,)
    weight = torch.randn(shape, dtype=torch.float64).requires_grad_()
    bias = torch.randn(shape, dtype=torch.float64).requires_grad_()
    dy = torch.randn(B, T, H, dtype=torch.float64)
    ours = WeightedLayerNorm.apply(x, w / w.sum(), weight, bias, 1e-5)
    ref = _reference_layer_norm(x, w, weight, bias, 1e-5)
    assert torch.allclose(ours, ref, atol=1e-10)
    g_ours = torch.autograd.grad(ours, (x, w, weight, bias), dy)
    g_ref = torch.autograd.grad(ref, (x, w, weight, bias), dy)
    for name, a, b in zip(("x", "w", "weight", "bias"), g_ours, g_ref):
        assert torch.allclose(a, b, atol=1e-9), name


def test_gated_layer_norm_equals_the_norm_then_the_hidden_gates():
    """The hidden gates folded into the norm's weight and bias give the product of the gated output, per example."""
    torch.manual_seed(1)
    norm = torch.nn.LayerNorm(16)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(4, 6, 16)
    w, hidden = torch.rand(16), torch.rand(4, 16)
    folded = layer_norm(x, norm, Gates(hidden=hidden, norm_dims=w))
    apart = layer_norm(x, norm, Gates(norm_dims=w)) * hidden.unsqueeze(1)
    assert torch.allclose(folded, apart, atol=1e-5)


def _vib_ladder(
    shape, scores: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor] | None = None, mu: dict[str, float] | None = None
) -> MaskLadder:
    """A mask ladder whose final gates have the given scores (log α), μ (default 1) and Fisher information."""
    gates = VIBGates(shape, VIBSettings())
    with torch.no_grad():
        for g in GRANULARITIES:
            gates.mu[g].fill_((mu or {}).get(g, 1.0))
            gates.logvar[g].copy_(-scores[g])
            if fisher is not None:
                gates.fisher(g).copy_(fisher[g])
        gates.fisher_steps.fill_(1 if fisher is not None else 0)
    return MaskLadder(shape, VIBSettings(), gates.state(), {}, "faster")


def test_the_cut_weighs_importance_against_size():
    """A hidden dimension costs dozens of neurons: when removing either would cost the same loss, the cut gives up
    the hidden dimension, not the neurons (a raw log α ranking took the neurons, their log α a little lower)."""
    model = build_tiny("bert", "classification", seed=0)
    s = model.shape
    n = {"hidden": s.hidden, "heads": sum(l.kv_heads for l in s.layers), "attn": s.n_layers, "ffn": sum(l.ffn for l in s.layers)}
    n["ffn_layer"] = s.n_layers
    scores = {"hidden": 3.1, "heads": 6.0, "attn": 9.0, "ffn": 3.0, "ffn_layer": 9.0}
    scores = {g: torch.full((n[g],), v) for g, v in scores.items()}
    fisher = {g: torch.full((n[g],), 1.0 if g in ("hidden", "ffn") else 50.0) for g in n}
    selector = Selector(s, _vib_ladder(s, scores, fisher), "encoder-params", 0.9, 10.0, 1, lambda label: model)
    sel, _, _ = selector.choose(0.9)
    assert sel.shape.hidden < s.hidden
    assert [l.ffn for l in sel.shape.layers] == [l.ffn for l in s.layers]
    assert sel.fraction <= 0.9
    # Without a Fisher measurement (masks of older runs) the cut falls back to the score ranking.
    plain, _, _ = Selector(s, _vib_ladder(s, scores), "encoder-params", 0.9, 10.0, 1, lambda label: model).choose(0.9)
    assert plain.shape.hidden == s.hidden


def test_a_cut_is_corrected_once_per_budget():
    """The run's own budget is cut for the model and again for the sweep: the correction (minutes on thousands of
    examples) runs once, and both models are the same."""
    model = build_tiny("bert", "classification", seed=0)
    s = model.shape
    n = {"hidden": s.hidden, "heads": sum(l.kv_heads for l in s.layers), "attn": s.n_layers, "ffn": sum(l.ffn for l in s.layers)}
    n["ffn_layer"] = s.n_layers
    scores = {g: torch.linspace(1.0, 5.0, n[g]) for g in n}
    calls = []

    def correct(source, keep, scales):
        calls.append(keep.counts())
        return Refit(UnitScales(scales.hidden, [h * 0.5 for h in scales.heads], scales.attn, scales.ffn, scales.ffn_layer))

    selector = Selector(s, _vib_ladder(s, scores), "encoder-params", 0.6, 10.0, 1, lambda label: model, correct=correct)
    _, _, first = selector.cut(0.6)
    _, _, again = selector.cut(0.6)
    selector.cut(0.4)
    assert len(calls) == 2, calls
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True))


def _logit_agreement(teacher, ids: torch.Tensor):
    """A score for a cut model: minus its logits' squared error against the teacher's (higher is better)."""
    mask = torch.ones_like(ids)
    with torch.no_grad():
        want = teacher(ids, mask)

    def score(model) -> Metric:
        with torch.no_grad():
            return Metric("agreement", -float(((model.eval()(ids, mask) - want) ** 2).mean()), count=len(ids))

    return score


@pytest.mark.parametrize("trained_mu", [-1.0, 1.0])
def test_a_cut_of_frozen_weight_masks_takes_the_better_scales_once_per_budget(trained_mu):
    """Scales that wreck the model (μ = -1) lose to scale 1; scales of 1 tie, and a tie keeps the trained ones. The
    choice is made once per budget, for both output shapes, and the model the cut returns is the one that won, its
    score kept for an evaluation on as many examples."""
    model = build_tiny("bert", "classification", seed=0)
    s = model.shape
    n = {"hidden": s.hidden, "heads": sum(l.kv_heads for l in s.layers), "attn": s.n_layers, "ffn": sum(l.ffn for l in s.layers)}
    n["ffn_layer"] = s.n_layers
    ladder = _vib_ladder(s, {g: torch.linspace(1.0, 5.0, n[g]) for g in n}, mu={"heads": trained_mu, "ffn": trained_mu})
    calls, fits, scored = [], [], []
    agreement = _logit_agreement(model, torch.randint(0, s.vocab, (8, 12), generator=torch.Generator().manual_seed(0)))
    score = lambda m: scored.append(1) or agreement(m)  # noqa: E731
    fit = lambda source, keep, scales: fits.append(1) or Refit(scales)  # noqa: E731
    choice = ScaleChoice(score, lambda a, b: a > b, lambda: 8, lambda keep, name, scores: calls.append((keep, name, scores)))
    selector = Selector(s, ladder, "encoder-params", 0.6, 10.0, 1, lambda label: model, correct=fit, scale_choice=choice)
    sel, gates, cut = selector.cut(0.6)
    selector.cut(0.6)
    assert len(calls) == 1 and len(scored) == 2 and len(fits) == 1
    keep, name, scores = calls[0]
    assert keep == 0.6 and name == ("one" if trained_mu < 0 else "trained")
    assert scores["one"] > scores["trained"] if trained_mu < 0 else scores["one"] == scores["trained"]
    want = prune_model(model, sel.keep, UnitScales.ones(s) if trained_mu < 0 else gates.scales())
    assert all(torch.equal(a, b) for a, b in zip(cut.state_dict().values(), want.state_dict().values(), strict=True))
    assert selector.scored(0.6, 8).value == agreement(cut).value and selector.scored(0.6, 7) is None
    usel, ugates, ucut = selector.cut(0.6, shape="uniform")  # the budget's choice, neither scored nor corrected for scale 1
    assert len(calls) == 1 and len(scored) == 2 and len(fits) == (1 if trained_mu < 0 else 2)
    uwant = prune_model(model, usel.keep, UnitScales.ones(s) if trained_mu < 0 else ugates.scales())
    assert all(torch.equal(a, b) for a, b in zip(ucut.state_dict().values(), uwant.state_dict().values(), strict=True))
    assert selector.scored(0.6, 8, shape="uniform") is None  # not scored: a sweep evaluates it
    selector.cut(0.4, shape="uniform")  # a new budget: its first cut chooses, whatever the shape
    assert len(calls) == 2 and calls[1][0] == 0.4


def test_faster_vtrans_records_its_choice_and_ships_the_model_its_sweep_scored(task_dir, tmp_path):
    run = tmp_path / "run"
    api.call("compress", settings_for(task_dir, run, method="faster", keep=0.5, sweep=[0.3], probeExamples=0), api.Job())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    cuts = {r["keep"]: r for r in records if r["phase"] == "cut"}
    assert set(cuts) == {0.5, 0.3}, cuts  # one choice per budget: the run's own cut is not measured twice
    sweep = {p["keep"]: p["metric"] for p in json.loads((run / "report.json").read_text())["tradeoff"] if p["source"] == "sweep"}
    for keep, r in cuts.items():
        assert r["scales"] in ("trained", "one")
        assert sweep[keep] == pytest.approx(r["dev"][r["scales"]], abs=1e-9)
        assert r["dev"][r["scales"]] >= max(r["dev"].values())
    report = json.loads((run / "report.json").read_text())
    assert report["student"]["metric"]["value"] == pytest.approx(cuts[0.5]["dev"][cuts[0.5]["scales"]], abs=1e-9)
    assert {p["keep"] for p in report["tradeoff"] if p["source"] == "sweep:uniform"} == {0.5, 0.3}


def test_phase_1_measures_the_gates_fisher_information(task_dir, tmp_path):
    c = _compressor(task_dir, tmp_path, method="faster", minPruneSteps=6)
    c.phase_prune(None)
    state = c.gates.state()
    assert all(f"{g}.fisher" in state for g in GRANULARITIES)
    assert float(state["ffn.fisher"].sum()) > 0
    values = c.gates.values()
    assert values is not None and all(torch.isfinite(v).all() and (v >= 0).all() for v in values.values())


@pytest.mark.parametrize("round_to", [1, 8])
def test_cut_of_a_7b_shape_meets_every_budget(round_to):
    """The vectorised cut on a LLaMA-2-7B shape (350K units): within one small unit of the budget, both rules.
    (Its speed is measured by `python -m vtrans.benchmarks select`, not here.)"""
    s = shape_from_config(LLAMA_2_7B, "7b", "lm")
    g = torch.Generator().manual_seed(0)
    scores = {
        "hidden": torch.randn(s.hidden, generator=g) * 3,
        "heads": torch.randn(sum(l.kv_heads for l in s.layers), generator=g) * 3,
        "attn": torch.randn(s.n_layers, generator=g) + 5,
        "ffn": torch.randn(sum(l.ffn for l in s.layers), generator=g) * 3,
        "ffn_layer": torch.randn(s.n_layers, generator=g) + 5,
    }
    values = {k: 0.5 * torch.nn.functional.softplus(v) for k, v in scores.items()}
    for kind in ("params", "flops"):
        for vals in (None, values):
            r = Ranking(s, scores, kind, 512.0, round_to, vals)
            for keep in (0.9, 0.5, 0.1, 0.02):
                sel = r.select(keep)
                full = size_of(s, kind, 512.0)
                assert sel.size <= keep * full * (1 + 1e-12)
                assert sel.fraction >= keep - 0.002
                assert size_of(sel.shape, kind, 512.0) == pytest.approx(sel.size)
                assert sel.shape.hidden % round_to == 0 and all(l.ffn % round_to == 0 for l in sel.shape.layers)


def test_density_cut_keeps_at_least_the_information_of_the_score_cut():
    model = build_tiny("llama", "lm", seed=0)
    s = model.shape
    g = torch.Generator().manual_seed(1)
    scores = {
        k: torch.randn(n, generator=g) * 4 for k, n in (("hidden", s.hidden), ("heads", 6), ("attn", 3), ("ffn", 144), ("ffn_layer", 3))
    }
    values = {k: 0.5 * torch.nn.functional.softplus(v) for k, v in scores.items()}
    for i in range(3):  # a unit passes no more than its sublayer
        values["heads"][2 * i : 2 * i + 2] = torch.minimum(values["heads"][2 * i : 2 * i + 2], values["attn"][i])
        values["ffn"][48 * i : 48 * i + 48] = torch.minimum(values["ffn"][48 * i : 48 * i + 48], values["ffn_layer"][i])

    def info(sel) -> float:
        k = sel.keep
        return float(
            values["hidden"][k.hidden].sum()
            + sum(values["heads"][2 * i : 2 * i + 2][k.heads[i]].sum() for i in range(3))
            + sum(values["ffn"][48 * i : 48 * i + 48][k.ffn[i]].sum() for i in range(3))
        )

    for keep in (0.8, 0.5, 0.3, 0.1):
        dens = select_keep(s, scores, "params", keep, 20.0, values=values)
        raw = select_keep(s, scores, "params", keep, 20.0)
        assert info(dens) >= 0.99 * info(raw)  # a knapsack heuristic: within a unit or so of the score cut, usually above


# ----------------------------------------------------------------------------------------------------------------
# The least-squares correction


@pytest.mark.parametrize("family,task", [("bert", "classification"), ("gpt2", "lm"), ("llama", "lm")])
def test_output_projection_is_the_sublayer_output_weight(family, task):
    model = build_tiny(family, task, seed=0)
    names = {id(p): n for n, p in model.named_parameters()}
    want = {
        "bert": ("attention.output.dense.weight", "output.dense.weight"),
        "gpt2": ("attn.c_proj.weight", "mlp.c_proj.weight"),
        "llama": ("self_attn.o_proj.weight", "mlp.down_proj.weight"),
    }[family]
    for layer in range(model.shape.n_layers):
        for kind, suffix in zip(("attn", "ffn"), want):
            w = output_projection(model, layer, kind)
            assert w is not None and w.shape[0] == model.shape.hidden
            base = w if w.data_ptr() in {p.data_ptr() for p in model.parameters()} else w.t()
            assert names[next(id(p) for p in model.parameters() if p.data_ptr() == base.data_ptr())].endswith(suffix)


def _lm_shards(tmp_path, n=24, seed=0):
    rng = np.random.default_rng(seed)
    seqs = [list(rng.integers(3, 90, 16)) for _ in range(n)]
    write_shards(str(tmp_path / "cal"), seqs, task="lm")
    return Shards(str(tmp_path / "cal"))


def _random_cut(s, seed=0) -> KeepSet:
    g = torch.Generator().manual_seed(seed)
    return KeepSet(
        torch.arange(s.hidden),
        [torch.randperm(l.kv_heads, generator=g)[: max(1, l.kv_heads - 1)] for l in s.layers],
        [torch.randperm(l.ffn, generator=g)[: l.ffn // 2] for l in s.layers],
    )


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_correction_brings_the_cut_model_closer_to_the_model_before_the_cut(tmp_path, family):
    model = build_tiny(family, "lm", seed=0, **({"num_key_value_heads": 4} if family == "llama" else {}))
    randomize(model, 0, std=0.12)
    s = model.shape
    shards = _lm_shards(tmp_path)
    keep = _random_cut(s)
    scales = UnitScales.ones(s)
    refits = {
        kind: Corrector(shards, np.arange(len(shards)), torch.device("cpu"), refit=kind).correct(model, keep, scales)
        for kind in ("scales", "weights")
    }
    batch = shards.batch(np.arange(len(shards)))
    with torch.no_grad():
        ref = model.run(batch.input_ids, batch.attention_mask).logits
        raw = prune_model(model, keep, scales)(batch.input_ids, batch.attention_mask)
        fixed = {kind: prune_model(model, keep, r)(batch.input_ids, batch.attention_mask) for kind, r in refits.items()}
    err = lambda x: float(((x - ref) ** 2).mean())
    # Each sublayer's error shrinks; how much the logits gain depends on how well the kept units can stand in for
    # the removed ones (much for these GPT-2 neurons, little for random SiLU-gated ones). A whole projection can move
    # a removed unit's output onto the kept ones that correlate with it, which one multiplier per unit cannot.
    assert err(fixed["scales"]) < {"gpt2": 0.5, "llama": 0.97}[family] * err(raw)
    assert err(fixed["weights"]) < 0.8 * err(fixed["scales"]), {k: err(v) for k, v in fixed.items()}
    assert not refits["scales"].projections and torch.equal(refits["scales"].scales.hidden, scales.hidden)
    assert refits["weights"].scales is scales, "the weight refit leaves the scales as they were"
    assert set(refits["weights"].projections) == {(l, k) for l in range(s.n_layers) for k in ("attn", "ffn")}


def test_weight_refit_fits_the_calibration_examples_and_generalises(tmp_path):
    """On examples it did not read the refitted model is still closer to the model before the cut (a regression
    of a few thousand tokens on a sublayer's inputs, ridge-regularised towards the cut as it was)."""
    model = build_tiny("gpt2", "lm", seed=1)
    randomize(model, 1, std=0.12)
    s = model.shape
    shards = _lm_shards(tmp_path, n=64, seed=1)
    keep = _random_cut(s, seed=1)
    refit = Corrector(shards, np.arange(48), torch.device("cpu"), refit="weights").correct(model, keep, UnitScales.ones(s))
    held_out = shards.batch(np.arange(48, 64))
    with torch.no_grad():
        ref = model.run(held_out.input_ids, held_out.attention_mask).logits
        raw = prune_model(model, keep)(held_out.input_ids, held_out.attention_mask)
        fixed = prune_model(model, keep, refit)(held_out.input_ids, held_out.attention_mask)
    assert float(((fixed - ref) ** 2).mean()) < 0.7 * float(((raw - ref) ** 2).mean())


def test_what_the_correction_refits_by_method_and_setting():
    """Kwon et al.'s mask tuning is one multiplier per unit: their peer does not get the weight refit."""
    base = {"modelDir": "m", "trainShards": "t", "evalShards": "e", "runDir": "r", "correction": {"refit": "weights"}}
    assert refit_of(parse_settings({**base, "method": "kwon"})) == "scales"
    assert refit_of(parse_settings({**base, "method": "faster"})) == "weights"
    plain = {k: v for k, v in base.items() if k != "correction"}
    assert all(refit_of(parse_settings({**plain, "method": m})) == "scales" for m in ("faster", "fast", "vtrans")), "the default"


def test_correction_of_a_cut_that_keeps_everything_changes_nothing(tmp_path):
    model = build_tiny("bert", "classification", seed=0)
    s = model.shape
    seqs = [list(np.random.default_rng(i).integers(3, 90, 10)) for i in range(16)]
    write_shards(str(tmp_path / "c"), seqs, [i % 3 for i in range(16)], label_names=["a", "b", "c"])
    shards = Shards(str(tmp_path / "c"))
    scales = UnitScales.ones(s)
    out = Corrector(shards, np.arange(16), torch.device("cpu"), ridge=1e-3, refit="scales").correct(model, KeepSet.full(s), scales)
    for a, b in zip(out.scales.heads + out.scales.ffn, scales.heads + scales.ffn):
        assert torch.allclose(a, b, atol=1e-3)
    refit = Corrector(shards, np.arange(16), torch.device("cpu"), ridge=1e-3, refit="weights").correct(model, KeepSet.full(s), scales)
    for (layer, kind), (matrix, bias) in refit.projections.items():
        projection = output_projection_of(model, layer, kind)
        assert projection is not None and projection.bias is not None and bias is not None
        # Within the rounding of the reference's outputs, which are kept in fp16 (|w| is up to ~0.6 here).
        assert torch.allclose(matrix, projection.matrix(), atol=5e-3) and torch.allclose(bias, projection.bias.detach(), atol=5e-3)


# ----------------------------------------------------------------------------------------------------------------
# The hard cut matches training


def test_expected_size_and_the_threshold_keep_set_agree_at_the_end_of_phase_1(task_dir, tmp_path):
    """With the slope annealed to its final value, the Lagrangian's expected size is the size of the keep-set the
    threshold gives (a slope of 0.5 left them 0.1–0.2 apart)."""
    c = _compressor(task_dir, tmp_path, method="faster", keep=0.4, minPruneSteps=80, budget="encoder-params")
    c.phase_prune(None)
    gates = c.gates
    probs = {g: gates.split(g, gates.keep_probs(g)) for g in GRANULARITIES}
    probs["attn"] = list(gates.keep_probs("attn").unbind(0))
    probs["ffn_layer"] = list(gates.keep_probs("ffn_layer").unbind(0))
    expected = float(expected_fraction(c.shape, probs, "encoder-params", c.seq_len))
    kept = threshold_keep(c.shape, gates.scores())
    achieved = size_of(kept.pruned_shape(c.shape), "encoder-params", c.seq_len) / size_of(c.shape, "encoder-params", c.seq_len)
    assert abs(expected - achieved) <= 0.03, (expected, achieved)
    assert abs(expected - 0.4) <= 0.03, expected
    assert json.loads((tmp_path / "run" / "run.json").read_text())["settings"]["method"] == "faster"


def test_masked_gates_and_the_pruned_model_agree_after_a_correction(tmp_path):
    """The corrected scales fold into the pruned model like any scales (the cut equals the hard-masked model)."""
    model = build_tiny("llama", "lm", seed=0)
    s = model.shape
    shards = _lm_shards(tmp_path, n=8)
    keep = KeepSet(torch.arange(s.hidden - 4), [torch.tensor([0]), torch.arange(2), torch.tensor([1])], [torch.arange(20)] * 3)
    scales = Corrector(shards, np.arange(8), torch.device("cpu"), refit="scales").correct(model, keep, UnitScales.ones(s)).scales
    batch = shards.batch(np.arange(8))
    with torch.no_grad():
        masked = model.run(batch.input_ids, batch.attention_mask, gates=masked_gates(s, keep, scales)).logits
        pruned = prune_model(model, keep, scales)(batch.input_ids, batch.attention_mask)
    assert torch.allclose(masked, pruned, atol=1e-4)


def test_rethreshold_predict_and_sweep_share_the_selector(task_dir, tmp_path):
    run = tmp_path / "run"
    api.call("compress", settings_for(task_dir, run, method="faster", keep=0.5, sweep=[0.7, 0.3]), api.Job())
    report = json.loads((run / "report.json").read_text())
    points = {p["keep"]: p for p in report["tradeoff"] if p["source"] == "sweep"}
    pred = api.call("predict", {"runDir": str(run), "keep": 0.3}, api.Job())
    assert pred["params"] == points[0.3]["params"]
    out = api.call("rethreshold", {"runDir": str(run), "keep": 0.3, "outDir": str(tmp_path / "rt")}, api.Job())
    assert out["student"]["params"] == points[0.3]["params"]
    assert out["student"]["metric"]["value"] == pytest.approx(points[0.3]["metric"], abs=1e-6)
