"""The memory a compression needs, estimated before anything large is allocated, and the check that refuses a run
that would not fit (docs/algorithm.md, "Memory").

The model of the peak (bytes; P parameters, w bytes per element of the frozen copy in its stored dtype, N = batch ×
tokens per example of one worker's batch, L layers, H hidden, F the widest FFN, V the vocabulary):

    frozen        P·w                the teacher (Faster-VTrans: also the student, one copy shared)
    trained       16·P               VTrans / Fast-VTrans: the student in fp32, its gradients and AdamW's two states;
                                     0 for Faster-VTrans, whose only trained state is the gates
    cast cache    2·P                trained fp32 weights under bf16/fp16 autocast keep a half copy for the backward
    optimizer     8·max tensor (CPU) AdamW's temporaries: one tensor at a time on a CPU, every tensor at once
                  4·P (CUDA)         (foreach) on a GPU
    gates         40·units           μ, log σ², Fisher, counters, their gradients and Adam states
    activations   L·N·(a_H·H + a_F·F)  saved for the backward (per family, measured with saved-tensor hooks);
                                     with activation checkpointing L·N·H·c + one layer's a_H·H + a_F·F
    logits        8·N·V·4 (LM)       logits, the shifted copy, log-softmax, the distillation's copies, gradients
    hidden MSE    3·L·N·H·4          the teacher's states and both fp32 copies the loss takes
    backward      N·(a_H·H + a_F·F)  the gradients of one layer's activations
    teacher cache min(distill.cacheMb, what the phase's examples need)
    process       the interpreter and torch (measured here: about 400 MiB resident on a CPU)

    peak = frozen + trained + gates + teacher cache + process + max(step, fill), where step is the sum of the
    transient parts above and fill the teacher cache's filling before the first step (64 examples per teacher
    forward: N_fill·V·(c + 8) for an LM, c the compute dtype's bytes, + 6·L·N_fill·H for the hidden states), when
    only the trained fp32 weights exist (AdamW's states and gradients come with the first step).

The activation coefficients are bytes per token per layer of the phase-1 forward with VIB gates (the gates' and
norms' extra products included), measured on small models of each family and exact for them to a few percent:
they scale with H and F only (PyTorch's attention kernel keeps no T × T matrix). On a GPU the process overhead
and the teacher cache are host memory, the rest is checked against the device's free memory.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .errors import UserError
from .structure import ModelShape, count_params

if TYPE_CHECKING:
    from .train import Compressor

# Bytes per token per layer saved for the backward: (per hidden dimension, per FFN neuron), fp32 compute and half
# (bf16/fp16 autocast) compute. Measured with torch.autograd.graph.saved_tensors_hooks on the phase-1 forward.
ACTIVATION_BYTES: dict[str, dict[str, tuple[float, float]]] = {
    "llama": {"fp32": (56.0, 16.0), "half": (36.0, 8.0)},
    "bert": {"fp32": (64.0, 8.0), "half": (48.0, 4.0)},
    "roberta": {"fp32": (64.0, 8.0), "half": (48.0, 4.0)},
    "gpt2": {"fp32": (64.0, 20.0), "half": (48.0, 10.0)},
}
PROCESS_BYTES = 400 * 2**20  # the Python interpreter with torch and the backend imported (CPU resident)
CUDA_RESERVE = 0.05  # the caching allocator's rounding and fragmentation, as a share of the device estimate
LOGIT_COPIES = 8
# Activation checkpointing is on by default from this many parameters: a LLaMA-shaped model of 1B parameters
# (hidden 2048, 16 layers) at the default batch (32 × 128 tokens) saves about 4 GiB of activations in bf16, as much
# as its frozen weights and a quarter of VTrans's trained state; below it the activations are small next to the
# weights and the third forward pass that checkpointing costs buys little.
CHECKPOINT_FROM_PARAMS = 1_000_000_000


@dataclass
class MemoryEstimate:
    """Bytes of each part of the peak (the module docstring's model) and their total."""

    parts: dict[str, int]
    device: str  # cpu | cuda
    device_bytes: int  # what must fit the device: all of it on a CPU, all but host parts on a GPU
    total_bytes: int
    activation_checkpointing: bool

    def describe(self) -> str:
        shown = sorted(((k, v) for k, v in self.parts.items() if v >= 2**20), key=lambda kv: -kv[1])
        return ", ".join(f"{k} {gib(v)}" for k, v in shown)


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def dtype_bytes(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def checkpointing_on(setting: str, params: int) -> bool:
    """`activationCheckpointing`: on, off, or auto (on from `CHECKPOINT_FROM_PARAMS` parameters)."""
    if setting == "auto":
        return params >= CHECKPOINT_FROM_PARAMS
    return setting == "on"


def largest_tensor(shape: ModelShape) -> int:
    """Elements of the model's largest weight (the embedding table or one FFN matrix)."""
    widest = max((l.ffn for l in shape.layers), default=0)
    return max(shape.vocab * shape.hidden, widest * shape.hidden, shape.hidden * shape.hidden)


def estimate_peak(
    shape: ModelShape,
    *,
    train_weights: bool,
    frozen_dtype: torch.dtype,
    half_compute: bool,
    batch_size: int,
    seq_len: int,
    device: str,
    checkpointing: bool,
    hidden_mse: bool,
    distill: bool,
    cache_bytes: int = 0,
    fill_tokens: int = 0,
    shards: int = 1,
) -> MemoryEstimate:
    """The peak of phase 1 (the larger phase: the full model trains, with the teacher beside it): the resident state
    plus the larger of a step's transient memory and the teacher cache's fill (`fill_tokens` per teacher forward).
    `shards`: the workers FSDP splits the trained state over (1: every worker holds all of it)."""
    params = count_params(shape)["total"]
    n = batch_size * seq_len
    layers = shape.n_layers
    widest = max((l.ffn for l in shape.layers), default=0)
    a_h, a_f = ACTIVATION_BYTES.get(shape.family, ACTIVATION_BYTES["llama"])["half" if half_compute else "fp32"]
    per_layer = n * (a_h * shape.hidden + a_f * widest)
    act_bytes = 2 if half_compute else 4  # the residual stream a checkpointed layer keeps
    units = shape.hidden + sum(l.kv_heads + l.ffn for l in shape.layers) + 2 * layers
    compute_bytes = 2 if half_compute else 4
    resident = {
        "frozen weights": params * dtype_bytes(frozen_dtype),
        "trained weights, gradients, AdamW": 16 * params // shards if train_weights else 0,
        "gates": 40 * units,
        "teacher cache": cache_bytes,
        "process": PROCESS_BYTES,
    }
    step = {
        "autocast copies": 2 * params if train_weights and half_compute else 0,
        "optimizer temporaries": (4 * params if device == "cuda" else 8 * largest_tensor(shape)) if train_weights else 0,
        "activations": int(layers * n * shape.hidden * act_bytes + per_layer if checkpointing else layers * per_layer),
        "backward": int(per_layer),
        "logits": LOGIT_COPIES * n * shape.vocab * 4 if shape.task == "lm" else 0,
        "hidden MSE": 3 * layers * n * shape.hidden * 4 if distill and hidden_mse else 0,
    }
    # Filling the teacher cache runs the teacher on `fill_tokens` at a time before the first step, when AdamW's states
    # do not exist yet: the logits in the compute dtype, their fp32 quotient by T and its log-softmax (LM), and the
    # hidden states (fp32 and their fp16 copy).
    fill = 0
    if fill_tokens:
        fill = fill_tokens * (
            (shape.vocab * (compute_bytes + 8) if shape.task == "lm" else 0) + (layers * shape.hidden * 6 if hidden_mse else 0)
        )
    adam_later = 8 * params if train_weights else 0
    parts = {**resident, **step}
    if fill > sum(step.values()) + adam_later:
        parts = {**{k: v for k, v in resident.items() if k != "trained weights, gradients, AdamW"}, "teacher cache fill": fill}
        parts["trained weights"] = 4 * params // shards if train_weights else 0
    total = sum(parts.values())
    host = parts["teacher cache"] + parts["process"] if device == "cuda" else 0
    device_bytes = total - host
    if device == "cuda":
        device_bytes = int(device_bytes * (1 + CUDA_RESERVE))
    return MemoryEstimate(parts, device, device_bytes, total, checkpointing)


def available_bytes(device: torch.device) -> int | None:
    """Free memory of the device: CUDA's free memory, or MemAvailable of /proc/meminfo plus what this process already
    holds (the estimate includes it); None where neither can be read."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = {line.split(":")[0]: line.split()[1] for line in f}
        return int(info["MemAvailable"]) * 1024 + resident_bytes()
    except (OSError, KeyError, ValueError, IndexError):
        return None


def worker_bytes(device: torch.device, world: int) -> int | None:
    """What one data-parallel worker may use: its GPU's free memory, or its share of the machine's (CPU workers
    share one machine)."""
    available = available_bytes(device)
    return available // world if available is not None and device.type == "cpu" else available


def resident_bytes() -> int:
    """This process's resident memory now (Linux)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def check_fits(
    est: MemoryEstimate, available: int | None, *, method: str, batch_size: int, max_length: int, gpus: int, sharded: bool = False
) -> None:
    """Refuses a run whose estimated peak exceeds the device's free memory, naming the settings that lower it."""
    if available is None or est.device_bytes <= available:
        return
    fixes = [f"a smaller batchSize (now {batch_size})", f"a smaller maxLength (now {max_length})"]
    if method != "faster":
        fixes.append("method faster (it trains only the gates: no trained copy, no AdamW states)")
    if not est.activation_checkpointing:
        fixes.append("activationCheckpointing on")
    if est.device == "cuda" and gpus == 1:
        fixes.append("more GPUs (gpus) to split the batch")
    if gpus > 1 and not sharded and method != "faster":
        fixes.append("parallel fsdp (shards the trained weights, gradients and AdamW states over the workers)")
    where = "the GPU has" if est.device == "cuda" else "the machine has"
    raise UserError(
        f"memory: the run needs an estimated {gib(est.device_bytes)} ({est.describe()}) but {where} {gib(available)} "
        f"free. Lower it with {', '.join(fixes)}; or set memoryCheck to false to start anyway."
    )


def frozen_dtype(model_dir: str, precision: str) -> torch.dtype:
    """The frozen copy's dtype: the checkpoint's stored dtype (bf16 stays bf16), fp32 where precision fp32 asks."""
    from .checkpoint import WeightSource

    return torch.float32 if precision == "fp32" else WeightSource(model_dir).stored_dtype()


def half_compute(device: torch.device, precision: str, frozen: torch.dtype) -> bool:
    """Whether the forward passes run under bf16/fp16 autocast (train.autocast_for's rule)."""
    if frozen in (torch.bfloat16, torch.float16) and precision != "fp32":
        return True
    return precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())


def plan_memory(comp: Compressor, shape: ModelShape) -> MemoryEstimate:
    """The estimate for a compression about to load its model, checked against the device (`memoryCheck`)."""
    from .settings import teacher_hidden
    from .teacher import CHUNK, example_bytes

    s, sched = comp.s, comp.sched
    world = comp.dist.world if comp.dist.active else 1
    batch = min(math.ceil(s.batch_size / world), len(comp.train))
    seq_len = int(comp.train.meta.max_len)
    params = count_params(shape)["total"]
    top_k = min(s.distill.top_k, shape.vocab) if shape.task == "lm" else 0
    hidden = teacher_hidden(s)
    cache, fill_tokens = 0, 0
    if s.distill.enabled and not (shape.task == "lm" and top_k == 0) and s.distill.cache_mb > 0:
        examples = max(1, round(len(comp.train) * sched.fraction))
        cache = min(s.distill.cache_mb * 2**20, examples * example_bytes(shape, round(comp.train.mean_length), top_k, hidden))
        fill_tokens = min(CHUNK, examples) * seq_len
    est = estimate_peak(
        shape,
        train_weights=sched.train_weights,
        frozen_dtype=comp.frozen_dtype,
        half_compute=half_compute(comp.device, s.precision, comp.frozen_dtype),
        batch_size=batch,
        seq_len=seq_len,
        device=comp.device.type,
        checkpointing=checkpointing_on(s.activation_checkpointing, params),
        hidden_mse=hidden,
        distill=s.distill.enabled,
        cache_bytes=cache,
        fill_tokens=fill_tokens,
        shards=world if comp.dist.sharded else 1,
    )
    if s.memory_check:
        available = worker_bytes(comp.device, world)
        check_fits(
            est, available, method=s.method, batch_size=s.batch_size, max_length=s.max_length, gpus=s.gpus, sharded=comp.dist.sharded
        )
    return est
