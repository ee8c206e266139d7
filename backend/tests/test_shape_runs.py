"""Runs in either output shape: a compression's model/ in the shape it was asked for, the other shape's points on
the tradeoff curve, exports in either shape from one run's masks, predictions per shape, and report.json saying how
to load the model. Loading is checked in a fresh interpreter that never imports VTrans (transformers only)."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import settings_for

from vtrans import api, benchmarks
from vtrans.structure import read_config
from vtrans.testing import build_tiny

pytestmark = pytest.mark.hf_reference
TOKENIZER = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "tokenizers", "bert")


def load_in_fresh_python(load: dict, tmp_path, key: str = "python") -> str:
    """Runs the report's lines with a bare PYTHONPATH (no backend on it) and returns what they print."""
    code = load[key] + "\nimport sys\nassert 'vtrans' not in sys.modules\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def model_with_tokenizer(out) -> str:
    """A BERT classifier for the 3 labels of the task fixture, with the tokenizer fixture (its 140 ids) beside it."""
    build_tiny("bert", "classification", str(out), seed=0, vocab_size=140, hidden_size=48, intermediate_size=96)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(TOKENIZER, f), os.path.join(out, f))
    return str(out)


def test_a_uniform_run_and_its_heterogeneous_export(task_dir, tmp_path):
    run = tmp_path / "run"
    settings = settings_for(
        task_dir,
        run,
        modelDir=model_with_tokenizer(tmp_path / "source"),
        method="faster",
        shape="uniform",
        sweep=[0.8, 0.4],
        probeExamples=0,
        minPruneSteps=20,
    )
    done = api.call("compress", settings, api.Job())
    assert done["shape"] == "uniform"
    cfg = read_config(str(run / "model"))
    assert "auto_map" not in cfg and "layer_num_attention_heads" not in cfg and "head_hidden_size" not in cfg
    assert not [f for f in os.listdir(run / "model") if f.endswith(".py")]
    report = json.loads((run / "report.json").read_text())
    assert report["load"]["shape"] == "uniform" and not report["load"]["trustRemoteCode"]
    assert report["load"]["modelDir"] == str(run / "model")
    sources = {p["source"] for p in report["tradeoff"]}
    assert {"sweep", "sweep:heterogeneous", "finetuned", "teacher"} <= sources
    for p in report["tradeoff"]:
        assert p.get("shape") == {"sweep": "uniform", "finetuned": "uniform", "sweep:heterogeneous": "heterogeneous"}.get(p["source"])
    own = api.call("predict", {"runDir": str(run), "keep": 0.4}, api.Job())
    other = api.call("predict", {"runDir": str(run), "keep": 0.4, "shape": "heterogeneous"}, api.Job())
    assert own["shape"] == "uniform" and other["shape"] == "heterogeneous"
    assert own["achieved"] <= 0.4 and other["achieved"] <= 0.4

    out = api.call("rethreshold", {"runDir": str(run), "keep": 0.4, "outDir": str(tmp_path / "h"), "shape": "heterogeneous"}, api.Job())
    assert out["shape"] == "heterogeneous" and out["achieved"] == pytest.approx(other["achieved"])
    assert out["student"]["params"] == other["params"]
    cfg = read_config(str(tmp_path / "h" / "model"))
    assert "auto_map" in cfg and os.path.exists(tmp_path / "h" / "model" / "modeling_vtrans_bert.py")
    derived = json.loads((tmp_path / "h" / "report.json").read_text())
    assert derived["load"]["shape"] == "heterogeneous" and derived["load"]["trustRemoteCode"]
    # The derived run's own sweep is its shape's: the parent's uniform points are now the other shape's.
    assert all(p["shape"] == "heterogeneous" for p in derived["tradeoff"] if p["source"] == "sweep")
    assert any(p["source"] == "sweep:uniform" for p in derived["tradeoff"])
    info = json.loads((tmp_path / "h" / "run.json").read_text())
    assert info["settings"]["shape"] == "heterogeneous"

    for load in (report["load"], derived["load"]):
        assert "[{'label'" in load_in_fresh_python(load, tmp_path)
        assert load_in_fresh_python(load, tmp_path, "onnxPython").strip() == "(1, 3)"  # one text, three labels

    # The benchmark's comparison of the two shapes at a budget, from the run's masks.
    bench = benchmarks.shapes(str(run), [0.5], eval_limit=32)
    assert [p["shape"] for p in bench["points"]] == ["heterogeneous", "uniform"]
    for p in bench["points"]:
        assert p["achieved"] <= 0.5 and p["metric"]["name"] == "accuracy" and p["latencyMs"]["1"] > 0 and p["latencyMs"]["32"] > 0
    assert bench["latency"]["engine"] == "onnxruntime"
