"""The backend server: JSON-RPC 2.0 over stdio with `Content-Length` framing (protocol.py).

stdout carries protocol frames only; logs go to stderr. Each request runs on its own thread so that
`$/cancelRequest` and quick requests (predict) are answered while a compression trains. Malformed frames and
unknown methods get error responses; the server keeps serving.

    python -m vtrans.server
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import traceback
from typing import Any, BinaryIO

from . import api, protocol
from .errors import Cancelled, UserError
from .protocol import CancelParams
from .schema import ContractError, dump, parse

log = logging.getLogger("vtrans")


class FrameError(Exception):
    pass


def read_frame(stream: BinaryIO) -> bytes | None:
    """One message body, or None at end of input. Raises FrameError on a malformed header block."""
    headers: dict[str, str] = {}
    while True:
        line = stream.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            if not headers:
                continue  # stray blank line between frames
            break
        text = line.decode("ascii", errors="replace").strip()
        if ":" not in text:
            raise FrameError(f"malformed header line {text[:80]!r}")
        name, value = text.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    try:
        length = int(headers["content-length"])
    except (KeyError, ValueError):
        raise FrameError(f"missing or invalid Content-Length in headers {sorted(headers)}") from None
    if length < 0 or length > 1 << 30:
        raise FrameError(f"implausible Content-Length {length}")
    body = stream.read(length)
    if len(body) < length:
        return None
    return body


class Server:
    def __init__(self, reader: BinaryIO, writer: BinaryIO):
        self.reader = reader
        self.writer = writer
        self.write_lock = threading.Lock()
        self.jobs: dict[Any, api.Job] = {}
        self.jobs_lock = threading.Lock()
        self.threads: list = []
        self.shutting_down = False

    # -- output ----------------------------------------------------------------------------------------------------
    def send(self, message: dict) -> None:
        body = json.dumps(message, allow_nan=False, default=_default).encode("utf-8")
        with self.write_lock:
            self.writer.write(f"Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body)
            self.writer.flush()

    def reply(self, id_: Any, result: Any) -> None:
        self.send({"jsonrpc": "2.0", "id": id_, "result": result})

    def error(self, id_: Any, code: int, message: str, data: Any = None) -> None:
        err = {"code": code, "message": message}
        if data is not None:
            err["data"] = data
        self.send({"jsonrpc": "2.0", "id": id_, "error": err})

    def notify(self, method: str, params: dict) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    # -- input -----------------------------------------------------------------------------------------------------
    def serve(self) -> int:
        while True:
            try:
                body = read_frame(self.reader)
            except FrameError as e:
                log.warning("bad frame: %s", e)
                self.error(None, protocol.PARSE_ERROR, f"Parse error: {e}")
                continue
            if body is None:
                break
            try:
                message = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                self.error(None, protocol.PARSE_ERROR, f"Parse error: {e}")
                continue
            if self.dispatch(message) == "exit":
                break
        self.stop_all()
        return 0

    def dispatch(self, message: Any) -> str | None:
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
            self.error(
                message.get("id") if isinstance(message, dict) else None,
                protocol.INVALID_REQUEST,
                "Invalid request: expected a JSON-RPC 2.0 object with a method",
            )
            return None
        method, params, id_ = message["method"], message.get("params"), message.get("id")
        if method == "$/cancelRequest":
            try:
                target = parse(CancelParams, params).id
            except ContractError as e:
                log.warning("ignoring a malformed $/cancelRequest: %s", e)
                return None
            with self.jobs_lock:
                job = self.jobs.get(target)
            if job is not None:
                log.info("cancelling request %s", target)
                job.cancelled.set()
            return None
        if method == "exit":
            return "exit"
        if id_ is None:
            return None  # other notifications are ignored
        if method == "shutdown":
            self.shutting_down = True
            self.stop_all()
            self.reply(id_, None)
            return None
        handler = api.HANDLERS.get(method)
        if handler is None:
            self.error(id_, protocol.METHOD_NOT_FOUND, f"Method not found: {method}")
            return None
        try:
            parsed = api.parse_params(method, params if params is not None else {})
        except ContractError as e:
            self.error(id_, protocol.INVALID_PARAMS, f"Invalid params for {method}: {e}")
            return None

        def progress(p: dict, _id=id_) -> None:
            self.notify("progress", {"id": _id, **p})

        job = api.Job(progress=progress)
        with self.jobs_lock:
            self.jobs[id_] = job
        t = threading.Thread(target=self.run_job, args=(id_, method, handler, parsed, job), name=f"{method}-{id_}", daemon=True)
        self.threads.append(t)
        t.start()
        return None

    def run_job(self, id_, method, handler, params, job) -> None:
        try:
            self.reply(id_, dump(handler(params, job)))
        except Cancelled:
            self.error(id_, protocol.REQUEST_CANCELLED, f"{method} was cancelled")
        except UserError as e:
            self.error(id_, protocol.USER_ERROR, str(e))
        except Exception as e:
            log.error("%s failed:\n%s", method, traceback.format_exc())
            self.error(id_, protocol.INTERNAL_ERROR, f"{method} failed: {type(e).__name__}: {e}", {"traceback": traceback.format_exc()})
        finally:
            with self.jobs_lock:
                self.jobs.pop(id_, None)

    def stop_all(self, timeout: float = 10.0) -> None:
        with self.jobs_lock:
            jobs = list(self.jobs.values())
        for job in jobs:
            job.cancelled.set()
        for t in self.threads:
            t.join(timeout)


def _default(x):
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


def main() -> int:
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("VTRANS_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(message)s")
    # Protocol frames need the binary streams; nothing else may write to stdout.
    out = sys.stdout.buffer
    sys.stdout = sys.stderr
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    log.info("vtrans backend %s (torch %s, pid %d) ready", api.__version__, torch.__version__, os.getpid())
    return Server(sys.stdin.buffer, out).serve()


if __name__ == "__main__":
    sys.exit(main())
