"""Photo-like synthetic data and realistic-cost models for benchmarks/audit_scale.py, cached on disk.

Data, in the real formats robustaudit reads, JPEG-encoded at quality 90 (about what COCO and
ImageNet photos carry), so that decoding and the corruptions cost what they cost on photos:
- detection: a COCO layout (annotations/instances_val2017.json, val2017/*.jpg) of 480x640 images;
- classification: an ImageNet-style folder tree (class/image.jpg) of 224-ish images (each side
  drawn from 224..320, so the centre-crop resize does real work).
Each image is a random crop of one of scikit-image's bundled photographs (no download; resized,
flipped, colour-jittered) with the textured shapes of `audit.datasets.synthetic.draw_scene` pasted on top;
the shapes are the objects (detection) or the class (classification), as in the other benchmarks.

Models (random weights; timing does not depend on them):
- detector: the Faster R-CNN MobileNet-v3 FPN of benchmarks/audit_pipeline.py (score threshold 0,
  up to 50 detections per image, so output decoding and the COCO metric do real work);
- classifier: timm `resnet18`, 4 classes, exported by `exporters.api.export_model` (metadata included).

Everything lands under a work folder (default /tmp/robustaudit-bench), keyed by its parameters; a
folder is renamed into place only when complete, so an interrupted run never leaves half a dataset.
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
DET_SIZE = (480, 640)
CLS_SIDES = (224, 320)  # each side of a classification image is drawn from this range
JPEG_QUALITY = 90
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field")


def _photos() -> list[np.ndarray]:
    import skimage.data

    return [getattr(skimage.data, name)() for name in PHOTOS]


def photo_background(rng: np.random.Generator, photos: list[np.ndarray], h: int, w: int) -> np.ndarray:
    """A random crop of a random photo at h x w (scaled, maybe flipped, colour-jittered), uint8 RGB."""
    photo = photos[int(rng.integers(len(photos)))]
    ph, pw = photo.shape[:2]
    scale = rng.uniform(0.5, 1.0) * min(ph / h, pw / w)  # crop size in photo pixels per output pixel
    ch, cw = max(8, int(h * scale)), max(8, int(w * scale))
    y, x = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    crop = photo[y:y + ch, x:x + cw]
    out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA if ch > h else cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    gain = rng.uniform(0.8, 1.2, size=3).astype(np.float32)
    return np.clip(out.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def compose(rng: np.random.Generator, photos: list[np.ndarray], h: int, w: int, n_objects: int,
            labels: list[int] | None = None):
    """A photo background with `n_objects` synthetic shapes pasted on it: (uint8 image, instances)."""
    from audit.datasets.synthetic import draw_scene

    scene, instances = draw_scene(rng, h, w, n_objects, labels)
    image = photo_background(rng, photos, h, w)
    for inst in instances:
        image[inst.mask] = scene[inst.mask]
    return image, instances


def _save_jpeg(image: np.ndarray, path: Path) -> None:
    Image.fromarray(image).save(path, "JPEG", quality=JPEG_QUALITY)


def _polygons(mask: np.ndarray) -> list[list[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def _cached(folder: Path, write) -> Path:
    """`folder`, written by `write(tmp_folder)` into a sibling and renamed into place if missing."""
    if folder.is_dir():
        return folder
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    tmp.rename(folder)
    return folder


def coco_data(work: Path, n: int, seed: int = 0) -> Path:
    """A COCO val2017 layout of `n` photo-like 480x640 JPEGs with 1-4 shapes each (cached)."""
    from audit.datasets.synthetic import CATEGORY_IDS, SHAPES

    def write(root: Path) -> None:
        rng, photos = np.random.default_rng(seed), _photos()
        (root / "val2017").mkdir()
        (root / "annotations").mkdir()
        images, annotations = [], []
        for i in range(n):
            image, instances = compose(rng, photos, *DET_SIZE, int(rng.integers(1, 5)))
            image_id = 1000 + i
            file_name = f"{image_id:012d}.jpg"
            _save_jpeg(image, root / "val2017" / file_name)
            images.append({"id": image_id, "file_name": file_name, "height": DET_SIZE[0], "width": DET_SIZE[1]})
            for inst in instances:
                x0, y0, x1, y1 = inst.box
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "iscrowd": 0,
                                    "category_id": CATEGORY_IDS[inst.label], "bbox": [x0, y0, x1 - x0, y1 - y0],
                                    "area": float(inst.mask.sum()), "segmentation": _polygons(inst.mask)})
        categories = [{"id": c, "name": s, "supercategory": "shape"} for c, s in zip(CATEGORY_IDS, SHAPES)]
        doc = {"images": images, "annotations": annotations, "categories": categories, "licenses": [],
               "info": {"description": "robustaudit scale benchmark: photo-like synthetic scenes"}}
        (root / "annotations" / "instances_val2017.json").write_text(json.dumps(doc))

    return _cached(work / "data" / f"coco-{n}-{DET_SIZE[0]}x{DET_SIZE[1]}-q{JPEG_QUALITY}-s{seed}", write)


def imagenet_data(work: Path, n: int, seed: int = 0) -> Path:
    """An ImageNet-style folder of `n` photo-like 224-ish JPEGs, one shape each, its class (cached)."""
    from audit.datasets.synthetic import SHAPES

    def write(root: Path) -> None:
        rng, photos = np.random.default_rng(seed), _photos()
        for name in SHAPES:
            (root / name).mkdir()
        for i in range(n):
            label = i % len(SHAPES)
            h, w = (int(s) for s in rng.integers(CLS_SIDES[0], CLS_SIDES[1] + 1, size=2))
            image, _ = compose(rng, photos, h, w, 1, [label])
            _save_jpeg(image, root / SHAPES[label] / f"{i:06d}.jpg")

    return _cached(work / "data" / f"imagenet-{n}-{CLS_SIDES[0]}to{CLS_SIDES[1]}-q{JPEG_QUALITY}-s{seed}", write)


def detector(work: Path) -> Path:
    """The randomly initialised Faster R-CNN MobileNet-v3 FPN of audit_pipeline.py, as ONNX (cached)."""
    path = work / "models" / "fasterrcnn_mobilenet_v3_large_320_fpn-5cls.onnx"
    if not path.exists():
        sys.path.insert(0, str(HERE))
        from audit_pipeline import build_model

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        build_model(tmp)
        tmp.rename(path)
    return path


def classifier(work: Path, arch: str = "resnet18") -> Path:
    """timm `arch`, random init, 4 classes, exported with robustaudit's exporter (cached)."""
    from audit.datasets.synthetic import SHAPES

    path = work / "models" / f"{arch}-{len(SHAPES)}cls.onnx"
    if not path.exists():
        from exporters.api import export_model

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_model(f"timm:{arch}", tmp, num_classes=len(SHAPES), check=False)
        tmp.rename(path)
    return path
