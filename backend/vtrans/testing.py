"""Small random checkpoints of every family, for tests and benchmarks (no downloads needed).

python -m vtrans.testing tiny <family> <task> <out_dir> [--seed N]
python -m vtrans.testing onnx-fixtures|accounting-fixtures|shape-fixtures <out_dir> [--seed N]
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from .checkpoint import save_model
from .models import ARCHITECTURES, CLASSES, build_model
from .settings import SHAPES
from .structure import shape_from_config

# The LLaMA-2-7B shape (random weights are enough for the sizes and timings the tests and benchmarks measure).
LLAMA_2_7B = dict(
    model_type="llama",
    architectures=["LlamaForCausalLM"],
    hidden_size=4096,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    intermediate_size=11008,
    vocab_size=32000,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
)

# Every family with every task it has a head for.
FAMILY_TASKS = (
    ("bert", "classification"),
    ("roberta", "classification"),
    ("gpt2", "classification"),
    ("gpt2", "lm"),
    ("llama", "classification"),
    ("llama", "lm"),
)

TINY = {
    "bert": dict(
        model_type="bert",
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=48,
        vocab_size=97,
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        pad_token_id=0,
    ),
    "roberta": dict(
        model_type="roberta",
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=48,
        vocab_size=97,
        max_position_embeddings=66,
        type_vocab_size=1,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    ),
    "gpt2": dict(
        model_type="gpt2",
        n_embd=32,
        n_layer=3,
        n_head=4,
        n_positions=64,
        n_inner=None,
        vocab_size=97,
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        bos_token_id=0,
        eos_token_id=0,
    ),
    "llama": dict(
        model_type="llama",
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=48,
        vocab_size=97,
        max_position_embeddings=64,
        rms_norm_eps=1e-6,
        hidden_act="silu",
        rope_theta=10000.0,
        tie_word_embeddings=False,
        pad_token_id=0,
    ),
}


def tiny_config(family: str, task: str, num_labels: int = 3, **overrides) -> dict:
    cfg = dict(TINY[family])
    cfg.update(overrides)
    cfg["architectures"] = [ARCHITECTURES[CLASSES[(family, task)]]]
    if task == "classification":
        cfg["id2label"] = {str(i): f"label_{i}" for i in range(num_labels)}
        cfg["label2id"] = {f"label_{i}": i for i in range(num_labels)}
        if family == "gpt2":
            cfg.setdefault("pad_token_id", 0)
    return cfg


def randomize(model: torch.nn.Module, seed: int, std: float = 0.15) -> None:
    """Weights large enough that every unit matters to the logits (so masking errors show)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight") or "ln_" in name or "layernorm" in name or name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))


def build_tiny(family: str, task: str, out_dir: str | None = None, seed: int = 0, num_labels: int = 3, **overrides):
    cfg = tiny_config(family, task, num_labels, **overrides)
    shape = shape_from_config(cfg, "tiny config", task)
    model = build_model(shape)
    randomize(model, seed)
    model.eval()
    if out_dir:
        save_model(model, out_dir, cfg)
    return model


def onnx_fixtures(out_dir: str, seed: int = 0) -> list:
    """For every family and task: a randomly pruned model directory with model.onnx, and the inputs and logits of
    the hard-masked source model, for the TypeScript side to check onnxruntime-node against."""
    from .export import export_onnx
    from .prune import KeepSet, UnitScales, masked_gates, prune_model

    cases = []
    for family, task in FAMILY_TASKS:
        model = build_tiny(family, task, seed=seed)
        s = model.shape
        g = torch.Generator().manual_seed(seed)
        pick = lambda n, k, g=g: torch.randperm(n, generator=g)[:k]
        keep = KeepSet(
            pick(s.hidden, s.hidden * 3 // 4),
            [pick(l.kv_heads, k) for l, k in zip(s.layers, (l.kv_heads - 1 or 1 for l in s.layers))],
            [pick(l.ffn, l.ffn // 2) for l in s.layers],
        )
        keep.heads[1] = keep.heads[1][:0]
        keep.ffn[2] = keep.ffn[2][:0]
        scales = UnitScales(
            0.5 + torch.rand(s.hidden, generator=g),
            [0.5 + torch.rand(l.kv_heads, generator=g) for l in s.layers],
            0.5 + torch.rand(s.n_layers, generator=g),
            [0.5 + torch.rand(l.ffn, generator=g) for l in s.layers],
            0.5 + torch.rand(s.n_layers, generator=g),
        )
        pruned = prune_model(model, keep, scales)
        name = f"{family}-{task}"
        model_dir = os.path.join(out_dir, name)
        save_model(pruned, model_dir)
        export_onnx(pruned, os.path.join(model_dir, "model.onnx"))
        runs = []
        for b, t in ((1, 5), (3, 13)):
            ids = torch.randint(3, s.vocab, (b, t), generator=g)
            mask = torch.ones_like(ids)
            if b > 1:
                mask[1, t - 3 :] = 0
                ids[1, t - 3 :] = int(s.config.get("pad_token_id") or 0)
            with torch.no_grad():
                masked = model.run(ids, mask, gates=masked_gates(s, keep, scales)).logits
                direct = pruned(ids, mask)
            runs.append(
                {
                    "input_ids": ids.tolist(),
                    "attention_mask": mask.tolist(),
                    "dims": list(masked.shape),
                    "masked_logits": masked.flatten().tolist(),
                    "pruned_logits": direct.flatten().tolist(),
                }
            )
        cases.append({"name": name, "task": task, "dir": model_dir, "params": sum(p.numel() for p in pruned.parameters()), "runs": runs})
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(cases, f)
    return cases


# Every family and task, tied and untied LM heads, MHA/GQA/MQA and LLaMA's optional biases.
ACCOUNTING_CASES: tuple[tuple[str, str, dict], ...] = (
    ("bert", "classification", {}),
    ("roberta", "classification", {}),
    ("gpt2", "classification", {}),
    ("gpt2", "lm", {}),
    ("gpt2", "lm", {"tie_word_embeddings": False}),
    ("llama", "classification", {}),
    ("llama", "lm", {}),
    ("llama", "lm", {"tie_word_embeddings": True, "num_key_value_heads": 1}),
    ("llama", "lm", {"num_key_value_heads": 4, "attention_bias": True, "mlp_bias": True}),
    ("llama", "classification", {"attention_bias": True, "mlp_bias": True}),
)
ACCOUNTING_SEQ_LENS = (1, 12.75, 37.3, 128)


def random_keep_sets(s, count: int, seed: int) -> list:
    """Random keep-sets with a pruned hidden width, one layer without attention, one without FFN, a layer that
    lost a key/value group, and (in the last) a layer with neither sublayer."""
    from .prune import KeepSet

    g = torch.Generator().manual_seed(seed)

    def subset(n: int, low: int, high: int) -> torch.Tensor:
        k = int(torch.randint(min(low, high), max(high, low) + 1, (1,), generator=g))
        return torch.randperm(n, generator=g)[:k]

    sets = []
    for i in range(count):
        keep = KeepSet(
            subset(s.hidden, 1, s.hidden - 1),
            [subset(l.kv_heads, 0, l.kv_heads) for l in s.layers],
            [subset(l.ffn, 0, l.ffn) for l in s.layers],
        )
        no_attn, no_ffn, fewer_groups = i % s.n_layers, (i + 1) % s.n_layers, (i + 2) % s.n_layers
        keep.heads[no_attn] = keep.heads[no_attn][:0]
        keep.ffn[no_ffn] = keep.ffn[no_ffn][:0]
        kv = s.layers[fewer_groups].kv_heads
        keep.heads[fewer_groups] = subset(kv, 1, kv - 1)
        if i == count - 1:
            keep.ffn[no_attn] = keep.ffn[no_attn][:0]
        sets.append(keep)
    return sets


def accounting_fixtures(out_dir: str, seed: int = 0, keep_sets: int = 3) -> list:
    """For every case of ACCOUNTING_CASES: the full model and pruned ones, saved, with the backend's size accounting
    (of the shape read back from the saved config.json) and the parameters PyTorch counts, for the TypeScript side
    to compare its own accounting against (test/unit/accounting-parity.test.ts)."""
    from torch import nn

    from .checkpoint import load_shape
    from .models.bert import BertEmbeddings
    from .prune import KeepSet, prune_model
    from .structure import count_params, flops_per_token

    cases = []
    for n, (family, task, overrides) in enumerate(ACCOUNTING_CASES):
        model = build_tiny(family, task, seed=seed, **overrides)
        for k, keep in enumerate([KeepSet.full(model.shape)] + random_keep_sets(model.shape, keep_sets, seed + n)):
            pruned = prune_model(model, keep)
            name = f"{n}-{family}-{task}-{k}"
            model_dir = os.path.join(out_dir, name)
            save_model(pruned, model_dir)
            shape = load_shape(model_dir)
            embedding = {id(p): p for m in pruned.modules() if isinstance(m, (nn.Embedding, BertEmbeddings)) for p in m.parameters()}
            cases.append(
                {
                    "name": name,
                    "overrides": overrides,
                    "dir": model_dir,
                    "units": keep.counts(),
                    "params": count_params(shape),
                    "paramsOfPrunedShape": count_params(pruned.shape),
                    "flops": [[seq_len, flops_per_token(shape, seq_len)] for seq_len in ACCOUNTING_SEQ_LENS],
                    "torch": {
                        "total": sum(p.numel() for p in pruned.parameters()),
                        "embedding": sum(p.numel() for p in embedding.values()),
                        "encoder": sum(p.numel() for b in pruned.body.blocks() for p in b.parameters()),
                    },
                }
            )
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(cases, f)
    return cases


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m vtrans.testing")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tiny")
    t.add_argument("family", choices=sorted(TINY))
    t.add_argument("task", choices=["classification", "lm"])
    t.add_argument("out_dir")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--overrides", default="{}", help="JSON object of config overrides")
    for fixtures in ("onnx-fixtures", "accounting-fixtures", "shape-fixtures"):
        o = sub.add_parser(fixtures)
        o.add_argument("out_dir")
        o.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.cmd == "tiny":
        build_tiny(a.family, a.task, a.out_dir, a.seed, **json.loads(a.overrides))
        print(os.path.abspath(a.out_dir))
        return
    {"onnx-fixtures": onnx_fixtures, "accounting-fixtures": accounting_fixtures, "shape-fixtures": shape_fixtures}[a.cmd](a.out_dir, a.seed)
    print(os.path.abspath(os.path.join(a.out_dir, "cases.json")))


# ----------------------------------------------------------------------------------------------------------------
# Token shards and a small learnable task, for tests of the training loop without the TypeScript side.


def write_shards(
    out_dir: str, sequences, labels=None, task: str = "classification", label_names=None, pad_id: int = 0, source: str = "synthetic"
) -> str:
    """Writes the shard format of docs/data-format.md (as src/core/shards.ts does)."""
    import numpy as np

    os.makedirs(out_dir, exist_ok=True)
    lengths = np.array([len(s) for s in sequences], dtype="<i4")
    ids = np.concatenate([np.asarray(s, dtype="<i4") for s in sequences])
    ids.tofile(os.path.join(out_dir, "ids.i32"))
    lengths.tofile(os.path.join(out_dir, "lengths.i32"))
    if task == "classification":
        np.asarray(labels, dtype="<i4").tofile(os.path.join(out_dir, "labels.i32"))
    from .schema import dump
    from .shards import ShardMeta

    meta = ShardMeta(
        format="vtrans-tokens",
        version=1,
        task=task,  # type: ignore[arg-type]
        examples=len(sequences),
        tokens=int(ids.size),
        max_len=int(lengths.max()),
        pad_id=pad_id,
        labels=label_names if task == "classification" else None,
        pairs=False,
        mean_length=float(lengths.mean()),
        source=source,
        source_bytes=0,
        source_mtime_ms=0,
        tokenizer_sha256="synthetic",
        created_at="1970-01-01T00:00:00Z",
    )
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(dump(meta), f)
    return out_dir


def synthetic_classification(n: int, vocab: int = 97, classes: int = 3, seed: int = 0, min_len: int = 6, max_len: int = 16):
    """Label = which of `classes` marker tokens (3, 4, 5, ...) appears most; the rest is noise. Starts with token 2 ([CLS])."""
    g = torch.Generator().manual_seed(seed)
    seqs, labels = [], []
    for _ in range(n):
        length = int(torch.randint(min_len, max_len + 1, (1,), generator=g))
        seq = torch.randint(3 + classes, vocab, (length,), generator=g)
        label = int(torch.randint(0, classes, (1,), generator=g))
        pos = torch.randperm(length - 1, generator=g)[:3] + 1
        seq[pos] = 3 + label
        seq[0] = 2
        seqs.append(seq.tolist())
        labels.append(label)
    return seqs, labels


def train_briefly(model, shards_dir: str, steps: int = 150, lr: float = 3e-3, batch_size: int = 32, seed: int = 0):
    """Plain supervised training so that a tiny teacher has something to lose when pruned."""
    import numpy as np

    from .evaluate import task_loss
    from .shards import Shards

    torch.manual_seed(seed)
    shards = Shards(shards_dir)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(steps):
        batch = shards.batch(rng.choice(len(shards), size=min(batch_size, len(shards)), replace=False))
        loss = task_loss(shards.task, model.run(batch.input_ids, batch.attention_mask).logits, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


# ----------------------------------------------------------------------------------------------------------------
# The two output shapes (docs/model-format.md): random uniform keep-sets, and fixtures of both shapes for the
# TypeScript side (onnxruntime-node against transformers).


def random_uniform_keep(s, seed: int):
    """A random keep-set of the uniform shape: every layer the same number of key/value groups and FFN neurons, the
    hidden width the family's config allows (BERT/GPT-2: heads × head_dim; LLaMA: a multiple of the query heads),
    and for BERT/RoBERTa as many of the pooler's outputs as the hidden width."""
    from .prune import KeepSet
    from .structure import family_of

    family = family_of(s.family)
    g = torch.Generator().manual_seed(seed)
    k = int(torch.randint(1, min(l.kv_heads for l in s.layers) + 1, (1,), generator=g))
    m = int(torch.randint(1, min(l.ffn for l in s.layers) + 1, (1,), generator=g))
    heads = k * s.layers[0].group_size
    if family.head_dim_from_hidden:
        hidden = heads * s.head_dim
    else:
        step = family.uniform_hidden_step(heads, 1)
        hidden = step * int(torch.randint(1, s.hidden // step + 1, (1,), generator=g))
    pick = lambda n, c: torch.randperm(n, generator=g)[:c]  # noqa: E731
    keep = KeepSet(pick(s.hidden, hidden), [pick(l.kv_heads, k) for l in s.layers], [pick(l.ffn, m) for l in s.layers])
    if s.family in ("bert", "roberta"):
        keep.head_dims = pick(s.head_hidden, hidden)
    return keep


def random_scales(s, seed: int):
    from .prune import UnitScales

    g = torch.Generator().manual_seed(seed)
    r = lambda *n: 0.5 + torch.rand(*n, generator=g)  # noqa: E731
    return UnitScales(r(s.hidden), [r(l.kv_heads) for l in s.layers], r(s.n_layers), [r(l.ffn) for l in s.layers], r(s.n_layers))


def transformers_logits(model_dir: str, task: str, shape: str, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The logits `transformers` computes for a model directory, loaded as the report says, and its parameter
    count (needs transformers)."""
    import transformers

    auto = "AutoModelForSequenceClassification" if task == "classification" else "AutoModelForCausalLM"
    model = getattr(transformers, auto).from_pretrained(model_dir, trust_remote_code=shape == "heterogeneous", dtype=torch.float32)
    with torch.no_grad():
        return model.eval()(input_ids=ids, attention_mask=mask).logits, sum(p.numel() for p in model.parameters())


def shape_fixtures(out_dir: str, seed: int = 0) -> list:
    """For every family and task and both output shapes: a pruned model directory as a run writes it (with
    model.onnx), inputs, and the logits of transformers loading it and of `vtrans.load_model`, for the TypeScript
    side to check onnxruntime-node against (test/unit/hf-shapes.test.ts)."""
    from .checkpoint import load_model
    from .export import export_onnx
    from .prune import prune_model
    from .shapes import save_output

    cases = []
    for n, (family, task) in enumerate(FAMILY_TASKS):
        model = build_tiny(family, task, seed=seed)
        s = model.shape
        for shape in SHAPES:
            keep = random_keep_sets(s, 1, seed + n)[0] if shape == "heterogeneous" else random_uniform_keep(s, seed + n)
            pruned = prune_model(model, keep, random_scales(s, seed + n))
            name = f"{family}-{task}-{shape}"
            model_dir = os.path.join(out_dir, name, "model")
            save_output(pruned, model_dir, shape)
            export_onnx(pruned, os.path.join(out_dir, name, "model.onnx"))
            g = torch.Generator().manual_seed(seed + n)
            ids = torch.randint(3, s.vocab, (3, 9), generator=g)
            mask = torch.ones_like(ids)
            mask[1, 6:] = 0
            ids[1, 6:] = int(s.config.get("pad_token_id") or 0)
            with torch.no_grad():
                ours = load_model(model_dir)(ids, mask)
            theirs, params = transformers_logits(model_dir, task, shape, ids, mask)
            cases.append(
                {
                    "name": name,
                    "task": task,
                    "shape": shape,
                    "dir": model_dir,
                    "params": params,
                    "onnx": os.path.join(out_dir, name, "model.onnx"),
                    "input_ids": ids.tolist(),
                    "attention_mask": mask.tolist(),
                    "dims": list(theirs.shape),
                    "transformers_logits": theirs.flatten().tolist(),
                    "vtrans_logits": ours.flatten().tolist(),
                }
            )
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(cases, f)
    return cases


if __name__ == "__main__":
    main()
