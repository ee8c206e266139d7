"""The backend protocol: JSON-RPC 2.0 over stdio with LSP-style `Content-Length` framing.

Every request's params and result and every notification is a contract here (vtrans/schema.py); the server
checks params against them before a handler runs (a mismatch is answered with INVALID_PARAMS naming the
field), and src/core/contracts.ts is generated from them. `METHODS` maps each method to its contracts.

Cancellation: the `$/cancelRequest` notification {id} stops that request within a training step; it answers
with REQUEST_CANCELLED and a compress run is marked cancelled. `shutdown` answers null; then the `exit`
notification ends the process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .report import Metric, ModelSummary, OnnxMeasurement, RunReport, TestMetrics, TradeoffPoint, UnitCounts
from .settings import BaselineMethod, BudgetKind, CompressSettings, Method, OutputShape, Task

ERROR_CODES = {
    "ParseError": -32700,
    "InvalidRequest": -32600,
    "MethodNotFound": -32601,
    "InvalidParams": -32602,
    "InternalError": -32603,
    # Bad input the user can fix; the message names the file or setting.
    "UserError": -32001,
    # The run directory is held by another process (lock file).
    "RunLocked": -32002,
    # LSP's code for a cancelled request.
    "RequestCancelled": -32800,
}
PARSE_ERROR = ERROR_CODES["ParseError"]
INVALID_REQUEST = ERROR_CODES["InvalidRequest"]
METHOD_NOT_FOUND = ERROR_CODES["MethodNotFound"]
INVALID_PARAMS = ERROR_CODES["InvalidParams"]
INTERNAL_ERROR = ERROR_CODES["InternalError"]
USER_ERROR = ERROR_CODES["UserError"]
REQUEST_CANCELLED = ERROR_CODES["RequestCancelled"]

Phase = Literal["load", "prune", "select", "finetune", "export", "sweep", "probe", "evaluate"]
RequestId = int | str


@dataclass
class InitializeParams:
    threads: int | None = field(default=None, metadata={"doc": "CPU threads (default: all cores).", "minimum": 1})


@dataclass
class InitializeResult:
    version: str
    torch: str
    python: str
    cuda: bool
    gpus: int
    device: Literal["cpu", "cuda"]
    threads: int
    gpu_name: str | None
    methods: list[Method]
    budgets: list[BudgetKind]


@dataclass
class InspectParams:
    model_dir: str
    seq_len: float = field(default=128.0, metadata={"doc": "Sequence length of the FLOPs count.", "exclusiveMinimum": 0})
    task: Task | None = None


@dataclass
class LayerSizes:
    heads: int
    kv_heads: int
    ffn: int


@dataclass
class ParamCounts:
    """Parameters by part (CoFi's encoder parameters: the transformer blocks only)."""

    total: int
    embedding: int
    non_embedding: int
    encoder: int


@dataclass
class InspectResult:
    family: str
    task: Task
    hidden: int
    head_dim: int
    layers: list[LayerSizes]
    vocab: int
    num_labels: int
    params: ParamCounts
    flops_per_token: float


@dataclass
class AddHeadParams:
    model_dir: str = field(metadata={"doc": "The pretrained checkpoint (only read)."})
    out_dir: str = field(metadata={"doc": "A new or empty folder outside the source."})
    labels: list[str] = field(metadata={"doc": "Label names, in class-index order."})
    seed: int = field(default=0, metadata={"minimum": 0})


@dataclass
class AddHeadResult:
    model_dir: str
    family: str
    labels: list[str]
    params: int


@dataclass
class CompressResult:
    """The run summary (also run.json's `result`)."""

    status: Literal["done"]
    run_dir: str
    method: Method | BaselineMethod
    budget: BudgetKind
    keep: float
    achieved: float
    teacher: ModelSummary
    student: ModelSummary
    units: UnitCounts
    wall_seconds: float
    model_dir: str
    onnx_path: str
    test: TestMetrics | None = None
    shape: OutputShape = field(default="heterogeneous", metadata={"doc": "The output shape of model_dir."})


@dataclass
class EvaluateParams:
    model_dir: str
    shards: str
    batch_size: int = field(default=64, metadata={"minimum": 1})
    limit: int | None = field(default=None, metadata={"minimum": 1})
    device: str = "auto"


@dataclass
class PredictParams:
    run_dir: str
    keep: float = field(metadata={"exclusiveMinimum": 0, "maximum": 1})
    budget: BudgetKind | None = field(default=None, metadata={"doc": "Default: the run's own budget kind."})
    shape: OutputShape | None = field(default=None, metadata={"doc": "Default: the run's own output shape."})


@dataclass
class PredictResult:
    """Sizes of the keep-set the run's masks give at a budget, and the metric the sweep predicts there."""

    keep: float
    kind: BudgetKind
    achieved: float
    params: int
    encoder_params: int
    flops_per_token: float
    metric: float | None = field(metadata={"doc": "The sweep's metric interpolated at this size (re-thresholded, not fine-tuned)."})
    metric_source: Literal["sweep-interpolation"]
    units: UnitCounts
    seconds: float
    shape: OutputShape = "heterogeneous"


@dataclass
class RethresholdParams:
    run_dir: str
    keep: float = field(metadata={"exclusiveMinimum": 0, "maximum": 1})
    out_dir: str
    budget: BudgetKind | None = None
    shape: OutputShape | None = field(default=None, metadata={"doc": "The new model's output shape; default: the run's own."})
    retune_steps: int = field(default=0, metadata={"doc": "Above 0: a short mask-only re-tune towards the new budget first.", "minimum": 0})
    skip_eval: bool = False
    eval_shards: str | None = None
    device: str | None = None
    threads: int | None = field(default=None, metadata={"minimum": 1})


@dataclass
class RethresholdResult:
    status: Literal["done"]
    run_dir: str
    parent: str
    method: Literal["rethreshold"]
    budget: BudgetKind
    keep: float
    achieved: float
    student: ModelSummary
    units: UnitCounts
    model_dir: str
    onnx_path: str
    shape: OutputShape = field(default="heterogeneous", metadata={"doc": "The output shape of model_dir."})


@dataclass
class SweepParams:
    run_dir: str
    budgets: list[float] = field(metadata={"exclusiveMinimum": 0, "maximum": 1})
    budget: BudgetKind | None = None
    eval_shards: str | None = None
    limit: int | None = field(default=None, metadata={"minimum": 1})
    device: str = "auto"
    threads: int | None = field(default=None, metadata={"minimum": 1})


@dataclass
class SweepResult:
    run_dir: str
    points: list[TradeoffPoint]


@dataclass
class ProbeParams:
    model_dir: str
    shards: str
    examples: int = field(default=128, metadata={"minimum": 1})
    special_token_ids: list[int] = field(default_factory=list)
    run_dir: str | None = field(default=None, metadata={"doc": "Mark each head kept or pruned as in this run."})
    device: str = "auto"
    threads: int | None = field(default=None, metadata={"minimum": 1})


@dataclass
class HeadProbe:
    """Mean attention mass on special tokens, the current token, the previous token, task keywords; mean entropy."""

    special: float
    current: float
    previous: float
    keywords: float
    entropy: float
    kept: bool | None = None


@dataclass
class ProbeResult:
    examples: int
    keyword_ids: list[int]
    seq_len: float
    layers: list[list[HeadProbe]]


@dataclass
class RecordMeasurementsParams:
    """What only the client measures, for the backend to put into report.json (its one writer)."""

    run_dir: str
    teacher: OnnxMeasurement | None = field(default=None, metadata={"doc": "onnxruntime-node figures of teacher.onnx."})
    student: OnnxMeasurement | None = field(default=None, metadata={"doc": "onnxruntime-node figures of model.onnx."})
    keywords: list[str] | None = field(default=None, metadata={"doc": "The probe keyword ids decoded by the model's tokenizer."})


@dataclass
class EstimateParams:
    """A measured warm-up: a few real phase-1 steps with these compress settings, timed; nothing is written."""

    settings: CompressSettings
    steps: int = field(default=4, metadata={"doc": "Steps measured (after one unmeasured first step).", "minimum": 1, "maximum": 50})


@dataclass
class EstimateResult:
    """What the warm-up measured and the time and memory the run should take."""

    device: str = field(metadata={"doc": "The torch device the run would use, e.g. cpu or cuda:0."})
    device_name: str = field(metadata={"doc": "The GPU's name, or the CPU and its threads."})
    steps: int = field(metadata={"doc": "Steps measured."})
    seconds_per_step: float = field(metadata={"doc": "Median seconds of a measured phase-1 step."})
    prune_steps: int
    finetune_steps: int
    load_seconds: float = field(metadata={"doc": "Loading the model and the token shards."})
    eval_seconds: float = field(metadata={"doc": "All evaluations of the run, from a timed slice of the eval data."})
    estimated_seconds: float = field(metadata={"doc": "Load + steps × seconds per step + evaluations; export and probes not included."})
    peak_memory_bytes: int
    memory: Literal["cuda-allocated", "process-peak-rss"] = field(
        metadata={"doc": "cuda-allocated: torch's peak on the GPU; process-peak-rss: the backend process's peak resident memory."}
    )
    planned_memory_bytes: int | None = field(
        default=None,
        metadata={
            "doc": "The analytic estimate of the run's peak on its device (vtrans/memory.py, docs/algorithm.md): what the memory "
            "check compares with the free memory before training."
        },
    )


@dataclass
class ShutdownParams:
    pass


@dataclass
class ProgressParams:
    """The `progress` notification."""

    id: RequestId = field(metadata={"doc": "The request this progress belongs to."})
    run_dir: str
    phase: Phase
    step: int
    total: int
    eta: float | None = field(default=None, metadata={"doc": "Seconds left in this phase, when known."})
    loss: float | None = None
    kl: float | None = None
    sparsity: float | None = field(default=None, metadata={"doc": "1 − expected size under the soft gates."})
    target: float | None = None
    lambda_: list[float] | None = field(default=None, metadata={"json": "lambda", "doc": "λ1, λ2 of the budget term."})
    achieved: float | None = None


@dataclass
class CancelParams:
    """The `$/cancelRequest` notification."""

    id: RequestId


# method -> (params, result); None: the result is JSON null.
METHODS: dict[str, tuple[type, Any]] = {
    "initialize": (InitializeParams, InitializeResult),
    "inspect": (InspectParams, InspectResult),
    "addHead": (AddHeadParams, AddHeadResult),
    "compress": (CompressSettings, CompressResult),
    "evaluate": (EvaluateParams, Metric),
    "predict": (PredictParams, PredictResult),
    "rethreshold": (RethresholdParams, RethresholdResult),
    "sweep": (SweepParams, SweepResult),
    "probe": (ProbeParams, ProbeResult),
    "recordMeasurements": (RecordMeasurementsParams, RunReport),
    "estimate": (EstimateParams, EstimateResult),
    "shutdown": (ShutdownParams, None),
}
NOTIFICATIONS: dict[str, type] = {"progress": ProgressParams, "$/cancelRequest": CancelParams}
