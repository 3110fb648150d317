"""Robustness figures from cells: P (clean), mPC, rPC, per group / corruption / severity, CIs, mCE.

mPC is the mean over the cells that were EVALUATED (never zero-filled: a peer's fault was to divide
by all 5 severities when only some ran); rPC = mPC / P, undefined (None, with a note) when P is 0.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from audit.corruptions import get, names

# AlexNet errors per benchmark corruption (ImageNet-C; Hendrycks & Dietterich 2019), protocol order.
ALEXNET_ERRORS = dict(zip(names("benchmark"), (
    0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360, 0.866816,
    0.826572, 0.819324, 0.564592, 0.853204, 0.646056, 0.717840, 0.606500)))
ALEXNET_CLEAN_ERROR = 0.4348


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def robustness(clean: float | None, cells: dict[tuple[str, int], float | None]) -> dict[str, Any]:
    """The schema's `robustness` object for one metric over the given (corruption, severity) cells."""
    values = {k: v for k, v in cells.items() if v is not None}
    mpc = _mean(list(values.values()))
    note = None
    if clean is None:
        note = "no clean cell was evaluated"
    elif clean == 0:
        note = "the clean metric is 0, so rPC = mPC / P is undefined"
    per_corruption, groups = {}, {}
    for name in dict.fromkeys(c for c, _ in cells):
        sev = {s: v for (c, s), v in sorted(values.items()) if c == name}
        mean = _mean(list(sev.values()))
        worst = min(sev, key=sev.get) if sev else None
        per_corruption[name] = {"group": get(name).group, "mean": mean, "rPC": _ratio(mean, clean),
                                "drop": None if _ratio(mean, clean) is None else 1 - _ratio(mean, clean),
                                "worst_severity": worst, "worst": sev.get(worst) if worst else None,
                                "per_severity": {str(s): v for s, v in sev.items()}}
        groups.setdefault(get(name).group, []).extend(sev.values())
    per_group = {}
    for group, vals in groups.items():
        g = _mean(vals)
        per_group[group] = {"mPC": g, "rPC": _ratio(g, clean), "drop": None if _ratio(g, clean) is None else 1 - _ratio(g, clean)}
    severities = sorted({s for _, s in values})
    return {"P": clean, "mPC": mpc, "rPC": _ratio(mpc, clean), "rPC_note": note, "cells": len(values),
            "per_group": per_group, "per_corruption": per_corruption,
            "per_severity": {str(s): _mean([v for (c, t), v in values.items() if t == s]) for s in severities},
            "ci": None}


def summarize(cells: list[dict], metric_names: list[str], subset: str = "benchmark") -> dict[str, Any]:
    """The results document's `summary` from its `cells` (schema dicts; 'clean' at severity 0).

    Example:
        >>> cells = [{"corruption": "clean", "severity": 0, "metrics": {"top1": .9}},
        ...          {"corruption": "fog", "severity": 1, "metrics": {"top1": .6}}]
        >>> summarize(cells, ["top1"])["metrics"]["top1"]["mPC"]
        0.6
    """
    clean = next((c["metrics"] for c in cells if c["corruption"] == "clean"), {})
    corrupted = [c for c in cells if c["corruption"] != "clean"]
    chosen = set(names(subset))
    in_subset = [c for c in corrupted if c["corruption"] in chosen]
    if not in_subset and corrupted:  # e.g. a hold-out-only run: summarise what ran, and say so
        subset, in_subset = "evaluated", [c for c in corrupted if get(c["corruption"]).subset == "benchmark"] or corrupted
    holdout = [c for c in corrupted if get(c["corruption"]).subset == "holdout"]
    # other suites (cbar: ImageNet-C-bar; plug-in subsets): each summarised alone, never in mPC
    suite_cells: dict[str, list[dict]] = {}
    for c in corrupted:
        suite = get(c["corruption"]).subset
        if suite not in ("benchmark", "holdout"):
            suite_cells.setdefault(suite, []).append(c)

    def block(group: list[dict]) -> dict[str, Any]:
        return {m: robustness(clean.get(m), {(c["corruption"], c["severity"]): c["metrics"].get(m) for c in group})
                for m in metric_names}

    extra: dict[str, float | None] = {}
    if "top1" in metric_names:
        extra.update(mce(clean.get("top1"), {(c["corruption"], c["severity"]): c["metrics"].get("top1") for c in corrupted}))
    return {"subset": subset, "metrics": block(in_subset), "holdout": block(holdout) if holdout and subset != "holdout" else None,
            "suites": {name: block(group) for name, group in sorted(suite_cells.items())}, "extra": extra}


def mce(clean_top1: float | None, top1: dict[tuple[str, int], float | None]) -> dict[str, float | None]:
    """ImageNet mCE and relative mCE against AlexNet, over benchmark corruptions with all 5 severities."""
    ces, rel = [], []
    for name, alex in ALEXNET_ERRORS.items():
        errs = [1 - top1[(name, s)] for s in range(1, 6) if top1.get((name, s)) is not None]
        if len(errs) != 5:
            continue
        ces.append(sum(errs) / (5 * alex))
        if clean_top1 is not None:
            rel.append(sum(e - (1 - clean_top1) for e in errs) / (5 * (alex - ALEXNET_CLEAN_ERROR)))
    return {"mCE": _mean(ces), "relative_mCE": _mean(rel)} if ces else {}


def bootstrap_ci(clean, cells: Mapping[tuple[str, int], Any], metric: str, n_images: int, samples: int = 1000,
                 seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Bootstrap intervals of P, mPC and rPC: the same resampled image positions for every cell.

    `clean` and the values of `cells` are metric objects over the same images (compute_on). The cells
    are read one at a time (a mapping that loads each value on access keeps one cell in memory): each
    cell's `samples` values are computed over the same draws, then mPC per draw.
    """

    def draws():
        rng = np.random.default_rng(seed)  # the same positions for every cell: replayed per cell
        for _ in range(samples):
            yield rng.integers(0, n_images, size=n_images)

    clean_values = [clean.compute_on(pos).get(metric) for pos in draws()]
    per_cell = []
    for name in cells:
        m = cells[name]
        per_cell.append([m.compute_on(pos).get(metric) for pos in draws()])
        del m
    ps, mpcs, rpcs = [], [], []
    for i, p in enumerate(clean_values):
        vals = [column[i] for column in per_cell]
        vals = [v for v in vals if v is not None]
        mpc = float(np.mean(vals)) if vals else None
        if p is not None:
            ps.append(p)
        if mpc is not None:
            mpcs.append(mpc)
            if p:
                rpcs.append(mpc / p)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100

    def interval(v: list[float]) -> list[float]:
        return [float(np.percentile(v, lo)), float(np.percentile(v, hi))] if v else []

    return {"level": level, "method": "bootstrap over images", "samples": samples,
            "P": interval(ps), "mPC": interval(mpcs), "rPC": interval(rpcs)}
