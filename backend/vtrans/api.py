"""The backend's operations, one function per protocol method (see protocol.py). Each takes the request params
and a `Job` (progress + cancellation) and returns a JSON-serialisable result."""

from __future__ import annotations

import bisect
import contextlib
import copy
import os
import platform
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from . import __version__
from .budget import KINDS, select_keep, unit_summary
from .checkpoint import load_model, load_shape, save_model
from .errors import Cancelled, UserError
from .evaluate import evaluate
from .export import export_onnx
from .masks import SNAPSHOT_FILE, MaskLadder, load_snapshot_weights
from .models import VTransModel
from .project import add_classification_head
from .prune import prune_model
from .runs import RunDir, write_json
from .safetensors_io import load_file
from .settings import parse_settings
from .shards import Shards
from .structure import count_params, flops_per_token
from .train import Compressor, autocast_for, model_summary, pick_device, set_threads
from .vib import VIBSettings


@dataclass
class Job:
    progress: Callable[[dict], None] = lambda p: None
    cancelled: threading.Event = field(default_factory=threading.Event)

    def should_stop(self) -> bool:
        return self.cancelled.is_set()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()


def _require(params: dict, *keys: str) -> None:
    missing = [k for k in keys if params.get(k) in (None, "")]
    if missing:
        raise UserError(f"missing parameter(s): {', '.join(missing)}")


def initialize(params: dict, job: Job) -> dict:
    threads = set_threads(params.get("threads"))
    cuda = torch.cuda.is_available()
    return {
        "version": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": cuda,
        "gpus": torch.cuda.device_count() if cuda else 0,
        "device": "cuda" if cuda else "cpu",
        "threads": threads,
        "gpuName": torch.cuda.get_device_name(0) if cuda else None,
        "methods": ["vtrans", "fast", "faster"],
        "budgets": list(KINDS),
    }


def inspect(params: dict, job: Job) -> dict:
    _require(params, "modelDir")
    shape = load_shape(params["modelDir"], params.get("task"))
    seq = float(params.get("seqLen", 128))
    return {
        "family": shape.family,
        "task": shape.task,
        "hidden": shape.hidden,
        "headDim": shape.head_dim,
        "layers": [{"heads": l.heads, "kvHeads": l.kv_heads, "ffn": l.ffn} for l in shape.layers],
        "vocab": shape.vocab,
        "numLabels": shape.num_labels,
        "params": count_params(shape),
        "flopsPerToken": flops_per_token(shape, seq),
    }


def compress(params: dict, job: Job) -> dict:
    settings = parse_settings(params)
    run = RunDir(settings.run_dir)
    if run.exists() and not settings.resume:
        raise UserError(f"{settings.run_dir}: a run already exists there. Pick a new output directory or resume it.")
    if settings.gpus > 1:
        return compress_distributed(settings, job)
    try:
        return Compressor(settings, job.progress, job.should_stop).compress()
    except Cancelled:
        if run.exists():
            run.update(status="cancelled")
        raise
    except UserError as e:
        if run.exists():
            run.update(status="failed", error=str(e))
        raise
    except Exception as e:
        if run.exists():
            run.update(status="failed", error=f"{type(e).__name__}: {e}")
        raise


def compress_distributed(settings, job: Job) -> dict:
    """Data-parallel training: torchrun workers in their own process group; progress relayed from rank 0;
    a cancel asks them to stop together (file flag) and kills the group if they have not within 30 s."""
    import json
    import signal
    import subprocess
    import sys

    from .worker import PROGRESS_PREFIX

    os.makedirs(settings.run_dir, exist_ok=True)
    launch = os.path.join(settings.run_dir, "launch.json")
    write_json(launch, settings.to_json())
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={settings.gpus}",
        "-m",
        "vtrans.worker",
        launch,
    ]
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([package_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True, start_new_session=True, env=env)

    def relay():
        assert proc.stdout is not None  # stdout=PIPE
        for line in proc.stdout:
            if line.startswith(PROGRESS_PREFIX):
                job.progress(json.loads(line[len(PROGRESS_PREFIX) :]))

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    cancel_sent = None
    while proc.poll() is None:
        if job.should_stop() and cancel_sent is None:
            open(os.path.join(settings.run_dir, ".cancel"), "w").close()
            cancel_sent = time.monotonic()
        if cancel_sent is not None and time.monotonic() - cancel_sent > 30:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.2)
    reader.join(5)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(settings.run_dir, ".cancel"))
    run = RunDir(settings.run_dir)
    info = run.read() if run.exists() else {}
    if info.get("status") == "done":
        return info["result"]
    if cancel_sent is not None:
        if run.exists():
            run.update(status="cancelled")
        raise Cancelled()
    if run.exists() and info.get("status") == "running":
        run.update(status="failed", error=f"the training workers exited with code {proc.returncode}")
    raise UserError(info.get("error") or f"the training workers exited with code {proc.returncode}; see the log")


def add_head(params: dict, job: Job) -> dict:
    """A classification project from a pretrained body (vtrans/project.py)."""
    _require(params, "modelDir", "outDir", "labels")
    if not isinstance(params["labels"], list):
        raise UserError("labels: must be a list of label names")
    return add_classification_head(params["modelDir"], params["outDir"], params["labels"], int(params.get("seed", 0)))


def _model_on_shards(params: dict):
    """The request's model on its device, and its token shards."""
    _require(params, "modelDir", "shards")
    device = pick_device(params.get("device", "auto"))
    set_threads(params.get("threads"))
    shards = Shards(params["shards"])
    return load_model(params["modelDir"], task=shards.task).to(device), shards, device


def evaluate_model(params: dict, job: Job) -> dict:
    model, shards, device = _model_on_shards(params)
    return evaluate(
        model,
        shards,
        device,
        batch_size=int(params.get("batchSize", 64)),
        limit=params.get("limit"),
        autocast=autocast_for(device),
        should_stop=job.check,
    )


# ----------------------------------------------------------------------------------------------------------------
# Re-thresholding a finished run's masks.


class RunArtifacts:
    """What re-thresholding needs from a run directory, loaded once and kept by the server."""

    _mtime: float  # of report.json when loaded (`artifacts` reloads on change)

    def __init__(self, run_dir: str):
        run = RunDir(run_dir)
        if not run.exists():
            raise UserError(f"{run_dir}: not a run directory (no run.json). Open a run under .vtrans/runs.")
        if not os.path.exists(run.file("masks.safetensors")):
            raise UserError(f"{run.file('masks.safetensors')}: missing; the run did not finish its mask training. Resume or rerun it.")
        self.run = run
        self.info = run.read()
        self.settings = self.info["settings"]
        self.model_dir = self.settings["model_dir"]
        self.shape = load_shape(self.model_dir, self.settings.get("task"))
        self.ladder = MaskLadder.load(
            run.path, self.shape, VIBSettings.from_dict(self.settings.get("vib") or {}), self.settings.get("method", "fast")
        )
        self.gates = self.ladder.final
        train_meta = Shards(self.settings["train_shards"]).meta
        self.seq_len = float(train_meta.get("meanLength") or 128)
        self.report = self._read_report()
        self._weights: VTransModel | None = None
        # A re-thresholded run has no weights of its own: they are its parent's.
        self.weights_run = run.path
        while not os.path.exists(os.path.join(self.weights_run, "checkpoints", "masked-weights.safetensors")):
            parent = RunDir(self.weights_run).read().get("parent") if RunDir(self.weights_run).exists() else None
            if not parent:
                break
            self.weights_run = parent

    def _read_report(self) -> dict | None:
        import json

        path = self.run.file("report.json")
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def weights(self, label: str | None = None) -> VTransModel:
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

    def select(self, keep: float, kind: str | None):
        kind = kind or self.settings["budget"]
        if kind not in KINDS:
            raise UserError(f"budget: must be one of {', '.join(KINDS)}, got {kind!r}")
        if not 0 < float(keep) <= 1:
            raise UserError(f"keep: must be in (0, 1], got {keep}")
        label = self.ladder.choose(float(keep), kind, self.settings["budget"], float(self.settings["keep"]), self.seq_len)
        gates = self.ladder.gates(label)
        sel = select_keep(self.shape, gates.scores(), kind, float(keep), self.seq_len, int(self.settings.get("round_to", 1)))
        return sel, gates, label

    def predicted_metric(self, params: float) -> float | None:
        """Linear interpolation of the sweep's metric in parameters (the sweep is re-thresholded, like this model)."""
        if not self.report:
            return None
        pts = sorted(
            (p["params"], p["metric"]) for p in self.report.get("tradeoff", []) if p["source"] == "sweep" and p["metric"] is not None
        )
        if not pts:
            return None
        xs = [p[0] for p in pts]
        i = bisect.bisect_left(xs, params)
        if i <= 0:
            return pts[0][1]
        if i >= len(pts):
            return pts[-1][1]
        (x0, y0), (x1, y1) = pts[i - 1], pts[i]
        return y0 + (y1 - y0) * (params - x0) / (x1 - x0) if x1 != x0 else y1


_artifacts: dict[str, RunArtifacts] = {}
_artifacts_lock = threading.Lock()


def artifacts(run_dir: str) -> RunArtifacts:
    key = os.path.abspath(run_dir)
    with _artifacts_lock:
        cached = _artifacts.get(key)
        mtime = os.path.getmtime(os.path.join(key, "report.json")) if os.path.exists(os.path.join(key, "report.json")) else 0
        if cached is None or getattr(cached, "_mtime", None) != mtime:
            cached = RunArtifacts(key)
            cached._mtime = mtime
            _artifacts[key] = cached
        return cached


def predict(params: dict, job: Job) -> dict:
    """Sizes at another budget from the run's masks (no training, no evaluation) and the sweep's metric there."""
    _require(params, "runDir", "keep")
    t0 = time.monotonic()
    art = artifacts(params["runDir"])
    sel, _, _ = art.select(params["keep"], params.get("budget"))
    summary = model_summary(sel.shape, art.seq_len, None)
    return {
        "keep": float(params["keep"]),
        "kind": params.get("budget") or art.settings["budget"],
        "achieved": sel.fraction,
        "params": summary["params"],
        "encoderParams": summary["encoderParams"],
        "flopsPerToken": summary["flopsPerToken"],
        "metric": art.predicted_metric(summary["params"]),
        "metricSource": "sweep-interpolation",
        "units": unit_summary(art.shape, sel.keep),
        "seconds": time.monotonic() - t0,
    }


def rethreshold(params: dict, job: Job) -> dict:
    """A new run directory holding the pruned model at another budget, cut from the run's masks (no training
    unless `retuneSteps` > 0: then a short mask-only re-tune towards the new budget first)."""
    _require(params, "runDir", "keep", "outDir")
    art = artifacts(params["runDir"])
    kind = params.get("budget") or art.settings["budget"]
    keep = float(params["keep"])
    out = RunDir(params["outDir"])
    if out.exists():
        raise UserError(f"{params['outDir']}: a run already exists there. Pick a new output directory.")
    device = pick_device(params.get("device", art.settings.get("device", "auto")))
    set_threads(params.get("threads"))
    steps = int(params.get("retuneSteps", 0))
    parent = art.run.path
    if steps > 0:
        settings = dict(art.settings)
        settings.update(
            run_dir=out.path,
            method="faster",
            keep=keep,
            budget=kind,
            min_prune_steps=steps,
            prune_epochs=0,
            resume=False,
            sweep=params.get("sweep", []),
            probe_examples=0,
            init_masks=art.run.file("masks.safetensors"),
        )
        weights = art.run.file("checkpoints", "masked-weights.safetensors")
        if os.path.exists(weights):
            settings["init_weights"] = weights
        result = compress_from_settings(settings, job)
        out.update(parent=parent, method="rethreshold")
        return result
    out.create(
        {**art.settings, "run_dir": out.path, "keep": keep, "budget": kind},
        {"method": "rethreshold", "parent": parent, "budget": {"kind": kind, "keep": keep}, "modelDir": art.model_dir},
    )
    try:
        sel, gates, label = art.select(keep, kind)
        job.progress({"runDir": out.path, "phase": "prune", "step": 1, "total": 3})
        pruned = prune_model(art.weights(label), sel.keep, gates.scales())
        save_model(pruned, out.file("model"), tokenizer_from=art.model_dir)
        shutil.copyfile(art.run.file("masks.safetensors"), out.file("masks.safetensors"))
        if os.path.exists(art.run.file(SNAPSHOT_FILE)):
            shutil.copyfile(art.run.file(SNAPSHOT_FILE), out.file(SNAPSHOT_FILE))
        job.check()
        job.progress({"runDir": out.path, "phase": "export", "step": 2, "total": 3})
        export_onnx(pruned, out.file("model.onnx"), with_token_types=bool(art.settings.get("with_token_types")))
        if os.path.exists(art.run.file("teacher.onnx")):
            shutil.copyfile(art.run.file("teacher.onnx"), out.file("teacher.onnx"))
        metric = None
        eval_dir = params.get("evalShards") or art.settings.get("eval_shards")
        if eval_dir and os.path.exists(eval_dir) and not params.get("skipEval"):
            job.progress({"runDir": out.path, "phase": "evaluate", "step": 3, "total": 3})
            metric = evaluate(pruned.to(device), Shards(eval_dir), device, autocast=autocast_for(device), should_stop=job.check)
        student = model_summary(sel.shape, art.seq_len, metric)
        report = copy.deepcopy(art.report) if art.report else None
        if report is not None:
            from .report import layer_reports

            report.update(
                runId=os.path.basename(out.path),
                method=report["method"],
                student=student,
                budget={"kind": kind, "keep": keep, "achieved": sel.fraction},
                units=unit_summary(art.shape, sel.keep),
                layers=layer_reports(art.shape, sel.keep, gates.scores(), _probes_from(report)),
                hiddenKept={"kept": len(sel.keep.hidden), "total": art.shape.hidden},
                parent=parent,
            )
            report["tradeoff"] = [p for p in report["tradeoff"] if p["source"] != "finetuned"] + [
                {
                    "source": "finetuned",
                    "keep": keep,
                    "kind": kind,
                    **{k: student[k] for k in ("params", "encoderParams", "flopsPerToken")},
                    "metric": metric["value"] if metric else None,
                    "units": unit_summary(art.shape, sel.keep),
                }
            ]
            report["tradeoff"].sort(key=lambda p: (p["params"], p["source"]))
            write_json(out.file("report.json"), report)
        result = {
            "status": "done",
            "runDir": out.path,
            "parent": parent,
            "method": "rethreshold",
            "budget": kind,
            "keep": keep,
            "achieved": sel.fraction,
            "student": student,
            "units": unit_summary(art.shape, sel.keep),
            "modelDir": out.file("model"),
            "onnxPath": out.file("model.onnx"),
        }
        out.update(status="done", result=result)
        return result
    except Cancelled:
        out.update(status="cancelled")
        raise
    except Exception as e:
        out.update(status="failed", error=str(e))
        raise


def _probes_from(report: dict) -> dict | None:
    """Per-head probe figures of a report, in run_probes' layout, to carry them into a derived report."""
    layers = report.get("layers") or []
    if not any(h.get("probes") for l in layers for h in l["heads"]):
        return None
    return {"layers": [[h.get("probes") or {} for h in l["heads"]] for l in layers]}


def compress_from_settings(settings: dict, job: Job) -> dict:
    return compress({k: v for k, v in settings.items()}, job)


def sweep(params: dict, job: Job) -> dict:
    """Evaluates re-thresholded models at the given budgets and merges the points into the run's report.json."""
    _require(params, "runDir", "budgets")
    art = artifacts(params["runDir"])
    device = pick_device(params.get("device", "auto"))
    set_threads(params.get("threads"))
    shards = Shards(params.get("evalShards") or art.settings["eval_shards"])
    kind = params.get("budget") or art.settings["budget"]
    points = []
    budgets = sorted({float(b) for b in params["budgets"]}, reverse=True)
    for i, keep in enumerate(budgets):
        job.check()
        sel, gates, label = art.select(keep, kind)
        model = prune_model(art.weights(label), sel.keep, gates.scales()).to(device)
        metric = evaluate(model, shards, device, limit=params.get("limit"), autocast=autocast_for(device), should_stop=job.check)
        s = model_summary(sel.shape, art.seq_len, metric)
        points.append(
            {
                "source": "sweep",
                "keep": keep,
                "kind": kind,
                "params": s["params"],
                "encoderParams": s["encoderParams"],
                "flopsPerToken": s["flopsPerToken"],
                "metric": metric["value"],
                "units": unit_summary(art.shape, sel.keep),
            }
        )
        job.progress({"runDir": art.run.path, "phase": "sweep", "step": i + 1, "total": len(budgets)})
    if art.report is not None:
        keep_old = [p for p in art.report["tradeoff"] if not (p["source"] == "sweep" and p["kind"] == kind and p["keep"] in budgets)]
        art.report["tradeoff"] = sorted(keep_old + points, key=lambda p: (p["params"], p["source"]))
        write_json(art.run.file("report.json"), art.report)
    return {"runDir": art.run.path, "points": points}


def probe(params: dict, job: Job) -> dict:
    from .probes import run_probes

    model, shards, device = _model_on_shards(params)
    result = run_probes(model, shards, device, int(params.get("examples", 128)), params.get("specialTokenIds") or [], should_stop=job.check)
    if params.get("runDir"):
        art = artifacts(params["runDir"])
        if art.report:
            for layer, heads in zip(art.report["layers"], result["layers"]):
                for h, entry in zip(layer["heads"], heads):
                    entry["kept"] = h["kept"]
    return result


HANDLERS = {
    "initialize": initialize,
    "inspect": inspect,
    "addHead": add_head,
    "compress": compress,
    "evaluate": evaluate_model,
    "rethreshold": rethreshold,
    "predict": predict,
    "sweep": sweep,
    "probe": probe,
}
