"""A measured warm-up before a compression: load the model and data exactly as `compress` would, run a few real
phase-1 steps with the run's settings (batch size, sequence length, device, precision, distillation), time them
and read the peak memory; from those, the planned step counts and a timed evaluation slice, the time the whole
run should take. Nothing is written: the run directory is neither created nor touched."""

from __future__ import annotations

import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable

import torch

from .baselines import BASELINES
from .errors import Cancelled, UserError
from .evaluate import evaluate
from .protocol import EstimateResult
from .settings import CompressSettings
from .train import Compressor


def _process_peak_bytes() -> int:
    """The process's peak resident memory (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _device_name(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.get_device_name(index)
    cpu = platform.processor() or platform.machine() or "CPU"
    return f"{cpu} CPU, {threads} threads"


def estimate(settings: CompressSettings, steps: int, should_stop: Callable[[], bool] = lambda: False) -> EstimateResult:
    if settings.method in BASELINES:
        raise UserError(f"method: the warm-up estimate covers vtrans, fast and faster, not the {settings.method} baseline.")
    t0 = time.monotonic()
    comp = Compressor(settings, should_stop=should_stop)
    cuda = comp.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(comp.device)
    torch.manual_seed(settings.seed)
    comp.load()
    load_seconds = time.monotonic() - t0
    s = settings
    sched = comp.sched
    prune = comp.plan("prune", sched.prune_epochs, sched.min_prune_steps)
    finetune_steps = comp.plan("finetune", sched.finetune_epochs, sched.min_finetune_steps).steps if sched.finetune else 0
    state = comp.setup_prune()
    measured: list[float] = []
    # One step more than measured: the first one pays for allocations and kernel selection.
    total = min(steps + 1, prune.steps)
    for step in range(total):
        if should_stop():
            raise Cancelled()
        _, batch = comp.batch_for(prune, step, 1)
        t = time.monotonic()
        # Without the example indices the teacher runs on the batch: an upper bound on a step that reads its cache.
        comp.prune_step(batch, 1.0 - (1.0 - s.keep) * min(1.0, (step + 1) / max(1, int(prune.steps * s.warmup))), state, step)
        if cuda:
            torch.cuda.synchronize(comp.device)
        if step > 0 or total == 1:
            measured.append(time.monotonic() - t)
    per_step = statistics.median(measured)
    # Evaluation: time a slice of the eval data with the teacher (the students are smaller: an upper bound).
    sample = min(len(comp.eval), 64)
    t = time.monotonic()
    evaluate(comp.teacher, comp.eval, comp.device, limit=sample, autocast=comp.autocast, should_stop=comp.check_stop)
    if cuda:
        torch.cuda.synchronize(comp.device)
    per_example = (time.monotonic() - t) / max(1, sample)
    full = len(comp.eval) if s.eval_examples is None else min(len(comp.eval), s.eval_examples)
    capped = min(len(comp.eval), s.eval_limit)
    epochs = int(round(sched.finetune_epochs)) + 1 if finetune_steps else 0
    examples = 2 * full + (len(set(s.sweep + [s.keep]))) * capped + epochs * full
    if comp.test is not None:
        examples += 2 * len(comp.test)
    eval_seconds = examples * per_example
    peak = torch.cuda.max_memory_allocated(comp.device) if cuda else _process_peak_bytes()
    total_seconds = load_seconds + per_step * (prune.steps + finetune_steps) + eval_seconds
    return EstimateResult(
        device=str(comp.device),
        device_name=_device_name(comp.device, comp.threads),
        steps=len(measured),
        seconds_per_step=per_step,
        prune_steps=prune.steps,
        finetune_steps=finetune_steps,
        load_seconds=load_seconds,
        eval_seconds=eval_seconds,
        estimated_seconds=total_seconds,
        peak_memory_bytes=int(peak),
        memory="cuda-allocated" if cuda else "process-peak-rss",
        planned_memory_bytes=comp.memory.device_bytes,
    )
