"""A retraining-free correction of a cut model (after Kwon et al. 2022, "A Fast Post-Training Pruning Framework for
Transformers"): the scales of the kept heads and FFN neurons are refitted, sublayer by sublayer, by ridge-regularised
least squares, so that each sublayer's output reproduces the model before the cut.

The reference ("the unpruned model") is the source weights with the trained gates' scales and the cut's hidden
dimensions but every head and neuron kept: for Faster-VTrans the frozen model with its gates, for VTrans the
phase-1 weights with theirs. A sublayer's output in the cut model is Σ_u m_u·r_u + b, with r_u what kept unit u
writes through the output projection (a head's context times its columns of the projection, a neuron's activation
times its column of the down projection) and b the projection's bias; the multipliers m (starting at 1) minimise

    Σ_tokens ‖Σ_u m_u·r_u + b − y‖² + λ·‖m − 1‖²,    λ = ridge · mean diagonal of the normal equations,

with y the reference's output of that sublayer on the kept hidden dimensions. The cut model's own inputs are used
(its earlier sublayers already corrected), so a sublayer also makes up for the error that reaches it. For heads the
normal equations come from the contributions directly; for neurons as (W_dᵀW_d) ⊙ Σ_t a_t a_tᵀ, which needs only
the activations. A sublayer with more than `MAX_UNITS` kept units is left as it is.

Cost: one forward pass of the reference over the examples, and for each of the 2·L sublayers one pass of the cut
model up to that sublayer (the forward stops there): about L forward passes of the smaller model. Memory: the
reference's outputs on the kept hidden dimensions, 2·L × tokens × kept hidden × 2 bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .models import Gates, VTransModel
from .prune import KeepSet, UnitScales, masked_gates, prune_model
from .shards import Batch, Shards

MAX_UNITS = 8192  # normal equations of more units than this (n² floats) are not formed


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
    """The weight (hidden, inputs) through which a sublayer's units write: the last of the block's unit weights of
    that kind (every family lists the output projection last; tests/test_correction.py checks it)."""
    units = [u for u in model.body.blocks()[layer].unit_weights() if u.kind == ("heads" if kind == "attn" else "ffn")]
    if not units:
        return None
    u = units[-1]
    w = u.weight.detach()
    return w if u.axis == 1 else w.t()  # nn.Linear (out, in) | GPT-2's Conv1D (in, out)


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
    ):
        order = np.asarray(indices, dtype=np.int64)
        order = order[np.argsort(shards.lengths[order], kind="stable")]  # less padding
        self.batches = [shards.batch(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
        self.device = device
        self.autocast = autocast
        self.ridge = ridge
        self.should_stop = should_stop

    def _run(self, model: VTransModel, batch: Batch, probe: _Probe) -> None:
        b = batch.to(self.device)
        with torch.no_grad(), self.autocast(), contextlib.suppress(_Stop):
            model.run(b.input_ids, b.attention_mask, b.token_type_ids, gates=probe)

    def correct(self, source: VTransModel, keep: KeepSet, scales: UnitScales) -> UnitScales:
        """The scales with those of the kept heads and neurons refitted (hidden and sublayer scales unchanged)."""
        s = source.shape
        was_training = source.training
        source.eval()
        try:
            reference = self._reference(source, keep, scales)
        finally:
            source.train(was_training)
        pruned = prune_model(source, keep, scales).to(self.device).eval()
        mult_heads: dict[int, torch.Tensor] = {}
        mult_ffn: dict[int, torch.Tensor] = {}
        for layer in range(s.n_layers):
            for kind, units in (("attn", len(keep.heads[layer])), ("ffn", len(keep.ffn[layer]))):
                if units == 0 or units > MAX_UNITS:
                    continue
                self.should_stop()
                m = self._fit(pruned, _Site(layer, kind), reference, mult_heads, mult_ffn, s.layers[layer].group_size)
                if m is not None:
                    (mult_heads if kind == "attn" else mult_ffn)[layer] = m
        heads = [h.clone() for h in scales.heads]
        ffn = [f.clone() for f in scales.ffn]
        for layer, m in mult_heads.items():
            heads[layer][keep.heads[layer].sort().values] *= m.cpu().float()
        for layer, m in mult_ffn.items():
            ffn[layer][keep.ffn[layer].sort().values] *= m.cpu().float()
        return UnitScales(scales.hidden.clone(), heads, scales.attn.clone(), ffn, scales.ffn_layer.clone())

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
