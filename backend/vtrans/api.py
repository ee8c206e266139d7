"""The backend's request handlers, one per protocol method (vtrans/protocol.py maps each method to its params
and result contracts). A handler takes the parsed params and a `Job` (progress + cancellation) and returns its
result contract; the server parses and dumps. `call` does the same for tests and scripts."""

from __future__ import annotations

import copy
import os
import platform
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import __version__
from .artifacts import artifacts
from .artifacts import rethreshold as cut_at_budget
from .artifacts import sweep as sweep_more
from .checkpoint import load_model, load_shape
from .errors import Cancelled, UserError
from .evaluate import evaluate
from .launcher import compress_distributed
from .probes import run_probes
from .project import add_classification_head
from .protocol import (
    METHODS,
    AddHeadParams,
    AddHeadResult,
    CompressResult,
    EstimateParams,
    EstimateResult,
    EvaluateParams,
    HeadProbe,
    InitializeParams,
    InitializeResult,
    InspectParams,
    InspectResult,
    LayerSizes,
    ParamCounts,
    PredictParams,
    PredictResult,
    ProbeParams,
    ProbeResult,
    RecordMeasurementsParams,
    RethresholdParams,
    RethresholdResult,
    ShutdownParams,
    SweepParams,
    SweepResult,
)
from .report import Metric, RunReport, read_report, with_measurements, write_report
from .runs import RunDir, RunLock, check_output_dir
from .schema import ContractError, dump, parse
from .settings import BUDGETS, CompressSettings, parse_settings
from .settings import METHODS as COMPRESS_METHODS
from .shards import Shards
from .structure import count_params, flops_per_token
from .train import Compressor, autocast_for, pick_device, set_threads


@dataclass
class Job:
    progress: Callable[[dict], None] = lambda p: None
    cancelled: threading.Event = field(default_factory=threading.Event)
    reason: str | None = None  # why it was cancelled, when not by the client

    def cancel(self, reason: str | None = None) -> None:
        self.reason = self.reason or reason
        self.cancelled.set()

    def should_stop(self) -> bool:
        return self.cancelled.is_set()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()


def initialize(p: InitializeParams, job: Job) -> InitializeResult:
    threads = set_threads(p.threads)
    cuda = torch.cuda.is_available()
    return InitializeResult(
        version=__version__,
        torch=torch.__version__,
        python=platform.python_version(),
        cuda=cuda,
        gpus=torch.cuda.device_count() if cuda else 0,
        device="cuda" if cuda else "cpu",
        threads=threads,
        gpu_name=torch.cuda.get_device_name(0) if cuda else None,
        methods=list(COMPRESS_METHODS),  # type: ignore[arg-type]
        budgets=list(BUDGETS),  # type: ignore[arg-type]
    )


def inspect(p: InspectParams, job: Job) -> InspectResult:
    shape = load_shape(p.model_dir, p.task)
    counts = count_params(shape)
    return InspectResult(
        family=shape.family,
        task=shape.task,  # type: ignore[arg-type]
        hidden=shape.hidden,
        head_dim=shape.head_dim,
        layers=[LayerSizes(l.heads, l.kv_heads, l.ffn) for l in shape.layers],
        vocab=shape.vocab,
        num_labels=shape.num_labels,
        params=ParamCounts(counts["total"], counts["embedding"], counts["nonEmbedding"], counts["encoder"]),
        flops_per_token=flops_per_token(shape, p.seq_len),
    )


def add_head(p: AddHeadParams, job: Job) -> AddHeadResult:
    """A classification project from a pretrained body (vtrans/project.py)."""
    r = add_classification_head(p.model_dir, p.out_dir, p.labels, p.seed)
    return AddHeadResult(r["modelDir"], r["family"], r["labels"], r["params"])


def compress(settings: CompressSettings, job: Job) -> CompressResult:
    """A compression into a new run directory, or the resumption of one. The run's lock makes this process its
    only writer: a second compression or resume of the same run is refused while this one lives."""
    check_output_dir(settings.run_dir, settings.model_dir, resume=settings.resume)
    with RunLock(settings.run_dir, "resume" if settings.resume else "compress"):
        check_output_dir(settings.run_dir, settings.model_dir, resume=settings.resume)  # again, now that it is ours
        run = RunDir(settings.run_dir)
        if settings.gpus > 1:
            return compress_distributed(settings, job.progress, job.should_stop)
        try:
            return Compressor(settings, job.progress, job.should_stop).compress()
        except Cancelled:
            if run.exists():
                run.update(status="cancelled", error=f"Cancelled: {job.reason}." if job.reason else "Cancelled.", pid=None)
            raise
        except UserError as e:
            if run.exists():
                run.update(status="failed", error=str(e), pid=None)
            raise
        except Exception as e:
            if run.exists():
                run.update(status="failed", error=f"{type(e).__name__}: {e}", pid=None)
            raise


def _device(name: str | None, threads: int | None) -> torch.device:
    set_threads(threads)
    return pick_device(name or "auto")


def evaluate_model(p: EvaluateParams, job: Job) -> Metric:
    device = _device(p.device, None)
    shards = Shards(p.shards)
    model = load_model(p.model_dir, task=shards.task).to(device)
    shards.check_vocabulary(model.shape.vocab, p.model_dir)
    return evaluate(model, shards, device, batch_size=p.batch_size, limit=p.limit, autocast=autocast_for(device), should_stop=job.check)


def predict(p: PredictParams, job: Job) -> PredictResult:
    """Sizes at another budget from the run's masks (no training, no evaluation) and the sweep's metric there."""
    return artifacts(p.run_dir).predict(p.keep, p.budget, p.shape)


def rethreshold(p: RethresholdParams, job: Job) -> RethresholdResult:
    """The run's masks cut at another budget, as a new run (with `retuneSteps` > 0, a short mask-only re-tune
    towards the new budget first)."""
    art = artifacts(p.run_dir)
    check_output_dir(p.out_dir, art.model_dir)
    device = _device(p.device or art.settings.device, p.threads)
    if p.retune_steps > 0:
        return _retune(art, p, job)
    with RunLock(p.out_dir, "export"):
        check_output_dir(p.out_dir, art.model_dir)
        return cut_at_budget(art, p, device, autocast_for(device, art.settings.precision), job.progress, job.check)


def _retune(art, p: RethresholdParams, job: Job) -> RethresholdResult:
    settings = copy.deepcopy(art.settings)
    settings.run_dir, settings.method, settings.keep = os.path.abspath(p.out_dir), "faster", p.keep
    settings.budget = p.budget or art.settings.budget
    settings.shape = p.shape or art.settings.shape
    settings.min_prune_steps, settings.prune_epochs, settings.resume = p.retune_steps, 0, False
    settings.sweep, settings.probe_examples = [], 0
    settings.init_masks = art.run.file("masks.safetensors")
    weights = art.run.file("checkpoints", "masked-weights.safetensors")
    settings.init_weights = weights if os.path.exists(weights) else None
    done = compress(settings, job)
    run = RunDir(p.out_dir)
    run.update(parent=art.run.path, method="rethreshold")
    return RethresholdResult(
        "done",
        done.run_dir,
        art.run.path,
        "rethreshold",
        done.budget,
        done.keep,
        done.achieved,
        done.student,
        done.units,
        done.model_dir,
        done.onnx_path,
        done.shape,
    )


def sweep(p: SweepParams, job: Job) -> SweepResult:
    """Re-thresholded models evaluated at the given budgets, merged into the run's report.json."""
    art = artifacts(p.run_dir)
    device = _device(p.device, p.threads)
    return sweep_more(art, p, device, autocast_for(device, art.settings.precision), job.progress, job.check)


def probe(p: ProbeParams, job: Job) -> ProbeResult:
    device = _device(p.device, p.threads)
    shards = Shards(p.shards)
    model = load_model(p.model_dir, task=shards.task).to(device)
    shards.check_vocabulary(model.shape.vocab, p.model_dir)
    raw = run_probes(model, shards, device, p.examples, p.special_token_ids, should_stop=job.check)
    kept = None
    if p.run_dir:
        report = artifacts(p.run_dir).report
        kept = [[h.kept for h in layer.heads] for layer in report.layers] if report else None
    layers = [
        [
            HeadProbe(**{k: float(v) for k, v in h.items()}, kept=kept[i][j] if kept and i < len(kept) and j < len(kept[i]) else None)
            for j, h in enumerate(heads)
        ]
        for i, heads in enumerate(raw["layers"])
    ]
    return ProbeResult(raw["examples"], raw["keywordIds"], raw["seqLen"], layers)


def record_measurements(p: RecordMeasurementsParams, job: Job) -> RunReport:
    """The client's onnxruntime-node figures and decoded keywords, merged into report.json by its one writer."""
    run = RunDir(p.run_dir)
    path = run.file("report.json")
    if not os.path.exists(path):
        raise UserError(f"{path}: missing; the run did not finish. Resume or rerun it.")
    report = with_measurements(read_report(path), p.teacher, p.student, p.keywords)
    write_report(path, report)
    return report


def estimate(p: EstimateParams, job: Job) -> EstimateResult:
    """A few real training steps with the run's settings, timed, and the time and memory the run should take."""
    from .estimate import estimate as warm_up

    if p.settings.gpus > 1:
        raise UserError("gpus: the warm-up estimate runs on one device; set gpus to 1 to estimate.")
    return warm_up(p.settings, p.steps, job.should_stop)


def shutdown(p: ShutdownParams, job: Job) -> None:
    return None


HANDLERS: dict[str, Callable[[Any, Job], Any]] = {
    "initialize": initialize,
    "inspect": inspect,
    "addHead": add_head,
    "compress": compress,
    "evaluate": evaluate_model,
    "predict": predict,
    "rethreshold": rethreshold,
    "sweep": sweep,
    "probe": probe,
    "recordMeasurements": record_measurements,
    "estimate": estimate,
    "shutdown": shutdown,
}
assert set(HANDLERS) == set(METHODS), "every protocol method has a handler"


def parse_params(method: str, params: Any) -> Any:
    """The request's params as its contract; a ContractError names the bad field."""
    if method == "compress":
        try:
            return parse_settings(params)
        except UserError as e:
            raise ContractError(str(e)) from None
    parsed = parse(METHODS[method][0], params if params is not None else {})
    if method == "estimate":
        # The same checks and defaults as a compress request's settings.
        try:
            parsed.settings = parse_settings(params["settings"])
        except UserError as e:
            raise ContractError(f"settings.{e}") from None
    return parsed


def call(method: str, params: dict | None = None, job: Job | None = None) -> Any:
    """A request as the server runs it: params parsed, the handler called, the result dumped to JSON data."""
    return dump(HANDLERS[method](parse_params(method, params or {}), job or Job()))
