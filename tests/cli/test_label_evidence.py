"""`audit run` / `audit inspect` where a model's labels meet a dataset's categories: the evidence that
decides a label space, subset datasets (detection and segmentation), and the count of every
detection left out of the evaluation (results.json `model.label_mapping.predictions`, the console).

The detectors answer every image with fixed detections (`constant_detector`), so which reading of
their labels is right, and what it scores, is known exactly.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from audit.cli.main import cli
from audit.datasets.voc import VOC_CLASSES
from tests.helpers.models import constant_detector

H, W = 64, 96
CELLS = 2  # clean + contrast 1


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def run(model, task, data, out, *extra, report=False):
    return invoke("run", model, "--task", task, "--data", data, "--out", out, "--corruptions", "contrast",
                  "--severities", "1", "--quiet", "--workers", "0", "--examples", "0",
                  *([] if report else ["--no-report"]), *extra)


def results(out):
    return json.loads((out / "results.json").read_text())


def write_voc(root, objects, n_images=3):
    """VOCdevkit/VOC2007 (split test) where every image holds `objects` [(class name, 1-based xyxy)]."""
    base = root / "VOCdevkit" / "VOC2007"
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (base / d).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n_images):
        body = "".join(f"<object><name>{name}</name><difficult>0</difficult><bndbox>"
                       + "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
                       + "</bndbox></object>" for name, box in objects)
        (base / "Annotations" / f"{i:06d}.xml").write_text(
            f"<annotation><filename>{i:06d}.jpg</filename><size><width>{W}</width><height>{H}</height>"
            f"<depth>3</depth></size>{body}</annotation>")
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(base / "JPEGImages" / f"{i:06d}.jpg")
    (base / "ImageSets" / "Main" / "test.txt").write_text("".join(f"{i:06d}\n" for i in range(n_images)))
    return root


PLANE, DOG = (5, 5, 40, 30), (50, 20, 90, 60)  # VOC's 1-based inclusive boxes


def model_box(box):
    """A VOC box as a model gives it: 0-based continuous pixels."""
    return (box[0] - 1, box[1] - 1, box[2], box[3])


def test_a_confident_label_0_on_voc_reads_the_labels_as_0_based_indices(tmp_path):
    """Labels 0 (aeroplane) and 11 (dog) of VOC's 20 classes: label 0 is no background+index label and no
    category id, so the labels are 0-based indices and every detection counts."""
    data = write_voc(tmp_path / "voc", [("aeroplane", PLANE), ("dog", DOG)])
    model = constant_detector(tmp_path / "det.onnx", [model_box(PLANE), model_box(DOG)],
                              [VOC_CLASSES.index("aeroplane"), VOC_CLASSES.index("dog")], [0.9, 0.8])
    result = run(model, "detection", data, tmp_path / "out")
    assert result.exit_code == 0, result.output
    doc = results(tmp_path / "out")
    mapping = doc["model"]["label_mapping"]
    assert (mapping["space"], mapping["source"]) == ("index", "inferred") and "label 0" in mapping["reason"]
    assert doc["cells"][0]["metrics"]["bbox_AP"] == pytest.approx(1.0)
    assert doc["cells"][0]["metrics"]["voc_AP50"] == pytest.approx(1.0)
    assert mapping["predictions"] == {"total": 2 * 3 * CELLS, "kept": 2 * 3 * CELLS, "background": 0,
                                      "unmatched_class": 0, "out_of_range": 0, "cells_counted": CELLS, "cells": CELLS}
    assert "left out" not in result.output


def test_detections_left_out_are_counted_and_said(tmp_path):
    """A background+index detector (label 12 = dog) with a faint label 0 (under the evidence score, so
    it decides nothing): the label-0 detections are left out as background, counted, and said."""
    data = write_voc(tmp_path / "voc", [("dog", DOG)])
    model = constant_detector(tmp_path / "det.onnx", [model_box(DOG), model_box(PLANE)], [12, 0], [0.8, 0.01])
    result = run(model, "detection", data, tmp_path / "out")
    assert result.exit_code == 0, result.output
    mapping = results(tmp_path / "out")["model"]["label_mapping"]
    assert (mapping["space"], mapping["source"]) == ("index+background", "inferred")
    n = 3 * CELLS
    counts = mapping["predictions"]
    assert counts["total"] == 2 * n and counts["kept"] == n and counts["background"] == n
    assert counts["total"] == counts["kept"] + counts["background"] + counts["unmatched_class"] + counts["out_of_range"]
    assert f"note: {n} of {2 * n} detections (all cells) left out: {n} background" in result.output
    assert "--label-space" in result.output  # label 0 under an inferred background+index: say how to change it
    assert results(tmp_path / "out")["schema_version"] == "1.5"


def test_labels_outside_a_given_space_are_counted_not_a_crash(tmp_path):
    data = write_voc(tmp_path / "voc", [("dog", DOG)])
    model = constant_detector(tmp_path / "det.onnx", [model_box(DOG), model_box(PLANE)], [11, 25], [0.9, 0.9])
    result = run(model, "detection", data, tmp_path / "out", "--label-space", "index")
    assert result.exit_code == 0, result.output
    counts = results(tmp_path / "out")["model"]["label_mapping"]["predictions"]
    assert counts["out_of_range"] == 3 * CELLS and counts["kept"] == 3 * CELLS
    assert "with labels outside the 'index' label space" in result.output
    assert results(tmp_path / "out")["cells"][0]["metrics"]["bbox_AP"] == pytest.approx(1.0)


def test_thin_label_evidence_stops_with_the_flag(tmp_path):
    """Only faint detections: nothing rules out 0-based indices, so the audit does not guess."""
    data = write_voc(tmp_path / "voc", [("dog", DOG)])
    model = constant_detector(tmp_path / "det.onnx", [model_box(DOG)], [12], [0.02])
    result = run(model, "detection", data, tmp_path / "out")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "--label-space index+background" in result.output
    assert "no labels were predicted on the probe images with score >= 0.05" in result.output
    flagged = run(model, "detection", data, tmp_path / "flag", "--label-space", "index+background")
    assert flagged.exit_code == 0, flagged.output


# --- subset datasets ---------------------------------------------------------------------------

SUBSET = ((1, "person", (4, 4, 40, 40)), (3, "car", (50, 10, 90, 60)), (18, "dog", (20, 40, 60, 63)))


def torchvision_coco_names():
    return pytest.importorskip("torchvision.models.detection").FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]


def write_coco_subset(root, extra=(), n_images=2, size=(H, W)):
    """COCO layout holding 3 of COCO's 80 classes (with COCO's ids), plus `extra` categories."""
    (root / "val2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    rng = np.random.default_rng(1)
    images, anns = [], []
    for i in range(n_images):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / "val2017" / f"{i}.png")
        images.append({"id": i + 1, "file_name": f"{i}.png", "height": size[0], "width": size[1]})
        for cat, _, (x0, y0, x1, y1) in SUBSET:
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cat, "bbox": [x0, y0, x1 - x0, y1 - y0],
                         "area": float((x1 - x0) * (y1 - y0)), "iscrowd": 0})
    cats = [{"id": c, "name": n, "supercategory": "thing"} for c, n, _ in SUBSET] + list(extra)
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                                             "categories": cats}))
    return root


def coco_detector(path):
    """Person, car and dog where they are, and an airplane (COCO id 5) the dataset does not hold."""
    boxes = [box for _, _, box in SUBSET] + [(60, 2, 94, 20)]
    return constant_detector(path, boxes, [1, 3, 18, 5], [0.9, 0.8, 0.7, 0.6])


def write_config(path, **keys):
    path.write_text(json.dumps({"task": "detection", "output_convention": "torchvision_detection", "resize": "none",
                                "mean": [0, 0, 0], "std": [1, 1, 1], **keys}))
    return path


@pytest.mark.parametrize("how", ["names", "table"])
def test_a_coco_detector_on_three_of_its_classes(tmp_path, how):
    names = torchvision_coco_names()
    keys = ({"class_names": names, "label_space": "names"} if how == "names" else
            {"label_to_category": [None if n in ("__background__", "N/A") else k for k, n in enumerate(names)]})
    config = write_config(tmp_path / "spec.json", **keys)
    data = write_coco_subset(tmp_path / "coco")
    model = coco_detector(tmp_path / "det.onnx")
    result = run(model, "coco", data, tmp_path / "out", "--model-config", config, report=True)
    assert result.exit_code == 0, result.output
    doc = results(tmp_path / "out")
    mapping = doc["model"]["label_mapping"]
    assert doc["cells"][0]["metrics"]["bbox_AP"] == pytest.approx(1.0)  # the airplane counts against nothing
    assert len(mapping["unmatched_model"]) == 77 and mapping["unmatched_dataset"] == []
    n = 2 * CELLS  # images x cells
    assert mapping["predictions"]["unmatched_class"] == n and mapping["predictions"]["kept"] == 3 * n
    assert mapping["predictions"]["total"] == 4 * n
    assert "note: 77 model classes the dataset lacks left out: " in result.output
    assert f"note: {n} of {4 * n} detections (all cells) left out: {n} of model classes the dataset lacks" in result.output
    html = (tmp_path / "out" / "report.html").read_text()
    assert "model classes the dataset lacks, left out (77)" in html and f"{n} of {4 * n} (unmatched class {n})" in html


def test_an_ultralytics_coco_model_on_three_of_its_classes(tmp_path):
    """Ultralytics metadata naming COCO's 80 classes, no flags: mapped by name, the 77 others left out."""
    from tests.tasks.test_label_spaces import yolo_raw_detector

    coco80 = [n for n in torchvision_coco_names() if n not in ("__background__", "N/A")]
    data = write_coco_subset(tmp_path / "coco", size=(128, 128))  # the network input: no letterbox
    boxes = [((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0) for _, _, (x0, y0, x1, y1) in SUBSET] + [(80, 80, 20, 20)]
    classes = [coco80.index(n) for _, n, _ in SUBSET] + [coco80.index("airplane")]
    model = yolo_raw_detector(tmp_path / "yolo.onnx", boxes, classes, 80, coco80)
    result = run(model, "coco", data, tmp_path / "out")
    assert result.exit_code == 0, result.output
    doc = results(tmp_path / "out")
    mapping = doc["model"]["label_mapping"]
    assert (mapping["space"], mapping["source"]) == ("names", "metadata") and len(mapping["unmatched_model"]) == 77
    assert doc["cells"][0]["metrics"]["bbox_AP"] == pytest.approx(1.0)
    n = 2 * CELLS
    assert (mapping["predictions"]["total"], mapping["predictions"]["unmatched_class"]) == (4 * n, n)
    assert "note: 77 model classes the dataset lacks left out: bicycle, motorcycle, airplane, " in result.output


def test_dataset_categories_the_model_cannot_predict_stay_an_error_and_inspect_shows_them(tmp_path):
    config = write_config(tmp_path / "spec.json", class_names=torchvision_coco_names(), label_space="names")
    data = write_coco_subset(tmp_path / "coco", extra=[{"id": 95, "name": "unicorn", "supercategory": "myth"}])
    model = coco_detector(tmp_path / "det.onnx")
    refused = run(model, "coco", data, tmp_path / "a", "--model-config", config)
    assert refused.exit_code == 1 and "dataset categories the model does not name: unicorn" in refused.output
    assert "person" not in refused.output  # model classes the dataset lacks are no problem
    allowed = run(model, "coco", data, tmp_path / "b", "--model-config", config, "--ignore-unmatched-labels")
    assert allowed.exit_code == 0, allowed.output
    assert "note: 1 dataset category the model does not name left out (--ignore-unmatched-labels): unicorn" in allowed.output
    # inspect exists to show the mapping: it shows it, and lists what an audit would stop on
    shown = invoke("inspect", model, "--task", "coco", "--data", data, "--model-config", config)
    assert shown.exit_code == 0, shown.output
    assert "label mapping: names" in shown.output and "label 1 'person' -> 1 'person'" in shown.output
    assert "model classes left out (77)" in shown.output
    assert "label mapping problems" in shown.output and "does not name: unicorn" in shown.output


def seg_logits_model(path, channels, winner):
    """A segmenter whose logits are a constant per class (a 1x1 conv, weights 0): class `winner` everywhere."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    bias = np.zeros(channels, np.float32)
    bias[winner] = 1.0
    inits = [numpy_helper.from_array(np.zeros((channels, 3, 1, 1), np.float32), "w"), numpy_helper.from_array(bias, "b")]
    graph = helper.make_graph([helper.make_node("Conv", ["images", "w", "b"], ["logits"])], "seg", [
        helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", channels, "h", "w"])], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_a_segmenter_knowing_more_classes_than_the_dataset(tmp_path, ade_dir):
    """Classes the dataset lacks are left out and listed; pixels the model gives them count as wrong,
    and the rest is scored as a model of the dataset's own classes would be."""
    names = ["sky", "tree", "cross", "circle", "square", "triangle"]  # the dataset: circle, square, triangle, cross
    config = tmp_path / "seg.json"
    config.write_text(json.dumps({"task": "segmentation", "output_convention": "segmentation_logits", "resize": "none",
                                  "mean": [0, 0, 0], "std": [1, 1, 1], "class_names": names}))
    wide = seg_logits_model(tmp_path / "wide.onnx", 6, names.index("circle"))
    own = seg_logits_model(tmp_path / "own.onnx", 4, 0)  # the dataset's 4 classes, circle first
    result = run(wide, "ade20k", ade_dir, tmp_path / "wide", "--model-config", config)
    assert result.exit_code == 0, result.output
    assert "note: 2 model classes the dataset lacks left out: sky, tree; their pixels count as wrong" in result.output
    reference = run(own, "ade20k", ade_dir, tmp_path / "own", "--mean", "0", "0", "0", "--std", "1", "1", "1")
    assert reference.exit_code == 0, reference.output
    doc, ref = results(tmp_path / "wide"), results(tmp_path / "own")
    assert doc["model"]["label_mapping"]["unmatched_model"] == ["sky", "tree"]
    assert doc["cells"][0]["metrics"]["mIoU"] > 0
    assert [c["metrics"] for c in doc["cells"]] == [c["metrics"] for c in ref["cells"]]
    sky = seg_logits_model(tmp_path / "sky.onnx", 6, names.index("sky"))
    assert run(sky, "ade20k", ade_dir, tmp_path / "sky", "--model-config", config).exit_code == 0
    assert results(tmp_path / "sky")["cells"][0]["metrics"]["mIoU"] == 0.0  # every pixel a class it lacks: wrong


# --- the label table names each label's own class (every label space: tests/tasks/test_labels.py) ---

def test_the_label_table_names_each_labels_own_class(tmp_path, coco_dir):
    """class_names without the background slot beside label_to_category [null, 1, 3, 7, 12] (the demo
    detector's metadata): label 1 is 'circle', not 'square'."""
    config = write_config(tmp_path / "spec.json", class_names=["circle", "square", "triangle", "cross"],
                          label_to_category=[None, 1, 3, 7, 12])
    model = constant_detector(tmp_path / "det.onnx", [(1, 1, 20, 20)], [1], [0.9])
    result = run(model, "coco", coco_dir, tmp_path / "out", "--model-config", config, report=True)
    assert result.exit_code == 0, result.output
    table = results(tmp_path / "out")["model"]["label_mapping"]["table"]
    assert [(r["label"], r["model_name"], r["category"]) for r in table] == [
        (0, None, None), (1, "circle", "circle"), (2, "square", "square"), (3, "triangle", "triangle"), (4, "cross", "cross")]
    html = (tmp_path / "out" / "report.html").read_text()
    assert "0 -&gt; none; 1 circle -&gt; 1 circle; 2 square -&gt; 3 square" in html
