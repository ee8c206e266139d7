"""Per-example test scores: what a paired bootstrap of two runs resamples."""

import json
import math

import numpy as np
import torch
from conftest import settings_for

from vtrans import api
from vtrans.evaluate import evaluate, lm_losses_per_example
from vtrans.shards import Shards
from vtrans.testing import build_tiny, write_shards

CPU = torch.device("cpu")


def test_classification_scores_are_each_examples_correctness_in_file_order(task_dir):
    model = build_tiny("bert", "classification", seed=3, hidden_size=48, intermediate_size=96)  # untrained: right and wrong
    shards = Shards(str(task_dir / "eval"))
    scores: dict = {}
    metric = evaluate(model, shards, CPU, batch_size=16, per_example=scores)
    correct = scores["correct"]
    assert len(correct) == len(shards) and abs(sum(correct) / len(correct) - metric.value) < 1e-6
    assert 0 < sum(correct) < len(correct), "the check below needs right and wrong examples"
    with torch.no_grad():
        for i in range(len(shards)):  # one example at a time, in file order
            b = shards.batch(np.array([i]))
            alone = int(model.run(b.input_ids, b.attention_mask, b.token_type_ids).logits.argmax(-1)[0] == b.labels[0])
            assert alone == correct[i], i


def test_lm_scores_sum_to_the_perplexity_and_follow_file_order(tmp_path):
    model = build_tiny("gpt2", "lm", seed=0)
    seqs = [list(np.random.default_rng(i).integers(3, 90, 6 + 3 * (i % 4))) for i in range(9)]
    write_shards(str(tmp_path / "lm"), seqs, task="lm")
    shards = Shards(str(tmp_path / "lm"))
    scores: dict = {}
    metric = evaluate(model, shards, CPU, batch_size=4, per_example=scores)
    assert scores["tokens"] == [len(s) - 1 for s in seqs]
    assert abs(math.exp(sum(scores["nll"]) / sum(scores["tokens"])) / metric.value - 1) < 1e-6
    with torch.no_grad():
        b = shards.batch(np.array([5]))
        nll, _ = lm_losses_per_example(model.run(b.input_ids, b.attention_mask).logits, b)
    assert abs(float(nll[0]) - scores["nll"][5]) < 1e-4


def test_a_run_with_test_data_writes_both_models_scores(task_dir, tmp_path):
    run = tmp_path / "run"
    res = api.call(
        "compress",
        settings_for(task_dir, run, method="faster", testShards=str(task_dir / "eval"), sweep=[], probeExamples=0),
        api.Job(),
    )
    scores = json.loads((run / "test-scores.json").read_text())
    assert scores["metric"] == "accuracy"
    for who in ("teacher", "student"):
        correct = scores[who]["correct"]
        assert len(correct) == len(Shards(str(task_dir / "eval")))
        assert abs(sum(correct) / len(correct) - res["test"][who]["value"]) < 1e-6
