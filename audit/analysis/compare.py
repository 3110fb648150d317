"""Paired comparison of two audits of the same data: is a difference real or noise?

Two runs with the same images, seed and corruption settings saw the same corrupted pixels, and each
finished cell keeps its per-image metric state (OUT/cells/*.npz). So differences are tested
pairwise: a paired bootstrap resamples the images once per draw and recomputes both runs' clean
metric, every cell, mPC and rPC on that resample; the interval of (other - base) says whether the
difference is significant at the stated level. Classification cells also get McNemar's exact test
on the per-image hits. `--fail-if-worse MARGIN` turns it into a CI gate: exit 2 when the other run is
significantly worse than the base by more than the margin.

Deltas stand on the cells both runs hold: P on the clean cell, mPC / rPC on the corrupted cells both
runs count in their own mPC (`shared` says how many, and which cells only one run holds). Version 1.1
of the comparison document added `shared`.

Example:
    >>> doc = compare_runs("runs/fp32", "runs/int8", samples=500)  # doctest: +SKIP
    >>> doc["summary"]["mPC"]["significant"]  # doctest: +SKIP
    False
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from audit.results import document as results
from audit.results.cellstore import CellStore
from audit.corruptions import names
from audit.errors import ResultsError

COMPARISON_KIND = "robustaudit.comparison"
# what must be equal for two runs to have seen the same pixels
_SAME = ("task", "data", "num_images", "images", "seed", "profile", "limit", "reference")


def compare_runs(base: str | Path, other: str | Path, samples: int = 1000, seed: int = 0, level: float = 0.95,
                 metric: str | None = None, data: str | None = None, annotations: str | None = None,
                 images: str | None = None) -> dict[str, Any]:
    """The paired comparison document of `other` against `base` (two `audit run` output folders).

    Detection runs need the ground truth again: it is read from the data path the runs record, or
    from `data` / `annotations` / `images` when the dataset has moved or used explicit paths.
    """
    runs = [_Run(Path(base)), _Run(Path(other))]
    problems = _incomparable(*runs)
    if problems:
        raise ResultsError(f"{runs[0].out} and {runs[1].out} did not audit the same pixels ({'; '.join(problems)}); "
                           "compare runs made with the same data, --limit, --seed and corruption settings")
    ttype = runs[0].doc["task"]["type"]
    metric = metric or runs[0].doc["task"]["primary_metric"]
    cells = [c for c in runs[0].cells if c in set(runs[1].cells)]
    if ("clean", 0) not in cells:
        raise ResultsError("the runs share no clean cell to compare; run both audits to the end (--resume)")
    # mPC averages the cells both runs count in their own mPC: a delta over two different corruption sets is not a change
    chosen = [c for c in cells if c != ("clean", 0) and all(c in r.mpc_cells(metric) for r in runs)]
    if not chosen:
        raise ResultsError("the runs share no corrupted cell that both count in mPC (other corruptions or severities, "
                           "or unfinished); audit both with the same --corruptions and --severities to the end")
    gt = _ground_truth(runs[0], data, annotations, images) if ttype == "detection" else None
    metrics = [{c: r.metric(c, ttype, gt) for c in cells} for r in runs]
    n = runs[0].manifest["num_images"]
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n, size=n) for _ in range(samples)]
    point = [_figures(m, metric, None, chosen) for m in metrics]
    boot = [[_figures(m, metric, pos, chosen) for m in metrics] for pos in draws]
    summary = {key: _delta(point[0][key], point[1][key], [b[1][key] - b[0][key] for b in boot
                                                         if b[0][key] is not None and b[1][key] is not None], level)
               for key in ("P", "mPC", "rPC")}
    per_cell = []
    for cell in cells:
        key = f"{cell[0]}-s{cell[1]}"
        entry = {"corruption": cell[0], "severity": cell[1],
                 **_delta(point[0][key], point[1][key], [b[1][key] - b[0][key] for b in boot
                                                         if b[0][key] is not None and b[1][key] is not None], level)}
        if ttype == "classification":
            entry["mcnemar"] = mcnemar(metrics[0][cell].hit1, metrics[1][cell].hit1)
        per_cell.append(entry)
    return {"kind": COMPARISON_KIND, "version": "1.1", "metric": metric, "level": level,
            "method": f"paired bootstrap over images ({samples} resamples, seed {seed}), the same resample for both runs",
            "base": runs[0].describe(), "other": runs[1].describe(), "num_images": n,
            "shared": _shared(runs, cells, chosen), "summary": summary, "cells": per_cell}


def report_pairs(results: list[str | Path], baseline: str | Path | None = None, samples: int = 500) -> dict[tuple[str, str], dict]:
    """The paired comparison of every (base, other) difference a report of `results` shows (their
    results.json paths, as given to `reports.write_report`), or why a pair is not comparable.

    Example:
        >>> paired = report_pairs(["fp32/results.json", "int8/results.json"])  # doctest: +SKIP
        >>> write_report(["fp32/results.json", "int8/results.json"], "report.html", paired=paired)  # doctest: +SKIP
    """
    from reports import load_runs, mark_baseline  # the reports package decides which differences it shows
    from reports.compare import deltas

    runs = load_runs([str(p) for p in results])
    mark_baseline(runs, baseline)
    out = {}
    for d in deltas(runs):
        try:
            out[(d.base.source, d.other.source)] = compare_runs(Path(d.base.source).parent, Path(d.other.source).parent,
                                                               samples=samples)
        except ResultsError as exc:
            out[(d.base.source, d.other.source)] = {"comparable": False, "reason": str(exc)}
    return out


def mcnemar(base_hits: np.ndarray, other_hits: np.ndarray) -> dict[str, Any]:
    """McNemar's exact test on paired per-image hits: b = only base right, c = only other right;
    two-sided p = min(1, 2 * P(X <= min(b, c))), X ~ Binomial(b + c, 1/2).

    Example:
        >>> mcnemar(np.array([1, 1, 1, 0], bool), np.array([0, 0, 1, 0], bool))["b"]
        2
    """
    base_hits, other_hits = np.asarray(base_hits, bool), np.asarray(other_hits, bool)
    b, c = int((base_hits & ~other_hits).sum()), int((~base_hits & other_hits).sum())
    k, total = min(b, c), b + c
    p = 1.0 if total == 0 else min(1.0, 2 * sum(math.comb(total, i) for i in range(k + 1)) / 2 ** total)
    return {"b": b, "c": c, "p_value": p}


def gate(doc: dict[str, Any], margin: float, figure: str = "mPC") -> dict[str, Any]:
    """`fail` when `other` is significantly worse than `base` on `figure` by more than `margin`
    (the whole interval of other - base lies below -margin)."""
    entry = doc["summary"][figure]
    hi = entry["ci"][1] if entry["ci"] else None
    failed = hi is not None and hi < -margin
    shown = "undefined" if entry["delta"] is None else f"{entry['delta']:+.4f}"
    reason = (f"{figure} changed by {shown} (CI {_fmt_ci(entry['ci'])}); "
              + ("significantly worse than the base by more than" if failed else "not significantly worse by more than")
              + f" {margin:.4f}")
    return {"status": "fail" if failed else "pass", "figure": figure, "margin": margin, "reason": reason}


def write(doc: dict[str, Any], path: str | Path) -> None:
    """Write a comparison document atomically."""
    results.atomic_write_text(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")


class _Run:
    """One audit's results document, manifest and cell states."""

    def __init__(self, out: Path):
        self.out = out
        self.doc = results.load(out / "results.json")
        try:
            self.manifest = json.loads((out / "run.json").read_bytes())
        except (OSError, ValueError) as exc:
            raise ResultsError(f"{out}/run.json is missing or damaged ({type(exc).__name__}); compare the output "
                               "folders of complete 'audit run's") from None
        if not isinstance(self.manifest, dict) or not isinstance(self.manifest.get("num_images"), int):
            raise ResultsError(f"{out}/run.json is not an audit manifest; compare the output folders of 'audit run'")
        self.store = CellStore(out)
        self.cells = [(c["corruption"], int(c["severity"])) for c in self.doc["cells"]]

    def metric(self, cell: tuple[str, int], ttype: str, gt):
        from audit.metrics import Accuracy, CocoAP, MeanIoU

        _, state = self.store.load(cell)
        n = self.manifest["num_images"]
        try:
            if ttype == "classification":
                m = Accuracy(np.zeros(n, np.int64), len(self.doc["task"].get("class_names") or []) or 1000)
            elif ttype == "segmentation":
                m = MeanIoU([None] * n, int(np.asarray(state["inter"]).shape[1]))
            else:
                m = CocoAP(gt[0], gt[1], with_masks=any(k.startswith("segm_") for k in self.doc["task"]["metrics"]))
            m.load_state(state)
        except (KeyError, ValueError, IndexError) as exc:
            raise ResultsError(f"the cell {cell[0]} severity {cell[1]} of {self.out} has no usable per-image state "
                               f"({type(exc).__name__}); run the audit again") from None
        return m

    def mpc_cells(self, metric: str) -> set[tuple[str, int]]:
        """The corrupted cells this run's own mPC averages (summary.metrics[metric].per_corruption); where the
        document lacks them, its benchmark cells, else every corrupted cell (the summary's rule)."""
        block = ((self.doc.get("summary") or {}).get("metrics") or {}).get(metric) or {}
        per = block.get("per_corruption")
        if isinstance(per, dict) and per:
            return {(name, int(s)) for name, e in per.items() for s in (e.get("per_severity") or {})}
        corrupted = [(c, s) for c, s in self.cells if c != "clean"]
        return set([cs for cs in corrupted if cs[0] in set(names("benchmark"))] or corrupted)

    def describe(self) -> dict[str, Any]:
        engine = self.doc.get("engine", {})
        return {"path": str(self.out), "model": self.doc["model"]["name"], "sha256": self.doc["model"]["sha256"],
                "precision": engine.get("precision"), "provider": engine.get("provider")}


def _incomparable(a: _Run, b: _Run) -> list[str]:
    out = [f"{k} differs ({a.manifest.get(k)!r:.40} vs {b.manifest.get(k)!r:.40})"
           for k in _SAME if a.manifest.get(k) != b.manifest.get(k)]
    if a.doc["task"]["type"] != b.doc["task"]["type"]:
        out.append("task types differ")
    return out


def _ground_truth(run: _Run, data, annotations, images):
    from audit.datasets import open_dataset

    dataset = open_dataset(run.doc["task"]["name"], data or run.manifest["data"], annotations=annotations, images=images,
                           skip_bad=True).subset(run.manifest.get("limit"), run.manifest["seed"])
    if len(dataset) != run.manifest["num_images"]:
        raise ResultsError(f"the dataset now holds {len(dataset)} images, the runs audited {run.manifest['num_images']}; "
                           "give --data / --annotations for the data the runs used")
    return dataset.coco_gt, [dataset.target(i) for i in range(len(dataset))]


def _figures(metrics: dict, metric: str, positions, chosen: list[tuple[str, int]]) -> dict[str, float | None]:
    """P, every cell, mPC (over the `chosen` cells) and rPC of one run on `positions`."""
    out: dict[str, float | None] = {}
    for (name, sev), m in metrics.items():
        out[f"{name}-s{sev}"] = m.compute_on(positions).get(metric)
    p = out["clean-s0"]
    vals = [out[f"{c}-s{s}"] for c, s in chosen if out[f"{c}-s{s}"] is not None]
    mpc = float(np.mean(vals)) if vals else None
    out.update(P=p, mPC=mpc, rPC=(mpc / p) if mpc is not None and p else None)
    return out


def _shared(runs: list[_Run], cells: list[tuple[str, int]], chosen: list[tuple[str, int]]) -> dict[str, Any]:
    """Which cells the comparison stands on, and those only one run holds (left out of every delta)."""
    only = [[f"{c}-s{s}" for c, s in r.cells if (c, s) not in set(cells)] for r in runs]
    n = len(chosen)
    return {"cells": len(cells), "mpc_cells": n, "only_base": only[0], "only_other": only[1],
            "note": f"on the {n} corrupted cell{'s' if n != 1 else ''} both runs hold"
                    + (f" (left out: {len(only[0])} only in base, {len(only[1])} only in other)" if only[0] or only[1] else "")}


def _delta(base: float | None, other: float | None, boot: list[float], level: float) -> dict[str, Any]:
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    ci = [float(np.percentile(boot, lo)), float(np.percentile(boot, hi))] if boot else []
    delta = None if base is None or other is None else other - base
    return {"base": base, "other": other, "delta": delta, "ci": ci,
            "significant": bool(ci) and (ci[0] > 0 or ci[1] < 0)}


def _fmt_ci(ci: list[float]) -> str:
    return f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "n/a"
