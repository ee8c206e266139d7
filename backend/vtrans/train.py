"""VTrans compression: train VIB masks (and weights), prune to the exact budget, fine-tune, sweep, export.

Methods (docs/algorithm.md):
    vtrans  phase 1 trains masks and weights on all training data; phase 2 fine-tunes the pruned model
    fast    the same on a data fraction (default 3 %)
    faster  masks only: weights frozen in both phases (no fine-tuning); data fraction as fast

Objective in phase 1: distillation from the frozen unpruned teacher (logit KL at temperature T, weighted alpha,
plus task loss weighted 1 − alpha, plus layer-wise hidden-state MSE) or the task loss alone, + β·KL of the VIB
gates + λ1(ŝ − t) + λ2(ŝ − t)², with ŝ the expected size under soft gates, t ramping linearly from 1 to the
budget over the warm-up, and λ trained by gradient ascent (CoFi's scheme). Phase 2 distils with a learned
projection from the pruned hidden width back to the teacher's.

Checkpoints every N steps hold everything a resumed run needs to reach the same final weights: parameters,
optimiser states, λ, the RNG state; the batch order is a function of (seed, step).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from .baselines import BASELINES, ScoreGates, baseline_scores, make_gates
from .budget import Ranking, expected_fraction, size_of
from .checkpoint import load_model, load_shape
from .correction import Corrector, calibration_indices, refit_of
from .distributed import SINGLE, Dist, choose_engine
from .drop import DroppedStudent, open_units
from .errors import Cancelled, UserError
from .evaluate import better_metric, evaluate, examples_read, task_loss
from .export import export_onnx
from .kwon_peer import SAMPLES as KWON_SAMPLES
from .masks import MaskLadder, load_snapshot_weights, save_snapshot_state
from .memory import frozen_dtype, plan_memory, worker_bytes
from .models import VTransModel
from .protocol import CompressResult
from .prune import KeepSet
from .report import Metric, RunReport, TestMetrics, TradeoffPoint, UnitCounts, write_report
from .runs import FollowerRunDir, RunDir, write_json
from .safetensors_io import load_file, save_file
from .selection import Correct, ScaleChoice, Selector, summarize
from .settings import CompressSettings, masks_on_frozen_weights, schedule_of, teacher_hidden
from .shapes import other_shape_points, save_output
from .shards import Batch, Shards, subset_order
from .structure import ModelShape, count_params
from .teacher import (
    COFI_LAYER_WEIGHT,
    COFI_LOGIT_WEIGHT,
    MatchedLayers,
    TeacherCache,
    TeacherOutputs,
    hidden_mse,
    lm_distill_loss,
    logit_kd,
)
from .vib import GRANULARITIES, VIBGates

log = logging.getLogger("vtrans")

ProgressFn = Callable[[dict], None]


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device: cuda was requested but torch sees no CUDA GPU. Set the device to auto or cpu.")
    return torch.device(name)


PRECISIONS = ("auto", "fp32", "bf16")
LAYER_MAP = ("checkpoints", "cofi-layer-map.safetensors")  # CoFi's trained layer map, from phase 1 to phase 2


def autocast_for(device: torch.device, precision: str = "auto", weights: torch.dtype = torch.float32):
    """A context factory for the forward passes: bf16 autocast where asked, or under `auto` on GPUs that support
    it; plain fp32 otherwise (on a CPU fp32 is as fast here and exact). `weights`: the frozen copy's dtype; a bf16 or
    fp16 checkpoint kept in its stored dtype computes under autocast to that dtype, on a CPU too."""
    if precision not in PRECISIONS:
        raise UserError(f"precision: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if weights in (torch.bfloat16, torch.float16) and precision != "fp32":
        return lambda: torch.autocast(device.type, dtype=weights)
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    if bf16:
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def target_at(keep: float, ramp: float, shape: str = "cubic") -> float:
    """The budget target during phase 1, from 1 to `keep` as `ramp` goes 0 → 1 over the warm-up: linear, or cubic
    (1 − (1 − ramp)³, the gradual-pruning schedule of Zhu & Gupta 2017: fast at first, arriving with zero slope, so
    that the Lagrangian does not overshoot at the end of the ramp)."""
    r = min(1.0, max(0.0, ramp))
    progress = r if shape == "linear" else 1.0 - (1.0 - r) ** 3
    return 1.0 - (1.0 - keep) * progress


def slope_at(start: float, end: float | None, ramp: float) -> float:
    """The soft keep probability's slope k during phase 1: geometric from `start` to `end` while the target ramps
    (`ramp` 0 → 1 over the warm-up), then held."""
    if end is None:
        return start
    return start * (end / start) ** min(1.0, max(0.0, ramp))


def set_threads(threads: int | None) -> int:
    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


@dataclass
class PhasePlan:
    name: str
    steps: int
    order: np.ndarray  # training example indices this phase draws from
    steps_per_epoch: int


@dataclass
class PruneState:
    opt_g: torch.optim.Optimizer
    opt_w: torch.optim.Optimizer | None
    lam: torch.Tensor  # λ1, λ2
    opt_layers: torch.optim.Optimizer | None = None  # CoFi's layer map (MatchedLayers)


class StepTimer:
    """Seconds per step (moving average) for the ETA."""

    def __init__(self):
        self.avg: float | None = None
        self.last = time.monotonic()

    def tick(self) -> float:
        now = time.monotonic()
        dt, self.last = now - self.last, now
        self.avg = dt if self.avg is None else 0.9 * self.avg + 0.1 * dt
        return self.avg


class Compressor:
    def __init__(
        self,
        settings: CompressSettings,
        progress: ProgressFn = lambda p: None,
        should_stop: Callable[[], bool] = lambda: False,
        dist: Dist = SINGLE,
    ):
        self.s = settings
        self.dist = dist
        self.progress = progress if dist.main else (lambda p: None)
        self._should_stop = should_stop
        self.run = RunDir(settings.run_dir) if dist.main else FollowerRunDir(settings.run_dir)
        if dist.active and settings.device != "cpu" and torch.cuda.is_available():
            self.device = torch.device("cuda", dist.local_rank)
            torch.cuda.set_device(self.device)
        else:
            self.device = pick_device(settings.device)
        self.autocast = autocast_for(self.device, settings.precision)
        cpu_share = max(1, (os.cpu_count() or 1) // dist.world) if dist.active and self.device.type == "cpu" else None
        self.threads = set_threads(settings.threads or cpu_share)
        self.started = time.monotonic()
        self.sched = schedule_of(settings)
        self.teacher_cache: TeacherCache | None = None
        self.layers: MatchedLayers | None = None  # CoFi's layer distillation (phase 1: at the full hidden width)
        self.closing = True  # whether gates may close at this step (phase 1 sets it)
        self.dropped: DroppedStudent | None = None  # phase 1 after the commit, with `vib.dropClosed`
        self.global_batch = 0  # examples in the step's global batch, of which this worker has its rows (batch_for)

    # ------------------------------------------------------------------------------------------------------------
    def check_stop(self) -> None:
        if self._should_stop():
            raise Cancelled()

    def check_step(self, step: int, loss: float, phase: str, hint: str) -> None:
        """Stop and divergence, decided by all workers together (no one is left waiting in a collective)."""
        finite = math.isfinite(loss)
        stop, bad = self.dist.any(self._should_stop(), not finite)
        if bad:
            shown = loss if not finite else float("nan")  # another worker's loss diverged
            raise UserError(f"training diverged: the loss is {shown} at step {step + 1} of {phase}. {hint}")
        if stop:
            raise Cancelled()

    def emit(self, phase: str, step: int, total: int, timer: StepTimer | None = None, **extra) -> None:
        eta = None if timer is None or timer.avg is None else timer.avg * (total - step)
        self.progress({"runDir": self.run.path, "phase": phase, "step": step, "total": total, "eta": eta, **extra})

    # ------------------------------------------------------------------------------------------------------------
    def load(self) -> None:
        s = self.s
        self.train = Shards(s.train_shards)
        self.eval = Shards(s.eval_shards)
        self.test = Shards(s.test_shards) if s.test_shards else None
        # Memory (vtrans/memory.py): the frozen copy stays in the checkpoint's dtype; the budget check runs before
        # any weight is read.
        self.frozen_dtype = frozen_dtype(s.model_dir, s.precision)
        self.autocast = autocast_for(self.device, s.precision, self.frozen_dtype)
        shape = load_shape(s.model_dir, s.task or self.train.task)
        self.choose_engine(shape)
        self.memory = plan_memory(self, shape)
        self.teacher = load_model(s.model_dir, dtype=self.frozen_dtype, task=s.task or self.train.task).to(self.device)
        self.shape: ModelShape = self.teacher.shape
        if self.shape.task != self.train.task:
            raise UserError(
                f"task: the data is for {self.train.task} but the model is set up for {self.shape.task}. "
                "Pick the matching --task or data file."
            )
        if self.shape.task == "classification":
            labels = self.train.label_names() or []
            if labels and len(labels) != self.shape.num_labels:
                raise UserError(
                    f"{self.train.meta.source}: the data has {len(labels)} labels but the model's "
                    f"classification head has {self.shape.num_labels} (config.json). Use matching data or model."
                )
        for shards in (self.train, self.eval, self.test):
            if shards is not None:
                shards.check_vocabulary(self.shape.vocab, s.model_dir)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.seq_len = self.train.mean_length
        self.budget_full = size_of(self.shape, s.budget, self.seq_len)

    def resume_engine(self, written_by: str) -> None:
        """A checkpoint's optimizer state is laid out by parameter index, or by parameter name under FSDP: a run
        resumes sharded exactly when it was written sharded (`auto` follows the checkpoint)."""
        if (written_by == "fsdp") == self.dist.sharded:
            return
        if self.s.parallel == "auto" and self.dist.active:
            self.dist = replace(self.dist, engine="fsdp" if written_by == "fsdp" else "ddp")
            log.info("resuming with %s, as the checkpoint was written", self.dist.engine)
            return
        how = "parallel fsdp on more than one worker (gpus)" if written_by == "fsdp" else "parallel ddp or auto, or on one worker"
        raise UserError(
            f"resume: {self.run.path}'s checkpoint was written by {written_by} training; resume it with {how} "
            f"(vtrans.parallel, or --parallel on the command line)."
        )

    def choose_engine(self, shape: ModelShape) -> None:
        """DDP or FSDP for a data-parallel run (distributed.choose_engine), before the memory check that counts on it."""
        if not self.dist.active:
            return
        s = self.s
        trains_weights = s.method in BASELINES or self.sched.train_weights or self.sched.finetune
        trained = count_params(shape)["total"] if trains_weights else 0
        engine = choose_engine(s.parallel, self.dist.world, trained, worker_bytes(self.device, self.dist.world))
        self.dist = replace(self.dist, engine=engine)
        log.info("data-parallel training on %d workers with %s", self.dist.world, engine)

    def plan(self, name: str, epochs: float, min_steps: int) -> PhasePlan:
        """A phase's steps: `epochs` over the method's data (Fast- and Faster-VTrans: the fraction), at least `min_steps`."""
        n = len(self.train)
        order = subset_order(n, self.sched.fraction, self.s.seed) if self.sched.fraction < 1 else np.arange(n)
        spe = max(1, math.ceil(len(order) / self.s.batch_size))
        return PhasePlan(name, max(min_steps, int(round(epochs * spe))), order, spe)

    def batch_for(self, plan: PhasePlan, step: int, phase_seed: int) -> tuple[np.ndarray, Batch]:
        """The example indices and the batch of a step; deterministic in (seed, phase, step): a resumed run sees the
        same batches."""
        epoch, pos = divmod(step, plan.steps_per_epoch)
        perm = np.random.default_rng([self.s.seed, phase_seed, epoch]).permutation(len(plan.order))
        idx = plan.order[perm[pos * self.s.batch_size : (pos + 1) * self.s.batch_size]]
        # Each worker its rows of the global batch; the gates' noise is drawn for the whole of it (`prune_step`).
        self.global_batch = len(idx)
        idx = idx[self.dist.rows(len(idx))]
        return idx, self.train.batch(idx).to(self.device)

    # ------------------------------------------------------------------------------------------------------------
    def teacher_for(self, plan: PhasePlan) -> TeacherCache | None:
        """The teacher's outputs on the phase's data (None when distillation is off: no teacher forward at all),
        filled once for the examples that fit `distill.cacheMb`."""
        cache = self.new_teacher_cache()
        if cache is not None:
            cache.fill(plan.order, should_stop=self.check_stop)
        return cache

    def new_teacher_cache(self) -> TeacherCache | None:
        d = self.s.distill
        if not d.enabled:
            return None
        if self.teacher_cache is None:
            self.teacher_cache = TeacherCache(
                self.teacher, self.train, self.device, self.autocast, d.temperature, d.top_k, teacher_hidden(self.s), d.cache_mb * 2**20
            )
        return self.teacher_cache

    def teacher_outputs(self, idx: np.ndarray | None, batch: Batch) -> TeacherOutputs | None:
        """The teacher's outputs on a training batch: cached where they are (`idx`: the batch's example indices), else
        computed; None when distillation is off."""
        cache = self.new_teacher_cache()
        if cache is None:
            return None
        return cache.compute(batch) if idx is None else cache.outputs(idx, batch)

    # ------------------------------------------------------------------------------------------------------------
    def distill_loss(
        self,
        out,
        teacher: TeacherOutputs | None,
        batch: Batch,
        proj: nn.Module | Callable[[torch.Tensor], torch.Tensor] | None = None,
        dim_weights: torch.Tensor | None = None,
        existing: list[bool] | None = None,
    ) -> torch.Tensor:
        """`proj`: phase 2's map from the pruned hidden width to the teacher's (CoFi: its `MatchedLayers`);
        `existing`: CoFi's layers whose attention is on."""
        d, task = self.s.distill, self.shape.task
        if not d.enabled or teacher is None:
            return task_loss(task, out.logits, batch)
        if isinstance(proj, MatchedLayers):
            assert teacher.hidden is not None
            kd = logit_kd(task, out.logits, teacher, batch, d.temperature)
            return COFI_LOGIT_WEIGHT * kd + COFI_LAYER_WEIGHT * proj.loss(out.hidden_states[1:], teacher.hidden, batch, existing)
        if task == "lm" and teacher.top_idx is not None:
            loss = lm_distill_loss(out.logits, teacher, batch, d.temperature, d.alpha)  # both terms in one pass
        else:
            loss = (1 - d.alpha) * task_loss(task, out.logits, batch) + d.alpha * logit_kd(task, out.logits, teacher, batch, d.temperature)
        if d.hidden > 0 and teacher.hidden is not None:
            loss = loss + d.hidden * hidden_mse(out.hidden_states[1:], teacher.hidden, batch, proj, dim_weights)
        return loss

    # ------------------------------------------------------------------------------------------------------------
    def setup_prune(self) -> PruneState:
        """Student, gates and optimisers of phase 1 (VTrans trains weights too; Faster-VTrans only the gates)."""
        s = self.s
        train_weights = self.sched.train_weights
        # Faster-VTrans: the student is the teacher's own frozen weights (the teacher is the model with the gates off).
        self.student = self.trainable_copy() if train_weights or s.init_weights else self.teacher
        self.own_weights = self.student is not self.teacher  # else phase 1 has no weights of its own to save
        self.student.body.checkpointing = self.memory.activation_checkpointing
        if s.init_weights:
            self.student.load_state_dict(load_file(s.init_weights))
        for p in self.student.parameters():
            p.requires_grad_(train_weights)
        self.gates = make_gates(s.method, self.shape, s.vib).to(self.device)
        if s.init_masks:
            self.gates.load(load_file(s.init_masks))
        self.noise = self.gates.noise = torch.Generator(device=self.device).manual_seed(s.seed)
        # DDP or FSDP synchronise the student's weights when they train (FSDP shards them: the optimizer comes after).
        self.run_student = self.dist.wrap(self.student) if train_weights else self.student.run
        opt_g = torch.optim.Adam(self.gates.parameters(), lr=s.mask_lr)
        opt_w = torch.optim.AdamW(self.student.parameters(), lr=s.lr, weight_decay=s.weight_decay) if train_weights else None
        opt_layers = None
        if s.method == "cofi" and s.distill.enabled:
            # Every worker keeps the layer map whole, with its own AdamW (the same update: AdamW is elementwise).
            self.layers = MatchedLayers(self.shape.hidden, self.shape.hidden, self.shape.n_layers, s.seed).to(self.device)
            opt_layers = torch.optim.AdamW(self.layers.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        return PruneState(opt_g, opt_w, torch.zeros(2), opt_layers)

    def prune_step(self, batch: Batch, target: float, st: PruneState, step: int, idx: np.ndarray | None = None) -> dict[str, float]:
        """One step of phase 1: distillation + β·KL + the Lagrangian budget term; λ by gradient ascent. `idx`: the
        batch's example indices, for the teacher's cached outputs (None: the teacher runs on the batch)."""
        s = self.s
        teacher_out = self.teacher_outputs(idx, batch)
        with self.autocast():
            # Faster-VTrans trains gates on frozen weights: no dropout, the gates' noise is the only noise.
            self.student.train(self.sched.train_weights)
            examples = self.global_batch if self.dist.active else batch.size
            gates = self.gates.sample(examples, track=isinstance(self.gates, VIBGates), rows=self.dist.rows(examples))
            dropped = self.dropped
            student_gates = gates if dropped is None else dropped.gates(gates)
            out = self.run_student(batch.input_ids, batch.attention_mask, batch.token_type_ids, gates=student_gates)
            share = self.dist.loss_share(batch.size, examples)
            existing = [bool((a != 0).any()) if a is not None else True for a in gates.attn] if self.layers is not None else None
            proj = self.layers if dropped is None else dropped.widen
            loss_task = self.distill_loss(out, teacher_out, batch, proj, gates.norm_dims, existing or None) * share
        expected = self.expected_size()
        gap = expected - target
        kl = self.gates.kl()
        loss = loss_task + s.vib.beta * kl + st.lam[0] * gap + st.lam[1] * gap * gap
        self.check_step(
            step,
            float(loss.detach()),
            "phase 1 (prune)",
            f"Lower the learning rate (lr is {s.lr}, maskLr {s.mask_lr}) or check the data for empty or corrupt examples.",
        )
        st.opt_g.zero_grad()
        if st.opt_w:
            st.opt_w.zero_grad()
        if st.opt_layers:
            st.opt_layers.zero_grad()
        loss.backward()
        self.dist.average_grads(self.gates.parameters())  # the student's weights: DDP or FSDP did it in the backward
        if st.opt_layers and self.layers is not None:
            self.dist.average_grads(self.layers.parameters())
            torch.nn.utils.clip_grad_norm_(self.layers.parameters(), 1.0)
            st.opt_layers.step()
        st.opt_g.step()
        self.gates.constrain()
        if isinstance(self.gates, VIBGates):
            self.gates.accumulate_fisher(batch.size / share, examples, total=self.dist.sum_)
            self.gates.close_units(s.vib.close_below, s.vib.close_steps, close=self.closing)
        if st.opt_w:
            torch.nn.utils.clip_grad_norm_(self.student.parameters(), 1.0)
            st.opt_w.step()
        with torch.no_grad():  # gradient ascent on λ (CoFi)
            g_ = float(gap)
            st.lam += s.lambda_lr * torch.tensor([g_, g_ * g_])
        return {
            "loss": float(loss_task.detach()) / share,
            "kl": float(kl.detach()) if isinstance(kl, torch.Tensor) else float(kl),
            "expected": float(expected.detach()),
            "target": target,
        }

    def expected_size(self) -> torch.Tensor:
        """ŝ: the expected size (fraction of the budget kind) under the soft keep probabilities."""
        probs = {g: self.gates.split(g, self.gates.keep_probs(g)) for g in GRANULARITIES}
        probs["attn"] = list(self.gates.keep_probs("attn").unbind(0))
        probs["ffn_layer"] = list(self.gates.keep_probs("ffn_layer").unbind(0))
        return expected_fraction(self.shape, probs, self.s.budget, self.seq_len)

    def commit(self, st: PruneState) -> None:
        """End of the warm-up: the gates cut at the target (the run's cut rule) and everything outside closed; λ
        restarts from 0 (what it accumulated was spent on the ramp)."""
        s = self.s
        assert isinstance(self.gates, VIBGates)
        values = None if s.cut == "score" else self.gates.values(s.cut)
        sel = Ranking(self.shape, self.gates.scores(), s.budget, self.seq_len, s.round_to, values).select(s.keep)
        self.gates.commit(sel.keep)
        st.lam.zero_()
        log.info("phase 1: committed to the cut at %.4f of %s", sel.fraction, s.budget)
        self.drop_closed(st)

    def drop_closed(self, st: PruneState) -> None:
        """With `vib.dropClosed`, once committed: the rest of phase 1 runs the student with its closed units
        physically removed (drop.py). One process only: a sharded or replicated student keeps its full shape."""
        if not (self.s.vib.drop_closed and isinstance(self.gates, VIBGates) and bool(self.gates.committed)):
            return
        if self.dist.active or self.layers is not None or self.dropped is not None:
            return
        d = DroppedStudent(self.student, open_units(self.gates), self.device)
        if st.opt_w is None:  # Faster-VTrans: frozen weights (the teacher's, which stay whole)
            for p in d.model.parameters():
                p.requires_grad_(False)
        else:
            st.opt_w = d.optimizer(st.opt_w)
        self.dropped, self.student, self.run_student = d, d.model, d.model.run
        left, full = sum(p.numel() for p in d.model.parameters()), sum(p.numel() for p in self.teacher.parameters())
        log.info("phase 1: closed units dropped, %d of %d weights left", left, full)

    def student_state(self) -> dict[str, torch.Tensor]:
        """The student's full-size weights (the dropped student's written back into the full ones)."""
        return self.dropped.full_state() if self.dropped is not None else self.dist.full_state(self.student)

    def student_optimizer_state(self, st: PruneState) -> dict:
        assert st.opt_w is not None
        if self.dropped is not None:
            return self.dropped.full_optimizer_state(st.opt_w)
        return self.dist.full_optimizer_state(self.student, st.opt_w)

    def phase_prune(self, resume: dict | None) -> None:
        s = self.s
        plan = self.plan("prune", self.sched.prune_epochs, self.sched.min_prune_steps)
        st = self.setup_prune()
        start = 0
        if resume is not None and resume["phase"] == "prune":
            if st.opt_w:
                self.dist.load_full_state(self.student, resume["student"])
                self.dist.load_full_optimizer_state(self.student, st.opt_w, resume["opt_w"])
            self.gates.load_state_dict(resume["gates"])
            st.opt_g.load_state_dict(resume["opt_g"])
            st.lam = resume["lam"].clone()
            torch.set_rng_state(resume["rng"])
            if resume.get("noise") is not None:
                self.noise.set_state(resume["noise"])
            if self.layers is not None and st.opt_layers is not None and resume.get("layers") is not None:
                self.layers.load_state_dict(resume["layers"])
                st.opt_layers.load_state_dict(resume["opt_layers"])
            start = resume["step"]
            self.drop_closed(st)  # resumed after the commit: drop again what the commit closed
        warmup_steps = max(1, int(plan.steps * s.warmup))
        self.teacher_for(plan)
        pending = sorted((b for b in set(s.sweep) if s.keep < b < 1.0), reverse=True)
        snapshots = dict(resume.get("snapshots") or {}) if resume is not None and resume["phase"] == "prune" else {}
        pending = [b for b in pending if str(b) not in snapshots]
        timer = StepTimer()
        self.student.train(self.sched.train_weights)
        for step in range(start, plan.steps):
            if step > start and step % s.checkpoint_every == 0:
                self.run.save_checkpoint(
                    {
                        "phase": "prune",
                        "step": step,
                        "gates": self.gates.state_dict(),
                        "opt_g": st.opt_g.state_dict(),
                        # Whole on rank 0 (gathered from the shards under FSDP): a run resumes on any number of workers.
                        "student": self.student_state() if st.opt_w else None,
                        "opt_w": self.student_optimizer_state(st) if st.opt_w else None,
                        "lam": st.lam,
                        "rng": torch.get_rng_state(),
                        "noise": self.noise.get_state(),
                        "engine": self.dist.engine,
                        "snapshots": snapshots,
                        "layers": self.layers.state_dict() if self.layers is not None else None,
                        "opt_layers": st.opt_layers.state_dict() if st.opt_layers is not None else None,
                    },
                    f"1-{step:08d}",
                )
            idx, batch = self.batch_for(plan, step, 1)
            ramp = min(1.0, (step + 1) / warmup_steps)
            target = target_at(s.keep, ramp, s.ramp)
            # Units close only once the target holds (an overshoot can still be undone before), and not after a commit:
            # the commit closed everything outside the cut, and closing kept units would take the size under the target.
            self.closing = ramp >= 1.0 and not (s.vib.commit and isinstance(self.gates, VIBGates))
            if isinstance(self.gates, VIBGates):
                self.gates.slope = slope_at(s.vib.temperature, s.vib.final_temperature, ramp)
            r = self.prune_step(batch, target, st, step, idx)
            if step + 1 == warmup_steps and s.vib.commit and isinstance(self.gates, VIBGates):
                self.commit(st)
                r["expected"] = float(self.expected_size().detach())
            expected = r["expected"]
            while pending and expected <= pending[0]:
                label = str(pending.pop(0))
                snapshots[label] = self.gates.state()
                if self.own_weights:
                    snapshot = self.student_state()  # every worker takes part in the gathering
                    if self.dist.main:
                        save_snapshot_state(self.run.path, label, snapshot)
            timer.tick()
            record = {
                "loss": r["loss"],
                "kl": r["kl"],
                "sparsity": 1.0 - expected,
                "target": target,
                "lambda": [float(st.lam[0]), float(st.lam[1])],
            }
            self.emit("prune", step + 1, plan.steps, timer, **record)
            if step % 10 == 0 or step + 1 == plan.steps:
                self.run.append_metric("prune", step=step + 1, **record)
        # The weights and masks that every re-thresholded model is cut from.
        weights = self.student_state() if self.own_weights else None
        self.dropped = None
        if self.dist.main:
            self.save_phase1(snapshots, weights)
        self.dist.barrier()  # the other workers read them back in restore_phase1

    def save_phase1(self, snapshots, weights: dict[str, torch.Tensor] | None) -> None:
        save_file(self.gates.state(), self.run.file("masks.safetensors"), metadata={"format": "vtrans-vib", "version": "1"})
        MaskLadder.save_snapshots(self.run.path, snapshots)
        if weights is not None:
            save_file(weights, self.run.file("checkpoints", "masked-weights.safetensors"))
        if self.layers is not None:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.layers.state_dict().items()}, self.run.file(*LAYER_MAP))

    def phase_score(self) -> None:
        """Baselines: per-unit scores from a criterion instead of trained gates (no phase 1)."""
        s = self.s
        self.emit("prune", 0, 1)
        scores = baseline_scores(
            s.method,
            self.teacher,
            self.train,
            self.device,
            s.seed,
            should_stop=self.check_stop,
            model_dir=s.model_dir,
            keep=s.keep,
            kind=s.budget,
            seq_len=self.seq_len,
        )
        self.gates = ScoreGates(self.shape, s.vib, scores).to(self.device)
        self.student = self.trainable_copy()
        if self.dist.main:
            save_file(
                self.gates.state(), self.run.file("masks.safetensors"), metadata={"format": f"vtrans-{s.method}-scores", "version": "1"}
            )
        self.emit("prune", 1, 1)

    def restore_phase1(self) -> None:
        """The masks and phase-1 weights from the run directory (also after a restart in phase 2), and the
        selector that cuts models from them."""
        self.gates = make_gates(self.s.method, self.shape, self.s.vib).to(self.device)
        self.gates.load(load_file(self.run.file("masks.safetensors")))
        ladder = MaskLadder.load(self.run.path, self.shape, self.s.vib, self.s.method)
        weights = self.run.file("checkpoints", "masked-weights.safetensors")
        if os.path.exists(weights):
            self.student = self.trainable_copy()
            self.student.load_state_dict(load_file(weights))
        else:
            self.student = self.teacher
        if os.path.exists(self.run.file(*LAYER_MAP)):
            self.layers = MatchedLayers(self.shape.hidden, self.shape.hidden, self.shape.n_layers).to(self.device)
            self.layers.load_state_dict(load_file(self.run.file(*LAYER_MAP)))
        s = self.s
        self.selector = Selector.of_run(s, self.shape, ladder, self.seq_len, self.weights_for, self.corrector(), self.scale_choice())

    def corrector(self) -> Correct | None:
        """The least-squares correction of every cut (VIB methods, when on), on the method's own data."""
        c = self.s.correction
        kwon = self.s.method == "kwon"  # their mask tuning, on their 2K samples
        if not c.enabled or (self.s.method in BASELINES and not kwon) or self.s.method == "cofi":
            return None
        idx = calibration_indices(len(self.train), self.sched.fraction, KWON_SAMPLES if kwon else c.examples, self.s.seed)
        return Corrector(self.train, idx, self.device, self.autocast, c.ridge, self.s.batch_size, self.check_stop, refit_of(self.s)).correct

    def scale_choice(self) -> ScaleChoice | None:
        """Masks trained on frozen weights: every cut takes the trained scales or scale 1, the better on dev."""
        if not masks_on_frozen_weights(self.s.method):
            return None

        def chosen(keep: float, name: str, scores: dict[str, float]) -> None:
            log.info("cut at keep %g: %s scales (dev %s)", keep, name, ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))
            self.run.append_metric("cut", keep=keep, scales=name, dev=scores)

        dev = lambda model: self.metric(model.to(self.device), self.eval, limit=self.s.eval_limit)  # noqa: E731
        return ScaleChoice(dev, self.better, lambda: self.examples(self.s.eval_limit), chosen)

    def examples(self, limit: int | None) -> int:
        """How many dev examples an evaluation with this limit reads."""
        return examples_read(self.eval, limit)

    def weights_for(self, label: str | None) -> VTransModel:
        """The weights the gates of a snapshot (or, for None, the final gates) were trained with."""
        weights = load_snapshot_weights(self.run.path, label)
        if weights is None:
            return self.student
        source = self.trainable_copy()
        source.load_state_dict(weights)
        return source

    def trainable_copy(self) -> VTransModel:
        """A copy of the frozen model in fp32 (whatever the checkpoint's dtype): weights that train, or that cuts fold
        scales into."""
        return copy.deepcopy(self.teacher).float()

    # ------------------------------------------------------------------------------------------------------------
    def phase_finetune(self, pruned: VTransModel, keep: KeepSet, resume: dict | None) -> VTransModel:
        s = self.s
        plan = self.plan("finetune", self.sched.finetune_epochs, self.sched.min_finetune_steps)
        self.teacher_for(plan)
        proj: nn.Module | None = None
        if self.layers is not None:  # CoFi fine-tunes with its layer distillation, the map narrowed to the kept width
            proj = self.layers.narrowed(keep.hidden)
        elif s.distill.enabled and s.distill.hidden > 0:
            proj = nn.Linear(len(keep.hidden), self.shape.hidden, bias=False).to(self.device)
            with torch.no_grad():
                proj.weight.zero_()
                proj.weight[keep.hidden.to(self.device), torch.arange(len(keep.hidden), device=self.device)] = 1.0
        for p in pruned.parameters():
            p.requires_grad_(True)
        pruned.body.checkpointing = self.memory.activation_checkpointing
        sharded = self.dist.sharded
        # Under FSDP rank 0 keeps an unsharded copy on the CPU to export the best weights into.
        export_copy = copy.deepcopy(pruned).cpu() if sharded and self.dist.main else None
        run_pruned = self.dist.wrap(pruned)
        proj_params = list(proj.parameters()) if proj is not None else []
        # The projection trains beside the model, every worker keeping it whole; under FSDP it has its own AdamW (the
        # same update: AdamW is elementwise), as the gathering of the sharded optimizer state covers the model only.
        opt = torch.optim.AdamW(list(pruned.parameters()) + ([] if sharded else proj_params), lr=s.lr, weight_decay=s.weight_decay)
        opt_proj = torch.optim.AdamW(proj_params, lr=s.lr, weight_decay=s.weight_decay) if sharded and proj_params else None
        start = 0
        best, best_state = None, None
        if resume is not None and resume["phase"] == "finetune":
            self.dist.load_full_state(pruned, resume["student"])
            if proj is not None:
                proj.load_state_dict(resume["proj"])
            self.dist.load_full_optimizer_state(pruned, opt, resume["opt"])
            if opt_proj is not None and resume.get("opt_proj") is not None:
                opt_proj.load_state_dict(resume["opt_proj"])
            torch.set_rng_state(resume["rng"])
            start = resume["step"]
            best, best_state = resume.get("best"), resume.get("best_state")
        existing = [layer.kv_heads > 0 for layer in pruned.shape.layers]  # CoFi matches layers with attention only
        timer = StepTimer()
        evals_at = {plan.steps} | {k * plan.steps_per_epoch for k in range(1, plan.steps // plan.steps_per_epoch + 1)}
        for step in range(start, plan.steps):
            if step > start and step % s.checkpoint_every == 0:
                self.run.save_checkpoint(
                    {
                        "phase": "finetune",
                        "engine": self.dist.engine,
                        "step": step,
                        "student": self.dist.full_state(pruned),
                        "proj": proj.state_dict() if proj is not None else None,
                        "opt": self.dist.full_optimizer_state(pruned, opt),
                        "opt_proj": opt_proj.state_dict() if opt_proj is not None else None,
                        "rng": torch.get_rng_state(),
                        "best": best,
                        "best_state": best_state,
                    },
                    f"2-{step:08d}",
                )
            idx, batch = self.batch_for(plan, step, 2)
            pruned.train()
            teacher_out = self.teacher_outputs(idx, batch)
            with self.autocast():
                out = run_pruned(batch.input_ids, batch.attention_mask, batch.token_type_ids)
                loss = self.distill_loss(out, teacher_out, batch, proj, existing=existing) * self.dist.loss_share(
                    batch.size, self.global_batch
                )
            self.check_step(step, float(loss.detach()), "phase 2 (fine-tune)", f"Lower the learning rate (lr is {s.lr}).")
            opt.zero_grad()
            if opt_proj is not None:
                opt_proj.zero_grad()
            loss.backward()
            self.dist.average_grads(proj_params)  # the model's weights: DDP or FSDP did it in the backward
            if sharded:  # the sharded norm and the whole projection's are clipped apart (DTensor and tensor do not mix)
                torch.nn.utils.clip_grad_norm_(list(pruned.parameters()), 1.0)
                if proj_params:
                    torch.nn.utils.clip_grad_norm_(proj_params, 1.0)
            else:
                torch.nn.utils.clip_grad_norm_(list(pruned.parameters()) + proj_params, 1.0)
            opt.step()
            if opt_proj is not None:
                opt_proj.step()
            timer.tick()
            self.emit("finetune", step + 1, plan.steps, timer, loss=float(loss.detach()))
            if step % 10 == 0:
                self.run.append_metric("finetune", step=step + 1, loss=float(loss.detach()))
            # Model selection on the eval (dev) data only; under FSDP every worker takes part in the sharded forward.
            if step + 1 in evals_at and (self.dist.main or sharded):
                metric = self.metric(pruned, self.eval)
                self.run.append_metric("finetune", step=step + 1, eval=metric)
                if best is None or self.better(metric.value, best):
                    best = metric.value
                    best_state = self.dist.full_state(pruned)
        if export_copy is not None or sharded:
            final = best_state if best_state is not None else self.dist.full_state(pruned)
            if export_copy is None:
                return pruned  # a worker other than rank 0: it returns what it trained, rank 0 exports
            export_copy.load_state_dict(final)
            return export_copy.to(self.device).eval()
        if best_state is not None:
            pruned.load_state_dict(best_state)
        return pruned.eval()

    def better(self, a: float, b: float) -> bool:
        return better_metric(self.shape.task, a, b)

    def metric(self, model: VTransModel, shards: Shards, limit: int | None = None, per_example: dict | None = None) -> Metric:
        limit = limit if limit is not None else self.s.eval_examples
        return evaluate(
            model, shards, self.device, limit=limit, autocast=self.autocast, should_stop=self.check_stop, per_example=per_example
        )

    def test_metrics(self, pruned: VTransModel) -> TestMetrics:
        """Teacher and student on the test data, and `test-scores.json`: both models' score on every test example
        (file order), so that two runs can be compared by a paired bootstrap over the same examples."""
        assert self.test is not None
        scores: dict[str, dict] = {"teacher": {}, "student": {}}
        metrics = TestMetrics(
            self.metric(self.teacher, self.test, per_example=scores["teacher"]),
            self.metric(pruned, self.test, per_example=scores["student"]),
        )
        write_json(self.run.file("test-scores.json"), {"metric": metrics.student.name, **scores})
        return metrics

    # ------------------------------------------------------------------------------------------------------------
    def sweep(self, budgets: list[float]) -> list[TradeoffPoint]:
        """Re-thresholded models at other budgets, without training: the tradeoff curve."""
        points = []
        for i, keep in enumerate(sorted(set(budgets), reverse=True)):
            self.check_stop()
            sel, _, model = self.selector.cut(keep, device=self.device)
            metric = self.selector.scored(keep, self.examples(self.s.eval_limit)) or self.metric(model, self.eval, limit=self.s.eval_limit)
            points.append(self.selector.point("sweep", keep, self.s.budget, sel.shape, metric, UnitCounts.of(self.shape, sel.keep)))
            self.emit("sweep", i + 1, len(set(budgets)))
        evaluate_other = lambda model: self.metric(model, self.eval, limit=self.s.eval_limit)  # noqa: E731
        examples = self.examples(self.s.eval_limit)
        return points + other_shape_points(self.selector, budgets, self.s.budget, evaluate_other, self.check_stop, self.device, examples)

    # ------------------------------------------------------------------------------------------------------------
    def resume_state(self) -> dict | None:
        if not self.s.resume:
            return None
        state = self.run.load_latest_checkpoint()
        if state is not None:
            log.info("resuming %s from its step %s checkpoint", self.run.path, state.get("step"))
        return state

    def compress(self) -> CompressResult:
        from .probes import run_probes
        from .report import build_report, environment

        s = self.s
        resuming = self.s.resume and self.run.exists()
        if not resuming:
            self.run.create(s)
        else:
            self.run.update(status="running", pid=os.getpid(), error=None)
        self.emit("load", 0, 1)
        # The same seed gives the same run (a resume restores the saved RNG state); workers draw their own noise.
        torch.manual_seed(s.seed + self.dist.rank)
        self.load()
        teacher_metric = self.metric(self.teacher, self.eval) if self.dist.main else None
        self.run.append_metric("teacher", eval=teacher_metric)
        state = self.resume_state()
        if state is not None:
            self.resume_engine(state.get("engine", "single"))
        if s.method in BASELINES:
            if state is None:
                self.phase_score()
            self.dist.barrier()
        elif state is None or state["phase"] == "prune":
            self.phase_prune(state)
            state = None
        self.restore_phase1()
        sel, gates, pruned = self.selector.cut(s.keep, device=self.device)
        self.emit("select", 1, 1, achieved=sel.fraction)
        if self.sched.finetune:
            pruned = self.phase_finetune(pruned, sel.keep, state)
        units = UnitCounts.of(self.shape, sel.keep)
        if not self.dist.main:  # rank 0 evaluates, exports and reports; the others return what they trained
            return self.result(sel, summarize(self.shape, self.seq_len, None), summarize(sel.shape, self.seq_len, None), units, None)
        # Without fine-tuning the student is the cut model, which a scale choice may already have scored.
        scored = None if self.sched.finetune else self.selector.scored(s.keep, self.examples(s.eval_examples))
        student_metric = scored or self.metric(pruned, self.eval)
        test_metrics = None
        if self.test is not None:
            test_metrics = self.test_metrics(pruned)
        self.emit("export", 0, 2)
        save_output(pruned.cpu(), self.run.file("model"), s.shape, tokenizer_from=s.model_dir)
        export_onnx(pruned, self.run.file("model.onnx"), with_token_types=s.with_token_types)
        export_onnx(copy.deepcopy(self.teacher).cpu().float(), self.run.file("teacher.onnx"), with_token_types=s.with_token_types)
        pruned.to(self.device)
        self.emit("export", 2, 2)
        points = self.sweep(s.sweep + [s.keep])
        probes = None
        if s.probe_examples > 0:
            self.emit("probe", 0, 1)
            probes = run_probes(self.teacher, self.eval, self.device, s.probe_examples, s.special_token_ids, should_stop=self.check_stop)
        teacher_summary = summarize(self.shape, self.seq_len, teacher_metric)
        student_summary = summarize(sel.shape, self.seq_len, student_metric)
        result = self.result(sel, teacher_summary, student_summary, units, test_metrics)
        report: RunReport = build_report(
            settings=s,
            run_id=os.path.basename(self.run.path),
            shape=self.shape,
            selection=sel,
            scores=gates.scores(),
            threshold=gates.settings.threshold["heads"],
            teacher=teacher_summary,
            student=student_summary,
            points=points
            + [
                self.selector.point("teacher", 1.0, s.budget, self.shape, teacher_metric, None),
                self.selector.point("finetuned", s.keep, s.budget, sel.shape, student_metric, units),
            ],
            probes=probes,
            wall_seconds=result.wall_seconds,
            test=test_metrics,
            environment=environment(self.device, self.threads, self.dist.world, self.dist.engine),
            predictions=self.selector.prediction_table(points),
        )
        write_report(self.run.file("report.json"), report)
        self.run.update(status="done", result=result, pid=None)
        return result

    def result(self, sel, teacher, student, units: UnitCounts, test: TestMetrics | None) -> CompressResult:
        s = self.s
        return CompressResult(
            status="done",
            run_dir=self.run.path,
            method=s.method,
            budget=s.budget,
            keep=s.keep,
            achieved=sel.fraction,
            teacher=teacher,
            student=student,
            units=units,
            wall_seconds=time.monotonic() - self.started,
            model_dir=self.run.file("model"),
            onnx_path=self.run.file("model.onnx"),
            test=test,
            shape=s.shape,
        )
