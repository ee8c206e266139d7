"""The JSON-RPC server over stdio: framing errors, unknown methods, progress, cancellation, shutdown."""

import json
import time

from conftest import settings_for


def test_survives_malformed_frames_and_unknown_methods(client):
    client.raw(b"Bogus header without colon\r\n\r\n")
    client.raw(b"Content-Length: 7\r\n\r\n{nope!}")
    client.send({"jsonrpc": "2.0", "id": 1, "method": "no/such/method"})
    client.send({"id": 2, "method": "initialize"})  # not JSON-RPC 2.0
    client.send({"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {}})
    assert client.response(1)["error"]["code"] == -32601
    assert client.response(2)["error"]["code"] == -32600
    init = client.response(3)["result"]  # still serving after the bad input
    parse_errors = [m for m in client.messages if m.get("id") is None and m.get("error", {}).get("code") == -32700]
    assert len(parse_errors) == 2 and "malformed header" in parse_errors[0]["error"]["message"]
    assert init["device"] in ("cpu", "cuda") and init["threads"] >= 1


def test_user_errors_name_the_setting(client, tmp_path):
    client.send(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "compress",
            "params": {"modelDir": "x", "trainShards": "y", "evalShards": "z", "runDir": str(tmp_path / "r"), "keep": 1.5},
        }
    )
    err = client.response(1)["error"]
    assert err["code"] == -32602 and err["message"] == "Invalid params for compress: keep: must be > 0 and <= 1, got 1.5"


def test_progress_then_cancel_marks_the_run_cancelled_and_exit_leaves_no_process(client, task_dir, tmp_path):
    run = tmp_path / "run"
    params = settings_for(task_dir, run, method="vtrans", minPruneSteps=100000)
    client.send({"jsonrpc": "2.0", "id": 7, "method": "compress", "params": params})
    client.wait(lambda m: m.get("method") == "progress" and m["params"]["phase"] == "prune" and m["params"]["step"] >= 3)
    prog = [m["params"] for m in client.messages if m.get("method") == "progress" and m["params"]["phase"] == "prune"][-1]
    assert prog["id"] == 7 and prog["total"] == 100000 and {"loss", "kl", "sparsity", "lambda", "eta"} <= set(prog)
    t0 = time.monotonic()
    client.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 7}})
    err = client.response(7)["error"]
    assert err["code"] == -32800
    assert time.monotonic() - t0 < 10
    assert json.loads((run / "run.json").read_text())["status"] == "cancelled"
    client.send({"jsonrpc": "2.0", "id": 8, "method": "shutdown"})
    assert client.response(8)["result"] is None
    client.send({"jsonrpc": "2.0", "method": "exit"})
    assert client.proc.wait(timeout=20) == 0
