"""The two output shapes load where users work: `transformers` loading a run's model/ gives the logits of
`vtrans.load_model` and of onnxruntime on model.onnx (fp32, within 1e-4), for every family and task, on random
keep-sets; the heterogeneous shape through its modeling file (`trust_remote_code=True`), with layers without
attention or FFN, removed key/value groups and a pruned hidden width; the uniform shape with stock transformers
and only the family's standard config fields. `AutoTokenizer` loads the directory, and the text-classification and
text-generation pipelines give the label / tokens VTrans gives. The uniform keep-set rule meets the budget.
"""

import json
import os
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch
import transformers

import vtrans
import vtrans.errors
from vtrans.budget import size_of
from vtrans.export import export_onnx
from vtrans.prune import masked_gates, prune_model
from vtrans.shapes import how_to_load, save_output
from vtrans.structure import family_of, shape_from_config
from vtrans.testing import build_tiny, random_keep_sets, random_scales, random_uniform_keep, tiny_config
from vtrans.uniform import select_uniform

pytestmark = pytest.mark.hf_reference
TOL = 1e-4
TOKENIZERS = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "tokenizers")

# family, task, config overrides: the tokenizer fixtures' vocabularies (test/fixtures/tokenizers), GQA for LLaMA,
# tied and untied LM heads.
CASES = [
    ("bert", "classification", {"vocab_size": 140}),
    ("roberta", "classification", {"vocab_size": 321, "pad_token_id": 317, "max_position_embeddings": 317 + 64}),
    ("gpt2", "classification", {"vocab_size": 317, "pad_token_id": 316}),
    ("gpt2", "lm", {"vocab_size": 317}),
    ("llama", "classification", {"vocab_size": 320, "pad_token_id": 319}),
    ("llama", "lm", {"vocab_size": 320, "pad_token_id": 319}),
    ("llama", "lm", {"vocab_size": 320, "pad_token_id": 319, "tie_word_embeddings": True, "num_key_value_heads": 1}),
]
IDS = ["bert-cls", "roberta-cls", "gpt2-cls", "gpt2-lm", "llama-gqa-cls", "llama-gqa-lm", "llama-mqa-lm-tied"]
SHAPES = ["heterogeneous", "uniform"]


def auto_class(task: str):
    return transformers.AutoModelForSequenceClassification if task == "classification" else transformers.AutoModelForCausalLM


def load_hf(model_dir: str, task: str, shape: str):
    """As the report says: trust_remote_code only for the heterogeneous shape."""
    return auto_class(task).from_pretrained(model_dir, trust_remote_code=shape == "heterogeneous", dtype=torch.float32).eval()


def add_tokenizer(family: str, model_dir: str) -> None:
    src = os.path.join(TOKENIZERS, family)
    shutil.copyfile(os.path.join(src, "tokenizer.json"), os.path.join(model_dir, "tokenizer.json"))
    if family == "llama":  # the fixture's tokenizer_config.json spells special tokens the way transformers 5 refuses
        cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
        with open(os.path.join(model_dir, "tokenizer_config.json"), "w") as f:
            json.dump(cfg, f)
    else:
        shutil.copyfile(os.path.join(src, "tokenizer_config.json"), os.path.join(model_dir, "tokenizer_config.json"))


def keep_sets(s, shape: str, seed: int) -> list:
    if shape == "heterogeneous":
        return random_keep_sets(s, 3, seed)  # no attention, no FFN, a group fewer, hidden pruned, a bare layer
    return [random_uniform_keep(s, seed + i) for i in range(3)]


def masked_reference(model, keep, scales):
    """The source with the keep-set as a hard mask (the pruned model's definition); a uniform BERT/RoBERTa cut also
    drops pooler outputs, which equals zeroing the classifier's columns that read them."""
    ref = model
    if keep.head_dims is not None:
        import copy

        ref = copy.deepcopy(model)
        reader = dict(ref.named_parameters())[family_of(model.shape.family).head_reader]
        dropped = torch.ones(reader.shape[1], dtype=torch.bool)
        dropped[keep.head_dims] = False
        with torch.no_grad():
            reader[:, dropped] = 0
    return lambda ids, mask: ref.run(ids, mask, gates=masked_gates(model.shape, keep, scales)).logits


def batch(s, seed: int, side: str = "right"):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 97, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    pad = int(s.config.get("pad_token_id") or 0)
    rows = (slice(8, None), slice(10, None)) if side == "right" else (slice(0, 4), slice(0, 2))
    for r, cols in zip((1, 2), rows):
        mask[r, cols] = 0
        ids[r, cols] = pad
    return ids, mask


def diff(task, a, b, mask) -> float:
    if task == "lm":  # logits at padding positions mean nothing
        a, b = a[mask.bool()], b[mask.bool()]
    return (a.float() - b.float()).abs().max().item()


def onnx_logits(path: str, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {"input_ids": ids.numpy().astype(np.int64), "attention_mask": mask.numpy().astype(np.int64)}
    names = {i.name for i in session.get_inputs()}  # a model without any attention left has no use for the mask
    out = session.run(["logits"], {k: v for k, v in feeds.items() if k in names})[0]
    return torch.from_numpy(out)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_transformers_vtrans_and_onnx_agree_on_the_output(tmp_path, case, shape):
    family, task, overrides = case
    model = build_tiny(family, task, seed=1, **overrides)
    s = model.shape
    for i, keep in enumerate(keep_sets(s, shape, seed=10)):
        scales = random_scales(s, 20 + i)
        pruned = prune_model(model, keep, scales)
        out = tmp_path / f"{i}"
        model_dir = str(out / "model")
        save_output(pruned, model_dir, shape)
        export_onnx(pruned, str(out / "model.onnx"))
        cfg = json.loads((out / "model" / "config.json").read_text())
        if shape == "uniform":
            standard = set(family_of(family).vtrans_fields) - ({"head_dim"} if family == "llama" else set())
            assert not standard & set(cfg), sorted(standard & set(cfg))
            assert not [f for f in os.listdir(model_dir) if f.endswith(".py")]
        else:
            assert set(cfg["auto_map"]) >= {"AutoConfig", "AutoModel", auto_class(task).__name__}
        hf = load_hf(model_dir, task, shape)
        ours = vtrans.load_model(model_dir)
        masked = masked_reference(model, keep, scales)
        for side in ("right", "left"):
            ids, mask = batch(s, i, side)
            with torch.no_grad():
                want = hf(input_ids=ids, attention_mask=mask).logits
                assert diff(task, ours(ids, mask), want, mask) < TOL, (i, side)
                assert diff(task, masked(ids, mask), want, mask) < TOL, (i, side)
            assert diff(task, onnx_logits(str(out / "model.onnx"), ids, mask), want, mask) < TOL, (i, side)


def test_the_heterogeneous_keep_sets_cover_what_vtrans_prunes():
    s = build_tiny("llama", "lm", seed=0).shape
    sets = keep_sets(s, "heterogeneous", 10)
    assert any(len(h) == 0 for k in sets for h in k.heads)  # a layer without attention
    assert any(len(f) == 0 for k in sets for f in k.ffn)  # without FFN
    assert any(0 < len(h) < l.kv_heads for k in sets for h, l in zip(k.heads, s.layers))  # a key/value group removed
    assert all(len(k.hidden) < s.hidden for k in sets)  # the hidden width pruned


@pytest.mark.parametrize("case", CASES[:6], ids=IDS[:6])
@pytest.mark.parametrize("shape", SHAPES)
def test_tokenizer_and_pipelines_give_what_vtrans_gives(tmp_path, case, shape):
    family, task, overrides = case
    model = build_tiny(family, task, seed=2, **overrides)
    s = model.shape
    keep = keep_sets(s, shape, seed=30)[0]
    pruned = prune_model(model, keep, random_scales(s, 31))
    model_dir = str(tmp_path / "model")
    save_output(pruned, model_dir, shape)
    add_tokenizer(family, model_dir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    ours = vtrans.load_model(model_dir)
    trust = shape == "heterogeneous"
    texts = ["free money now click here", "the meeting is tomorrow morning", "hello world"]
    if task == "classification":
        pipe = transformers.pipeline("text-classification", model=model_dir, trust_remote_code=trust)
        for text in texts:
            enc = tokenizer(text, return_tensors="pt")
            with torch.no_grad():
                label = s.config["id2label"][str(int(ours(enc["input_ids"], enc["attention_mask"]).argmax(-1)))]
            assert pipe(text)[0]["label"] == label
    else:
        pipe = transformers.pipeline("text-generation", model=model_dir, trust_remote_code=trust)
        for text in texts:
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
            seq = ids
            for _ in range(4):  # greedy, without a cache, by VTrans
                with torch.no_grad():
                    seq = torch.cat([seq, ours(seq, torch.ones_like(seq))[:, -1:].argmax(-1)], 1)
            got = pipe(text, max_new_tokens=4, do_sample=False, return_tensors=True)[0]["generated_token_ids"]
            got = torch.tensor(got)[ids.shape[1] :]
            want = seq[0, ids.shape[1] :]
            eos = pipe.model.generation_config.eos_token_id
            assert torch.equal(got, want[: len(got)]) and (len(got) == 4 or int(got[-1]) in np.atleast_1d(eos)), (got, want)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_generation_with_the_key_value_cache_past_layers_without_attention(tmp_path, family):
    """The heterogeneous decoders under generate(): layer 0 has no attention, so its cache entry is a placeholder."""
    model = build_tiny(family, "lm", seed=4)
    s = model.shape
    keep = random_keep_sets(s, 3, 40)[0]
    keep.heads[0] = keep.heads[0][:0]
    pruned = prune_model(model, keep, random_scales(s, 41))
    save_output(pruned, str(tmp_path), "heterogeneous")
    hf = load_hf(str(tmp_path), "lm", "heterogeneous")
    ids = torch.randint(3, s.vocab, (2, 6), generator=torch.Generator().manual_seed(4))
    out = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False, eos_token_id=None, pad_token_id=0)
    seq = ids
    for _ in range(8):
        with torch.no_grad():
            seq = torch.cat([seq, pruned(seq, torch.ones_like(seq))[:, -1:].argmax(-1)], 1)
    assert torch.equal(out, seq)


@pytest.mark.parametrize("case", CASES[:6], ids=IDS[:6])
def test_the_load_lines_run_as_the_report_gives_them(tmp_path, case):
    family, task, overrides = case
    model = build_tiny(family, task, seed=5, **overrides)
    for shape in SHAPES:
        keep = keep_sets(model.shape, shape, seed=50)[0]
        model_dir = str(tmp_path / shape / "model")
        save_output(prune_model(model, keep), model_dir, shape)
        add_tokenizer(family, model_dir)
        load = how_to_load(model_dir, family, task, shape)
        assert load.trust_remote_code == (shape == "heterogeneous") and ("trust_remote_code=True" in load.python) == load.trust_remote_code
        scope: dict = {}
        exec(load.python.replace('print(pipe("Replace this', 'result = (pipe("Replace this'), scope)
        assert scope["result"] and type(scope["model"]).__name__.startswith("VTrans") == (shape == "heterogeneous")


def scores_for(s, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "hidden": torch.randn(s.hidden, generator=g),
        "heads": torch.randn(sum(l.kv_heads for l in s.layers), generator=g),
        "attn": torch.randn(s.n_layers, generator=g) + 2,
        "ffn": torch.randn(sum(l.ffn for l in s.layers), generator=g),
        "ffn_layer": torch.randn(s.n_layers, generator=g) + 2,
    }


MID = {  # large enough that one FFN neuron per layer is well under 1 % of the model
    "bert": dict(
        hidden_size=96, num_attention_heads=6, intermediate_size=384, num_hidden_layers=4, vocab_size=500, max_position_embeddings=128
    ),
    "gpt2": dict(n_embd=96, n_head=6, n_inner=384, n_layer=4, vocab_size=500),
    "llama": dict(hidden_size=96, num_attention_heads=8, num_key_value_heads=4, intermediate_size=256, num_hidden_layers=4, vocab_size=500),
}


@pytest.mark.parametrize("family,task", [("bert", "classification"), ("gpt2", "lm"), ("llama", "lm")])
def test_uniform_selection_meets_the_budget_within_one_percent(family, task):
    s = shape_from_config(tiny_config(family, task, **MID[family]), "mid", task)
    f = family_of(family)
    for kind in ("params", "encoder-params", "flops"):
        for keep in (0.9, 0.7, 0.5, 0.3):
            for round_to in (1, 8):
                sel = select_uniform(s, scores_for(s, 7), kind, keep, 20.0, round_to)
                assert sel.size <= keep * size_of(s, kind, 20.0) + 1e-6
                # within 1 %; with round_to 8 one FFN chunk of this small model (8 neurons × 4 layers) is 1.4 %
                assert sel.fraction >= keep - (0.01 if round_to == 1 else 0.02), (kind, keep, round_to, sel.fraction)
                assert size_of(sel.shape, kind, 20.0) == pytest.approx(sel.size)
                assert f.uniform_problem(sel.shape) is None
                layer = sel.shape.layers[0]
                assert all(l == layer for l in sel.shape.layers) and layer.heads > 0 and layer.ffn > 0
                assert layer.ffn % round_to == 0 or layer.ffn == min(l.ffn for l in s.layers)
                if family == "llama":
                    assert sel.shape.hidden % (round_to * layer.heads // np.gcd(round_to, layer.heads)) == 0
                    assert layer.heads == 2 * layer.kv_heads  # whole key/value groups
                else:
                    assert sel.shape.hidden == layer.heads * s.head_dim


def test_uniform_selection_keeps_the_best_ranked_units():
    s = shape_from_config(tiny_config("llama", "lm", **MID["llama"]), "mid", "lm")
    scores = scores_for(s, 3)
    sel = select_uniform(s, scores, "params", 0.5, 20.0)
    ffn = torch.split(scores["ffn"], [l.ffn for l in s.layers])
    for f, kept in zip(ffn, sel.keep.ffn):
        dropped = torch.ones(len(f), dtype=torch.bool)
        dropped[kept] = False
        assert f[kept].min() >= f[dropped].max()
    dropped = torch.ones(s.hidden, dtype=torch.bool)
    dropped[sel.keep.hidden] = False
    assert scores["hidden"][sel.keep.hidden].min() >= scores["hidden"][dropped].max()


def test_a_source_that_lost_a_sublayer_has_no_uniform_shape():
    model = build_tiny("gpt2", "lm", seed=0)
    keep = random_keep_sets(model.shape, 1, 0)[0]
    pruned = prune_model(model, keep)
    with pytest.raises(vtrans.errors.UserError, match="heterogeneous"):
        select_uniform(pruned.shape, scores_for(pruned.shape, 0), "params", 0.5, 10.0)
    with pytest.raises(ValueError, match="uniform shape"):
        save_output(pruned, "/nonexistent/never-written", "uniform")
