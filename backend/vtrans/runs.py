"""The run directory (DESIGN.md): `.vtrans/runs/<id>/` with run.json, metrics.jsonl, masks.safetensors,
checkpoints/, model/, model.onnx, report.json, report.html. Every file is written atomically (temp + rename);
`status` in run.json is one of running, done, failed, cancelled.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import secrets
import sys
from typing import Any

import torch

from . import __version__
from .safetensors_io import load_file, save_file

STATUSES = ("running", "done", "failed", "cancelled")


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


def versions() -> dict[str, str]:
    return {"vtrans": __version__, "torch": torch.__version__, "python": platform.python_version(), "platform": sys.platform}


class RunDir:
    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.checkpoints = os.path.join(self.path, "checkpoints")

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def exists(self) -> bool:
        return os.path.exists(self.file("run.json"))

    def create(self, settings: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
        os.makedirs(self.checkpoints, exist_ok=True)
        data = {
            "id": os.path.basename(self.path),
            "status": "running",
            "createdAt": now(),
            "updatedAt": now(),
            "settings": settings,
            "versions": versions(),
            "pid": os.getpid(),
        }
        data.update(extra or {})
        write_json(self.file("run.json"), data)

    def read(self) -> dict[str, Any]:
        with open(self.file("run.json"), encoding="utf-8") as f:
            return json.load(f)

    def update(self, **fields: Any) -> dict[str, Any]:
        data = self.read()
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"bad status {fields['status']}")
        data.update(fields)
        data["updatedAt"] = now()
        write_json(self.file("run.json"), data)
        return data

    def append_metric(self, record: dict[str, Any]) -> None:
        """One JSON object per line; a line is written whole (single write of a short line, flushed)."""
        line = json.dumps({"time": now(), **record}, allow_nan=True, default=_jsonable) + "\n"
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


class FollowerRunDir(RunDir):
    """A data-parallel worker other than rank 0: reads the run directory, never writes it."""

    def create(self, settings, extra=None) -> None:
        pass

    def update(self, **fields):
        return self.read() if self.exists() else {}

    def append_metric(self, record) -> None:
        pass

    def save_checkpoint(self, state, tag, keep_last: int = 2) -> str:
        return ""


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
