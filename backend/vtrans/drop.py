"""The student with its closed units physically removed, for the rest of phase 1 after the commit (`vib.dropClosed`).

Why it is the same training: a closed unit's gate is exactly 0 (no noise), so it writes nothing, and the weights it
reads or writes get exactly zero gradient; norm statistics are weighted by the keep probabilities, 0 for a closed
hidden dimension. The smaller model with the open units' gate values therefore computes the same outputs and the same
gradients for every open unit, at the cost of its own size: after a commit at keep 0.3, about a third of the
encoder's work. Two things differ and neither reaches a kept unit: dropout draws masks of the smaller shapes, and the
removed weights stop moving (AdamW would go on decaying them), which no cut can see since a closed unit is never kept.

The full-size state stays the one interface: checkpoints and `masked-weights.safetensors` hold the full weights (and
AdamW's moments) with the trained open entries written back, so a resumed run, the sweep and the cuts read what they
read without dropping. Memory: the full weights and moments at the drop, on the CPU.

Which entries of which source tensor each pruned tensor holds comes from the family's own slicing
(`Family.slice_weights`) run over tensors of flat indices, so this module knows no family's weight names.
"""

from __future__ import annotations

import copy
from typing import Any, cast

import torch
from torch import nn

from .models import Gates, VTransModel
from .models.common import Slicer
from .prune import KeepSet, UnitScales, prune_model
from .structure import family_of
from .vib import VIBGates


def open_units(gates: VIBGates) -> KeepSet:
    """The keep-set of the open units; a sublayer whose own gate is closed keeps none (it writes nothing)."""
    s = gates.shape

    def opened(g: str) -> list[torch.Tensor]:
        return [torch.nonzero(~c.cpu()).flatten() for c in gates.split(g, gates.closed(g))]

    attn_on, ffn_on = (~gates.closed("attn")).cpu().tolist(), (~gates.closed("ffn_layer")).cpu().tolist()
    heads = [h if on else h[:0] for h, on in zip(opened("heads"), attn_on)]
    ffn = [f if on else f[:0] for f, on in zip(opened("ffn"), ffn_on)]
    assert len(heads) == s.n_layers
    return KeepSet(torch.nonzero(~gates.closed("hidden").cpu()).flatten(), heads, ffn)


def source_index(model: VTransModel, keep: KeepSet) -> dict[str, torch.Tensor]:
    """For every tensor of the pruned state dict, the flat index in its source tensor of each of its entries."""
    s = model.shape
    index = {k: torch.arange(v.numel(), dtype=torch.float64).view(v.shape) for k, v in model.state_dict().items()}
    st = Slicer(index)
    family_of(s.family).slice_weights(s, keep, UnitScales.ones(s), st)
    out: dict[str, torch.Tensor] = {}
    for name, t in st.out.items():
        ix = t.round().long()
        if not torch.equal(ix.double(), t) or (ix.numel() and (int(ix.min()) < 0 or int(ix.max()) >= index[name].numel())):
            raise AssertionError(f"{s.family}'s slicing of {name} is not a selection of entries: it cannot be written back")
        out[name] = ix
    return out


class DroppedStudent:
    """The smaller student and the maps between its tensors and the full ones."""

    def __init__(self, full: VTransModel, keep: KeepSet, device: torch.device):
        keep = KeepSet(keep.hidden.sort().values, [h.sort().values for h in keep.heads], [f.sort().values for f in keep.ffn])
        self.width = full.shape.hidden
        self.index = source_index(full, keep)
        self.full = {k: v.detach().cpu().clone() for k, v in full.state_dict().items()}
        # A parameter's place in the full optimiser's state dict, by name.
        self.full_position = {n: i for i, (n, _) in enumerate(full.named_parameters())}
        self.model = prune_model(full, keep).to(device)
        self.model.body.checkpointing = full.body.checkpointing
        for p in self.model.parameters():
            p.requires_grad_(True)
        self._hidden = keep.hidden.to(device)
        self._heads = [h.to(device) for h in keep.heads]
        self._ffn = [f.to(device) for f in keep.ffn]
        self._full_opt: dict | None = None

    # -- gates and hidden states --------------------------------------------------------------------------------
    def gates(self, g: Gates) -> Gates:
        """The full model's gates restricted to the open units (what the smaller model takes)."""

        def pick(t: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
            return None if t is None else t.index_select(-1, idx)

        return Gates(
            hidden=pick(g.hidden, self._hidden),
            norm_dims=pick(g.norm_dims, self._hidden),
            heads=[pick(h, i) if len(i) else None for h, i in zip(g.heads, self._heads)],
            attn=g.attn,
            ffn=[pick(f, i) if len(i) else None for f, i in zip(g.ffn, self._ffn)],
            ffn_layer=g.ffn_layer,
        )

    def widen(self, h: torch.Tensor) -> torch.Tensor:
        """A hidden state of the smaller model at the full width, zeros where dimensions were dropped: what the full
        model's masked hidden state is, so the hidden-state distillation compares the same tensors."""
        return h.new_zeros(*h.shape[:-1], self.width).index_copy(-1, self._hidden, h)

    # -- weights and optimiser state ----------------------------------------------------------------------------
    def _write_back(self, into: torch.Tensor, name: str, value: torch.Tensor) -> torch.Tensor:
        """`into` (a full-size tensor, changed in place) with the smaller tensor's entries written at their places."""
        into.view(-1)[self.index[name].view(-1)] = value.detach().cpu().reshape(-1).to(into.dtype)
        return into

    def full_state(self) -> dict[str, torch.Tensor]:
        """The full state dict: the weights at the drop with the trained open entries written back."""
        pruned = self.model.state_dict()
        return {k: self._write_back(v.clone(), k, pruned[k]) if k in self.index else v.clone() for k, v in self.full.items()}

    def _pairs(self):
        """(name, full optimiser position, parameter) of every smaller parameter that has a full twin."""
        for name, p in self.model.named_parameters():
            if name in self.index and name in self.full_position:
                yield name, self.full_position[name], p

    def optimizer(self, full_opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """A new optimiser of the smaller model's weights (the full one's kind and hyperparameters, one parameter
        group), its per-parameter state sliced from the full one's, which is kept (on the CPU) for
        `full_optimizer_state`."""
        assert len(full_opt.param_groups) == 1, "one parameter group"
        full = full_opt.state_dict()
        self._full_opt = {
            "state": {i: {k: _cpu(v) for k, v in st.items()} for i, st in full["state"].items()},
            "param_groups": copy.deepcopy(full["param_groups"]),
        }
        opt = cast(Any, type(full_opt))(self.model.parameters())
        opt.param_groups[0].update({k: v for k, v in full_opt.param_groups[0].items() if k != "params"})
        for name, i, p in self._pairs():
            if i in self._full_opt["state"]:
                opt.state[p] = {k: self._slice(name, v, p) for k, v in self._full_opt["state"][i].items()}
        return opt

    def _slice(self, name: str, v: torch.Tensor, like: nn.Parameter) -> torch.Tensor:
        if not isinstance(v, torch.Tensor) or v.dim() == 0:
            return _cpu(v)  # AdamW's step count
        return v.reshape(-1)[self.index[name].view(-1)].view(like.shape).to(like.device).clone()

    def full_optimizer_state(self, opt: torch.optim.Optimizer) -> dict:
        """The full optimiser's state dict with the smaller one's moments written back (what a checkpoint holds)."""
        assert self._full_opt is not None, "optimizer() made the smaller optimiser"
        out = copy.deepcopy(self._full_opt)
        for name, i, p in self._pairs():
            state = opt.state.get(p)
            if not state or i not in out["state"]:
                continue
            for k, v in state.items():
                tensor = isinstance(v, torch.Tensor) and v.dim() > 0
                out["state"][i][k] = self._write_back(out["state"][i][k], name, v) if tensor else _cpu(v)
        return out


def _cpu(v: Any) -> Any:
    """An optimiser state value on the CPU, copied (tensors), or as it is."""
    return v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v
