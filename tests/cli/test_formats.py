"""`audit run` and `audit corrupt --data` on YOLO, Pascal VOC and Cityscapes layouts, recognised from the folder."""

import json

import numpy as np
from click.testing import CliRunner

from audit.results import document as results
from audit.cli.main import cli
from audit.corruptions import corrupt
from audit.io.images import read_image
from audit.datasets.synthetic import SHAPES
from tests.helpers.synthetic_formats import write_cityscapes, write_voc, write_yolo
from tests.helpers.models import yolo_style_detector

ONE_CELL = ["--corruptions", "fog", "--severities", "2", "--quiet", "--workers", "0", "--examples", "1"]


def _run(*args):
    result = CliRunner().invoke(cli, ["run", *map(str, args), *ONE_CELL])
    assert result.exit_code == 0, result.output
    return result


def test_yolo_data_yaml_audits_with_class_names_and_the_metric_note(tmp_path):
    data = write_yolo(tmp_path / "yolo", n_train=1, n_val=5, size=(48, 64), seed=2)
    model = yolo_style_detector(tmp_path / "det.onnx")
    _run(model, "--task", "detection", "--data", data, "--out", tmp_path / "a", "--limit", "4", "--skip-bad")
    doc = results.load(tmp_path / "a" / "results.json")  # schema-validated
    assert doc["dataset"]["format"] == "yolo" and doc["dataset"]["num_images"] == 4
    assert "converted" in doc["dataset"]["note"] and doc["task"]["class_names"] == list(SHAPES)
    assert doc["cells"][0]["metrics"]["bbox_AP"] is not None
    report = (tmp_path / "a" / "report.html").read_text()
    assert "metrics on this format" in report and "yolo:" in report


def test_voc_devkit_audits_with_voc_ap50_beside_coco_ap(tmp_path):
    data = write_voc(tmp_path / "voc", n_train=1, n_val=4, size=(48, 64), seed=3)
    model = yolo_style_detector(tmp_path / "det.onnx", num_classes=20)
    _run(model, "--task", "coco", "--data", data, "--out", tmp_path / "v", "--label-space", "index")
    doc = results.load(tmp_path / "v" / "results.json")
    assert doc["dataset"]["format"] == "voc" and "11-point" in doc["dataset"]["note"]
    assert doc["task"]["metrics"]["voc_AP50"]["label"].startswith("VOC AP50")
    assert all("voc_AP50" in c["metrics"] for c in doc["cells"]) and "voc_AP50" in doc["summary"]["metrics"]
    assert doc["task"]["class_names"][0] == "aeroplane"


def test_voc_devkit_with_two_years_audits_the_newest_and_says_so(tmp_path):
    """The newest year, named on the console and in the results; VOC's AP50 beside COCO AP on the console, in
    the HTML and the Markdown; --corruptions none records no severities."""
    data = write_voc(tmp_path / "voc", n_train=1, n_val=3, size=(48, 64), seed=3)
    write_voc(tmp_path / "voc", n_train=1, n_val=2, size=(48, 64), seed=4, year="2012")
    model = yolo_style_detector(tmp_path / "det.onnx", num_classes=20)
    flags = ["--task", "coco", "--label-space", "index", "--corruptions", "none", "--quiet", "--workers", "0", "--examples", "0"]
    result = CliRunner().invoke(cli, ["run", str(model), "--data", str(data), "--out", str(tmp_path / "new"), *flags])
    assert result.exit_code == 0, result.output
    assert "  data: VOC2012, the newest of VOC2007, VOC2012 (give --data " in result.output
    assert "VOC AP50 (devkit): clean P" in result.output and "box AP in %" in result.output
    doc = results.load(tmp_path / "new" / "results.json")
    assert doc["dataset"]["chosen"].startswith("VOC2012, the newest") and doc["dataset"]["num_images"] == 2
    assert doc["corruption"]["corruptions"] == [] and doc["corruption"]["severities"] == []
    assert "all points" in doc["dataset"]["note"]
    html = (tmp_path / "new" / "report.html").read_text()
    assert 'data-check="secondary-voc_AP50">VOC AP50 (devkit): clean' in html and "VOC2012, the newest" in html
    md = CliRunner().invoke(cli, ["report", str(tmp_path / "new" / "results.json"), "-o", str(tmp_path / "r.md"),
                                  "--format", "md"])
    assert md.exit_code == 0 and "- VOC AP50 (devkit): clean " in (tmp_path / "r.md").read_text()
    picked = CliRunner().invoke(cli, ["run", str(model), "--data", str(data / "VOCdevkit" / "VOC2007"),
                                      "--out", str(tmp_path / "old"), *flags])
    assert picked.exit_code == 0 and "data:" not in picked.output, picked.output
    doc = results.load(tmp_path / "old" / "results.json")
    assert doc["dataset"]["num_images"] == 3 and "chosen" not in doc["dataset"] and "11-point" in doc["dataset"]["note"]


def test_cityscapes_audits_over_19_classes(tmp_path):
    import torch

    data = write_cityscapes(tmp_path / "cs", n_train=1, n_val=3, size=(32, 64))
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 19, 1)
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 64),), str(tmp_path / "seg.onnx"), input_names=["images"],
                      output_names=["logits"], dynamic_axes={"images": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}},
                      opset_version=17, dynamo=False)
    _run(tmp_path / "seg.onnx", "--task", "segmentation", "--data", data, "--out", tmp_path / "c", "--input-size", "32", "64",
         "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25")
    doc = results.load(tmp_path / "c" / "results.json")
    assert doc["dataset"]["format"] == "cityscapes" and len(doc["task"]["class_names"]) == 19
    assert doc["cells"][0]["metrics"]["mIoU"] is not None


def test_corrupt_data_keeps_ids_and_writes_coco_ground_truth(tmp_path):
    data = write_yolo(tmp_path / "yolo", n_train=1, n_val=3, size=(32, 48))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["corrupt", "--data", str(data), "--out", str(out), "--corruptions", "fog",
                                      "--severities", "3", "--workers", "1", "--quiet", "--seed", "4"])
    assert result.exit_code == 0, result.output
    written = out / "fog" / "3" / "images" / "val" / "0001.png"
    expected = corrupt(read_image(tmp_path / "yolo" / "images" / "val" / "0001.png"), "fog", 3, seed=4,
                       image_id="images/val/0001.png")
    np.testing.assert_array_equal(read_image(written), expected)  # the pixels audit run makes for that image
    gt = json.loads((out / "annotations" / "instances.json").read_text())
    assert [im["file_name"] for im in gt["images"]] == [f"images/val/{i:04d}.png" for i in range(3)]
    nothing = CliRunner().invoke(cli, ["corrupt", "--data", str(tmp_path / "out" / "fog"), "--out", str(tmp_path / "o2")])
    assert nothing.exit_code == 1 and "looked for" in nothing.output and len(nothing.output.strip().splitlines()) == 1
