"""INT8 calibration (and parity images) from any dataset: the checkpoint's own data by default, or any root."""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from audit.datasets import synthetic
from audit.api import AuditConfig, run_audit
from audit.cli.main import cli
from audit.datasets.sample import open_images
from audit.errors import DatasetError
from tests.helpers.synthetic_formats import write_cityscapes, write_voc, write_yolo
from exporters.api import CALIBRATION_SIZE, export_model


@pytest.fixture(scope="module")
def cifar_checkpoint(tmp_path_factory):
    """A CIFAR-10 checkpoint fine-tuned on batches (no image files anywhere: the case that used to fail)."""
    import torch

    from finetune.config import FinetuneConfig
    from finetune.train import run_finetune

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cal")
    synthetic.write_cifar10(root / "data", n_train=64, n_test=32, seed=2)
    cfg = FinetuneConfig(task="cifar10", data=root / "data", backbone="test_resnet", out=root / "out", weights="none",
                         batch_size=16, epochs=1, progress=False).resolved()
    return run_finetune(cfg), root / "data"


def _audit_p(model, data, out) -> float:
    doc = run_audit(AuditConfig(model=str(model), task="cifar10", data=str(data), out=str(out), corruptions="contrast",
                                severities=[2], workers=0, progress=False, examples=0)).document
    return doc["summary"]["metrics"]["top1"]["P"]


def _provenance(path) -> dict:
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return json.loads(meta["provenance"])


def test_int8_calibrates_on_the_checkpoints_own_training_data_by_default(cifar_checkpoint, tmp_path):
    ckpt, data = cifar_checkpoint
    result = export_model(str(ckpt), tmp_path / "int8.onnx", precision="int8")
    assert result.parity.ok
    assert result.calibration == {"source": str(data), "format": "cifar10 training split", "images": 64, "available": 64,
                                  "seed": 0}
    assert _provenance(tmp_path / "int8.onnx")["calibration"] == result.calibration
    fp32 = export_model(str(ckpt), tmp_path / "fp32.onnx")
    assert fp32.calibration is None and "calibration" not in _provenance(tmp_path / "fp32.onnx")
    p8, p32 = _audit_p(tmp_path / "int8.onnx", data, tmp_path / "a8"), _audit_p(tmp_path / "fp32.onnx", data, tmp_path / "a32")
    assert abs(p8 - p32) <= 0.25


def test_int8_calibrates_on_a_cifar_root_given_on_the_command_line(cifar_checkpoint, tmp_path):
    ckpt, data = cifar_checkpoint
    out = tmp_path / "int8.onnx"
    result = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(out), "--precision", "int8", "--calibration", str(data),
                                      "--calibration-size", "16", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert f"calibrated on 16 of 32 images of {data} (cifar10, seed 3)" in result.output
    assert f"parity checked on images of {data}" in result.output
    assert _provenance(out)["calibration"]["images"] == 16
    assert _audit_p(out, data, tmp_path / "a") > 0.0


def test_samples_from_every_layout_are_seeded_and_lazy(tmp_path):
    roots = {"yolo": write_yolo(tmp_path / "y", n_train=1, n_val=5, size=(24, 32)).parent,
             "voc": write_voc(tmp_path / "v", n_train=1, n_val=5, size=(24, 32)),
             "cityscapes": write_cityscapes(tmp_path / "c", n_train=1, n_val=5, size=(24, 32)),
             "image folder": synthetic.write_image_folder(tmp_path / "f", n_per_class=2, size=24)}
    for fmt, root in roots.items():
        a, b, c = (open_images(root, n=3, seed=s) for s in (0, 0, 1))
        assert a.format == fmt and len(a) == 3 and a.indices == b.indices and a.available >= 5
        assert a.indices == sorted(a.indices) and (c.indices != a.indices or a.available == 3)
        first = next(iter(a))
        assert first.dtype == np.uint8 and first.shape[2] == 3
    assert len(open_images(roots["voc"], n=500)) == 5  # all of them when fewer than asked
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images under"):
        open_images(tmp_path / "empty")
    assert CALIBRATION_SIZE == 128


def test_parity_images_accept_a_dataset_root(tmp_path):
    data = write_voc(tmp_path / "voc", n_train=1, n_val=3, size=(32, 48))
    result = CliRunner().invoke(cli, ["export", "timm:test_resnet", "-o", str(tmp_path / "x.onnx"), "--num-classes", "3",
                                      "--parity-images", str(data)])
    assert result.exit_code == 0, result.output
    assert re.search(r"parity checked on images of .*voc", result.output)


def test_relative_calibration_paths_survive_the_quantisers_working_folder(cifar_checkpoint, tmp_path, monkeypatch):
    ckpt, data = cifar_checkpoint
    synthetic.write_image_folder(tmp_path / "calib", n_per_class=2, size=32)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    result = export_model(str(ckpt), "models/int8.onnx", precision="int8", calibration="calib", calibration_size=4)
    assert result.calibration["source"] == "calib" and result.calibration["images"] == 4 and result.parity.ok
