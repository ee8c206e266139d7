"""The contracts between TypeScript and Python have one owner: the dataclasses. The generated TypeScript, JSON
Schema and package.json settings must match them, data written on either side must parse, and bad values are
refused with the field named."""

import json
import os
import subprocess
import sys

import pytest

from vtrans import contracts
from vtrans.protocol import METHODS, PredictParams
from vtrans.report import RunReport
from vtrans.runs import RunInfo
from vtrans.schema import ContractError, dump, parse
from vtrans.settings import CompressSettings, parse_settings

ROOT = contracts.ROOT
FIXTURES = os.path.join(ROOT, "test", "fixtures", "reports")


def test_generated_files_match_the_dataclasses():
    assert contracts.stale() == [], "run `python -m vtrans.contracts write` after changing a contract"


def test_a_change_on_one_side_alone_is_caught(tmp_path, monkeypatch):
    """Editing the generated TypeScript by hand (or a dataclass without regenerating) makes the check fail."""
    ts = open(contracts.TS_FILE, encoding="utf-8").read()
    assert "  keep?: number;" in ts
    edited = tmp_path / "contracts.ts"
    edited.write_text(ts.replace("  keep?: number;", "  keep?: string;", 1), encoding="utf-8")
    monkeypatch.setattr(contracts, "TS_FILE", str(edited))
    assert contracts.stale() == [os.path.relpath(str(edited), ROOT)]


def test_package_json_settings_come_from_the_backend_settings():
    pkg = json.load(open(contracts.PACKAGE_JSON, encoding="utf-8"))
    props = pkg["contributes"]["configuration"]["properties"]
    assert props["vtrans.method"]["default"] == CompressSettings.__dataclass_fields__["method"].default
    assert props["vtrans.budget.kind"]["enum"] == ["params", "encoder-params", "flops"]
    assert props["vtrans.distillation.alpha"]["maximum"] == 1


@pytest.mark.parametrize("name", ["bert-4x4", "empty-run", "failed-run"])
def test_the_views_fixture_reports_are_valid_reports(name):
    """The TypeScript fixtures are typed by the generated contracts; the backend reads them strictly too."""
    with open(os.path.join(FIXTURES, f"{name}.json"), encoding="utf-8") as f:
        data = json.load(f)
    report = parse(RunReport, data, strict=True)
    assert dump(report) == data


def test_every_method_has_its_contracts_and_a_handler():
    from vtrans.api import HANDLERS

    assert set(METHODS) == set(HANDLERS)
    assert all(isinstance(p, type) for p, _ in METHODS.values())


def test_bad_values_name_the_field():
    with pytest.raises(ContractError, match=r"^keep: must be > 0 and <= 1, got 0$"):
        parse(PredictParams, {"runDir": "/r", "keep": 0})
    with pytest.raises(ContractError, match=r"^budget: must be one of params, encoder-params, flops, got \"bytes\"$"):
        parse(PredictParams, {"runDir": "/r", "keep": 0.5, "budget": "bytes"})
    with pytest.raises(ContractError, match=r"^params: unknown field\(s\) kep"):
        parse(PredictParams, {"runDir": "/r", "keep": 0.5, "kep": 1})
    with pytest.raises(ContractError, match=r"^runDir: is required$"):
        parse(PredictParams, {"keep": 0.5})
    with pytest.raises(ContractError, match=r"^keep: must be a finite number, got \[1\]$"):
        parse(PredictParams, {"runDir": "/r", "keep": [1]})


def test_settings_errors_name_nested_settings():
    base = {"modelDir": "m", "trainShards": "t", "evalShards": "e", "runDir": "r"}
    from vtrans.errors import UserError

    with pytest.raises(UserError, match=r"^distill\.alpha: must be >= 0 and <= 1, got 2$"):
        parse_settings({**base, "distill": {"alpha": 2}})
    with pytest.raises(UserError, match=r"^vib\.kl: unknown granularity neurons"):
        parse_settings({**base, "vib": {"kl": {"neurons": 1}}})
    s = parse_settings({**base, "vib": {"kl": {"heads": 3}}})
    assert s.vib.kl == {"hidden": 1.0, "heads": 3.0, "attn": 1.0, "ffn": 1.0, "ffn_layer": 1.0}


def test_run_json_of_version_0_1_with_snake_case_settings_still_resumes():
    old = {"model_dir": "m", "train_shards": "t", "eval_shards": "e", "run_dir": "r", "min_prune_steps": 7, "distill": {"enabled": False}}
    s = parse_settings(old)
    assert (s.min_prune_steps, s.distill.enabled) == (7, False)


def test_run_info_round_trips(tmp_path):
    from vtrans.runs import RunDir

    run = RunDir(str(tmp_path / "run"))
    run.create(parse_settings({"modelDir": "m", "trainShards": "t", "evalShards": "e", "runDir": str(tmp_path / "run")}))
    info = run.read()
    raw = json.load(open(run.file("run.json")))
    assert raw["settings"]["batchSize"] == 32 and "batch_size" not in raw["settings"]
    assert parse(RunInfo, raw, strict=True) == info
    with pytest.raises(ContractError, match="status: must be one of running, done, failed, cancelled"):
        run.update(status="finished")
    assert run.read().status == "running", "a bad update leaves the file as it was"


def test_the_check_command_reports_stale_files():
    r = subprocess.run(
        [sys.executable, "-m", "vtrans.contracts", "check"], cwd=os.path.join(ROOT, "backend"), capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
