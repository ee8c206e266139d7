"""Logits equal Hugging Face transformers' for the same checkpoint (fp32, within 1e-4).

Runs where `transformers` is installed (the GPU machines' environment has it; Debian's does not), so it is
skipped on the CPU-only CI machines.
"""
import pytest
import torch

import vtrans
from vtrans.testing import build_tiny

transformers = pytest.importorskip("transformers")

CASES = [("bert", "classification"), ("roberta", "classification"), ("gpt2", "classification"), ("gpt2", "lm"),
         ("llama", "classification"), ("llama", "lm")]


@pytest.mark.parametrize("family,task", CASES, ids=[f"{f}-{t}" for f, t in CASES])
@pytest.mark.parametrize("pad", [False, True])
def test_logits_match_transformers(tmp_path, family, task, pad):
    build_tiny(family, task, str(tmp_path), seed=11)
    ours = vtrans.load_model(str(tmp_path))
    auto = transformers.AutoModelForSequenceClassification if task == "classification" else transformers.AutoModelForCausalLM
    ref = auto.from_pretrained(str(tmp_path), torch_dtype=torch.float32, attn_implementation="eager").eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 97, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    if pad:
        pad_id = ours.shape.config.get("pad_token_id", 0) or 0
        mask[1, 8:] = 0
        ids[1, 8:] = pad_id
    with torch.no_grad():
        a = ours(ids, mask)
        b = ref(input_ids=ids, attention_mask=mask).logits
    if task == "lm":
        a, b = a[mask.bool()], b[mask.bool()]
    assert (a - b).abs().max().item() < 1e-4
