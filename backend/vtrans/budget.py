"""Budgets: the size a keep-set has (parameters, CoFi encoder parameters, or FLOPs per token), the expected size
under soft gates (for the Lagrangian term during training), and the exact keep-set for a budget, chosen by
ranking units by their score log α − threshold.

A head's effective score is the smaller of its own and its attention sublayer's; likewise an FFN neuron and its
FFN sublayer: a sublayer gate below threshold removes all of its units.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TypedDict

import torch

from .prune import KeepSet
from .structure import (
    Count,
    LayerShape,
    ModelShape,
    count_params,
    embedding_params,
    flops_per_token,
    head_flops,
    head_params,
    layer_flops,
    layer_params,
)

KINDS = ("params", "encoder-params", "flops")


def size_of(shape: ModelShape, kind: str, seq_len: float) -> float:
    if kind == "params":
        return float(count_params(shape)["total"])
    if kind == "encoder-params":
        return float(count_params(shape)["encoder"])
    if kind == "flops":
        return float(flops_per_token(shape, seq_len))
    raise ValueError(f"unknown budget kind {kind!r} (known: {', '.join(KINDS)})")


def expected_fraction(shape: ModelShape, probs: dict[str, list[torch.Tensor]], kind: str, seq_len: float) -> torch.Tensor:
    """Expected size / full size under independent soft keep probabilities (differentiable).

    probs: hidden [p (H,)], heads [p (G_l,)] per layer, attn [p] per layer, ffn [p (F_l,)], ffn_layer [p].
    """
    H = probs["hidden"][0].sum()
    body: Count = 0.0
    for i, l in enumerate(shape.layers):
        g = probs["heads"][i].sum()
        h = g * l.group_size
        F = probs["ffn"][i].sum()
        if kind == "flops":
            body = body + layer_flops(shape, H, h, g, F, seq_len, probs["attn"][i], probs["ffn_layer"][i])
        else:
            body = body + layer_params(shape, H, h, g, F, probs["attn"][i], probs["ffn_layer"][i])
    if kind == "params":
        total = embedding_params(shape, H) + body + head_params(shape, H)
    elif kind == "flops":
        total = body + head_flops(shape, H, seq_len)
    else:
        total = body
    fraction = total / size_of(shape, kind, seq_len)
    assert isinstance(fraction, torch.Tensor)  # tensors of probabilities in, a tensor out
    return fraction


class EffectiveScores(TypedDict):
    hidden: torch.Tensor
    heads: list[torch.Tensor]  # per layer
    ffn: list[torch.Tensor]  # per layer


def effective_scores(shape: ModelShape, scores: dict[str, torch.Tensor]) -> EffectiveScores:
    """Per-unit ranking scores with sublayer gates applied (lists per layer for heads and ffn)."""
    heads = list(torch.split(scores["heads"].float().cpu(), [l.kv_heads for l in shape.layers]))
    ffn = list(torch.split(scores["ffn"].float().cpu(), [l.ffn for l in shape.layers]))
    attn = scores["attn"].float().cpu()
    ffn_layer = scores["ffn_layer"].float().cpu()
    return {
        "hidden": scores["hidden"].float().cpu(),
        "heads": [torch.minimum(h, attn[i]) for i, h in enumerate(heads)],
        "ffn": [torch.minimum(f, ffn_layer[i]) for i, f in enumerate(ffn)],
    }


def threshold_keep(shape: ModelShape, scores: dict[str, torch.Tensor]) -> KeepSet:
    """The keep-set the trained gates choose on their own: every unit with a positive effective score."""
    eff = effective_scores(shape, scores)
    hidden = torch.nonzero(eff["hidden"] > 0).flatten()
    if len(hidden) == 0:
        hidden = eff["hidden"].argmax().view(1)  # a model needs at least one hidden dimension
    return KeepSet(hidden, [torch.nonzero(h > 0).flatten() for h in eff["heads"]], [torch.nonzero(f > 0).flatten() for f in eff["ffn"]])


@dataclass
class Selection:
    keep: KeepSet
    shape: ModelShape
    size: float
    fraction: float  # achieved size / full size
    target: float


class _Group:
    """Units of one group (hidden dims, one layer's heads or one layer's neurons) in removal order."""

    def __init__(self, name: str, layer: int, scores: torch.Tensor, step: int):
        self.name, self.layer, self.step = name, layer, max(1, step)
        self.order = torch.sort(scores, stable=True).indices
        self.sorted_scores = scores[self.order]
        self.removed = 0
        self.minimum = 1 if name == "hidden" else 0

    @property
    def count(self) -> int:
        return len(self.order) - self.removed

    def next_chunk(self) -> int:
        """Units the next removal takes: down to the next multiple of `step`."""
        rem = self.count % self.step
        return rem if rem else min(self.step, self.count)

    def readd_chunk(self) -> int:
        """Units the next re-addition brings back: up to the next multiple of `step`."""
        if self.removed == 0:
            return 0
        rem = (self.step - self.count % self.step) % self.step
        return min(rem or self.step, self.removed)

    def readd_score(self) -> float:
        n = self.readd_chunk()
        return float(self.sorted_scores[self.removed - n : self.removed].mean())

    def next_score(self) -> float | None:
        n = self.next_chunk()
        if self.count - n < self.minimum or n == 0:
            return None
        return float(self.sorted_scores[self.removed : self.removed + n].mean())

    def kept(self) -> torch.Tensor:
        return self.order[self.removed :].sort().values


def select_keep(shape: ModelShape, scores: dict[str, torch.Tensor], kind: str, keep: float, seq_len: float, round_to: int = 1) -> Selection:
    """The keep-set of size ≤ keep × full size that removes the lowest-ranked units first.

    Units go one at a time (hidden dims and FFN neurons in chunks that keep their counts multiples of `round_to`;
    heads one key/value group at a time), then the best-ranked removed units that still fit come back, so the result
    lands within about one of the smallest units below the budget.
    """
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    eff = effective_scores(shape, scores)
    groups = [_Group("hidden", -1, eff["hidden"], round_to)]
    groups += [_Group("heads", i, h, 1) for i, h in enumerate(eff["heads"])]
    groups += [_Group("ffn", i, f, round_to) for i, f in enumerate(eff["ffn"])]
    full = size_of(shape, kind, seq_len)
    target = keep * full

    def current_shape() -> ModelShape:
        hidden = groups[0].count
        layers = []
        for i, l in enumerate(shape.layers):
            g = groups[1 + i].count
            layers.append(LayerShape(g * l.group_size, g, groups[1 + shape.n_layers + i].count))
        return shape.with_layers(hidden, layers)

    heap = [(s, i) for i, grp in enumerate(groups) if (s := grp.next_score()) is not None]
    heapq.heapify(heap)
    size = full
    while size > target and heap:
        _, i = heapq.heappop(heap)
        grp = groups[i]
        grp.removed += grp.next_chunk()
        nxt = grp.next_score()
        if nxt is not None:
            heapq.heappush(heap, (nxt, i))
        size = size_of(current_shape(), kind, seq_len)
    # The last removal may overshoot by up to one coarse unit (a hidden dimension): fill the gap back with the
    # best-ranked removed units that still fit, so the result lands within a small unit of the budget.
    while True:
        for grp in sorted((g for g in groups if g.readd_chunk()), key=lambda g: -g.readd_score()):
            n = grp.readd_chunk()
            grp.removed -= n
            trial = size_of(current_shape(), kind, seq_len)
            if trial <= target:
                size = trial
                break
            grp.removed += n
        else:
            break
    keep_set = KeepSet(
        groups[0].kept(), [g.kept() for g in groups[1 : 1 + shape.n_layers]], [g.kept() for g in groups[1 + shape.n_layers :]]
    )
    final = keep_set.pruned_shape(shape)
    return Selection(keep_set, final, size, size / full, keep)


def unit_summary(shape: ModelShape, keep: KeepSet) -> dict[str, dict[str, int]]:
    """Kept/total counts per unit type (the CLI's `units` field)."""
    p = keep.pruned_shape(shape)
    return {
        "hidden": {"kept": p.hidden, "total": shape.hidden},
        "heads": {"kept": sum(l.heads for l in p.layers), "total": sum(l.heads for l in shape.layers)},
        "ffn": {"kept": sum(l.ffn for l in p.layers), "total": sum(l.ffn for l in shape.layers)},
        "attentionLayers": {"kept": sum(1 for l in p.layers if l.heads), "total": shape.n_layers},
        "ffnLayers": {"kept": sum(1 for l in p.layers if l.ffn), "total": shape.n_layers},
    }
