"""Nothing lost, nothing overwritten: one writer per run, the source never touched, validation before work, a
true status on every exit, damaged checkpoints skipped."""

import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest
import torch
from conftest import settings_for

from vtrans import api
from vtrans.checkpoint import load_model
from vtrans.errors import CheckpointError, DataError, UserError
from vtrans.runs import LOCK_FILE, RunDir, RunLock, RunLocked, mark_stopped
from vtrans.safetensors_io import load_file, save_file
from vtrans.testing import build_tiny

BACKEND = os.path.join(os.path.dirname(__file__), "..")
QUICK = dict(method="faster", minPruneSteps=8, pruneEpochs=0, sweep=[], probeExamples=0, threads=1)


def tree_hash(folder) -> str:
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(folder)):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            h.update(os.path.relpath(path, folder).encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def in_process(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=BACKEND, OMP_WAIT_POLICY="PASSIVE")
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


RACER = """
import json, os, sys, time
from vtrans import api
from vtrans.errors import UserError
params, go = json.loads(sys.argv[1]), sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.001)
try:
    r = api.call("compress", params, api.Job())
    print(json.dumps({"ok": True, "seed": params["seed"]}))
except UserError as e:
    print(json.dumps({"ok": False, "error": str(e)}))
"""


def test_two_compressions_and_a_resume_at_the_same_moment_have_one_writer(task_dir, tmp_path):
    run = tmp_path / "run"
    go = tmp_path / "go"
    racers = [
        in_process(RACER, json.dumps(settings_for(task_dir, run, seed=1, **QUICK)), str(go)),
        in_process(RACER, json.dumps(settings_for(task_dir, run, seed=2, **QUICK)), str(go)),
        in_process(RACER, json.dumps(settings_for(task_dir, run, seed=3, resume=True, **QUICK)), str(go)),
    ]
    time.sleep(3)  # every racer has imported torch and waits at the line
    go.write_text("")
    results = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in racers]
    winners = [r for r in results if r["ok"]]
    assert len(winners) == 1, results
    refusals = [r["error"] for r in results if not r["ok"]]
    assert len(refusals) == 2
    for message in refusals:
        assert (
            "has been compressing into it since" in message or "a run already exists there" in message or "nothing to resume" in message
        ), message
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "done" and info["settings"]["seed"] == winners[0]["seed"], "the run's files are the winner's"
    assert not (run / LOCK_FILE).exists(), "the lock goes with its writer"
    phases = [json.loads(line)["phase"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert phases.count("teacher") == 1, "one writer's metrics"


def test_resume_of_a_live_run_is_refused_and_a_stale_lock_is_taken_over(task_dir, tmp_path):
    run = tmp_path / "run"
    code = "import json,sys; from vtrans import api; api.call('compress', json.loads(sys.argv[1]), api.Job())"
    writer = in_process(code, json.dumps(settings_for(task_dir, run, method="vtrans", minPruneSteps=100000, checkpointEvery=5)))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (run / "checkpoints").exists():
            time.sleep(0.05)
        while time.monotonic() < deadline and not list((run / "checkpoints").glob("state-*.json")):
            time.sleep(0.05)
        with pytest.raises(
            RunLocked, match=rf"process {writer.pid} on .* has been compressing into it since .*Wait for it to finish or cancel it"
        ):
            api.call("compress", settings_for(task_dir, run, method="vtrans", resume=True), api.Job())
        assert mark_stopped(str(run), "failed", "gone?") is None, "a live writer's run is not marked"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert RunLock.holder(str(run)) is None, "its holder is dead: the lock is stale"
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    info = mark_stopped(str(run), "failed", "The backend stopped unexpectedly (signal SIGKILL).")
    assert info is not None and info.status == "failed" and "resume the run to continue" in info.error
    assert not (run / LOCK_FILE).exists()


def test_the_lock_appears_whole_and_its_release_leaves_another_holders_lock(tmp_path, monkeypatch):
    from vtrans import runs

    lock_path = tmp_path / LOCK_FILE
    seen_while_writing = []
    real_dump = runs.dump

    def dump_and_look(value):
        seen_while_writing.append(lock_path.exists())
        return real_dump(value)

    monkeypatch.setattr(runs, "dump", dump_and_look)
    lock = RunLock(str(tmp_path), "compress").acquire()
    assert seen_while_writing == [False], "a reader could find the lock empty, take it for stale and remove it"
    assert RunLock.holder(str(tmp_path)).pid == os.getpid()
    assert os.listdir(tmp_path) == [LOCK_FILE], "the draft is gone"
    other = os.getppid()  # a live process that is not us
    lock_path.write_text(
        json.dumps(runs.dump(runs.LockInfo(other, socket.gethostname(), runs.now(), "resume", runs._process_start(other))))
    )
    lock.release()
    assert lock_path.exists() and RunLock.holder(str(tmp_path)).pid == other, "the other holder's lock stays"


def test_output_at_inside_or_around_the_source_or_into_a_users_folder_is_refused(task_dir, tmp_path):
    model = task_dir / "model"
    before = tree_hash(model)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    cases = [
        (model, "is inside the source model"),
        (model / "runs" / "a", "is inside the source model"),
        (task_dir, "contains the source model"),
        (mine, "holds files that are not a VTrans run (notes.txt)"),
    ]
    for out, message in cases:
        with pytest.raises(UserError, match=re.escape(message)):
            api.call("compress", settings_for(task_dir, out, **QUICK), api.Job())
    assert tree_hash(model) == before and not (model / "runs").exists()
    assert sorted(os.listdir(mine)) == ["notes.txt"]
    done = tmp_path / "done"
    api.call("compress", settings_for(task_dir, done, **QUICK), api.Job())
    for out in (model / "export", mine):
        with pytest.raises(UserError, match="source model|not a VTrans run"):
            api.call("rethreshold", {"runDir": str(done), "keep": 0.3, "outDir": str(out)}, api.Job())
    assert tree_hash(model) == before


def test_a_broken_config_fails_before_any_work(tmp_path):
    build_tiny("bert", "classification", str(tmp_path), seed=0)
    cfg = json.loads((tmp_path / "config.json").read_text())
    for change, message in (
        ({"num_attention_heads": 0}, r'"num_attention_heads" is 0; a transformer needs at least one attention head'),
        ({"num_hidden_layers": 10**9}, r"layers = 1000000000 is beyond any model VTrans can hold"),
        ({"vocab_size": 10**15}, r"vocab = 1000000000000000 is beyond any model VTrans can hold"),
        ({"hidden_size": 30, "num_attention_heads": 4}, r"hidden size 30 is not divisible by 4 heads"),
    ):
        (tmp_path / "config.json").write_text(json.dumps({**cfg, **change}))
        t0 = time.monotonic()
        with pytest.raises(CheckpointError, match=message):
            load_model(str(tmp_path))
        assert time.monotonic() - t0 < 5, "refused before allocating"


def test_weights_are_checked_against_the_header_before_allocation(tmp_path):
    build_tiny("llama", "lm", str(tmp_path), seed=0)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "vocab_size": 4_000_000}))  # 512 MB of embeddings if built
    with pytest.raises(
        CheckpointError, match=r"weight 'model.embed_tokens.weight' has shape \[97, 32\], but config.json implies \[4000000, 32\]"
    ):
        load_model(str(tmp_path))


def test_nan_weights_are_named(tmp_path):
    build_tiny("gpt2", "lm", str(tmp_path), seed=0)
    state = load_file(str(tmp_path / "model.safetensors"))
    state["transformer.h.1.mlp.c_fc.weight"][0, 0] = float("nan")
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"weight 'transformer.h.1.mlp.c_fc.weight' holds NaN or infinite values"):
        load_model(str(tmp_path))


def test_fp8_weights_load_and_unknown_dtypes_are_named(tmp_path):
    model = build_tiny("bert", "classification", str(tmp_path), seed=0)
    state = {k: v.to(torch.float8_e4m3fn) if v.dim() == 2 else v for k, v in load_file(str(tmp_path / "model.safetensors")).items()}
    save_file(state, str(tmp_path / "model.safetensors"))
    loaded = load_model(str(tmp_path))
    assert loaded.bert.encoder.layer[0].intermediate.dense.weight.dtype == torch.float32
    assert model.shape == loaded.shape
    raw = (tmp_path / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    first = next(k for k in header if k != "__metadata__")
    header[first]["dtype"] = "F4"
    text = json.dumps(header).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])
    with pytest.raises(CheckpointError, match=rf'tensor "{first}" has dtype "F4", which VTrans cannot read'):
        load_model(str(tmp_path))


def test_token_ids_beyond_the_vocabulary_are_refused_with_the_files(task_dir, tmp_path):
    from vtrans.testing import write_shards

    bad = write_shards(str(tmp_path / "bad"), [[2, 5, 500, 7]], [0], label_names=["a", "b", "c"], source="/data/train.jsonl")
    with pytest.raises(DataError, match=r"/data/train.jsonl: token id 500 is outside the model's vocabulary of 97"):
        api.call("evaluate", {"modelDir": str(task_dir / "model"), "shards": bad}, api.Job())


def test_a_damaged_checkpoint_falls_back_to_the_one_before(task_dir, tmp_path, caplog):
    run = tmp_path / "run"
    params = settings_for(task_dir, run, method="vtrans", minPruneSteps=40, checkpointEvery=10, minFinetuneSteps=5)
    code = "import json,sys; from vtrans import api; api.call('compress', json.loads(sys.argv[1]), api.Job())"
    writer = in_process(code, json.dumps(params))
    ckpt = run / "checkpoints"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(ckpt.glob("state-*.json")) if ckpt.exists() else []) < 2:
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    newest = sorted(ckpt.glob("state-*.json"))[-1]
    newest.write_text(newest.read_text()[: len(newest.read_text()) // 2])  # cut short, as a crash mid-write would
    with caplog.at_level("WARNING", logger="vtrans"):
        result = api.call("compress", {**params, "resume": True}, api.Job())
    assert result["status"] == "done"
    assert any(f"{newest.stem} is damaged" in r.message for r in caplog.records)


def test_sigterm_cancels_the_run_and_says_why(client, task_dir, tmp_path):
    run = tmp_path / "run"
    client.send(
        {"jsonrpc": "2.0", "id": 1, "method": "compress", "params": settings_for(task_dir, run, method="vtrans", minPruneSteps=100000)}
    )
    client.wait(lambda m: m.get("method") == "progress" and m["params"]["phase"] == "prune")
    client.proc.send_signal(signal.SIGTERM)
    assert client.proc.wait(timeout=60) == 128 + signal.SIGTERM
    info = RunDir(str(run)).read()
    assert info.status == "cancelled" and info.error == "Cancelled: the backend received SIGTERM."
    assert not (run / LOCK_FILE).exists()


def test_a_corrupt_run_json_is_called_corrupt(tmp_path):
    (tmp_path / "run.json").write_text('{"status": "runn')
    with pytest.raises(UserError, match=r"run.json: corrupt or from another version"):
        RunDir(str(tmp_path)).read()
