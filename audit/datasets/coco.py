"""COCO-format detection / instance segmentation datasets (annotations json + image folder)."""

from __future__ import annotations

import json
from pathlib import Path

from audit.datasets.base import Dataset
from audit.datasets.coco_check import check_coco
from audit.errors import DatasetError
from audit.io.safety import safe_join


class CocoDataset(Dataset):
    """A COCO json and its image folder. `target(i)` is the COCO image id; `coco_gt` the json.

    Example:
        >>> ds = CocoDataset("coco/annotations/instances_val2017.json", "coco/val2017")  # doctest: +SKIP
    """

    format = "coco"
    task_type = "detection"

    def __init__(self, annotations: str | Path, images: str | Path, root: str | Path | None = None,
                 _doc: dict | None = None):
        annotations, images = Path(annotations), Path(images)
        doc = _load_json(annotations) if _doc is None else _doc
        cats = sorted(doc["categories"], key=lambda c: c["id"])
        super().__init__(root or images.parent, [str(c.get("name", c["id"])) for c in cats])
        self.annotations_path = annotations
        self.category_ids = [int(c["id"]) for c in cats]
        self._doc = doc
        if not images.is_dir():
            raise DatasetError(f"COCO image folder not found: {images}; give --images")
        what = f"{annotations}: file_name"
        self._items = [{"id": im["file_name"], "path": safe_join(images, im["file_name"], what), "coco_id": im["id"]}
                       for im in doc["images"]]
        self.has_masks = any(ann.get("segmentation") for ann in doc["annotations"])

    # --- data branch: readers of other layouts (YOLO, VOC) build a COCO document in memory ---
    @classmethod
    def from_document(cls, doc: dict, images: str | Path, root: str | Path, source: str | Path) -> "CocoDataset":
        """A dataset over an in-memory COCO document `doc` (checked like a file; `file_name`s go through
        `safe_join` under `images`); `source` names the file(s) it was converted from, in errors.

        Example:
            >>> ds = CocoDataset.from_document(doc, "yolo/images/val", "yolo", "yolo/data.yaml")  # doctest: +SKIP
        """
        check_coco(doc, str(source))
        return cls(source, images, root, _doc=doc)
    # --- end data branch ---

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
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise DatasetError(f"COCO annotation file not found: {path}; give --annotations or the standard layout") from None
    except IsADirectoryError:
        raise DatasetError(f"COCO annotation file {path} is a folder; give the json file") from None
    except OSError as exc:
        raise DatasetError(f"cannot read COCO annotation file {path} ({exc.strerror})") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # ValueError: bad JSON, or an integer of 4300+ digits
        raise DatasetError(f"{path} is not valid JSON ({type(exc).__name__}: {str(exc)[:100]})") from None
    check_coco(doc, str(path))
    return doc
