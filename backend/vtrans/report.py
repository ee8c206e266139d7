"""report.json: the run's figures for the views and report.html (types in src/core/report.ts)."""

from __future__ import annotations

import os
import platform

import torch

from .budget import unit_summary
from .runs import now


def environment(device: torch.device, threads: int) -> dict:
    env = {"device": str(device), "torch": torch.__version__, "threads": threads, "python": platform.python_version()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def layer_reports(shape, keep, scores, probes: dict | None) -> list[dict]:
    """Per layer: query heads with their group's log α and kept state, FFN neurons and sublayers kept."""
    from .budget import effective_scores

    heads_alpha = list(torch.split(scores["heads"].float().cpu(), [l.kv_heads for l in shape.layers]))
    eff = effective_scores(shape, scores)
    out = []
    for i, l in enumerate(shape.layers):
        kept_groups = set(keep.heads[i].tolist())
        probe_layer = (probes or {}).get("layers", [])
        heads = []
        for h in range(l.heads):
            group = h // l.group_size
            entry = {"index": h, "kept": group in kept_groups, "logAlpha": float(heads_alpha[i][group])}
            if i < len(probe_layer) and h < len(probe_layer[i]):
                entry["probes"] = probe_layer[i][h]
            heads.append(entry)
        out.append(
            {
                "index": i,
                "heads": heads,
                "groupSize": l.group_size,
                "ffn": {"kept": len(keep.ffn[i]), "total": l.ffn},
                "attentionKept": len(keep.heads[i]) > 0,
                "ffnKept": len(keep.ffn[i]) > 0,
                "attentionScore": float(eff["heads"][i].max()) if l.kv_heads else None,
            }
        )
    return out


def build_report(
    c, sel, teacher: dict, student: dict, sweep: list[dict], probes: dict | None, wall: float, test_metrics: dict | None
) -> dict:
    s = c.s
    shape = c.shape
    first = shape.layers[0]
    teacher_point = c.point("teacher", 1.0, shape, teacher["metric"])
    finetuned = c.point("finetuned", s.keep, sel.shape, student["metric"], unit_summary(shape, sel.keep))
    points = sorted(sweep + [teacher_point, finetuned], key=lambda p: (p["params"], p["source"]))
    report = {
        "version": 1,
        "runId": os.path.basename(c.run.path),
        "createdAt": now(),
        "status": "done",
        "model": {
            "dir": os.path.abspath(s.model_dir),
            "family": shape.family,
            "task": shape.task,
            "layers": shape.n_layers,
            "heads": first.heads,
            "hidden": shape.hidden,
            "ffn": first.ffn,
            "vocab": shape.vocab,
        },
        "method": s.method,
        "budget": {"kind": s.budget, "keep": s.keep, "achieved": sel.fraction},
        "metricName": "perplexity" if shape.task == "lm" else "accuracy",
        "teacher": teacher,
        "student": student,
        "units": unit_summary(shape, sel.keep),
        "layers": layer_reports(shape, sel.keep, c.gates.scores(), probes),
        "hiddenKept": {"kept": len(sel.keep.hidden), "total": shape.hidden},
        "threshold": c.gates.settings.threshold["heads"],
        "tradeoff": points,
        "wallSeconds": wall,
        "environment": environment(c.device, c.threads),
    }
    if probes is not None:
        report["probes"] = {"examples": probes["examples"], "keywords": [], "keywordIds": probes["keywordIds"], "seqLen": probes["seqLen"]}
    if test_metrics is not None:
        report["test"] = test_metrics
    return report
