"""A retraining-free correction of a cut model: sublayer by sublayer, ridge-regularised least squares makes each
sublayer's output reproduce the model before the cut. Two refits (`correction.refit`):

- "scales" (the default): one multiplier per kept head and neuron (Kwon et al. 2022, "A Fast Post-Training Pruning
  Framework for Transformers", whose mask tuning it stands in for; the Kwon peer always uses it).
- "weights": each sublayer's output projection (the weight through which its kept heads or neurons write into the
  residual stream, and its bias) is refitted as a whole, a linear regression of the reference's output on the kept
  units' channels. It can move what a removed unit wrote onto the kept units that correlate with it, which one
  multiplier per unit cannot; it also has far more to fit from the same examples (docs/algorithm.md: what it did on
  party).

The reference ("the unpruned model") is the source weights with the trained gates' scales and the cut's hidden
dimensions but every head and neuron kept: for Faster-VTrans the frozen model with its gates, for VTrans the
phase-1 weights with theirs. A sublayer's output in the cut model is Σ_u m_u·r_u + b, with r_u what kept unit u
writes through the output projection (a head's context times its columns of the projection, a neuron's activation
times its column of the down projection) and b the projection's bias; the multipliers m (starting at 1) minimise

    Σ_tokens ‖Σ_u m_u·r_u + b − y‖² + λ·‖m − 1‖²,    λ = ridge · mean diagonal of the normal equations,

with y the reference's output of that sublayer on the kept hidden dimensions. For heads the normal equations come
from the contributions directly; for neurons as (W_dᵀW_d) ⊙ Σ_t a_t a_tᵀ, which needs only the activations. The
weight refit solves, with x_t the sublayer's kept input channels (a head's context, a neuron's activation) and 1
appended where the projection has a bias, Θ = [Wᵀ; b] minimising

    Σ_tokens ‖x_tᵀΘ − y_t‖² + λ·‖Θ − Θ₀‖²,    λ = ridge · mean diagonal of Σ x xᵀ,

from the normal equations (Σ x xᵀ + λI) Θ = Σ x y_tᵀ + λΘ₀, Θ₀ the cut's own projection (the scales folded in).
Either way the cut model's own inputs are used (its earlier sublayers already corrected), so a sublayer also makes
up for the error that reaches it. A sublayer with more than `MAX_UNITS` kept units (weights: input channels) is left
as it is.

Cost: one forward pass of the reference over the examples, and for each of the 2·L sublayers one pass of the cut
model up to that sublayer (the forward stops there): about L forward passes of the smaller model, and for the weight
refit one (inputs + 1)² solve per sublayer. Memory: the reference's outputs on the kept hidden dimensions,
2·L × tokens × kept hidden × 2 bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .models import Gates, VTransModel
from .prune import KeepSet, Refit, UnitScales, masked_gates, output_projection_of, prune_model
from .settings import CompressSettings, RefitKind
from .shards import Batch, Shards

MAX_UNITS = 8192  # normal equations of more units than this (n² floats) are not formed


def refit_of(s: CompressSettings) -> RefitKind:
    """What a run's corrections refit: the Kwon peer always the scales (their mask tuning), others as set."""
    return "scales" if s.method == "kwon" else s.correction.refit


class _Stop(Exception):
    """Raised inside a forward pass once the sublayer of interest has been seen."""


@dataclass
class _Site:
    layer: int
    kind: str  # "attn" | "ffn"


class _Probe(Gates):
    """Gates that record what one sublayer reads and writes, apply the multipliers found so far, and stop the forward
    after that sublayer. Without `values` they act as no gates (a pruned model, its scales folded in)."""

    def __init__(self, values: Gates | None, site: _Site | None, record_out: bool, stop: bool):
        base = values or Gates()
        super().__init__(base.hidden, base.norm_dims, base.heads, base.attn, base.ffn, base.ffn_layer)
        self.site, self.record_out, self.stop = site, record_out, stop
        self.heads_mult: dict[int, torch.Tensor] = {}
        self.ffn_mult: dict[int, torch.Tensor] = {}
        self.units: torch.Tensor | None = None  # what the site's units wrote before their gates
        self.out: torch.Tensor | None = None  # the site's sublayer output (before the sublayer gate)
        self.outs: dict[tuple[int, str], torch.Tensor] = {}  # reference: every sublayer's write

    def _at_site(self, layer: int, kind: str) -> bool:
        return self.site is not None and self.site.layer == layer and self.site.kind == kind

    def scale_heads(self, layer: int, ctx: torch.Tensor, group_size: int) -> torch.Tensor:
        if self._at_site(layer, "attn"):
            self.units = ctx.detach()
        m = self.heads_mult.get(layer)
        if m is not None:
            ctx = ctx * m.repeat_interleave(group_size).view(1, -1, 1, 1).to(ctx.dtype)
        return super().scale_heads(layer, ctx, group_size)

    def scale_ffn(self, layer: int, act: torch.Tensor) -> torch.Tensor:
        if self._at_site(layer, "ffn"):
            self.units = act.detach()
        m = self.ffn_mult.get(layer)
        if m is not None:
            act = act * m.to(act.dtype)
        return super().scale_ffn(layer, act)

    def write(self, kind: str, layer: int, out: torch.Tensor) -> torch.Tensor:
        written = super().write(kind, layer, out)
        if self.record_out:  # the write into the residual stream, as the pruned model's folded weights produce it
            self.outs[(layer, kind)] = written.detach()
        if self._at_site(layer, kind):
            self.out = out.detach()
            if self.stop:
                raise _Stop()
        return written


def output_projection(model: VTransModel, layer: int, kind: str) -> torch.Tensor | None:
    """The weight (hidden, inputs) through which a sublayer's units write (prune.output_projection_of)."""
    projection = output_projection_of(model, layer, kind)
    return None if projection is None else projection.matrix()


class Corrector:
    """Refits the kept units' scales of cut models on a fixed set of calibration examples."""

    def __init__(
        self,
        shards: Shards,
        indices: np.ndarray,
        device: torch.device,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        ridge: float = 0.001,
        batch_size: int = 32,
        should_stop: Callable[[], None] = lambda: None,
        refit: RefitKind = "scales",
    ):
        order = np.asarray(indices, dtype=np.int64)
        order = order[np.argsort(shards.lengths[order], kind="stable")]  # less padding
        self.batches = [shards.batch(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
        self.device = device
        self.autocast = autocast
        self.ridge = ridge
        self.should_stop = should_stop
        self.refit = refit

    def _run(self, model: VTransModel, batch: Batch, probe: _Probe) -> None:
        b = batch.to(self.device)
        with torch.no_grad(), self.autocast(), contextlib.suppress(_Stop):
            model.run(b.input_ids, b.attention_mask, b.token_type_ids, gates=probe)

    def correct(self, source: VTransModel, keep: KeepSet, scales: UnitScales) -> Refit:
        """The cut's refit: its output projections (weights) or the kept heads' and neurons' scales (scales)
        refitted; hidden and sublayer scales unchanged."""
        was_training = source.training
        source.eval()
        try:
            reference = self._reference(source, keep, scales)
        finally:
            source.train(was_training)
        pruned = prune_model(source, keep, scales).to(self.device).eval()
        if self.refit == "weights":
            return self._refit_weights(pruned, keep, scales, reference)
        return self._refit_scales(pruned, keep, scales, reference)

    def _sites(self, keep: KeepSet):
        for layer in range(len(keep.heads)):
            for kind, units in (("attn", len(keep.heads[layer])), ("ffn", len(keep.ffn[layer]))):
                if units:
                    self.should_stop()
                    yield _Site(layer, kind)

    def _refit_scales(self, pruned: VTransModel, keep: KeepSet, scales: UnitScales, reference) -> Refit:
        s = pruned.shape
        mult_heads: dict[int, torch.Tensor] = {}
        mult_ffn: dict[int, torch.Tensor] = {}
        for site in self._sites(keep):
            units = len((keep.heads if site.kind == "attn" else keep.ffn)[site.layer])
            if units > MAX_UNITS:
                continue
            m = self._fit(pruned, site, reference, mult_heads, mult_ffn, s.layers[site.layer].group_size)
            if m is not None:
                (mult_heads if site.kind == "attn" else mult_ffn)[site.layer] = m
        heads = [h.clone() for h in scales.heads]
        ffn = [f.clone() for f in scales.ffn]
        for layer, m in mult_heads.items():
            heads[layer][keep.heads[layer].sort().values] *= m.cpu().float()
        for layer, m in mult_ffn.items():
            ffn[layer][keep.ffn[layer].sort().values] *= m.cpu().float()
        return Refit(UnitScales(scales.hidden.clone(), heads, scales.attn.clone(), ffn, scales.ffn_layer.clone()))

    def _refit_weights(self, pruned: VTransModel, keep: KeepSet, scales: UnitScales, reference) -> Refit:
        """Each sublayer's output projection refitted in turn, in place in the cut model, so that the next sublayer
        reads the corrected stream."""
        projections = {}
        for site in self._sites(keep):
            projection = output_projection_of(pruned, site.layer, site.kind)
            if projection is None or projection.matrix().shape[1] > MAX_UNITS:
                continue
            fitted = self._fit_projection(pruned, site, reference, projection.matrix().float(), projection.bias)
            if fitted is None:
                continue
            projection.set(*fitted)
            matrix, bias = fitted
            projections[(site.layer, site.kind)] = (matrix.cpu(), None if bias is None else bias.cpu())
        return Refit(scales, projections)

    def _inputs(self, pruned: VTransModel, site: _Site, batch: Batch) -> torch.Tensor | None:
        """The sublayer's input channels to its output projection on the batch's real tokens, (tokens, inputs)."""
        probe = _Probe(None, site, record_out=False, stop=True)
        self._run(pruned, batch, probe)
        if probe.units is None:
            return None
        valid = batch.attention_mask.bool().to(self.device)
        if site.kind == "attn":
            B, h, T, d = probe.units.shape
            return probe.units.transpose(1, 2).reshape(B, T, h * d)[valid].float()
        return probe.units[valid].float()

    def _fit_projection(
        self, pruned: VTransModel, site: _Site, reference, W0: torch.Tensor, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """The ridge regression of the reference's output on the sublayer's inputs: (hidden, inputs) and the bias."""
        G: torch.Tensor | None = None
        C: torch.Tensor | None = None
        for batch, ref in zip(self.batches, reference):
            x = self._inputs(pruned, site, batch)
            if x is None:
                return None
            if bias is not None:
                x = torch.cat([x, torch.ones(len(x), 1, device=x.device)], 1)
            y = ref[(site.layer, site.kind)].float()
            Gb, Cb = (x.t() @ x).double(), (x.t() @ y).double()  # fp32 products, fp64 sums (see _fit)
            G = Gb if G is None else G + Gb
            C = Cb if C is None else C + Cb
        if G is None or C is None:
            return None
        theta0 = W0.t().double()
        if bias is not None:
            theta0 = torch.cat([theta0, bias.detach().double().view(1, -1).to(theta0.device)], 0)
        lam = self.ridge * float(G.diagonal().mean().clamp(min=1e-12))
        A = G + lam * torch.eye(len(G), dtype=G.dtype, device=G.device)
        rhs = C + lam * theta0.to(G.device)
        try:
            theta = torch.linalg.solve(A, rhs)
        except RuntimeError:
            theta = torch.linalg.lstsq(A, rhs).solution
        if not bool(torch.isfinite(theta).all()):
            return None
        theta = theta.float()
        k = W0.shape[1]
        return theta[:k].t().contiguous(), (theta[k] if bias is not None else None)

    def _reference(self, source: VTransModel, keep: KeepSet, scales: UnitScales) -> list[dict[tuple[int, str], torch.Tensor]]:
        """Per batch: every sublayer's write on the kept hidden dimensions and real tokens, with all heads and
        neurons kept (the cut's hidden dimensions, the trained scales)."""
        s = source.shape
        full = KeepSet(keep.hidden, [torch.arange(l.kv_heads) for l in s.layers], [torch.arange(l.ffn) for l in s.layers])
        values = masked_gates(s, full, scales, device=self.device)
        hidden = keep.hidden.sort().values.to(self.device)
        out = []
        for batch in self.batches:
            self.should_stop()
            probe = _Probe(values, None, record_out=True, stop=False)
            self._run(source, batch, probe)
            valid = batch.attention_mask.bool().to(self.device)
            out.append({k: v[valid][:, hidden].to(torch.float16) for k, v in probe.outs.items()})
        return out

    def _fit(
        self,
        pruned: VTransModel,
        site: _Site,
        reference: list[dict[tuple[int, str], torch.Tensor]],
        mult_heads: dict[int, torch.Tensor],
        mult_ffn: dict[int, torch.Tensor],
        group_size: int,
    ) -> torch.Tensor | None:
        W = output_projection(pruned, site.layer, site.kind)
        if W is None:
            return None
        # The products in fp32, their sums over batches in fp64: the ridge (1e-3 of the mean diagonal) dwarfs fp32's
        # rounding of one batch's Gram matrix, and fp64 products took most of a cut's refit on a CPU (for one FFN
        # sublayer of a MiniLM on 256 passages, ~130 GFLOP).
        W = W.float()
        n = None
        G: torch.Tensor | None = None
        c: torch.Tensor | None = None
        for batch, ref in zip(self.batches, reference):
            probe = _Probe(None, site, record_out=False, stop=True)
            probe.heads_mult, probe.ffn_mult = mult_heads, mult_ffn
            self._run(pruned, batch, probe)
            if probe.units is None or probe.out is None:
                return None
            valid = batch.attention_mask.bool().to(self.device)
            y = ref[(site.layer, site.kind)].float()
            out = probe.out[valid].float()
            if site.kind == "attn":
                ctx = probe.units  # (B, query heads, T, d)
                B, h, T, d = ctx.shape
                flat = ctx.transpose(1, 2).reshape(B, T, h * d)[valid].float()  # (N, h·d)
                n = h // group_size
                width = group_size * d
                # Contribution of every key/value group: its query heads' channels through their projection columns.
                R = torch.einsum("ngc,hgc->ngh", flat.view(-1, n, width), W.view(W.shape[0], n, width))  # (N, n, H)
                target = y - (out - R.sum(1))  # y − bias
                Gb = torch.einsum("nih,njh->ij", R, R)
                cb = torch.einsum("nih,nh->i", R, target)
            else:
                a = probe.units[valid].float()  # (N, F)
                n = a.shape[1]
                target = y - (out - a @ W.t())
                Gb = (a.t() @ a) * (W.t() @ W)
                cb = (a * (target @ W)).sum(0)
            Gb, cb = Gb.double(), cb.double()
            G = Gb if G is None else G + Gb
            c = cb if c is None else c + cb
        if G is None or c is None or n is None:
            return None
        lam = self.ridge * float(G.diagonal().mean().clamp(min=1e-12))
        A = G + lam * torch.eye(n, dtype=G.dtype, device=G.device)
        rhs = c + lam * torch.ones(n, dtype=G.dtype, device=G.device)
        try:
            m = torch.linalg.solve(A, rhs)
        except RuntimeError:
            m = torch.linalg.lstsq(A, rhs.unsqueeze(1)).solution.squeeze(1)
        if not bool(torch.isfinite(m).all()):
            return None
        return m.float()


def calibration_indices(n_train: int, fraction: float, examples: int, seed: int) -> np.ndarray:
    """The training examples a run's corrections read: up to `examples` of the data the method trains on (the data
    fraction for Fast- and Faster-VTrans), a seeded choice, the same for the run and for later cuts of its masks."""
    from .shards import subset_order

    pool = subset_order(n_train, fraction, seed) if fraction < 1 else np.arange(n_train)
    rng = np.random.default_rng([seed, 7])
    return np.sort(rng.permutation(pool)[: max(1, int(examples))])
