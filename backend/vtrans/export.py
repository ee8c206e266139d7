"""Exporting a model directory (config + safetensors + the source tokenizer files) and `model.onnx`.

ONNX: opset 17 (else 14 when the exporter cannot), dynamic batch and sequence axes, inputs `input_ids` and
`attention_mask` (int64; plus `token_type_ids` when asked, for BERT text pairs), output `logits`. Checked with
`onnx.checker` when the `onnx` package is installed.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from .models import VTransModel

log = logging.getLogger("vtrans")


class _LogitsOnly(nn.Module):
    def __init__(self, model: VTransModel, with_token_types: bool):
        super().__init__()
        self.model = model
        self.with_token_types = with_token_types

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return self.model.run(input_ids, attention_mask, token_type_ids).logits


@contextlib.contextmanager
def explicit_attention(model: VTransModel) -> Iterator[None]:
    """Exporters trace the explicit attention product: a plain MatMul/Softmax graph that onnxruntime fuses on
    every execution provider, where an exported SDPA depends on the opset and the exporter's version."""
    body = model.body
    before = body.use_sdpa
    body.use_sdpa = False
    try:
        yield
    finally:
        body.use_sdpa = before


def export_onnx(model: VTransModel, path: str, with_token_types: bool = False, opset: int | None = None) -> int:
    """Writes `path` atomically and returns the opset used."""
    model = model.eval().to("cpu", torch.float32)
    # The exporter restores the wrapper's train/eval mode afterwards, recursively: it must be eval too.
    wrapper = _LogitsOnly(model, with_token_types).eval()
    ids = torch.randint(3, max(model.shape.vocab, 4), (2, 8))
    mask = torch.ones_like(ids)
    args = (ids, mask, torch.zeros_like(ids)) if with_token_types else (ids, mask)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_token_types else [])
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["logits"] = {0: "batch", 1: "sequence"} if model.shape.task == "lm" else {0: "batch"}
    kwargs: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter handles dynamic axes the same on every torch version
    tmp = f"{path}.tmp-{os.getpid()}"
    last_error: Exception | None = None
    for version in [opset] if opset else [17, 14]:
        try:
            with explicit_attention(model), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python values are expected here
                torch.onnx.export(
                    wrapper,
                    args,
                    tmp,
                    input_names=names,
                    output_names=["logits"],
                    dynamic_axes=axes,
                    opset_version=version,
                    do_constant_folding=True,
                    **kwargs,
                )
            break
        except Exception as e:  # an opset the installed exporter lacks: try the next
            last_error = e
            log.info("ONNX export with opset %s failed (%s); trying an older opset", version, e)
    else:
        raise RuntimeError(f"ONNX export failed: {last_error}")
    _check(tmp)
    os.replace(tmp, path)
    return version


def _check(path: str) -> None:
    try:
        import onnx
    except ImportError:
        return
    onnx.checker.check_model(path)
