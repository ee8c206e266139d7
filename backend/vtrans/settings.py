"""Compression settings with their defaults (docs/algorithm.md explains each), parsed from the JSON the
extension/CLI sends and checked with messages that name the setting."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .baselines import BASELINES
from .errors import UserError
from .vib import VIBSettings

METHODS = ("vtrans", "fast", "faster")
# Baselines the benchmark runs through the same harness (BENCHMARKS.md): CoFi-style L0 gates and the scorers.
BENCH_METHODS = ("cofi",) + BASELINES
BUDGETS = ("params", "encoder-params", "flops")
DEFAULT_SWEEP = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]


@dataclass
class DistillSettings:
    enabled: bool = True
    temperature: float = 2.0
    alpha: float = 0.5  # weight of the logit KL; the task loss gets 1 − alpha
    hidden: float = 1.0  # weight of the layer-wise hidden-state MSE (relative to the teacher's mean square)


@dataclass
class CompressSettings:
    model_dir: str
    train_shards: str
    eval_shards: str
    run_dir: str
    test_shards: str | None = None
    method: str = "fast"
    keep: float = 0.3
    budget: str = "params"
    task: str | None = None
    data_fraction: float = 0.03  # fast / faster: the share of the training data used
    prune_epochs: float = 3.0  # phase 1, over the (fraction of the) training data
    min_prune_steps: int = 150  # phase 1 never shorter (small data fractions need repeated passes)
    finetune_epochs: float = 2.0  # phase 2 (vtrans, fast)
    min_finetune_steps: int = 50
    batch_size: int = 32
    lr: float = 5e-5  # weights (AdamW)
    mask_lr: float = 0.1  # VIB μ and log σ² (Adam)
    lambda_lr: float = 1.0  # Lagrange multipliers (gradient ascent)
    warmup: float = 0.5  # share of phase 1 over which the target ramps from 1 to `keep`
    weight_decay: float = 0.0
    round_to: int = 1
    device: str = "auto"
    precision: str = "auto"  # auto (bf16 autocast on GPUs that support it) | fp32 | bf16
    seed: int = 0
    checkpoint_every: int = 50
    eval_limit: int = 2000  # examples evaluated per sweep point
    eval_examples: int | None = None  # cap on the examples of the teacher/student metric (None: all)
    sweep: list[float] = field(default_factory=lambda: list(DEFAULT_SWEEP))
    probe_examples: int = 128
    special_token_ids: list[int] = field(default_factory=list)
    with_token_types: bool = False
    distill: DistillSettings = field(default_factory=DistillSettings)
    vib: VIBSettings = field(default_factory=VIBSettings)
    threads: int | None = None
    gpus: int = 1  # data-parallel workers (torchrun) when > 1
    resume: bool = False
    init_masks: str | None = None  # start the gates from another run's masks.safetensors (re-tune)
    init_weights: str | None = None  # start from another run's phase-1 weights (re-tune)

    def to_json(self) -> dict:
        return asdict(self)


def _check(cond: bool, setting: str, message: str) -> None:
    if not cond:
        raise UserError(f"{setting}: {message}")


def parse_settings(params: dict) -> CompressSettings:
    """From the protocol's camelCase or snake_case keys."""
    snake = {_snake(k): v for k, v in params.items()}
    distill = DistillSettings(**{_snake(k): v for k, v in (snake.pop("distill", None) or {}).items()})
    try:
        vib = VIBSettings.from_dict({_snake(k): v for k, v in (snake.pop("vib", None) or {}).items()})
    except ValueError as e:
        raise UserError(f"vib: {e}") from None
    known = set(CompressSettings.__dataclass_fields__)
    unknown = sorted(set(snake) - known)
    _check(not unknown, "settings", f"unknown setting(s) {', '.join(unknown)}")
    for req in ("model_dir", "train_shards", "eval_shards", "run_dir"):
        _check(req in snake, req, "is required")
    s = CompressSettings(**snake, distill=distill, vib=vib)
    _check(
        s.method in METHODS + BENCH_METHODS,
        "method",
        f"must be one of {', '.join(METHODS)} (or a baseline: {', '.join(BENCH_METHODS)}), got {s.method!r}",
    )
    _check(s.budget in BUDGETS, "budget", f"must be one of {', '.join(BUDGETS)}, got {s.budget!r}")
    _check(isinstance(s.keep, (int, float)) and 0 < s.keep <= 1, "keep", f"must be in (0, 1], got {s.keep}")
    _check(0 < s.data_fraction <= 1, "dataFraction", f"must be in (0, 1], got {s.data_fraction}")
    _check(s.batch_size >= 1, "batchSize", "must be at least 1")
    _check(s.round_to >= 1, "roundTo", "must be at least 1")
    _check(s.device in ("auto", "cpu", "cuda") or s.device.startswith("cuda:"), "device", f"must be auto, cpu or cuda, got {s.device!r}")
    _check(s.precision in ("auto", "fp32", "bf16"), "precision", f"must be auto, fp32 or bf16, got {s.precision!r}")
    _check(all(0 < k <= 1 for k in s.sweep), "sweep", "budgets must be in (0, 1]")
    _check(0 <= s.distill.alpha <= 1, "distill.alpha", "must be in [0, 1]")
    _check(s.distill.temperature > 0, "distill.temperature", "must be positive")
    return s


def _snake(key: str) -> str:
    out = []
    for ch in key:
        if ch.isupper():
            out.append("_" + ch.lower())
        else:
            out.append(ch)
    return "".join(out)
