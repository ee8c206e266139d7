"""The keep-set of the uniform output shape: every layer keeps the same number of key/value groups and FFN neurons,
and the hidden width follows the family's standard config, so that the pruned model is an ordinary checkpoint of
its family (docs/model-format.md, "Output shapes").

The rule (docs/algorithm.md, "The uniform shape"): the units are ranked by the same effective scores as for the
heterogeneous shape (`budget.effective_scores`), and removed in uniform slices, the lowest-ranked slice first:

    heads    one key/value group from every layer (each layer's lowest-ranked remaining group); where the standard
             config derives the head size from hidden ÷ heads (BERT, GPT-2) the hidden width goes with it, to
             heads × head_dim (its lowest-ranked dimensions), and the slice ranks by the mean of both parts
    ffn      `round_to` neurons from every layer
    hidden   LLaMA only: `round_to` dimensions, or more: transformers checks that the hidden width is a multiple of
             the query heads

A slice's rank is the mean score of the units it removes (averaged over layers). Removal stops within the budget;
then the best-ranked removed slices that still fit come back. When a coarse slice overshot (a heads slice takes a
head from every layer, and under BERT/GPT-2 head_dim hidden dimensions too), the best-ranked coarse slices (heads;
LLaMA's hidden steps) are put back one at a time with the lowest-ranked FFN neurons making room, until the result
lands within `TIGHT` of the budget. Every layer keeps at least one key/value group and one FFN neuron: a standard
config cannot say that a layer lost a sublayer.

Selection only; the cut is `prune.prune_model` with this keep-set (selection.Selector).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .budget import Selection, effective_scores, size_of
from .errors import UserError
from .prune import KeepSet
from .structure import ModelShape, family_of

TIGHT = 0.005  # a result this far below the budget (fraction of the full size) is tightened


@dataclass(frozen=True)
class _State:
    k: int  # key/value groups per layer
    m: int  # FFN neurons per layer
    h: int  # hidden width


Move = Callable[[_State], "tuple[float, _State] | None"]


class _Ranked:
    """Scores sorted best first, per layer stacked (L, n) or flat (n,), with prefix sums for the mean of any
    range of ranks (averaged over layers)."""

    def __init__(self, scores: list[torch.Tensor], n: int):
        ordered = [torch.sort(s.float(), descending=True, stable=True) for s in scores]
        self.indices = [o.indices[:n] for o in ordered]
        column = torch.stack([o.values[:n] for o in ordered]).double().mean(0)
        self.prefix = [0.0] + torch.cumsum(column, 0).tolist()

    def mean(self, lo: int, hi: int) -> float:
        """Mean score of ranks lo..hi-1."""
        return (self.prefix[hi] - self.prefix[lo]) / max(hi - lo, 1)


class _Uniform:
    def __init__(self, shape: ModelShape, scores: dict[str, torch.Tensor], kind: str, seq_len: float, round_to: int):
        self.s, self.kind, self.seq_len, self.r = shape, kind, seq_len, max(1, round_to)
        self.family = family_of(shape.family)
        layers = shape.layers
        bare = [i for i, l in enumerate(layers) if l.kv_heads == 0 or l.ffn == 0]
        if bare:
            raise UserError(
                f"shape: the uniform shape keeps attention and FFN in every layer, but the source model's layer {bare[0]} "
                "has lost one; choose the heterogeneous shape for this model."
            )
        if len({l.group_size for l in layers}) > 1:
            raise UserError("shape: the uniform shape needs the same query heads per key/value head in every layer of the source.")
        self.gs = layers[0].group_size
        self.tied = self.family.head_dim_from_hidden
        self.kmax = min(l.kv_heads for l in layers)
        while self.kmax > 1 and self.hidden_cap(self.kmax) < 1:
            self.kmax -= 1
        self.fmax = min(l.ffn for l in layers)
        self.fmin = min(self.r, self.fmax)
        eff = effective_scores(shape, scores)
        self.heads = _Ranked(eff["heads"], self.kmax)
        self.ffn = _Ranked(eff["ffn"], self.fmax)
        self.hidden = _Ranked([eff["hidden"]], shape.hidden)
        self.full = size_of(shape, kind, seq_len)
        self._at_width: dict[int, ModelShape] = {}

    # -- the hidden width the family's config allows --------------------------------------------------------------

    def step(self, k: int) -> int:
        return self.family.uniform_hidden_step(k * self.gs, self.r)

    def hidden_cap(self, k: int) -> int:
        """The widest hidden width allowed at k groups per layer."""
        if self.tied:
            w = k * self.gs * self.s.head_dim
            return w if w <= self.s.hidden else 0
        return self.s.hidden // self.step(k) * self.step(k)

    def fit_hidden(self, k: int, h: int) -> int:
        """h, or the next allowed width below it, at k groups per layer."""
        if self.tied:
            return self.hidden_cap(k)
        return max(self.step(k), h // self.step(k) * self.step(k))

    # -- sizes: every layer alike, so one layer's formula times the layers ----------------------------------------

    def shape_of(self, st: _State) -> ModelShape:
        return self.family.uniform_shape(self.s, st.h, st.k, st.m)

    def size(self, st: _State) -> float:
        # The formulas take the counts; of the shape they read only what depends on the width (BERT's pooler).
        s = self._at_width.get(st.h)
        if s is None:
            s = self._at_width[st.h] = self.shape_of(st)
        f, L = self.family, self.s.n_layers
        g = st.k
        if self.kind == "flops":
            return float(L * f.layer_flops(s, st.h, g * self.gs, g, st.m, self.seq_len, 1, 1) + f.head_flops(s, st.h, self.seq_len))
        body = L * f.layer_params(s, st.h, g * self.gs, g, st.m, 1, 1)
        if self.kind == "encoder-params":
            return float(body)
        return float(f.embedding_params(s, st.h) + body + f.head_params(s, st.h))

    # -- moves: (rank, next state), or None where the move is not possible ----------------------------------------

    def drop_heads(self, st: _State) -> tuple[float, _State] | None:
        if st.k <= 1:
            return None
        h = self.fit_hidden(st.k - 1, st.h)
        rank = self.heads.mean(st.k - 1, st.k)
        if h < st.h:
            rank = (rank + self.hidden.mean(h, st.h)) / 2
        return rank, _State(st.k - 1, st.m, h)

    def drop_ffn(self, st: _State) -> tuple[float, _State] | None:
        n = st.m % self.r or self.r
        if st.m - n < self.fmin:
            return None
        return self.ffn.mean(st.m - n, st.m), _State(st.k, st.m - n, st.h)

    def drop_hidden(self, st: _State) -> tuple[float, _State] | None:
        if self.tied or st.h - self.step(st.k) < self.step(st.k):
            return None
        h = st.h - self.step(st.k)
        return self.hidden.mean(h, st.h), _State(st.k, st.m, h)

    def add_heads(self, st: _State) -> tuple[float, _State] | None:
        if st.k >= self.kmax:
            return None
        h = self.fit_hidden(st.k + 1, st.h)
        rank = self.heads.mean(st.k, st.k + 1)
        if h > st.h:
            rank = (rank + self.hidden.mean(st.h, h)) / 2
        return rank, _State(st.k + 1, st.m, h)

    def add_ffn(self, st: _State) -> tuple[float, _State] | None:
        if st.m >= self.fmax:
            return None
        n = min((self.r - st.m % self.r) % self.r or self.r, self.fmax - st.m)
        return self.ffn.mean(st.m, st.m + n), _State(st.k, st.m + n, st.h)

    def add_hidden(self, st: _State) -> tuple[float, _State] | None:
        h = st.h + self.step(st.k)
        if self.tied or h > self.hidden_cap(st.k):
            return None
        return self.hidden.mean(st.h, h), _State(st.k, st.m, h)

    # -- the search -----------------------------------------------------------------------------------------------

    def shrink(self, st: _State, moves: list[Move], target: float) -> _State:
        """Takes the lowest-ranked possible move until the size is within the target (or nothing is left)."""
        while self.size(st) > target:
            options = [o for o in (move(st) for move in moves) if o is not None]
            if not options:
                break
            st = min(options, key=lambda o: o[0])[1]
        return st

    def fill(self, st: _State, moves: list[Move], target: float) -> _State:
        """Puts back the best-ranked removed slice that still fits, while one does."""
        while True:
            options = sorted((o for o in (move(st) for move in moves) if o is not None), key=lambda o: -o[0])
            fitting = next((nxt for _, nxt in options if self.size(nxt) <= target), None)
            if fitting is None:
                return st
            st = fitting

    def select(self, keep: float) -> Selection:
        target = keep * self.full
        drops: list[Move] = [self.drop_heads, self.drop_ffn, self.drop_hidden]
        adds: list[Move] = [self.add_heads, self.add_ffn, self.add_hidden]
        start = _State(self.kmax, self.fmax, self.hidden_cap(self.kmax))
        best = self.fill(self.shrink(start, drops, target), adds, target)
        trial = best
        # A coarse slice (heads; LLaMA's hidden steps) that overshot: the best-ranked coarse slice back, one at a
        # time, with FFN neurons making room, until the result is tight.
        while self.size(best) < target - TIGHT * self.full:
            options = [o for o in (self.add_heads(trial), self.add_hidden(trial)) if o is not None]
            if not options:
                break
            trial = max(options, key=lambda o: o[0])[1]
            candidate = self.fill(self.shrink(trial, drops[1:2], target), adds[1:2], target)
            if self.size(candidate) > target:
                break  # FFN at its minimum cannot make room: more coarse slices would not fit either
            if self.size(candidate) > self.size(best):
                best = candidate
        return self.selection(best, keep)

    def selection(self, st: _State, keep: float) -> Selection:
        keep_set = KeepSet(
            self.hidden.indices[0][: st.h].sort().values,
            [i[: st.k].sort().values for i in self.heads.indices],
            [i[: st.m].sort().values for i in self.ffn.indices],
        )
        size = self.size(st)
        return Selection(keep_set, self.shape_of(st), size, size / self.full, keep)


def select_uniform(
    shape: ModelShape, scores: dict[str, torch.Tensor], kind: str, keep: float, seq_len: float, round_to: int = 1
) -> Selection:
    """The uniform keep-set of size ≤ keep × full size (the module docstring has the rule). Its `shape` is the
    pruned model's: for BERT/RoBERTa with the pooler as wide as the hidden width, whose kept outputs
    `Family.uniform_head` picks from the weights when the model is cut."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    return _Uniform(shape, scores, kind, seq_len, round_to).select(keep)
