"""A model's architecture normalised across families, and the generic entry points of its size accounting.

`ModelShape` is what every generic module (budget, pruning, gates, reports) knows of a model. How a family's
config.json maps onto it, and the family's size formulas, live with the family (`models/<family>.py`); the
functions here read the config's generic parts and dispatch to the family named by `model_type`. Mirrors
`src/core/modelShape.ts` and `src/core/accounting.ts` (test/unit/accounting-parity.test.ts keeps them equal). The
size formulas are written with plain arithmetic so the same code counts an exact keep-set (integers) and the
expected size under soft VIB gates (tensors of keep probabilities, differentiable): see `layer_params` and
`flops_per_token`.

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
from typing import TYPE_CHECKING, Any, Union, cast

from .errors import CheckpointError

if TYPE_CHECKING:
    import torch

    from .models.common import Family

# A unit count or size: exact (int), or expected under soft gates (a tensor, so that budgets differentiate it).
Count = Union[int, float, "torch.Tensor"]

# The names of models.FAMILIES, in the order messages list them.
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
    layers: tuple[LayerShape, ...]
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


class ConfigReader:
    """A config.json as a family reads it: every value checked, every error naming the file, the field and the fix."""

    def __init__(self, cfg: dict[str, Any], source: str):
        self.cfg = cfg
        self.source = source

    def num(self, key: str, default: int | None = None) -> int:
        v = self.cfg.get(key)
        if v is None:
            if default is not None:
                return default
            raise CheckpointError(
                f'{self.source}: "{key}" is missing. Add "{key}" to the config (model_type {self.cfg.get("model_type")}).'
            )
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise CheckpointError(f'{self.source}: "{key}" must be a non-negative integer, got {json.dumps(v)}.')
        return v

    def flag(self, key: str, default: bool) -> bool:
        v = self.cfg.get(key)
        return default if v is None else bool(v)

    @property
    def labels(self) -> int:
        return num_labels_of(self.cfg)

    def head_dim(self, hidden: int, heads: int, kv_heads: int) -> int:
        """`head_dim` (pruned models write it), else hidden / heads; checks the GQA grouping too."""
        head_dim = self.num("head_dim", hidden // heads if heads else 0)
        if self.cfg.get("head_dim") is None and heads and hidden % heads:
            raise CheckpointError(f"{self.source}: hidden size {hidden} is not divisible by {heads} heads. Set head_dim explicitly.")
        if kv_heads and heads % kv_heads:
            raise CheckpointError(
                f"{self.source}: {heads} attention heads are not a multiple of {kv_heads} key/value heads. Fix num_key_value_heads."
            )
        return head_dim

    def per_layer(self, key: str, n_layers: int, default: int) -> list[int]:
        if n_layers > LIMITS["layers"]:  # before a list of that many sizes is made
            raise CheckpointError(
                f"{self.source}: layers = {n_layers} is beyond any model VTrans can hold (at most {LIMITS['layers']}). Fix the config."
            )
        v = self.cfg.get(key)
        if v is None:
            return [default] * n_layers
        if not isinstance(v, list) or len(v) != n_layers or any(not isinstance(x, int) or x < 0 for x in v):
            raise CheckpointError(f'{self.source}: "{key}" must list {n_layers} non-negative integers (one per layer).')
        return v

    def layers(self, n_layers: int, heads: int, kv_heads: int, ffn: int, grouped_query: bool) -> tuple[LayerShape, ...]:
        """Per-layer sizes: the uniform ones, or a pruned model's lists (key/value heads only where the family
        groups its queries; elsewhere they equal the query heads)."""
        lh = self.per_layer("layer_num_attention_heads", n_layers, heads)
        lkv = self.per_layer("layer_num_key_value_heads", n_layers, kv_heads) if grouped_query else lh
        lffn = self.per_layer("layer_intermediate_size", n_layers, ffn)
        layers = []
        for i, (h, g, f) in enumerate(zip(lh, lkv, lffn)):
            if (h == 0) != (g == 0) or (g and h % g):
                raise CheckpointError(
                    f"{self.source}: layer {i} has {h} query heads and {g} key/value heads; "
                    "query heads must be a multiple of key/value heads."
                )
            layers.append(LayerShape(h, g, f))
        return tuple(layers)


def family_of(name: object, source: str = "config.json") -> Family:
    """The family object of a `model_type` (models.FAMILIES)."""
    from .models import FAMILIES as registry  # the families import this module for ModelShape

    family = registry.get(name) if isinstance(name, str) else None
    if family is None:
        raise CheckpointError(
            f"{source}: model_type {json.dumps(name)} is not supported. Supported model_type values: {', '.join(FAMILIES)}."
        )
    return family


def shape_from_config(cfg: dict[str, Any], source: str = "config.json", task: str | None = None) -> ModelShape:
    shape = family_of(cfg.get("model_type"), source).shape_from_config(ConfigReader(cfg, source), task)
    check_sense(shape, cfg, source)
    return shape


# Sizes beyond these are typos or hostile files, not models (LLaMA-3-405B: 126 layers, hidden 16384, FFN 53248,
# vocabulary 128256): refused before anything is allocated for them.
LIMITS = {"layers": 4096, "hidden": 1 << 20, "ffn": 1 << 24, "vocab": 1 << 24, "positions": 1 << 24, "params": 10**13}


def check_sense(s: ModelShape, cfg: dict[str, Any], source: str) -> None:
    """Sizes a model can have: positive where a model needs them, heads that fit the width, nothing absurd."""

    def fail(what: str, fix: str) -> CheckpointError:
        return CheckpointError(f"{source}: {what}. {fix}")

    heads_key = "n_head" if s.family == "gpt2" else "num_attention_heads"
    if not cfg.get(heads_key):
        raise fail(f'"{heads_key}" is {json.dumps(cfg.get(heads_key))}; a transformer needs at least one attention head', "Fix the config.")
    if s.n_layers < 1:
        raise fail("the model has no layers", "Fix the number of layers in the config.")
    for name, value in (
        ("hidden size", s.hidden),
        ("vocabulary size", s.vocab),
        ("head size", s.head_dim),
        ("position table", s.max_positions),
    ):
        if value < 1:
            raise fail(f"the {name} is {value}", "Every size must be at least 1.")
    checks = (
        ("layers", s.n_layers),
        ("hidden", s.hidden),
        ("vocab", s.vocab),
        ("positions", s.max_positions),
        ("ffn", max((l.ffn for l in s.layers), default=0)),
    )
    for name, value in checks:
        if value > LIMITS[name]:
            raise fail(f"{name} = {value} is beyond any model VTrans can hold (at most {LIMITS[name]})", "Fix the config.")
    params = count_params(s)["total"]
    if params > LIMITS["params"]:
        raise fail(f"these sizes make {params:.3g} parameters", "Fix the config.")


# ----------------------------------------------------------------------------------------------------------------
# Size accounting, by the family's formulas (models/<family>.py). `H`, `h`, `g`, `F` may be ints or tensors
# (expected counts under soft gates); `attn_on` and `ffn_on` are 0/1 (or keep probabilities) for the whole sublayers.


def layer_params(s: ModelShape, H: Count, h: Count, g: Count, F: Count, attn_on: Count = 1, ffn_on: Count = 1) -> Count:
    """Parameters of one transformer block (CoFi's encoder parameters)."""
    return family_of(s.family).layer_params(s, H, h, g, F, attn_on, ffn_on)


def embedding_params(s: ModelShape, H: Count) -> Count:
    return family_of(s.family).embedding_params(s, H)


def head_params(s: ModelShape, H: Count) -> Count:
    """Pooler, final norm and task head."""
    return family_of(s.family).head_params(s, H)


def count_params(s: ModelShape) -> dict[str, int]:
    family = family_of(s.family)
    encoder = sum(family.layer_params(s, s.hidden, l.heads, l.kv_heads, l.ffn, int(l.heads > 0), int(l.ffn > 0)) for l in s.layers)
    embedding = family.embedding_params(s, s.hidden)
    total = embedding + encoder + family.head_params(s, s.hidden)
    counts = {"total": total, "embedding": embedding, "nonEmbedding": total - embedding, "encoder": encoder}
    return {k: int(v) for k, v in counts.items()}  # ints in, ints out: int() only tells the type checker


def layer_flops(s: ModelShape, H: Count, h: Count, g: Count, F: Count, seq_len: float, attn_on: Count = 1, ffn_on: Count = 1) -> Count:
    return family_of(s.family).layer_flops(s, H, h, g, F, seq_len, attn_on, ffn_on)


def head_flops(s: ModelShape, H: Count, seq_len: float) -> Count:
    return family_of(s.family).head_flops(s, H, seq_len)


def flops_per_token(s: ModelShape, seq_len: float) -> float:
    """2 FLOPs per multiply-accumulate of the matrix products per token at sequence length n (see accounting.ts)."""
    family = family_of(s.family)
    body = sum(family.layer_flops(s, s.hidden, l.heads, l.kv_heads, l.ffn, seq_len, int(l.heads > 0), int(l.ffn > 0)) for l in s.layers)
    return cast(float, body + family.head_flops(s, s.hidden, seq_len))  # a number: the counts are ints
