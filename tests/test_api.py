"""End-to-end audits through `run_audit` on tiny ONNX models and synthetic data in the real formats."""

import json
import shutil

import numpy as np
import pytest

from audit.results import document as results
from audit.api import AuditConfig, run_audit
from audit.errors import ConfigError, ModelError

from .conftest import NORM


def config(model, task, data, out, **kw):
    base = dict(model=str(model), task=task, data=str(data), out=str(out), corruptions="gaussian_noise,contrast",
                severities=[1, 3], workers=0, progress=False, examples=1, overrides=dict(NORM))
    base.update(kw)
    return AuditConfig(**base)


def primary_numbers(doc):
    return [(c["corruption"], c["severity"], c["metrics"]) for c in doc["cells"]]


def test_classification_audit_writes_a_valid_document(classifier_onnx, cifar_dir, tmp_path):
    result = run_audit(config(classifier_onnx, "cifar10", cifar_dir, tmp_path / "out"))
    doc = results.load(tmp_path / "out" / "results.json")  # schema-validated
    top1 = doc["summary"]["metrics"]["top1"]
    assert top1["P"] > 0.6, "the helper classifier learned the shapes"
    assert top1["cells"] == 4
    cells = {(c["corruption"], c["severity"]): c["metrics"]["top1"] for c in doc["cells"]}
    assert top1["mPC"] == pytest.approx(np.mean([v for k, v in cells.items() if k[0] != "clean"]))
    assert top1["rPC"] == pytest.approx(top1["mPC"] / top1["P"])
    assert doc["corruption"]["profile"] == "cifar-10-c" and doc["dataset"]["num_images"] == 96
    assert set(top1["per_group"]) == {"noise", "digital"}
    assert (tmp_path / "out" / "cells.csv").read_text().count("\n") == 6
    assert all((tmp_path / "out" / e["image"]).is_file() for e in doc["examples"])
    assert result.verdict["status"] == "none"


def test_mpc_is_the_mean_of_evaluated_cells_only(classifier_onnx, cifar_dir, tmp_path):
    doc = run_audit(config(classifier_onnx, "cifar10", cifar_dir, tmp_path / "o", severities=[2])).document
    fig = doc["summary"]["metrics"]["top1"]
    evaluated = [c["metrics"]["top1"] for c in doc["cells"] if c["corruption"] != "clean"]
    assert fig["cells"] == 2 and fig["mPC"] == pytest.approx(np.mean(evaluated))  # not divided by 5


def test_same_seed_same_numbers_across_workers_and_batch_sizes(classifier_onnx, cifar_dir, tmp_path):
    a = run_audit(config(classifier_onnx, "cifar10", cifar_dir, tmp_path / "a", workers=0, batch_size=1)).document
    b = run_audit(config(classifier_onnx, "cifar10", cifar_dir, tmp_path / "b", workers=2, batch_size=16)).document
    assert primary_numbers(a) == primary_numbers(b)
    c = run_audit(config(classifier_onnx, "cifar10", cifar_dir, tmp_path / "c", seed=1)).document
    assert primary_numbers(a) != primary_numbers(c)  # noise cells change with the seed


def test_resume_equals_uninterrupted(classifier_onnx, cifar_dir, tmp_path):
    full = run_audit(config(classifier_onnx, "cifar10", cifar_dir, tmp_path / "full")).document
    partial = tmp_path / "partial"
    shutil.copytree(tmp_path / "full", partial)
    # an interrupted run: two cells never finished, no results yet
    for name in ("contrast-s3", "gaussian_noise-s1"):
        (partial / "cells" / f"{name}.json").unlink()
    (partial / "results.json").unlink()
    with pytest.raises(ConfigError, match="use --resume"):
        run_audit(config(classifier_onnx, "cifar10", cifar_dir, partial))
    resumed = run_audit(config(classifier_onnx, "cifar10", cifar_dir, partial, resume=True)).document
    assert primary_numbers(resumed) == primary_numbers(full)
    assert resumed["summary"] == full["summary"]
    with pytest.raises(ConfigError, match="different audit .*seed"):
        run_audit(config(classifier_onnx, "cifar10", cifar_dir, partial, resume=True, seed=9))


def test_limit_gives_a_seeded_subset_with_confidence_intervals(classifier_onnx, cifar_dir, tmp_path):
    doc = run_audit(config(classifier_onnx, "cifar10", cifar_dir, tmp_path / "l", limit=40, bootstrap=200)).document
    fig = doc["summary"]["metrics"]["top1"]
    assert doc["dataset"]["num_images"] == 40 and doc["dataset"]["limit"] == 40
    lo, hi = fig["ci"]["mPC"]
    assert lo <= fig["mPC"] <= hi and hi - lo > 0
    assert fig["ci"]["P"][0] <= fig["P"] <= fig["ci"]["P"][1]


def test_segmentation_audit(segmenter_onnx, ade_dir, tmp_path):
    doc = run_audit(config(segmenter_onnx, "ade20k", ade_dir, tmp_path / "s", corruptions="fog")).document
    fig = doc["summary"]["metrics"]["mIoU"]
    assert fig["P"] > 0.3 and fig["cells"] == 2
    assert doc["examples"][0]["prediction"]["type"] == "label_map"


def test_foreign_torchvision_detector_audits(detector_onnx, coco_dir, tmp_path):
    # a fine-tuned torchvision detector says nothing of its label space, and the synthetic ids (1, 3, 7, 12) leave
    # both readings open on a random model's labels: the audit stops and names the flag ...
    with pytest.raises(ModelError, match="--label-space category-id .* --label-space index\\+background"):
        run_audit(config(detector_onnx, "coco", coco_dir, tmp_path / "e", overrides={}))
    # ... which decides, and is written into the results
    doc = run_audit(config(detector_onnx, "coco", coco_dir, tmp_path / "d", corruptions="contrast", severities=[5],
                           overrides={"label_space": "index+background"})).document
    assert doc["model"]["metadata"]["output_convention"] == "torchvision_detection"
    mapping = doc["model"]["label_mapping"]
    assert mapping["space"] == "index+background" and mapping["source"] == "flag"
    assert [(r["label"], r["category_id"]) for r in mapping["table"]] == [(0, None), (1, 1), (2, 3), (3, 7), (4, 12)]
    assert set(doc["cells"][0]["metrics"]) >= {"bbox_AP", "bbox_AP50", "bbox_AR100"}
    assert doc["examples"][0]["prediction"]["type"] == "boxes"


def test_model_that_does_not_fit_the_task(classifier_onnx, ade_dir, tmp_path):
    with pytest.raises(ModelError, match="do not identify a segmentation convention"):
        run_audit(config(classifier_onnx, "ade20k", ade_dir, tmp_path / "x"))


def test_gate_verdicts(classifier_onnx, cifar_dir, tmp_path):
    passing = run_audit(config(classifier_onnx, "cifar10", cifar_dir, tmp_path / "p", fail_under_rpc=0.01)).document
    assert passing["verdict"]["status"] == "pass"
    failing = run_audit(config(classifier_onnx, "cifar10", cifar_dir, tmp_path / "f", fail_under_mpc=0.999)).document
    assert failing["verdict"]["status"] == "fail" and "mPC" in failing["verdict"]["reasons"][0]
    assert json.loads((tmp_path / "f" / "results.json").read_text())["verdict"]["status"] == "fail"


def test_foreign_yolo_style_detector_audits(tmp_path, coco_dir):
    from tests.helpers.models import yolo_style_detector

    model = yolo_style_detector(tmp_path / "yolo.onnx")
    doc = run_audit(config(model, "coco", coco_dir, tmp_path / "y", corruptions="fog", severities=[2], overrides={})).document
    meta = doc["model"]["metadata"]
    assert meta["output_convention"] == "yolov8" and meta["resize"] == "letterbox" and meta["input_size"] == [64, 64]
    assert doc["cells"][0]["metrics"]["bbox_AP"] is not None
    shapes = {"circle", "square", "triangle", "cross"}
    boxes, truth = doc["examples"][0]["prediction"], doc["examples"][0]["ground_truth"]
    assert boxes["type"] == "boxes" and boxes["labels"] and len(boxes["labels"]) == len(boxes["boxes"])
    assert set(boxes["labels"]) <= shapes  # class indices of the raw output mapped to the dataset's names
    assert truth["labels"] and set(truth["labels"]) <= shapes and truth["scores"] == [1.0] * len(truth["labels"])
