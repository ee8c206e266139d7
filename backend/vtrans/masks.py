"""The masks a run leaves for re-thresholding: the final VIB gates (masks.safetensors) and snapshots taken in
phase 1 whenever the expected size first fell below one of the sweep's budgets (mask-snapshots.safetensors).

Why snapshots: a unit whose gate closed stops receiving gradient, so its μ sits near 0 in the final masks and
re-adding it at a larger budget adds almost nothing. The gates as they stood when the ramping target passed
that budget rank and scale the units for it instead, from the same single training run.

When phase 1 trains the weights too (vtrans, fast), each snapshot also keeps the weights of that moment
(`checkpoints/snapshot-<b>.safetensors`, fp16), since the final weights have adapted to the final, smaller
model. A model at budget b is cut from the snapshot with the smallest budget ≥ b; at or below the run's own
target, from the final masks and weights.
"""

from __future__ import annotations

import os

import torch

from .safetensors_io import load_file, save_file
from .structure import ModelShape
from .vib import UnitGates, VIBSettings

SNAPSHOT_FILE = "mask-snapshots.safetensors"


class MaskLadder:
    def __init__(
        self,
        shape: ModelShape,
        settings: VIBSettings,
        final: dict[str, torch.Tensor],
        snapshots: dict[str, dict[str, torch.Tensor]] | None = None,
        method: str = "fast",
    ):
        self.shape = shape
        self.settings = settings
        self.method = method
        self.final = self._gates(final)
        self.snapshots = {label: self._gates(state) for label, state in (snapshots or {}).items()}

    def _gates(self, state: dict[str, torch.Tensor]) -> UnitGates:
        from .baselines import make_gates

        g = make_gates(self.method, self.shape, self.settings)
        g.load(state)
        return g

    @staticmethod
    def load(run_dir: str, shape: ModelShape, settings: VIBSettings, method: str) -> MaskLadder:
        final = load_file(os.path.join(run_dir, "masks.safetensors"))
        snaps: dict[str, dict[str, torch.Tensor]] = {}
        path = os.path.join(run_dir, SNAPSHOT_FILE)
        if os.path.exists(path):
            for key, t in load_file(path).items():
                label, name = key.split("/", 1)
                snaps.setdefault(label, {})[name] = t
        return MaskLadder(shape, settings, final, snaps, method)

    @staticmethod
    def save_snapshots(run_dir: str, snapshots: dict[str, dict[str, torch.Tensor]]) -> None:
        flat = {f"{label}/{name}": t for label, state in snapshots.items() for name, t in state.items()}
        if flat:
            save_file(flat, os.path.join(run_dir, SNAPSHOT_FILE), metadata={"format": "vtrans-vib-snapshots", "version": "1"})

    def label_for(self, keep: float, run_keep: float) -> str | None:
        """The snapshot label to cut a model at `keep` (of the run's budget kind) from, or None for the final masks:
        at or below the run's own target, and above every snapshot."""
        if keep <= run_keep:
            return None
        above = sorted(float(label) for label in self.snapshots if float(label) >= keep)
        return str(above[0]) if above else None

    def gates(self, label: str | None) -> UnitGates:
        return self.final if label is None else self.snapshots[label]


def snapshot_weights_path(run_dir: str, label: str) -> str:
    return os.path.join(run_dir, "checkpoints", f"snapshot-{label}.safetensors")


def save_snapshot_state(run_dir: str, label: str, state: dict[str, torch.Tensor]) -> None:
    save_file({k: v.detach().to("cpu", torch.float16) for k, v in state.items()}, snapshot_weights_path(run_dir, label))


def load_snapshot_weights(run_dir: str, label: str | None) -> dict[str, torch.Tensor] | None:
    if label is None:
        return None
    path = snapshot_weights_path(run_dir, label)
    return {k: v.float() for k, v in load_file(path).items()} if os.path.exists(path) else None
