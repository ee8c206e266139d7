"""Pieces every family shares.

The forward pass: the gates VTrans multiplies into it, norms restricted to kept hidden dimensions, the attention
kernel (PyTorch's scaled_dot_product_attention; the explicit product when attention maps are captured or a model
is exported). The typed skeleton of a model (`VTransModel` with its `Body` of `Block`s) and the two decoder heads.
The `Family` interface that each family module implements once (config reading, size accounting, weight
slicing for physical pruning), with the slicing helpers and the decoder families' shared head.

Gates (all optional, each either one value per unit or one per example and unit, shape (B, n)):
    hidden     (H,)    every hidden dimension: multiplied into the embedding output, every norm output and every
                       residual write, so a dimension at 0 is absent from the whole residual stream (CoFi); a
                       decoder's final norm output gets only the keep weights (`mask_hidden`)
    norm_dims  (H,)    weights of the hidden dimensions in norm statistics (1 kept, 0 pruned; soft in training):
                       with binary weights a norm over the masked stream equals the norm of the pruned model
    heads[l]   (G_l,)  one per key/value group (a head under multi-head attention): scales that group's context
    attn[l]    ()      the whole attention sublayer output of layer l (per example: (B,))
    ffn[l]     (F_l,)  every intermediate neuron of layer l
    ffn_layer[l] ()    the whole FFN sublayer output of layer l (per example: (B,))
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..errors import CheckpointError
from ..structure import ConfigReader, Count, LayerShape, ModelShape

if TYPE_CHECKING:
    from ..prune import KeepSet, UnitScales


@dataclass
class Gates:
    hidden: torch.Tensor | None = None
    norm_dims: torch.Tensor | None = None
    heads: Sequence[torch.Tensor | None] = ()
    attn: Sequence[torch.Tensor | None] = ()
    ffn: Sequence[torch.Tensor | None] = ()
    ffn_layer: Sequence[torch.Tensor | None] = ()

    @staticmethod
    def _at(xs: Sequence[torch.Tensor | None], i: int) -> torch.Tensor | None:
        return xs[i] if i < len(xs) else None

    def hidden_factor(self) -> torch.Tensor | None:
        """The hidden gates shaped to multiply (B, T, H) activations: (B, 1, H) per example, else (H,)."""
        g = self.hidden
        return None if g is None else g.unsqueeze(1) if g.dim() == 2 else g

    def scale_hidden(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, H)."""
        g = self.hidden_factor()
        return x if g is None else x * g.to(x.dtype)

    def mask_hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The keep weights without the scales: applied to a decoder's final norm output, so that an output
        projection tied to the (scaled) input embeddings can fold the inverse scales into that norm."""
        w = self.norm_dims
        return x if w is None else x * w.to(x.dtype)

    def scale_heads(self, layer: int, ctx: torch.Tensor, group_size: int) -> torch.Tensor:
        """ctx: (B, heads, T, head_dim); the gate holds one value per key/value group."""
        g = self._at(self.heads, layer)
        if g is None:
            return ctx
        if group_size > 1:
            g = g.repeat_interleave(group_size, dim=-1)
        g = g.view(-1, ctx.shape[1], 1, 1) if g.dim() == 2 else g.view(1, -1, 1, 1)
        return ctx * g.to(ctx.dtype)

    def write(self, kind: str, layer: int, out: torch.Tensor) -> torch.Tensor:
        """A sublayer's write into the residual stream (kind "attn" or "ffn", out (B, T, H)): its output times the
        sublayer gate and the hidden gates. The small gate tensors are multiplied together first, so the activations
        take one product (and its backward one pass) instead of two."""
        g = self._at(self.attn if kind == "attn" else self.ffn_layer, layer)
        if g is not None:
            g = g.view(-1, 1, 1) if g.dim() == 1 else g  # scalar, or one per example
        h = self.hidden_factor()
        factor = g if h is None else h if g is None else h * g
        return out if factor is None else out * factor.to(out.dtype)

    def scale_ffn(self, layer: int, act: torch.Tensor) -> torch.Tensor:
        """act: (B, T, F)."""
        g = self._at(self.ffn, layer)
        if g is None:
            return act
        return act * (g.unsqueeze(1) if g.dim() == 2 else g).to(act.dtype)


NO_GATES = Gates()


class WeightedLayerNorm(torch.autograd.Function):
    """LayerNorm with statistics weighted per hidden dimension, in closed form both ways:
    y = n·weight + bias, n = (x − m)·r, m = Σ ŵ x, r = (Σ ŵ (x − m)² + eps)^(−1/2), ŵ summing to 1.

    Written out because autograd's version of the same formula keeps and revisits five (B, T, H) tensors per norm,
    the largest part of a mask step's extra cost on a small model; this one keeps x and n. Backward, with
    dn = dy·weight, S₁ = Σ dn and S₂ = Σ dn·n over the hidden dimensions:
    dx = r·(dn − ŵ·(S₁ + n·S₂)) and dŵ = −Σ_tokens (r·S₁·x + ½·S₂·n²). `weight` and `bias` are (H,) or per
    example (B, 1, H) (the norm's own, times the hidden gates)."""

    @staticmethod
    def forward(ctx, x, w_hat, weight, bias, eps: float):
        c = x - torch.matmul(x, w_hat).unsqueeze(-1)
        r = torch.rsqrt(torch.matmul(c * c, w_hat).unsqueeze(-1) + eps)
        n = c.mul_(r)
        ctx.save_for_backward(x, n, r, w_hat, weight)
        ctx.bias_shape = bias.shape
        return torch.addcmul(bias, n, weight)

    @staticmethod
    def backward(ctx, dy):
        x, n, r, w_hat, weight = ctx.saved_tensors
        need_x, need_w, need_weight, need_bias, _ = ctx.needs_input_grad
        dn = dy * weight
        s1 = dn.sum(-1, keepdim=True)
        s2 = (dn * n).sum(-1, keepdim=True)
        dx = dw = dweight = dbias = None
        if need_w:
            flat = x.shape[-1]
            dw = -(torch.matmul((r * s1).reshape(-1), x.reshape(-1, flat)) + 0.5 * torch.matmul(s2.reshape(-1), (n * n).reshape(-1, flat)))
        if need_weight:
            dweight = (dy * n).sum_to_size(weight.shape)
        if need_bias:
            dbias = dy.sum_to_size(ctx.bias_shape)
        if need_x:
            dx = dn.sub_(torch.addcmul(s1, n, s2).mul_(w_hat)).mul_(r)
        return dx, dw, dweight, dbias, None


def layer_norm(x: torch.Tensor, norm: nn.LayerNorm, gates: Gates, scaled: bool = True) -> torch.Tensor:
    """LayerNorm whose statistics cover only the kept hidden dimensions (weighted by `gates.norm_dims`), its output
    times the hidden gates (`scaled`; a decoder's final norm takes `mask_hidden` instead)."""
    w = gates.norm_dims
    g = gates.hidden_factor() if scaled else None
    if w is None:
        return gates.scale_hidden(norm(x)) if scaled else norm(x)
    # In float32 whatever the input's dtype, as nn.LayerNorm runs under autocast (the teacher's norm): statistics in
    # bf16 lose the mean. Kept out of autocast, which would run the weighted moments (matrix-vector products) in
    # bf16. The hidden gates go into the norm's weight and bias, (B, 1, H) at most, rather than over the output.
    autocast = torch.is_autocast_enabled(x.device.type)
    with torch.autocast(x.device.type, enabled=False):
        weight, bias = norm.weight.float(), norm.bias.float()
        if g is not None:
            weight, bias = weight * g.float(), bias * g.float()
        wf = w.float()
        out = WeightedLayerNorm.apply(x.float(), wf / wf.sum(), weight, bias, norm.eps)
    return out if autocast else out.to(x.dtype)


class RMSNorm(nn.Module):
    """LLaMA's RMSNorm, computed in float32 as Hugging Face does."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor, dim_weights: torch.Tensor | None = None, scale: torch.Tensor | None = None) -> torch.Tensor:
        """`dim_weights`: the hidden dimensions' weights in the statistics; `scale`: gates multiplied into the
        output, folded into the weight ((B, 1, H) at most) instead of another pass over the activations."""
        dtype = x.dtype
        x = x.float()
        if dim_weights is None:
            var = x.pow(2).mean(-1, keepdim=True)
        else:
            var = (x.pow(2) * dim_weights.float()).sum(-1, keepdim=True) / dim_weights.float().sum()
        weight = self.weight if scale is None else self.weight * scale.to(self.weight.dtype)
        return weight * (x * torch.rsqrt(var + self.eps)).to(dtype)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's "gelu_new", written out so ONNX export and Hugging Face agree exactly."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_tanh,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
}


def activation(name: str, source: str):
    if name not in ACTIVATIONS:
        raise CheckpointError(f"{source}: activation {name!r} is not supported (supported: {', '.join(sorted(ACTIVATIONS))}).")
    return ACTIVATIONS[name]


def padding_bias(
    attention_mask: torch.Tensor | None, dtype: torch.dtype, causal: bool, q_len: int, device: torch.device | None = None
) -> torch.Tensor | None:
    """Additive attention bias (B, 1, T, T) from a (B, T) 0/1 mask plus, for decoders, the causal mask.
    Built from comparisons of aranges so that exported graphs keep the sequence axis dynamic."""
    neg = torch.finfo(dtype).min
    bias = None
    if attention_mask is not None:
        bias = (1.0 - attention_mask[:, None, None, :].to(dtype)) * neg
    if causal:
        pos = torch.arange(q_len, device=device)
        future = (pos[None, :] > pos[:, None]).to(dtype)[None, None] * neg
        bias = future if bias is None else (bias + future).clamp(min=neg)
    return bias


class AttentionCapture:
    """Collects per-layer attention probabilities (B, heads, T, T) when passed to a forward."""

    def __init__(self):
        self.maps: list[torch.Tensor | None] = []

    def add(self, layer: int, probs: torch.Tensor | None) -> None:
        while len(self.maps) <= layer:
            self.maps.append(None)
        self.maps[layer] = probs


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None,
    scale: float,
    capture: AttentionCapture | None,
    layer: int,
    use_sdpa: bool,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Scaled dot-product attention over (B, heads, T, d) tensors; k/v already expanded to the query heads.
    `dropout_p` drops attention probabilities (training only: callers pass 0 in eval mode)."""
    if use_sdpa and capture is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p, scale=scale)
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    if bias is not None:
        scores = scores + bias
    probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    if capture is not None:
        capture.add(layer, probs.detach())
    if dropout_p > 0:
        probs = F.dropout(probs, dropout_p)
    return torch.matmul(probs, v)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, kv, T, d) -> (B, kv * n_rep, T, d); query head j reads key/value head j // n_rep."""
    if n_rep == 1:
        return x
    b, kv, t, d = x.shape
    return x[:, :, None].expand(b, kv, n_rep, t, d).reshape(b, kv * n_rep, t, d)


def last_token_index(input_ids: torch.Tensor, pad_token_id: int | None) -> torch.Tensor:
    """Index of the rightmost non-padding token per row, as Hugging Face's decoder classifiers pick it."""
    if pad_token_id is None:
        return torch.full((input_ids.shape[0],), input_ids.shape[1] - 1, dtype=torch.long, device=input_ids.device)
    non_pad = (input_ids != pad_token_id).to(torch.int64)
    positions = torch.arange(input_ids.shape[1], device=input_ids.device, dtype=torch.int64)
    return (positions * non_pad).argmax(-1)


@dataclass
class ModelOutput:
    logits: torch.Tensor
    hidden_states: list[torch.Tensor] = field(default_factory=list)  # embedding output + each layer's output


# ----------------------------------------------------------------------------------------------------------------
# The typed skeleton every family's modules fill in.


@dataclass(frozen=True)
class UnitWeight:
    """A weight that belongs to prunable units: the axis that indexes them, and channels per unit along it."""

    kind: str  # "heads" (one unit per key/value group) | "ffn" (one per neuron)
    weight: torch.Tensor
    axis: int
    width: int


class Block(nn.Module):
    """One transformer block."""

    def unit_weights(self) -> list[UnitWeight]:
        """The block's weights that belong to its heads and FFN neurons (what the magnitude baseline measures)."""
        raise NotImplementedError


class Body(nn.Module):
    """A family's embeddings and blocks, producing the hidden states (Hugging Face's BertModel, GPT2Model, ...)."""

    def __init__(self, s: ModelShape):
        super().__init__()
        self.use_sdpa = True  # False: the explicit attention product (exporters, attention capture)
        # Activation checkpointing: each block's activations are recomputed in the backward instead of kept.
        self.checkpointing = False

    def block(self, block: nn.Module, *args) -> torch.Tensor:
        """One block of the layer loop, checkpointed when on and a backward will follow. Non-reentrant: the gates'
        per-example tensors and the attention capture pass through as they are, and the RNG state (dropout) is
        restored for the recomputation, so gradients equal those without checkpointing."""
        if self.checkpointing and torch.is_grad_enabled():
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def init_buffers(self) -> None:
        """Recomputes buffers that are derived from the config (none by default): after the weights were placed
        into a skeleton built on the meta device."""

    @property
    def input_embeddings(self) -> nn.Embedding:
        raise NotImplementedError

    def blocks(self) -> list[Block]:
        raise NotImplementedError


class VTransModel(nn.Module):
    """Every model class: the shape it was built from, its body under Hugging Face's attribute name
    (`body_prefix`, so checkpoints load by name), and a task head.

    `forward(input_ids, attention_mask, token_type_ids)` gives the logits; `run` also takes VTrans gates and an
    attention capture, and returns the hidden states too."""

    body_prefix: ClassVar[str] = ""
    body_class: ClassVar[type[Body]]

    def __init__(self, s: ModelShape):
        super().__init__()
        self.shape = s
        self.add_module(self.body_prefix.rstrip("."), self.body_class(s))

    @property
    def body(self) -> Body:
        return getattr(self, self.body_prefix.rstrip("."))

    def run(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        gates: Gates = NO_GATES,
        capture: AttentionCapture | None = None,
    ) -> ModelOutput:
        raise NotImplementedError

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.run(input_ids, attention_mask, token_type_ids).logits


class CausalLM(VTransModel):
    """Logits over the vocabulary; the output projection is the input embedding table unless untied."""

    def __init__(self, s: ModelShape):
        super().__init__(s)
        self.lm_head = None if s.tied_embeddings else nn.Linear(s.hidden, s.vocab, bias=False)

    def output_embeddings(self) -> torch.Tensor:
        return self.body.input_embeddings.weight if self.lm_head is None else self.lm_head.weight

    def run(self, input_ids, attention_mask=None, token_type_ids=None, gates: Gates = NO_GATES, capture=None) -> ModelOutput:
        states = self.body(input_ids, attention_mask, gates, capture)
        return ModelOutput(torch.matmul(states[-1], self.output_embeddings().t()), states)


class LastTokenClassifier(VTransModel):
    """Sequence classification from the rightmost non-padding token, as Hugging Face's decoder classifiers do."""

    def __init__(self, s: ModelShape):
        super().__init__(s)
        self.score = nn.Linear(s.hidden, max(s.num_labels, 1), bias=False)
        self.pad_token_id = s.config.get("pad_token_id")

    def run(self, input_ids, attention_mask=None, token_type_ids=None, gates: Gates = NO_GATES, capture=None) -> ModelOutput:
        states = self.body(input_ids, attention_mask, gates, capture)
        last = last_token_index(input_ids, self.pad_token_id)
        pooled = states[-1][torch.arange(input_ids.shape[0], device=input_ids.device), last]
        return ModelOutput(self.score(pooled), states)


# ----------------------------------------------------------------------------------------------------------------
# Physical pruning: the pieces every family's weight slicing uses.


def query_channels(groups: torch.Tensor, group_size: int, head_dim: int) -> torch.Tensor:
    """Channel indices of the query heads of the kept key/value groups (query head j reads group j // group_size)."""
    heads = (groups[:, None] * group_size + torch.arange(group_size)[None, :]).reshape(-1)
    return (heads[:, None] * head_dim + torch.arange(head_dim)[None, :]).reshape(-1)


def group_channels(groups: torch.Tensor, head_dim: int) -> torch.Tensor:
    return (groups[:, None] * head_dim + torch.arange(head_dim)[None, :]).reshape(-1)


class Slicer:
    """Builds the pruned state dict: `rows`/`cols` select kept indices and multiply in scales."""

    def __init__(self, state: dict[str, torch.Tensor]):
        self.src = state
        self.out: dict[str, torch.Tensor] = {}

    def put(
        self,
        name: str,
        rows: torch.Tensor | None = None,
        cols: torch.Tensor | None = None,
        row_scale: torch.Tensor | None = None,
        col_scale: torch.Tensor | None = None,
    ) -> None:
        t = self.src[name]
        if rows is not None:
            t = t.index_select(0, rows)
        if cols is not None:
            t = t.index_select(1, cols)
        if row_scale is not None:
            t = t * (row_scale[:, None] if t.dim() == 2 else row_scale)
        if col_scale is not None:
            t = t * col_scale[None, :]
        self.out[name] = t

    def has(self, name: str) -> bool:
        return name in self.src


# ----------------------------------------------------------------------------------------------------------------
# A family: everything generic code needs to know of it, in one object per family (models.FAMILIES).


class Family(ABC):
    """A model family's facts beyond its forward pass: how its config.json reads into a `ModelShape`, its size
    accounting, how physical pruning slices its weights, and its model classes.

    The size formulas take the hidden width `H`, query heads `h`, key/value heads `g` and FFN neurons `F` as ints
    (an exact keep-set) or as tensors (expected counts under soft gates, which `budget.expected_fraction`
    differentiates), and `attn_on`/`ffn_on` as 0/1 or the keep probabilities of whole sublayers: plain arithmetic
    only. They mirror src/core/accounting.ts.
    """

    name: ClassVar[str]
    body_prefix: ClassVar[str]
    classes: ClassVar[dict[str, type[VTransModel]]]  # by task
    # Name prefixes of the classification head's parameters: what a pretrained body lacks (`vtrans add-head`).
    new_head_weights: ClassVar[tuple[str, ...]]
    # Suffixes of tensors the family's checkpoints carry that are no parameters here (buffers, a tied LM head).
    unused_weights: ClassVar[tuple[str, ...]] = ()
    # A decoder: a language model unless the config names a classification head, which reads the last token.
    causal: ClassVar[bool] = False
    # Grouped-query attention: the config may give key/value heads apart from query heads.
    grouped_query: ClassVar[bool] = False
    ffn_matrices: ClassVar[int] = 2  # weight matrices an FFN neuron has a row or column in
    hidden_key: ClassVar[str] = "hidden_size"  # the config field of the hidden width

    # -- config.json ------------------------------------------------------------------------------------------

    @abstractmethod
    def shape_from_config(self, c: ConfigReader, task: str | None) -> ModelShape: ...

    def default_task(self, labels: int) -> str:
        return "classification" if labels > 0 or not self.causal else "lm"

    def pruned_config(self, s: ModelShape, p: ModelShape) -> dict[str, Any]:
        """The source config with the pruned sizes `p` (docs/model-format.md)."""
        cfg = dict(s.config)
        cfg[self.hidden_key] = p.hidden
        cfg["head_dim"] = s.head_dim
        cfg["layer_num_attention_heads"] = [l.heads for l in p.layers]
        if self.grouped_query:
            cfg["layer_num_key_value_heads"] = [l.kv_heads for l in p.layers]
        cfg["layer_intermediate_size"] = [l.ffn for l in p.layers]
        cfg.update(self.pruned_config_extras(s))
        return cfg

    def pruned_config_extras(self, s: ModelShape) -> dict[str, Any]:
        """Fields a pruned model needs because the pruned sizes no longer imply them."""
        return {}

    def model_class(self, task: str) -> type[VTransModel]:
        cls = self.classes.get(task)
        if cls is None:
            raise CheckpointError(f"config.json: {self.name} models support tasks {', '.join(self.classes)}, not {task!r}.")
        return cls

    # -- size accounting --------------------------------------------------------------------------------------

    @abstractmethod
    def layer_params(self, s: ModelShape, H: Count, h: Count, g: Count, F: Count, attn_on: Count, ffn_on: Count) -> Count:
        """Parameters of one transformer block (CoFi's encoder parameters)."""

    @abstractmethod
    def embedding_params(self, s: ModelShape, H: Count) -> Count: ...

    @abstractmethod
    def head_params(self, s: ModelShape, H: Count) -> Count:
        """Pooler, final norm and task head."""

    def layer_flops(self, s: ModelShape, H: Count, h: Count, g: Count, F: Count, seq_len: float, attn_on: Count, ffn_on: Count) -> Count:
        """Q, K, V and output projections, scores and weighted sum over `seq_len` keys, the FFN's matrices."""
        d = s.head_dim
        attn = 2 * H * (h + 2 * g) * d + 2 * h * d * H + 4 * seq_len * h * d
        return attn_on * attn + ffn_on * 2 * H * F * self.ffn_matrices

    def head_flops(self, s: ModelShape, H: Count, seq_len: float) -> Count:
        """Per token: the LM head at every position; a classifier once per sequence."""
        if s.task == "lm":
            return 2 * H * s.vocab
        if s.num_labels:
            return self.classifier_flops(s, H) / seq_len
        return 0

    def classifier_flops(self, s: ModelShape, H: Count) -> Count:
        return 2 * H * s.num_labels

    def group_params(self, s: ModelShape, layer: LayerShape) -> int:
        """Weights of one key/value group: the q and o rows of its query heads, its k and v (biases aside)."""
        return s.hidden * s.head_dim * (2 * layer.group_size + 2)

    def neuron_params(self, s: ModelShape) -> int:
        """Weights of one FFN neuron (biases aside)."""
        return s.hidden * self.ffn_matrices

    # -- physical pruning -------------------------------------------------------------------------------------

    @abstractmethod
    def slice_weights(self, s: ModelShape, keep: KeepSet, sc: UnitScales, st: Slicer) -> None:
        """Puts the kept units' weights, with the scales folded in (prune.py's docstring), into `st`."""

    # -- the two output shapes (docs/model-format.md) ------------------------------------------------------------
    # uniform: every layer the same size, written with the family's standard config fields only, so that stock
    # `transformers` loads it; heterogeneous: VTrans's per-layer fields plus an `auto_map` to the family's modeling
    # file (vtrans/hf_modeling/), loaded with `trust_remote_code=True`.

    # The standard config derives the head size from hidden ÷ heads (BERT, GPT-2): a uniform model's hidden width
    # is then its heads × head_dim. LLaMA names head_dim explicitly.
    head_dim_from_hidden: ClassVar[bool] = True
    heads_key: ClassVar[str] = "num_attention_heads"
    ffn_key: ClassVar[str] = "intermediate_size"
    # The modeling files (vtrans/hf_modeling/, the first defines the classes) and the Auto classes they serve, by task.
    remote_files: ClassVar[tuple[str, ...]]
    remote_config: ClassVar[str]
    remote_classes: ClassVar[dict[str, dict[str, str]]]  # task -> Auto class name -> class name
    # VTrans's own config fields: what the uniform shape leaves out.
    vtrans_fields: ClassVar[tuple[str, ...]] = (
        "head_dim",
        "layer_num_attention_heads",
        "layer_num_key_value_heads",
        "layer_intermediate_size",
        "head_hidden_size",
        "auto_map",
    )

    def uniform_shape(self, s: ModelShape, hidden: int, kv_heads: int, ffn: int) -> ModelShape:
        """The source with every layer at `kv_heads` key/value groups and `ffn` neurons, at `hidden` width."""
        return s.with_layers(hidden, [LayerShape(kv_heads * l.group_size, kv_heads, ffn) for l in s.layers])

    def uniform_hidden_step(self, heads: int, round_to: int) -> int:
        """A uniform model's hidden width is a multiple of this (at `heads` query heads per layer); where the head
        size comes from hidden ÷ heads the width is exactly heads × head_dim instead."""
        return round_to

    def uniform_problem(self, p: ModelShape) -> str | None:
        """Why the pruned shape `p` has no standard config of this family (None: it has one)."""
        first = p.layers[0] if p.layers else None
        if first is None or any(l != first for l in p.layers):
            return "its layers differ in size"
        if first.heads == 0 or first.ffn == 0:
            return "its layers have no attention or no FFN sublayer"
        if self.head_dim_from_hidden and p.hidden != first.heads * p.head_dim:
            return f"its hidden width {p.hidden} is not its {first.heads} heads × head size {p.head_dim}"
        return None

    def standard_config(self, p: ModelShape) -> dict[str, Any]:
        """The uniform shape's config.json: `p.config` (the pruned config) with only the family's standard fields."""
        problem = self.uniform_problem(p)
        if problem is not None:
            raise ValueError(f"a {self.name} model has the uniform shape only when every layer is the same size; this one: {problem}")
        keep_head_dim = not self.head_dim_from_hidden
        cfg = {k: v for k, v in p.config.items() if k not in self.vtrans_fields or (k == "head_dim" and keep_head_dim)}
        first = p.layers[0]
        cfg[self.hidden_key] = p.hidden
        cfg[self.heads_key] = first.heads
        cfg[self.ffn_key] = first.ffn
        if self.grouped_query:
            cfg["num_key_value_heads"] = first.kv_heads
        if keep_head_dim:
            cfg["head_dim"] = p.head_dim
        return cfg

    def remote_code_config(self, p: ModelShape) -> dict[str, Any]:
        """The heterogeneous shape's config.json: VTrans's per-layer fields (`p.config`) and an `auto_map` to the
        family's modeling file, with `architectures` naming its class."""
        module = self.remote_files[0].removesuffix(".py")
        classes = self.remote_classes[p.task]
        cfg = dict(p.config)
        cfg["auto_map"] = {"AutoConfig": f"{module}.{self.remote_config}", **{auto: f"{module}.{c}" for auto, c in classes.items()}}
        cfg["architectures"] = [classes[self.task_auto_class(p.task)]]
        return cfg

    @staticmethod
    def task_auto_class(task: str) -> str:
        """The transformers Auto class of a task."""
        return "AutoModelForSequenceClassification" if task == "classification" else "AutoModelForCausalLM"

    def uniform_head(self, model: VTransModel, hidden: int) -> torch.Tensor | None:
        """Kept outputs of a task head whose width the standard config ties to the hidden width (None: no such head)."""
        return None


class DecoderFamily(Family):
    """GPT-2 and LLaMA: a final norm, then an LM head (tied to the input embeddings unless untied) or `score`."""

    causal = True
    final_norm: ClassVar[str]  # its parameter name prefix
    norm_vectors: ClassVar[int]  # parameter vectors of one norm: LayerNorm's weight and bias, RMSNorm's weight

    def head_params(self, s: ModelShape, H: Count) -> Count:
        final_norm = self.norm_vectors * H
        if s.num_labels:
            return final_norm + H * s.num_labels
        return final_norm + (0 if s.tied_embeddings else s.vocab * H)

    def slice_head(self, s: ModelShape, hid: torch.Tensor, sh: torch.Tensor, st: Slicer) -> None:
        """The final norm's output is only masked (not scaled). An LM head tied to the input embeddings, which now
        carry the hidden scales, reads the norm output divided by those scales: folded into the norm's weights.

        A kept dimension whose gate closed (scale 0, as hard-concrete gates give when the budget is filled back
        with closed units) has a zero column in the tied head, so nothing can reach the logits through it: its
        norm weight becomes 0 rather than 1/0."""
        tied = s.task == "lm" and s.tied_embeddings
        inverse = torch.where(sh.abs() > 1e-12, sh.reciprocal(), torch.zeros_like(sh))
        for n in ("weight", "bias"):
            if st.has(f"{self.final_norm}.{n}"):
                st.put(f"{self.final_norm}.{n}", rows=hid, row_scale=inverse if tied else None)
        if s.task == "lm" and not tied:
            st.put("lm_head.weight", cols=hid)
        elif s.task != "lm":
            st.put("score.weight", cols=hid)
