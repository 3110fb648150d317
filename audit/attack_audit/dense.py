"""Segmentation in the `adversarial` section: robust mIoU per budget from mIoU's per-image counts,
and examples with the predicted masks.

A cell keeps, per engine, mIoU's per-image intersection / union / ground-truth counts per class (the
metric's own state), so a resumed run recomputes every figure exactly. mIoU is a dataset-level figure,
so "robust" cannot be decided per image as for accuracy: the robust state at a budget is the one with
the lowest mIoU among (1) the robust state of the next smaller budget (a smaller ball lies inside a
larger), (2) that state with each image replaced by this budget's example where the latter labels
fewer of its pixels correctly, (3) this budget's examples alone. Each is a set of valid adversarial
examples at this budget, so the robust mIoU is an upper bound on the true worst case, and it never
rises with the budget. At eps 0 it is the clean mIoU, bit for bit `audit run`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audit.io.images import write_image
from audit.metrics.segmentation import MeanIoU

KEYS = ("inter", "union", "area_gt")


def figures(state: dict[str, np.ndarray]) -> dict[str, float | None]:
    """mIoU and pixel accuracy of per-image counts, computed by `audit run`'s metric (MeanIoU).

    Example:
        >>> s = {"inter": np.array([[1, 1, 0]]), "union": np.array([[1, 2, 1]]), "area_gt": np.array([[1, 1, 0]])}
        >>> {k: round(v, 4) for k, v in figures(s).items()}
        {'miou': 0.5, 'accuracy': 1.0}
    """
    n, k = state["inter"].shape
    metric = MeanIoU([None] * n, k)
    metric.load_state({**{key: state[key] for key in KEYS}, "seen": np.ones(n, bool)})
    out = metric.compute()
    return {"miou": out["mIoU"], "accuracy": out["aAcc"]}


def pixel_accuracy(state: dict[str, np.ndarray]) -> np.ndarray:
    """Per image, the fraction of its labelled pixels predicted right (nan for an image without any)."""
    gt = state["area_gt"].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(gt > 0, state["inter"].sum(1) / np.maximum(gt, 1), np.nan)


def robust_states(raw: dict[float, dict[str, np.ndarray]], clean: dict[str, np.ndarray]) -> dict[float, dict[str, np.ndarray]]:
    """Per budget, ascending, the robust state (see the module docstring); eps 0 is the clean state.

    Example:
        >>> clean = {"inter": np.array([[2, 0], [0, 2]]), "union": np.array([[2, 0], [0, 2]]), "area_gt": np.array([[2, 0], [0, 2]])}
        >>> hit = {"inter": np.array([[0, 0], [0, 2]]), "union": np.array([[2, 2], [0, 2]]), "area_gt": clean["area_gt"]}
        >>> t = robust_states({0.0: clean, 0.1: hit, 0.2: clean}, clean)
        >>> [round(figures(t[e])["miou"], 3) for e in (0.0, 0.1, 0.2)]
        [1.0, 0.25, 0.25]
    """
    out, prev = {}, clean
    for eps in sorted(raw):
        if eps > 0:
            new = raw[eps]
            worse = pixel_accuracy(new) < pixel_accuracy(prev)  # nan (no labelled pixel) compares False
            merged = {k: np.where(worse[:, None], new[k], prev[k]) for k in KEYS}
            prev = min((prev, merged, new), key=_miou_key)  # the first of equals: the smaller budget's
        out[eps] = prev
    return out


def _miou_key(state: dict[str, np.ndarray]) -> float:
    value = figures(state)["miou"]
    return float("inf") if value is None else value


def rows(loaded: dict, attacks: list[str], norm: str, eps: list[float], names: list[str],
         clean: list[dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    """The section's cells: robust mIoU and pixel accuracy per engine, and at the budget alone."""
    out = []
    for attack in attacks:
        tables = [robust_states({e: {k: loaded[(attack, norm, e)][1][f"{k}_{i}"] for k in KEYS} for e in eps}, clean[i])
                  for i in range(len(names))]
        for e in eps:
            record, state = loaded[(attack, norm, e)]
            per_engine = {}
            for i, name in enumerate(names):
                robust, alone = figures(tables[i][e]), figures({k: state[f"{k}_{i}"] for k in KEYS})
                per_engine[name] = {"accuracy": robust["accuracy"], "accuracy_at_budget": alone["accuracy"],
                                    "miou": robust["miou"], "miou_at_budget": alone["miou"], "success_rate": None}
            spent = state["queries"][state["queries"] > 0] if e > 0 else np.zeros(0, np.int64)
            out.append({"attack": attack, "norm": norm, "eps": e, "num_images": int(record["num_images"]),
                        "seconds": record.get("seconds"), "source": record.get("source"),
                        "accuracy": per_engine[names[0]]["accuracy"], "miou": per_engine[names[0]]["miou"],
                        "success_rate": None, "queries_mean": float(spent.mean()) if len(spent) else None,
                        "queries_median": float(np.median(spent)) if len(spent) else None, "engines": per_engine})
    return out


def example_positions(adv: dict[str, np.ndarray], clean: dict[str, np.ndarray], x01: np.ndarray, x_adv: np.ndarray,
                      count: int) -> np.ndarray:
    """Up to `count` perturbed images, the largest drop in pixel accuracy first (dataset order on ties).

    Example:
        >>> c = {"inter": np.array([[4], [4], [4]]), "area_gt": np.array([[4], [4], [4]])}
        >>> a = {"inter": np.array([[3], [1], [4]]), "area_gt": c["area_gt"]}
        >>> x = np.zeros((3, 1, 1, 1), np.float32)
        >>> example_positions(a, c, x, x + .1, 2).tolist()
        [1, 0]
    """
    changed = np.abs(x_adv - x01).reshape(len(x01), -1).max(axis=1) > 0
    drop = np.nan_to_num(pixel_accuracy(clean) - pixel_accuracy(adv), nan=-np.inf)
    order = [int(i) for i in np.argsort(-drop, kind="stable") if changed[i]]
    return np.asarray(order[:count], np.int64)


def write_masks(out: Path, stem: str, masks: dict[str, np.ndarray], num_classes: int, side: int,
                unscored: np.ndarray | None = None) -> dict[str, str]:
    """Colour label maps (PNG, under OUT/adversarial): one colour per class, black where ignored / no
    class; predictions on `unscored` pixels (the ground truth ignores them) are dimmed to a third."""
    files = {}
    for kind, labels in masks.items():
        image = colourise(labels, num_classes)
        if unscored is not None and kind != "ground_truth_mask":
            image[unscored] //= 3
        files[kind] = f"adversarial/{stem}-{kind}.png"
        write_image(out / files[kind], _enlarge(image, side))
    return files


def colourise(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """HxW labels -> HxWx3 uint8: class k a fixed colour (golden-ratio hues), anything else black.

    Example:
        >>> colourise(np.array([[0, 255]]), 3)[0].tolist()
        [[230, 57, 57], [0, 0, 0]]
    """
    k = np.arange(max(num_classes, 1))
    hue = (k * 0.618033988749895) % 1.0
    palette = np.stack([_channel(hue, shift) for shift in (0.0, 2 / 3, 1 / 3)], axis=1)
    labels = np.asarray(labels, np.int64)
    inside = (labels >= 0) & (labels < num_classes)
    image = np.zeros((*labels.shape, 3), np.uint8)
    image[inside] = palette[labels[inside]]
    return image


def _channel(hue: np.ndarray, shift: float) -> np.ndarray:
    """One RGB channel of a saturated colour wheel (0.75 saturation, 0.9 value)."""
    x = np.abs(((hue + shift) % 1.0) * 6 - 3) - 1
    return np.rint((0.9 * (1 - 0.75 + 0.75 * np.clip(x, 0, 1))) * 255).astype(np.uint8)


def _enlarge(image: np.ndarray, side: int) -> np.ndarray:
    scale = max(1, side // max(image.shape[:2]))
    return np.ascontiguousarray(image.repeat(scale, axis=0).repeat(scale, axis=1))
