"""The teacher's side of distillation: its outputs on the training examples, computed once and reused, and the
losses that compare a student with them.

What distillation needs of the teacher, per example (real tokens only):

    classification   the logits (C,)
    lm               the top-k tokens of its softmax at the distillation temperature with their log-probabilities,
                     and the log of the remaining mass (one bucket for the rest of the vocabulary); with
                     `distill.topK` 0 the whole vocabulary, which is never cached (V floats per token)
    hidden states    every layer's output (L × length × H) when the hidden-state MSE is on

They are computed in eval mode, so they are the same at every epoch: `TeacherCache` computes them once for as many
examples of the phase's data as fit in `distill.cacheMb` of host memory (bytes per example follow from its length,
so the cached set is decided up front: the first examples of the data in index order), and recomputes the others
at every step. Phase 2 reads the same cache. Every value goes through the storage rounding (fp16 hidden states,
fp32 log-probabilities) whether it was cached or recomputed, and the cached examples are computed in fixed chunks,
so a run's result does not depend on the cap or on a resume (which starts with an empty cache).

Faster-VTrans's teacher is its student's own frozen weights with the gates off: one copy of the model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models import VTransModel
from .shards import Batch, Shards
from .structure import ModelShape

HIDDEN_DTYPE = torch.float16
CHUNK = 64  # examples per teacher forward when filling the cache


@dataclass
class TeacherOutputs:
    """The teacher's outputs on one batch, padded like the batch (positions beyond an example's length are 0)."""

    logits: torch.Tensor | None = None  # (B, C) classification; (B, T, V) LM without top-k
    top_idx: torch.Tensor | None = None  # (B, T, k) int64, LM top-k
    top_logp: torch.Tensor | None = None  # (B, T, k) log-probabilities at the distillation temperature
    tail_logp: torch.Tensor | None = None  # (B, T) log of the mass outside the top k
    hidden: list[torch.Tensor] | None = None  # L × (B, T, H) float32: each layer's output


def example_bytes(s: ModelShape, length: int, top_k: int, hidden: bool) -> int:
    """Host memory of one cached example's teacher outputs."""
    n = 0
    if hidden:
        n += s.n_layers * length * s.hidden * 2
    if s.task == "classification":
        n += max(s.num_labels, 1) * 4
    else:
        n += length * (top_k * (8 + 4) + 4)
    return n + 256  # tensor headers and dict entries


class TeacherCache:
    def __init__(
        self,
        teacher: VTransModel,
        shards: Shards,
        device: torch.device,
        autocast: Callable[[], contextlib.AbstractContextManager],
        temperature: float,
        top_k: int,
        hidden: bool,
        cap_bytes: int,
    ):
        self.teacher = teacher
        self.shards = shards
        self.device = device
        self.autocast = autocast
        self.task = teacher.shape.task
        self.T = float(temperature)
        self.top_k = min(int(top_k), teacher.shape.vocab) if self.task == "lm" else 0
        self.hidden = hidden
        self.cap = int(cap_bytes)
        self.store: dict[int, dict[str, torch.Tensor]] = {}
        self.cached_bytes = 0
        self.teacher_forwards = 0  # examples the teacher ran on (a measure for the tests and benchmarks)

    @property
    def cacheable(self) -> bool:
        """Whether per-example outputs can be kept at all (an LM distilled over the whole vocabulary cannot)."""
        return self.cap > 0 and not (self.task == "lm" and self.top_k == 0)

    def example_bytes(self, length: int) -> int:
        return example_bytes(self.teacher.shape, length, self.top_k, self.hidden)

    def fill(self, order: np.ndarray, should_stop: Callable[[], None] = lambda: None) -> int:
        """Computes and keeps the outputs of the first examples of `order` (in index order) that fit the cap;
        returns how many are cached."""
        if not self.cacheable:
            return 0
        todo, total = [], self.cached_bytes
        for i in np.sort(np.asarray(order)):
            i = int(i)
            if i in self.store:
                continue
            b = self.example_bytes(int(self.shards.lengths[i]))
            if total + b > self.cap:
                break
            todo.append(i)
            total += b
        todo_arr = np.array(todo, dtype=np.int64)
        todo_arr = todo_arr[np.argsort(self.shards.lengths[todo_arr], kind="stable")]  # less padding, fixed chunks
        for start in range(0, len(todo_arr), CHUNK):
            should_stop()
            idx = todo_arr[start : start + CHUNK]
            batch = self.shards.batch(idx).to(self.device)
            for j, per in enumerate(self._split(self.compute(batch), batch)):
                self.store[int(idx[j])] = per
                self.cached_bytes += self.example_bytes(int(self.shards.lengths[idx[j]]))
        return len(self.store)

    @torch.no_grad()
    def compute(self, batch: Batch) -> TeacherOutputs:
        """The teacher on a batch, rounded as stored."""
        was_training = self.teacher.training
        self.teacher.eval()
        try:
            with self.autocast():
                out = self.teacher.run(batch.input_ids, batch.attention_mask, batch.token_type_ids)
        finally:
            self.teacher.train(was_training)
        self.teacher_forwards += batch.size
        r = TeacherOutputs()
        if self.hidden:
            r.hidden = [h.to(HIDDEN_DTYPE).float() for h in out.hidden_states[1:]]
        if self.task == "classification":
            r.logits = out.logits.float()
        elif self.top_k > 0:
            logp = F.log_softmax(out.logits.float() / self.T, -1)
            top_logp, top_idx = logp.topk(self.top_k, dim=-1)
            r.top_idx, r.top_logp = top_idx, top_logp
            r.tail_logp = torch.log1p(-top_logp.exp().sum(-1).clamp(max=1 - 1e-6))
        else:
            r.logits = out.logits.float()
        return r

    def _split(self, out: TeacherOutputs, batch: Batch) -> list[dict[str, torch.Tensor]]:
        """Per example: its real tokens' outputs, on the CPU."""
        lengths = batch.attention_mask.sum(1).tolist()
        per: list[dict[str, torch.Tensor]] = []
        hidden = torch.stack(out.hidden, 1).to("cpu", HIDDEN_DTYPE) if out.hidden is not None else None  # (B, L, T, H)
        for j, n in enumerate(lengths):
            d: dict[str, torch.Tensor] = {}
            if hidden is not None:
                d["hidden"] = hidden[j, :, :n].clone()
            if self.task == "classification":
                assert out.logits is not None
                d["logits"] = out.logits[j].cpu().clone()
            else:
                assert out.top_idx is not None and out.top_logp is not None and out.tail_logp is not None
                d["top_idx"] = out.top_idx[j, :n].to("cpu", torch.int32).clone()
                d["top_logp"] = out.top_logp[j, :n].cpu().clone()
                d["tail_logp"] = out.tail_logp[j, :n].cpu().clone()
            per.append(d)
        return per

    def outputs(self, idx: np.ndarray, batch: Batch) -> TeacherOutputs:
        """The teacher's outputs for a training batch (`idx`: its example indices): cached ones read, the others computed."""
        idx = np.asarray(idx)
        missing = [j for j, i in enumerate(idx.tolist()) if i not in self.store]
        if len(missing) == len(idx):
            return self.compute(batch)  # nothing cached: the batch as it is
        B, T = batch.input_ids.shape
        fresh: dict[int, dict[str, torch.Tensor]] = {}
        if missing:
            sub = self.shards.batch(idx[missing]).to(self.device)
            for j, per in zip(missing, self._split(self.compute(sub), sub)):
                fresh[j] = per
        rows = [fresh[j] if j in fresh else self.store[int(i)] for j, i in enumerate(idx.tolist())]
        r = TeacherOutputs()
        s = self.teacher.shape
        if self.hidden:
            h = torch.zeros(s.n_layers, B, T, s.hidden, dtype=HIDDEN_DTYPE)
            for j, row in enumerate(rows):
                n = row["hidden"].shape[1]
                h[:, j, :n] = row["hidden"]
            h = h.to(self.device, non_blocking=True).float()
            r.hidden = list(h.unbind(0))
        if self.task == "classification":
            r.logits = torch.stack([row["logits"] for row in rows]).to(self.device)
        else:
            k = self.top_k
            top_idx = torch.zeros(B, T, k, dtype=torch.int32)
            top_logp = torch.full((B, T, k), -1e4)
            tail = torch.zeros(B, T)
            for j, row in enumerate(rows):
                n = row["top_idx"].shape[0]
                top_idx[j, :n], top_logp[j, :n], tail[j, :n] = row["top_idx"], row["top_logp"], row["tail_logp"]
            r.top_idx = top_idx.to(self.device).long()
            r.top_logp, r.tail_logp = top_logp.to(self.device), tail.to(self.device)
        return r


# ----------------------------------------------------------------------------------------------------------------
# Losses against the teacher's outputs


def logit_kd(task: str, student_logits: torch.Tensor, t: TeacherOutputs, batch: Batch, T: float) -> torch.Tensor:
    """T²·KL(teacher/T ‖ student/T): per example (classification) or per real token (LM), averaged."""
    if task == "classification":
        assert t.logits is not None
        s_log = F.log_softmax(student_logits.float() / T, -1)
        return F.kl_div(s_log, F.softmax(t.logits.float() / T, -1), reduction="batchmean") * T * T
    valid = batch.attention_mask.bool()
    if t.top_idx is None:
        assert t.logits is not None
        s_log = F.log_softmax(student_logits[valid].float() / T, -1)
        return F.kl_div(s_log, F.softmax(t.logits[valid].float() / T, -1), reduction="batchmean") * T * T
    assert t.top_logp is not None and t.tail_logp is not None
    return topk_kd(student_logits[valid], t.top_idx[valid], t.top_logp[valid], t.tail_logp[valid], T)


def topk_kd(student_logits: torch.Tensor, top_idx: torch.Tensor, top_logp: torch.Tensor, tail_logp: torch.Tensor, T: float) -> torch.Tensor:
    """T²·KL between the teacher's and the student's distributions coarsened to the teacher's top k tokens plus one
    bucket for the rest, per token (N, V) → mean. Exact in the top k; the tail counts as one outcome. The student's
    side needs one log-sum-exp over the vocabulary instead of a full softmax comparison."""
    z = student_logits.float() / T
    lse = torch.logsumexp(z, -1, keepdim=True)
    s_top = z.gather(-1, top_idx) - lse  # log q over the teacher's top k
    s_tail = torch.log1p(-s_top.exp().sum(-1).clamp(max=1 - 1e-6))
    p_top, p_tail = top_logp.exp(), tail_logp.exp()
    kl = (p_top * (top_logp - s_top)).sum(-1) + p_tail * (tail_logp - s_tail)
    return kl.mean() * T * T


def lm_distill_loss(logits: torch.Tensor, t: TeacherOutputs, batch: Batch, T: float, alpha: float) -> torch.Tensor:
    """(1 − alpha)·next-token cross-entropy + alpha·`topk_kd`, each the mean over its real tokens, as one fused op.

    The same value and gradient as `lm_loss` and `topk_kd` side by side, for a fraction of their memory traffic: an
    LM's vocabulary makes every pass over the (tokens × V) logits cost about as much as the model body of a small
    model, and the two losses apart make about a dozen of them (shifted and indexed copies, two softmaxes, scatters
    back in the backward). Here the forward reads the logits twice and the backward writes their gradient once."""
    assert t.top_idx is not None and t.top_logp is not None and t.tail_logp is not None
    mask = batch.attention_mask.float()
    # Position i predicts token i + 1; the last position predicts nothing (weight 0, any target).
    target = torch.cat([batch.input_ids[:, 1:], batch.input_ids[:, :1]], 1)
    ce_w = torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], 1)
    ce_w = ce_w / ce_w.sum().clamp(min=1)
    kd_w = mask / mask.sum().clamp(min=1)
    return _LMDistill.apply(logits, target, ce_w, kd_w, t.top_idx, t.top_logp, t.tail_logp, T, alpha)


Q_MAX = 1 - 1e-6  # the top-k mass is clamped below 1 so that the tail's log stays finite (as in `topk_kd`)


def _row_chunks(n_rows: int, vocab: int, device: torch.device) -> list[slice]:
    """Row blocks of the logits: on a CPU a block that stays in cache makes each pass over it several times cheaper
    (measured 4x for the forward's two log-sum-exps at V = 4096); on a GPU the block bounds the fp32 temporaries."""
    elements = 2**26 if device.type == "cuda" else 2**20
    rows = max(1, elements // vocab)
    return [slice(i, min(i + rows, n_rows)) for i in range(0, n_rows, rows)]


class _LMDistill(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target, ce_w, kd_w, top_idx, top_logp, tail_logp, T: float, alpha: float):
        V, k = logits.shape[-1], top_idx.shape[-1]
        flat = logits.reshape(-1, V)
        target, ce_w, kd_w = target.reshape(-1, 1), ce_w.reshape(-1), kd_w.reshape(-1)
        top_idx, top_logp, tail_logp = top_idx.reshape(-1, k), top_logp.reshape(-1, k), tail_logp.reshape(-1)
        n = flat.shape[0]
        lse, lse_t, z_target = (torch.empty(n, device=flat.device) for _ in range(3))
        z_top = torch.empty(n, k, device=flat.device)
        for r in _row_chunks(n, V, flat.device):
            z = flat[r].float()
            lse[r] = torch.logsumexp(z, -1)
            lse_t[r] = torch.logsumexp(z / T, -1)
            z_target[r] = z.gather(-1, target[r]).squeeze(-1)
            z_top[r] = z.gather(-1, top_idx[r])
        ce = lse - z_target
        s_top = z_top / T - lse_t.unsqueeze(-1)
        q_top = s_top.exp()
        q_raw = q_top.sum(-1)
        s_tail = torch.log1p(-q_raw.clamp(max=Q_MAX))
        p_top, p_tail = top_logp.exp(), tail_logp.exp()
        kl = (p_top * (top_logp - s_top)).sum(-1) + p_tail * (tail_logp - s_tail)
        loss = (1 - alpha) * (ce_w * ce).sum() + alpha * T * T * (kd_w * kl).sum()
        ctx.save_for_backward(logits, target, ce_w, kd_w, top_idx, p_top, p_tail, q_top, q_raw)
        ctx.T, ctx.alpha = T, alpha
        return loss

    @staticmethod
    def backward(ctx, grad_out):
        logits, target, ce_w, kd_w, top_idx, p_top, p_tail, q_top, q_raw = ctx.saved_tensors
        T, alpha = ctx.T, ctx.alpha
        V = logits.shape[-1]
        flat = logits.reshape(-1, V)
        a = grad_out * (1 - alpha) * ce_w  # cross-entropy: a·(softmax(z) − onehot(target))
        b = grad_out * alpha * T * kd_w  # KL at temperature T, times T²: T·∂KL/∂u with u = z / T
        open_tail = q_raw < Q_MAX  # where the clamp holds, the tail's log is a constant
        tail = torch.where(open_tail, p_tail / (1 - q_raw).clamp(min=1 - Q_MAX), torch.zeros_like(p_tail))
        # ∂KL/∂u_j = q_j·(P_K − p_tail·Q/(1 − Q)) over the vocabulary, plus (p_tail·q_j/(1 − Q) − p_j) on the top k.
        row = (b * (p_top.sum(-1) - tail * q_raw)).unsqueeze(-1)
        on_top = b.unsqueeze(-1) * (tail.unsqueeze(-1) * q_top - p_top)
        a = a.unsqueeze(-1)
        grad = torch.empty_like(flat)
        for r in _row_chunks(flat.shape[0], V, flat.device):
            z = flat[r].float()
            g = torch.softmax(z, -1).mul_(a[r])
            g.add_(torch.softmax(z / T, -1).mul_(row[r]))
            g.scatter_add_(-1, top_idx[r], on_top[r])
            g.scatter_add_(-1, target[r], -a[r])
            grad[r] = g
        return grad.view_as(logits), None, None, None, None, None, None, None, None


def hidden_mse(
    student: list[torch.Tensor], teacher: list[torch.Tensor], batch: Batch, proj=None, dim_weights: torch.Tensor | None = None
) -> torch.Tensor | float:
    """Mean over layers of the squared error relative to the teacher's mean square, on real tokens.

    `student` and `teacher`: each layer's output (the embedding output excluded). `dim_weights`, the hidden
    dimensions' keep probabilities in phase 1, weight the error per dimension; they are constants here (detached):
    the loss must not be lowered by closing the dimensions where the student differs from the teacher. Padding is
    weighted out rather than indexed out: a gather and its scatter in the backward cost more than the few padded
    positions do."""
    tokens = batch.attention_mask.float().unsqueeze(-1)  # (B, T, 1)
    n_tokens = tokens.sum().clamp(min=1.0)
    total: torch.Tensor | float = 0.0
    w = None if dim_weights is None else dim_weights.detach().float()
    for s_h, t_h in zip(student, teacher):
        s_h, t_h = s_h.float(), t_h.float()
        if proj is not None:
            s_h = proj(s_h)
        err = (s_h - t_h).pow(2) * tokens
        scale = (t_h.pow(2) * tokens).sum() / (n_tokens * t_h.shape[-1]) + 1e-6
        if w is not None:
            total = total + torch.matmul(err, w).sum() / n_tokens / w.sum().clamp(min=1e-6) / scale
        else:
            total = total + err.sum() / (n_tokens * err.shape[-1]) / scale
    return total / max(len(student), 1)


# CoFi's distillation weights (its scripts: distill_ce_loss_alpha 0.1, distill_loss_alpha 0.9; no task loss).
COFI_LOGIT_WEIGHT, COFI_LAYER_WEIGHT = 0.1, 0.9


class MatchedLayers(nn.Module):
    """CoFi's layer distillation with dynamic layer matching (its `layer_distill_version` 4).

    Every third teacher layer counted back from the last (12 layers: 2, 5, 8, 11) is matched to one student layer,
    each student layer's output first mapped by a learned linear layer (CoFi's `layer_transformation`). The matching
    is chosen again at every step from the MSE of every (teacher layer, student layer) pair: from the last teacher
    layer down, the student layer with the lowest error among those below the previous match whose attention is
    on. The loss is the sum of the matched pairs' MSE, on real tokens."""

    def __init__(self, width: int, hidden: int, n_layers: int, seed: int = 0):
        super().__init__()
        self.transform = nn.Linear(width, hidden)
        with torch.no_grad():  # CoFi's module comes from the BERT initialisation: N(0, 0.02²), zero bias
            self.transform.weight.normal_(0.0, 0.02, generator=torch.Generator().manual_seed(seed))
            self.transform.bias.zero_()
        self.targets = list(range(n_layers - 1, -1, -3))[::-1]

    def narrowed(self, kept_hidden: torch.Tensor) -> MatchedLayers:
        """The same matching for a student pruned to the hidden dimensions `kept_hidden`: the map reads those
        columns only (as CoFi prunes its `layer_transformation` with the hidden mask)."""
        out = MatchedLayers(len(kept_hidden), self.transform.out_features, 0)
        out.targets = list(self.targets)
        with torch.no_grad():
            cols = kept_hidden.to(self.transform.weight.device)
            out.transform.weight.copy_(self.transform.weight[:, cols])
            out.transform.bias.copy_(self.transform.bias)
        return out.to(self.transform.weight.device)

    def errors(self, student: list[torch.Tensor], teacher: list[torch.Tensor], batch: Batch) -> torch.Tensor:
        """(targets, student layers): the MSE of each matched-able pair on real tokens."""
        tokens = batch.attention_mask.float().unsqueeze(-1)
        n = tokens.sum().clamp(min=1.0) * self.transform.out_features
        mapped = [self.transform(s.float()) for s in student]
        rows = [torch.stack([((m - teacher[t].float()).pow(2) * tokens).sum() / n for m in mapped]) for t in self.targets]
        return torch.stack(rows)

    def align(self, errors: torch.Tensor, existing: list[bool] | None = None) -> list[int]:
        """The student layer matched to each target, last target first, each below the one matched after it."""
        bound = errors.shape[1]
        picks: list[int] = []
        for row in reversed(range(errors.shape[0])):
            order = torch.argsort(errors[row].detach(), stable=True).tolist()
            allowed = [i for i in order if i < bound and (existing is None or existing[i])]
            bound = allowed[0] if allowed else min(bound, errors.shape[1] - 1)  # CoFi: the previous match again
            picks.append(bound)
        return picks[::-1]

    def loss(
        self, student: list[torch.Tensor], teacher: list[torch.Tensor], batch: Batch, existing: list[bool] | None = None
    ) -> torch.Tensor:
        errors = self.errors(student, teacher, batch)
        picks = self.align(errors, existing)
        return errors[torch.arange(len(picks)), torch.tensor(picks)].sum()
