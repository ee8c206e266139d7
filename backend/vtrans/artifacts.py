"""A finished run's artifacts, loaded once and kept while the files do not change: its settings, the source
model's shape, the masks (and phase-1 snapshots) and the weights they were trained with, the report — and the
operations on them that need no training: predict, export at another budget (re-threshold), more sweep points.

The cutting is `selection.Selector`'s, the same code the compression used for its own cut and sweep.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import shutil
import threading

import torch

from .checkpoint import load_model, load_shape
from .correction import Corrector, calibration_indices, refit_of
from .errors import Cancelled, UserError
from .evaluate import better_metric, evaluate, examples_read
from .export import export_onnx
from .masks import SNAPSHOT_FILE, MaskLadder, load_snapshot_weights
from .models import VTransModel
from .protocol import PredictResult, RethresholdParams, RethresholdResult, SweepParams, SweepResult
from .report import Metric, RunReport, UnitCount, UnitCounts, layer_reports, read_report, sorted_points, write_report
from .runs import RunDir, RunInfo
from .safetensors_io import load_file
from .selection import Correct, ScaleChoice, Selector, summarize
from .settings import METHODS, CompressSettings, masks_on_frozen_weights, schedule_of
from .shapes import check_shape, how_to_load, other_shape, other_shape_points, save_output
from .shards import Shards

log = logging.getLogger("vtrans")


class RunArtifacts:
    def __init__(self, run_dir: str):
        run = RunDir(run_dir)
        self.run = run
        self.info: RunInfo = run.read()
        if not os.path.exists(run.file("masks.safetensors")):
            raise UserError(f"{run.file('masks.safetensors')}: missing; the run did not finish its mask training. Resume or rerun it.")
        self.settings: CompressSettings = self.info.settings
        self.model_dir = self.settings.model_dir
        self.shape = load_shape(self.model_dir, self.settings.task)
        ladder = MaskLadder.load(run.path, self.shape, self.settings.vib, self.settings.method)
        self.seq_len = Shards(self.settings.train_shards).mean_length
        self.report: RunReport | None = read_report(run.file("report.json")) if os.path.exists(run.file("report.json")) else None
        self._weights: VTransModel | None = None
        # A re-thresholded run has no weights of its own: they are its parent's.
        self.weights_run = run.path
        while not os.path.exists(os.path.join(self.weights_run, "checkpoints", "masked-weights.safetensors")):
            parent = RunDir(self.weights_run).read().parent if RunDir(self.weights_run).exists() else None
            if not parent:
                break
            self.weights_run = parent
        s = self.settings
        self.device = torch.device("cpu")  # where corrections run; set by the handler that cuts
        self.autocast = contextlib.nullcontext
        self.selector = Selector.of_run(s, self.shape, ladder, self.seq_len, self.weights_for, self._corrector(), self._scale_choice())

    def _corrector(self) -> Correct | None:
        """The run's least-squares correction of every cut, on the same examples the run used."""
        s = self.settings
        if not s.correction.enabled or s.method not in METHODS:
            return None

        def correct(source: VTransModel, keep, scales):
            train = Shards(s.train_shards)
            idx = calibration_indices(len(train), schedule_of(s).fraction, s.correction.examples, s.seed)
            corrector = Corrector(train, idx, self.device, self.autocast, s.correction.ridge, s.batch_size, refit=refit_of(s))
            return corrector.correct(source.to(self.device), keep, scales)

        return correct

    def _scale_choice(self) -> ScaleChoice | None:
        """The run's choice of scales for every cut (masks trained on frozen weights), on its dev split as its
        sweep measured it: a re-thresholded export gets the model the sweep scored."""
        s = self.settings
        if not masks_on_frozen_weights(s.method) or not os.path.exists(s.eval_shards):
            return None

        shards: list[Shards] = []  # opened at the first cut, not when the artifacts load (predict needs no data)

        def dev_split() -> Shards:
            shards[:] = shards or [Shards(s.eval_shards)]
            return shards[0]

        def dev(model: VTransModel) -> Metric:
            return evaluate(model.to(self.device), dev_split(), self.device, limit=s.eval_limit, autocast=self.autocast)

        def chosen(keep: float, name: str, scores: dict[str, float]) -> None:
            # Said as the run's own cuts say it: with scale 1 chosen, the correction does not reach the exported model.
            log.info("cut at keep %g: %s scales (dev %s)", keep, name, ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))

        better = functools.partial(better_metric, self.shape.task)
        return ScaleChoice(dev, better, lambda: examples_read(dev_split(), s.eval_limit), chosen)

    def on(self, device: torch.device, autocast) -> RunArtifacts:
        """Corrections of the following cuts run on this device."""
        self.device, self.autocast = device, autocast
        return self

    def weights_for(self, label: str | None) -> VTransModel:
        """The full-size weights the masks were trained with (phase 1; a snapshot's for its label), or the
        source's for Faster-VTrans."""
        snapshot = load_snapshot_weights(self.weights_run, label)
        if snapshot is not None:
            model = load_model(self.model_dir, task=self.shape.task)
            model.load_state_dict(snapshot)
            return model
        if self._weights is None:
            model = load_model(self.model_dir, task=self.shape.task)
            trained = os.path.join(self.weights_run, "checkpoints", "masked-weights.safetensors")
            if os.path.exists(trained):
                model.load_state_dict(load_file(trained))
            self._weights = model
        return self._weights

    def sweep_points(self):
        return self.report.tradeoff if self.report else []

    def predict(self, keep: float, kind: str | None, shape: str | None = None) -> PredictResult:
        return self.selector.predict(keep, kind, self.sweep_points(), shape)


_cache: dict[str, tuple[tuple, RunArtifacts]] = {}
_cache_lock = threading.Lock()


def _stamp(run_dir: str) -> tuple:
    """What invalidates the loaded artifacts: the report, run.json and the masks changing."""
    out = []
    for name in ("report.json", "run.json", "masks.safetensors"):
        path = os.path.join(run_dir, name)
        out.append(os.stat(path).st_mtime_ns if os.path.exists(path) else 0)
    return tuple(out)


def artifacts(run_dir: str) -> RunArtifacts:
    key = os.path.abspath(run_dir)
    with _cache_lock:
        stamp = _stamp(key)
        cached = _cache.get(key)
        if cached is None or cached[0] != stamp:
            cached = (stamp, RunArtifacts(key))
            _cache[key] = cached
        return cached[1]


def rethreshold(art: RunArtifacts, p: RethresholdParams, device: torch.device, autocast, progress, check) -> RethresholdResult:
    """A new run directory holding the model cut from the run's masks at another budget (no training)."""
    kind = p.budget or art.settings.budget
    shape = check_shape(p.shape or art.settings.shape)
    out = RunDir(p.out_dir)
    parent = art.run.path
    settings = copy.deepcopy(art.settings)
    settings.run_dir, settings.keep, settings.budget, settings.shape = out.path, p.keep, kind, shape  # type: ignore[assignment]
    out.create(settings, method="rethreshold", parent=parent)
    try:
        art.on(device, autocast)
        sel, gates, pruned = art.selector.cut(p.keep, kind, shape=shape)
        progress({"runDir": out.path, "phase": "prune", "step": 1, "total": 3})
        save_output(pruned, out.file("model"), shape, tokenizer_from=art.model_dir)
        shutil.copyfile(art.run.file("masks.safetensors"), out.file("masks.safetensors"))
        if os.path.exists(art.run.file(SNAPSHOT_FILE)):
            shutil.copyfile(art.run.file(SNAPSHOT_FILE), out.file(SNAPSHOT_FILE))
        check()
        progress({"runDir": out.path, "phase": "export", "step": 2, "total": 3})
        export_onnx(pruned, out.file("model.onnx"), with_token_types=art.settings.with_token_types)
        if os.path.exists(art.run.file("teacher.onnx")):
            shutil.copyfile(art.run.file("teacher.onnx"), out.file("teacher.onnx"))
        metric = None
        eval_dir = p.eval_shards or art.settings.eval_shards
        if eval_dir and os.path.exists(eval_dir) and not p.skip_eval:
            progress({"runDir": out.path, "phase": "evaluate", "step": 3, "total": 3})
            metric = evaluate(pruned.to(device), Shards(eval_dir), device, autocast=autocast, should_stop=check)
        student = summarize(sel.shape, art.seq_len, metric)
        units = UnitCounts.of(art.shape, sel.keep)
        if art.report is not None:
            report = _derived_report(art, out, sel, gates, kind, p.keep, student, units, parent)
            write_report(out.file("report.json"), _with_shape(report, art, out, shape))
        result = RethresholdResult(
            "done",
            out.path,
            parent,
            "rethreshold",
            kind,
            p.keep,
            sel.fraction,
            student,
            units,
            out.file("model"),
            out.file("model.onnx"),
            shape,  # type: ignore[arg-type]
        )
        out.update(status="done", result=result, pid=None)
        return result
    except Cancelled:
        out.update(status="cancelled", pid=None)
        raise
    except Exception as e:
        out.update(status="failed", error=str(e), pid=None)
        raise


def _derived_report(art: RunArtifacts, out: RunDir, sel, gates, kind: str, keep: float, student, units, parent: str) -> RunReport:
    """The parent's report with this cut's budget, units, per-layer retention and finetuned point."""
    assert art.report is not None
    report = copy.deepcopy(art.report)
    report.run_id = os.path.basename(out.path)
    report.student = student
    report.budget.kind, report.budget.keep, report.budget.achieved = kind, keep, sel.fraction  # type: ignore[assignment]
    report.units = units
    report.layers = layer_reports(art.shape, sel.keep, gates.scores(), _probes_of(art.report))
    report.hidden_kept = UnitCount(len(sel.keep.hidden), art.shape.hidden)
    report.parent = parent
    finetuned = art.selector.point("finetuned", keep, kind, sel.shape, student.metric, units)
    report.tradeoff = sorted_points([p for p in report.tradeoff if p.source != "finetuned"] + [finetuned])
    return report


def _with_shape(report: RunReport, art: RunArtifacts, out: RunDir, shape: str) -> RunReport:
    """A derived report in an output shape: its finetuned point's shape, how its model/ loads, and, for a cut in
    the shape the parent did not ship, that shape's sweep as the report's own sweep (and the parent's as the other)."""
    for p in report.tradeoff:
        if p.source == "finetuned":
            p.shape = shape  # type: ignore[assignment]
    if shape != art.selector.output_shape:
        swap = {"sweep": f"sweep:{art.selector.output_shape}", f"sweep:{shape}": "sweep"}
        for p in report.tradeoff:
            p.source = swap.get(p.source, p.source)
        selector = copy.copy(art.selector)
        selector.output_shape = shape
        report.predictions = selector.prediction_table(report.tradeoff)
    report.load = how_to_load(out.file("model"), art.shape.family, art.shape.task, shape)
    return report


def _probes_of(report: RunReport) -> dict | None:
    """Per-head probe figures of a report, in run_probes' layout, to carry them into a derived report."""
    if not any(h.probes for layer in report.layers for h in layer.heads):
        return None
    return {"layers": [[h.probes or {} for h in layer.heads] for layer in report.layers]}


def sweep(art: RunArtifacts, p: SweepParams, device: torch.device, autocast, progress, check) -> SweepResult:
    """Re-thresholded models evaluated at more budgets, merged into the run's report.json."""
    shards = Shards(p.eval_shards or art.settings.eval_shards)
    kind = p.budget or art.settings.budget
    budgets = sorted({float(b) for b in p.budgets}, reverse=True)
    art.on(device, autocast)
    # The run's scale choice scored its cuts on its own dev split: those metrics stand for this sweep's on the same.
    same_split = os.path.abspath(p.eval_shards or art.settings.eval_shards) == os.path.abspath(art.settings.eval_shards)
    examples = examples_read(shards, p.limit)
    points = []
    for i, keep in enumerate(budgets):
        check()
        sel, _, model = art.selector.cut(keep, kind, device)
        metric = art.selector.scored(keep, examples, kind) if same_split else None
        metric = metric or evaluate(model, shards, device, limit=p.limit, autocast=autocast, should_stop=check)
        points.append(art.selector.point("sweep", keep, kind, sel.shape, metric, UnitCounts.of(art.shape, sel.keep)))
        progress({"runDir": art.run.path, "phase": "sweep", "step": i + 1, "total": len(budgets)})
    evaluate_other = lambda m: evaluate(m, shards, device, limit=p.limit, autocast=autocast, should_stop=check)  # noqa: E731
    points += other_shape_points(art.selector, budgets, kind, evaluate_other, check, device, examples if same_split else None)
    if art.report is not None:
        swept = ("sweep", f"sweep:{other_shape(art.selector.output_shape)}")
        kept = [q for q in art.report.tradeoff if not (q.source in swept and q.kind == kind and q.keep in budgets)]
        art.report.tradeoff = sorted_points(kept + points)
        art.report.predictions = art.selector.prediction_table(art.report.tradeoff)
        write_report(art.run.file("report.json"), art.report)
    return SweepResult(art.run.path, points)
