"""Pascal VOC detection (`VOCdevkit/VOC2007` or `VOC2012`) as a COCO dataset, plus what VOC AP needs.

Layout: `Annotations/<id>.xml` (parsed with defusedxml: entity expansion and external entities are
refused), the split list `ImageSets/Main/test.txt` (VOC2007) else `val.txt` (fine-tuning:
`trainval.txt` else `train.txt`), images `JPEGImages/<id>.jpg`; every id goes through `safe_join`.
The 20 classes in the devkit's order get COCO category ids 1..20 (0 stays the background of
torchvision-style detectors). VOC boxes are 1-based inclusive pixel coordinates: the COCO box is
x = xmin - 1, y = ymin - 1, w = xmax - xmin + 1, h = ymax - ymin + 1. `difficult` objects become
`iscrowd: 1`, so in COCO-style AP a detection matched to one is ignored, neither TP nor FP.

Example:
    >>> ds = open_voc("data/VOCdevkit")  # doctest: +SKIP
    >>> ds.voc_year, ds.class_names[0]  # doctest: +SKIP
    ('2007', 'aeroplane')
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from audit.datasets.coco import CocoDataset
from audit.errors import DatasetError
from audit.io.safety import safe_join

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
SPLIT_FILES = {"val": ("test.txt", "val.txt"), "train": ("trainval.txt", "train.txt")}
MAX_XML_BYTES = 1 << 20
LAYOUT = ("Annotations", "ImageSets", "JPEGImages")


def is_voc_year(path: Path) -> bool:
    return all((path / d).is_dir() for d in LAYOUT)


def find_voc_root(path: Path) -> Path:
    """The `VOC20xx` folder at or below `path` (itself, `VOCdevkit/VOC20xx`, or `VOC20xx`): the newest year
    where a devkit holds several (`voc_choice` says which were there)."""
    return _voc_roots(path)[0]


def voc_choice(path: Path) -> str | None:
    """Which year a devkit with several was audited, in words (None where `path` holds one).

    Example:
        >>> voc_choice(Path("data/VOCdevkit"))  # doctest: +SKIP
        'VOC2012, the newest of VOC2007, VOC2012 (give --data data/VOCdevkit/VOC2007 for another)'
    """
    chosen, found = _voc_roots(path)
    if len(found) < 2:
        return None
    other = next(p for p in found if p != chosen)
    return (f"{chosen.name}, the newest of {', '.join(p.name for p in found)} "
            f"(give --data {other} for another)")


def _voc_roots(path: Path) -> tuple[Path, list[Path]]:
    if is_voc_year(path):
        return path, [path]
    found = sorted({p for pattern in ("VOC*", "VOCdevkit/VOC*") for p in path.glob(pattern) if is_voc_year(p)},
                   key=lambda p: (_year(p), p.name))
    if not found:
        raise DatasetError(f"{path} is not a Pascal VOC dataset: expected Annotations/, ImageSets/ and JPEGImages/ "
                           f"in it or in VOCdevkit/VOC20xx below it")
    return found[-1], found


def _year(path: Path) -> int:
    year = re.search(r"(20\d\d)", path.name)
    return int(year.group(1)) if year else 0


def eleven_point(root: Path) -> bool:
    """VOC2007's AP is the 11-point interpolated one; 2010 onwards (and unknown years) use all points."""
    year = re.search(r"(20\d\d)", root.name)
    return bool(year) and int(year.group(1)) < 2010


def _split_ids(root: Path, split: str) -> tuple[list[str], Path]:
    main = root / "ImageSets" / "Main"
    files = SPLIT_FILES.get(split, (f"{split}.txt",))
    list_file = next((main / f for f in files if (main / f).is_file()), None)
    if list_file is None:
        raise DatasetError(f"no {' or '.join(files)} in {main}; the VOC split list names the images to use")
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {list_file} ({type(exc).__name__}); fix or replace it") from None
    ids = [line.split()[0] for line in lines if line.strip()]
    return list(dict.fromkeys(ids)), list_file


def _text(node: Any, tag: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None:
        raise DatasetError(f"{where}: missing <{tag}>; fix the annotation file")
    return child.text.strip()


def _number(node: Any, tag: str, where: str) -> float:
    value = _text(node, tag, where)
    try:
        number = float(value)
    except ValueError:
        raise DatasetError(f"{where}: <{tag}> must be a number, got {value[:40]!r}") from None
    if not math.isfinite(number) or abs(number) > 1e7:
        raise DatasetError(f"{where}: <{tag}> {value[:40]!r} is not a pixel coordinate")
    return number


def read_objects(path: Path, shown: str) -> list[dict]:
    """The objects of one VOC annotation xml: {name, difficult, box (xmin, ymin, xmax, ymax, 1-based)}."""
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        if path.stat().st_size > MAX_XML_BYTES:
            raise DatasetError(f"VOC annotation {shown} is over 1 MB; it cannot be an annotation file")
        tree = ElementTree.parse(str(path))
    except FileNotFoundError:
        raise DatasetError(f"VOC annotation {shown} is missing; every id in the split list needs Annotations/<id>.xml") from None
    except DefusedXmlException as exc:
        raise DatasetError(f"VOC annotation {shown} uses {type(exc).__name__} (entities or DTDs); refused") from None
    except (ElementTree.ParseError, OSError, ValueError) as exc:
        raise DatasetError(f"VOC annotation {shown} is not valid XML ({type(exc).__name__}: {str(exc)[:80]})") from None
    objects = []
    for k, obj in enumerate(tree.getroot().iter("object")):
        where = f"{shown}: object {k + 1}"
        name = _text(obj, "name", where)
        if name not in VOC_CLASSES:
            raise DatasetError(f"{where}: class {name[:40]!r} is not one of the 20 VOC classes")
        box_node = obj.find("bndbox")
        if box_node is None:
            raise DatasetError(f"{where}: missing <bndbox>; fix the annotation file")
        box = tuple(_number(box_node, t, where) for t in ("xmin", "ymin", "xmax", "ymax"))
        if box[2] < box[0] or box[3] < box[1]:
            raise DatasetError(f"{where}: the box {box} has xmax < xmin or ymax < ymin")
        difficult = obj.find("difficult")
        objects.append({"name": name, "box": box, "difficult": difficult is not None and (difficult.text or "0").strip() == "1"})
    return objects


def to_coco_annotation(obj: dict) -> dict:
    """VOC (1-based, inclusive) -> COCO (0-based, width = xmax - xmin + 1); difficult -> iscrowd 1."""
    xmin, ymin, xmax, ymax = obj["box"]
    w, h = xmax - xmin + 1, ymax - ymin + 1
    return {"category_id": VOC_CLASSES.index(obj["name"]) + 1, "bbox": [xmin - 1, ymin - 1, w, h], "area": w * h,
            "iscrowd": int(obj["difficult"])}


def open_voc(path: str | Path, split: str = "val") -> CocoDataset:
    """A VOC dataset's `split` as a `CocoDataset` with `voc_year` and `eleven_point` set."""
    root = find_voc_root(Path(path))
    ids, list_file = _split_ids(root, split)
    doc: dict[str, Any] = {"images": [], "annotations": [],
                           "categories": [{"id": k + 1, "name": n} for k, n in enumerate(VOC_CLASSES)]}
    for image_id, vid in enumerate(ids, start=1):
        xml = safe_join(root / "Annotations", f"{vid}.xml", f"{list_file}: image id")
        doc["images"].append({"id": image_id, "file_name": f"{vid}.jpg"})
        for obj in read_objects(xml, f"Annotations/{vid}.xml"):
            doc["annotations"].append({**to_coco_annotation(obj), "id": len(doc["annotations"]) + 1, "image_id": image_id})
    ds = CocoDataset.from_document(doc, root / "JPEGImages", root, list_file)
    ds.format = "voc"
    ds.eleven_point = eleven_point(root)
    ds.note = (f"AP, AP50, ... are COCO's on the VOC boxes converted to COCO (difficult objects as crowd: ignored); "
               f"voc_AP50 is VOC's own ({'11-point, VOC2007' if ds.eleven_point else 'all points, VOC2010+'})")
    ds.extra_metrics = ["voc_AP50"]
    ds.chosen = voc_choice(Path(path))
    return ds
