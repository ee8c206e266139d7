"""The family registry, and the families' size formulas on soft counts (what the budget term differentiates)."""

import pytest
import torch

from vtrans import structure
from vtrans.models import ARCHITECTURES, CLASSES, FAMILIES
from vtrans.testing import ACCOUNTING_CASES, build_tiny


def test_the_registry_holds_every_family_by_its_model_type():
    assert tuple(FAMILIES) == structure.FAMILIES
    for name, family in FAMILIES.items():
        assert family.name == name
        for task, cls in family.classes.items():
            assert CLASSES[(name, task)] is cls
            assert ARCHITECTURES[cls].endswith("ForSequenceClassification" if task == "classification" else ("LMHeadModel", "ForCausalLM"))


@pytest.mark.parametrize("family,task,overrides", ACCOUNTING_CASES)
def test_size_formulas_take_tensors_and_agree_with_ints(family, task, overrides):
    s = build_tiny(family, task, **overrides).shape
    l = s.layers[0]
    counts = (s.hidden, l.heads, l.kv_heads, l.ffn)
    soft = [torch.tensor(float(n), requires_grad=True) for n in counts]
    on = torch.tensor(1.0, requires_grad=True)
    exact = {
        "layer": structure.layer_params(s, *counts),
        "embedding": structure.embedding_params(s, s.hidden),
        "head": structure.head_params(s, s.hidden),
        "layer_flops": structure.layer_flops(s, *counts, 12.0),
        "head_flops": structure.head_flops(s, s.hidden, 12.0),
    }
    expected = {
        "layer": structure.layer_params(s, *soft, on, on),
        "embedding": structure.embedding_params(s, soft[0]),
        "head": structure.head_params(s, soft[0]),
        "layer_flops": structure.layer_flops(s, *soft, 12.0, on, on),
        "head_flops": structure.head_flops(s, soft[0], 12.0),
    }
    for part, value in expected.items():
        assert float(torch.as_tensor(value).detach()) == pytest.approx(float(exact[part]), rel=1e-6), part
    sum(expected.values()).backward()
    assert soft[0].grad is not None and float(soft[0].grad) > 0  # a wider hidden width costs more
    assert on.grad is not None and float(on.grad) > 0
