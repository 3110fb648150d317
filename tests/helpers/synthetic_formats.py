"""Synthetic shapes datasets in the YOLO, Pascal VOC and Cityscapes layouts (tests, demos).

Same scenes as `audit.datasets.synthetic` (seeded `draw_scene`), written the way those tools write them:
- YOLO: data.yaml (path, train, val, names), images/{train,val}/*.png, labels/{train,val}/*.txt with
  normalised `class cx cy w h` lines, or polygons with `polygons=True`;
- VOC: VOCdevkit/VOC2007 (or another year) with Annotations/*.xml (1-based inclusive boxes),
  ImageSets/Main/{train,trainval,val,test}.txt, JPEGImages/*.jpg;
- Cityscapes: leftImg8bit/{train,val}/<city>/*_leftImg8bit.png, gtFine/.../*_gtFine_labelIds.png, the
  shapes drawn with the label ids of road (7), car (26), person (24) and building (11) on label id 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from audit.datasets.synthetic import SHAPES, _polygons, draw_scene

VOC_SHAPE_CLASSES = ("bottle", "car", "dog", "person")  # VOC class names standing in for the four shapes
CITYSCAPES_SHAPE_IDS = (7, 26, 24, 11)  # road, car, person, building labelIds


def write_yolo(root: str | Path, n_train: int = 8, n_val: int = 6, size: tuple[int, int] = (64, 96), seed: int = 0,
               polygons: bool = False) -> Path:
    """A YOLO dataset under root; returns root/data.yaml. Every third val image has no label file."""
    root, rng = Path(root), np.random.default_rng(seed)
    h, w = size
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, instances = draw_scene(rng, h, w, int(rng.integers(1, 4)))
            Image.fromarray(img).save(root / "images" / split / f"{i:04d}.png")
            if split == "val" and i % 3 == 2:
                continue  # no label file: an image with no objects (drawn shapes are then false positives)
            lines = []
            for inst in instances:
                if polygons:
                    poly = max(_polygons(inst.mask), key=len)
                    coords = " ".join(f"{v / (w if k % 2 == 0 else h):.6f}" for k, v in enumerate(poly))
                    lines.append(f"{inst.label} {coords}")
                else:
                    x0, y0, x1, y1 = inst.box
                    lines.append(f"{inst.label} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}")
            (root / "labels" / split / f"{i:04d}.txt").write_text("\n".join(lines) + "\n")
    names = "".join(f"  {k}: {n}\n" for k, n in enumerate(SHAPES))
    (root / "data.yaml").write_text(f"path: .\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return root / "data.yaml"


def _voc_xml(stem: str, size: tuple[int, int], objects: list[tuple[str, tuple, bool]]) -> str:
    body = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{int(d)}</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for name, b, d in objects)
    return (f"<annotation><folder>VOC</folder><filename>{stem}.jpg</filename><size><width>{size[1]}</width>"
            f"<height>{size[0]}</height><depth>3</depth></size><segmented>0</segmented>{body}</annotation>")


def write_voc(root: str | Path, n_train: int = 8, n_val: int = 6, size: tuple[int, int] = (64, 96), seed: int = 0,
              year: str = "2007") -> Path:
    """A VOC dataset under root/VOCdevkit/VOC<year>; returns root. The last object of every 4th image is difficult."""
    base, rng = Path(root) / "VOCdevkit" / f"VOC{year}", np.random.default_rng(seed)
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (base / d).mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[str]] = {"train": [], "val": []}
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            stem = f"{2008 if split == 'val' else 2007}_{i:06d}"
            img, instances = draw_scene(rng, size[0], size[1], int(rng.integers(1, 4)))
            Image.fromarray(img).save(base / "JPEGImages" / f"{stem}.jpg", quality=95)
            objects = [(VOC_SHAPE_CLASSES[inst.label], (int(inst.box[0]) + 1, int(inst.box[1]) + 1, int(inst.box[2]), int(inst.box[3])),
                        i % 4 == 3 and k == len(instances) - 1) for k, inst in enumerate(instances)]
            (base / "Annotations" / f"{stem}.xml").write_text(_voc_xml(stem, size, objects))
            splits[split].append(stem)
    for name, ids in (("train", splits["train"]), ("trainval", splits["train"]), ("val", splits["val"]), ("test", splits["val"])):
        (base / "ImageSets" / "Main" / f"{name}.txt").write_text("\n".join(ids) + "\n")
    return Path(root)


def write_cityscapes(root: str | Path, n_train: int = 4, n_val: int = 4, size: tuple[int, int] = (64, 128),
                     seed: int = 0) -> Path:
    """A Cityscapes-layout dataset under root (cities 'aachen' and 'bonn'); returns root."""
    root, rng = Path(root), np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            city = ("aachen", "bonn")[i % 2]
            stem = f"{city}_{i:06d}_000019"
            img, instances = draw_scene(rng, size[0], size[1], int(rng.integers(1, 4)))
            ids = np.zeros(size, np.uint8)
            for inst in instances:
                ids[inst.mask] = CITYSCAPES_SHAPE_IDS[inst.label]
            for folder, suffix, arr in (("leftImg8bit", "leftImg8bit", img), ("gtFine", "gtFine_labelIds", ids)):
                (root / folder / split / city).mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(root / folder / split / city / f"{stem}_{suffix}.png")
    return root
