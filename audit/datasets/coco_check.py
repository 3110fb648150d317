"""Structural checks of a COCO annotation document, so that a malformed or hostile file is one line.

The evaluator (faster-coco-eval, C++) and the readers index the document freely; everything they
touch is checked here first: types, finite numbers in range, known ids. `file_name` containment is
checked where it is joined to the image folder (`audit.io.safety.safe_join`).

Example:
    >>> check_coco({"images": [], "annotations": [], "categories": [{"id": 1}]}, "a.json")
"""

from __future__ import annotations

import math
from typing import Any

from audit.errors import DatasetError

MAX_ID = 2**63 - 1  # the evaluator keeps ids in int64
MAX_COORD = 1e9  # pixels; anything larger is not an image coordinate


def _is_id(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_ID


def _is_number(v: Any, low: float = -MAX_COORD) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if isinstance(v, int):
        return low <= v <= MAX_COORD
    return math.isfinite(v) and low <= v <= MAX_COORD


def _fail(path: str, where: str, what: str, value: Any) -> DatasetError:
    return DatasetError(f"{path}: {where} {what}, got {str(value)[:80]}; fix the annotation file")


def check_coco(doc: Any, path: str) -> None:
    """Raise `DatasetError` (one line: where in the file and what) unless `doc` is a usable COCO document."""
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
            raise DatasetError(f"{path} is not a COCO annotation file: it lacks the '{key}' list")
    if not doc["categories"]:
        raise DatasetError(f"{path} defines no categories")
    cat_ids = set()
    for i, c in enumerate(doc["categories"]):
        if not isinstance(c, dict) or not _is_id(c.get("id")):
            raise _fail(path, f"categories[{i}]", "needs an integer 'id' from 0 to 2^63-1", c)
        if "name" in c and not isinstance(c["name"], (str, int)):
            raise _fail(path, f"categories[{i}]", "needs a text 'name'", c)
        cat_ids.add(c["id"])
    image_ids = set()
    for i, im in enumerate(doc["images"]):
        if not isinstance(im, dict) or not _is_id(im.get("id")) or not isinstance(im.get("file_name"), str):
            raise _fail(path, f"images[{i}]", "needs an integer 'id' and a text 'file_name'", im)
        if im["id"] in image_ids:
            raise _fail(path, f"images[{i}]", "repeats an image 'id'", im["id"])
        image_ids.add(im["id"])
    for i, ann in enumerate(doc["annotations"]):
        _check_annotation(ann, i, path, image_ids, cat_ids)


def _check_annotation(ann: Any, i: int, path: str, image_ids: set, cat_ids: set) -> None:
    where = f"annotations[{i}]"
    if not isinstance(ann, dict):
        raise _fail(path, where, "must be an object", ann)
    if not _is_id(ann.get("image_id")) or ann["image_id"] not in image_ids:
        raise _fail(path, where, "needs the 'image_id' of a listed image", ann.get("image_id"))
    if not _is_id(ann.get("category_id")) or ann["category_id"] not in cat_ids:
        raise _fail(path, where, "needs the 'category_id' of a listed category", ann.get("category_id"))
    box = ann.get("bbox")
    if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box) and box[2] >= 0 and box[3] >= 0):
        raise _fail(path, where, "needs a 'bbox' of 4 finite numbers [x, y, width, height] with width, height >= 0", box)
    if "id" in ann and not _is_id(ann["id"]):
        raise _fail(path, where, "needs an integer 'id'", ann["id"])
    if "area" in ann and not _is_number(ann["area"], 0):
        raise _fail(path, where, "needs a finite, non-negative 'area'", ann["area"])
    if "iscrowd" in ann and not (isinstance(ann["iscrowd"], (int, float)) and ann["iscrowd"] in (0, 1)):
        raise _fail(path, where, "needs 'iscrowd' 0 or 1", ann["iscrowd"])
    seg = ann.get("segmentation")
    if seg is not None and seg != [] and not (_polygons_ok(seg) or _rle_ok(seg)):
        raise _fail(path, where, "needs a 'segmentation' of polygons (lists of coordinates) or an RLE {size, counts}",
                    seg)


def _polygons_ok(seg: Any) -> bool:
    return isinstance(seg, list) and all(isinstance(p, list) and all(_is_number(v) for v in p) for p in seg)


def _rle_ok(seg: Any) -> bool:
    if not isinstance(seg, dict) or not isinstance(seg.get("size"), list) or len(seg["size"]) != 2:
        return False
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1 << 20 for v in seg["size"]):
        return False
    counts = seg.get("counts")
    return isinstance(counts, str) or (isinstance(counts, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1 << 40 for v in counts))
