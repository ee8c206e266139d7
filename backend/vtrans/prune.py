"""Physical pruning: from a keep-set and per-unit scales (the VIB μ), a smaller model whose logits equal the
hard-masked model's.

The units (docs/algorithm.md): hidden dimensions (one set for the whole residual stream), attention heads per key/value
group, FFN neurons; a layer whose heads (neurons) are all gone loses its attention (FFN) sublayer. Scales fold
into the weights that produce each unit's output: hidden scales into embeddings, norm weights and output
projection rows (a tied LM head gets the inverse scales in the final norm instead); head scales into the output
projection's columns; neuron scales into the down projection's columns; sublayer scales into the output
projection. Norm statistics cover only the kept hidden dimensions, so the
masked model computes them the same way (`Gates.norm_dims`).

Which weights those are, by name, each family knows (`Family.slice_weights` in models/<family>.py); this module is
the generic part: keep-sets, scales, the hard-mask gates that equal a pruned model, and `prune_model`, which also
places the output projections a least-squares correction refitted (`Refit`, correction.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from .checkpoint import load_state
from .models import Gates, VTransModel, build_model
from .models.common import Slicer, group_channels, query_channels
from .structure import LayerShape, ModelShape, family_of, shape_from_config

__all__ = ["KeepSet", "Refit", "UnitScales", "masked_gates", "prune_model", "pruned_config", "query_channels", "group_channels"]


@dataclass
class KeepSet:
    """Indices of kept units: hidden dims, key/value groups per layer, FFN neurons per layer; and, for the
    uniform output shape of BERT/RoBERTa (whose standard config ties the pooler's width to the hidden width), the
    kept outputs of the pooler / classifier dense layer (None: all, the heterogeneous shape)."""

    hidden: torch.Tensor
    heads: list[torch.Tensor]
    ffn: list[torch.Tensor]
    head_dims: torch.Tensor | None = None

    @staticmethod
    def full(s: ModelShape) -> KeepSet:
        return KeepSet(torch.arange(s.hidden), [torch.arange(l.kv_heads) for l in s.layers], [torch.arange(l.ffn) for l in s.layers])

    def counts(self) -> dict:
        return {"hidden": len(self.hidden), "heads": [len(h) for h in self.heads], "ffn": [len(f) for f in self.ffn]}

    def pruned_shape(self, s: ModelShape) -> ModelShape:
        layers = [LayerShape(len(g) * l.group_size, len(g), len(f)) for l, g, f in zip(s.layers, self.heads, self.ffn)]
        p = s.with_layers(len(self.hidden), layers)
        return p if self.head_dims is None else replace(p, head_hidden=len(self.head_dims))


@dataclass
class UnitScales:
    """Per-unit multipliers (VIB μ of kept units); ones when the keep-set is applied as a plain mask."""

    hidden: torch.Tensor
    heads: list[torch.Tensor]
    attn: torch.Tensor
    ffn: list[torch.Tensor]
    ffn_layer: torch.Tensor

    @staticmethod
    def ones(s: ModelShape) -> UnitScales:
        return UnitScales(
            torch.ones(s.hidden),
            [torch.ones(l.kv_heads) for l in s.layers],
            torch.ones(s.n_layers),
            [torch.ones(l.ffn) for l in s.layers],
            torch.ones(s.n_layers),
        )


Site = tuple[int, str]  # (layer, "attn" | "ffn"): one sublayer


@dataclass
class Refit:
    """What a cut folds into its pruned model: the units' scales, and the output projections (weight and bias, in
    the pruned model's own layout) that the least-squares correction refitted; a sublayer without one keeps the
    source's weights with the scales folded in."""

    scales: UnitScales
    projections: dict[Site, tuple[torch.Tensor, torch.Tensor | None]] = field(default_factory=dict)


@dataclass
class OutputProjection:
    """The weight through which a sublayer's units write into the residual stream, its bias, and the axis of the
    weight that indexes the units' channels (1 for nn.Linear's (out, in), 0 for GPT-2's Conv1D (in, out))."""

    weight: torch.Tensor
    bias: nn.Parameter | None
    axis: int

    def matrix(self) -> torch.Tensor:
        """The weight as (hidden, inputs), detached."""
        w = self.weight.detach()
        return w if self.axis == 1 else w.t()

    def set(self, matrix: torch.Tensor, bias: torch.Tensor | None) -> None:
        """Places a refitted (hidden, inputs) matrix and bias, in the weight's layout and dtype."""
        with torch.no_grad():
            self.weight.copy_(matrix if self.axis == 1 else matrix.t())
            if self.bias is not None and bias is not None:
                self.bias.copy_(bias)


def output_projection_of(model: VTransModel, layer: int, kind: str) -> OutputProjection | None:
    """A sublayer's output projection: the last of the block's unit weights of that kind (every family lists the
    output projection last; tests/test_algorithm.py checks it), with the bias of the module that holds it."""
    block = model.body.blocks()[layer]
    units = [u for u in block.unit_weights() if u.kind == ("heads" if kind == "attn" else "ffn")]
    if not units:
        return None
    u = units[-1]
    holder = next((m for m in block.modules() if getattr(m, "weight", None) is u.weight), None)
    bias = getattr(holder, "bias", None)
    return OutputProjection(u.weight, bias if isinstance(bias, nn.Parameter) else None, u.axis)


def masked_gates(s: ModelShape, keep: KeepSet, scales: UnitScales | None = None, device: torch.device | str | None = None) -> Gates:
    """Gates that apply a keep-set as a hard mask (times the scales) to the unpruned model."""
    scales = scales or UnitScales.ones(s)

    def mask(n: int, idx: torch.Tensor) -> torch.Tensor:
        m = torch.zeros(n)
        m[idx] = 1.0
        return m

    def to_device(t: torch.Tensor) -> torch.Tensor:
        return t if device is None else t.to(device)

    hidden_mask = mask(s.hidden, keep.hidden)
    return Gates(
        hidden=to_device(scales.hidden * hidden_mask),
        norm_dims=to_device(hidden_mask),
        heads=[to_device(scales.heads[i] * mask(l.kv_heads, keep.heads[i])) for i, l in enumerate(s.layers)],
        attn=[to_device(scales.attn[i] * float(len(keep.heads[i]) > 0)) for i in range(s.n_layers)],
        ffn=[to_device(scales.ffn[i] * mask(l.ffn, keep.ffn[i])) for i, l in enumerate(s.layers)],
        ffn_layer=[to_device(scales.ffn_layer[i] * float(len(keep.ffn[i]) > 0)) for i in range(s.n_layers)],
    )


def pruned_config(s: ModelShape, p: ModelShape) -> dict[str, Any]:
    """The source config with the pruned sizes (docs/model-format.md)."""
    return family_of(s.family).pruned_config(s, p)


def prune_model(model: VTransModel, keep: KeepSet, scales: UnitScales | Refit | None = None) -> VTransModel:
    """A new, smaller model with only the kept units and the scales folded in, and a refit's output projections in
    place (the source is left unchanged)."""
    s = model.shape
    refit = scales if isinstance(scales, Refit) else Refit(scales or UnitScales.ones(s))
    scales = refit.scales
    head_dims = None if keep.head_dims is None else keep.head_dims.sort().values
    keep = KeepSet(keep.hidden.sort().values, [h.sort().values for h in keep.heads], [f.sort().values for f in keep.ffn], head_dims)
    target = build_model(shape_from_config(pruned_config(s, keep.pruned_shape(s)), "pruned config", s.task))
    st = Slicer({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
    with torch.no_grad():
        family_of(s.family).slice_weights(s, keep, scales, st)
    load_state(target, st.out, "pruned weights")
    for (layer, kind), (matrix, bias) in refit.projections.items():
        projection = output_projection_of(target, layer, kind)
        if projection is not None:
            projection.set(matrix, bias)
    return target.eval()
