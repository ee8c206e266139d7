"""Baseline pruning criteria for the benchmark, each giving per-unit scores that `select_keep` cuts at the same
exact budget as VTrans (the lowest scores go first):

    random      a seeded uniform draw
    torch-pruning  the choice of the Torch-Pruning package's dependency-graph pruner (torch_pruning_peer.py)
    magnitude   mean |w| of the weights that belong to the unit (L1 norm per parameter)
    taylor      Michel et al. 2019: E|∂L/∂ξ_u| with a gate ξ_u = 1 on every unit, per parameter of the unit
    kwon        Kwon et al. 2022: the Fisher information of the masks and their mask search (kwon_peer.py); no
                fine-tuning, the kept units' scales refit by least squares instead

They prune attention heads (key/value groups) and FFN neurons, as those methods do; hidden dimensions and
whole sublayers are left to the head/neuron counts (a sublayer with none left is removed). Scores of heads and
neurons are importance per parameter, on a log scale, so that one ranking serves both. Which weights belong to a
unit, and how many parameters it carries, each family says (`Block.unit_weights`, `Family.group_params` and
`Family.neuron_params` in models/).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from .evaluate import task_loss
from .models import Gates, VTransModel
from .shards import Shards
from .structure import ModelShape, family_of
from .vib import GRANULARITIES, UnitGates, VIBSettings

BASELINES = ("random", "magnitude", "taylor", "torch-pruning", "kwon")  # torch_pruning_peer.py, kwon_peer.py
NEVER = 1e9  # score of units a baseline does not prune
log = logging.getLogger("vtrans")


def unit_params(s: ModelShape) -> dict[str, torch.Tensor]:
    """Parameters carried by one unit (a key/value group with its query heads; one FFN neuron), by the family's count."""
    family = family_of(s.family)
    heads = torch.cat([torch.full((l.kv_heads,), float(family.group_params(s, l))) for l in s.layers])
    ffn = torch.cat([torch.full((l.ffn,), float(family.neuron_params(s))) for l in s.layers])
    return {"heads": heads, "ffn": ffn}


def _full_scores(s: ModelShape, heads: torch.Tensor, ffn: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "hidden": torch.full((s.hidden,), NEVER),
        "heads": heads,
        "attn": torch.full((s.n_layers,), NEVER),
        "ffn": ffn,
        "ffn_layer": torch.full((s.n_layers,), NEVER),
    }


def random_scores(s: ModelShape, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return _full_scores(
        s, torch.rand(sum(l.kv_heads for l in s.layers), generator=g), torch.rand(sum(l.ffn for l in s.layers), generator=g)
    )


@torch.no_grad()
def magnitude_scores(model: VTransModel) -> dict[str, torch.Tensor]:
    s = model.shape
    sums = {"heads": [torch.zeros(l.kv_heads) for l in s.layers], "ffn": [torch.zeros(l.ffn) for l in s.layers]}
    for layer, block in enumerate(model.body.blocks()):
        for u in block.unit_weights():
            a = u.weight.detach().abs().float().cpu()
            per_channel = a.sum(1 - u.axis) if a.dim() == 2 else a
            sums[u.kind][layer] += per_channel.view(-1, u.width).sum(1)
    params = unit_params(s)
    heads = torch.log(torch.cat(sums["heads"]) / params["heads"] + 1e-12)
    ffn = torch.log(torch.cat(sums["ffn"]) / params["ffn"] + 1e-12)
    return _full_scores(s, heads, ffn)


def mask_gradients(
    model: VTransModel,
    shards: Shards,
    device,
    batches: Iterable[np.ndarray],
    should_stop: Callable[[], None] = lambda: None,
) -> Iterator[dict[str, torch.Tensor]]:
    """Per batch of examples (indices into `shards`), the gradient of the task loss by a mask ξ = 1 on every head
    and FFN neuron (flat per kind). The weights take no gradient; the model is in eval mode meanwhile."""
    s = model.shape
    ones = {
        g: torch.ones(sum(c), device=device, requires_grad=True)
        for g, c in (("heads", [l.kv_heads for l in s.layers]), ("ffn", [l.ffn for l in s.layers]))
    }
    gates = Gates(
        heads=list(torch.split(ones["heads"], [l.kv_heads for l in s.layers])),
        ffn=list(torch.split(ones["ffn"], [l.ffn for l in s.layers])),
    )
    was_training = model.training
    weights = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    try:
        for p, _ in weights:
            p.requires_grad_(False)
        for idx in batches:
            should_stop()
            batch = shards.batch(idx).to(device)
            for t in ones.values():
                t.grad = None
            loss = task_loss(shards.task, model.run(batch.input_ids, batch.attention_mask, batch.token_type_ids, gates=gates).logits, batch)
            loss.backward()
            grads = {g: t.grad for g, t in ones.items()}
            missing = [g for g, t in grads.items() if t is None]
            assert not missing, f"every unit's gate is in the forward pass ({missing})"
            yield {g: t.detach() for g, t in grads.items() if t is not None}
    finally:
        for p, wanted in weights:
            p.requires_grad_(wanted)
        model.train(was_training)


def taylor_scores(
    model: VTransModel,
    shards: Shards,
    device,
    batches: int = 16,
    batch_size: int = 32,
    seed: int = 0,
    should_stop: Callable[[], None] = lambda: None,
) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    draws = (rng.choice(len(shards), size=min(batch_size, len(shards)), replace=False) for _ in range(batches))
    total: dict[str, torch.Tensor] = {}
    for grads in mask_gradients(model, shards, device, draws, should_stop):
        for g, t in grads.items():
            total[g] = total.get(g, torch.zeros_like(t)) + t.abs()
    params = unit_params(model.shape)
    return _full_scores(
        model.shape,
        torch.log(total["heads"].cpu() / batches / params["heads"] + 1e-20),
        torch.log(total["ffn"].cpu() / batches / params["ffn"] + 1e-20),
    )


def baseline_scores(
    method: str,
    model: VTransModel,
    shards: Shards,
    device,
    seed: int,
    should_stop: Callable[[], None] = lambda: None,
    *,
    model_dir: str = "",
    keep: float = 1.0,
    kind: str = "params",
    seq_len: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Per-unit scores of one of BASELINES for `model` (Taylor needs the training shards; Torch-Pruning the model
    directory, which it loads with transformers, and the budget its ratio is fitted to)."""
    if method == "torch-pruning":
        from .torch_pruning_peer import torch_pruning_scores  # it builds on this module's score layout

        scores, chosen = torch_pruning_scores(model_dir, model.shape, shards, keep, kind, seq_len)
        log.info("Torch-Pruning's choice: %s", chosen)
        return scores
    if method == "kwon":
        from .kwon_peer import kwon_scores

        return kwon_scores(model, shards, device, keep, kind, seq_len, seed=seed, should_stop=should_stop)
    if method == "random":
        return random_scores(model.shape, seed)
    if method == "magnitude":
        return magnitude_scores(model)
    if method == "taylor":
        return taylor_scores(model, shards, device, seed=seed, should_stop=should_stop)
    raise ValueError(f"unknown baseline {method!r} (known: {', '.join(BASELINES)})")


class ScoreGates(UnitGates):
    """Fixed scores (a baseline's criterion) in the gates' interface: ranking only, scales of 1."""

    def __init__(self, shape: ModelShape, settings: VIBSettings, scores: dict[str, torch.Tensor] | None = None):
        super().__init__(shape, settings)
        self.score = nn.ParameterDict({g: nn.Parameter(torch.zeros(sum(c)), requires_grad=False) for g, c in self.counts.items()})
        if scores is not None:
            with torch.no_grad():
                for g in GRANULARITIES:
                    self.score[g].copy_(scores[g])

    def scores(self) -> dict[str, torch.Tensor]:
        return {g: self.score[g].detach() for g in GRANULARITIES}

    def unit_scales(self) -> dict[str, torch.Tensor]:
        return {g: torch.ones_like(self.score[g]) for g in GRANULARITIES}


def make_gates(method: str, shape: ModelShape, settings: VIBSettings) -> UnitGates:
    """The gate family a method trains or ranks with (used to read a run's masks back too)."""
    from .l0 import HardConcreteGates
    from .vib import VIBGates

    if method == "cofi":
        return HardConcreteGates(shape, settings)
    if method in BASELINES:
        return ScoreGates(shape, settings)
    return VIBGates(shape, settings)
