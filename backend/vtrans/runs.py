"""The run directory (docs/architecture.md): `.vtrans/runs/<id>/` with run.json, metrics.jsonl, masks.safetensors,
checkpoints/, model/, model.onnx, report.json, report.html. Every file is written atomically (temp + rename);
`status` in run.json is one of running, done, failed, cancelled.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import logging
import os
import platform
import secrets
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from . import __version__
from .errors import UserError
from .protocol import CompressResult, RethresholdResult
from .report import Metric, RunStatus
from .safetensors_io import load_file, save_file
from .schema import ContractError, camel, dump, parse
from .settings import BaselineMethod, BudgetKind, CompressSettings, Method

STATUSES: tuple[str, ...] = RunStatus.__args__  # type: ignore[attr-defined]
log = logging.getLogger("vtrans")


def new_run_id(method: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{method}-{secrets.token_hex(2)}"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_json(path: str, data: Any) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, allow_nan=False, default=_jsonable)
        f.write("\n")
    os.replace(tmp, path)


def _jsonable(x):
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


@dataclass
class Versions:
    vtrans: str
    torch: str
    python: str
    platform: str


def versions() -> Versions:
    return Versions(__version__, torch.__version__, platform.python_version(), sys.platform)


@dataclass
class RunBudget:
    kind: BudgetKind
    keep: float


@dataclass
class RunInfo:
    """run.json: what a run is and where it stands. Written by the backend only (this module)."""

    id: str
    status: RunStatus
    created_at: str
    updated_at: str
    settings: CompressSettings
    versions: Versions
    method: Method | BaselineMethod | Literal["rethreshold"]
    budget: RunBudget
    model_dir: str
    workspace: str | None = field(default=None, metadata={"doc": "The folder whose .vtrans/ holds the run; exports go there."})
    parent: str | None = field(default=None, metadata={"doc": "A re-thresholded run: the run whose masks it was cut from."})
    pid: int | None = field(default=None, metadata={"doc": "The process that writes the run while it is running."})
    error: str | None = field(default=None, metadata={"doc": "Why a failed or cancelled run stopped."})
    result: CompressResult | RethresholdResult | None = None


@dataclass
class MetricsRecord:
    """One line of metrics.jsonl: a training step's figures, an evaluation, or the scales a cut chose."""

    time: str
    phase: Literal["teacher", "prune", "finetune", "cut"]
    step: int | None = None
    loss: float | None = None
    kl: float | None = None
    sparsity: float | None = field(default=None, metadata={"doc": "1 − expected size under the soft gates."})
    target: float | None = field(default=None, metadata={"doc": "The budget target at this step (ramps from 1 to keep)."})
    lambda_: list[float] | None = field(default=None, metadata={"json": "lambda", "doc": "λ1, λ2 of the budget term."})
    eval: Metric | None = None
    keep: float | None = field(default=None, metadata={"doc": "The budget of a cut."})
    scales: Literal["trained", "one"] | None = field(
        default=None, metadata={"doc": "What a cut of masks trained on frozen weights folded in: the trained scales, or scale 1."}
    )
    dev: dict[str, float] | None = field(default=None, metadata={"doc": "A cut's dev metric with each choice of scales."})


class RunDir:
    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.checkpoints = os.path.join(self.path, "checkpoints")

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def exists(self) -> bool:
        return os.path.exists(self.file("run.json"))

    def create(self, settings: CompressSettings, method: str | None = None, parent: str | None = None) -> None:
        os.makedirs(self.checkpoints, exist_ok=True)
        stamp = now()
        info = RunInfo(
            id=os.path.basename(self.path),
            status="running",
            created_at=stamp,
            updated_at=stamp,
            settings=settings,
            versions=versions(),
            method=method or settings.method,  # type: ignore[arg-type]
            budget=RunBudget(settings.budget, settings.keep),
            model_dir=os.path.abspath(settings.model_dir),
            workspace=settings.workspace,
            parent=parent,
            pid=os.getpid(),
        )
        write_json(self.file("run.json"), dump(info))

    def read(self) -> RunInfo:
        path = self.file("run.json")
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            return parse(RunInfo, data, strict=False)
        except FileNotFoundError:
            raise UserError(f"{self.path}: not a run directory (no run.json). Open a run under .vtrans/runs.") from None
        except (json.JSONDecodeError, UnicodeDecodeError, ContractError) as e:
            raise UserError(
                f"{path}: corrupt or from another version ({e}). The run's other files are kept; delete the run or restore run.json."
            ) from None

    def update(self, **fields: Any) -> RunInfo:
        info = self.read()
        for name, value in fields.items():
            if not hasattr(info, name):
                raise ValueError(f"run.json has no field {name!r}")
            setattr(info, name, value)
        info.updated_at = now()
        checked = parse(RunInfo, dump(info), strict=True)  # a bad value fails here, before the file changes
        write_json(self.file("run.json"), dump(checked))
        return checked

    def append_metric(self, phase: str, **figures: Any) -> None:
        """One MetricsRecord per line; a line is written whole (single write of a short line, flushed)."""
        record = parse(MetricsRecord, dump({"time": now(), "phase": phase, **{camel(k): v for k, v in figures.items()}}))
        line = json.dumps(dump(record), allow_nan=False) + "\n"
        with open(self.file("metrics.jsonl"), "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()

    def latest_checkpoint(self) -> str | None:
        """The newest complete checkpoint (its JSON part is written last, so it marks completeness)."""
        if not os.path.isdir(self.checkpoints):
            return None
        found = sorted(f for f in os.listdir(self.checkpoints) if f.startswith("state-") and f.endswith(".json"))
        return os.path.join(self.checkpoints, found[-1][: -len(".json")]) if found else None

    def save_checkpoint(self, state: dict[str, Any], tag: str, keep_last: int = 2) -> str:
        """Tensors go to `state-<tag>.safetensors`, everything else to `state-<tag>.json`: no pickle, so a resumed
        run never executes code from the run directory."""
        base = os.path.join(self.checkpoints, f"state-{tag}")
        tensors: dict[str, torch.Tensor] = {}
        structure = _flatten(state, tensors, "")
        save_file(tensors, base + ".safetensors")
        write_json(base + ".json", structure)
        olds = sorted(f[: -len(".json")] for f in os.listdir(self.checkpoints) if f.startswith("state-") and f.endswith(".json"))
        for old in olds[:-keep_last]:
            for ext in (".json", ".safetensors"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(self.checkpoints, old + ext))
        return base

    @staticmethod
    def load_checkpoint(base: str) -> dict[str, Any]:
        with open(base + ".json", encoding="utf-8") as f:
            structure = json.load(f)
        return _unflatten(structure, load_file(base + ".safetensors"))

    def load_latest_checkpoint(self) -> dict[str, Any] | None:
        """The newest checkpoint that reads back whole; a damaged one (a crash while writing it, a truncated
        file) is skipped with a warning for the one before it. None when there is no checkpoint."""
        if not os.path.isdir(self.checkpoints):
            return None
        bases = sorted(
            (f[: -len(".json")] for f in os.listdir(self.checkpoints) if f.startswith("state-") and f.endswith(".json")), reverse=True
        )
        problems: list[str] = []
        for name in bases:
            base = os.path.join(self.checkpoints, name)
            try:
                state = RunDir.load_checkpoint(base)
                if problems:
                    log.warning("resuming from %s instead: %s", name, "; ".join(problems))
                return state
            except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, UserError) as e:
                problems.append(f"{name} is damaged ({str(e).splitlines()[0][:160]})")
        if problems:
            raise UserError(f"{self.checkpoints}: no checkpoint reads back ({'; '.join(problems)}). Start the run again.")
        return None


class FollowerRunDir(RunDir):
    """A data-parallel worker other than rank 0: reads the run directory, never writes it."""

    def create(self, settings: CompressSettings, method: str | None = None, parent: str | None = None) -> None:
        pass

    def update(self, **fields: Any) -> RunInfo:
        return self.read()

    def append_metric(self, phase: str, **figures: Any) -> None:
        pass

    def save_checkpoint(self, state: dict[str, Any], tag: str, keep_last: int = 2) -> str:
        return ""


def mark_stopped(run_dir: str, status: str, reason: str) -> RunInfo | None:
    """A run left "running" by a process that is gone (killed, crashed): marked failed or cancelled with the
    reason, its checkpoints kept for resume. A run in any other state is left as it is."""
    run = RunDir(run_dir)
    info = run.read()
    if info.status != "running" or RunLock.holder(run_dir) is not None:
        return None  # finished, or its writer is alive after all
    if status not in ("failed", "cancelled"):
        raise ValueError(f"status must be failed or cancelled, got {status!r}")
    note = " Checkpoints are kept: resume the run to continue." if os.path.isdir(run.checkpoints) and os.listdir(run.checkpoints) else ""
    with contextlib.suppress(FileNotFoundError):
        os.remove(run.file(LOCK_FILE))  # its holder is gone
    return run.update(status=status, error=f"{reason}{note}", pid=None)


def main(argv: list[str] | None = None) -> int:
    """`python -m vtrans.runs mark <runDir> --status failed|cancelled --reason TEXT`: used by the client when
    the backend that wrote a run died, so that run.json keeps one writer."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m vtrans.runs")
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mark")
    m.add_argument("run_dir")
    m.add_argument("--status", choices=["failed", "cancelled"], required=True)
    m.add_argument("--reason", required=True)
    a = ap.parse_args(argv)
    try:
        info = mark_stopped(a.run_dir, a.status, a.reason)
    except UserError as e:
        print(f"vtrans: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"runDir": os.path.abspath(a.run_dir), "changed": info is not None, "status": info.status if info else None}))
    return 0


def _flatten(x: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    if isinstance(x, torch.Tensor):
        key = path or "value"
        tensors[key] = x.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(x, dict):
        return {
            "__dict__": [[_flatten(k, tensors, f"{path}.k{i}"), _flatten(v, tensors, f"{path}.{i}")] for i, (k, v) in enumerate(x.items())]
        }
    if isinstance(x, (list, tuple)):
        return {"__list__": [_flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(x)], "tuple": isinstance(x, tuple)}
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise TypeError(f"cannot checkpoint {type(x).__name__} at {path}")


def _unflatten(x: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(x, dict):
        if "__tensor__" in x:
            return tensors[x["__tensor__"]]
        if "__dict__" in x:
            return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in x["__dict__"]}
        if "__list__" in x:
            items = [_unflatten(v, tensors) for v in x["__list__"]]
            return tuple(items) if x.get("tuple") else items
    return x


# ----------------------------------------------------------------------------------------------------------------
# One writer per run: the lock, and where a run may be written.

LOCK_FILE = ".lock"
# Files a client (extension or CLI) writes into a run directory, some before the backend writes run.json there:
# they are not run state and do not make a folder "someone else's" (src/core/runs.ts writes them).
CLIENT_FILES = {"log": "log.txt", "note": "note.txt", "gitignore": ".gitignore"}


def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process (Linux), which tells a live holder from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class LockInfo:
    pid: int
    host: str
    started: str
    purpose: str
    process_start: str | None = None


class RunLocked(UserError):
    """Another live process writes this run."""


class RunLock:
    """`<run>/.lock`, put in place whole by a hard link (atomic: of two processes exactly one gets it), holding the
    holder's pid, host, start time and purpose. A lock whose process is gone (same host, and the pid is dead or
    belongs to a newer process) is stale: it is taken over, with a log line saying whose it was."""

    def __init__(self, run_dir: str, purpose: str):
        self.path = os.path.join(os.path.abspath(run_dir), LOCK_FILE)
        self.purpose = purpose
        self.held = False

    def me(self) -> LockInfo:
        import socket

        return LockInfo(os.getpid(), socket.gethostname(), now(), self.purpose, _process_start(os.getpid()))

    @staticmethod
    def holder(run_dir: str) -> LockInfo | None:
        """The lock's holder when it is a live process, else None (no lock, or a stale one)."""
        path = os.path.join(os.path.abspath(run_dir), LOCK_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                info = parse(LockInfo, json.load(f), strict=False)
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError, ContractError, OSError):
            return None  # a lock file written halfway by a process that died at once
        return info if RunLock._live(info) else None

    @staticmethod
    def _live(info: LockInfo) -> bool:
        import socket

        if info.host != socket.gethostname():
            return True  # cannot tell from here: refuse rather than share
        if not _alive(info.pid):
            return False
        return info.process_start is None or _process_start(info.pid) in (None, info.process_start)

    def acquire(self) -> RunLock:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        for _ in range(2):
            try:
                self._place()
            except FileExistsError:
                live = RunLock.holder(os.path.dirname(self.path))
                if live is not None:
                    raise RunLocked(_locked_message(os.path.dirname(self.path), live)) from None
                log.warning("%s: taking over a stale lock (%s)", self.path, _read_text(self.path)[:200])
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)
                continue
            self.held = True
            return self
        raise RunLocked(f"{os.path.dirname(self.path)}: another process took the run's lock at the same moment. Try again.")

    def _place(self) -> None:
        """Put the whole lock file in place at once, or raise FileExistsError. The content is written to a private
        file first and hard-linked to the lock's name (atomic, and it fails when the name exists), so no reader ever
        sees a lock half-written; a half-written lock would read as stale and be taken from a live writer."""
        private = f"{self.path}.{os.getpid()}.{threading.get_ident()}"
        with open(private, "w", encoding="utf-8") as f:
            json.dump(dump(self.me()), f)
        try:
            os.link(private, self.path)
        except OSError as e:
            if isinstance(e, FileExistsError) or e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
                raise
            self._place_exclusive()  # a file system without hard links
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(private)

    def _place_exclusive(self) -> None:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dump(self.me()), f)

    def release(self) -> None:
        if self.held:
            mine = RunLock.holder(os.path.dirname(self.path))
            if mine is None or mine.pid == os.getpid():  # never remove a lock another process has since taken
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)
            self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _lock_draft(name: str) -> bool:
    """A lock file being written by RunLock._place (it is gone a moment later)."""
    return name.startswith(LOCK_FILE + ".")


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _locked_message(run_dir: str, info: LockInfo) -> str:
    what = {"compress": "compressing into it", "resume": "resuming it", "export": "exporting into it"}.get(info.purpose, info.purpose)
    return (
        f"{run_dir}: process {info.pid} on {info.host} has been {what} since {info.started}. Wait for it to finish or cancel it; "
        f"if that process is gone, delete {os.path.join(run_dir, LOCK_FILE)}."
    )


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output_dir(out_dir: str, model_dir: str, resume: bool = False) -> None:
    """Where a run may be written: never inside, at or around the source model, and never into a folder of the
    user's that is not a run (a new or empty folder, or, to resume, an existing run)."""
    out, src = os.path.realpath(out_dir), os.path.realpath(model_dir)
    if _inside(out, src):
        raise UserError(
            f"{out_dir}: is inside the source model {model_dir}, which VTrans never writes to. Pick an output folder elsewhere."
        )
    if _inside(src, out):
        raise UserError(
            f"{out_dir}: contains the source model {model_dir}; a run there would mix with it. Pick an output folder elsewhere."
        )
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"{out_dir}: is a file, not a folder. Pick a new output folder.")
    live = RunLock.holder(out)
    if live is not None and live.pid != os.getpid():  # another writer: name it, not the files it has begun to write
        raise RunLocked(_locked_message(out_dir, live))
    is_run = os.path.exists(os.path.join(out, "run.json"))
    if resume:
        if not is_run:
            raise UserError(f"{out_dir}: not a run directory (no run.json), so there is nothing to resume.")
        return
    if is_run:
        raise UserError(f"{out_dir}: a run already exists there. Pick a new output directory or resume it.")
    ours = {LOCK_FILE, *CLIENT_FILES.values()}
    leftovers = [n for n in os.listdir(out) if n not in ours and not _lock_draft(n)] if os.path.isdir(out) else []
    if leftovers:
        raise UserError(
            f"{out_dir}: exists and holds files that are not a VTrans run ({', '.join(sorted(leftovers)[:3])}"
            f"{', …' if len(leftovers) > 3 else ''}). Pick a new or empty folder."
        )


if __name__ == "__main__":
    sys.exit(main())
