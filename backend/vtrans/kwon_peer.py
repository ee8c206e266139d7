"""Kwon et al. 2022, "A Fast Post-Training Pruning Framework for Transformers", as a benchmark peer: no retraining.

1. Fisher information of the masks: a mask m = 1 on every head (key/value group) and FFN neuron; the diagonal
   empirical Fisher F_u = Σ_b (∂L_b/∂m_u)² over mini-batches of 2,048 training samples, L the task loss.
2. Mask search under the budget (their Algorithm 1): heads and neurons each ranked by F; for every number of heads
   kept, the most important heads and then as many of the most important neurons as the rest of the budget holds;
   the pair with the largest kept Fisher sum wins. Their constraint is FLOPs; here it is the run's budget kind.
3. Mask rearrangement: inside each layer, the same number of heads (and of neurons) kept, but the pruned set chosen
   by the layer's block of the Fisher matrix, so that units whose gradients cancel are pruned together: their
   greedy search, which passes over the layer's units from the least important up and each time drops from the
   pruned set the unit whose removal leaves the smallest squared sum of the set's gradients.
4. Mask tuning: the harness's layer-wise least-squares refit of the kept units' scales (correction.py) on the same
   number of samples, in place of their LSMR solve for the mask values; both fit each sublayer's output to the
   unpruned model's.
No fine-tuning follows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .baselines import _full_scores, mask_gradients
from .budget import CostModel
from .models import VTransModel
from .shards import Shards
from .structure import ModelShape

SAMPLES = 2048  # theirs: 2K training samples for the Fisher information and the mask tuning


def batch_mask_gradients(
    model: VTransModel,
    shards: Shards,
    device,
    samples: int = SAMPLES,
    batch_size: int = 32,
    seed: int = 0,
    should_stop: Callable[[], None] = lambda: None,
) -> dict[str, torch.Tensor]:
    """Per kind, the gradient of the loss by every unit's mask on each mini-batch: (batches, units), float64, on
    the CPU. Both the Fisher information and the rearrangement are made from it."""
    order = np.random.default_rng(seed).permutation(len(shards))[: min(samples, len(shards))]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rows: dict[str, list[torch.Tensor]] = {}
    for grads in mask_gradients(model, shards, device, batches, should_stop):
        for g, t in grads.items():
            rows.setdefault(g, []).append(t.double().cpu())
    return {g: torch.stack(r) for g, r in rows.items()}


def fisher_information(grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """F per head and FFN neuron: the sum over mini-batches of the squared gradient of the loss by the unit's mask."""
    return {g: t.pow(2).sum(0) for g, t in grads.items()}


def search(shape: ModelShape, fisher: dict[str, torch.Tensor], keep: float, kind: str, seq_len: float) -> dict[str, torch.Tensor]:
    """Kwon et al.'s mask search: which heads and neurons to keep (boolean, flat) so that the kept Fisher sum is the
    largest within the budget, at the full hidden width. Sizes are exact: a sublayer costs its own weights once any
    of its units is kept."""
    cost = CostModel(shape, kind, seq_len)
    H = shape.hidden
    at = lambda pq: pq[0] * H + pq[1]  # noqa: E731 (a cost's (slope, intercept) at the full width)
    per_layer = lambda counts: np.repeat(np.arange(shape.n_layers), counts)  # noqa: E731
    heads = _Prefixes(
        fisher["heads"], per_layer([l.kv_heads for l in shape.layers]), [at(c) for c in cost.head], [at(c) for c in cost.attn]
    )
    neurons = _Prefixes(fisher["ffn"], per_layer([l.ffn for l in shape.layers]), [at(c) for c in cost.neuron], [at(c) for c in cost.ffn])
    room = keep * cost.full - at(cost.base)
    fit = np.searchsorted(neurons.size, room - heads.size, side="right") - 1  # the most neurons beside each head count
    value = np.where(fit >= 0, heads.value + neurons.value[np.maximum(fit, 0)], -np.inf)
    n = int(np.argmax(value))
    return {"heads": heads.mask(n), "ffn": neurons.mask(max(int(fit[n]), 0))}


class _Prefixes:
    """Units of one kind ranked by Fisher information: the size and the Fisher sum of every prefix of the ranking
    (sizes include each sublayer's own cost from its first kept unit on)."""

    def __init__(self, fisher: torch.Tensor, layer: np.ndarray, unit_cost: list[float], sublayer_cost: list[float]):
        f = fisher.double().numpy()
        self.order = np.argsort(-f, kind="stable")
        n = len(f)
        first = np.full(len(unit_cost), n)
        np.minimum.at(first, layer[self.order], np.arange(n))
        opened = np.zeros(n + 1)
        np.add.at(opened, np.minimum(first + 1, n + 1)[first < n], np.asarray(sublayer_cost)[first < n])
        self.size = np.concatenate([[0.0], np.cumsum(np.asarray(unit_cost)[layer[self.order]])]) + np.cumsum(opened)
        self.value = np.concatenate([[0.0], np.cumsum(f[self.order])])

    def mask(self, count: int) -> torch.Tensor:
        out = torch.zeros(len(self.order), dtype=torch.bool)
        out[torch.from_numpy(self.order[:count])] = True
        return out


def rearrange(kept: torch.Tensor, grads: torch.Tensor, layer_sizes: list[int]) -> torch.Tensor:
    """The kept mask (boolean, flat over layers) with each layer's pruned set chosen again at the same size by the
    layer's block of the Fisher matrix: the loss of pruning a set P is about ||Σ_{u∈P} g_u||² over the mini-batch
    gradients g, which the diagonal alone (Σ ||g_u||²) misses when gradients cancel."""
    out = kept.clone()
    start = 0
    for n in layer_sizes:
        out[start : start + n] = _rearrange_layer(kept[start : start + n], grads[:, start : start + n].T)
        start += n
    return out


def _rearrange_layer(kept: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Their greedy pass over one layer; `grads` is (units, batches). Each step can drop the unit it just added,
    so the pruned set's loss never rises above the diagonal choice it starts from."""
    n_pruned = int((~kept).sum())
    if n_pruned in (0, len(kept)):
        return kept
    order = torch.argsort(grads.pow(2).sum(1), stable=True).tolist()  # least important first
    pruned = order[:n_pruned]
    for unit in order[n_pruned:]:
        pruned.append(unit)
        g = grads[pruned]
        without = g.sum(0) - g  # the set's gradient sum without each of its members
        pruned.pop(int(without.pow(2).sum(1).argmin()))
    out = torch.ones_like(kept)
    out[pruned] = False
    return out


def kwon_scores(
    model: VTransModel,
    shards: Shards,
    device,
    keep: float,
    kind: str,
    seq_len: float,
    seed: int = 0,
    should_stop: Callable[[], None] = lambda: None,
) -> dict[str, torch.Tensor]:
    """Scores in the baselines' layout: the searched and rearranged units in [1, 2), the others in [0, 1), each by its Fisher
    information, so the common exact cut keeps the search's choice and fills what is left of the budget in Fisher
    order."""
    grads = batch_mask_gradients(model, shards, device, seed=seed, should_stop=should_stop)
    fisher = fisher_information(grads)
    searched = search(model.shape, fisher, keep, kind, seq_len)
    sizes = {"heads": [l.kv_heads for l in model.shape.layers], "ffn": [l.ffn for l in model.shape.layers]}
    kept = {g: rearrange(searched[g], grads[g], sizes[g]) for g in ("heads", "ffn")}
    rank = {g: 0.5 * fisher[g].float() / float(fisher[g].max().clamp_min(1e-30)) for g in ("heads", "ffn")}
    return _full_scores(model.shape, kept["heads"].float() + rank["heads"], kept["ffn"].float() + rank["ffn"])
