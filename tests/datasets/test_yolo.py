"""The YOLO reader: layouts, conversion to COCO checked against pycocotools on an independent conversion, errors."""

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from audit.datasets import open_dataset
from audit.datasets.yolo_labels import label_path
from audit.errors import DatasetError, RobustAuditError
from audit.metrics import make_metric
from audit.datasets.synthetic import SHAPES
from tests.helpers.synthetic_formats import write_yolo
from audit.tasks.types import Detections

KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")


def _independent_gt(root, n_val):
    """COCO ground truth written straight from the label files (pixels = normalised x size), for pycocotools."""
    images, anns = [], []
    for i in range(n_val):
        w, h = Image.open(root / "images" / "val" / f"{i:04d}.png").size
        images.append({"id": i + 1, "file_name": f"images/val/{i:04d}.png", "width": w, "height": h})
        label = root / "labels" / "val" / f"{i:04d}.txt"
        for line in (label.read_text().splitlines() if label.exists() else []):
            cls, *c = line.split()
            xs, ys = [float(v) * w for v in c[0::2]], [float(v) * h for v in c[1::2]]
            box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            area = 0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))
            poly = [v for xy in zip(xs, ys) for v in xy]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(cls), "bbox": box, "area": area,
                         "iscrowd": 0, "segmentation": [poly]})
    return {"images": images, "annotations": anns, "categories": [{"id": k, "name": n} for k, n in enumerate(SHAPES)]}


def _detections(gt, rng):
    """Per image: every other object found (box jittered, mask shifted a pixel), plus one false positive."""
    from pycocotools import mask as mask_util

    out = {}
    for im in gt["images"]:
        h, w = im["height"], im["width"]
        boxes, scores, cats, masks = [], [], [], []
        for k, a in enumerate(a for a in gt["annotations"] if a["image_id"] == im["id"]):
            if k % 2 == 1 and rng.random() < 0.5:
                continue
            x, y, bw, bh = a["bbox"]
            boxes.append([x + rng.uniform(-2, 2), y + rng.uniform(-2, 2), x + bw + rng.uniform(-2, 2), y + bh])
            scores.append(rng.uniform(0.3, 1.0))
            cats.append(a["category_id"])
            m = mask_util.decode(mask_util.merge(mask_util.frPyObjects(a["segmentation"], h, w))).astype(bool)
            masks.append(np.roll(m, 1, axis=1))
        boxes.append([1, 1, 20, 20])
        scores.append(0.9)
        cats.append(int(rng.integers(len(SHAPES))))
        masks.append(np.zeros((h, w), bool))
        masks[-1][1:20, 1:20] = True
        out[im["id"]] = (np.array(boxes, np.float32), np.array(scores, np.float32), np.array(cats), np.stack(masks))
    return out


def _pycocotools(gt, dets, iou_type):
    import contextlib
    import io

    from pycocotools import mask as mask_util
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        results = []
        for image_id, (boxes, scores, cats, masks) in dets.items():
            for b, s, c, m in zip(boxes, scores, cats, masks):
                r = {"image_id": image_id, "category_id": int(c), "score": float(s),
                     "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
                if iou_type == "segm":
                    rle = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
                    r["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
                results.append(r)
        ev = COCOeval(coco, coco.loadRes(results), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(KEYS, ev.stats[:9]))


def test_coco_ap_on_converted_yolo_labels_matches_pycocotools(tmp_path):
    data = write_yolo(tmp_path / "y", n_train=1, n_val=9, size=(80, 112), seed=7, polygons=True)
    ds = open_dataset("coco", data)  # a data.yaml is recognised under any detection task name
    assert ds.format == "yolo" and ds.class_names == list(SHAPES) and ds.category_ids == [0, 1, 2, 3] and ds.has_masks
    assert "converted" in ds.describe()["note"]
    gt = _independent_gt(tmp_path / "y", 9)
    assert [ds.image_id(i) for i in range(len(ds))] == [im["file_name"] for im in gt["images"]]
    dets = _detections(gt, np.random.default_rng(0))
    metric = make_metric(ds, with_masks=True)
    for i in range(len(ds)):
        boxes, scores, cats, masks = dets[ds.target(i)]
        metric.update(i, Detections(boxes=boxes, scores=scores, labels=cats, category_ids=cats, masks=masks))
    ours = metric.compute()
    for iou_type in ("bbox", "segm"):
        ref = _pycocotools(gt, dets, iou_type)
        for k in KEYS:  # pycocotools writes -1 where a value is undefined (no object of that size), we None
            expected = None if ref[k] < 0 else pytest.approx(ref[k], abs=1e-6)
            assert ours[f"{iou_type}_{k}"] == expected, (iou_type, k, ours[f"{iou_type}_{k}"], ref[k])
    assert 0.2 < ours["bbox_AP50"] < 1.0  # a real case: neither empty nor perfect


def test_yaml_shapes_list_files_and_images_without_labels(tmp_path):
    root = tmp_path / "ds"
    write_yolo(root, n_train=2, n_val=6, size=(32, 48))
    (root / "val.txt").write_text("./images/val/0000.png\nimages/val/0002.png\n\n")
    (tmp_path / "custom.yaml").write_text(yaml.safe_dump({"path": "ds", "val": ["val.txt", "images/val"],
                                                          "names": list(SHAPES), "nc": 4}))
    ds = open_dataset("detection", tmp_path / "custom.yaml")
    ids = [ds.image_id(i) for i in range(len(ds))]
    assert ids[:2] == ["images/val/0000.png", "images/val/0002.png"] and len(ids) == 6  # no repeats
    no_label = ids.index("images/val/0002.png")  # every third val image has no label file: no objects
    assert not [a for a in ds.coco_gt["annotations"] if a["image_id"] == ds.target(no_label)]
    assert label_path("a/images/b/images/c.x.jpg") == "a/images/b/labels/c.x.txt"
    (root / "data.yaml").unlink()  # a root with images/ and labels/: names from classes.txt
    with pytest.raises(DatasetError, match="no class names.*data.yaml"):
        open_dataset("detection", root)
    (root / "classes.txt").write_text("\n".join(SHAPES))
    assert len(open_dataset("detection", root, format="yolo")) == 6


@pytest.mark.parametrize("line, message", [
    ("0 0.5 0.5 0.2", "4 coordinates|3 coordinates"), ("7 0.5 0.5 0.2 0.2", "class '7' is not one of the 4"),
    ("0 0.5 0.5 1.4 0.2", "normalised to \\[0, 1\\]"), ("x 0.5 0.5 0.2 0.2", "expected numbers"),
    ("0 0.1 0.1 0.2 0.2 nan 0.3", "normalised"), ("1.5 0.5 0.5 0.2 0.2", "is not one of"),
])
def test_malformed_label_lines_are_one_line_errors_naming_file_and_line(tmp_path, line, message):
    data = write_yolo(tmp_path, n_train=1, n_val=2, size=(32, 48))
    (tmp_path / "labels" / "val" / "0001.txt").write_text("0 0.5 0.5 0.2 0.2\n" + line + "\n")
    with pytest.raises(DatasetError, match=f"labels/val/0001.txt line 2: .*({message})"):
        open_dataset("detection", data)


def test_paths_from_the_yaml_and_list_files_stay_inside_the_root(tmp_path):
    data = write_yolo(tmp_path / "ds", n_train=1, n_val=2, size=(32, 48))
    outside = tmp_path / "secret.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(outside)
    for val, message in (("../secret.png", "climbs out"), (str(outside), "absolute path")):
        data.write_text(yaml.safe_dump({"val": val, "names": list(SHAPES)}))
        with pytest.raises(DatasetError, match=message):
            open_dataset("detection", data)
    (tmp_path / "ds" / "list.txt").write_text("../secret.png\n")
    data.write_text(yaml.safe_dump({"val": "list.txt", "names": list(SHAPES)}))
    with pytest.raises(DatasetError, match="climbs out"):
        open_dataset("detection", data)


def test_bad_images_are_skipped_with_skip_bad(tmp_path):
    data = write_yolo(tmp_path, n_train=1, n_val=3, size=(32, 48))
    (tmp_path / "images" / "val" / "0001.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="images/val/0001.png.*--skip-bad"):
        open_dataset("detection", data)
    ds = open_dataset("detection", data, skip_bad=True)
    assert len(ds) == 2 and ds.skipped[0][0] == "images/val/0001.png"


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**20), st.floats(allow_nan=True), st.text(max_size=12))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.one_of(st.text(max_size=6), st.integers(-2, 6)), inner, max_size=4)),
                       max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.one_of(_values, st.fixed_dictionaries({}, optional={"path": _values, "val": _values, "names": _values,
                                                                  "nc": _values, "train": _values})))
def test_any_yaml_shape_is_a_robustaudit_error_or_a_dataset(tmp_path, doc):
    root = tmp_path / "fuzz"
    if not root.exists():
        write_yolo(root, n_train=1, n_val=2, size=(16, 16))
    (root / "data.yaml").write_text(yaml.safe_dump(doc))
    try:
        ds = open_dataset("detection", root / "data.yaml")
    except RobustAuditError as exc:
        assert "\n" not in str(exc)
    else:
        assert len(ds) > 0


def test_roboflow_style_yaml_with_parent_relative_splits(tmp_path):
    """Roboflow exports: no `path`, `val: ../valid/images`, images and labels under <split>/ (Ultralytics reads them)."""
    write_yolo(tmp_path / "src", n_train=1, n_val=3, size=(32, 48))
    root = tmp_path / "export"
    for kind in ("images", "labels"):
        (root / "valid" / kind).mkdir(parents=True)
        for f in (tmp_path / "src" / kind / "val").iterdir():
            (root / "valid" / kind / f.name).write_bytes(f.read_bytes())
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "../train/images", "val": "../valid/images", "nc": 4,
                                                    "names": list(SHAPES)}))
    ds = open_dataset("detection", root)
    assert [ds.image_id(i) for i in range(3)] == [f"valid/images/{i:04d}.png" for i in range(3)]
    assert len(ds.coco_gt["annotations"]) > 0
