"""CoFi-style L0 gates (hard concrete, Louizos et al. 2018; Xia et al. 2022): the closest peer of VTrans, trained
by the same harness with the same Lagrangian budget term and distillation, for the benchmark.

Each unit has log α; a training gate is z = min(1, max(0, s·(r − l) + l)) with
s = sigmoid((log u − log(1 − u) + log α)/β), u ~ U(0, 1), β = 2/3, l = −0.1, r = 1.1. The probability that z ≠ 0,
sigmoid(log α − β·log(−l/r)), is the keep probability the expected size uses. At the end the deterministic
gate min(1, max(0, sigmoid(log α)·(r − l) + l)) is folded into kept units, and units are ranked by log α.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .models import Gates
from .structure import ModelShape
from .vib import GRANULARITIES, UnitGates, VIBSettings

BETA, LIMIT_L, LIMIT_R = 2.0 / 3.0, -0.1, 1.1
EPS = 1e-6


class HardConcreteGates(UnitGates):
    def __init__(self, shape: ModelShape, settings: VIBSettings, init_keep: float = 0.9):
        super().__init__(shape, settings)
        # CoFi initialises log α from a drop rate; this starts every unit with a high keep probability.
        init = math.log(init_keep) - math.log(1 - init_keep)
        self.log_alpha = nn.ParameterDict({g: nn.Parameter(torch.full((sum(c),), init)) for g, c in self.counts.items()})

    def keep_probs(self, g: str) -> torch.Tensor:
        return torch.sigmoid(self.log_alpha[g] - BETA * math.log(-LIMIT_L / LIMIT_R))

    def sample(self, batch: int, track: bool = False, rows: slice = slice(None)) -> Gates:
        z = {}
        for g in GRANULARITIES:
            la = self.log_alpha[g]
            u = self.draw("rand", batch, la.numel(), la.device, rows).clamp(EPS, 1 - EPS)
            s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + la) / BETA)
            z[g] = (s * (LIMIT_R - LIMIT_L) + LIMIT_L).clamp(0.0, 1.0)
        return self._gates(z, self.keep_probs("hidden"))

    def scores(self) -> dict[str, torch.Tensor]:
        # Kept when the deterministic gate is non-zero, i.e. sigmoid(log α) > −l/(r − l).
        offset = math.log(-LIMIT_L / LIMIT_R)
        return {g: (self.log_alpha[g] - offset).detach() for g in GRANULARITIES}

    def unit_scales(self) -> dict[str, torch.Tensor]:
        return {g: (torch.sigmoid(self.log_alpha[g]) * (LIMIT_R - LIMIT_L) + LIMIT_L).clamp(0.0, 1.0) for g in GRANULARITIES}
