"""Data-parallel training with `torch.distributed.run` (torchrun): one worker per GPU (NCCL), or per CPU process
(gloo; what the tests run). Every worker holds the whole model and its own slice of each batch; gradients of
the weights and the gates are averaged after every backward pass, so the workers stay identical. Rank 0 writes
the run directory and reports progress; stop and divergence are decided together, so no worker is left
waiting in a collective.

    python -m torch.distributed.run --standalone --nproc_per_node N -m vtrans.worker <launch.json>
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def average_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        if not self.active:
            return
        import torch.distributed as dist

        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g))
            offset += n

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag true on some worker (one all-reduce for all of them)."""
        if not self.active:
            return tuple(flags)
        import torch.distributed as dist

        t = torch.tensor([float(f) for f in flags], device=self.device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in t.tolist())

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def device(self) -> torch.device:
        import torch.distributed as dist

        return torch.device("cuda", self.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")


SINGLE = Dist()


def from_environment() -> Dist:
    """The worker's place, from the variables torchrun sets."""
    return Dist(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))
