"""`audit attack`: exit codes, one-line errors, the printed table, and the black-box path without torch."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from audit.cli.main import cli

NORM_FLAGS = ["--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25"]
ROOT = Path(__file__).resolve().parents[2]


def attack(*args):
    return CliRunner().invoke(cli, ["attack", *map(str, args)])


def test_table_and_gate_exit_codes(classifier_onnx, cifar_dir, tmp_path):
    flags = ["--task", "cifar10", "--data", cifar_dir, *NORM_FLAGS, "--attack", "fgsm", "--eps", "0,8/255", "--limit", "12",
             "--quiet", "--no-report"]
    ok = attack(classifier_onnx, *flags, "--out", tmp_path / "a")
    assert ok.exit_code == 0, ok.output
    assert "fgsm" in ok.output and "8/255" in ok.output and "clean top-1" in ok.output
    gate = attack(classifier_onnx, *flags, "--out", tmp_path / "b", "--fail-under-robust-acc", "1.0")
    assert gate.exit_code == 2
    # the figure, then the budget as written and its number in brackets: never two numbers run together
    assert re.fullmatch(r"error: robustness gate failed: robust accuracy (0\.\d{4}) under fgsm at linf eps 8/255 \(0\.0314\) "
                        r"is under the required 1\.0000", gate.output.strip().splitlines()[-1])
    doc = json.loads((tmp_path / "b" / "results.json").read_text())
    assert doc["verdict"]["status"] == "fail"


@pytest.mark.parametrize("args, message", [
    (["--eps", "0,abc"], "--eps: 'abc' is not a number"),
    (["--eps", "0,-1/255"], "negative"),
    (["--attack", "deepfool"], "unknown attack 'deepfool' (valid for classification: fgsm, pgd,"),
    (["--attack", "segpgdd"], "unknown attack 'segpgdd'; did you mean 'pgd'?"),
    (["--attack", ","], "--attack is empty"),
    (["--gradients", "none", "--attack", "pgd"], "needs gradients"),
    (["--gradients", "weights.bin"], "unknown --gradients"),
    (["--norm", "l1"], "Invalid value for '--norm'"),
    (["--transfer-to", "/nowhere-int8.onnx"], "no such model file"),
    (["--num-classes", "4"], "--num-classes does nothing with --task cifar10"),
])
def test_bad_flags_are_one_line_errors(classifier_onnx, cifar_dir, tmp_path, args, message):
    result = attack(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "x", *args)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert message in lines[-1]
    assert not any(line.startswith("Traceback") for line in lines)


def test_unknown_attacks_get_the_nearest_names_for_the_task(classifier_onnx, cifar_dir, segmenter_onnx, ade_dir, tmp_path):
    """Classification never offers segpgd; segmentation offers it for a near miss."""
    cls = attack(classifier_onnx, "--task", "cifar10", "--data", cifar_dir, "--out", tmp_path / "a", "--attack", "pgdd")
    line = cls.output.strip().splitlines()[-1]
    assert cls.exit_code == 1 and "did you mean 'pgd'" in line and "segpgd" not in line and len(line) < 200, line
    seg = attack(segmenter_onnx, "--task", "ade20k", "--data", ade_dir, "--out", tmp_path / "b", "--attack", "segpgdd")
    line = seg.output.strip().splitlines()[-1]
    assert seg.exit_code == 1 and line == ("error: unknown attack 'segpgdd'; did you mean 'segpgd' or 'pgd'? "
                                           "(valid for segmentation: fgsm, pgd, segpgd, square)"), line


def test_detection_is_refused(classifier_onnx, cifar_dir):
    result = attack(classifier_onnx, "--task", "coco", "--data", cifar_dir)
    assert result.exit_code == 1 and "classification and segmentation only" in result.output.strip().splitlines()[-1]


def test_segmentation_table_gate_and_refused_attacks(segmenter_onnx, ade_dir, tmp_path):
    flags = ["--task", "ade20k", "--data", ade_dir, *NORM_FLAGS, "--eps", "0,8/255", "--limit", "4", "--steps", "2",
             "--quiet", "--no-report"]
    ok = attack(segmenter_onnx, *flags, "--out", tmp_path / "a")
    assert ok.exit_code == 0, ok.output
    assert "clean mIoU: segmenter.onnx" in ok.output and "robust mIoU per engine" in ok.output
    assert [line.split()[0] for line in ok.output.splitlines() if "/255" in line] == ["pgd", "pgd"]  # the default attack
    gate = attack(segmenter_onnx, *flags, "--attack", "fgsm", "--out", tmp_path / "b", "--fail-under-robust-acc", "0.999")
    assert gate.exit_code == 2
    assert re.fullmatch(r"error: robustness gate failed: robust mIoU 0\.\d{4} under fgsm at linf eps 8/255 \(0\.0314\) "
                        r"is under the required 0\.9990", gate.output.strip().splitlines()[-1])
    refused = attack(segmenter_onnx, *flags, "--attack", "autoattack", "--out", tmp_path / "c")
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines()[-1] == ("error: --attack autoattack is a classification attack; "
                                                       "for segmentation use fgsm, pgd, segpgd, square")


@pytest.mark.parametrize("task", ["cifar10", "ade20k"])
def test_square_only_path_runs_without_torch(classifier_onnx, cifar_dir, segmenter_onnx, ade_dir, tmp_path, task):
    """--gradients none: Square on the engine, in a process where importing torch fails."""
    model, data = (classifier_onnx, cifar_dir) if task == "cifar10" else (segmenter_onnx, ade_dir)
    code = ("import sys; sys.modules['torch'] = None\n"  # `import torch` now raises ImportError
            "from audit.cli.main import main\n"
            f"main(['attack', {str(model)!r}, '--task', {task!r}, '--data', {str(data)!r}, "
            f"'--out', {str(tmp_path / 'sq')!r}, '--gradients', 'none', '--eps', '0,16/255', '--queries', '40', "
            f"'--limit', '8', '--quiet', '--no-report', '--mean', '0.5', '0.5', '0.5', '--std', '0.25', '0.25', '0.25'])\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "sq" / "results.json").read_text())
    assert doc["adversarial"]["attacks"] == ["square"] and doc["adversarial"]["gradients"]["source"] == "none"
    assert doc["adversarial"]["metric"] == ("accuracy" if task == "cifar10" else "miou")


def test_generic_segmentation_folder_needs_num_classes_and_matches_ade20k(segmenter_onnx, ade_dir, tmp_path):
    """The same images and labels as a generic images/ + masks/ folder: the same clean mIoU as --task ade20k."""
    from PIL import Image

    root = tmp_path / "folder"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for img in sorted((ade_dir / "images" / "validation").glob("*.jpg")):
        shutil.copy(img, root / "images" / img.name)
        labels = np.asarray(Image.open(ade_dir / "annotations" / "validation" / f"{img.stem}.png")).astype(np.int64)
        Image.fromarray(np.where(labels == 0, 255, labels - 1).astype(np.uint8)).save(root / "masks" / f"{img.stem}.png")
    common = [*NORM_FLAGS, "--eps", "0", "--limit", "6", "--quiet", "--no-report"]
    missing = attack(segmenter_onnx, "--task", "segmentation", "--data", root, "--out", tmp_path / "m", *common)
    assert missing.exit_code == 1 and "--num-classes" in missing.output.strip().splitlines()[-1]
    ade = attack(segmenter_onnx, "--task", "ade20k", "--data", ade_dir, "--out", tmp_path / "a", *common)
    folder = attack(segmenter_onnx, "--task", "segmentation", "--data", root, "--num-classes", "4", "--out", tmp_path / "b", *common)
    assert ade.exit_code == folder.exit_code == 0, folder.output
    miou = [json.loads((tmp_path / run / "results.json").read_text())["adversarial"]["clean_miou"] for run in "ab"]
    assert miou[0] == miou[1] and 0 < next(iter(miou[0].values())) < 1
