"""Model surgery: loading, save/load round trips, physical pruning against the hard-masked model, exports."""

import json
import os
import pickle

import pytest
import torch

import vtrans
from vtrans.errors import CheckpointError
from vtrans.models import AttentionCapture
from vtrans.prune import KeepSet, UnitScales, masked_gates, prune_model
from vtrans.safetensors_io import load_file, save_file
from vtrans.structure import count_params
from vtrans.testing import FAMILY_TASKS, build_tiny

CASES = list(FAMILY_TASKS)
IDS = pytest.mark.parametrize("family,task", CASES, ids=[f"{f}-{t}" for f, t in CASES])


def batch(seed=0, b=3, t=11, vocab=97):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (b, t), generator=g)
    mask = torch.ones_like(ids)
    mask[1, t - 4 :] = 0  # right padding, as the data loader pads
    ids[1, t - 4 :] = 0 if b else ids[1, t - 4 :]
    return ids, mask


def compare(task, a, b, mask):
    """LM logits at padding positions are not meaningful; compare the real tokens."""
    if task == "lm":
        a, b = a[mask.bool()], b[mask.bool()]
    return (a - b).abs().max().item()


def random_keep(s, seed, hetero=True):
    g = torch.Generator().manual_seed(seed)
    pick = lambda n, k: torch.randperm(n, generator=g)[:k]
    heads, ffn = [], []
    for i, l in enumerate(s.layers):
        kh = int(torch.randint(1, l.kv_heads + 1, (1,), generator=g))
        kf = int(torch.randint(1, l.ffn + 1, (1,), generator=g))
        if hetero and i == 1:
            kh = 0  # attention sublayer removed
        if hetero and i == 2:
            kf = 0  # FFN sublayer removed
        heads.append(pick(l.kv_heads, kh))
        ffn.append(pick(l.ffn, kf))
    return KeepSet(pick(s.hidden, int(torch.randint(s.hidden // 2, s.hidden, (1,), generator=g))), heads, ffn)


def random_scales(s, seed):
    g = torch.Generator().manual_seed(seed + 100)
    r = lambda *n: 0.5 + torch.rand(*n, generator=g)
    return UnitScales(r(s.hidden), [r(l.kv_heads) for l in s.layers], r(s.n_layers), [r(l.ffn) for l in s.layers], r(s.n_layers))


@IDS
def test_load_runs_and_round_trips_bit_exactly(tmp_path, family, task):
    src = build_tiny(family, task, str(tmp_path / "a"), seed=3)
    loaded = vtrans.load_model(str(tmp_path / "a"))
    for (n1, p1), (n2, p2) in zip(src.state_dict().items(), loaded.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    vtrans.save_model(loaded, str(tmp_path / "b"))
    again = vtrans.load_model(str(tmp_path / "b"))
    ids, mask = batch()
    with torch.no_grad():
        assert torch.equal(loaded(ids, mask), again(ids, mask))
    logits = loaded(ids, mask)
    assert logits.shape == ((3, 3) if task == "classification" else (3, 11, 97))


@IDS
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pruned_model_equals_hard_masked_model(family, task, seed):
    model = build_tiny(family, task, seed=seed)
    s = model.shape
    keep, scales = random_keep(s, seed), random_scales(s, seed)
    ids, mask = batch(seed)
    with torch.no_grad():
        masked = model.run(ids, mask, gates=masked_gates(s, keep, scales)).logits
        pruned = prune_model(model, keep, scales)
        out = pruned(ids, mask)
    assert compare(task, masked, out, mask) < 1e-4
    # The accounting gives the exact parameter count of the result.
    assert sum(p.numel() for p in pruned.parameters()) == count_params(pruned.shape)["total"]
    assert [l.heads for l in pruned.shape.layers][1] == 0 and [l.ffn for l in pruned.shape.layers][2] == 0


@IDS
def test_pruned_model_saves_loads_and_exports(tmp_path, family, task):
    model = build_tiny(family, task, seed=5)
    s = model.shape
    pruned = prune_model(model, random_keep(s, 7), random_scales(s, 7))
    vtrans.save_model(pruned, str(tmp_path / "p"))
    cfg = json.loads((tmp_path / "p" / "config.json").read_text())
    assert cfg["layer_num_attention_heads"][1] == 0 and cfg["layer_intermediate_size"][2] == 0
    assert cfg["head_dim"] == s.head_dim
    back = vtrans.load_model(str(tmp_path / "p"))
    ids, mask = batch(1)
    with torch.no_grad():
        assert torch.equal(pruned(ids, mask), back(ids, mask))
    opset = vtrans.export_onnx(back, str(tmp_path / "p" / "model.onnx"))
    assert opset in (14, 17) and (tmp_path / "p" / "model.onnx").stat().st_size > 1000
    assert not back.training, "exporting leaves the model in eval mode"
    with torch.no_grad():
        assert torch.equal(pruned(ids, mask), back(ids, mask))


def test_closed_hidden_gates_with_a_tied_head_give_finite_logits():
    """Hard-concrete gates close exactly (scale 0); when the budget is filled back with such a hidden dimension,
    the tied head's column is zero, so the dimension's final-norm path is dropped instead of divided by zero."""
    model = build_tiny("gpt2", "lm", seed=4)
    s = model.shape
    assert s.tied_embeddings
    keep, scales = KeepSet.full(s), random_scales(s, 4)
    dead = torch.tensor([1, 5])
    scales.hidden[dead] = 0.0
    ids, mask = batch(2)
    with torch.no_grad():
        out = prune_model(model, keep, scales)(ids, mask)
        assert torch.isfinite(out).all()
        reference = build_tiny("gpt2", "lm", seed=4)  # the masked model without the dead dimensions' path
        reference.transformer.ln_f.weight[dead] = 0.0
        reference.transformer.ln_f.bias[dead] = 0.0
        masked = reference.run(ids, mask, gates=masked_gates(s, keep, scales)).logits
    assert compare("lm", masked, out, mask) < 1e-4


def test_gqa_groups_are_pruned_with_their_query_heads():
    model = build_tiny("llama", "lm", seed=2)  # 4 query heads over 2 key/value heads
    s = model.shape
    keep = KeepSet(
        torch.arange(s.hidden), [torch.tensor([1]), torch.tensor([0]), torch.tensor([0, 1])], [torch.arange(l.ffn) for l in s.layers]
    )
    pruned = prune_model(model, keep)
    assert [(l.heads, l.kv_heads) for l in pruned.shape.layers] == [(2, 1), (2, 1), (4, 2)]
    q = pruned.model.layers[0].self_attn.q_proj.weight
    src = model.model.layers[0].self_attn.q_proj.weight
    d = s.head_dim
    assert torch.equal(q, src[2 * d : 4 * d])  # query heads 2 and 3 read group 1
    ids, mask = batch()
    with torch.no_grad():
        assert compare("lm", model.run(ids, mask, gates=masked_gates(s, keep)).logits, pruned(ids, mask), mask) < 1e-4


def test_half_precision_weights_load(tmp_path):
    model = build_tiny("llama", "lm", str(tmp_path / "fp32"), seed=1)
    for dtype, name in ((torch.float16, "fp16"), (torch.bfloat16, "bf16")):
        state = {k: v.to(dtype) for k, v in load_file(str(tmp_path / "fp32" / "model.safetensors")).items()}
        os.makedirs(tmp_path / name)
        save_file(state, str(tmp_path / name / "model.safetensors"))
        (tmp_path / name / "config.json").write_text((tmp_path / "fp32" / "config.json").read_text())
        loaded = vtrans.load_model(str(tmp_path / name))
        assert loaded.model.embed_tokens.weight.dtype == torch.float32
        assert torch.equal(loaded.model.embed_tokens.weight, state["model.embed_tokens.weight"].float())
        ids, mask = batch()
        with torch.no_grad():
            assert compare("lm", model(ids, mask), loaded(ids, mask), mask) < 0.1


def test_sharded_safetensors_and_pytorch_bin_load(tmp_path):
    model = build_tiny("gpt2", "lm", str(tmp_path / "single"), seed=4)
    state = load_file(str(tmp_path / "single" / "model.safetensors"))
    names = sorted(state)
    os.makedirs(tmp_path / "sharded")
    weight_map = {}
    for i, part in enumerate((names[: len(names) // 2], names[len(names) // 2 :])):
        shard = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({n: state[n] for n in part}, str(tmp_path / "sharded" / shard))
        weight_map.update({n: shard for n in part})
    (tmp_path / "sharded" / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (tmp_path / "sharded" / "config.json").write_text((tmp_path / "single" / "config.json").read_text())
    os.makedirs(tmp_path / "bin")
    # A bare GPT2Model checkpoint: names without the "transformer." prefix, as the original gpt2 weights are.
    torch.save({n[len("transformer.") :]: t for n, t in state.items()}, str(tmp_path / "bin" / "pytorch_model.bin"))
    (tmp_path / "bin" / "config.json").write_text((tmp_path / "single" / "config.json").read_text())
    ids, mask = batch()
    with torch.no_grad():
        ref = model(ids, mask)
        assert torch.equal(ref, vtrans.load_model(str(tmp_path / "sharded"))(ids, mask))
        assert torch.equal(ref, vtrans.load_model(str(tmp_path / "bin"))(ids, mask))


def test_attention_capture_uses_the_same_forward():
    model = build_tiny("bert", "classification", seed=2)
    ids, mask = batch()
    cap = AttentionCapture()
    with torch.no_grad():
        plain = model(ids, mask)
        out = model.run(ids, mask, capture=cap).logits
    assert torch.allclose(plain, out, atol=1e-5)
    assert len(cap.maps) == 3 and cap.maps[0].shape == (3, 4, 11, 11)
    assert torch.allclose(cap.maps[0].sum(-1), torch.ones(3, 4, 11), atol=1e-5)
    assert cap.maps[0][1, :, :, 7:].abs().max() < 1e-6  # padding keys get no attention


@IDS
def test_sdpa_and_explicit_attention_agree(family, task):
    model = build_tiny(family, task, seed=1)
    ids, mask = batch()
    with torch.no_grad():
        fast = model(ids, mask)
        model.body.use_sdpa = False
        slow = model(ids, mask)
    assert compare(task, fast, slow, mask) < 1e-5


# ----------------------------------------------------------------------------------------------------------------
# Bad checkpoints: one clear error naming the file.


def test_wrong_shape_names_the_weight(tmp_path):
    build_tiny("bert", "classification", str(tmp_path), seed=0)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["intermediate_size"] = 50
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        CheckpointError,
        match=r"model\.safetensors: weight 'bert\.encoder\.layer\.0\.intermediate\.dense\.weight' has shape \[48, 32\], but config\.json implies \[50, 32\]",
    ):
        vtrans.load_model(str(tmp_path))


def test_missing_weights_are_listed(tmp_path):
    build_tiny("llama", "lm", str(tmp_path), seed=0)
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["model.layers.1.mlp.up_proj.weight"]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: missing weights model\.layers\.1\.mlp\.up_proj\.weight"):
        vtrans.load_model(str(tmp_path))


def test_missing_classifier_head_says_so(tmp_path):
    build_tiny("bert", "classification", str(tmp_path), seed=0)
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["classifier.weight"], state["classifier.bias"]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="no sequence-classification head"):
        vtrans.load_model(str(tmp_path))


def test_unknown_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(CheckpointError, match=r'config\.json: model_type "t5" is not supported'):
        vtrans.load_model(str(tmp_path))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_with_code_is_refused(tmp_path):
    build_tiny("gpt2", "lm", str(tmp_path / "m"), seed=0)
    os.remove(tmp_path / "m" / "model.safetensors")
    with open(tmp_path / "m" / "pytorch_model.bin", "wb") as f:
        pickle.dump({"wte.weight": _Evil()}, f)
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin: refused by torch\.load\(weights_only=True\)"):
        vtrans.load_model(str(tmp_path / "m"))


def test_truncated_safetensors(tmp_path):
    build_tiny("roberta", "classification", str(tmp_path), seed=0)
    path = tmp_path / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a valid safetensors file \(tensor data needs .* truncated\)"):
        vtrans.load_model(str(tmp_path))
    path.write_bytes(data[:20])
    with pytest.raises(CheckpointError, match=r"runs past the end"):
        vtrans.load_model(str(tmp_path))
