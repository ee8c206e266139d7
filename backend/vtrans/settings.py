"""Compression settings: the `compress` request's params, also stored as run.json's `settings`. This is the one
place their defaults, ranges and enums are defined: the TypeScript types and constants (src/core/contracts.ts),
the JSON Schema and the extension's settings in package.json are generated from it (vtrans/contracts.py).
docs/algorithm.md explains what each setting does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import UserError
from .schema import ContractError, camel, dump, parse

Method = Literal["vtrans", "fast", "faster"]
# Peers the benchmark runs through the same harness (BENCHMARKS.md): CoFi's L0 gates, Kwon et al.'s retraining-free
# pruning, Torch-Pruning and the scorers.
BaselineMethod = Literal["cofi", "random", "magnitude", "taylor", "torch-pruning", "kwon"]
BudgetKind = Literal["params", "encoder-params", "flops"]
Task = Literal["classification", "lm"]
Precision = Literal["auto", "fp32", "bf16"]
DeviceChoice = Literal["auto", "cpu", "cuda"]
# The output model's layout (docs/model-format.md): per-layer sizes loaded with trust_remote_code, or every layer
# the same size in the family's standard config, loaded by stock transformers.
OutputShape = Literal["heterogeneous", "uniform"]
CutRule = Literal["fisher", "information", "score"]
RefitKind = Literal["scales", "weights"]
RampShape = Literal["cubic", "linear"]
Parallel = Literal["auto", "ddp", "fsdp"]
Checkpointing = Literal["auto", "on", "off"]

METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]
BENCH_METHODS: tuple[str, ...] = BaselineMethod.__args__  # type: ignore[attr-defined]
BUDGETS: tuple[str, ...] = BudgetKind.__args__  # type: ignore[attr-defined]
SHAPES: tuple[str, ...] = OutputShape.__args__  # type: ignore[attr-defined]
Granularity = Literal["hidden", "heads", "attn", "ffn", "ffn_layer"]
GRANULARITIES: tuple[str, ...] = Granularity.__args__  # type: ignore[attr-defined]

DEFAULT_SWEEP = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]


@dataclass(frozen=True)
class Recipe:
    """What a method trains, on which data, for how long (docs/algorithm.md): the one place the per-method defaults
    of the schedule are defined. Epochs are over the data the method reads: all of it, or `dataFraction` of it."""

    prune_epochs: float
    finetune_epochs: float
    fraction: bool  # reads only `dataFraction` of the training data
    train_weights: bool  # phase 1 trains the weights with the masks


RECIPES: dict[str, Recipe] = {
    # The paper's structure: VTrans trains masks and weights on all data, then fine-tunes the pruned model; Fast-VTrans
    # does the same on a 3 % fraction; Faster-VTrans trains the masks alone on the fraction and does not fine-tune.
    "vtrans": Recipe(prune_epochs=3.0, finetune_epochs=2.0, fraction=False, train_weights=True),
    "fast": Recipe(prune_epochs=10.0, finetune_epochs=5.0, fraction=True, train_weights=True),
    "faster": Recipe(prune_epochs=10.0, finetune_epochs=0.0, fraction=True, train_weights=False),
    # Kwon et al.'s retraining-free pruning: a score pass and the least-squares refit, no training at all.
    "kwon": Recipe(prune_epochs=0.0, finetune_epochs=0.0, fraction=False, train_weights=False),
}
# The other baselines follow VTrans's schedule (all data, the same phase lengths).
BASELINE_RECIPE = Recipe(prune_epochs=3.0, finetune_epochs=2.0, fraction=False, train_weights=True)


def recipe_of(method: str) -> Recipe:
    return RECIPES.get(method, BASELINE_RECIPE)


def masks_on_frozen_weights(method: str) -> bool:
    """A VIB method whose masks train on the frozen source weights (Faster-VTrans): its cuts also try scale 1
    (selection.ScaleChoice)."""
    return method in METHODS and not recipe_of(method).train_weights


def _recipe_doc(key: str) -> str:
    return ", ".join(f"{m} {getattr(r, key):g}" for m, r in RECIPES.items())


@dataclass(frozen=True)
class Schedule:
    """A run's resolved phase lengths: the settings where given, else the method's recipe."""

    prune_epochs: float
    finetune_epochs: float
    min_prune_steps: int
    min_finetune_steps: int
    fraction: float  # of the training data (1 for the full-data methods)
    train_weights: bool
    finetune: bool


def schedule_of(s: CompressSettings) -> Schedule:
    r = recipe_of(s.method)
    return Schedule(
        prune_epochs=r.prune_epochs if s.prune_epochs is None else s.prune_epochs,
        finetune_epochs=r.finetune_epochs if s.finetune_epochs is None else s.finetune_epochs,
        min_prune_steps=s.min_prune_steps,
        min_finetune_steps=s.min_finetune_steps,
        fraction=s.data_fraction if r.fraction else 1.0,
        train_weights=r.train_weights,
        finetune=r.finetune_epochs > 0,  # a method whose recipe has no phase 2 never fine-tunes
    )


def doc(text: str, **extra: Any) -> dict[str, Any]:
    return {"doc": text, **extra}


FRACTION = {"exclusiveMinimum": 0, "maximum": 1}


@dataclass
class VIBSettings:
    """The VIB gates (docs/algorithm.md)."""

    init_mu: float = field(default=1.0, metadata={"doc": "Initial μ of every gate."})
    init_logvar: float = field(default=-9.0, metadata={"doc": "Initial log σ² of every gate."})
    kl: dict[str, float] = field(
        default_factory=lambda: {g: 1.0 for g in GRANULARITIES},
        metadata={"doc": "KL weight per granularity (hidden, heads, attn, ffn, ffn_layer), times beta; each KL is a mean over units."},
    )
    beta: float = field(default=0.1, metadata={"doc": "Weight of the KL term.", "minimum": 0})
    threshold: dict[str, float] = field(
        default_factory=lambda: {g: 0.0 for g in GRANULARITIES},
        metadata={"doc": "log α threshold per granularity: a unit is kept above it."},
    )
    temperature: float = field(
        default=0.5,
        metadata={
            "doc": "Slope k of the soft keep probability sigmoid(k·(log α − threshold)) at the start of phase 1.",
            "exclusiveMinimum": 0,
        },
    )
    final_temperature: float | None = field(
        default=10.0,
        metadata={
            "doc": "Slope k at the end of phase 1's warm-up, reached geometrically from `temperature` and then held, so that "
            "the expected size the budget term sees is the size of the keep-set the threshold gives (null: no annealing).",
            "exclusiveMinimum": 0,
        },
    )
    close_below: float = field(
        default=4.0,
        metadata={
            "doc": "A unit whose log α stays more than this below its threshold for `closeSteps` steps is closed: its gate is "
            "exactly 0 from then on (no noise, no gradient) and its μ is set to 0.",
            "minimum": 0,
        },
    )
    commit: bool = field(
        default=True,
        metadata={
            "doc": "At the end of the warm-up, cut the gates at the target (the `cut` rule) and close every unit outside "
            "the cut: the rest of phase 1 trains the model that will be cut (the weights too, where they are trained).",
        },
    )
    close_steps: int = field(
        default=20, metadata={"doc": "Steps below `closeBelow` after which a unit is closed (0: never).", "minimum": 0}
    )
    drop_closed: bool = field(
        default=False,
        metadata={
            "doc": "After the commit, run the rest of phase 1 on a smaller model with the closed units physically removed: "
            "the same outputs and gradients for every open unit, cheaper steps (one process only).",
        },
    )


@dataclass
class DistillSettings:
    """Distillation from the unpruned teacher."""

    enabled: bool = field(default=True, metadata=doc("Distil from the unpruned model instead of training on the labels alone."))
    temperature: float = field(default=2.0, metadata=doc("Softmax temperature of the logit distillation.", exclusiveMinimum=0, maximum=20))
    alpha: float = field(default=0.5, metadata=doc("Weight of the logit KL; the task loss gets 1 − alpha.", minimum=0, maximum=1))
    hidden: float = field(
        default=1.0,
        metadata=doc("Weight of the layer-wise hidden-state MSE (relative to the teacher's mean square).", minimum=0, maximum=100),
    )
    top_k: int = field(
        default=64,
        metadata=doc(
            "LM logit distillation over the teacher's top-k tokens and one bucket for the rest of the vocabulary (0: the whole "
            "vocabulary).",
            minimum=0,
        ),
    )
    cache_mb: int = field(
        default=1024,
        metadata=doc(
            "Host memory (MiB) for the teacher's outputs on the training examples, computed once and reused every epoch and in "
            "phase 2; examples beyond it are recomputed at every step.",
            minimum=0,
        ),
    )


@dataclass
class CorrectionSettings:
    """The retraining-free least-squares correction of every cut model (correction.py, docs/algorithm.md)."""

    enabled: bool = field(
        default=True,
        metadata=doc(
            "Refit the scales of the kept heads and neurons of every cut model (Faster-VTrans's model, the sweep, re-thresholded "
            "exports) so that each sublayer reproduces the unpruned model's output, layer by layer."
        ),
    )
    refit: RefitKind = field(
        default="scales",
        metadata=doc(
            "What the correction refits: one multiplier per kept head and neuron (scales, as Kwon et al.'s mask tuning), or "
            "each sublayer's output projection and bias as a whole (weights)."
        ),
    )
    examples: int = field(default=256, metadata=doc("Training examples the correction reads.", minimum=1))
    ridge: float = field(
        default=0.001,
        metadata=doc(
            "Ridge weight (relative to the mean diagonal of the normal equations) pulling the refit towards the cut as it was.", minimum=0
        ),
    )


@dataclass
class CompressSettings:
    """Settings of one compression: the `compress` request's params and run.json's `settings`."""

    model_dir: str = field(metadata=doc("The source model directory (only read)."))
    train_shards: str = field(metadata=doc("Token shard directory of the training data."))
    eval_shards: str = field(metadata=doc("Token shard directory of the evaluation (dev) data: model selection uses it."))
    run_dir: str = field(metadata=doc("The run directory to create (or resume)."))
    test_shards: str | None = field(default=None, metadata=doc("Token shards of test data, evaluated once at the end."))
    workspace: str | None = field(default=None, metadata=doc("The folder whose .vtrans/ holds the run; exports of the run go there."))
    method: Method | BaselineMethod = field(default="fast", metadata=doc("Compression method (or a benchmark baseline)."))
    keep: float = field(default=0.3, metadata=doc("Fraction of the budget the compressed model keeps.", **FRACTION))
    budget: BudgetKind = field(default="params", metadata=doc("What `keep` is a fraction of."))
    shape: OutputShape = field(
        default="heterogeneous",
        metadata=doc(
            "The output model's shape: heterogeneous (per-layer sizes; transformers loads it with trust_remote_code=True) "
            "or uniform (every layer the same size, the family's standard config; stock transformers loads it)."
        ),
    )
    task: Task | None = field(default=None, metadata=doc("The task; by default inferred from config.json's head."))
    max_length: int = field(default=128, metadata=doc("Tokens per example the data was cut to (the client tokenizes).", minimum=2))
    data_fraction: float = field(default=0.03, metadata=doc("Share of the training data Fast- and Faster-VTrans use.", **FRACTION))
    prune_epochs: float | None = field(
        default=None,
        metadata=doc(
            f"Phase 1 length in epochs over the method's data (the fraction for fast and faster); default {_recipe_doc('prune_epochs')}.",
            minimum=0,
        ),
    )
    min_prune_steps: int = field(default=0, metadata=doc("Phase 1 is never shorter than this.", minimum=0))
    finetune_epochs: float | None = field(
        default=None,
        metadata=doc(
            f"Phase 2 (fine-tuning) length in epochs over the method's data; default {_recipe_doc('finetune_epochs')}.", minimum=0
        ),
    )
    min_finetune_steps: int = field(default=0, metadata=doc("Phase 2 is never shorter than this.", minimum=0))
    batch_size: int = field(default=32, metadata=doc("Training batch size (all workers together).", minimum=1))
    lr: float = field(default=5e-5, metadata=doc("Learning rate of the weights (AdamW).", minimum=0))
    mask_lr: float = field(default=0.1, metadata=doc("Learning rate of the VIB μ and log σ² (Adam).", minimum=0))
    lambda_lr: float = field(default=1.0, metadata=doc("Learning rate of the Lagrange multipliers (gradient ascent).", minimum=0))
    warmup: float = field(default=0.5, metadata=doc("Share of phase 1 over which the target ramps from 1 to keep.", minimum=0, maximum=1))
    ramp: RampShape = field(
        default="cubic",
        metadata=doc("Shape of the target's ramp: cubic (1 − (1 − r)³: fast at first, then easing into keep) or linear."),
    )
    weight_decay: float = field(default=0.0, metadata=doc("AdamW weight decay.", minimum=0))
    round_to: int = field(default=1, metadata=doc("Kept hidden dims and FFN neurons are multiples of this.", minimum=1, maximum=256))
    cut: CutRule = field(
        default="fisher",
        metadata=doc(
            "How a budget is cut from the masks: fisher keeps the heads, neurons and hidden dimensions whose removal would "
            "cost the most loss per unit of size (½·F·μ², F the gate's Fisher information measured in phase 1); information "
            "ranks by the VIB information per unit of size (½·softplus(log α − threshold) ÷ cost); score by log α − threshold."
        ),
    )
    device: str = field(
        default="auto", metadata=doc("auto, cpu, cuda or cuda:N.", pattern=r"auto|cpu|cuda(:\d+)?", ts="DeviceChoice | `cuda:${number}`")
    )
    precision: Precision = field(default="auto", metadata=doc("auto: bf16 autocast on GPUs that support it, fp32 elsewhere."))
    seed: int = field(default=0, metadata=doc("Seed of the batch order, the noise and the initialisation.", minimum=0))
    checkpoint_every: int = field(default=50, metadata=doc("Steps between checkpoints (resume).", minimum=1))
    eval_limit: int = field(default=2000, metadata=doc("Examples evaluated per sweep point.", minimum=1))
    eval_examples: int | None = field(
        default=None, metadata=doc("Cap on the examples of the teacher/student metric (all by default).", minimum=1)
    )
    sweep: list[float] = field(
        default_factory=lambda: list(DEFAULT_SWEEP),
        metadata=doc("Budgets of the tradeoff curve, re-thresholded from the masks.", **FRACTION),
    )
    probe_examples: int = field(default=128, metadata=doc("Examples the attention probes read (0: no probes).", minimum=0))
    special_token_ids: list[int] = field(default_factory=list, metadata=doc("Token ids the probes count as special.", minimum=0))
    with_token_types: bool = field(default=False, metadata=doc("The data are text pairs with token type ids."))
    distill: DistillSettings = field(default_factory=DistillSettings, metadata=doc("Distillation from the unpruned teacher."))
    vib: VIBSettings = field(default_factory=VIBSettings, metadata=doc("The VIB gates."))
    correction: CorrectionSettings = field(
        default_factory=CorrectionSettings, metadata=doc("The least-squares correction of every cut model.")
    )
    activation_checkpointing: Checkpointing = field(
        default="auto",
        metadata=doc(
            "Recompute each transformer layer's activations in the backward pass instead of keeping them (about a third more "
            "compute, activations of one layer instead of all); auto: on from 1B parameters (docs/algorithm.md, Memory)."
        ),
    )
    memory_check: bool = field(
        default=True,
        metadata=doc(
            "Before training, estimate the peak memory from the model, batch and method and refuse to start when it exceeds "
            "the device's free memory (false: start anyway)."
        ),
    )
    threads: int | None = field(default=None, metadata=doc("CPU threads (default: all cores).", minimum=1))
    gpus: int = field(default=1, metadata=doc("Data-parallel workers (torchrun) when above 1.", minimum=1, maximum=64))
    parallel: Parallel = field(
        default="auto",
        metadata=doc(
            "The engine of data-parallel training (gpus above 1): ddp keeps a full copy of the trained weights per worker "
            "(DistributedDataParallel); fsdp shards the weights, gradients and optimizer state (fully_shard); auto takes "
            "fsdp only when a full copy per worker would not fit."
        ),
    )
    resume: bool = field(default=False, metadata=doc("Continue the run in run_dir from its last checkpoint."))
    init_masks: str | None = field(default=None, metadata=doc("Start the gates from another run's masks.safetensors (re-tune)."))
    init_weights: str | None = field(default=None, metadata=doc("Start from another run's phase-1 weights (re-tune)."))

    def to_json(self) -> dict:
        return dump(self)


def _camel_keys(value: Any) -> Any:
    """run.json files of version 0.1 stored the settings with snake_case keys."""
    if isinstance(value, dict):
        return {camel(k) if "_" in k else k: (v if k in ("kl", "threshold") else _camel_keys(v)) for k, v in value.items()}
    return value


def teacher_hidden(s: CompressSettings) -> bool:
    """Whether distillation compares hidden states (the layer-wise MSE, or CoFi's matched layers), so that the
    teacher's are computed and cached."""
    return s.distill.enabled and (s.distill.hidden > 0 or s.method == "cofi")


def parse_settings(params: dict) -> CompressSettings:
    """The `compress` params (or a run's stored settings), checked; every error names the setting."""
    try:
        s = parse(CompressSettings, _camel_keys(params))
    except ContractError as e:
        raise UserError(str(e)) from None
    for key in ("kl", "threshold"):
        given = getattr(s.vib, key)
        unknown = sorted(set(given) - set(GRANULARITIES))
        if unknown:
            raise UserError(f"vib.{key}: unknown granularity {', '.join(unknown)} (known: {', '.join(GRANULARITIES)})")
        setattr(s.vib, key, {**getattr(VIBSettings(), key), **given})
    return s
