"""Cutting a model from a run's masks at any budget, and predicting what that model keeps and scores.

One `Selector` serves a compression while it runs (the final cut and the tradeoff sweep) and a finished run
afterwards (export at another budget, live budget tuning, more sweep points): the mask ladder picks the gates a
budget is cut from (a phase-1 snapshot above the run's target, else the final masks), a `Ranking` of those gates
the exact keep-set (cost-aware for VIB gates: `cut` "density"; ranked once per set of gates and budget kind, so
that a budget is a binary search), the least-squares correction (`Corrector`, when given) the cut's output
projections or its kept units' scales, and `prune_model` the smaller model from the weights those gates were trained
with.

`predict` is the one prediction function: the status bar, the tradeoff marker and report.json's prediction
table all come from it.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

import torch

from .budget import KINDS, Ranking, Selection, size_of
from .errors import UserError
from .masks import MaskLadder
from .models import VTransModel
from .protocol import PredictResult
from .prune import Refit, UnitScales, prune_model
from .report import Metric, ModelSummary, PredictedSize, PredictionTable, TradeoffPoint, UnitCounts
from .settings import BudgetKind, CompressSettings, OutputShape
from .shapes import check_shape
from .structure import ModelShape, count_params, family_of, flops_per_token
from .uniform import select_uniform
from .vib import UnitGates

if TYPE_CHECKING:
    from .prune import KeepSet

WeightsFor = Callable[[str | None], VTransModel]
Correct = Callable[[VTransModel, "KeepSet", UnitScales], Refit]
CutKey = tuple[str | None, str, float, str]  # snapshot label, budget kind, keep, output shape


@dataclass
class ScaleChoice:
    """For masks trained on frozen weights (Faster-VTrans, settings.masks_on_frozen_weights): the first cut at a
    budget folds in the trained scales (corrected, when the correction is on) or scale 1, whichever model scores
    better on the dev split (ties keep the trained scales); the other output shape's cut at that budget takes the same
    kind of scales without scoring them again.

    Why: with the weights frozen, μ stands in for the weights that did not train, and on a small data fraction it
    drifts far from 1 (on party an attention sublayer's scale went to -0.7, the kept neurons to 1.5 on average); the
    same keep-set at scale 1 is the teacher's own units, and scored 4-7 points higher on dev and test at keep 0.3.
    Which is better depends on the run and the budget, so each budget measures both. Whether μ drifted is a fact of
    the gates at that budget, not of the output shape: on party both shapes chose scale 1, the uniform cut by the
    wider margin (9.4 points against 3.5), so the second shape's two evaluations and refit bought nothing.

    The chosen model's metric is kept (Selector.scored): the sweep point and the student metric of the same model on
    the same examples are that metric, not another evaluation."""

    score: Callable[[VTransModel], Metric]  # the dev metric, as the sweep measures it
    better: Callable[[float, float], bool]
    # How many dev examples (the first, in file order) each score reads; a function, as a re-thresholded export
    # opens its dev split at its first cut only (predict needs no data).
    examples: Callable[[], int]
    chosen: Callable[[float, str, dict[str, float]], None] = lambda keep, name, scores: None


TABLE_STEPS = 100  # report.json's prediction table: keep = 0.01, 0.02, ..., 1.00


def summarize(shape: ModelShape, seq_len: float, metric: Metric | None) -> ModelSummary:
    counts = count_params(shape)
    return ModelSummary(counts["total"], counts["encoder"], flops_per_token(shape, seq_len), metric)


class Selector:
    def __init__(
        self,
        shape: ModelShape,
        ladder: MaskLadder,
        run_kind: str,
        run_keep: float,
        seq_len: float,
        round_to: int,
        weights_for: WeightsFor,
        output_shape: str = "heterogeneous",
        rule: str = "fisher",
        correct: Correct | None = None,
        scale_choice: ScaleChoice | None = None,
    ):
        self.shape = shape
        self.ladder = ladder
        self.run_kind = run_kind
        self.run_keep = run_keep
        self.seq_len = seq_len
        self.round_to = round_to
        self.weights_for = weights_for
        self.output_shape = output_shape  # the run's: heterogeneous or uniform (docs/model-format.md)
        self.rule = rule
        self.correct = correct
        self.scale_choice = scale_choice
        self._rankings: dict[tuple[str | None, str], Ranking] = {}
        # What each cut folds in: the run's own budget is cut again for the sweep, and a correction on thousands of
        # examples takes minutes (a scale choice, two evaluations). The source weights of a label do not change once
        # a Selector exists.
        self._refits: dict[CutKey, Refit] = {}
        self._choices: dict[tuple[str | None, str, float], str] = {}  # a budget's scales, by its first cut
        # The dev metric of each scored cut's model, by budget and shape (a budget's snapshot label follows from it).
        self._metrics: dict[tuple[str, float, str], Metric] = {}

    @classmethod
    def of_run(
        cls,
        s: CompressSettings,
        shape: ModelShape,
        ladder: MaskLadder,
        seq_len: float,
        weights_for: WeightsFor,
        correct: Correct | None,
        scale_choice: ScaleChoice | None,
    ) -> Selector:
        """The selector of a run: its budget, rounding, output shape and cut rule from its settings."""
        return cls(shape, ladder, s.budget, s.keep, seq_len, s.round_to, weights_for, s.shape, s.cut, correct, scale_choice)

    def ranking(self, label: str | None, kind: str) -> Ranking:
        """The ranking of one set of gates (a snapshot's, or the final ones for None) for one budget kind, built once."""
        key = (label, kind)
        r = self._rankings.get(key)
        if r is None:
            gates = self.ladder.gates(label)
            values = None if self.rule == "score" else gates.values(self.rule)
            r = Ranking(self.shape, gates.scores(), kind, self.seq_len, self.round_to, values)
            self._rankings[key] = r
        return r

    def choose(self, keep: float, kind: str | None = None, shape: str | None = None) -> tuple[Selection, UnitGates, str | None]:
        """The keep-set at `keep` of `kind` (default: the run's) in an output shape (default: the run's), the gates
        it was ranked by, and their snapshot label."""
        kind = kind or self.run_kind
        if kind not in KINDS:
            raise UserError(f"budget: must be one of {', '.join(KINDS)}, got {kind!r}")
        if not 0 < float(keep) <= 1:
            raise UserError(f"keep: must be in (0, 1], got {keep}")
        run_keep = float(keep)
        if kind != self.run_kind:  # snapshots are labelled in the run's kind: translate through the final masks' cut
            cut = self.ranking(None, kind).select(float(keep)).shape
            run_keep = size_of(cut, self.run_kind, self.seq_len) / size_of(self.shape, self.run_kind, self.seq_len)
        label = self.ladder.label_for(run_keep, self.run_keep)
        gates = self.ladder.gates(label)
        if check_shape(shape or self.output_shape) == "uniform":  # uniform layers (uniform.py)
            sel = select_uniform(self.shape, gates.scores(), kind, float(keep), self.seq_len, self.round_to)
        else:  # per-layer sizes, the run's cut rule (budget.Ranking)
            sel = self.ranking(label, kind).select(float(keep))
        return sel, gates, label

    def cut(
        self, keep: float, kind: str | None = None, device: torch.device | None = None, shape: str | None = None
    ) -> tuple[Selection, UnitGates, VTransModel]:
        """The pruned model at a budget (in an output shape, default the run's), with the gates' scales folded in
        (corrected, when the correction is on)."""
        sel, gates, label = self.choose(keep, kind, shape)
        source = self.weights_for(label)
        key = self._key(label, keep, kind, shape)
        if key[3] == "uniform":
            sel.keep.head_dims = family_of(self.shape.family).uniform_head(source, sel.shape.hidden)
        if key not in self._refits:
            self._refits[key] = self.refit_of(key, source, sel.keep, gates.scales())
        model = prune_model(source, sel.keep, self._refits[key])
        return sel, gates, model.to(device) if device is not None else model

    def _key(self, label: str | None, keep: float, kind: str | None, shape: str | None) -> CutKey:
        return (label, kind or self.run_kind, float(keep), shape or self.output_shape)

    def refit_of(self, key: CutKey, source: VTransModel, kept: KeepSet, trained: UnitScales) -> Refit:
        """What a cut folds in: the trained scales, corrected when the correction is on, or scale 1 where the
        ScaleChoice finds it better (or found it better for the budget's other output shape)."""
        c = self.scale_choice

        def fit(scales: UnitScales) -> Refit:
            return self.correct(source, kept, scales) if self.correct is not None else Refit(scales)

        if c is None:
            return fit(trained)
        candidates = {"trained": lambda: fit(trained), "one": lambda: Refit(UnitScales.ones(self.shape))}
        budget = key[:3]
        followed = self._choices.get(budget)
        if followed is not None:  # no correction for scale 1, no scoring
            return candidates[followed]()
        refits = {name: make() for name, make in candidates.items()}
        metrics = {name: c.score(prune_model(source, kept, r)) for name, r in refits.items()}
        name = "one" if c.better(metrics["one"].value, metrics["trained"].value) else "trained"
        self._choices[budget] = name
        self._metrics[key[1:]] = metrics[name]
        c.chosen(key[2], name, {n: m.value for n, m in metrics.items()})
        return refits[name]

    def scored(self, keep: float, examples: int, kind: str | None = None, shape: str | None = None) -> Metric | None:
        """The dev metric the scale choice measured for the model `cut` returns at this budget, where it read
        `examples` examples (as the caller's evaluation would); None where it did not score that model."""
        if self.scale_choice is None or self.scale_choice.examples() != examples:
            return None
        return self._metrics.get(self._key(None, keep, kind, shape)[1:])

    def point(
        self,
        source: str,
        keep: float,
        kind: str,
        shape: ModelShape,
        metric: Metric | None,
        units: UnitCounts | None,
        output_shape: str | None = None,
    ) -> TradeoffPoint:
        s = summarize(shape, self.seq_len, metric)
        return TradeoffPoint(
            source,
            keep,
            cast(BudgetKind, kind),
            s.params,
            s.encoder_params,
            s.flops_per_token,
            None if metric is None else metric.value,
            units=units,
            shape=cast(OutputShape, output_shape or (None if source == "teacher" else self.output_shape)),
        )

    def predict(self, keep: float, kind: str | None, sweep: list[TradeoffPoint], shape: str | None = None) -> PredictResult:
        """Exact sizes of the keep-set at a budget, and the sweep's metric interpolated at its size (the points of
        that output shape)."""
        t0 = time.monotonic()
        sel, _, _ = self.choose(keep, kind, shape)
        s = summarize(sel.shape, self.seq_len, None)
        if shape is not None and shape != self.output_shape:
            sweep = [replace(p, source="sweep") for p in sweep if p.source == f"sweep:{shape}"]
        return PredictResult(
            shape=cast(OutputShape, shape or self.output_shape),
            keep=float(keep),
            kind=kind or self.run_kind,  # type: ignore[arg-type]
            achieved=sel.fraction,
            params=s.params,
            encoder_params=s.encoder_params,
            flops_per_token=s.flops_per_token,
            metric=interpolate_metric(sweep, s.params),
            metric_source="sweep-interpolation",
            units=UnitCounts.of(self.shape, sel.keep),
            seconds=time.monotonic() - t0,
        )

    def prediction_table(self, sweep: list[TradeoffPoint]) -> PredictionTable:
        rows = []
        for i in range(1, TABLE_STEPS + 1):
            p = self.predict(i / TABLE_STEPS, self.run_kind, sweep)
            rows.append(PredictedSize(p.keep, p.achieved, p.params, p.encoder_params, p.flops_per_token, p.metric))
        return PredictionTable(self.run_kind, rows)  # type: ignore[arg-type]


def interpolate_metric(points: list[TradeoffPoint], params: float) -> float | None:
    """Linear in parameters between the sweep's re-thresholded points (held flat beyond the ends)."""
    pts = sorted((p.params, p.metric) for p in points if p.source == "sweep" and p.metric is not None)
    if not pts:
        return None
    xs = [p[0] for p in pts]
    i = bisect.bisect_left(xs, params)
    if i <= 0:
        return pts[0][1]
    if i >= len(pts):
        return pts[-1][1]
    (x0, y0), (x1, y1) = pts[i - 1], pts[i]
    return y1 if x1 == x0 else y0 + (y1 - y0) * (params - x0) / (x1 - x0)
