"""One model-spec resolution through the CLI: each key from the first source that sets it (flag,
--model-config, metadata, the graph, the convention's contract, the benchmark default), partial
sources, where each value came from, and the matrix: every built-in output convention named by
metadata, by --model-config or by flag gives bit-identical cells on the same model and data.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from audit.datasets import synthetic
from audit.cli.main import cli
from audit.spec.model import OUTPUT_CONVENTIONS
from tests.conftest import NORM
from tests.helpers import conventions

NAMES = list(synthetic.SHAPES)  # every test model's class k is shape k
QUICK = ["--corruptions", "contrast", "--severities", "3", "--workers", "0", "--examples", "0", "--no-report", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def audit(model, task, data, out, *flags):
    """`audit run` on a few images and one corruption cell; the results document."""
    result = invoke("run", model, "--task", task, "--data", data, "--out", out, *QUICK, *flags)
    assert result.exit_code == 0, result.output
    return json.loads((out / "results.json").read_text()), result.output


def cells(doc):
    return [{k: v for k, v in c.items() if k != "seconds"} for c in doc["cells"]]


def spec_values(doc):
    return {k: v for k, v in doc["model"]["metadata"].items() if k not in ("origins", "provenance")}


def write_config(path, **keys):
    path.write_text(json.dumps(keys))
    return path


# -- a config keeps the convention's input contract ---------------------------------------------------

def test_a_config_naming_torchvision_detection_brings_its_input_contract(tmp_path, coco_dir):
    """A torchvision-format detector described by --model-config (task, output_convention, class_names,
    label_space): the graph normalises inside, so it is fed [0, 1] pixels at their own size, as when the
    convention is named by flag, and the results say the convention set them."""
    model = conventions.detector(tmp_path / "det.onnx", "torchvision_detection", coco_dir)
    config = write_config(tmp_path / "spec.json", task="detection", output_convention="torchvision_detection",
                          class_names=NAMES, label_space="names")
    doc, _ = audit(model, "coco", coco_dir, tmp_path / "config", "--model-config", config)
    meta = doc["model"]["metadata"]
    assert (meta["resize"], meta["mean"], meta["std"]) == ("none", [0, 0, 0], [1, 1, 1])
    assert {meta["origins"][k] for k in ("resize", "mean", "std", "channel_order")} == {"convention"}
    assert meta["origins"]["output_convention"] == meta["origins"]["class_names"] == "model-config"
    assert doc["model"]["spec_source"]["defaulted"] == []
    by_flag, _ = audit(model, "coco", coco_dir, tmp_path / "flag", "--output-convention", "torchvision_detection",
                       "--label-space", "names", "--class-names", ",".join(NAMES))
    assert cells(doc) == cells(by_flag) and doc["cells"][0]["metrics"]["bbox_AP"] > 0
    # the model is fed what the contract says: ImageNet-normalised pixels give another AP
    imagenet, _ = audit(model, "coco", coco_dir, tmp_path / "imagenet", "--model-config", config,
                        "--mean", "0.485", "0.456", "0.406", "--std", "0.229", "0.224", "0.225")
    assert imagenet["cells"][0]["metrics"]["bbox_AP"] != doc["cells"][0]["metrics"]["bbox_AP"]


# -- a partial config ----------------------------------------------------------------------------------

def test_a_config_with_only_mean_and_std_equals_the_same_values_as_flags(tmp_path, classifier_onnx):
    data = synthetic.write_image_folder(tmp_path / "folder", n_per_class=2, size=32, seed=1)
    config = write_config(tmp_path / "norm.json", mean=NORM["mean"], std=NORM["std"])
    doc, _ = audit(classifier_onnx, "classification", data, tmp_path / "config", "--model-config", config)
    origins = doc["model"]["metadata"]["origins"]
    assert origins["mean"] == origins["std"] == "model-config"
    assert origins["input_size"] == "inferred" and origins["output_convention"] == "inferred"  # read from the graph
    assert origins["resize"] == "default" and "mean" not in doc["model"]["spec_source"]["defaulted"]
    flags = ("--mean", *NORM["mean"], "--std", *NORM["std"])
    by_flag, _ = audit(classifier_onnx, "classification", data, tmp_path / "flag", *flags)
    assert cells(doc) == cells(by_flag) and spec_values(doc) == spec_values(by_flag)
    # the flag wins over the config for the key both give
    other = write_config(tmp_path / "other.json", mean=[0.1, 0.1, 0.1], std=NORM["std"])
    won, _ = audit(classifier_onnx, "classification", data, tmp_path / "won", "--model-config", other, "--mean", *NORM["mean"])
    assert won["model"]["metadata"]["mean"] == list(NORM["mean"]) and won["model"]["metadata"]["origins"]["mean"] == "flag"
    assert won["model"]["metadata"]["origins"]["std"] == "model-config" and cells(won) == cells(doc)


def test_inspect_takes_the_model_flags_of_run(tmp_path, classifier_onnx):
    config = write_config(tmp_path / "norm.json", mean=NORM["mean"], std=NORM["std"])
    shown = invoke("inspect", classifier_onnx, "--task", "cifar10", "--model-config", config, "--std", 0.5, 0.5, 0.5,
                   "--resize", "fixed", "--interpolation", "bicubic", "--json")
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["spec"]["mean"] == list(NORM["mean"]) and report["spec"]["std"] == [0.5, 0.5, 0.5]
    assert report["origins"]["mean"] == "model-config" and report["origins"]["std"] == "flag"
    assert report["origins"]["interpolation"] == "flag" and report["spec"]["interpolation"] == "bicubic"
    assert report["origins"]["input_size"] == "inferred" and report["spec"]["input_size"] == [32, 32]


def test_a_config_naming_another_task_is_a_one_line_error(tmp_path, coco_dir):
    model = conventions.detector(tmp_path / "det.onnx", "torchvision_detection", coco_dir)
    config = write_config(tmp_path / "spec.json", task="segmentation")
    result = invoke("inspect", model, "--task", "coco", "--model-config", config)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "segmentation model (model-config) but --task asks for detection" in result.output


# -- where each value came from; assumed values are listed --------------------------------------------

def test_values_nobody_set_are_assumed_listed_and_noted(tmp_path, coco_dir):
    """An mmdeploy detector with no metadata: nothing says its input scaling, so ImageNet statistics and
    RGB are assumed: origins say so, results list them, the console says so."""
    model = conventions.detector(tmp_path / "mmdet.onnx", "mmdeploy", coco_dir)
    doc, output = audit(model, "coco", coco_dir, tmp_path / "out", "--class-names", ",".join(NAMES))
    origins = doc["model"]["metadata"]["origins"]
    assert origins["mean"] == origins["std"] == origins["channel_order"] == "assumed"
    assert origins["input_size"] == "inferred" and origins["resize"] == "convention"  # a fixed graph input: resized to it
    assert origins["crop_pct"] == "unset" and origins["class_names"] == "flag"
    assert doc["model"]["spec_source"]["defaulted"] == ["channel_order", "interpolation", "mean", "std"]
    assert "note: nobody set the model's channel_order, interpolation, mean, std: assumed" in output
    shown = invoke("inspect", model, "--task", "coco")
    assert "[assumed]" in shown.output and "nobody set channel_order, interpolation, mean, std" in shown.output


def test_spec_source_names_each_source_once(tmp_path, classifier_onnx):
    report = json.loads(invoke("inspect", classifier_onnx, "--task", "cifar10", "--input-size", 32, 32, "--json").output)
    source = report["spec"]["provenance"]["spec_source"]
    assert source == "flags + the model's inputs and outputs + the cifar10 benchmark default"
    assert report["origins"]["input_size"] == "flag" and report["origins"]["resize"] == "default"


# -- the matrix -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return synthetic.write_image_folder(tmp_path_factory.mktemp("folder"), n_per_class=2, size=32, seed=1)


def _bare_model(convention, tmp_path, coco_dir, classifier_onnx, segmenter_onnx):
    """(model without spec metadata, --task, task type) for `convention`."""
    if convention == "classification_logits":
        return classifier_onnx, "classification", "classification"
    if convention == "segmentation_logits":
        return segmenter_onnx, "ade20k", "segmentation"
    if convention == "segmentation_labels":
        return conventions.with_argmax(segmenter_onnx, tmp_path / "labels.onnx"), "ade20k", "segmentation"
    return conventions.detector(tmp_path / "det.onnx", convention, coco_dir), "coco", "detection"


@pytest.mark.parametrize("convention", list(OUTPUT_CONVENTIONS))
def test_naming_the_convention_by_metadata_config_or_flag_gives_identical_cells(
        convention, tmp_path, coco_dir, ade_dir, folder, classifier_onnx, segmenter_onnx):
    bare, task, task_type = _bare_model(convention, tmp_path, coco_dir, classifier_onnx, segmenter_onnx)
    data = {"classification": folder, "ade20k": ade_dir, "coco": coco_dir}[task]
    named = {"task": task_type, "output_convention": convention, "class_names": NAMES, "label_space": "names"}
    with_meta = conventions.with_metadata(bare, tmp_path / "meta.onnx", {
        "robustaudit": "1", **{k: v if isinstance(v, str) else json.dumps(v) for k, v in named.items()}})
    config = write_config(tmp_path / "spec.json", **named)
    flags = ("--output-convention", convention, "--label-space", "names", "--class-names", ",".join(NAMES))
    runs = {"metadata": audit(with_meta, task, data, tmp_path / "by-metadata")[0],
            "model-config": audit(bare, task, data, tmp_path / "by-config", "--model-config", config)[0],
            "flag": audit(bare, task, data, tmp_path / "by-flag", *flags)[0]}
    first = runs["metadata"]
    for source, doc in runs.items():
        assert doc["model"]["metadata"]["origins"]["output_convention"] == source
        assert doc["model"]["metadata"]["origins"]["class_names"] == source
        assert spec_values(doc) == spec_values(first), source
        assert doc["model"]["label_mapping"]["table"] == first["model"]["label_mapping"]["table"], source
        assert cells(doc) == cells(first), source
    primary = first["task"]["primary_metric"]
    assert first["cells"][0]["metrics"][primary] > 0  # the model finds something: the cells can tell inputs apart
    # the same flags fed other pixels give other cells: identical cells above mean identical inputs
    other = audit(bare, task, data, tmp_path / "other", *flags, "--mean", 0.9, 0.9, 0.9, "--std", 0.1, 0.1, 0.1)[0]
    assert cells(other) != cells(first)


def test_class_names_by_flag_or_file_and_an_empty_list_is_a_one_line_error(tmp_path, coco_dir):
    model = conventions.detector(tmp_path / "det.onnx", "torchvision_detection", coco_dir)
    names = tmp_path / "names.txt"
    names.write_text("tench, Tinca tinca\ngoldfish\n\n")  # ImageNet's names hold commas: one per line
    report = json.loads(invoke("inspect", model, "--task", "coco", "--class-names", f"@{names}", "--json").output)
    assert report["spec"]["class_names"] == ["tench, Tinca tinca", "goldfish"] and report["origins"]["class_names"] == "flag"
    result = invoke("inspect", model, "--task", "coco", "--class-names", " , ")
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "--class-names holds no names" in result.output
