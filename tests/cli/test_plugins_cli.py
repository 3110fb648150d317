"""Plug-in corruptions end to end: `audit list corruptions`, `audit run` in a real worker process,
`audit corrupt` in spawned workers, labels in the results and the report, one-line refusals."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from audit.datasets import synthetic
from audit.api import AuditConfig, run_audit
from audit.cli.main import cli
from audit.corruptions import corrupt
from audit.errors import ConfigError
from audit.io.images import read_image
from tests.conftest import NORM
from tests.helpers.plugins import BROKEN, GOOD_FILE, forget_plugins, write_file
from tests.helpers.plugins import lens_package, only_builtins_afterwards  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _only_builtins(only_builtins_afterwards):
    yield


def test_list_shows_plugins_with_group_suite_and_origin(lens_package, tmp_path):
    path = write_file(tmp_path / "banding.py", GOOD_FILE)
    result = CliRunner().invoke(cli, ["list", "corruptions", "--corruption-plugin", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split() == ["name", "group", "subset", "origin"]
    assert lines[1].split() == ["gaussian_noise", "noise", "benchmark", "builtin"]
    assert lines[-2].split() == ["lens_dirt", "optics", "user", "lensdirt-plugin"]
    assert lines[-1].split() == ["sensor_banding", "user", "user", str(path.resolve())]


def _audit(model, data, out, **kw):
    return run_audit(AuditConfig(model=str(model), task="cifar10", data=str(data), out=str(out), severities=[1, 5],
                                 progress=False, examples=1, overrides=dict(NORM), **kw))


def test_entry_point_plugin_audited_end_to_end_in_a_worker(lens_package, classifier_onnx, cifar_dir, tmp_path):
    result = _audit(classifier_onnx, cifar_dir, tmp_path / "run", corruptions="lens_dirt,contrast", workers=1)
    doc = result.document
    cor = doc["corruption"]
    assert cor["corruptions"] == ["contrast", "lens_dirt"] and cor["user_defined"] == ["lens_dirt"]
    [plugin] = cor["plugins"]
    assert (plugin["kind"], plugin["origin"], plugin["version"], plugin["corruptions"]) == \
        ("entry point", "lensdirt-plugin", "0.3.1", ["lens_dirt"])
    cells = {(c["corruption"], c["severity"]): c for c in doc["cells"]}
    assert cells[("lens_dirt", 5)]["group"] == "optics"
    assert cells[("lens_dirt", 5)]["metrics"] != cells[("clean", 0)]["metrics"]
    # a worker process computed the same numbers as this process does in-process
    again = _audit(classifier_onnx, cifar_dir, tmp_path / "run0", corruptions="lens_dirt,contrast", workers=0)
    assert [c["metrics"] for c in again.document["cells"]] == [c["metrics"] for c in doc["cells"]]
    html = (result.out / "report.html").read_text()
    assert "lens_dirt <span class=\"muted\">(user-defined)</span>" in html and "lensdirt-plugin (version 0.3.1)" in html
    assert json.loads((result.out / "run.json").read_text())["plugins"] == [
        {"origin": "lensdirt-plugin", "version": "0.3.1", "sha256": None}]


def test_file_plugin_run_and_resume_needs_the_same_file(classifier_onnx, cifar_dir, tmp_path):
    path = write_file(tmp_path / "banding.py", GOOD_FILE)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(classifier_onnx), "--task", "cifar10", "--data", str(cifar_dir),
                                      "--out", str(out), "--corruptions", "sensor_banding", "--severities", "2",
                                      "--corruption-plugin", str(path), "--workers", "1", "--quiet", "--no-report",
                                      "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25"])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["corruption"]["user_defined"] == ["sensor_banding"]
    assert doc["corruption"]["plugins"][0]["sha256"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    forget_plugins()
    path.write_text(GOOD_FILE.replace("(4, 8, 12, 16, 20)", "(5, 8, 12, 16, 20)"))
    with pytest.raises(ConfigError, match="--resume: .* holds a different audit \\(plugins differ\\)"):
        run_audit(AuditConfig(model=str(classifier_onnx), task="cifar10", data=str(cifar_dir), out=str(out),
                              corruptions="sensor_banding", severities=[2], resume=True, workers=0, progress=False,
                              overrides=dict(NORM), corruption_plugins=[str(path)]))


def test_corrupt_writes_file_plugin_images_in_spawned_workers(tmp_path):
    src, out = tmp_path / "images", tmp_path / "out"
    synthetic.write_image_folder(src, n_per_class=1, size=48)
    path = write_file(tmp_path / "banding.py", GOOD_FILE)
    result = CliRunner().invoke(cli, ["corrupt", "--images", str(src), "--out", str(out), "--corruptions", "sensor_banding",
                                      "--severities", "3", "--workers", "2", "--corruption-plugin", str(path), "--quiet"])
    assert result.exit_code == 0, result.output
    files = sorted((out / "sensor_banding" / "3").rglob("*.png"))
    assert files
    rel = files[0].relative_to(out / "sensor_banding" / "3").as_posix()
    expected = corrupt(read_image(src / rel), "sensor_banding", 3, seed=0, image_id=rel)
    np.testing.assert_array_equal(read_image(files[0]), expected)


def test_broken_plugin_is_one_line_exit_1(tmp_path):
    path = write_file(tmp_path / "bad.py", BROKEN["shape"])
    result = CliRunner().invoke(cli, ["list", "corruptions", "--corruption-plugin", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: corruption plug-in {path.resolve()} refused: corruption "
                                                   "'plug_shape' at severity 1")
