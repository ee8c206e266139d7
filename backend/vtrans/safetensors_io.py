"""Reading and writing safetensors files without the `safetensors` package.

Format: 8-byte little-endian header length N, N bytes of JSON (`name -> {dtype, shape, data_offsets}` and an
optional `__metadata__`), then the raw little-endian tensor data. Malformed files raise `CheckpointError`
naming the file.
"""
from __future__ import annotations

import json
import os
import struct
from typing import Dict, Optional

import numpy as np
import torch

from .errors import CheckpointError

_DTYPES = {
    "F64": (torch.float64, np.float64), "F32": (torch.float32, np.float32), "F16": (torch.float16, np.float16),
    "BF16": (torch.bfloat16, np.int16), "I64": (torch.int64, np.int64), "I32": (torch.int32, np.int32),
    "I16": (torch.int16, np.int16), "I8": (torch.int8, np.int8), "U8": (torch.uint8, np.uint8), "BOOL": (torch.bool, np.bool_),
}
_NAMES = {v[0]: k for k, v in _DTYPES.items()}
_MAX_HEADER = 100_000_000


def _fail(path: str, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: not a valid safetensors file ({what}). Re-save the weights or restore the file from its source.")


def read_header(path: str) -> Dict[str, dict]:
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
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or info.get("dtype") not in _DTYPES or not isinstance(info.get("shape"), list):
            raise _fail(path, f'entry "{name}" lacks a known dtype or a shape')
        begin, stop = info.get("data_offsets", [None, None])
        numel = int(np.prod(info["shape"])) if info["shape"] else 1
        if not isinstance(begin, int) or not isinstance(stop, int) or stop - begin != numel * np.dtype(_DTYPES[info["dtype"]][1]).itemsize:
            raise _fail(path, f'entry "{name}" has data_offsets that do not fit its shape {info["shape"]}')
        end = max(end, stop)
    if 8 + n + end > size:
        raise _fail(path, f"tensor data needs {8 + n + end} bytes but the file has {size}: truncated")
    header["__data_start__"] = 8 + n
    return header


def load_file(path: str) -> Dict[str, torch.Tensor]:
    """All tensors of one file, copied into ordinary (writable) CPU tensors."""
    header = read_header(path)
    start = header.pop("__data_start__")
    header.pop("__metadata__", None)
    out: Dict[str, torch.Tensor] = {}
    if not header:
        return out
    data = np.memmap(path, dtype=np.uint8, mode="r")
    for name, info in header.items():
        tdtype, ndtype = _DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[start + b:start + e].tobytes(), dtype=ndtype).reshape(info["shape"])
        t = torch.from_numpy(arr.copy())
        out[name] = t.view(torch.bfloat16) if tdtype is torch.bfloat16 else t
    del data
    return out


def save_file(tensors: Dict[str, torch.Tensor], path: str, metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes atomically (temp file + rename)."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        if t.dtype not in _NAMES:
            raise ValueError(f"cannot store dtype {t.dtype} of {name} in safetensors")
        raw = (t.view(torch.int16) if t.dtype is torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode("utf-8"))
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)
