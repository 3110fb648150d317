"""The `adversarial` section of the results document, built from finished cells, and the rest of an
attack-only document (its clean cell, verdict, engine) so that it is complete and valid on its own.

Robust accuracy at a budget counts an image as robust only if it is correct clean and no adversarial
example was found for it at that budget or any smaller one (a smaller ball lies inside a larger), so
it never rises with the budget. `accuracy_at_budget` is the attack run at that budget alone.
Segmentation documents (`metric: miou`) hold robust mIoU and pixel accuracy instead (audit.attack_audit.dense).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from audit.results import document as results
from audit.attack_audit import dense
from audit.attacks.budget import eps_label
from audit.results.environment import environment
from audit.execution.document import Renderer
from audit.io.hashing import model_record
from audit.io.images import write_image
from audit.metrics import METRICS_INFO, PRIMARY_METRIC, metric_names
from audit.metrics.robustness import summarize
from audit.io.safety import write_error

THREAT_MODEL = ("perturbation added to the image on [0, 1] pixels at the network input geometry (after resize / crop, "
                "before normalisation), within the {norm} ball of radius eps, clipped to [0, 1]; fed to the engine "
                "in float, without re-quantising to uint8")
EXAMPLE_SIDE = 96  # small inputs (CIFAR's 32 px) are enlarged, nearest neighbour, so pixels stay visible


def example_positions(correct: np.ndarray, x01: np.ndarray, x_adv: np.ndarray, count: int) -> np.ndarray:
    """Up to `count` image positions to show: successful adversarial examples first, in dataset order.

    Example:
        >>> x = np.zeros((3, 1, 1, 1), np.float32); adv = x.copy(); adv[2] += .1
        >>> example_positions(np.array([True, True, False]), x, adv, 2).tolist()
        [2, 0]
    """
    changed = np.abs(x_adv - x01).reshape(len(x01), -1).max(axis=1) > 0
    order = list(np.flatnonzero(changed & ~correct)) + list(np.flatnonzero(~(changed & ~correct)))
    return np.asarray(order[:count], np.int64)


def engine_state(state: dict[str, np.ndarray], ttype: str, index: int | None = None) -> dict[str, np.ndarray]:
    """One engine's per-image state: a metric's (`Accuracy` / `MeanIoU`) or engine `index`'s in a cell.

    Example:
        >>> engine_state({"correct_0": np.array([True]), "queries": np.array([3])}, "classification", 0)
        {'correct': array([ True])}
    """
    keys = dense.KEYS if ttype == "segmentation" else ("correct",)
    if index is None:
        return {k: np.asarray(state[k]).copy() for k in keys} if ttype == "segmentation" else {"correct": state["hit1"].copy()}
    return {k: state[f"{k}_{index}"] for k in keys}


def figures(engine: dict[str, np.ndarray]) -> dict[str, float | None]:
    """Accuracy (segmentation: pixel accuracy and mIoU) of one engine's per-image state."""
    if "correct" in engine:
        return {"accuracy": float(np.asarray(engine["correct"]).mean())}
    return dense.figures(engine)


def pick_examples(adv: dict[str, np.ndarray], clean: dict[str, np.ndarray], x01: np.ndarray, x_adv: np.ndarray,
                  count: int) -> np.ndarray:
    """The example images of a cell (`example_positions`; segmentation: `dense.example_positions`)."""
    if "correct" in adv:
        return example_positions(adv["correct"], x01, x_adv, count)
    return dense.example_positions(adv, clean, x01, x_adv, count)


def robust_table(raw: dict[float, np.ndarray], clean: np.ndarray) -> dict[float, np.ndarray]:
    """Per budget, ascending: clean-correct and not broken at this or any smaller budget.

    Example:
        >>> t = robust_table({0.0: np.array([1, 1, 0], bool), 0.1: np.array([0, 1, 0], bool), 0.2: np.array([1, 1, 0], bool)},
        ...                  np.array([1, 1, 0], bool))
        >>> [t[e].tolist() for e in (0.0, 0.1, 0.2)]
        [[True, True, False], [False, True, False], [False, True, False]]
    """
    out, alive = {}, clean.copy()
    for eps in sorted(raw):
        alive = alive & raw[eps] if eps > 0 else alive
        out[eps] = alive.copy()
    return out


def section(loaded: dict, cells: list, *, attacks: list[str], norm: str, eps: list[float], judges: list,
            clean: list[np.ndarray], gradients: str, config, x01: np.ndarray, out: Path, dataset) -> dict[str, Any]:
    """The `adversarial` section from the finished cells (`loaded`: cell -> (record, state))."""
    from audit.attack_audit import sources

    names = [j.name for j in judges]
    segmentation = "correct" not in clean[0]
    rows = (dense.rows if segmentation else accuracy_rows)(loaded, attacks, norm, eps, names, clean)
    verdict_attack, top = attacks[0], max(eps)
    verdict_row = next(r for r in rows if r["attack"] == verdict_attack and r["eps"] == top)
    write = write_dense_examples if segmentation else write_examples
    examples = write(loaded[(verdict_attack, norm, top)][1], x01, judges[0], dataset, out, verdict_attack, top)
    clean_figures = [figures(c) for c in clean]
    metric = {"metric": "miou", "clean_miou": {n: f["miou"] for n, f in zip(names, clean_figures)}} if segmentation \
        else {"metric": "accuracy"}
    return {"threat_model": {"description": THREAT_MODEL.format(norm="L-inf" if norm == "linf" else "L2"),
                             "space": "[0, 1] pixels at the network input geometry, before normalisation",
                             "input_size": list(x01.shape[2:]), "clip": [0.0, 1.0], "requantised": False, "norm": norm},
            "gradients": sources.describe(gradients, config.model), "attacks": attacks, "verdict_attack": verdict_attack,
            "norm": norm, "eps": eps,
            "settings": {"steps": config.steps, "queries": config.queries, "restarts": config.restarts,
                         "seed": config.seed, "batch_size": config.batch_size, "limit": config.limit},
            "engines": [j.describe() for j in judges], **metric,
            "clean": {name: f["accuracy"] for name, f in zip(names, clean_figures)},
            "cells": rows,
            "verdict": {"attack": verdict_attack, "norm": norm, "eps": top, "engine": names[0],
                        "robust_accuracy": verdict_row["accuracy"], "threshold": config.fail_under_robust_acc,
                        **({"metric": "miou", "robust_miou": verdict_row["miou"]} if segmentation else {"metric": "accuracy"})},
            "examples": examples}


def accuracy_rows(loaded: dict, attacks: list[str], norm: str, eps: list[float], names: list[str],
                  clean: list[dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    """The section's cells for classification: robust accuracy and success rate per engine, queries."""
    rows = []
    for attack in attacks:
        tables = [robust_table({e: loaded[(attack, norm, e)][1][f"correct_{i}"] for e in eps}, clean[i]["correct"])
                  for i in range(len(names))]
        for e in eps:
            record, state = loaded[(attack, norm, e)]
            per_engine = {}
            for i, name in enumerate(names):
                robust, base = tables[i][e], int(clean[i]["correct"].sum())
                per_engine[name] = {"accuracy": float(robust.mean()), "accuracy_at_budget": float(state[f"correct_{i}"].mean()),
                                    "success_rate": None if base == 0 else float(1 - robust.sum() / base)}
            spent = state["queries"][clean[0]["correct"]] if e > 0 else np.zeros(0, np.int64)
            rows.append({"attack": attack, "norm": norm, "eps": e, "num_images": int(record["num_images"]),
                         "seconds": record.get("seconds"), "source": record.get("source"),
                         "accuracy": per_engine[names[0]]["accuracy"], "success_rate": per_engine[names[0]]["success_rate"],
                         "queries_mean": float(spent.mean()) if len(spent) else None,
                         "queries_median": float(np.median(spent)) if len(spent) else None, "engines": per_engine})
    return rows


def write_examples(state: dict, x01: np.ndarray, judge, dataset, out: Path, attack: str, eps: float) -> list[dict[str, Any]]:
    """PNG triples (clean, adversarial, perturbation amplified to be visible) under OUT/adversarial."""
    picks = state["example_positions"].astype(np.int64)
    if not len(picks):
        return []
    adv = state["example_x"]
    clean = x01[picks]
    scores_clean = judge.scores(clean, len(picks))
    scores_adv = judge.scores(adv, len(picks))
    names = dataset.class_names
    entries = []
    for k, pos in enumerate(picks.tolist()):
        stem = f"{k:02d}-{attack}-eps{eps:.6g}"
        entries.append({"image_id": dataset.image_id(pos), "label": names[dataset.target(pos)],
                        **_write_triple(out, stem, clean[k], adv[k]),
                        "clean_prediction": _top(scores_clean[k], names), "adversarial_prediction": _top(scores_adv[k], names),
                        "attack": attack, "eps": eps})
    return entries


def write_dense_examples(state: dict, x01: np.ndarray, judge, dataset, out: Path, attack: str, eps: float) -> list[dict[str, Any]]:
    """Segmentation: the PNG triples of `write_examples`, plus the ground truth and the masks the engine
    predicts on the clean and the adversarial image (decoded as `audit run` decodes them)."""
    picks = state["example_positions"].astype(np.int64)
    if not len(picks):
        return []
    adv, clean = state["example_x"], x01[picks]
    masks_clean = judge.scores(clean, len(picks), picks)
    masks_adv = judge.scores(adv, len(picks), picks)
    names, k = dataset.class_names, dataset.num_classes
    entries = []
    for j, pos in enumerate(picks.tolist()):
        stem = f"{j:02d}-{attack}-eps{eps:.6g}"
        files = _write_triple(out, stem, clean[j], adv[j])
        truth, ignore = np.asarray(dataset.target(pos)), getattr(dataset, "ignore_index", 255)
        files.update(dense.write_masks(out, stem, {"ground_truth_mask": truth, "clean_mask": masks_clean[j],
                                                   "adversarial_mask": masks_adv[j]}, k, EXAMPLE_SIDE, truth == ignore))
        accuracy = [_pixel_accuracy(m, truth, ignore) for m in (masks_clean[j], masks_adv[j])]
        present = [names[c] for c in np.unique(truth) if 0 <= c < len(names)]
        entries.append({"image_id": dataset.image_id(pos), "label": ", ".join(present[:6]) or None, **files,
                        "clean_prediction": _accuracy_text(accuracy[0]), "adversarial_prediction": _accuracy_text(accuracy[1]),
                        "clean_pixel_accuracy": accuracy[0], "adversarial_pixel_accuracy": accuracy[1],
                        "attack": attack, "eps": eps})
    return entries


def _write_triple(out: Path, stem: str, clean: np.ndarray, adv: np.ndarray) -> dict[str, Any]:
    """The clean, adversarial and amplified-perturbation PNGs of one example (CHW [0, 1]); their paths
    relative to OUT, the amplification and the perturbation's L-inf and L2 norms."""
    delta = adv - clean
    peak = float(np.abs(delta).max())
    amplification = 0.5 / peak if peak > 0 else 1.0
    entry: dict[str, Any] = {}
    for kind, image in (("clean", clean), ("adversarial", adv), ("perturbation", 0.5 + delta * amplification)):
        entry[kind] = f"adversarial/{stem}-{kind}.png"
        write_image(out / entry[kind], _to_uint8(image))
    entry.update({"amplification": round(amplification, 3), "linf": peak, "l2": float(np.sqrt((delta ** 2).sum()))})
    return entry


def _pixel_accuracy(pred: np.ndarray, truth: np.ndarray, ignore_index: int) -> float | None:
    valid = truth != ignore_index
    return float((pred[valid] == truth[valid]).mean()) if valid.any() else None


def _accuracy_text(value: float | None) -> str | None:
    return None if value is None else f"pixel accuracy {value * 100:.1f}%"


def _to_uint8(chw: np.ndarray) -> np.ndarray:
    image = np.clip(np.rint(np.transpose(chw, (1, 2, 0)) * 255), 0, 255).astype(np.uint8)
    scale = max(1, EXAMPLE_SIDE // max(image.shape[:2]))
    return np.ascontiguousarray(image.repeat(scale, axis=0).repeat(scale, axis=1))


def _top(scores: np.ndarray, names: list[str]) -> str | None:
    scores = np.asarray(scores, np.float64)
    if not np.isfinite(scores).any():
        return None
    k = int(np.argsort(-scores, kind="stable")[0])
    return names[k] if k < len(names) else str(k)


def verdict(adv: dict[str, Any]) -> dict[str, Any]:
    """Pass / fail of --fail-under-robust-acc on the verdict attack's largest budget (main engine); for
    segmentation the gate is on the robust mIoU."""
    v = adv["verdict"]
    miou = v.get("metric") == "miou"
    limit, value = v["threshold"], v["robust_miou"] if miou else v["robust_accuracy"]
    if limit is None:
        return {"status": "none", "reasons": []}
    # the figure first, then where it was measured: the budget's own number in brackets, never beside the figure
    where = (f"robust {'mIoU' if miou else 'accuracy'} {value:.4f} under {v['attack']} at {v['norm']} eps "
             f"{eps_label(v['eps'], v['norm'])}")
    if value < limit:
        return {"status": "fail", "reasons": [f"{where} is under the required {limit:.4f}"]}
    return {"status": "pass", "reasons": [f"{where} meets {limit:.4f}"]}


def results_document(config, dataset, main, clean_metric, adv: dict[str, Any], ttype: str, started: float) -> dict[str, Any]:
    """A complete results document: the clean cell, no corruption cells, and the `adversarial` section."""
    spec, engine = main.adapter.spec, main.adapter.engine
    keys = metric_names(ttype)
    figures = clean_metric.compute()
    cells = [{"corruption": "clean", "group": "clean", "severity": 0, "metrics": {k: figures.get(k) for k in keys},
              "num_images": len(dataset), "seconds": None}]
    return {
        "kind": results.KIND, "schema_version": results.SCHEMA_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 2), "status": "complete",
        "model": {"name": Path(config.model).name, "path": str(config.model), **model_record(config.model), "format": "onnx"
                  if Path(config.model).suffix.lower() == ".onnx" else "tensorrt",
                  "spec_source": {"from": spec.provenance.get("spec_source", "unknown"),
                                  "defaulted": list(spec.provenance.get("defaulted", []))},
                  "metadata": {**asdict(spec), "input_size": list(spec.input_size) if spec.input_size else None,
                               "mean": list(spec.mean), "std": list(spec.std)},
                  "label_mapping": main.label_mapping},
        "task": {"name": config.task, "type": ttype, "primary_metric": PRIMARY_METRIC[ttype],
                 "metrics": {k: METRICS_INFO[k] for k in keys}, "class_names": dataset.class_names},
        "engine": {"name": engine.info.name, "provider": engine.info.provider, "active_providers": engine.info.active_providers,
                   "precision": engine.info.precision, "batch_size": config.batch_size, "device": engine.info.device},
        "dataset": {**dataset.describe(), "limit": config.limit, "subset_seed": config.seed if config.limit else None},
        "corruption": {"profile": "none", "source": "none: adversarial audit only", "corruptions": [], "severities": [],
                       "seed": config.seed},
        "cells": cells, "summary": summarize(cells, keys),
        "thresholds": {"fail_under_robust_acc": config.fail_under_robust_acc},
        "verdict": verdict(adv), "examples": [], "environment": environment(), "files": {}, "adversarial": adv,
    }


def write(doc: dict[str, Any], out: Path, renderer: Renderer | None) -> dict[str, Any]:
    """Write OUT/results.json (validated) and, given a `renderer` (reports.write_report), OUT/report.html."""
    if renderer:
        doc["files"]["report"] = "report.html"
    results.write(doc, out / "results.json")
    if renderer:
        try:
            renderer([out / "results.json"], out / "report.html")
        except OSError as exc:
            raise write_error(out / "report.html", exc, "--out") from None
    return doc
