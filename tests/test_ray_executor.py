"""Audits on a local Ray (ray.init(num_cpus=2)): same results as the local executor, a killed worker's
cell is retried, and a resumed driver finishes the audit. Marked `ray`; .ci/run runs them."""

import os

import pytest

from audit.api import AuditConfig, run_audit

from .conftest import NORM

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def config(model, data, out, **kw):
    base = dict(model=str(model), task="cifar10", data=str(data), out=str(out), corruptions="gaussian_noise,contrast",
                severities=[1, 3], workers=0, progress=False, examples=0, report=False, overrides=dict(NORM))
    base.update(kw)
    return AuditConfig(**base)


def cells(doc):
    return [(c["corruption"], c["severity"], c["metrics"]) for c in doc["cells"]]


def test_ray_equals_local(local_ray, classifier_onnx, cifar_dir, tmp_path):
    local = run_audit(config(classifier_onnx, cifar_dir, tmp_path / "local")).document
    remote = run_audit(config(classifier_onnx, cifar_dir, tmp_path / "ray", executor="ray")).document
    assert cells(local) == cells(remote) and local["summary"] == remote["summary"]


def test_killed_worker_is_retried(local_ray, classifier_onnx, cifar_dir, tmp_path, monkeypatch):
    from audit.ray_executor import run_cell

    marker = tmp_path / "killed-once"

    def dies_once(cfg, cell):  # the first task to run kills its worker process outright
        if cell == ("contrast", 3) and not marker.exists():
            marker.write_text("x")
            os._exit(1)
        return run_cell(cfg, cell)

    import audit.ray_executor as rx

    original = rx.run_cells_ray
    monkeypatch.setattr(rx, "run_cells_ray", lambda *a, **k: original(*a, task=dies_once, **k))
    doc = run_audit(config(classifier_onnx, cifar_dir, tmp_path / "retry", executor="ray")).document
    assert marker.exists() and len(doc["cells"]) == 5
    local = run_audit(config(classifier_onnx, cifar_dir, tmp_path / "local2")).document
    assert cells(doc) == cells(local)


def test_resume_after_an_interrupted_driver(local_ray, classifier_onnx, cifar_dir, tmp_path):
    out = tmp_path / "driver"
    full = run_audit(config(classifier_onnx, cifar_dir, out, executor="ray")).document
    for name in ("contrast-s1", "gaussian_noise-s3"):  # the driver died before these arrived
        (out / "cells" / f"{name}.json").unlink()
    (out / "results.json").unlink()
    resumed = run_audit(config(classifier_onnx, cifar_dir, out, executor="ray", resume=True)).document
    assert cells(resumed) == cells(full)


def test_a_plugin_corruption_runs_on_ray_as_locally(local_ray, classifier_onnx, cifar_dir, tmp_path):
    """A --corruption-plugin file reaches the Ray workers (they import it) and gives the local numbers."""
    from tests.helpers.plugins import GOOD_FILE, forget_plugins, write_file

    plugin = str(write_file(tmp_path / "banding.py", GOOD_FILE))
    try:
        kw = dict(corruptions="sensor_banding", corruption_plugins=[plugin])
        local = run_audit(config(classifier_onnx, cifar_dir, tmp_path / "local", **kw)).document
        remote = run_audit(config(classifier_onnx, cifar_dir, tmp_path / "ray", executor="ray", **kw)).document
    finally:
        forget_plugins()
    assert [c["corruption"] for c in remote["cells"]] == ["clean", "sensor_banding", "sensor_banding"]
    assert cells(local) == cells(remote) and remote["corruption"]["user_defined"] == ["sensor_banding"]
