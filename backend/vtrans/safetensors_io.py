"""safetensors files through the `safetensors` package (memory-mapped), with errors that name the file.

The package's own errors ("Error while deserializing header: MetadataIncompleteBuffer") do not tell a user what
to do, so the header is checked here first (length, JSON, dtypes, offsets against the file size) and every
problem becomes a `CheckpointError` naming the file and the fix. Tensors are then read lazily, one at a time, so
loading a large shard never holds more than the model plus one tensor.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterator

import torch
from safetensors import safe_open
from safetensors.torch import save_file as _save_file

from .errors import CheckpointError

# Bytes per element of every dtype the format defines; F8 types are read and widened by the caller's copy.
ITEM_SIZES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
}
_MAX_HEADER = 100_000_000


def _fail(path: str, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: not a valid safetensors file ({what}). Restore the file from its source or save it again.")


def read_header(path: str) -> dict[str, dict]:
    """The header's tensor entries (`name -> {dtype, shape, data_offsets}`), checked against the file size."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _fail(path, f"file is {size} bytes, shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n <= 0 or n > _MAX_HEADER:
            raise _fail(path, f"header length {n} is implausible")
        if 8 + n > size:
            raise _fail(path, f"header of {n} bytes runs past the end of the {size}-byte file: truncated")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise _fail(path, f"header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise _fail(path, "header is not a JSON object")
    header.pop("__metadata__", None)
    end = 0
    for name, info in header.items():
        if (
            not isinstance(info, dict)
            or not isinstance(info.get("shape"), list)
            or not all(isinstance(d, int) and d >= 0 for d in info["shape"])
        ):
            raise _fail(path, f'entry "{name}" lacks a shape')
        dtype = info.get("dtype")
        if dtype not in ITEM_SIZES:
            raise CheckpointError(
                f'{path}: tensor "{name}" has dtype {json.dumps(dtype)}, which VTrans cannot read '
                f"(supported: {', '.join(ITEM_SIZES)}). Convert the checkpoint to float32, float16 or bfloat16."
            )
        offsets = info.get("data_offsets")
        begin, stop = offsets if isinstance(offsets, list) and len(offsets) == 2 else (None, None)
        numel = math.prod(info["shape"])
        if not isinstance(begin, int) or not isinstance(stop, int) or begin < 0 or stop - begin != numel * ITEM_SIZES[dtype]:
            raise _fail(path, f'entry "{name}" has data_offsets that do not fit its shape {info["shape"]}')
        end = max(end, stop)
    if 8 + n + end > size:
        raise _fail(path, f"tensor data needs {8 + n + end} bytes but the file has {size}: truncated")
    return header


class SafetensorsFile:
    """One file, opened memory-mapped: names and shapes from the checked header, tensors on demand."""

    def __init__(self, path: str):
        self.path = path
        self.header = read_header(path)
        try:
            self._handle = safe_open(path, framework="pt", device="cpu")
        except Exception as e:  # the package found what the header check did not
            raise _fail(path, str(e).splitlines()[0]) from None

    def names(self) -> list[str]:
        return list(self.header)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.header[name]["shape"])

    def dtype(self, name: str) -> str:
        return self.header[name]["dtype"]

    def get(self, name: str) -> torch.Tensor:
        try:
            return self._handle.get_tensor(name)
        except Exception as e:
            raise _fail(self.path, f'tensor "{name}": {str(e).splitlines()[0]}') from None

    def items(self) -> Iterator[tuple[str, torch.Tensor]]:
        for name in self.header:
            yield name, self.get(name)


def load_file(path: str) -> dict[str, torch.Tensor]:
    """All tensors of one file as ordinary CPU tensors (small files: masks, checkpoints)."""
    return {name: t.clone() for name, t in SafetensorsFile(path).items()}


def _own_storage(t: torch.Tensor) -> torch.Tensor:
    """The package refuses tensors that share memory (views of one buffer): those are copied."""
    return t if t.untyped_storage().nbytes() == t.numel() * t.element_size() else t.clone()


def save_file(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str] | None = None) -> None:
    """Writes atomically (temp file + rename), so a reader never sees half a file."""
    plain = {k: _own_storage(v.detach().to("cpu").contiguous()) for k, v in tensors.items()}
    tmp = f"{path}.tmp-{os.getpid()}"
    _save_file(plain, tmp, metadata={str(k): str(v) for k, v in (metadata or {}).items()} or None)
    os.replace(tmp, path)
