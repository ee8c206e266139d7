"""Data-parallel training with `torch.distributed.run` (torchrun): one worker per GPU (NCCL), or per CPU process
(gloo; what the tests run). Every worker reads its own slice of each global batch. The model's weights, when they
train, are synchronised by PyTorch's engines: `DistributedDataParallel` (a full copy per worker, gradients
all-reduced in buckets while the backward runs) or FSDP's `fully_shard` (each worker holds a shard of the weights,
gradients and optimizer state; the layers are gathered for their forward and backward). The VIB gates are a few
thousand numbers per model: every worker keeps all of them, draws the whole global batch's gate noise from one
shared stream (so that N workers see exactly the noise one process would) and averages their gradients in one
all-reduce. Rank 0 writes the run directory and reports progress; stop and divergence are decided together, so no
worker is left waiting in a collective.

    python -m torch.distributed.run --standalone --nproc_per_node N -m vtrans.worker <launch.json>
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import nn

Engine = Literal["single", "ddp", "fsdp"]

# Bytes per trained parameter: the fp32 weight, its gradient and AdamW's two moments.
TRAINED_BYTES_PER_PARAM = 16


def choose_engine(parallel: str, world: int, trained_params: int, memory_per_worker: int | None) -> Engine:
    """The engine of a run: one process needs none; `ddp` or `fsdp` as asked; `auto` shards (FSDP) only when N
    full copies of the trained state would not fit the memory each worker has, since DDP is faster when they do."""
    if world <= 1:
        return "single"
    if parallel in ("ddp", "fsdp"):
        return parallel  # type: ignore[return-value]
    if trained_params == 0 or memory_per_worker is None:
        return "ddp"
    return "fsdp" if trained_params * TRAINED_BYTES_PER_PARAM > 0.8 * memory_per_worker else "ddp"


class Runner(nn.Module):
    """`model.run(...)` as a module's forward: DDP synchronises what goes through its wrapper's forward."""

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        return cast(Any, self.model).run(*args, **kwargs)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    engine: Engine = "single"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def sharded(self) -> bool:
        return self.engine == "fsdp"

    # -- the model's weights ---------------------------------------------------------------------------------------
    def wrap(self, model: Any):
        """What a training step calls instead of `model.run`: the model itself (one process), a DDP wrapper, or
        the model sharded in place by `fully_shard` (each block its own unit, the rest in the root unit)."""
        if self.engine == "ddp":
            return nn.parallel.DistributedDataParallel(Runner(model), device_ids=self._device_ids()).__call__
        if self.engine == "fsdp":
            from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

            for block in model.body.blocks():
                fully_shard(block)
            fully_shard(model)
            register_fsdp_forward_method(model, "run")
        return model.run

    def _device_ids(self) -> list[int] | None:
        return [self.local_rank] if self.device().type == "cuda" else None

    def full_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The model's whole state dict on the CPU: gathered from the shards under FSDP (a collective: every worker
        calls it; workers other than rank 0 get an empty dict)."""
        if self.sharded:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            return cast(dict, get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)))
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def load_full_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        if self.sharded:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

            set_model_state_dict(model, cast(dict, state), options=StateDictOptions(full_state_dict=True))
        else:
            model.load_state_dict(state)

    def full_optimizer_state(self, model: nn.Module, opt: torch.optim.Optimizer) -> dict:
        if self.sharded:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

            return get_optimizer_state_dict(model, opt, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return opt.state_dict()

    def load_full_optimizer_state(self, model: nn.Module, opt: torch.optim.Optimizer, state: dict) -> None:
        if self.sharded:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(model, opt, state, options=StateDictOptions(full_state_dict=True))
        else:
            opt.load_state_dict(state)

    # -- what every worker keeps whole -----------------------------------------------------------------------------
    def average_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Averages the gradients of parameters every worker keeps whole (the gates), in one all-reduce."""
        if not self.active:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        self.mean_(flat)
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g))
            offset += n

    def mean_(self, t: torch.Tensor) -> torch.Tensor:
        """The mean over the workers, in place."""
        self.sum_(t)
        t /= self.world
        return t

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """The sum over the workers, in place."""
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(t)
        return t

    def rows(self, global_batch: int) -> slice:
        """This worker's rows of a global batch (the examples `Compressor.batch_for` gives it)."""
        return slice(self.rank, None, self.world) if self.active and global_batch >= self.world else slice(None)

    def loss_share(self, rows: int, global_batch: int) -> float:
        """What a worker's batch-mean loss is multiplied by so that the average of the workers' gradients is the
        gradient of the global batch's mean, also when the batch does not split evenly (`rows` of `global_batch`)."""
        if not self.active or global_batch < self.world:
            return 1.0
        return rows * self.world / global_batch

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
