"""Audits on a local Ray (ray.init(num_cpus=2)): same results as the local executor, a dead actor's
cells are rerun on a fresh one, and a resumed driver finishes the audit. Marked `ray`; .ci/run runs them."""

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


class DiesOnce:
    """An AuditWorker whose first group holding ("contrast", 3) kills its own actor: os._exit (a crash)
    or ray.kill (what an operator or the autoscaler does); the driver replaces it and re-queues the group."""

    how = "exit"

    def __init__(self, config, workers, marker=None):
        from audit.execution.ray import AuditWorker

        self.worker = AuditWorker(config, workers)

    def run(self, cells):
        import ray

        marker = self.marker
        if ("contrast", 3) in [tuple(c) for c in cells] and not os.path.exists(marker):
            open(marker, "w").close()
            if self.how == "exit":
                os._exit(1)
            ray.kill(ray.get_runtime_context().current_actor)
            import time

            time.sleep(60)  # killed meanwhile
        return self.worker.run(cells)


@pytest.mark.parametrize("how", ["exit", "ray.kill"])
def test_a_dead_actor_is_replaced_and_its_cells_rerun(local_ray, classifier_onnx, cifar_dir, tmp_path, monkeypatch, how):
    import audit.execution.ray as rx

    marker = tmp_path / f"killed-once-{how.replace('.', '-')}"
    actor = type("Dies", (DiesOnce,), {"how": how, "marker": str(marker)})
    original = rx.run_cells_ray
    # one cell per group: the other actor keeps working while the dead one is replaced
    monkeypatch.setattr(rx, "run_cells_ray", lambda *a, **k: original(*a, actor_class=actor, cells_per_unit=1, **k))
    doc = run_audit(config(classifier_onnx, cifar_dir, tmp_path / "retry", executor="ray")).document
    assert marker.exists() and len(doc["cells"]) == 5
    local = run_audit(config(classifier_onnx, cifar_dir, tmp_path / "local2")).document
    assert cells(doc) == cells(local) and doc["summary"] == local["summary"]


def test_actors_with_their_own_corruption_workers_equal_local(local_ray, classifier_onnx, cifar_dir, tmp_path):
    """One actor with a corruption worker process (--workers 1: 2 CPUs per actor) runs every group."""
    local = run_audit(config(classifier_onnx, cifar_dir, tmp_path / "local", bootstrap=20)).document
    remote = run_audit(config(classifier_onnx, cifar_dir, tmp_path / "ray", executor="ray", workers=1, bootstrap=20)).document
    assert cells(local) == cells(remote) and local["summary"] == remote["summary"]


def test_actor_plan_follows_the_cluster():
    from types import SimpleNamespace

    from audit.execution.ray import plan_actors

    cpu = SimpleNamespace(workers=None)
    assert plan_actors({"CPU": 16}, cpu, 0, 76) == (8, 2, 1)  # 1 corruption worker + the engine each
    assert plan_actors({"CPU": 16, "GPU": 2}, cpu, 1, 76) == (2, 8, 7)  # one per GPU, fed by 7 workers
    assert plan_actors({"CPU": 2}, SimpleNamespace(workers=0), 0, 1) == (1, 1, 0)  # never more actors than cells


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
