"""A JSON-RPC client of the backend server over a subprocess's stdio, for the server tests."""

import json
import os
import subprocess
import sys
import threading
import time

BACKEND = os.path.join(os.path.dirname(__file__), "..")


class Client:
    def __init__(self):
        env = dict(os.environ, PYTHONPATH=BACKEND, OMP_WAIT_POLICY="PASSIVE")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vtrans.server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        self.messages = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.proc.stdout
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                ch = out.read(1)
                if not ch:
                    return
                header += ch
            length = int(header.split(b":")[1].split(b"\r\n")[0])
            msg = json.loads(out.read(length))
            with self.cond:
                self.messages.append(msg)
                self.cond.notify_all()

    def raw(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, obj):
        body = json.dumps(obj).encode()
        self.raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def wait(self, pred, timeout=120):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; got {self.messages[-5:]}"
                self.cond.wait(left)

    def response(self, id_, timeout=120):
        return self.wait(lambda m: m.get("id") == id_ and ("result" in m or "error" in m), timeout)
