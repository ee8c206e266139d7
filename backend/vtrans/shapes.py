"""The two output shapes of a run's `model/` (docs/model-format.md, "Output shapes"): what is written for each, the
lines that load it without VTrans, and the tradeoff points of the shape a run did not ship.

    heterogeneous   VTrans's per-layer config fields, plus the family's modeling file (vtrans/hf_modeling/) and an
                    `auto_map` in config.json: `AutoModelFor*.from_pretrained(dir, trust_remote_code=True)`
    uniform         every layer the same size (selected by vtrans/uniform.py) and only the family's standard config
                    fields: `AutoModelFor*.from_pretrained(dir)` with stock transformers, and any tool that reads them

Either way the weights are the same Hugging Face names and the same safetensors file VTrans itself loads
(`vtrans.load_model`), and `model.onnx` is exported from the same model.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable

from .checkpoint import save_model, write_json_atomic
from .errors import UserError
from .models import ARCHITECTURES, VTransModel
from .report import HowToLoad, Metric, TradeoffPoint, UnitCounts
from .settings import SHAPES
from .structure import family_of

log = logging.getLogger("vtrans")

MODELING_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_modeling")
PIPELINE_TASKS = {"classification": "text-classification", "lm": "text-generation"}


def check_shape(shape: str) -> str:
    if shape not in SHAPES:
        raise UserError(f"shape: must be one of {', '.join(SHAPES)}, got {shape!r}")
    return shape


def other_shape(shape: str) -> str:
    return SHAPES[1 - SHAPES.index(check_shape(shape))]


def output_config(model: VTransModel, shape: str) -> dict:
    """config.json of `model` (a pruned model) in an output shape."""
    p = model.shape
    family = family_of(p.family)
    if check_shape(shape) == "uniform":
        cfg = family.standard_config(p)
        cfg["architectures"] = [ARCHITECTURES[type(model)]]
    else:
        cfg = family.remote_code_config(p)
    cfg["torch_dtype"] = "float32"
    return cfg


def save_output(model: VTransModel, out_dir: str, shape: str, tokenizer_from: str | None = None) -> None:
    """Writes `model` as a Hugging Face model directory in `shape`: config.json, model.safetensors, the source's
    tokenizer files and, for the heterogeneous shape, the family's modeling file(s)."""
    cfg = output_config(model, shape)  # a model the shape cannot describe fails before anything is written
    save_model(model, out_dir, config=cfg, tokenizer_from=tokenizer_from)
    write_json_atomic(os.path.join(out_dir, "config.json"), cfg)  # save_model names VTrans's own class
    family = family_of(model.shape.family)
    for name in os.listdir(out_dir):
        if name.startswith("modeling_vtrans_") and name.endswith(".py"):
            os.remove(os.path.join(out_dir, name))  # a directory written again in the other shape
    if shape == "heterogeneous":
        for name in family.remote_files:
            shutil.copyfile(os.path.join(MODELING_DIR, name), os.path.join(out_dir, name))


def how_to_load(model_dir: str, family: str, task: str, shape: str) -> HowToLoad:
    """The Python lines that load `model_dir` (and the model.onnx next to it) without VTrans."""
    auto = family_of(family).task_auto_class(task)
    trust = shape == "heterogeneous"
    remote = ", trust_remote_code=True" if trust else ""
    pipeline_task = PIPELINE_TASKS[task]
    model_dir = os.path.abspath(model_dir)
    run = (
        'print(pipe("Replace this with your text."))'
        if task == "classification"
        else 'print(pipe("Replace this with your prompt", max_new_tokens=20)[0]["generated_text"])'
    )
    python = "\n".join(
        [
            f"from transformers import {auto}, AutoTokenizer, pipeline",
            "",
            f"model_dir = {model_dir!r}",
            f"model = {auto}.from_pretrained(model_dir{remote})",
            "tokenizer = AutoTokenizer.from_pretrained(model_dir)",
            f'pipe = pipeline("{pipeline_task}", model=model, tokenizer=tokenizer)',
            run,
        ]
    )
    onnx_path = os.path.join(os.path.dirname(model_dir), "model.onnx")
    onnx_python = "\n".join(
        [
            "import numpy as np",
            "import onnxruntime as ort",
            "from transformers import AutoTokenizer",
            "",
            f"tokenizer = AutoTokenizer.from_pretrained({model_dir!r})",
            f"session = ort.InferenceSession({onnx_path!r})",
            'enc = tokenizer(["Replace this with your text."], return_tensors="np")',
            "# input_ids and attention_mask (int64), and token_type_ids when the model was exported for text pairs",
            "feeds = {i.name: enc[i.name].astype(np.int64) for i in session.get_inputs()}",
            'logits = session.run(["logits"], feeds)[0]',
            "print(logits.shape)",
        ]
    )
    return HowToLoad(shape, model_dir, auto, trust, pipeline_task, python, onnx_python)  # type: ignore[arg-type]


def other_shape_points(
    selector,
    budgets: list[float],
    kind: str,
    metric: Callable[[VTransModel], Metric],
    check: Callable[[], None] = lambda: None,
    device=None,
    examples: int | None = None,
) -> list[TradeoffPoint]:
    """Sweep points of the shape the run did not ship (source `sweep:<shape>`): the same budgets re-thresholded
    under that shape's constraint and evaluated, so the tradeoff view shows what each shape costs. None when the
    source model has no such shape (a uniform cut of a model that already lost a sublayer). `examples`: how many
    the metric reads, so that a cut the selector already scored on as many is not evaluated again."""
    shape = other_shape(selector.output_shape)
    points = []
    for keep in sorted(set(budgets), reverse=True):
        check()
        try:
            sel, _, model = selector.cut(keep, kind, device, shape=shape)
        except UserError as e:
            log.info("no %s tradeoff points: %s", shape, e)
            return []
        value = (examples is not None and selector.scored(keep, examples, kind, shape)) or metric(model)
        points.append(selector.point(f"sweep:{shape}", keep, kind, sel.shape, value, UnitCounts.of(selector.shape, sel.keep), shape))
    return points
