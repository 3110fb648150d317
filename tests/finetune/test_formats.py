"""`audit finetune` on the YOLO, Pascal VOC and Cityscapes layouts: one tiny epoch each, through the CLI."""

import pytest
from click.testing import CliRunner

from audit.cli.main import cli
from tests.helpers.synthetic_formats import write_cityscapes, write_voc, write_yolo
from finetune.checkpoint import load_checkpoint
from tests.finetune.conftest import TINY

DETECTION = ["--input-size", "48,64", "--max-steps", "2", "--batch-size", "2"]


@pytest.mark.parametrize("layout", ["yolo", "voc", "cityscapes"])
def test_one_tiny_epoch_per_layout(layout, tmp_path):
    if layout == "yolo":
        data, task = write_yolo(tmp_path / "d", n_train=4, n_val=2, size=(48, 64)), "detection"
    elif layout == "voc":
        data, task = write_voc(tmp_path / "d", n_train=4, n_val=2, size=(48, 64)), "detection"
    else:
        data, task = write_cityscapes(tmp_path / "d", n_train=4, n_val=2, size=(48, 64)), "segmentation"
    result = CliRunner().invoke(cli, ["finetune", "--task", task, "--data", str(data), "--backbone", TINY, "--weights", "none",
                                      "--epochs", "1", "--mode", "fixed", "--out", str(tmp_path / "ft"), "--quiet", *DETECTION])
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(tmp_path / "ft" / "checkpoint.pt")
    if layout == "yolo":
        assert ckpt["class_names"] == ["circle", "square", "triangle", "cross"] and ckpt["label_to_category"] == [None, 0, 1, 2, 3]
    elif layout == "voc":
        assert len(ckpt["class_names"]) == 20 and ckpt["label_to_category"][1:] == list(range(1, 21))
        assert "voc_AP50" in ckpt["provenance"]["final_metric"]
    else:
        assert len(ckpt["class_names"]) == 19 and "mIoU" in ckpt["provenance"]["final_metric"]
