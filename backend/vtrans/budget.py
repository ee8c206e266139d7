"""Budgets: the size a keep-set has (parameters, CoFi encoder parameters, or FLOPs per token), the expected size
under soft gates (for the Lagrangian term during training), and the exact keep-set for a budget, chosen by
ranking units by their score log α − threshold.

A head's effective score is the smaller of its own and its attention sublayer's; likewise an FFN neuron and its
FFN sublayer: a sublayer gate below threshold removes all of its units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import torch

from .prune import KeepSet
from .settings import BUDGETS
from .structure import (
    Count,
    ModelShape,
    count_params,
    embedding_params,
    flops_per_token,
    head_flops,
    head_params,
    layer_flops,
    layer_params,
)

KINDS = BUDGETS  # the budget kinds (settings.BudgetKind)


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


def _split_values(shape: ModelShape, values: dict[str, torch.Tensor]) -> EffectiveScores:
    """Per-unit values split by layer (the gates define them, sublayers included)."""
    return {
        "hidden": values["hidden"].float().cpu(),
        "heads": list(torch.split(values["heads"].float().cpu(), [l.kv_heads for l in shape.layers])),
        "ffn": list(torch.split(values["ffn"].float().cpu(), [l.ffn for l in shape.layers])),
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


# ----------------------------------------------------------------------------------------------------------------
# The exact cut. Every family's size formulas are bilinear in the hidden width H and the unit counts, so a keep-set's
# size is base(H) + Σ over kept heads and neurons of (p_u·H + q_u) + Σ over the sublayers that keep any unit of
# (p_s·H + q_s). `CostModel` reads those coefficients off the family's formulas; with them the size of every
# prefix of a ranked unit list is a prefix sum, and a cut is a binary search instead of one size computation per
# removed unit (a LLaMA-2-7B shape has 350K units).


def _affine(f, what: str) -> tuple[float, float]:
    """(slope, intercept) of a size formula in H, checked to be affine."""
    q, p = float(f(0)), float(f(1)) - float(f(0))
    if abs(float(f(64)) - (q + 64 * p)) > 1e-6 * max(1.0, abs(q + 64 * p)):
        raise ValueError(f"the size formula of {what} is not affine in the hidden width")
    return p, q


class CostModel:
    """Coefficients of a shape's size (of one budget kind) in H: per head group and FFN neuron of each layer, per
    sublayer that is present, and the rest (embeddings, norms, task head)."""

    def __init__(self, shape: ModelShape, kind: str, seq_len: float):
        if kind not in KINDS:
            raise ValueError(f"unknown budget kind {kind!r} (known: {', '.join(KINDS)})")
        self.shape, self.kind = shape, kind
        s = shape

        def layer(i: int, H, h, g, F, a, f):
            l = s.layers[i]
            if kind == "flops":
                return layer_flops(s, H, h * l.group_size, g, F, seq_len, a, f)
            return layer_params(s, H, h * l.group_size, g, F, a, f)

        self.head = [_affine(lambda H, i=i: layer(i, H, 1, 1, 0, 1, 0) - layer(i, H, 0, 0, 0, 1, 0), "a head") for i in range(s.n_layers)]
        self.neuron = [
            _affine(lambda H, i=i: layer(i, H, 0, 0, 1, 0, 1) - layer(i, H, 0, 0, 0, 0, 1), "a neuron") for i in range(s.n_layers)
        ]
        self.attn = [
            _affine(lambda H, i=i: layer(i, H, 0, 0, 0, 1, 0) - layer(i, H, 0, 0, 0, 0, 0), "a sublayer") for i in range(s.n_layers)
        ]
        self.ffn = [
            _affine(lambda H, i=i: layer(i, H, 0, 0, 0, 0, 1) - layer(i, H, 0, 0, 0, 0, 0), "a sublayer") for i in range(s.n_layers)
        ]

        def rest(H):
            body = sum(layer(i, H, 0, 0, 0, 0, 0) for i in range(s.n_layers))
            if kind == "params":
                return body + embedding_params(s, H) + head_params(s, H)
            if kind == "flops":
                return body + head_flops(s, H, seq_len)
            return body

        self.base = _affine(rest, "the embeddings and head")
        self.full = size_of(shape, kind, seq_len)

    def hidden_cost(self, counts_heads: list[int], counts_ffn: list[int]) -> float:
        """What one hidden dimension costs with the given units kept (for the density of hidden dimensions)."""
        c = self.base[0]
        for i in range(self.shape.n_layers):
            g, f = counts_heads[i], counts_ffn[i]
            c += self.head[i][0] * g + self.neuron[i][0] * f + (self.attn[i][0] if g else 0.0) + (self.ffn[i][0] if f else 0.0)
        return c


@dataclass
class _Items:
    """Heads (one key/value group each) and chunks of FFN neurons of every layer, in one flat list. A group is one
    layer's heads or one layer's neurons; its items are numbered best first (`start`), and a keep-set keeps a prefix
    of every group."""

    group: np.ndarray  # layer * 2 + (0 heads, 1 ffn)
    start: np.ndarray  # position of the item's first unit in its group's order
    count: np.ndarray  # units in the item
    p: np.ndarray  # size per unit of H
    q: np.ndarray
    value: np.ndarray  # importance of the item (sum over its units)
    score: np.ndarray  # mean effective score of its units
    orders: list[np.ndarray]  # per group: unit indices best first


def _chunks(n: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, counts) of the chunks of a group of n units sorted best first, such that keeping a prefix of chunks
    keeps a multiple of `step` units or all n (the remainder is the last, worst chunk)."""
    starts = np.arange(0, n, step, dtype=np.int64)
    return starts, np.minimum(step, n - starts)


def _items(shape: ModelShape, cost: CostModel, eff: EffectiveScores, values: EffectiveScores | None, round_to: int) -> _Items:
    """All layers' heads and neuron chunks, each group sorted best first (by value, equal values by index), with a
    few whole-array operations per unit type rather than per layer."""
    L = shape.n_layers
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("group", "start", "count", "p", "q", "value", "score")}
    orders: list[np.ndarray | None] = [None] * (2 * L)
    for kind_id, g in ((0, "heads"), (1, "ffn")):
        sizes = np.array([len(t) for t in eff[g]], dtype=np.int64)  # type: ignore[literal-required]
        if sizes.sum() == 0:
            for i in range(L):
                orders[2 * i + kind_id] = np.zeros(0, dtype=np.int64)
            continue
        sc = torch.cat(list(eff[g])).double().numpy()  # type: ignore[literal-required]
        val = torch.cat(list(values[g])).double().numpy() if values is not None else sc  # type: ignore[literal-required]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        # By layer, then best first (value; equal values by index: a stable sort).
        if (sizes == sizes[0]).all():
            order = (np.argsort(-val.reshape(L, -1), axis=1, kind="stable") + offsets[:-1, None]).reshape(-1)
        else:
            order = np.concatenate([np.argsort(-val[offsets[i] : offsets[i + 1]], kind="stable") + offsets[i] for i in range(L)])
        for i in range(L):
            orders[2 * i + kind_id] = order[offsets[i] : offsets[i + 1]] - offsets[i]
        step = 1 if g == "heads" else max(1, round_to)
        starts = np.concatenate([np.arange(0, n, step, dtype=np.int64) for n in sizes])  # within each layer
        item_layer = np.concatenate([np.full(len(range(0, n, step)), i, dtype=np.int64) for i, n in enumerate(sizes)])
        counts = np.minimum(step, sizes[item_layer] - starts)
        flat = offsets[item_layer] + starts  # positions in the layer-sorted arrays
        unit = cost.head if g == "heads" else cost.neuron
        pu = np.array([unit[i][0] for i in range(L)])[item_layer]
        qu = np.array([unit[i][1] for i in range(L)])[item_layer]
        parts["group"].append(2 * item_layer + kind_id)
        parts["start"].append(starts)
        parts["count"].append(counts)
        parts["p"].append(pu * counts)
        parts["q"].append(qu * counts)
        parts["value"].append(np.add.reduceat(val[order], flat) if step > 1 else val[order])
        parts["score"].append((np.add.reduceat(sc[order], flat) if step > 1 else sc[order]) / counts)
    arr = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}
    for k in ("group", "start", "count"):
        arr[k] = arr[k].astype(np.int64)
    return _Items(orders=[o if o is not None else np.zeros(0, dtype=np.int64) for o in orders], **arr)


class Ranking:
    """The cut of one set of scores at any budget of one kind: units ranked once, each budget a binary search.

    rule "score" (no values): every unit, hidden dimensions included, ranked by its effective score; the
    best-ranked prefix that fits the budget is kept, then the best remaining units that still fit.
    rule "density" (values v ≥ 0 per unit; VIB: its information ½·softplus(score)): heads and neurons ranked by
    density v / cost, hidden dimensions by v; for every allowed hidden width H, the densest prefix of heads and
    neurons that fits with the H best hidden dimensions; the H whose keep-set keeps the most value wins."""

    def __init__(
        self,
        shape: ModelShape,
        scores: dict[str, torch.Tensor],
        kind: str,
        seq_len: float,
        round_to: int = 1,
        values: dict[str, torch.Tensor] | None = None,
    ):
        self.shape, self.kind, self.seq_len, self.round_to = shape, kind, seq_len, max(1, round_to)
        self.cost = CostModel(shape, kind, seq_len)
        eff = effective_scores(shape, scores)
        self.rule = "score" if values is None else "density"
        ev = _split_values(shape, values) if values is not None else None
        self.items = _items(shape, self.cost, eff, ev, self.round_to)
        L = shape.n_layers
        self.sub_p = np.array([(self.cost.attn if j % 2 == 0 else self.cost.ffn)[j // 2][0] for j in range(2 * L)])
        self.sub_q = np.array([(self.cost.attn if j % 2 == 0 else self.cost.ffn)[j // 2][1] for j in range(2 * L)])
        hs = eff["hidden"].double().numpy()
        hv = ev["hidden"].double().numpy() if ev is not None else hs
        self.hidden_order = np.lexsort((np.arange(len(hs)), -hs, -hv))
        self.hidden_value = hv[self.hidden_order]
        self.hidden_score = hs[self.hidden_order]
        H = shape.hidden
        self.h_candidates = np.unique(np.concatenate([np.arange(self.round_to, H + 1, self.round_to), [H]])).astype(np.int64)
        if self.rule == "score":
            self._prepare_merged()
        self._density: tuple[np.ndarray, dict[str, np.ndarray]] | None = None
        if self.rule == "density":
            self._density_order()

    # -- sizes of prefixes --------------------------------------------------------------------------------------

    def _prefix(self, order: np.ndarray) -> dict[str, np.ndarray]:
        """Prefix sums over the items in `order`: p, q and value of the units, and p, q of the sublayers that each
        prefix has opened (a sublayer is present once any of its units is kept)."""
        it = self.items
        grp = it.group[order]
        first = np.full(2 * self.shape.n_layers, len(order), dtype=np.int64)
        np.minimum.at(first, grp, np.arange(len(order)))
        o = np.argsort(first, kind="stable")
        return {
            "P": np.concatenate([[0.0], np.cumsum(it.p[order])]),
            "Q": np.concatenate([[0.0], np.cumsum(it.q[order])]),
            "V": np.concatenate([[0.0], np.cumsum(it.value[order])]),
            "first": first[o],
            "FP": np.concatenate([[0.0], np.cumsum(self.sub_p[o])]),
            "FQ": np.concatenate([[0.0], np.cumsum(self.sub_q[o])]),
        }

    def _size(self, pre: dict[str, np.ndarray], H: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Size with H hidden dimensions and the first k items of a prefix table (arrays, elementwise)."""
        opened = np.searchsorted(pre["first"], k, side="left")  # sublayers whose first item is among the first k
        bp, bq = self.cost.base
        return bp * H + bq + H * (pre["P"][k] + pre["FP"][opened]) + pre["Q"][k] + pre["FQ"][opened]

    def _largest_fit(self, pre: dict[str, np.ndarray], H: np.ndarray, target: float, n: int) -> np.ndarray:
        """For each H: the largest k in [0, n] whose size is within the target (-1 where not even k = 0 fits)."""
        fits0 = self._size(pre, H, np.zeros(H.shape, dtype=np.int64)) <= target
        lo = np.where(fits0, 0, -1)
        hi = np.where(fits0, n, -1)
        while (lo < hi).any():
            mid = (lo + hi + 1) // 2
            fit = self._size(pre, H, np.maximum(mid, 0)) <= target
            lo, hi = np.where(fit, mid, lo), np.where(fit, hi, mid - 1)
        return lo

    # -- the two rules ------------------------------------------------------------------------------------------

    def _prepare_merged(self) -> None:
        """Score rule: hidden chunks and items in one list by score (each group's chunks keep their order)."""
        it = self.items
        starts, counts = _chunks(self.shape.hidden, self.round_to)
        h_keys = np.add.reduceat(self.hidden_score, starts) / counts
        h_keys[0] = np.inf  # a model keeps at least one chunk of hidden dimensions
        keys = np.concatenate([h_keys, it.score])
        n_h = len(starts)
        # Ties: hidden before heads before neurons, then by position.
        tie = np.concatenate([np.zeros(n_h), 1 + (it.group % 2)])
        order = np.lexsort((np.arange(len(keys)), tie, -keys))
        self.m_hidden = order < n_h
        self.m_hcount = np.concatenate([[0], np.cumsum(np.where(self.m_hidden, counts[np.minimum(order, n_h - 1)], 0))])
        self.m_items = order[~self.m_hidden] - n_h
        self.m_items_before = np.concatenate([[0], np.cumsum(~self.m_hidden)])
        self.m_pre = self._prefix(self.m_items)

    def _select_score(self, target: float) -> tuple[int, np.ndarray]:
        n = len(self.m_hidden)

        def size(m: int) -> float:
            return float(self._size(self.m_pre, np.array([float(self.m_hcount[m])]), np.array([self.m_items_before[m]]))[0])

        lo, hi = 1, n  # the first entry (a hidden chunk) is always kept
        if size(n) <= target:
            lo = n
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if size(mid) <= target:
                lo = mid
            else:
                hi = mid - 1
        return self._fill_merged(lo, target)

    def _fill_merged(self, m: int, target: float) -> tuple[int, np.ndarray]:
        """Score rule: the first m entries of the merged list, then every later entry (hidden chunk or item) that
        still fits, in score order, each group best first. Entries too large for the slack at the start are skipped
        up front (sizes only grow), so the loop runs over few entries."""
        it = self.items
        k = int(self.m_items_before[m])
        H = int(self.m_hcount[m])
        kept_items = self.m_items[:k]
        nxt = np.zeros(2 * self.shape.n_layers, dtype=np.int64)
        np.maximum.at(nxt, it.group[kept_items], it.start[kept_items] + it.count[kept_items])
        opened = nxt > 0
        P = float(self.m_pre["P"][k]) + float(self.sub_p[opened].sum())
        slack = target - float(self._size(self.m_pre, np.array([float(H)]), np.array([k]))[0])
        bp = self.cost.base[0]
        rest_items = self.m_items[k:]
        cost = it.p[rest_items] * H + it.q[rest_items]
        cand_items = np.nonzero(cost <= slack)[0]  # positions among the remaining items
        # The merged positions of the remaining hidden chunks and candidate items, in order.
        rest_hidden = np.nonzero(self.m_hidden[m:])[0] + m
        item_pos = np.nonzero(~self.m_hidden[m:])[0] + m  # merged position of each remaining item
        pos = np.concatenate([rest_hidden, item_pos[cand_items]])
        tag = np.concatenate([np.full(len(rest_hidden), -1, dtype=np.int64), cand_items])
        entries = tag[np.argsort(pos, kind="stable")].tolist()
        cheapest = float(cost[cand_items].min()) if len(cand_items) else np.inf
        added = []
        for j in entries:
            if slack < min(cheapest, bp + P):
                break
            if j < 0:
                c = self._hidden_chunk(H)
                if c and c * (bp + P) <= slack:
                    slack -= c * (bp + P)
                    H += c
                continue
            i = int(rest_items[j])
            g = int(it.group[i])
            if it.start[i] != nxt[g]:
                continue
            extra = float(it.p[i]) * H + float(it.q[i]) + (0.0 if opened[g] else self.sub_p[g] * H + self.sub_q[g])
            if extra <= slack:
                slack -= extra
                added.append(i)
                P += float(it.p[i]) + (0.0 if opened[g] else float(self.sub_p[g]))
                opened[g] = True
                nxt[g] = int(it.start[i] + it.count[i])
        return H, np.concatenate([kept_items, np.asarray(added, dtype=np.int64)])

    def _density_order(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Heads and neurons by density, value ÷ cost at the full hidden width. Costs are p·H + q with q only biases,
        so the order hardly depends on H; the sizes of its prefixes are exact at every H."""
        if self._density is None:
            it = self.items
            density = it.value / np.maximum(it.p * float(self.shape.hidden) + it.q, 1e-300)
            # Stable: equal densities keep the item order, i.e. each group best first.
            order = np.argsort(-density, kind="stable")
            self._density = (order, self._prefix(order))
        return self._density

    def _select_density(self, target: float) -> tuple[int, np.ndarray]:
        hv_cum = np.concatenate([[0.0], np.cumsum(self.hidden_value)])
        order, pre = self._density_order()
        k = self._largest_fit(pre, self.h_candidates.astype(np.float64), target, len(order))
        if not (k >= 0).any():  # not even the narrowest model without heads and neurons fits: that model
            return int(self.h_candidates[0]), np.zeros(0, dtype=np.int64)
        obj = np.where(k >= 0, hv_cum[self.h_candidates] + pre["V"][np.maximum(k, 0)], -np.inf)
        j = int(np.argmax(obj))
        return self._fill(order, pre, int(k[j]), int(self.h_candidates[j]), target)

    def _fill(self, order: np.ndarray, pre: dict[str, np.ndarray], k: int, H: int, target: float) -> tuple[int, np.ndarray]:
        """Density rule: the first k items of `order` with H hidden dimensions, then later items that still fit, in
        their order (each group's best first), a few vectorised rounds. Returns the hidden width and the items."""
        it = self.items
        L2 = 2 * self.shape.n_layers
        kept = [order[:k]]
        nxt = np.zeros(L2, dtype=np.int64)  # per group: the start its next kept item has
        np.maximum.at(nxt, it.group[order[:k]], it.start[order[:k]] + it.count[order[:k]])
        opened = nxt > 0
        P = float(pre["P"][k]) + float(self.sub_p[opened].sum())  # size per hidden dimension of the kept units
        slack = target - float(self._size(pre, np.array([float(H)]), np.array([k]))[0])
        rest = order[k:]
        for _round in range(6):
            if slack <= 0:
                break
            progress = False
            if len(rest):
                g = rest_g = it.group[rest]
                head_of_group = it.start[rest] == nxt[rest_g]
                cost = it.p[rest] * H + it.q[rest] + np.where(~opened[g] & head_of_group, self.sub_p[g] * H + self.sub_q[g], 0.0)
                cand = cost <= slack
                # Only a prefix of each group's remaining items: none after one that does not fit.
                first_bad = np.full(L2, len(rest), dtype=np.int64)
                bad = np.nonzero(~cand)[0]
                np.minimum.at(first_bad, g[bad], bad)
                allowed = np.nonzero(cand & (np.arange(len(rest)) < first_bad[g]))[0]
                if len(allowed):
                    cs = np.cumsum(cost[allowed])
                    take = allowed[cs <= slack]
                    if len(take):
                        slack -= float(cs[len(take) - 1])
                        t = rest[take]
                        kept.append(t)
                        newly = np.unique(it.group[t][~opened[it.group[t]]])
                        P += float(it.p[t].sum()) + float(self.sub_p[newly].sum())
                        opened[newly] = True
                        np.maximum.at(nxt, it.group[t], it.start[t] + it.count[t])
                        mask = np.ones(len(rest), bool)
                        mask[take] = False
                        rest = rest[mask]
                        progress = True
            if not progress:
                break
        return H, np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)

    def _hidden_chunk(self, H: int) -> int:
        """Hidden dimensions the next re-addition brings: up to the next multiple of round_to (or all)."""
        full = self.shape.hidden
        if H >= full:
            return 0
        return min(self.round_to - H % self.round_to if H % self.round_to else self.round_to, full - H)

    # -- the keep-set ---------------------------------------------------------------------------------------

    def select(self, keep: float) -> Selection:
        if not 0 < keep <= 1:
            raise ValueError(f"keep must be in (0, 1], got {keep}")
        full = self.cost.full
        target = keep * full
        H, chosen = self._select_score(target) if self.rule == "score" else self._select_density(target)
        keep_set = self._keep_set(H, chosen)
        size = size_of(keep_set.pruned_shape(self.shape), self.kind, self.seq_len)
        while size > target * (1 + 1e-12) and len(chosen):  # rounding in the coefficients (FLOPs at a mean length)
            chosen = chosen[:-1]
            keep_set = self._keep_set(H, chosen)
            size = size_of(keep_set.pruned_shape(self.shape), self.kind, self.seq_len)
        return Selection(keep_set, keep_set.pruned_shape(self.shape), size, size / full, keep)

    def _keep_set(self, H: int, chosen: np.ndarray) -> KeepSet:
        it = self.items
        n_kept = np.zeros(2 * self.shape.n_layers, dtype=np.int64)
        np.maximum.at(n_kept, it.group[chosen], it.start[chosen] + it.count[chosen])
        groups = [torch.from_numpy(np.sort(o[: n_kept[j]])) for j, o in enumerate(self.items.orders)]
        hidden = torch.from_numpy(np.sort(self.hidden_order[:H]))
        return KeepSet(hidden, groups[0::2], groups[1::2])


def select_keep(
    shape: ModelShape,
    scores: dict[str, torch.Tensor],
    kind: str,
    keep: float,
    seq_len: float,
    round_to: int = 1,
    values: dict[str, torch.Tensor] | None = None,
) -> Selection:
    """The keep-set of size ≤ keep × full size (see `Ranking`; without `values`, ranked by score).

    Hidden dimensions and FFN neurons are kept in counts that are multiples of `round_to` (or all of them); heads one
    key/value group at a time. A layer whose heads (neurons) are all gone loses its attention (FFN) sublayer."""
    return Ranking(shape, scores, kind, seq_len, round_to, values).select(keep)


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
