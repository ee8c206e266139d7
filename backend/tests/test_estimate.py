"""The warm-up estimate: real phase-1 steps timed, nothing written, figures consistent with the run's plan."""

import os

import pytest
from conftest import settings_for

from vtrans import api
from vtrans.errors import Cancelled
from vtrans.schema import ContractError


def test_estimate_measures_steps_and_writes_nothing(task_dir, tmp_path):
    run = tmp_path / "run"
    settings = settings_for(task_dir, run, method="fast", minPruneSteps=40, minFinetuneSteps=10)
    out = api.call("estimate", {"settings": settings, "steps": 3}, api.Job())
    assert not os.path.exists(run), "the estimate creates no run directory"
    assert out["device"] == "cpu" and "CPU" in out["deviceName"]
    assert out["steps"] == 3
    assert out["secondsPerStep"] > 0
    assert out["pruneSteps"] == 40 and out["finetuneSteps"] == 10
    steps = out["secondsPerStep"] * (out["pruneSteps"] + out["finetuneSteps"])
    assert out["estimatedSeconds"] == pytest.approx(out["loadSeconds"] + steps + out["evalSeconds"])
    assert out["peakMemoryBytes"] > 10 * 2**20 and out["memory"] == "process-peak-rss"
    # The analytic estimate the memory check uses, beside the measured peak (a tiny model: within a factor of two).
    assert 0.5 * out["peakMemoryBytes"] < out["plannedMemoryBytes"] < 2 * out["peakMemoryBytes"]


def test_estimate_of_faster_has_no_finetune_and_refuses_bad_settings(task_dir, tmp_path):
    out = api.call("estimate", {"settings": settings_for(task_dir, tmp_path / "r", method="faster"), "steps": 1}, api.Job())
    assert out["finetuneSteps"] == 0 and out["steps"] == 1
    with pytest.raises(ContractError, match="settings.keep"):
        api.parse_params("estimate", {"settings": settings_for(task_dir, tmp_path / "r", keep=2.0)})


def test_estimate_is_cancellable(task_dir, tmp_path):
    job = api.Job()
    job.cancelled.set()
    with pytest.raises(Cancelled):
        api.call("estimate", {"settings": settings_for(task_dir, tmp_path / "r")}, job)
