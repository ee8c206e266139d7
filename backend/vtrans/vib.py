"""Variational Information Bottleneck gates (Dai et al. 2018, as VTrans uses them; arXiv 2406.05276).

Every prunable unit u has a gate z_u = μ_u + σ_u·ε, ε ~ N(0, 1), multiplied into its output. The KL term of the
bottleneck is ½·Σ log(1 + μ²/σ²) = ½·Σ softplus(log α) with log α = log μ² − log σ². A unit is kept while
log α is above its granularity's threshold (0 by default, i.e. μ² > σ²). The expected kept size used by the
budget comes from soft keep probabilities sigmoid(k·(log α − threshold)), with the slope k annealed during phase 1
(`slope`, set by the training loop).

A unit whose log α stayed far below its threshold for a number of steps is closed (`close_units`): μ is set to
exactly 0 and its gate is 0 from then on, with no noise and no gradient, so closed units neither perturb the
residual stream nor count towards the expected size. In masks.safetensors a closed unit is one with μ = 0.

Granularities: hidden (one per hidden dimension), heads (one per key/value group per layer), attn (one per
attention sublayer), ffn (one per FFN neuron per layer), ffn_layer (one per FFN sublayer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from .models import Gates
from .settings import GRANULARITIES, VIBSettings
from .structure import ModelShape

__all__ = ["GRANULARITIES", "VIBSettings", "UnitGates", "VIBGates", "unit_counts"]

if TYPE_CHECKING:
    from .prune import KeepSet, UnitScales


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
        # The stream the training noise comes from (None: torch's global one). Data-parallel workers share one seed
        # and each keeps its rows of the global batch's draw, so N workers train on the noise one process would.
        self.noise: torch.Generator | None = None

    def draw(self, kind: str, batch: int, n: int, device: torch.device, rows: slice) -> torch.Tensor:
        """Standard normal (`randn`) or uniform (`rand`) noise for `batch` examples × `n` units; this worker's `rows`."""
        fn = torch.randn if kind == "randn" else torch.rand
        return fn(batch, n, device=device, generator=self.noise)[rows]

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

    def constrain(self) -> None:
        """Keeps the parameters in their allowed range after an optimizer step (nothing to do for most gates)."""

    def sample(self, batch: int, track: bool = False, rows: slice = slice(None)) -> Gates:
        """Training gates for a batch of `batch` examples (one draw per example and unit), of which `rows` are this
        worker's."""
        raise NotImplementedError

    def scores(self) -> dict[str, torch.Tensor]:
        """Per-unit ranking scores: positive keeps the unit; the lowest go first when a budget is cut."""
        raise NotImplementedError

    def unit_scales(self) -> dict[str, torch.Tensor]:
        """The values folded into the weights of kept units."""
        raise NotImplementedError

    def values(self, rule: str = "fisher") -> dict[str, torch.Tensor] | None:
        """Per-unit importance for the cost-aware cut (`Ranking`'s density rule), or None to rank by score."""
        return None

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


CLOSED_LOGVAR = 10.0  # log σ² of a closed unit (with μ = 0: log α ≈ −38, no information)


class VIBGates(UnitGates):
    """μ and log σ² for every unit."""

    fisher_steps: torch.Tensor  # buffers (registered in __init__)
    committed: torch.Tensor

    def __init__(self, shape: ModelShape, settings: VIBSettings):
        super().__init__(shape, settings)
        self.mu = nn.ParameterDict({g: nn.Parameter(torch.full((sum(c),), settings.init_mu)) for g, c in self.counts.items()})
        self.logvar = nn.ParameterDict({g: nn.Parameter(torch.full((sum(c),), settings.init_logvar)) for g, c in self.counts.items()})
        self.slope = settings.temperature
        for g, c in self.counts.items():
            # Steps each unit has spent below close_below (checkpointed with the gates), and which units are closed.
            self.register_buffer(f"below_{g}", torch.zeros(sum(c), dtype=torch.int32))
            self.register_buffer(f"closed_{g}", torch.zeros(sum(c), dtype=torch.bool))
            # Running mean of the squared per-example gradient of the loss with respect to each gate (its Fisher
            # information): ½·F·μ² estimates what removing the unit costs in loss (the cut's importance).
            self.register_buffer(f"fisher_{g}", torch.zeros(sum(c)))
        self.register_buffer("fisher_steps", torch.zeros((), dtype=torch.int64))
        # After a commit the open units are pinned above their threshold (`hold_pinned`), so the keep-set the
        # threshold gives and the expected size both stay the committed cut.
        self.register_buffer("committed", torch.zeros((), dtype=torch.bool))
        self._last: dict[str, torch.Tensor] | None = None

    def closed(self, g: str) -> torch.Tensor:
        return getattr(self, f"closed_{g}")

    def fisher(self, g: str) -> torch.Tensor:
        return getattr(self, f"fisher_{g}")

    def state(self) -> dict[str, torch.Tensor]:
        """μ and log σ² per granularity, and the gates' Fisher information once it has been measured."""
        out = super().state()
        if int(self.fisher_steps) > 0:
            out.update({f"{g}.fisher": self.fisher(g).detach().cpu().clone() for g in GRANULARITIES})
        return out

    def load(self, state: dict[str, torch.Tensor]) -> None:
        super().load(state)
        with torch.no_grad():
            for g in GRANULARITIES:
                self.closed(g).copy_(self.mu[g] == 0)
                if f"{g}.fisher" in state:
                    self.fisher(g).copy_(state[f"{g}.fisher"])
            self.fisher_steps.fill_(1 if all(f"{g}.fisher" in state for g in GRANULARITIES) else 0)

    @torch.no_grad()
    def commit(self, keep: KeepSet) -> None:
        """Closes every unit outside a keep-set (and a sublayer whose units are all outside it): from here on the
        gates train the kept structure only, so the hard cut is the model that training sees."""

        def outside(n: int, kept: torch.Tensor) -> torch.Tensor:
            m = torch.ones(n, dtype=torch.bool)
            m[kept.long()] = False
            return m

        masks = {
            "hidden": outside(self.shape.hidden, keep.hidden),
            "heads": torch.cat([outside(l.kv_heads, k) for l, k in zip(self.shape.layers, keep.heads)]),
            "attn": torch.tensor([len(k) == 0 for k in keep.heads]),
            "ffn": torch.cat([outside(l.ffn, k) for l, k in zip(self.shape.layers, keep.ffn)]),
            "ffn_layer": torch.tensor([len(k) == 0 for k in keep.ffn]),
        }
        for g, m in masks.items():
            closed = self.closed(g)
            closed |= m.to(closed.device)
            self.mu[g][closed] = 0.0
            self.logvar[g][closed] = CLOSED_LOGVAR
        self.committed.fill_(True)
        self.hold_pinned()

    @torch.no_grad()
    def hold_pinned(self) -> None:
        """Once committed, every open unit's log α is held at least a margin above its threshold (by lowering its
        σ², μ being the scale training learns): its soft keep probability stays ≈ 1, so that neither the KL term nor
        the slope can move the size away from the committed cut."""
        if not bool(self.committed):
            return
        margin = max(1.0, 5.0 / self.slope)
        for g in GRANULARITIES:
            open_ = ~self.closed(g)
            ceiling = torch.log(self.mu[g].pow(2) + 1e-12) - self.settings.threshold[g] - margin
            self.logvar[g][open_] = torch.minimum(self.logvar[g], ceiling)[open_]

    @torch.no_grad()
    def accumulate_fisher(
        self, scale: float, examples: int, total: Callable[[torch.Tensor], torch.Tensor] = lambda t: t, decay: float = 0.95
    ) -> None:
        """After the backward pass of a step whose gates came from `sample(..., track=True)`: folds the squared
        per-example gradients into the running Fisher information (an exponential mean; the first step sets it).
        The loss is a batch mean, so a sample's gradient is the example's divided by the batch size: `scale` (the
        batch size) undoes that. `total` sums over data-parallel workers, whose rows differ, and `examples` is the
        global batch, so that every worker keeps the Fisher information one process would."""
        if self._last is None:
            return
        first = int(self.fisher_steps) == 0
        for g, z in self._last.items():
            if z.grad is None:
                continue
            f = total((z.grad.float() * scale).pow(2).sum(0)) / examples
            self.fisher(g).copy_(f if first else decay * self.fisher(g) + (1 - decay) * f)
        self.fisher_steps += 1
        self._last = None

    @torch.no_grad()
    def close_units(self, below: float, steps: int, close: bool = True) -> int:
        """After an optimiser step: counts the steps every unit's score has spent more than `below` under its
        threshold, closes (when `close`) those that reached `steps`, and holds closed units at μ = 0 (the
        optimiser's momentum would move them). Returns the number of closed units."""
        total = 0
        for g in GRANULARITIES:
            closed, count = self.closed(g), getattr(self, f"below_{g}")
            if steps > 0:
                under = (self.log_alpha(g) - self.settings.threshold[g]) < -below
                count.copy_(torch.where(under, count + 1, torch.zeros_like(count)))
                if close:
                    closed |= count >= steps
            self.mu[g][closed] = 0.0
            self.logvar[g][closed] = CLOSED_LOGVAR
            total += int(closed.sum())
        self.hold_pinned()
        return total

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
        p = torch.sigmoid(self.slope * (self.log_alpha(g) - self.settings.threshold[g]))
        return p.masked_fill(self.closed(g), 0.0)

    def sample(self, batch: int, track: bool = False, rows: slice = slice(None)) -> Gates:
        """Noisy gates for a training step: one ε per example and unit; exactly 0 for closed units. With `track`,
        the samples keep their gradients for `accumulate_fisher`."""
        z = {}
        for g in GRANULARITIES:
            mu, std = self.mu[g], torch.exp(0.5 * self.logvar[g])
            noisy = mu + std * self.draw("randn", batch, mu.numel(), mu.device, rows)
            z[g] = noisy.masked_fill(self.closed(g), 0.0)
            if track:
                z[g].retain_grad()
        self._last = z if track else None
        return self._gates(z, self.keep_probs("hidden"))

    def scores(self) -> dict[str, torch.Tensor]:
        return {g: (self.log_alpha(g) - self.settings.threshold[g]).detach() for g in GRANULARITIES}

    def values(self, rule: str = "fisher") -> dict[str, torch.Tensor] | None:
        """Per-unit importance for the cost-aware cut. "fisher": ½·F·μ², the loss a unit's removal costs to second
        order (None when no Fisher information was measured: masks of older runs); "information": the information
        the gate passes, ½·softplus(log α − threshold)."""
        if rule == "information":  # a unit passes no more than its sublayer does
            sc = {g: t.cpu() for g, t in self.scores().items()}
            heads = torch.minimum(sc["heads"], sc["attn"].repeat_interleave(torch.tensor(self.counts["heads"])))
            ffn = torch.minimum(sc["ffn"], sc["ffn_layer"].repeat_interleave(torch.tensor(self.counts["ffn"])))
            sc = {**sc, "heads": heads, "ffn": ffn}
            return {g: 0.5 * nn.functional.softplus(t) for g, t in sc.items()}
        if int(self.fisher_steps) == 0:
            return None
        return {g: (0.5 * self.fisher(g) * self.mu[g].detach().float().pow(2)).cpu() for g in GRANULARITIES}

    def unit_scales(self) -> dict[str, torch.Tensor]:
        return {g: self.mu[g] for g in GRANULARITIES}
