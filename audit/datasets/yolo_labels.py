"""YOLO label files (`class cx cy w h` or `class x1 y1 x2 y2 ...`, normalised) -> COCO annotations in pixels.

A box line becomes a COCO `bbox`; a polygon line (3 points or more) becomes a COCO polygon in pixels,
its box the polygon's extents and its area the polygon's (shoelace) area, so that mask AP works.
Coordinates may overshoot [0, 1] by `TOLERANCE` (rounding in exporters) and are clipped; anything
else malformed is one `DatasetError` naming the file and line.

Example:
    >>> parse_label_text("0 0.5 0.5 0.2 0.4\\n", "a.txt", num_classes=1)
    [(0, [0.5, 0.5, 0.2, 0.4], False)]
"""

from __future__ import annotations

import math
from pathlib import Path

from audit.errors import DatasetError

TOLERANCE = 0.01  # normalised coordinates up to 1% outside the image are clipped, beyond that refused
MAX_LABEL_BYTES = 16 << 20  # a label file is a few lines per object; anything larger is not one


def read_label_file(path: Path, shown: str, num_classes: int) -> list[tuple[int, list[float], bool]]:
    """The objects of one label file: (class, coordinates, is_polygon); [] when there is no file."""
    try:
        if path.stat().st_size > MAX_LABEL_BYTES:
            raise DatasetError(f"YOLO label file {shown} is over {MAX_LABEL_BYTES >> 20} MB; it cannot be a label file")
        text = path.read_text(encoding="utf-8-sig")  # a BOM from Windows editors is not part of the first line
    except FileNotFoundError:
        return []  # Ultralytics' rule: an image without a label file shows no objects
    except IsADirectoryError:
        raise DatasetError(f"YOLO label path {shown} is a folder; expected a .txt file") from None
    except UnicodeDecodeError:
        raise DatasetError(f"YOLO label file {shown} is not UTF-8 text; fix or remove it") from None
    except OSError as exc:
        raise DatasetError(f"cannot read YOLO label file {shown} ({exc.strerror})") from None
    return parse_label_text(text, shown, num_classes)


def parse_label_text(text: str, shown: str, num_classes: int) -> list[tuple[int, list[float], bool]]:
    """Parse and check every line of a label file (see the module docstring)."""
    objects = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            objects.append(_parse_line(line, f"{shown} line {number}", num_classes))
    return objects


def _parse_line(line: str, where: str, num_classes: int) -> tuple[int, list[float], bool]:
    tokens = line.split()
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        raise DatasetError(f"{where}: expected numbers 'class cx cy w h' or 'class x1 y1 x2 y2 ...', "
                           f"got {line[:80]!r}; fix the label file") from None
    cls, coords = values[0], values[1:]
    if not math.isfinite(cls) or cls != int(cls) or not 0 <= cls < num_classes:
        raise DatasetError(f"{where}: class {tokens[0][:20]!r} is not one of the {num_classes} classes 0..{num_classes - 1} "
                           f"the names list; fix the label or the names")
    polygon = len(coords) != 4
    if polygon and (len(coords) < 6 or len(coords) % 2):
        raise DatasetError(f"{where}: {len(coords)} coordinates; a box has 4 (cx cy w h), a polygon 3 or more x y pairs")
    if not all(math.isfinite(v) and -TOLERANCE <= v <= 1 + TOLERANCE for v in coords):
        raise DatasetError(f"{where}: coordinates must be normalised to [0, 1], got {line[:80]!r}; "
                           f"YOLO labels divide pixels by the image width and height")
    return int(cls), [min(max(v, 0.0), 1.0) for v in coords], polygon


def to_annotation(obj: tuple[int, list[float], bool], width: int, height: int) -> dict:
    """One COCO annotation (without ids) in pixels for a parsed YOLO object."""
    cls, c, polygon = obj
    if not polygon:
        cx, cy, w, h = c
        x0, y0 = max(cx - w / 2, 0.0) * width, max(cy - h / 2, 0.0) * height
        x1, y1 = min(cx + w / 2, 1.0) * width, min(cy + h / 2, 1.0) * height
        return {"category_id": cls, "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0}
    xs, ys = [v * width for v in c[0::2]], [v * height for v in c[1::2]]
    area = 0.5 * abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs))))
    flat = [v for xy in zip(xs, ys) for v in xy]
    return {"category_id": cls, "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], "area": area,
            "iscrowd": 0, "segmentation": [flat]}


def box_polygon(ann: dict) -> list[list[float]]:
    """The box of `ann` as a COCO polygon: the mask of a box-only object in a dataset with polygons."""
    x, y, w, h = ann["bbox"]
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def label_path(rel: str) -> str:
    """Ultralytics' rule: the label of `.../images/x/a.jpg` is `.../labels/x/a.txt` (last `images` folder).

    Example:
        >>> label_path("images/val/a.jpg")
        'labels/val/a.txt'
    """
    padded = "/" + rel
    head, sep, tail = padded.rpartition("/images/")
    joined = f"{head}/labels/{tail}" if sep else padded
    stem = joined.rsplit(".", 1)[0] if "." in joined.rsplit("/", 1)[-1] else joined
    return (stem + ".txt").lstrip("/")
