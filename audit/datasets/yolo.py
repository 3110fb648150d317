"""The Ultralytics YOLO layout (`data.yaml`, or a root with `images/` and `labels/`) as a COCO dataset.

The yaml's `path` is the dataset root (relative to the yaml's folder when relative); `val` (or
`train`, `test`) is a folder, a `.txt` list of image paths, or a list of those, all relative to the
root and confined to it (`safe_join`); `names` is a list or an {index: name} mapping. Without a yaml,
a root with `images/` and `labels/` is read with class names from `classes.txt`. YOLO class k becomes
COCO category id k, image sizes come from the image headers, and the ground truth is converted to a
COCO document in pixels: AP, AP50... are COCO's, computed on that converted ground truth.

Example:
    >>> ds = open_yolo("datasets/coco8/coco8.yaml")  # doctest: +SKIP
    >>> ds.class_names[:2], ds.coco_gt["annotations"][0]["bbox"]  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from audit.datasets.coco import CocoDataset
from audit.datasets.yolo_labels import box_polygon, label_path, read_label_file, to_annotation
from audit.errors import DatasetError
from audit.io.images import IMAGE_SUFFIXES, open_image
from audit.io.safety import check_inside, safe_join

NOTE = "AP, AP50, ... are COCO's (faster-coco-eval), computed on the YOLO labels converted to COCO boxes in pixels"
SPLITS = {"val": ("val", "valid", "test"), "train": ("train",)}


def find_yaml(path: Path) -> Path | None:
    """`path` itself when it is a yaml file, else `data.yaml` (or the only `*.yaml` naming classes) in the folder."""
    if path.is_file():
        return path if path.suffix.lower() in (".yaml", ".yml") else None
    if (path / "data.yaml").is_file():
        return path / "data.yaml"
    candidates = [p for p in sorted(path.glob("*.y*ml")) if b"names" in p.read_bytes()[:1 << 16]]
    return candidates[0] if len(candidates) == 1 else None


def _load_yaml(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_bytes())
    except OSError as exc:
        raise DatasetError(f"cannot read {path} ({exc.strerror})") from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise DatasetError(f"{path} is not valid YAML ({type(exc).__name__}: {str(exc)[:100]})") from None
    if not isinstance(doc, dict):
        raise DatasetError(f"{path} is not a YOLO data.yaml: expected a mapping with 'names' and 'val', got {type(doc).__name__}")
    return doc


def _names(value: Any, nc: Any, where: str) -> list[str]:
    """The class names of a yaml `names` (a list, or a mapping of 0..n-1 to names)."""
    if isinstance(value, dict):
        if not all(isinstance(k, int) and not isinstance(k, bool) for k in value) or sorted(value) != list(range(len(value))):
            raise DatasetError(f"{where}: 'names' as a mapping needs the keys 0..n-1, got {sorted(map(str, value))[:10]}")
        value = [value[k] for k in range(len(value))]
    if not isinstance(value, list) or not value or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        raise DatasetError(f"{where}: 'names' must be a non-empty list of class names (or {{0: name, ...}}), got {str(value)[:80]}")
    if nc is not None and (not isinstance(nc, int) or isinstance(nc, bool) or nc != len(value)):
        raise DatasetError(f"{where}: nc {str(nc)[:20]} does not match the {len(value)} names; fix one of them")
    return [str(v) for v in value]


def _root_of(doc: dict, yaml_path: Path) -> Path:
    value = doc.get("path")
    if value is None:
        return yaml_path.parent
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise DatasetError(f"{yaml_path}: 'path' must be the dataset folder, got {str(value)[:80]!r}")
    if Path(value).is_absolute():
        candidates = [Path(value)]
    else:  # beside the yaml (a dataset that carries its yaml), else from the working folder (Ultralytics' datasets/)
        candidates = [yaml_path.parent / value, Path.cwd() / value, Path.cwd() / "datasets" / value]
    root = next((c for c in candidates if c.is_dir()), None)
    if root is None:
        raise DatasetError(f"{yaml_path}: the dataset folder 'path: {value}' is not a folder (looked in "
                           f"{', '.join(str(c) for c in candidates)}); fix 'path' in the yaml")
    return root


def _list_images(root: Path, entry: Any, where: str) -> list[str]:
    """Image paths relative to `root` named by one split entry: a folder or a `.txt` list file."""
    if not isinstance(entry, str):
        raise DatasetError(f"{where}: a split must be a folder or a .txt list of images (or a list of those), got {str(entry)[:80]}")
    target = safe_join(root, _relative(root, entry), f"{where} entry")
    if target.is_dir():
        found = sorted(p for p in target.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        for p in found:
            check_inside(root, p, "image", p.relative_to(root).as_posix())
        return [p.relative_to(root).as_posix() for p in found]
    if target.is_file() and target.suffix.lower() == ".txt":
        try:
            lines = target.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read the image list {target} ({type(exc).__name__}); fix or replace it") from None
        rels = [line.strip().removeprefix("./") for line in lines if line.strip()]
        return [safe_join(root, r, f"{target}: image entry").relative_to(root).as_posix() for r in rels]
    raise DatasetError(f"{where}: {entry!r} is neither a folder nor a .txt list of images under {root}")


def _relative(root: Path, entry: str) -> str:
    """A split entry relative to the root, by Ultralytics' rules: `./x` is `x`; `../x` is `x` when the root
    holds it (Roboflow exports write `val: ../valid/images` beside `path`-less yamls); an absolute path
    inside the root is made relative (outside it stays absolute, and `safe_join` refuses it)."""
    rel = entry.removeprefix("./")
    if "\x00" in rel:
        return rel  # safe_join refuses it with a clear message
    if rel.startswith("../") and (root / rel[3:]).exists():
        return rel[3:]
    if Path(rel).is_absolute():
        try:
            return Path(rel).resolve().relative_to(root.resolve()).as_posix()
        except (ValueError, OSError):
            return rel
    return rel


def split_images(root: Path, value: Any, where: str) -> list[str]:
    """All images of a split value (one entry or a list of entries), in order, without repeats."""
    entries = value if isinstance(value, list) else [value]
    rels = [rel for entry in entries for rel in _list_images(root, entry, where)]
    return list(dict.fromkeys(rels))


def _folder_layout(root: Path, split: str) -> tuple[list[str], list[str], str]:
    """A root with images/ and labels/ (no yaml): the split's images and the names from classes.txt."""
    if not (root / "images").is_dir() or not (root / "labels").is_dir():
        raise DatasetError(f"{root} is not a YOLO dataset: give its data.yaml, or a folder with images/ and labels/")
    sub = next((root / "images" / s for s in SPLITS.get(split, (split,)) if (root / "images" / s).is_dir()), root / "images")
    names_file = next((p for p in (root / "classes.txt", root / "labels" / "classes.txt") if p.is_file()), None)
    if names_file is None:
        raise DatasetError(f"{root} has images/ and labels/ but no class names; add a data.yaml with 'names' "
                           f"(or classes.txt, one name a line) and pass it as --data")
    names = [n.strip() for n in names_file.read_text(encoding="utf-8", errors="replace").splitlines() if n.strip()]
    return split_images(root, sub.relative_to(root).as_posix(), str(root)), names, str(names_file)


def read_layout(path: Path, split: str = "val") -> tuple[Path, list[str], list[str], str]:
    """(root, image paths relative to root, class names, the file that defined them) of a YOLO dataset."""
    yaml_path = find_yaml(path)
    if yaml_path is None:
        root = path if path.is_dir() else path.parent
        rels, names, source = _folder_layout(root, split)
        return root, rels, names, source
    doc = _load_yaml(yaml_path)
    names = _names(doc.get("names"), doc.get("nc"), str(yaml_path))
    root = _root_of(doc, yaml_path)
    keys = SPLITS.get(split, (split,))
    key = next((k for k in keys if doc.get(k) is not None), None)
    if key is None:
        raise DatasetError(f"{yaml_path} names no '{keys[0]}' split; add '{keys[0]}: images/{keys[0]}'")
    return root, split_images(root, doc[key], f"{yaml_path}: {key}"), names, str(yaml_path)


def open_yolo(path: str | Path, split: str = "val", skip_bad: bool = False, max_pixels: int | None = None) -> CocoDataset:
    """A YOLO dataset's `split` as a `CocoDataset` (see the module docstring)."""
    root, rels, names, source = read_layout(Path(path), split)
    doc: dict[str, Any] = {"images": [], "annotations": [], "categories": [{"id": k, "name": n} for k, n in enumerate(names)]}
    skipped = []
    for rel in rels:
        size = _image_size(safe_join(root, rel, "image"), rel, max_pixels, skip_bad)
        if size is None:
            skipped.append((rel, "unreadable or missing"))
            continue
        image_id = len(doc["images"]) + 1
        doc["images"].append({"id": image_id, "file_name": rel, "width": size[0], "height": size[1]})
        label = label_path(rel)
        for obj in read_label_file(safe_join(root, label, "YOLO label path"), label, len(names)):
            doc["annotations"].append({**to_annotation(obj, *size), "id": len(doc["annotations"]) + 1, "image_id": image_id})
    if any("segmentation" in a for a in doc["annotations"]):  # mask AP: box-only objects count with their box
        for ann in doc["annotations"]:
            ann.setdefault("segmentation", box_polygon(ann))
    ds = CocoDataset.from_document(doc, root, root, source)
    ds.format, ds.note, ds.max_pixels = "yolo", NOTE, max_pixels
    ds.skipped.extend(skipped)
    return ds


def _image_size(path: Path, rel: str, max_pixels: int | None, skip_bad: bool) -> tuple[int, int] | None:
    """(width, height) from the header; None for a bad image under --skip-bad, else a `DatasetError`."""
    try:
        with open_image(path, max_pixels) as img:
            return img.size
    except DatasetError:
        if skip_bad:
            return None
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on a bad header
        if skip_bad:
            return None
        reason = "missing" if isinstance(exc, FileNotFoundError) else f"{type(exc).__name__}"
        raise DatasetError(f"YOLO image {rel} is {reason} ({path}); replace it or use --skip-bad") from None
