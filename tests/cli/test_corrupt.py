"""`audit corrupt`: outputs, formats, resume, determinism across runs and worker counts, errors."""

import hashlib
import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from audit.datasets import synthetic
from audit.cli.main import cli
from audit.corruptions import corrupt
from audit.io.images import read_image


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _folder(tmp_path):
    src = tmp_path / "images"
    synthetic.write_image_folder(src, n_per_class=1, size=48)
    Image.open(src / "circle" / "0000.png").convert("RGB").save(src / "circle" / "photo.jpg", quality=90)
    return src


def run(*args):
    return CliRunner().invoke(cli, ["corrupt", *map(str, args), "--quiet"])


def test_writes_every_cell_keeping_format_and_pixels(tmp_path):
    src, out = _folder(tmp_path), tmp_path / "out"
    result = run("--images", src, "--out", out, "--corruptions", "gaussian_noise,contrast", "--severities", "1,3",
                 "--workers", 1, "--seed", 5)
    assert result.exit_code == 0, result.output
    assert "5 images x 4 cells: 20 files written" in result.output
    png = out / "gaussian_noise" / "3" / "square" / "0000.png"
    assert Image.open(png).format == "PNG"
    assert Image.open(out / "contrast" / "1" / "circle" / "photo.jpg").format == "JPEG"
    # PNG is lossless: the file holds exactly what an on-the-fly audit computes for that image id
    expected = corrupt(read_image(src / "square" / "0000.png"), "gaussian_noise", 3, seed=5, image_id="square/0000.png")
    np.testing.assert_array_equal(read_image(png), expected)


def test_resume_skips_done_and_runs_are_identical_across_worker_counts(tmp_path):
    src = _folder(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    args = ["--corruptions", "noise", "--severities", "2"]
    assert run("--images", src, "--out", a, *args, "--workers", 1).exit_code == 0
    assert run("--images", src, "--out", b, *args, "--workers", 2).exit_code == 0
    assert _digests(a) == _digests(b)
    victim = a / "shot_noise" / "2" / "cross" / "0000.png"
    victim.unlink()
    again = run("--images", src, "--out", a, *args, "--workers", 1)
    assert "1 files written, 14 already there" in again.output
    assert _digests(a) == _digests(b)


def test_coco_dataset_renders_listed_images_and_copies_annotations(tmp_path):
    root = synthetic.write_coco(tmp_path / "coco", n_train=1, n_val=3, size=(40, 48))
    ann = root / "annotations" / "instances_val2017.json"
    out = tmp_path / "coco-c"
    result = run("--images", root / "val2017", "--coco", ann, "--out", out, "--corruptions", "fog", "--severities", "1")
    assert result.exit_code == 0, result.output
    names = [im["file_name"] for im in json.loads(ann.read_text())["images"]]
    assert sorted(p.name for p in (out / "fog" / "1").iterdir()) == sorted(names)
    assert (out / "annotations" / "instances_val2017.json").read_text() == ann.read_text()


def test_errors_are_one_line_and_keep_finished_files(tmp_path):
    src = _folder(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("--images", empty, "--out", tmp_path / "o")
    assert result.exit_code == 1 and "error: no images" in result.output
    assert run("--images", src, "--out", tmp_path / "o", "--severities", "0").exit_code == 1
    assert "--severities takes" in run("--images", src, "--out", tmp_path / "o", "--severities", "x").output
    (src / "zz_broken.png").write_bytes(b"not an image")
    out = tmp_path / "partial"
    result = run("--images", src, "--out", out, "--corruptions", "contrast", "--severities", "1", "--workers", 1)
    assert result.exit_code == 1 and "cannot read image" in result.output and "zz_broken.png" in result.output
    assert len(list((out / "contrast" / "1").rglob("*.png"))) == 4  # the good images before it are kept
    missing = run("--images", src, "--coco", tmp_path / "nope.json", "--out", out)
    assert missing.exit_code == 1 and "COCO annotation file not found" in missing.output


def test_reference_option_writes_the_reference_pixels(tmp_path):
    src, out = _folder(tmp_path), tmp_path / "ref"
    result = run("--images", src, "--out", out, "--corruptions", "contrast", "--severities", "2", "--workers", 1, "--reference")
    assert result.exit_code == 0, result.output
    from audit.corruptions.reference import reference_corrupt

    img = read_image(src / "cross" / "0000.png")
    np.testing.assert_array_equal(read_image(out / "contrast" / "2" / "cross" / "0000.png"), reference_corrupt(img, "contrast", 2))
