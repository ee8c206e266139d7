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
import signal
import sys
import threading
import traceback
from typing import Any, BinaryIO

from . import api, protocol
from .errors import Cancelled, UserError
from .protocol import CancelParams
from .runs import RunLocked
from .schema import ContractError, dump, parse

log = logging.getLogger("vtrans")


# Bounds on what a peer can make the server read: a header line, a body, the nesting of a JSON body.
MAX_HEADER_LINE = 4096
MAX_BODY = 64 << 20
MAX_DEPTH = 64


class FrameError(Exception):
    pass


class FrameReader:
    """LSP-style frames from a byte stream. After a malformed header block the reader skips to the next
    `Content-Length:` (also in the middle of a line, after leftover body bytes), so those never swallow the next
    frame."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.resync = False

    def _line(self) -> bytes | None:
        """One line of at most MAX_HEADER_LINE bytes; a longer one is consumed whole and reported."""
        line = self.stream.readline(MAX_HEADER_LINE + 1)
        if not line:
            return None
        if len(line) > MAX_HEADER_LINE and not line.endswith(b"\n"):
            while True:  # drop the rest of the over-long line without keeping it
                rest = self.stream.readline(1 << 16)
                if not rest or rest.endswith(b"\n"):
                    break
            self.resync = True
            raise FrameError(f"header line longer than {MAX_HEADER_LINE} bytes (starts {line[:40]!r})")
        return line

    def read(self) -> bytes | None:
        """One message body, or None at end of input. Raises FrameError on a malformed header block."""
        headers: dict[str, str] = {}
        while True:
            line = self._line()
            if line is None:
                return None
            if self.resync:
                # Leftover body bytes run straight into the next frame's header: it starts where the name does.
                at = line.lower().find(b"content-length:")
                if at < 0:
                    continue
                line, self.resync = line[at:], False
            if line in (b"\r\n", b"\n"):
                if not headers:
                    continue  # stray blank line between frames
                break
            text = line.decode("ascii", errors="replace").strip()
            if ":" not in text:
                self.resync = True
                raise FrameError(f"malformed header line {text[:80]!r}")
            name, value = text.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        try:
            length = int(headers["content-length"])
        except (KeyError, ValueError):
            self.resync = True
            raise FrameError(f"missing or invalid Content-Length in headers {sorted(headers)[:5]}") from None
        if length < 0 or length > MAX_BODY:
            self.resync = True
            raise FrameError(f"Content-Length {length} is outside 0..{MAX_BODY}")
        body = self.stream.read(length)
        if len(body) < length:
            return None
        return body


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame from a stream (a reader without resynchronisation state, for tests and one-off reads)."""
    return FrameReader(stream).read()


def _too_deep(text: str) -> bool:
    """Bracket nesting beyond MAX_DEPTH, found without parsing (json.loads would recurse into it)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _valid_id(x: Any) -> bool:
    return x is None or isinstance(x, str) or (isinstance(x, (int, float)) and not isinstance(x, bool))


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
        frames = FrameReader(self.reader)
        while True:
            try:
                body = frames.read()
            except FrameError as e:
                log.warning("bad frame: %s", e)
                self.error(None, protocol.PARSE_ERROR, f"Parse error: {e}")
                continue
            if body is None:
                break
            message = self.decode(body)
            if message is None:
                continue
            try:
                if self.dispatch(message) == "exit":
                    break
            except Exception as e:  # a bug in dispatching must not take the server down
                log.error("dispatch failed:\n%s", traceback.format_exc())
                self.error(None, protocol.INTERNAL_ERROR, f"Internal error: {type(e).__name__}: {e}")
        self.stop_all()
        return 0

    def decode(self, body: bytes) -> Any:
        try:
            text = body.decode("utf-8")
            if _too_deep(text):
                raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
            return json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            self.error(None, protocol.PARSE_ERROR, f"Parse error: {str(e)[:200]}")
            return None

    def dispatch(self, message: Any) -> str | None:
        given_id = message.get("id") if isinstance(message, dict) else None
        if not _valid_id(given_id):
            self.error(None, protocol.INVALID_REQUEST, "Invalid request: an id must be a string, a number or null")
            return None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
            self.error(given_id, protocol.INVALID_REQUEST, "Invalid request: expected a JSON-RPC 2.0 object with a method")
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
                job.cancel()
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
        with self.jobs_lock:
            busy = id_ in self.jobs
        if busy:
            self.error(id_, protocol.INVALID_REQUEST, f"Invalid request: id {id_!r} is already in use by a running request")
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
        except RunLocked as e:
            self.error(id_, protocol.ERROR_CODES["RunLocked"], str(e))
        except UserError as e:
            self.error(id_, protocol.USER_ERROR, str(e))
        except Exception as e:
            log.error("%s failed:\n%s", method, traceback.format_exc())
            self.error(id_, protocol.INTERNAL_ERROR, f"{method} failed: {type(e).__name__}: {e}", {"traceback": traceback.format_exc()})
        finally:
            with self.jobs_lock:
                self.jobs.pop(id_, None)

    def stop_all(self, timeout: float = 10.0, reason: str | None = None) -> None:
        with self.jobs_lock:
            jobs = list(self.jobs.values())
        for job in jobs:
            job.cancel(reason)
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
    server = Server(sys.stdin.buffer, out)

    def terminate(signum: int, _frame: Any) -> None:
        """SIGTERM: running requests are cancelled (their runs recorded as cancelled, with why), then exit."""
        log.warning("received %s: cancelling %d running request(s)", signal.Signals(signum).name, len(server.jobs))
        server.stop_all(reason=f"the backend received {signal.Signals(signum).name}")
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    log.info("vtrans backend %s (torch %s, pid %d) ready", api.__version__, torch.__version__, os.getpid())
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
