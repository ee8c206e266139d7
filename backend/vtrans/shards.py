"""Token shards written by the TypeScript side (src/core/shards.ts; format in docs/data-format.md).

A shard directory holds meta.json, ids.i32 (all token ids, concatenated), lengths.i32 (one per example),
labels.i32 (classification) and types.u8 (token types, text pairs only). Batches are right-padded to the
longest example in the batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from .errors import DataError
from .schema import ContractError, parse
from .settings import Task

SHARD_FORMAT = "vtrans-tokens"
SHARD_VERSION = 1


# How language-modelling data becomes one token stream (docs/data-format.md).
LmInput = Literal["text", "documents"]


@dataclass
class ShardMeta:
    """meta.json of a token shard directory (written by the client, src/core/shards.ts; docs/data-format.md)."""

    format: Literal["vtrans-tokens"]
    version: Literal[1]
    task: Task
    examples: int = field(metadata={"doc": "Number of examples (classification) or blocks (lm)."})
    tokens: int = field(metadata={"doc": "Total tokens in ids.i32."})
    max_len: int
    pad_id: int
    labels: list[str] | None = field(metadata={"doc": "Class names in index order (classification), else null."})
    pairs: bool
    mean_length: float
    source: str = field(metadata={"doc": "Absolute path of the data file."})
    source_bytes: int
    source_mtime_ms: float
    tokenizer_sha256: str
    created_at: str
    truncated: int | None = field(default=None, metadata={"doc": "Informational: examples cut to maxLen (classification)."})
    dropped_tokens: int | None = field(default=None, metadata={"doc": "Informational: tokens after the last full block, dropped (lm)."})
    eos_id: int | None = field(
        default=None,
        metadata={"doc": "Informational: the EOS id that joined lm documents; absent when none did (always so for `.txt`)."},
    )
    lm_input: LmInput | None = field(
        default=None,
        metadata={
            "doc": "Informational, lm: `text` — a `.txt` file tokenized line by line as it is, each line with its line break, the ids "
            "concatenated with nothing between; `documents` — records (`.jsonl`, `.csv`, `.tsv`) joined with eosId."
        },
    )
    label_counts: list[int] | None = field(default=None, metadata={"doc": "Examples per class, in label order (classification)."})
    warnings: list[str] = field(
        default_factory=list, metadata={"doc": "What looked wrong in the data file (empty texts, bytes that are not UTF-8, one class)."}
    )


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T) int64
    attention_mask: torch.Tensor  # (B, T) int64
    labels: torch.Tensor | None  # (B,) int64 for classification
    token_type_ids: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(
            self.input_ids.to(device, non_blocking=True),
            self.attention_mask.to(device, non_blocking=True),
            move(self.labels),
            move(self.token_type_ids),
        )

    @property
    def size(self) -> int:
        return self.input_ids.shape[0]


class Shards:
    def __init__(self, directory: str):
        self.dir = directory
        meta_path = os.path.join(directory, "meta.json")
        if not os.path.exists(meta_path):
            raise DataError(
                f"{meta_path}: missing; {directory} is not a token shard directory. Re-run the command to tokenize the data again."
            )
        try:
            with open(meta_path, encoding="utf-8") as f:
                raw = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{meta_path}: not valid JSON ({e}). Delete {directory} to re-tokenize.") from None
        if not isinstance(raw, dict) or raw.get("format") != SHARD_FORMAT or raw.get("version") != SHARD_VERSION:
            got = (raw.get("format"), raw.get("version")) if isinstance(raw, dict) else (None, None)
            raise DataError(f"{meta_path}: unsupported shard format {got[0]!r} v{got[1]}. Delete {directory} to re-tokenize.")
        try:
            self.meta: ShardMeta = parse(ShardMeta, raw, strict=False)
        except ContractError as e:
            raise DataError(f"{meta_path}: {e}. Delete {directory} to re-tokenize.") from None
        self.task = self.meta.task
        self.pad_id = self.meta.pad_id
        self.lengths = self._read("lengths.i32", np.int32).astype(np.int64)
        self.ids = self._read("ids.i32", np.int32)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        if self.offsets[-1] != len(self.ids):
            raise DataError(
                f"{directory}: lengths.i32 sums to {self.offsets[-1]} tokens but ids.i32 holds {len(self.ids)}. Delete the folder to re-tokenize."
            )
        self.labels = self._read("labels.i32", np.int32).astype(np.int64) if self.task == "classification" else None
        self.types = self._read("types.u8", np.uint8) if self.meta.pairs else None
        if len(self.lengths) == 0:
            raise DataError(f"{self.meta.source}: no examples after tokenization. Check the data file is not empty.")

    def _read(self, name: str, dtype) -> np.ndarray:
        path = os.path.join(self.dir, name)
        if not os.path.exists(path):
            raise DataError(f"{path}: missing from the token shards. Delete {self.dir} to re-tokenize.")
        return np.fromfile(path, dtype=np.dtype(dtype).newbyteorder("<"))

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def mean_length(self) -> float:
        return float(self.lengths.mean())

    def label_names(self) -> list[str] | None:
        return self.meta.labels

    def batch(self, indices) -> Batch:
        indices = np.asarray(indices, dtype=np.int64)
        t = int(self.lengths[indices].max())
        ids = np.full((len(indices), t), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(indices), t), dtype=np.int64)
        types = np.zeros((len(indices), t), dtype=np.int64) if self.types is not None else None
        for row, i in enumerate(indices):
            a, b = self.offsets[i], self.offsets[i + 1]
            ids[row, : b - a] = self.ids[a:b]
            mask[row, : b - a] = 1
            if types is not None and self.types is not None:
                types[row, : b - a] = self.types[a:b]
        labels = torch.from_numpy(self.labels[indices]) if self.labels is not None else None
        return Batch(torch.from_numpy(ids), torch.from_numpy(mask), labels, None if types is None else torch.from_numpy(types))

    def batches(self, batch_size: int, order: np.ndarray | None = None) -> Iterator[Batch]:
        order = np.arange(len(self)) if order is None else order
        for start in range(0, len(order), batch_size):
            yield self.batch(order[start : start + batch_size])

    def check_vocabulary(self, vocab: int, model_dir: str) -> None:
        """Every token id must index the model's embedding rows: ids from another tokenizer are refused here,
        with the file to fix, rather than failing inside the model as an index error."""
        top = int(self.ids.max()) if len(self.ids) else -1
        if top >= vocab or (len(self.ids) and int(self.ids.min()) < 0):
            raise DataError(
                f"{self.meta.source}: token id {top if top >= vocab else int(self.ids.min())} is outside the model's vocabulary "
                f"of {vocab} ({os.path.join(model_dir, 'config.json')} vocab_size): the data was tokenized with another "
                f"tokenizer. Delete {self.dir} to tokenize it again with {os.path.join(model_dir, 'tokenizer.json')}."
            )

    def sorted_order(self) -> np.ndarray:
        """Evaluation order by length: less padding, same results."""
        return np.argsort(self.lengths, kind="stable")


def subset_order(n: int, fraction: float, seed: int) -> np.ndarray:
    """The examples a data fraction keeps (Fast-VTrans): a seeded random subset, at least one example."""
    rng = np.random.default_rng(seed)
    k = max(1, int(round(n * fraction)))
    return np.sort(rng.permutation(n)[:k])
