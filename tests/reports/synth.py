"""Synthesise schema-valid results documents (19 corruptions x 5 severities) with real PNG example
thumbnails, for the report tests. Values follow a simple, known law so tests can check the figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

BENCHMARK = {"noise": ["gaussian_noise", "shot_noise", "impulse_noise"],
             "blur": ["defocus_blur", "glass_blur", "motion_blur", "zoom_blur"],
             "weather": ["snow", "frost", "fog", "brightness"],
             "digital": ["contrast", "elastic_transform", "pixelate", "jpeg_compression"]}
HOLDOUT = ["speckle_noise", "gaussian_blur", "spatter", "saturate"]
HOSTILE = '<script>alert(1)</script>'
HOSTILE_ATTR = '"><img src=x onerror=alert(2)>'


def cell_value(p: float, index: int, severity: int, slope: float) -> float:
    """The synthetic metric of corruption number `index` at `severity`: falls linearly with severity."""
    return round(max(0.0, p * (1 - slope * severity * (0.5 + (index % 5) / 8))), 6)


def _robustness(p, cells, groups, ci):
    values = [c["metrics"]["bbox_AP"] for c in cells]
    mpc = sum(values) / len(values)
    per_corr, per_group = {}, {}
    for name in dict.fromkeys(c["corruption"] for c in cells):
        sev = {str(c["severity"]): c["metrics"]["bbox_AP"] for c in cells if c["corruption"] == name}
        mean = sum(sev.values()) / len(sev)
        worst = min(sev, key=sev.get)
        per_corr[name] = {"group": groups[name], "mean": mean, "rPC": mean / p, "drop": 1 - mean / p,
                          "worst_severity": int(worst), "worst": sev[worst], "per_severity": sev}
    for g in dict.fromkeys(groups[n] for n in per_corr):
        vals = [c["metrics"]["bbox_AP"] for c in cells if groups[c["corruption"]] == g]
        m = sum(vals) / len(vals)
        per_group[g] = {"mPC": m, "rPC": m / p, "drop": 1 - m / p}
    per_sev = {str(s): float(np.mean([c["metrics"]["bbox_AP"] for c in cells if c["severity"] == s])) for s in range(1, 6)}
    out = {"P": p, "mPC": mpc, "rPC": mpc / p, "cells": len(cells), "per_group": per_group,
           "per_corruption": per_corr, "per_severity": per_sev}
    if ci:
        out["ci"] = {"level": 0.95, "method": "bootstrap", "samples": 200, "P": [p - 0.02, p + 0.02],
                     "mPC": [mpc - 0.015, mpc + 0.014], "rPC": [mpc / p - 0.03, mpc / p + 0.03]}
    return out


def _thumbnail(path: Path, seed: int, size=(256, 192)) -> None:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size[1], 0:size[0]]
    img = np.stack([x * 255 / size[0], y * 255 / size[1], np.full_like(x, 120.0)], -1)
    img[40:120, 60:160] = rng.integers(0, 255, 3)
    img += rng.normal(0, 12, img.shape)  # photo-like noise makes the PNG realistic in size
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)


def _examples(folder: Path, images: int) -> list[dict]:
    entries = []
    for i in range(images):
        for corruption, severity in [("clean", 0)] + [(c, s) for c in ("gaussian_noise", "glass_blur", "fog") for s in (1, 3, 5)]:
            rel = f"examples/{i:05d}-{corruption}-s{severity}.png"
            _thumbnail(folder / rel, seed=i * 100 + severity)
            entries.append({"image_id": f"{HOSTILE}-{i}", "corruption": corruption, "severity": severity, "image": rel,
                            "width": 256, "height": 192,
                            "prediction": {"type": "boxes", "boxes": [[60, 40, 160, 120], [10, 10, 50, 60]],
                                           "labels": [HOSTILE, "person"], "scores": [0.91, None]},
                            "ground_truth": ({"type": "boxes", "boxes": [[55, 35, 150, 125]], "labels": ["person"],
                                              "scores": [1.0]} if i == 0 else None)})
    return entries


def make_results(folder: Path, *, p: float = 0.4, slope: float = 0.08, model: str = f"detr {HOSTILE_ATTR}",
                 precision: str = "fp32", engine: str = "onnxruntime", source_sha256: str | None = "ab" * 32,
                 verdict: str = "fail", examples: int = 3, status: str = "complete", ci: bool = True,
                 holdout_only: bool = False) -> Path:
    """Write a results.json (and example PNGs) under `folder`; return its path."""
    groups = {n: g for g, names in BENCHMARK.items() for n in names} | {n: "holdout" for n in HOLDOUT}
    names = HOLDOUT if holdout_only else [n for ns in BENCHMARK.values() for n in ns] + HOLDOUT
    cells = [{"corruption": "clean", "group": "clean", "severity": 0, "metrics": {"bbox_AP": p}, "num_images": 50, "seconds": 1.0}]
    for i, name in enumerate(names):
        for s in range(1, 6):
            cells.append({"corruption": name, "group": groups[name], "severity": s,
                          "metrics": {"bbox_AP": cell_value(p, i, s, slope)}, "num_images": 50, "seconds": 0.5})
    bench = [c for c in cells if c["group"] not in ("clean", "holdout")]
    hold = [c for c in cells if c["group"] == "holdout"]
    metadata = {"task": "detection", "class_names": [HOSTILE, "person"]}
    if source_sha256:
        metadata["provenance"] = {"source_sha256": source_sha256}
    reasons = {"fail": [f"rPC 50.1% < 60.0% ({HOSTILE})"], "pass": ["rPC 70.0% >= 60.0%"], "none": []}[verdict]
    doc = {
        "kind": "robustaudit.results", "schema_version": "1.0", "created": "2026-11-22T10:00:00Z", "duration_s": 321.5,
        "status": status,
        "model": {"name": model, "path": f"models/{HOSTILE}.onnx", "sha256": "cd" * 32, "format": "onnx", "metadata": metadata},
        "task": {"name": "coco", "type": "detection", "primary_metric": "bbox_AP",
                 "metrics": {"bbox_AP": {"label": "box AP", "higher_is_better": True}}, "class_names": [HOSTILE, "person"]},
        "engine": {"name": engine, "provider": "cpu", "active_providers": ["CPUExecutionProvider"], "precision": precision,
                   "batch_size": 8, "device": None},
        "dataset": {"path": f"data/coco {HOSTILE}", "format": "coco", "num_images": 50, "limit": 50, "subset_seed": 0,
                    "num_skipped": 1, "skipped": [{"id": "7", "reason": "no annotations"}]},
        "corruption": {"profile": "imagenet-c", "resolution": "original image resolution, before resize",
                       "source": "on-the-fly", "corruptions": names, "severities": [1, 2, 3, 4, 5], "seed": 0},
        "cells": cells,
        "summary": {"subset": "holdout" if holdout_only else "benchmark",
                    "metrics": {} if holdout_only else {"bbox_AP": _robustness(p, bench, groups, ci)},
                    "holdout": {"bbox_AP": _robustness(p, hold, groups, ci)}},
        "thresholds": {"fail_under_rpc": None if verdict == "none" else 0.6, "fail_under_mpc": None},
        "verdict": {"status": verdict, "reasons": reasons},
        "examples": _examples(folder, examples) if examples else [],
        "environment": {"robustaudit": "0.1.0", "python": "3.12.3", "platform": "Linux", "machine": f"x86_64 {HOSTILE}",
                        "cpu_count": 2, "packages": {"onnxruntime": "1.31.0", "numpy": "2.3"}},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    path.write_text(json.dumps(doc, indent=1))
    return path
