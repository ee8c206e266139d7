"""CoFi's L0 gates (hard concrete, Louizos et al. 2018; Xia et al. 2022, its public `l0_module.py`): the closest
peer of VTrans, trained by the same harness with the same Lagrangian budget term, for the benchmark; it distils as
CoFi does, with its layer distillation and dynamic layer matching (teacher.py, `MatchedLayers`).

Each unit has log α; a training gate is z = min(1, max(0, s·(r − l) + l)) with
s = sigmoid((log u − log(1 − u) + log α)/β), u ~ U(0, 1), β = 2/3, l = −0.1, r = 1.1, one u per unit and step (the
whole batch shares it). The probability that z ≠ 0, sigmoid(log α − β·log(−l/r)), is the keep probability the
expected size uses. As in CoFi: heads, whole sublayers and hidden dimensions start at log α = 10 (open), FFN neurons
at log((1 − d)/d) with drop rate d = 0.5, each with N(0, 0.01²) jitter; log α is clamped to [log 0.01, log 100]
after every step. The cut is CoFi's deterministic one: per layer and unit type (the hidden width as one group) the
expected number of closed units, rounded, is closed, lowest soft mask sigmoid(0.8·log α/β) first; kept units carry
their soft mask as their scale.
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
LOG_ALPHA_MIN, LOG_ALPHA_MAX = math.log(1e-2), math.log(1e2)
OPEN = 10.0  # CoFi's initial log α for heads, sublayers and hidden dimensions
DROP_RATE = 0.5  # CoFi's droprate_init, the FFN neurons' start
SOFT_MASK_FACTOR = 0.8  # CoFi's "magical number" (Wang et al. 2020) in the deterministic soft mask
INIT_JITTER = 1e-2


class HardConcreteGates(UnitGates):
    def __init__(self, shape: ModelShape, settings: VIBSettings):
        super().__init__(shape, settings)
        start = {g: OPEN for g in GRANULARITIES} | {"ffn": math.log(1 - DROP_RATE) - math.log(DROP_RATE)}
        self.log_alpha = nn.ParameterDict({g: nn.Parameter(start[g] + INIT_JITTER * torch.randn(sum(c))) for g, c in self.counts.items()})

    def keep_probs(self, g: str) -> torch.Tensor:
        return torch.sigmoid(self.log_alpha[g] - BETA * math.log(-LIMIT_L / LIMIT_R))

    def sample(self, batch: int, track: bool = False, rows: slice = slice(None)) -> Gates:
        z = {}
        for g in GRANULARITIES:
            la = self.log_alpha[g]
            u = self.draw("rand", 1, la.numel(), la.device, slice(None))[0].clamp(EPS, 1 - EPS)  # one draw per step
            s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + la) / BETA)
            z[g] = (s * (LIMIT_R - LIMIT_L) + LIMIT_L).clamp(0.0, 1.0)
        return self._gates(z, self.keep_probs("hidden"))

    def constrain(self) -> None:
        with torch.no_grad():
            for la in self.log_alpha.values():
                la.clamp_(LOG_ALPHA_MIN, LOG_ALPHA_MAX)

    def soft_mask(self, g: str) -> torch.Tensor:
        return torch.sigmoid(self.log_alpha[g].detach() / BETA * SOFT_MASK_FACTOR)

    def closed(self, g: str) -> torch.Tensor:
        """CoFi's deterministic choice: in each group (one layer's units of a type; all hidden dimensions; each
        sublayer alone) the expected number of closed units, rounded, closes, lowest soft mask first."""
        probs, soft = self.keep_probs(g).detach(), self.soft_mask(g)
        sizes = [soft.numel()] if g == "hidden" else [1] * soft.numel() if g in ("attn", "ffn_layer") else self.counts[g]
        out = torch.zeros(soft.numel(), dtype=torch.bool)
        start = 0
        for n in sizes:
            k = round(n - float(probs[start : start + n].sum()))
            if k > 0:
                out[start + torch.topk(soft[start : start + n].cpu(), k, largest=False).indices] = True
            start += n
        return out

    def scores(self) -> dict[str, torch.Tensor]:
        # Positive for the units CoFi keeps, negative for those it closes, each ordered by its soft mask, so the
        # threshold keep-set is CoFi's and an exact cut to another size moves along the soft masks.
        return {g: self.soft_mask(g).cpu() - self.closed(g).float() for g in GRANULARITIES}

    def unit_scales(self) -> dict[str, torch.Tensor]:
        return {g: self.soft_mask(g) for g in GRANULARITIES}
