"""Synthetic datasets in the real on-disk formats, for the demo, the study's CPU grid and the tests.

Images show coloured, textured shapes (circle, square, triangle, cross) on a textured background:
simple enough for tiny models to learn in a minute on a CPU, rich enough that corruptions (noise,
blur, fog, contrast...) measurably hurt them. Everything is drawn from a seeded NumPy Generator, so
the same seed writes the same files.

Formats written:
- classification: CIFAR-10 python batches (data_batch_1.., test_batch, batches.meta) or an
  ImageNet-style folder tree (split/class/image.png);
- detection / instance segmentation: COCO (annotations/instances_{train,val}2017.json with boxes,
  polygons, areas; {train,val}2017/ images), with non-contiguous category ids as in COCO;
- semantic segmentation: the ADEChallengeData2016 layout (images/{training,validation}/*.jpg,
  annotations/{training,validation}/*.png, label 0 = "other").
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

SHAPES = ("circle", "square", "triangle", "cross")
# Each class has a base colour (jittered per object) as well as a shape, so tiny models learn fast.
BASE_COLOURS = np.array([[220, 60, 50], [50, 170, 70], [60, 90, 220], [230, 200, 40]], np.float32)
# COCO-style non-contiguous category ids, so that label -> category mapping is exercised.
CATEGORY_IDS = (1, 3, 7, 12)


@dataclass
class Instance:
    """One drawn object: class index into SHAPES, its mask and its xyxy box."""

    label: int
    mask: np.ndarray  # bool HxW
    box: tuple[float, float, float, float]


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth two-colour gradient with mild texture noise (float32 HxWx3 in 0..255)."""
    c0, c1 = rng.uniform(40, 215, size=(2, 3))
    t = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    if rng.random() < 0.5:
        t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = c0 * (1 - t) + c1 * t + np.zeros((h, w, 3), np.float32)
    return img + rng.normal(0, 6, size=(h, w, 1)).astype(np.float32)


def _shape_mask(label: int, h: int, w: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    centre = (int(round(cx)), int(round(cy)))
    if SHAPES[label] == "circle":
        cv2.circle(mask, centre, int(round(r)), 1, -1)
    elif SHAPES[label] == "square":
        box = cv2.boxPoints(((cx, cy), (1.6 * r, 1.6 * r), angle)).astype(np.int32)
        cv2.fillPoly(mask, [box], 1)
    elif SHAPES[label] == "triangle":
        pts = [(cx + r * np.cos(np.radians(angle + k * 120)), cy + r * np.sin(np.radians(angle + k * 120))) for k in range(3)]
        cv2.fillPoly(mask, [np.array(pts, np.int32)], 1)
    else:  # cross: two thick bars
        for a in (angle, angle + 90):
            bar = cv2.boxPoints(((cx, cy), (2 * r, 0.6 * r), a)).astype(np.int32)
            cv2.fillPoly(mask, [bar], 1)
    return mask.astype(bool)


def draw_scene(
    rng: np.random.Generator, h: int, w: int, n_objects: int, labels: list[int] | None = None
) -> tuple[np.ndarray, list[Instance]]:
    """Draw `n_objects` textured shapes on a background; returns (uint8 HxWx3, instances).

    Example:
        >>> img, inst = draw_scene(np.random.default_rng(0), 64, 64, 2)
        >>> img.shape, len(inst)
        ((64, 64, 3), 2)
    """
    img = _background(rng, h, w)
    occupied = np.zeros((h, w), bool)
    instances: list[Instance] = []
    for k in range(n_objects):
        label = int(labels[k]) if labels is not None else int(rng.integers(len(SHAPES)))
        r = rng.uniform(0.25, 0.4) * min(h, w) if n_objects == 1 else rng.uniform(0.12, 0.22) * min(h, w)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        mask = _shape_mask(label, h, w, cx, cy, r, rng.uniform(0, 90)) & ~occupied
        if mask.sum() < 12:
            continue
        colour = np.clip(BASE_COLOURS[label] + rng.uniform(-45, 45, size=3), 0, 255).astype(np.float32)
        stripes = 25 * np.sin(np.arange(w, dtype=np.float32) / rng.uniform(1.5, 4.0))[None, :, None]
        img = np.where(mask[..., None], colour + stripes, img)
        occupied |= mask
        ys, xs = np.nonzero(mask)
        instances.append(Instance(label, mask, (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))))
    return np.clip(img, 0, 255).astype(np.uint8), instances


def write_cifar10(root: str | Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Write a shapes classification set as CIFAR-10 python batches under root/cifar-10-batches-py."""
    out = Path(root) / "cifar-10-batches-py"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def batch(n: int, name: str) -> dict:
        labels = [int(i % len(SHAPES)) for i in range(n)]
        data = np.stack([draw_scene(rng, 32, 32, 1, [lab])[0] for lab in labels])
        return {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": data.transpose(0, 3, 1, 2).reshape(n, -1),
            b"filenames": [f"{name}_{i:05d}.png".encode() for i in range(n)],
        }

    half = (n_train + 1) // 2
    for i, n in enumerate((half, n_train - half), start=1):
        with open(out / f"data_batch_{i}", "wb") as fh:
            pickle.dump(batch(n, f"data_batch_{i}"), fh)
    with open(out / "test_batch", "wb") as fh:
        pickle.dump(batch(n_test, "test_batch"), fh)
    with open(out / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [s.encode() for s in SHAPES], b"num_cases_per_batch": half}, fh)
    return out


def write_image_folder(root: str | Path, n_per_class: int = 20, size: int = 64, seed: int = 0) -> Path:
    """Write a shapes classification set as an ImageNet-style folder tree root/<class>/<n>.png."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for label, name in enumerate(SHAPES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            Image.fromarray(draw_scene(rng, size, size, 1, [label])[0]).save(root / name / f"{i:04d}.png")
    return root


def _polygons(mask: np.ndarray) -> list[list[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def write_coco(
    root: str | Path, n_train: int = 120, n_val: int = 40, size: tuple[int, int] = (96, 128), seed: int = 0
) -> Path:
    """Write a shapes detection / instance segmentation set in the COCO layout under `root`."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    categories = [{"id": cid, "name": name, "supercategory": "shape"} for cid, name in zip(CATEGORY_IDS, SHAPES)]
    for split, n in (("train2017", n_train), ("val2017", n_val)):
        (root / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(n):
            img, instances = draw_scene(rng, size[0], size[1], int(rng.integers(1, 4)))
            image_id = 1000 + i  # ids need not be 0-based or contiguous
            file_name = f"{image_id:012d}.png"
            Image.fromarray(img).save(root / split / file_name)
            images.append({"id": image_id, "file_name": file_name, "height": size[0], "width": size[1]})
            for inst in instances:
                x0, y0, x1, y1 = inst.box
                annotations.append({
                    "id": len(annotations) + 1, "image_id": image_id, "category_id": CATEGORY_IDS[inst.label],
                    "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float(inst.mask.sum()), "iscrowd": 0,
                    "segmentation": _polygons(inst.mask),
                })
        doc = {"images": images, "annotations": annotations, "categories": categories,
               "info": {"description": "robustaudit synthetic shapes"}, "licenses": []}
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc))
    return root


def write_ade20k(
    root: str | Path, n_train: int = 80, n_val: int = 30, size: tuple[int, int] = (96, 128), seed: int = 0
) -> Path:
    """Write a shapes semantic segmentation set in the ADEChallengeData2016 layout under `root`.

    Label 0 is "other" (background, ignored with reduce_zero_label); shape k has label k + 1.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("training", n_train), ("validation", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, instances = draw_scene(rng, size[0], size[1], int(rng.integers(1, 4)))
            labels = np.zeros(size, np.uint8)
            for inst in instances:
                labels[inst.mask] = inst.label + 1
            stem = f"ADE_{'train' if split == 'training' else 'val'}_{i:08d}"
            Image.fromarray(img).save(root / "images" / split / f"{stem}.jpg", quality=95)
            Image.fromarray(labels).save(root / "annotations" / split / f"{stem}.png")
    (root / "objectInfo150.csv").write_text(
        "Idx,Ratio,Train,Val,Name\n" + "".join(f"{k + 1},0,0,0,{name}\n" for k, name in enumerate(SHAPES))
    )
    return root
