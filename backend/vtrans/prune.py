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
the generic part: keep-sets, scales, the hard-mask gates that equal a pruned model, and `prune_model`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from .checkpoint import load_state
from .models import Gates, VTransModel, build_model
from .models.common import Slicer, group_channels, query_channels
from .structure import LayerShape, ModelShape, family_of, shape_from_config

__all__ = ["KeepSet", "UnitScales", "masked_gates", "prune_model", "pruned_config", "query_channels", "group_channels"]


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


def prune_model(model: VTransModel, keep: KeepSet, scales: UnitScales | None = None) -> VTransModel:
    """A new, smaller model with only the kept units and the scales folded in (the source is left unchanged)."""
    s = model.shape
    scales = scales or UnitScales.ones(s)
    head_dims = None if keep.head_dims is None else keep.head_dims.sort().values
    keep = KeepSet(keep.hidden.sort().values, [h.sort().values for h in keep.heads], [f.sort().values for f in keep.ffn], head_dims)
    target = build_model(shape_from_config(pruned_config(s, keep.pruned_shape(s)), "pruned config", s.task))
    st = Slicer({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
    with torch.no_grad():
        family_of(s.family).slice_weights(s, keep, scales, st)
    load_state(target, st.out, "pruned weights")
    return target.eval()
