"""The Pascal VOC reader and VOC's own AP50 (11-point and all-point) on a case computed by hand."""

import numpy as np
import pytest
from PIL import Image

from audit.datasets import open_dataset
from audit.errors import DatasetError
from audit.metrics import make_metric, metric_names
from audit.metrics.voc import voc_ap
from tests.helpers.synthetic_formats import write_voc
from audit.tasks.types import Detections

DOG, CAT = 12, 8  # COCO category ids of the VOC classes: devkit order, 1-based


def _obj(name, box, difficult=0):
    b = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
    return f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>{b}</bndbox></object>"


def _tiny_voc(root, year):
    """Image A: dog (1,1,10,10), difficult dog (21,21,30,30). Image B: dog (1,1,10,10), cat (11,11,30,30).
    Boxes are VOC's 1-based inclusive pixels."""
    base = root / "VOCdevkit" / f"VOC{year}"
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (base / d).mkdir(parents=True)
    objects = {"a": _obj("dog", (1, 1, 10, 10)) + _obj("dog", (21, 21, 30, 30), 1),
               "b": _obj("dog", (1, 1, 10, 10)) + _obj("cat", (11, 11, 30, 30))}
    for stem, body in objects.items():
        (base / "Annotations" / f"{stem}.xml").write_text(f"<annotation><filename>{stem}.jpg</filename>{body}</annotation>")
        Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(base / "JPEGImages" / f"{stem}.jpg")
    (base / "ImageSets" / "Main" / ("test.txt" if year == "2007" else "val.txt")).write_text("a\nb\n")
    return root


# (image, score, category, xyxy box in 0-based continuous pixels, as a model gives them)
DETECTIONS = [
    ("a", 0.9, DOG, (0, 0, 10, 10)),    # the dog of A: true positive
    ("a", 0.8, DOG, (0, 0, 10, 10)),    # the same dog again: a duplicate, false positive
    ("a", 0.7, DOG, (20, 20, 30, 30)),  # the difficult dog: neither
    ("b", 0.6, DOG, (40, 30, 50, 40)),  # nothing there: false positive
    ("b", 0.5, DOG, (0, 0, 10, 10)),    # the dog of B: true positive
    ("a", 0.95, CAT, (10, 10, 30, 30)),  # no cat in A: false positive
    ("b", 0.4, CAT, (10, 10, 30, 25)),  # the cat of B, IoU 300 / 400 = .75: true positive
]
# dog (2 non-difficult): by score TP, FP, -, FP, TP -> recall .5 .5 .5 .5 1, precision 1 .5 .5 1/3 .5
#   all points: envelope 1 up to recall .5, then .5 up to 1: AP = .5 x 1 + .5 x .5 = .75
#   11-point: recall thresholds 0, .1, ..., .5 reach precision 1 (6 points), .6 ... 1 only .5 (5 points):
#   AP = (6 x 1 + 5 x .5) / 11 = 8.5 / 11
# cat (1): FP then TP -> recall 0, 1 and precision 0, .5: AP = .5 both ways
EXPECTED = {"2012": (0.75 + 0.5) / 2, "2007": (8.5 / 11 + 0.5) / 2}


@pytest.mark.parametrize("year", ["2007", "2012"])
def test_voc_ap50_matches_the_hand_computation(tmp_path, year):
    ds = open_dataset("detection", _tiny_voc(tmp_path, year))
    assert ds.format == "voc" and ds.eleven_point == (year == "2007") and len(ds.class_names) == 20
    assert metric_names("detection", False, ds)[-1] == "voc_AP50"
    crowd = [a for a in ds.coco_gt["annotations"] if a["iscrowd"]]
    assert [a["bbox"] for a in crowd] == [[20, 20, 10, 10]]  # difficult -> crowd; x = xmin - 1, w = xmax - xmin + 1
    metric = make_metric(ds)
    for i in range(len(ds)):
        rows = [d for d in DETECTIONS if d[0] == ds.image_id(i)[0]]
        boxes = np.array([d[3] for d in rows], np.float32)
        cats = np.array([d[2] for d in rows])
        metric.update(i, Detections(boxes=boxes, scores=np.array([d[1] for d in rows], np.float32), labels=cats,
                                    category_ids=cats))
    result = metric.compute()
    assert result["voc_AP50"] == pytest.approx(EXPECTED[year], abs=1e-9)
    assert result["bbox_AP50"] is not None  # COCO's AP50 beside it, on the same detections
    restored = make_metric(ds)
    restored.load_state(metric.state())  # a resumed cell gives the same figure
    assert restored.compute()["voc_AP50"] == pytest.approx(EXPECTED[year], abs=1e-9)
    twice = metric.compute_on(np.array([0, 1, 0, 1]))  # a bootstrap draw with every image twice: same precision curve
    assert twice["voc_AP50"] == pytest.approx(EXPECTED[year], abs=1e-9)


def test_voc_ap_interpolations():
    recall, precision = np.array([0.2, 0.4, 0.4, 0.8]), np.array([1.0, 0.5, 0.4, 0.5])
    # all points: envelope 1 on (0, .2], .5 on (.2, .8]: .2 x 1 + .6 x .5 = .5
    assert voc_ap(recall, precision, eleven_point=False) == pytest.approx(0.5)
    # 11-point: t = 0, .1, .2 -> 1; t = .3 ... .8 -> .5 (6 points); t = .9, 1 -> 0: (3 + 3) / 11
    assert voc_ap(recall, precision, eleven_point=True) == pytest.approx(6 / 11)


def test_layouts_years_and_hostile_xml(tmp_path):
    root = write_voc(tmp_path / "one", n_train=2, n_val=3, size=(32, 48))
    assert len(open_dataset("coco", root)) == 3
    assert len(open_dataset("coco", root / "VOCdevkit" / "VOC2007")) == 3
    write_voc(tmp_path / "one", n_train=1, n_val=1, size=(32, 48), year="2012")
    newest = open_dataset("coco", root)  # a devkit with several years: the newest, saying so
    assert newest.root.name == "VOC2012" and not newest.eleven_point and len(newest) == 1
    assert newest.chosen == (f"VOC2012, the newest of VOC2007, VOC2012 (give --data {root / 'VOCdevkit' / 'VOC2007'} "
                             "for another)")
    assert open_dataset("coco", root / "VOCdevkit" / "VOC2007").chosen is None
    base = root / "VOCdevkit" / "VOC2012"
    xml = sorted((base / "Annotations").glob("2008_*.xml"))[0]
    xml.write_text('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxx"><!ENTITY y "&x;&x;&x;&x;">]>'
                   "<annotation><object><name>&y;</name></object></annotation>")
    with pytest.raises(DatasetError, match="EntitiesForbidden"):
        open_dataset("coco", base)
    xml.write_text("<annotation><object><name>unicorn</name></object></annotation>")
    with pytest.raises(DatasetError, match="'unicorn' is not one of the 20 VOC classes"):
        open_dataset("coco", base)
    (base / "ImageSets" / "Main" / "test.txt").write_text("../../etc/passwd\n")
    with pytest.raises(DatasetError, match="climbs out"):
        open_dataset("coco", base)


def test_unrecognised_detection_folder_lists_the_layouts(tmp_path):
    with pytest.raises(DatasetError, match="looked for a YOLO data.yaml .* Pascal VOC .* COCO"):
        open_dataset("detection", tmp_path)
