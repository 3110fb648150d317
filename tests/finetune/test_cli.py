"""`audit finetune` through the CLI group: a tiny run, and one-line errors for bad arguments."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from audit.cli.main import cli
from tests.finetune.conftest import TINY


def _invoke(*args: str):
    return CliRunner().invoke(cli, ["finetune", *args])


def test_tiny_cifar_run_writes_a_checkpoint(cifar, tmp_path):
    result = _invoke("--task", "cifar10", "--data", str(cifar), "--backbone", TINY, "--weights", "none", "--epochs", "1",
                     "--batch-size", "4", "--max-steps", "2", "--out", str(tmp_path / "run"), "--quiet")
    assert result.exit_code == 0, result.output
    assert "checkpoint: " in result.output and (tmp_path / "run" / "checkpoint.pt").is_file()


@pytest.mark.parametrize("options, message", [
    ({"--task": "coco", "--augment": "augmix"}, "--augment augmix applies to classification only"),
    ({"--backbone": "resnet5O"}, "unknown backbone 'resnet5O'; close names: "),
    ({"--input-size": "big"}, "--input-size takes N or H,W"),
    ({"--weights": "missing.pth"}, "--weights must be imagenet, none or a checkpoint file"),
    ({"--lr": "-1"}, "--lr must be positive"),
    ({"--jsd": None}, "--jsd is the AugMix consistency loss"),
    ({"--task": "ade20k", "--head": "maskrcnn"}, "head 'maskrcnn' does not fit task ade20k"),
    ({"--resume": None}, "--resume: no checkpoint to resume from"),
])
def test_bad_arguments_give_one_line_errors(options, message, cifar, tmp_path):
    merged = {"--task": "cifar10", "--data": str(cifar), "--backbone": TINY, "--weights": "none",
              "--out": str(tmp_path / "o"), **options}
    args = [x for key, value in merged.items() for x in ((key,) if value is None else (key, value))]
    result = _invoke(*args)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and message in lines[0], result.output


def test_unknown_task_is_a_usage_error(tmp_path):
    result = _invoke("--task", "imagenet", "--data", str(tmp_path), "--backbone", TINY, "--out", str(tmp_path))
    assert result.exit_code == 1 and "imagenet" in result.output
