"""Hugging Face `transformers` is the reference: checkpoints it writes load in VTrans with the same logits, and
checkpoints VTrans writes load in it with the same logits (fp32, within 1e-4).

The reference models are built by `transformers` itself (random weights, made large enough that every unit
matters), saved with `save_pretrained`, and compared on right- and left-padded batches.
"""

import json
import os

import pytest
import torch
import transformers

import vtrans
from vtrans.testing import build_tiny

pytestmark = pytest.mark.hf_reference
TOL = 1e-4


def _tiny(family: str, **extra):
    common = dict(vocab_size=97, pad_token_id=0)
    if family == "bert":
        return transformers.BertConfig(
            hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=48, max_position_embeddings=64, **common, **extra
        )
    if family == "roberta":
        common["pad_token_id"] = 1
        return transformers.RobertaConfig(
            hidden_size=32,
            num_hidden_layers=3,
            num_attention_heads=4,
            intermediate_size=48,
            max_position_embeddings=66,
            type_vocab_size=1,
            bos_token_id=0,
            eos_token_id=2,
            layer_norm_eps=1e-5,
            **common,
            **extra,
        )
    if family == "gpt2":
        return transformers.GPT2Config(n_embd=32, n_layer=3, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0, **common, **extra)
    sizes = dict(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, intermediate_size=48, max_position_embeddings=64
    )
    return transformers.LlamaConfig(**{**sizes, **common, **extra})


# (id, family, task, extra config): every family, both tasks where the family has them, GQA with tied and untied heads.
CASES = [
    ("bert-cls", "bert", "classification", {}),
    ("roberta-cls", "roberta", "classification", {}),
    ("gpt2-cls", "gpt2", "classification", {}),
    ("gpt2-lm-tied", "gpt2", "lm", {}),
    ("gpt2-lm-untied", "gpt2", "lm", {"tie_word_embeddings": False}),
    ("llama-gqa-cls", "llama", "classification", {}),
    ("llama-gqa-lm-untied", "llama", "lm", {"tie_word_embeddings": False}),
    ("llama-gqa-lm-tied", "llama", "lm", {"tie_word_embeddings": True}),
    ("llama-mha-lm-bias", "llama", "lm", {"num_key_value_heads": 4, "attention_bias": True, "mlp_bias": True}),
]
CASE_IDS = [c[0] for c in CASES]


def hf_class(task: str):
    return transformers.AutoModelForSequenceClassification if task == "classification" else transformers.AutoModelForCausalLM


def reference_model(family: str, task: str, extra: dict, seed: int = 0) -> torch.nn.Module:
    cfg = _tiny(family, **extra)
    if task == "classification":
        cfg.num_labels = 3
    torch.manual_seed(seed)
    model = hf_class(task).from_config(cfg, attn_implementation="eager")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_norm = "norm" in name.lower() or ".ln_" in name or name.startswith("ln_")
            p.copy_(
                (1.0 + 0.2 * torch.randn(p.shape, generator=g))
                if is_norm and p.dim() == 1 and name.endswith("weight")
                else 0.15 * torch.randn(p.shape, generator=g)
            )
    return model.eval()


def padded_batch(pad_id: int, side: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 97, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    if side == "right":
        mask[1, 8:] = 0
        ids[1, 8:] = pad_id
        mask[2, 10:] = 0
        ids[2, 10:] = pad_id
    else:
        mask[1, :4] = 0
        ids[1, :4] = pad_id
        mask[2, :2] = 0
        ids[2, :2] = pad_id
    return ids, mask


def max_diff(task: str, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    if task == "lm":  # padding positions' logits are not defined the same way anywhere
        a, b = a[mask.bool()], b[mask.bool()]
    return (a.float() - b.float()).abs().max().item()


def load_reference(path, task: str) -> torch.nn.Module:
    return hf_class(task).from_pretrained(str(path), dtype=torch.float32, attn_implementation="eager").eval()


def compare(ours: torch.nn.Module, ref: torch.nn.Module, task: str, pad_id: int, side: str) -> float:
    ids, mask = padded_batch(pad_id, side)
    with torch.no_grad():
        return max_diff(task, ours(ids, mask), ref(input_ids=ids, attention_mask=mask).logits, mask)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_transformers_checkpoints_load_with_equal_logits(tmp_path, case, side):
    _, family, task, extra = case
    ref = reference_model(family, task, extra)
    ref.save_pretrained(str(tmp_path))
    ours = vtrans.load_model(str(tmp_path))
    assert compare(ours, ref, task, ref.config.pad_token_id, side) < TOL


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[6]], ids=["bert-cls", "gpt2-lm-tied", "llama-gqa-lm-untied"])
def test_half_precision_checkpoints_load_as_transformers_loads_them(tmp_path, case, dtype):
    _, family, task, extra = case
    reference_model(family, task, extra).to(dtype).save_pretrained(str(tmp_path))
    assert json.loads((tmp_path / "config.json").read_text()).get("dtype") in (str(dtype).split(".")[1], None)
    ours = vtrans.load_model(str(tmp_path))
    assert compare(ours, load_reference(tmp_path, task), task, 0, "right") < TOL


@pytest.mark.parametrize("case", [CASES[1], CASES[5]], ids=["roberta-cls", "llama-gqa-cls"])
def test_sharded_safetensors_load(tmp_path, case):
    _, family, task, extra = case
    ref = reference_model(family, task, extra)
    ref.save_pretrained(str(tmp_path), max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").exists() and not (tmp_path / "model.safetensors").exists()
    assert compare(vtrans.load_model(str(tmp_path)), ref, task, ref.config.pad_token_id, "right") < TOL


@pytest.mark.parametrize("case", [CASES[2], CASES[7]], ids=["gpt2-cls", "llama-gqa-lm-tied"])
def test_pytorch_model_bin_loads(tmp_path, case):
    _, family, task, extra = case
    ref = reference_model(family, task, extra)
    ref.config.architectures = [type(ref).__name__]
    ref.config.save_pretrained(str(tmp_path))
    torch.save(ref.state_dict(), str(tmp_path / "pytorch_model.bin"))
    assert compare(vtrans.load_model(str(tmp_path)), ref, task, ref.config.pad_token_id, "left") < TOL


FAMILY_TASKS = [
    ("bert", "classification"),
    ("roberta", "classification"),
    ("gpt2", "classification"),
    ("gpt2", "lm"),
    ("llama", "classification"),
    ("llama", "lm"),
]


@pytest.mark.parametrize("family,task", FAMILY_TASKS, ids=[f"{f}-{t}" for f, t in FAMILY_TASKS])
def test_unpruned_models_written_by_vtrans_load_in_transformers(tmp_path, family, task):
    ours = build_tiny(family, task, str(tmp_path), seed=3)
    ref = load_reference(tmp_path, task)
    assert compare(ours, ref, task, ours.shape.config.get("pad_token_id") or 0, "right") < TOL


def test_roberta_positions_skip_padding_as_transformers_computes_them(tmp_path):
    ref = reference_model("roberta", "classification", {})
    ref.save_pretrained(str(tmp_path))
    ours = vtrans.load_model(str(tmp_path))
    ids, _ = padded_batch(1, "right")
    mask = (ids != 1).long()
    expected = transformers.models.roberta.modeling_roberta.RobertaEmbeddings.create_position_ids_from_input_ids(ids, 1)
    assert torch.equal(ours.roberta.embeddings.position_ids(ids), expected)
    with torch.no_grad():
        assert max_diff("classification", ours(ids, mask), ref(input_ids=ids, attention_mask=mask).logits, mask) < TOL


def test_sdpa_matches_transformers_eager(tmp_path):
    """Our SDPA path (the default) against the reference's explicit attention."""
    ref = reference_model("llama", "lm", {"tie_word_embeddings": False})
    ref.save_pretrained(str(tmp_path))
    ours = vtrans.load_model(str(tmp_path))
    assert ours.body.use_sdpa
    assert compare(ours, ref, "lm", 0, "right") < TOL


def test_inspect_counts_equal_transformers(tmp_path):
    for i, (_, family, task, extra) in enumerate(CASES):
        ref = reference_model(family, task, extra)
        ref.save_pretrained(str(tmp_path / str(i)))
        shape = vtrans.load_shape(str(tmp_path / str(i)))
        from vtrans.structure import count_params

        assert count_params(shape)["total"] == sum(p.numel() for p in ref.parameters()), family
    assert os.path.isdir(tmp_path / "0")
