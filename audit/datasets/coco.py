"""COCO-format detection / instance segmentation datasets (annotations json + image folder)."""

from __future__ import annotations

import json
from pathlib import Path

from audit.datasets.base import Dataset
from audit.errors import DatasetError


class CocoDataset(Dataset):
    """A COCO json and its image folder. `target(i)` is the COCO image id; `coco_gt` the json.

    Example:
        >>> ds = CocoDataset("coco/annotations/instances_val2017.json", "coco/val2017")  # doctest: +SKIP
    """

    format = "coco"
    task_type = "detection"

    def __init__(self, annotations: str | Path, images: str | Path, root: str | Path | None = None):
        annotations, images = Path(annotations), Path(images)
        doc = _load_json(annotations)
        cats = sorted(doc["categories"], key=lambda c: c["id"])
        super().__init__(root or images.parent, [str(c.get("name", c["id"])) for c in cats])
        self.annotations_path = annotations
        self.category_ids = [int(c["id"]) for c in cats]
        self._doc = doc
        for im in doc["images"]:
            try:
                self._items.append({"id": im["file_name"], "path": images / im["file_name"], "coco_id": int(im["id"])})
            except (KeyError, TypeError, ValueError):
                raise DatasetError(f"{annotations}: every image needs 'id' and 'file_name', got {str(im)[:80]}") from None
        known = {item["coco_id"] for item in self._items}
        for ann in doc["annotations"]:
            if ann.get("image_id") not in known or "bbox" not in ann or "category_id" not in ann:
                raise DatasetError(f"{annotations}: annotation {ann.get('id')} needs a known image_id, a bbox and a category_id")
        self.has_masks = any(ann.get("segmentation") for ann in doc["annotations"])
        if not images.is_dir():
            raise DatasetError(f"COCO image folder not found: {images}; give --images")

    def target(self, index: int) -> int:
        return self._items[index]["coco_id"]

    @property
    def coco_gt(self) -> dict:
        """The annotation json restricted to the selected images."""
        ids = {item["coco_id"] for item in self._items}
        return {
            "images": [im for im in self._doc["images"] if im["id"] in ids],
            "annotations": [a for a in self._doc["annotations"] if a["image_id"] in ids],
            "categories": self._doc["categories"],
        }

    def check_files(self) -> None:
        """Fail on the first image the json names that is not on disk (without --skip-bad)."""
        for item in self._items:
            if not Path(item["path"]).is_file():
                raise DatasetError(f"{self.annotations_path} names {item['id']}, which is missing at {item['path']}; use --skip-bad to audit without it")


def _load_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"COCO annotation file not found: {path}; give --annotations or the standard layout") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
            raise DatasetError(f"{path} is not a COCO annotation file: it lacks the '{key}' list")
    if not doc["categories"]:
        raise DatasetError(f"{path} defines no categories")
    return doc
