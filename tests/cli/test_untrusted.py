"""The four reported cases through the CLI: exit 1, one line, no traceback, nothing run or written outside --out."""

import errno
import json
import os
import pickle
import stat

import pytest
from click.testing import CliRunner
from PIL import Image

from audit.datasets import synthetic
from audit.cli.main import cli

NORM = ["--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25"]


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


class _Touch:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_crafted_cifar_pickle_runs_no_command(tmp_path):
    root = synthetic.write_cifar10(tmp_path / "data", n_train=2, n_test=8)
    marker = tmp_path / "pwned"
    (root / "test_batch").write_bytes(pickle.dumps({b"data": _Touch(marker), b"labels": [0]}, protocol=2))
    (tmp_path / "model.onnx").write_bytes(b"never opened: the data fails first")
    result = invoke("run", tmp_path / "model.onnx", "--task", "cifar10", "--data", tmp_path / "data",
                    "--out", tmp_path / "out", "--quiet")
    one_line_error(result, "test_batch", "not a data pickle")
    assert not marker.exists()


def _coco_climbing(tmp_path):
    root = synthetic.write_coco(tmp_path / "coco", n_train=1, n_val=2, size=(40, 48))
    Image.new("RGB", (48, 40), (200, 10, 10)).save(tmp_path / "x.png")  # outside the image folder
    ann = root / "annotations" / "instances_val2017.json"
    doc = json.loads(ann.read_text())
    doc["images"][0]["file_name"] = "../../x.png"
    ann.write_text(json.dumps(doc))
    return root, ann


def test_corrupt_coco_with_climbing_file_name_reads_and_writes_nothing_outside(tmp_path):
    root, ann = _coco_climbing(tmp_path)
    before = tree(tmp_path)
    out = tmp_path / "work" / "OUT"
    result = invoke("corrupt", "--images", root / "val2017", "--coco", ann, "--out", out, "--corruptions", "contrast",
                    "--severities", "1", "--workers", "1", "--quiet")
    one_line_error(result, "'../../x.png'", "climbs out")
    assert [p for p in tree(tmp_path) if p not in before and not p.startswith("work")] == []
    assert not (tmp_path / "contrast").exists()


def test_run_coco_with_climbing_file_name_is_refused(tmp_path):
    root, ann = _coco_climbing(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"x")
    result = invoke("run", tmp_path / "model.onnx", "--task", "coco", "--data", root, "--out", tmp_path / "out", "--quiet")
    one_line_error(result, "'../../x.png'", "file_name")


def test_out_naming_an_existing_file(tmp_path, classifier_onnx, cifar_dir):
    blocker = tmp_path / "results"
    blocker.write_text("someone's file")
    images = synthetic.write_image_folder(tmp_path / "imgs", n_per_class=1, size=32)
    for result in (invoke("run", classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--out", blocker, "--quiet"),
                   invoke("corrupt", "--images", images, "--out", blocker, "--quiet"),
                   invoke("corrupt", "--images", images, "--out", blocker / "sub", "--quiet")):
        one_line_error(result, str(blocker))
    assert blocker.read_text() == "someone's file"


def _audit(model, data, out, *extra):
    return invoke("run", model, "--task", "cifar10", "--data", data, "--out", out, "--corruptions", "contrast,fog",
                  "--severities", "1,5", "--limit", "6", "--bootstrap", "0", "--workers", "0", "--quiet", *NORM, *extra)


def test_outputs_follow_the_umask(tmp_path, classifier_onnx, cifar_dir):
    old = os.umask(0o022)
    try:
        result = _audit(classifier_onnx, cifar_dir, tmp_path / "out", "--examples", "1")
        assert result.exit_code == 0, result.output
        images = synthetic.write_image_folder(tmp_path / "imgs", n_per_class=1, size=32)
        assert invoke("corrupt", "--images", images, "--out", tmp_path / "pre", "--corruptions", "contrast",
                      "--severities", "1", "--workers", "1", "--quiet").exit_code == 0
    finally:
        os.umask(old)
    files = [p for root in (tmp_path / "out", tmp_path / "pre") for p in root.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"results.json", "cells.csv", "report.html", "run.json", "contrast-s1.json", "contrast-s1.npz"} <= names
    assert any(p.parent.name == "examples" for p in files) and any("pre/contrast/1/" in p.as_posix() for p in files)
    modes = {p.relative_to(tmp_path).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o644"}, modes


def test_a_full_disk_is_one_line_and_resume_keeps_finished_cells(tmp_path, classifier_onnx, cifar_dir, monkeypatch):
    out = tmp_path / "out"
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > 5:  # run.json, then two cells (npz + json), then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    full = _audit(classifier_onnx, cifar_dir, out, "--examples", "0")
    one_line_error(full, "disk is full", "--resume")
    monkeypatch.setattr(os, "fsync", real_fsync)
    finished = {p.name: p.read_bytes() for p in (out / "cells").iterdir()}
    assert len(finished) == 4 and not [p for p in out.rglob("*.tmp")]
    resumed = _audit(classifier_onnx, cifar_dir, out, "--examples", "0", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert all((out / "cells" / name).read_bytes() == data for name, data in finished.items())
    assert len(list((out / "cells").glob("*.json"))) == 5 and (out / "results.json").is_file()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 0500")
def test_an_unwritable_out_is_one_line(tmp_path, classifier_onnx, cifar_dir):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    one_line_error(_audit(classifier_onnx, cifar_dir, locked / "out"), "Permission denied")
    one_line_error(_audit(classifier_onnx, cifar_dir, locked), "not writable")


def test_image_bombs_are_one_line_and_the_flag_raises_the_limit(tmp_path):
    images = synthetic.write_image_folder(tmp_path / "imgs", n_per_class=1, size=32)
    args = ["corrupt", "--images", images, "--corruptions", "contrast", "--severities", "1", "--workers", "1", "--quiet"]
    one_line_error(invoke(*args, "--out", tmp_path / "a", "--max-image-pixels", "1000"), "over the limit of 1000",
                   "--max-image-pixels")
    assert invoke(*args, "--out", tmp_path / "b", "--max-image-pixels", "1024").exit_code == 0


def test_a_model_whose_external_weights_climb_out_of_its_folder_is_one_line(tmp_path, cifar_dir):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    (tmp_path / "secret.bin").write_bytes(np.ones(4, np.float32).tobytes())
    weight = numpy_helper.from_array(np.ones(4, np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../secret.bin"
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [weight])
    (tmp_path / "m").mkdir()
    model = tmp_path / "m" / "model.onnx"
    model.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    result = invoke("run", model, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "out", "--quiet")
    one_line_error(result, "is not a valid ONNX model", "escapes model directory")


def test_every_command_with_an_output_folder_refuses_a_file_in_one_line(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("someone's file")
    one_line_error(invoke("demo", "--out", blocker), "is a file, not a folder")
    one_line_error(invoke("export", "torchvision:resnet18", "-o", tmp_path), "is a folder; give the file")
    one_line_error(invoke("export", "torchvision:resnet18", "-o", blocker / "model.onnx"), "is a file")
    assert blocker.read_text() == "someone's file"
