"""The server survives any frame: well-formed JSON with bad types, hostile sizes and nesting, frames cut or glued
together, and a stream of random and mutated frames — answering every request it can, and staying small."""

import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vtrans.server import MAX_BODY, MAX_DEPTH, MAX_HEADER_LINE

PING = {"jsonrpc": "2.0", "method": "inspect", "params": {"modelDir": "/no/such/dir"}}


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def ping(client, id_):
    """A valid request that answers quickly (a user error: the folder does not exist)."""
    client.send({**PING, "id": id_})
    return client.response(id_, timeout=60)


def test_wrong_types_in_well_formed_json_get_answers_not_crashes(client):
    client.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": [1]})
    client.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": [1, 2]}})
    client.send({"jsonrpc": "2.0", "id": [1], "method": "initialize"})
    client.send({"jsonrpc": "2.0", "id": {"a": 1}, "method": "initialize"})
    client.send({"jsonrpc": "2.0", "id": 5, "method": "predict", "params": {"runDir": 3, "keep": "half"}})
    client.send({"jsonrpc": "2.0", "id": 6, "method": "predict", "params": [1, 2]})
    client.send({"jsonrpc": "2.0", "id": 7, "method": "compress", "params": {"modelDir": "m"}})
    assert client.response(5)["error"]["code"] == -32602 and "runDir: must be a string, got 3" in client.response(5)["error"]["message"]
    assert client.response(6)["error"]["code"] == -32602
    assert client.response(7)["error"]["code"] == -32602 and "trainShards: is required" in client.response(7)["error"]["message"]
    bad_ids = [m for m in client.messages if m.get("id") is None and m.get("error", {}).get("code") == -32600]
    assert len(bad_ids) == 2
    assert ping(client, 8)["error"]["code"] == -32001, "still serving"


def test_deep_nesting_and_huge_headers_are_refused_with_bounded_work(client):
    deep = b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    client.raw(frame(deep))
    client.raw(b"X-Padding: " + b"a" * (10 * MAX_HEADER_LINE) + b"\r\n\r\n")
    client.raw(b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1))
    assert ping(client, 2)["error"]["code"] == -32001
    errors = [m["error"]["message"] for m in client.messages if m.get("id") is None and "error" in m]
    assert any(f"nested deeper than {MAX_DEPTH}" in e for e in errors)
    assert any("header line longer than" in e for e in errors)
    assert all(len(e) < 500 for e in errors), "a long header is not echoed back"
    assert any(f"outside 0..{MAX_BODY}" in e for e in errors)


def test_a_bad_header_does_not_swallow_the_next_frame(client):
    body = json.dumps({**PING, "id": 1}).encode()
    client.raw(b"Content-Lenght: %d\r\n\r\n" % len(body) + body)  # misspelt: the body bytes are left over
    client.raw(frame(json.dumps({**PING, "id": 2}).encode()))
    assert ping(client, 3)["error"]["code"] == -32001
    assert client.response(2)["error"]["code"] == -32001, "the frame after the bad one was read whole"


def test_a_duplicate_id_of_a_running_request_is_refused(client, task_dir, tmp_path):
    from conftest import settings_for

    params = settings_for(task_dir, tmp_path / "run", method="faster", minPruneSteps=100000)
    client.send({"jsonrpc": "2.0", "id": 9, "method": "compress", "params": params})
    client.wait(lambda m: m.get("method") == "progress" and m["params"]["phase"] == "prune")
    client.send({"jsonrpc": "2.0", "id": 9, "method": "initialize"})
    err = client.wait(lambda m: m.get("id") == 9 and "error" in m and m["error"]["code"] == -32600)
    assert "already in use" in err["error"]["message"]
    client.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 9}})
    assert client.wait(lambda m: m.get("id") == 9 and m.get("error", {}).get("code") == -32800)


# ------------------------------------------------------------------------------------------------------------
# Fuzzing: random frames and valid frames mutated, at least 10,000 in all, with a valid request between batches.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
# Methods that answer at once on made-up params (a mutated frame must not start a real compression).
methods = st.sampled_from(["initialize", "inspect", "predict", "rethreshold", "addHead", "$/cancelRequest", "shutdownx", "nope", ""])
messages = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0", 2]), "method": methods | json_values, "params": json_values},
    optional={"id": st.integers(min_value=-5, max_value=1_000_000) | st.text(max_size=5) | json_values},
)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, drop, duplicate or insert bytes of an encoded frame (header included)."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        i = rng.randrange(len(b)) if b else 0
        if op == 0 and b:
            b[i] = rng.randrange(256)
        elif op == 1 and b:
            del b[i]
        elif op == 2:
            b[i:i] = b[i : i + rng.randint(1, 8)]
        else:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(b)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def settle(client, id_):
    """A ping after whatever came before. A mutated Content-Length may leave the server waiting for body bytes:
    newlines fill that (and are skipped between frames), first a little, then up to the body limit."""
    for filler in (1 << 20, MAX_BODY):
        client.raw(b"\n" * filler)
        client.send({**PING, "id": id_})
        try:
            return client.response(id_, timeout=30)
        except AssertionError:
            continue
    raise AssertionError("the server stopped answering")


@settings(max_examples=1, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(messages, min_size=5, max_size=5), st.integers(min_value=0, max_value=2**32 - 1))
def test_ten_thousand_random_and_mutated_frames(client, templates, seed):
    rng = random.Random(seed)  # the mutations: thousands of draws, seeded by hypothesis (its buffer holds few)
    sent = 0
    start_rss = None
    for round_ in range(100):
        for message in templates:
            try:
                body = json.dumps(message, allow_nan=False).encode()
            except (TypeError, ValueError):
                body = b"{"
            encoded = frame(body)
            client.raw(encoded)
            for _ in range(15):
                client.raw(mutate(encoded, rng))
            for _ in range(4):
                client.raw(frame(bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))))
            sent += 20
        assert settle(client, f"ping-{round_}")["error"]["code"] == -32001
        if start_rss is None:
            start_rss = rss_kib(client.proc.pid)
    assert sent >= 10_000
    assert client.proc.poll() is None, "the server is alive"
    grown = rss_kib(client.proc.pid) - start_rss
    assert grown < 200 * 1024, f"memory grew by {grown} KiB over {sent} frames"
    print(f"fuzzed the live server with {sent} frames; RSS grew {grown} KiB")
