"""`audit inspect`: what is read from a model and where each value came from, before a long run."""

import json

from click.testing import CliRunner

from audit.cli.main import cli
from tests.helpers.models import constant_detector


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_inspect_shows_the_spec_its_origins_and_the_label_mapping(tmp_path, coco_dir):
    model = constant_detector(tmp_path / "det.onnx", [(1, 1, 20, 20)], [2], [0.9])
    result = invoke("inspect", model, "--task", "coco", "--data", coco_dir)
    assert result.exit_code == 0, result.output
    assert "output_convention  torchvision_detection" in result.output and "[inferred]" in result.output
    # label 2 is no category id of the synthetic set (1, 3, 7, 12): only background + index allows it
    assert "label mapping: index+background (inferred: " in result.output
    assert "label 2 -> 3 'square'" in result.output
    report = json.loads(invoke("inspect", model, "--task", "coco", "--data", coco_dir, "--label-space", "category-id",
                               "--json").output)
    assert report["origins"]["label_space"] == "flag" and report["origins"]["task"] == "flag"
    assert report["label_mapping"]["space"] == "category-id" and report["outputs"][1]["dtype"] == "int64"


def test_inspect_without_a_task_or_dataset_says_what_to_pass(tmp_path, coco_dir):
    model = constant_detector(tmp_path / "det.onnx", [(1, 1, 20, 20)], [1], [0.9])
    result = invoke("inspect", model)
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "give --task" in result.output
    result = invoke("inspect", model, "--task", "coco")
    assert result.exit_code == 0 and "give --task and --data to see it" in result.output
