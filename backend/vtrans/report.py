"""report.json: the run's figures for the views and report.html. The contracts here are the file's one
definition (src/core/contracts.ts is generated from them); the backend is its one writer — what only the client
measures (onnxruntime-node latencies, decoded keywords) arrives through the `recordMeasurements` request."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from typing import Literal

import torch

from .schema import dump, parse
from .settings import BaselineMethod, BudgetKind, Method, OutputShape, Task

MetricName = Literal["accuracy", "perplexity"]
RunStatus = Literal["running", "done", "failed", "cancelled"]
ProbeName = Literal["special", "current", "previous", "keywords", "entropy"]
REPORT_VERSION: Literal[1] = 1


@dataclass
class Metric:
    name: MetricName
    value: float
    f1: float | None = field(default=None, metadata={"doc": "Macro F1 for classification, when computed."})
    count: int | None = field(default=None, metadata={"doc": "Number of eval examples (classification) or tokens (LM)."})


@dataclass
class OnnxMeasurement:
    """An ONNX model measured in onnxruntime-node."""

    path: str = field(metadata={"doc": "Relative to the run directory."})
    bytes: int
    latency_ms: dict[str, float] = field(metadata={"doc": 'Median latency at sequence length seqLen, by batch size ("1", "32").'})
    seq_len: int
    threads: int
    metric: Metric | None = field(
        default=None, metadata={"doc": "The metric recomputed from onnxruntime-node's logits on the eval shards."}
    )


@dataclass
class ModelSummary:
    params: int
    encoder_params: int
    flops_per_token: float
    metric: Metric | None
    onnx: OnnxMeasurement | None = None


@dataclass
class UnitCount:
    kept: int
    total: int


@dataclass
class UnitCounts:
    hidden: UnitCount
    heads: UnitCount
    ffn: UnitCount
    attention_layers: UnitCount
    ffn_layers: UnitCount

    @staticmethod
    def of(shape, keep) -> UnitCounts:
        """Kept/total counts per unit type of a keep-set."""
        from .budget import unit_summary

        return parse(UnitCounts, unit_summary(shape, keep))


POINT_SOURCE_TS = "'sweep' | 'finetuned' | 'teacher' | `baseline:${string}` | `sweep:${OutputShape}`"


@dataclass
class TradeoffPoint:
    """One point of the size/accuracy tradeoff. source 'sweep': masks re-thresholded without training, in the
    run's output shape; 'sweep:<shape>': the same in the other output shape; 'finetuned': the trained and
    fine-tuned run; 'teacher': the unpruned model; 'baseline:<name>': another method."""

    source: str = field(metadata={"pattern": r"sweep|finetuned|teacher|baseline:.+|sweep:(heterogeneous|uniform)", "ts": POINT_SOURCE_TS})
    keep: float = field(metadata={"doc": "Requested budget (fraction of kind)."})
    kind: BudgetKind
    params: int
    encoder_params: int
    flops_per_token: float
    metric: float | None
    latency_ms: dict[str, float] | None = None
    units: UnitCounts | None = None
    shape: OutputShape | None = field(default=None, metadata={"doc": "The output shape of the point's model (none for the teacher)."})


@dataclass
class HowToLoad:
    """How to load a run's model/ and model.onnx where users work, without VTrans (docs/model-format.md)."""

    shape: OutputShape
    model_dir: str
    auto_class: str = field(metadata={"doc": "The transformers Auto class of the task, e.g. AutoModelForSequenceClassification."})
    trust_remote_code: bool = field(metadata={"doc": "True for the heterogeneous shape, whose modeling file is in model/."})
    pipeline_task: str = field(metadata={"doc": "The transformers pipeline task: text-classification or text-generation."})
    python: str = field(metadata={"doc": "Python lines that load model/ with transformers and run it once."})
    onnx_python: str | None = field(default=None, metadata={"doc": "Python lines that run model.onnx in onnxruntime."})


@dataclass
class HeadReport:
    index: int
    kept: bool
    log_alpha: float = field(metadata={"doc": "VIB retention score log α = log μ² − log σ²; kept while above the threshold."})
    probes: dict[str, float] | None = field(
        default=None, metadata={"doc": "Probe figures of the head (see ProbeName).", "ts": "Partial<Record<ProbeName, number>>"}
    )


@dataclass
class LayerReport:
    index: int
    heads: list[HeadReport]
    group_size: int = field(metadata={"doc": "Heads per key/value group (1 for multi-head attention); a group is kept or pruned as one."})
    ffn: UnitCount
    attention_kept: bool
    ffn_kept: bool
    attention_score: float | None = field(
        default=None, metadata={"doc": "Best effective head score of the layer (log α − threshold, sublayer gate applied)."}
    )


@dataclass
class ModelInfo:
    dir: str
    family: str
    task: Task
    layers: int
    heads: int
    hidden: int
    ffn: int
    vocab: int


@dataclass
class ReportBudget:
    kind: BudgetKind
    keep: float
    achieved: float


@dataclass
class ProbeSummary:
    examples: int
    keywords: list[str] = field(metadata={"doc": "The keyword ids decoded (filled in through recordMeasurements)."})
    seq_len: float
    keyword_ids: list[int] | None = None


@dataclass
class TestMetrics:
    """Metrics on the test data (model selection used the eval data only)."""

    teacher: Metric
    student: Metric


@dataclass
class Environment:
    device: str
    torch: str
    threads: int
    python: str
    gpu: str | None = None
    # Data-parallel runs only: the workers and how they shared the training (ddp or fsdp).
    workers: int | None = None
    parallel: str | None = None


@dataclass
class PredictedSize:
    """The run's masks re-thresholded at one budget of the run's kind (no training, no evaluation)."""

    keep: float
    achieved: float
    params: int
    encoder_params: int
    flops_per_token: float
    metric: float | None


@dataclass
class PredictionTable:
    """Predictions at every hundredth of the run's budget kind, so that views without a backend (a restricted
    workspace, report.html) look them up instead of computing them."""

    kind: BudgetKind
    points: list[PredictedSize]


@dataclass
class RunReport:
    version: Literal[1]
    run_id: str
    created_at: str
    status: RunStatus
    model: ModelInfo
    method: Method | BaselineMethod
    budget: ReportBudget
    metric_name: MetricName
    teacher: ModelSummary
    student: ModelSummary | None
    units: UnitCounts | None
    layers: list[LayerReport]
    hidden_kept: UnitCount | None
    threshold: float
    tradeoff: list[TradeoffPoint] = field(metadata={"doc": "Sorted by size, ascending."})
    probes: ProbeSummary | None = None
    test: TestMetrics | None = None
    parent: str | None = field(default=None, metadata={"doc": "A re-thresholded run: the run whose masks it was cut from."})
    wall_seconds: float | None = None
    environment: Environment | None = None
    predictions: PredictionTable | None = None
    load: HowToLoad | None = field(default=None, metadata={"doc": "The output shape of model/, and how to load it."})


def read_report(path: str) -> RunReport:
    import json

    with open(path, encoding="utf-8") as f:
        return parse(RunReport, json.load(f), strict=False)


def write_report(path: str, report: RunReport) -> None:
    from .runs import write_json

    write_json(path, dump(report))


# ----------------------------------------------------------------------------------------------------------------
# Building a report


def environment(device: torch.device, threads: int, workers: int = 1, parallel: str = "single") -> Environment:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    env = Environment(str(device), torch.__version__, threads, platform.python_version(), gpu)
    if workers > 1:
        env.workers, env.parallel = workers, parallel
    return env


def layer_reports(shape, keep, scores, probes: dict | None) -> list[LayerReport]:
    """Per layer: query heads with their group's log α and kept state, FFN neurons and sublayers kept."""
    from .budget import effective_scores

    heads_alpha = list(torch.split(scores["heads"].float().cpu(), [l.kv_heads for l in shape.layers]))
    eff = effective_scores(shape, scores)
    out = []
    probe_layers = (probes or {}).get("layers", [])
    for i, l in enumerate(shape.layers):
        kept_groups = set(keep.heads[i].tolist())
        heads = []
        for h in range(l.heads):
            group = h // l.group_size
            figures = probe_layers[i][h] if i < len(probe_layers) and h < len(probe_layers[i]) else None
            if figures is not None:
                figures = {k: float(v) for k, v in (dump(figures) if not isinstance(figures, dict) else figures).items() if k != "kept"}
            heads.append(HeadReport(h, group in kept_groups, float(heads_alpha[i][group]), figures))
        out.append(
            LayerReport(
                index=i,
                heads=heads,
                group_size=l.group_size,
                ffn=UnitCount(len(keep.ffn[i]), l.ffn),
                attention_kept=len(keep.heads[i]) > 0,
                ffn_kept=len(keep.ffn[i]) > 0,
                attention_score=float(eff["heads"][i].max()) if l.kv_heads else None,
            )
        )
    return out


def model_info(model_dir: str, shape) -> ModelInfo:
    first = shape.layers[0]
    return ModelInfo(
        os.path.abspath(model_dir), shape.family, shape.task, shape.n_layers, first.heads, shape.hidden, first.ffn, shape.vocab
    )


def metric_name(task: str) -> MetricName:
    return "perplexity" if task == "lm" else "accuracy"


def sorted_points(points: list[TradeoffPoint]) -> list[TradeoffPoint]:
    return sorted(points, key=lambda p: (p.params, p.source))


def with_measurements(
    report: RunReport, teacher: OnnxMeasurement | None, student: OnnxMeasurement | None, keywords: list[str] | None
) -> RunReport:
    """The report with the client's onnxruntime-node figures and decoded keywords filled in."""
    if teacher is not None:
        report.teacher.onnx = teacher
    if student is not None and report.student is not None:
        report.student.onnx = student
    for p in report.tradeoff:
        if p.source == "teacher" and teacher is not None:
            p.latency_ms = teacher.latency_ms
        if p.source == "finetuned" and student is not None:
            p.latency_ms = student.latency_ms
    if keywords is not None and report.probes is not None:
        report.probes.keywords = keywords
    return report


def build_report(
    settings,
    run_id: str,
    shape,
    selection,
    scores,
    threshold: float,
    teacher: ModelSummary,
    student: ModelSummary | None,
    points: list[TradeoffPoint],
    probes: dict | None,
    wall_seconds: float | None,
    test: TestMetrics | None,
    environment: Environment | None,
    predictions: PredictionTable | None,
    parent: str | None = None,
) -> RunReport:
    """report.json of a run: the model, the budget and what it kept, per-layer retention, the tradeoff, probes."""
    from .runs import now
    from .shapes import how_to_load

    keep = selection.keep
    model_dir = os.path.join(settings.run_dir, "model")
    return RunReport(
        version=REPORT_VERSION,
        run_id=run_id,
        created_at=now(),
        status="done",
        model=model_info(settings.model_dir, shape),
        method=settings.method,
        budget=ReportBudget(settings.budget, settings.keep, selection.fraction),
        metric_name=metric_name(shape.task),
        teacher=teacher,
        student=student,
        units=UnitCounts.of(shape, keep),
        layers=layer_reports(shape, keep, scores, probes),
        hidden_kept=UnitCount(len(keep.hidden), shape.hidden),
        threshold=threshold,
        tradeoff=sorted_points(points),
        probes=None if probes is None else ProbeSummary(probes["examples"], [], probes["seqLen"], probes["keywordIds"]),
        test=test,
        parent=parent,
        wall_seconds=wall_seconds,
        environment=environment,
        predictions=predictions,
        load=how_to_load(model_dir, shape.family, shape.task, settings.shape),
    )
