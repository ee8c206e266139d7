"""A model's architecture normalised across families, and its size accounting.

Mirrors `src/core/modelShape.ts` and `src/core/accounting.ts` (tests keep them equal). The size formulas are
written with plain arithmetic so the same code counts an exact keep-set (integers) and the expected size under
soft VIB gates (tensors of keep probabilities, differentiable): see `layer_params` and `flops_per_token`.

Pruned models keep the family's config fields and add (docs/model-format.md):
    head_dim                    size of one attention head
    layer_num_attention_heads   [L] query heads per layer (0: attention sublayer removed)
    layer_num_key_value_heads   [L] key/value heads per layer (llama)
    layer_intermediate_size     [L] FFN neurons per layer (0: FFN sublayer removed)
    head_hidden_size            bert/roberta: output width of the pooler / classifier dense layer
with `hidden_size` (gpt2: `n_embd`) holding the pruned hidden width.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import CheckpointError

FAMILIES = ("bert", "roberta", "gpt2", "llama")


@dataclass(frozen=True)
class LayerShape:
    heads: int  # query heads; 0 = attention sublayer removed
    kv_heads: int  # key/value heads (GQA groups); == heads for multi-head attention
    ffn: int  # FFN neurons; 0 = FFN sublayer removed

    @property
    def group_size(self) -> int:
        return self.heads // self.kv_heads if self.kv_heads else 1


@dataclass(frozen=True)
class ModelShape:
    family: str
    hidden: int
    head_dim: int
    layers: tuple
    vocab: int
    max_positions: int
    type_vocab: int
    num_labels: int
    task: str  # "classification" | "lm"
    tied_embeddings: bool
    attention_bias: bool = True
    mlp_bias: bool = True
    head_hidden: int = 0  # bert/roberta pooler / classifier-dense output width
    config: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def group_size(self) -> int:
        """Query heads per key/value head in the source architecture."""
        return max(l.group_size for l in self.layers if l.heads) if any(l.heads for l in self.layers) else 1

    def with_layers(self, hidden: int, layers: list[LayerShape]) -> ModelShape:
        return replace(self, hidden=hidden, layers=tuple(layers))


def read_config(model_dir: str) -> dict[str, Any]:
    if not os.path.isdir(model_dir):
        raise CheckpointError(f"{model_dir}: model directory not found. Pass the folder that holds config.json and the weights.")
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: missing. A Hugging Face model directory needs config.json next to its weights.")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e}). Fix the syntax or re-save the config.") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: must be a JSON object.")
    return cfg


def num_labels_of(cfg: dict[str, Any]) -> int:
    """Hugging Face writes a default two-label id2label into every config: only the architecture tells."""
    archs = [str(a) for a in cfg.get("architectures") or []]
    if not any(a.endswith("ForSequenceClassification") for a in archs):
        return 0
    if isinstance(cfg.get("num_labels"), int):
        return cfg["num_labels"]
    if isinstance(cfg.get("id2label"), dict):
        return len(cfg["id2label"])
    return 2


def shape_from_config(cfg: dict[str, Any], source: str = "config.json", task: str | None = None) -> ModelShape:
    def num(key: str, default: int | None = None) -> int:
        v = cfg.get(key)
        if v is None:
            if default is not None:
                return default
            raise CheckpointError(f'{source}: "{key}" is missing. Add "{key}" to the config (model_type {cfg.get("model_type")}).')
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise CheckpointError(f'{source}: "{key}" must be a non-negative integer, got {json.dumps(v)}.')
        return v

    family = cfg.get("model_type")
    if family not in FAMILIES:
        raise CheckpointError(
            f"{source}: model_type {json.dumps(family)} is not supported. Supported model_type values: {', '.join(FAMILIES)}."
        )
    gpt2 = family == "gpt2"
    hidden = num("n_embd" if gpt2 else "hidden_size")
    n_layers = num("n_layer" if gpt2 else "num_hidden_layers")
    heads = num("n_head" if gpt2 else "num_attention_heads")
    kv = num("num_key_value_heads", heads) if family == "llama" else heads
    head_dim = num("head_dim", hidden // heads if heads else 0)
    if cfg.get("head_dim") is None and heads and hidden % heads:
        raise CheckpointError(f"{source}: hidden size {hidden} is not divisible by {heads} heads. Set head_dim explicitly.")
    if kv and heads % kv:
        raise CheckpointError(f"{source}: {heads} attention heads are not a multiple of {kv} key/value heads. Fix num_key_value_heads.")
    ffn = num("n_inner", 4 * hidden) if gpt2 else num("intermediate_size")

    def per_layer(key: str, default: int) -> list[int]:
        v = cfg.get(key)
        if v is None:
            return [default] * n_layers
        if not isinstance(v, list) or len(v) != n_layers or any(not isinstance(x, int) or x < 0 for x in v):
            raise CheckpointError(f'{source}: "{key}" must list {n_layers} non-negative integers (one per layer).')
        return v

    lh = per_layer("layer_num_attention_heads", heads)
    lkv = per_layer("layer_num_key_value_heads", kv) if family == "llama" else lh
    lffn = per_layer("layer_intermediate_size", ffn)
    layers = []
    for i, (h, g, f) in enumerate(zip(lh, lkv, lffn)):
        if (h == 0) != (g == 0) or (g and h % g):
            raise CheckpointError(
                f"{source}: layer {i} has {h} query heads and {g} key/value heads; query heads must be a multiple of key/value heads."
            )
        layers.append(LayerShape(h, g, f))
    labels = num_labels_of(cfg)
    default_task = "classification" if labels > 0 or family in ("bert", "roberta") else "lm"
    tied = cfg.get("tie_word_embeddings")
    return ModelShape(
        family=family,
        hidden=hidden,
        head_dim=head_dim,
        layers=tuple(layers),
        vocab=num("vocab_size"),
        max_positions=num("n_positions", 1024) if gpt2 else num("max_position_embeddings", 2048),
        type_vocab=num("type_vocab_size", 2 if family == "bert" else 1) if family in ("bert", "roberta") else 0,
        num_labels=labels,
        task=task or default_task,
        tied_embeddings=(family != "llama") if tied is None else bool(tied),
        attention_bias=bool(cfg.get("attention_bias", False)) if family == "llama" else True,
        mlp_bias=bool(cfg.get("mlp_bias", False)) if family == "llama" else True,
        head_hidden=num("head_hidden_size", hidden) if family in ("bert", "roberta") else 0,
        config=cfg,
    )


# ----------------------------------------------------------------------------------------------------------------
# Size accounting. `H`, `h`, `g`, `F` may be ints or tensors (expected counts under soft gates); `attn_on` and
# `ffn_on` are 0/1 (or keep probabilities) for the whole sublayers.


def layer_params(s: ModelShape, H, h, g, F, attn_on=1, ffn_on=1):
    """Parameters of one transformer block (CoFi's encoder parameters)."""
    d = s.head_dim
    if s.family in ("bert", "roberta"):
        attn = 3 * (H * h * d + h * d) + h * d * H + H
        ffn = 2 * H * F + F + H
        return attn_on * attn + ffn_on * ffn + 4 * H  # both post-LN LayerNorms stay
    if s.family == "gpt2":
        attn = 2 * H + H * 3 * h * d + 3 * h * d + h * d * H + H
        ffn = 2 * H + H * F + F + F * H + H
        return attn_on * attn + ffn_on * ffn
    attn = H + H * h * d + 2 * H * g * d + h * d * H + ((h * d + 2 * g * d + H) if s.attention_bias else 0)
    ffn = H + 3 * H * F + ((2 * F + H) if s.mlp_bias else 0)
    return attn_on * attn + ffn_on * ffn


def embedding_params(s: ModelShape, H):
    if s.family in ("bert", "roberta"):
        return (s.vocab + s.max_positions + s.type_vocab) * H + 2 * H
    if s.family == "gpt2":
        return (s.vocab + s.max_positions) * H
    return s.vocab * H


def head_params(s: ModelShape, H):
    """Pooler, final norm and task head."""
    C = s.num_labels
    P = s.head_hidden
    if s.family == "bert":
        return H * P + P + (P * C + C if C else 0)
    if s.family == "roberta":
        return H * P + P + P * C + C if C else 0
    final_norm = 2 * H if s.family == "gpt2" else H
    if C:
        return final_norm + H * C
    return final_norm + (0 if s.tied_embeddings else s.vocab * H)


def count_params(s: ModelShape) -> dict[str, int]:
    encoder = sum(layer_params(s, s.hidden, l.heads, l.kv_heads, l.ffn, int(l.heads > 0), int(l.ffn > 0)) for l in s.layers)
    embedding = embedding_params(s, s.hidden)
    total = embedding + encoder + head_params(s, s.hidden)
    return {"total": total, "embedding": embedding, "nonEmbedding": total - embedding, "encoder": encoder}


def layer_flops(s: ModelShape, H, h, g, F, seq_len: float, attn_on=1, ffn_on=1):
    d = s.head_dim
    mats = 3 if s.family == "llama" else 2
    attn = 2 * H * (h + 2 * g) * d + 2 * h * d * H + 4 * seq_len * h * d
    return attn_on * attn + ffn_on * 2 * H * F * mats


def head_flops(s: ModelShape, H, seq_len: float):
    if s.task == "lm":
        return 2 * H * s.vocab
    if s.num_labels:
        pooler = 2 * H * s.head_hidden + 2 * s.head_hidden * s.num_labels if s.family in ("bert", "roberta") else 2 * H * s.num_labels
        return pooler / seq_len
    return 0


def flops_per_token(s: ModelShape, seq_len: float) -> float:
    """2 FLOPs per multiply-accumulate of the matrix products per token at sequence length n (see accounting.ts)."""
    body = sum(layer_flops(s, s.hidden, l.heads, l.kv_heads, l.ffn, seq_len, int(l.heads > 0), int(l.ffn > 0)) for l in s.layers)
    return body + head_flops(s, s.hidden, seq_len)
