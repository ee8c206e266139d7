"""Loading Hugging Face checkpoints by their own weight names, and saving models in the same layout.

Weights come from `model.safetensors`, a sharded `model.safetensors.index.json`, or `pytorch_model.bin` through
`torch.load(weights_only=True)` only (a pickle that needs anything but tensors is refused). fp32/fp16/bf16
weights load into the requested dtype (fp32 by default; `dtype=None` keeps the stored one, so a bf16 checkpoint
takes half the memory of fp32). The model is built on the meta device and every parameter is allocated once, in
its final dtype, and filled from the memory-mapped file one tensor at a time: the peak is the model plus one
tensor. Every problem names the file and the fix.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Mapping

import torch
from torch import nn

from .errors import CheckpointError
from .models import ARCHITECTURES, VTransModel, build_model
from .models.common import Body
from .safetensors_io import SafetensorsFile, save_file
from .structure import ModelShape, family_of, read_config, shape_from_config

log = logging.getLogger("vtrans")

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
)


class WeightSource(Mapping):
    """A checkpoint's tensors by name, read lazily: safetensors files memory-mapped (one shard at a time), or a
    `pytorch_model.bin` through `torch.load(weights_only=True, mmap=True)`. Shapes come from the headers, so they
    can be checked against config.json before any tensor is read."""

    def __init__(self, model_dir: str):
        self.model_dir = model_dir
        self.path = weights_file_name(model_dir)
        self._where: dict[str, SafetensorsFile] = {}
        self._pickled: dict[str, torch.Tensor] | None = None
        single = os.path.join(model_dir, "model.safetensors")
        index = os.path.join(model_dir, "model.safetensors.index.json")
        pickled = os.path.join(model_dir, "pytorch_model.bin")
        if os.path.exists(single):
            self._add(SafetensorsFile(single))
        elif os.path.exists(index):
            for shard in self._shards(index):
                self._add(SafetensorsFile(os.path.join(model_dir, shard)))
        elif os.path.exists(pickled):
            self._pickled = _load_pickle(pickled)
        else:
            raise CheckpointError(
                f"{model_dir}: no weights found (expected model.safetensors, model.safetensors.index.json or "
                "pytorch_model.bin). Point to a Hugging Face style model directory."
            )

    def _add(self, f: SafetensorsFile) -> None:
        for name in f.names():
            self._where[name] = f

    def _shards(self, index: str) -> list[str]:
        try:
            with open(index, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{index}: not a valid shard index ({e}). Save the checkpoint again.") from None
        for shard in shards:
            path = os.path.normpath(os.path.join(self.model_dir, shard)) if isinstance(shard, str) else ""
            if os.path.dirname(path) != os.path.normpath(self.model_dir):
                raise CheckpointError(f"{index}: shard {shard!r} is not a file in {self.model_dir}. Fix the weight_map.")
            if not os.path.exists(path):
                raise CheckpointError(f"{index}: names shard {shard!r}, which is missing from {self.model_dir}. Copy the missing shard.")
        return shards

    def __getitem__(self, name: str) -> torch.Tensor:
        if self._pickled is not None:
            return self._pickled[name]
        return self._where[name].get(name)

    def __iter__(self):
        return iter(self._pickled if self._pickled is not None else self._where)

    def __len__(self) -> int:
        return len(self._pickled if self._pickled is not None else self._where)

    def shape(self, name: str) -> tuple[int, ...]:
        if self._pickled is not None:
            return tuple(self._pickled[name].shape)
        return self._where[name].shape(name)

    def dtype(self, name: str) -> torch.dtype:
        if self._pickled is not None:
            return self._pickled[name].dtype
        return SAFETENSORS_DTYPES.get(self._where[name].dtype(name), torch.float32)

    def stored_dtype(self) -> torch.dtype:
        """The floating dtype the weights are stored in: bf16 or fp16 when every floating tensor has it, else fp32."""
        found = {self.dtype(n) for n in self if self.dtype(n).is_floating_point}
        return found.pop() if len(found) == 1 and found <= {torch.bfloat16, torch.float16} else torch.float32


SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def _load_pickle(path: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: refused by torch.load(weights_only=True) ({first}). It holds more than tensors, or it "
            "is not a zip-format checkpoint; convert it to model.safetensors in an environment you trust."
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: is not a state dict of tensors. Save it with model.save_pretrained().")
    return state


def read_weights(model_dir: str) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint, in memory (small models and tests; `load_model` reads lazily)."""
    return dict(WeightSource(model_dir).items())


def weights_file_name(model_dir: str) -> str:
    for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"):
        if os.path.exists(os.path.join(model_dir, name)):
            return os.path.join(model_dir, name)
    return model_dir


def _find(state: Mapping[str, torch.Tensor], name: str, body_prefix: str) -> str | None:
    """The checkpoint's name for one of our parameters: as is, or without the body prefix (bare BertModel/GPT2Model)."""
    if name in state:
        return name
    if name.startswith(body_prefix) and name[len(body_prefix) :] in state:
        return name[len(body_prefix) :]
    return None


def match_weights(
    params: Mapping[str, tuple[int, ...]], body_prefix: str, state: Mapping[str, torch.Tensor], source: str, fresh: tuple[str, ...] = ()
) -> dict[str, str]:
    """The checkpoint key of every parameter (by Hugging Face name), with the stored shapes checked against the
    model's — from the headers when `state` is a `WeightSource`, so nothing is read or allocated for a mismatch.
    Parameters whose names start with one of `fresh` may be absent (a new task head)."""
    keys, missing = {}, []
    for name, shape in params.items():
        key = _find(state, name, body_prefix)
        if key is None:
            if not (fresh and name.startswith(fresh)):
                missing.append(name)
            continue
        stored = state.shape(key) if isinstance(state, WeightSource) else tuple(state[key].shape)
        if tuple(stored) != tuple(shape):
            raise CheckpointError(
                f"{source}: weight {key!r} has shape {list(stored)}, but config.json implies "
                f"{list(shape)}. The weights and config.json describe different models."
            )
        keys[name] = key
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        hint = (
            "The checkpoint has no sequence-classification head: fine-tune it on your task first, or choose the causal-LM task."
            if any(m.startswith(("classifier", "score")) for m in missing)
            else "The checkpoint is incomplete or does not match config.json."
        )
        raise CheckpointError(f"{source}: missing weights {shown}. {hint}")
    return keys


def load_state(model: VTransModel, state: Mapping[str, torch.Tensor], source: str, fresh: tuple[str, ...] = ()) -> None:
    """Copies checkpoint tensors into the model by Hugging Face name (`match_weights` checks names and shapes
    first). A tensor with NaN or infinite values is refused, naming it: no run should start from one."""
    params = dict(model.named_parameters())
    keys = match_weights({n: tuple(p.shape) for n, p in params.items()}, model.body_prefix, state, source, fresh)
    for name, key in keys.items():
        with torch.no_grad():
            params[name].copy_(state[key])  # converts to the parameter's dtype
            if params[name].is_floating_point() and not bool(torch.isfinite(params[name]).all()):
                raise CheckpointError(
                    f"{source}: weight {key!r} holds NaN or infinite values. The checkpoint is damaged or was saved from a "
                    "diverged training; restore it from its source."
                )
    unused = family_of(model.shape.family).unused_weights
    extra = [k for k in state if k not in set(keys.values()) and not k.endswith(unused)]
    if extra:
        log.info("%s: ignoring %d weights the model does not use (e.g. %s)", source, len(extra), extra[0])


def load_model(
    path: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = torch.float32, task: str | None = None
) -> VTransModel:
    """Loads a Hugging Face style model directory as a `VTransModel` (a `torch.nn.Module`) in eval mode, its
    parameters in `dtype` (None: the checkpoint's stored dtype).

    `forward(input_ids, attention_mask)` returns the logits: (batch, labels) for classification, (batch, seq, vocab)
    for causal LM. `run(...)` also takes VTrans gates and an attention capture, and returns hidden states.
    """
    shape = shape_from_config(read_config(path), os.path.join(path, "config.json"), task)
    weights = WeightSource(path)
    with torch.device("meta"):  # the parameter shapes, checked against the headers before any allocation
        skeleton = build_model(shape)
    match_weights({n: tuple(p.shape) for n, p in skeleton.named_parameters()}, skeleton.body_prefix, weights, weights.path)
    dtype = dtype or weights.stored_dtype()
    # Parameters allocated once in their final dtype (no fp32 model with a random initialisation first); buffers
    # derived from the config (LLaMA's rotary frequencies) are recomputed and stay fp32.
    model = skeleton
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is not None:
                module._parameters[name] = nn.Parameter(torch.empty(p.shape, dtype=dtype), requires_grad=p.requires_grad)
        for name, b in list(module._buffers.items()):
            if b is not None and b.is_meta:
                module._buffers[name] = torch.zeros(b.shape, dtype=b.dtype)
    load_state(model, weights, weights.path)
    for m in model.modules():
        if isinstance(m, Body):
            m.init_buffers()
    return model.to(device=device).eval()


def load_shape(path: str, task: str | None = None) -> ModelShape:
    return shape_from_config(read_config(path), os.path.join(path, "config.json"), task)


def state_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.named_parameters()}


def write_json_atomic(path: str, data) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def save_model(model: VTransModel, out_dir: str, config: dict | None = None, tokenizer_from: str | None = None) -> None:
    """Writes config.json + model.safetensors (fp32) and copies the source's tokenizer files."""
    os.makedirs(out_dir, exist_ok=True)
    cfg = dict(config if config is not None else model.shape.config)
    cfg["architectures"] = [ARCHITECTURES[type(model)]]
    cfg["torch_dtype"] = "float32"
    save_file(state_for_saving(model), os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    write_json_atomic(os.path.join(out_dir, "config.json"), cfg)
    if tokenizer_from:
        copy_tokenizer(tokenizer_from, out_dir)


def copy_tokenizer(src: str, dst: str) -> None:
    import shutil

    for name in TOKENIZER_FILES:
        p = os.path.join(src, name)
        if os.path.exists(p):
            shutil.copyfile(p, os.path.join(dst, name))
