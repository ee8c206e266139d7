"""Shared fixtures: a tiny BERT teacher trained on a small learnable task, and its token shards."""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from vtrans.checkpoint import save_model  # noqa: E402
from vtrans.testing import build_tiny, synthetic_classification, train_briefly, write_shards  # noqa: E402

torch.set_num_threads(os.cpu_count() or 1)


@pytest.fixture(scope="session")
def task_dir(tmp_path_factory):
    """{model, train, eval} for a 3-class task the teacher solves; the run settings tests build on."""
    d = tmp_path_factory.mktemp("task")
    seqs, labels = synthetic_classification(480, seed=1)
    write_shards(str(d / "train"), seqs[:400], labels[:400], label_names=["a", "b", "c"])
    write_shards(str(d / "eval"), seqs[400:], labels[400:], label_names=["a", "b", "c"])
    model = build_tiny("bert", "classification", seed=0, hidden_size=48, intermediate_size=96)
    torch.manual_seed(0)  # the same teacher in every session
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(std=0.05)
    train_briefly(model, str(d / "train"), steps=150)
    save_model(model, str(d / "model"))
    return d


@pytest.fixture
def client():
    """A live backend server (`python -m vtrans.server`) spoken to over its stdio."""
    from rpc import Client

    c = Client()
    yield c
    if c.proc.poll() is None:
        c.proc.kill()
    c.proc.wait()


def settings_for(task_dir, run_dir, **overrides):
    s = {
        "modelDir": str(task_dir / "model"),
        "trainShards": str(task_dir / "train"),
        "evalShards": str(task_dir / "eval"),
        "runDir": str(run_dir),
        "method": "fast",
        "keep": 0.5,
        "lr": 1e-3,
        "dataFraction": 0.25,
        "minPruneSteps": 40,
        "pruneEpochs": 1,
        "minFinetuneSteps": 10,
        "finetuneEpochs": 0,
        "sweep": [0.8, 0.6, 0.4, 0.2],
        "probeExamples": 16,
        "specialTokenIds": [2],
        "checkpointEvery": 15,
    }
    s.update(overrides)
    return s


def pytest_configure(config):
    config.addinivalue_line("markers", "hf_reference: compared against Hugging Face transformers (never skipped)")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """How many reference comparisons ran, and (under CI=true) a failure for any skipped test: a skipped
    comparison must not pass unnoticed."""
    passed = [r for r in terminalreporter.stats.get("passed", []) if "hf_reference" in getattr(r, "keywords", {})]
    terminalreporter.write_line(f"transformers reference tests: {len(passed)} passed")
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        terminalreporter.write_line(f"CI=true: {len(skipped)} test(s) were skipped, which fails the run", red=True)


def pytest_sessionfinish(session, exitstatus):
    skipped = session.config.pluginmanager.get_plugin("terminalreporter").stats.get("skipped", [])
    if skipped and os.environ.get("CI", "").lower() in ("1", "true", "yes") and exitstatus == 0:
        session.exitstatus = 1
