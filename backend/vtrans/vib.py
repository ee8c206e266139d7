"""Variational Information Bottleneck gates (Dai et al. 2018, as VTrans uses them; arXiv 2406.05276).

Every prunable unit u has a gate z_u = μ_u + σ_u·ε, ε ~ N(0, 1), multiplied into its output. The KL term of the
bottleneck is ½·Σ log(1 + μ²/σ²) = ½·Σ softplus(log α) with log α = log μ² − log σ². A unit is kept while
log α is above its granularity's threshold (0 by default, i.e. μ² > σ²). The expected kept size used by the
budget comes from soft keep probabilities sigmoid(k·(log α − threshold)).

Granularities: hidden (one per hidden dimension), heads (one per key/value group per layer), attn (one per
attention sublayer), ffn (one per FFN neuron per layer), ffn_layer (one per FFN sublayer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .models import Gates
from .settings import GRANULARITIES, VIBSettings
from .structure import ModelShape

__all__ = ["GRANULARITIES", "VIBSettings", "UnitGates", "VIBGates", "unit_counts"]

if TYPE_CHECKING:
    from .prune import UnitScales


def unit_counts(s: ModelShape) -> dict[str, list[int]]:
    """Units per granularity, split by layer where the granularity is per layer."""
    return {
        "hidden": [s.hidden],
        "heads": [l.kv_heads for l in s.layers],
        "attn": [1] * s.n_layers,
        "ffn": [l.ffn for l in s.layers],
        "ffn_layer": [1] * s.n_layers,
    }


class UnitGates(nn.Module):
    """One learned gate per prunable unit, stored flat per granularity; subclasses define the distribution."""

    def __init__(self, shape: ModelShape, settings: VIBSettings):
        super().__init__()
        self.shape = shape
        self.settings = settings
        self.counts = unit_counts(shape)

    def split(self, g: str, t: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(t, self.counts[g], dim=-1))

    def _gates(self, z: dict[str, torch.Tensor], norm_dims: torch.Tensor) -> Gates:
        """Gates from flat values per granularity ((n,) or (B, n))."""
        return Gates(
            hidden=z["hidden"],
            norm_dims=norm_dims,
            heads=self.split("heads", z["heads"]),
            attn=list(z["attn"].unbind(-1)),
            ffn=self.split("ffn", z["ffn"]),
            ffn_layer=list(z["ffn_layer"].unbind(-1)),
        )

    def keep_probs(self, g: str) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, batch: int) -> Gates:
        """Training gates for a batch (one draw per example and unit)."""
        raise NotImplementedError

    def scores(self) -> dict[str, torch.Tensor]:
        """Per-unit ranking scores: positive keeps the unit; the lowest go first when a budget is cut."""
        raise NotImplementedError

    def unit_scales(self) -> dict[str, torch.Tensor]:
        """The values folded into the weights of kept units."""
        raise NotImplementedError

    def kl(self) -> torch.Tensor | float:
        return 0.0

    def scales(self) -> UnitScales:
        from .prune import UnitScales

        v = {g: t.detach().float().cpu() for g, t in self.unit_scales().items()}
        return UnitScales(v["hidden"], self.split("heads", v["heads"]), v["attn"], self.split("ffn", v["ffn"]), v["ffn_layer"])

    def deterministic(self) -> Gates:
        """Evaluation gates: the threshold keep-set as a hard mask times the scales (equals the pruned model)."""
        from .budget import threshold_keep
        from .prune import masked_gates

        device = next(self.parameters()).device
        return masked_gates(self.shape, threshold_keep(self.shape, self.scores()), self.scales(), device=device)

    def parameter_dicts(self) -> dict[str, nn.ParameterDict]:
        """The subclass's parameters (μ, log σ², log α, ...), each one flat tensor per granularity."""
        return {name: d for name, d in self.named_children() if isinstance(d, nn.ParameterDict)}

    def state(self) -> dict[str, torch.Tensor]:
        """Flat tensors for masks.safetensors: `<granularity>.<parameter>`."""
        return {f"{g}.{name}": t.detach().cpu().clone() for name, d in self.parameter_dicts().items() for g, t in d.items()}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, d in self.parameter_dicts().items():
                for g in GRANULARITIES:
                    d[g].copy_(state[f"{g}.{name}"])


class VIBGates(UnitGates):
    """μ and log σ² for every unit."""

    def __init__(self, shape: ModelShape, settings: VIBSettings):
        super().__init__(shape, settings)
        self.mu = nn.ParameterDict({g: nn.Parameter(torch.full((sum(c),), settings.init_mu)) for g, c in self.counts.items()})
        self.logvar = nn.ParameterDict({g: nn.Parameter(torch.full((sum(c),), settings.init_logvar)) for g, c in self.counts.items()})

    def log_alpha(self, g: str) -> torch.Tensor:
        return torch.log(self.mu[g].pow(2) + 1e-12) - self.logvar[g]

    def kl(self) -> torch.Tensor | float:
        """Σ over granularities of multiplier × mean over units of ½·log(1 + μ²/σ²)."""
        total: torch.Tensor | float = 0.0
        for g in GRANULARITIES:
            if self.settings.kl[g] > 0 and self.mu[g].numel():
                total = total + self.settings.kl[g] * 0.5 * nn.functional.softplus(self.log_alpha(g)).mean()
        return total

    def keep_probs(self, g: str) -> torch.Tensor:
        return torch.sigmoid(self.settings.temperature * (self.log_alpha(g) - self.settings.threshold[g]))

    def sample(self, batch: int) -> Gates:
        """Noisy gates for a training step: one ε per example and unit."""
        z = {}
        for g in GRANULARITIES:
            mu, std = self.mu[g], torch.exp(0.5 * self.logvar[g])
            z[g] = mu + std * torch.randn(batch, mu.numel(), device=mu.device, dtype=mu.dtype)
        return self._gates(z, self.keep_probs("hidden"))

    def scores(self) -> dict[str, torch.Tensor]:
        return {g: (self.log_alpha(g) - self.settings.threshold[g]).detach() for g in GRANULARITIES}

    def unit_scales(self) -> dict[str, torch.Tensor]:
        return {g: self.mu[g] for g in GRANULARITIES}
