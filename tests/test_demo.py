"""`audit demo` at a reduced size: fine-tuned models (or the torch-free fallback) that beat chance,
exports with parity, INT8, audits, one comparison report, and a second run that reuses everything."""

import pytest
from click.testing import CliRunner

from audit.results import document as results
from audit.cli.main import cli


def _primary(out, name):
    doc = results.load(out / "runs" / name / "results.json")
    metric = doc["task"]["primary_metric"]
    return doc, doc["summary"]["metrics"][metric]


def test_demo_fine_tunes_exports_and_audits_every_task(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("timm")
    monkeypatch.chdir(tmp_path)  # a relative --out, as a newcomer runs it (the default is ./demo)
    out = tmp_path / "demo"
    args = ["demo", "--out", "demo", "--images", "40", "--workers", "0", "--quiet", "--trainer", "torch"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    chance = {"classifier": 0.25, "classifier-int8": 0.25, "segmenter": 0.2, "detector": 0.0}
    for name, floor in chance.items():
        doc, m = _primary(out, name)
        assert m["P"] > floor + 0.25, (name, m["P"])  # clearly above chance, so the drops shown are real
        assert m["cells"] == 21 and m["mPC"] is not None
        assert doc["model"]["metadata"]["provenance"]["exporter"] == "robustaudit"
        assert doc["model"]["metadata"]["provenance"]["backbone"] == "test_resnet"
    int8, _ = _primary(out, "classifier-int8")
    fp32, _ = _primary(out, "classifier")
    assert int8["engine"]["precision"] == "int8" and fp32["engine"]["precision"] == "fp32"
    assert abs(int8["summary"]["metrics"]["top1"]["P"] - fp32["summary"]["metrics"]["top1"]["P"]) <= 0.1
    statuses = {name: _primary(out, name)[0]["verdict"]["status"] for name in chance}
    assert set(statuses.values()) == {"pass", "fail"}, statuses  # the gate shown with both verdicts
    html = (out / "report.html").read_text()
    assert 'data-check="sig-mPC"' in html and "No paired test" not in html  # FP32 vs INT8, tested pairwise
    assert all(f"{n}.onnx" in html for n in chance)
    assert "report: demo/report.html" in result.output

    stamps = {p: p.stat().st_mtime_ns for p in [*out.glob("models/*.onnx"), *out.glob("finetune/*/checkpoint.pt")]}
    assert len(stamps) == 7
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "reused" in again.output and "trained" not in again.output
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing fine-tuned or exported twice


def test_demo_without_torch_uses_the_numpy_models(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--images", "40", "--workers", "0", "--quiet",
                                      "--trainer", "numpy"])
    assert result.exit_code == 0, result.output
    cls, m_cls = _primary(out, "classifier")
    _, m_seg = _primary(out, "segmenter")
    assert m_cls["P"] > 0.6 and m_seg["P"] > 0.5  # 4 classes: chance is 0.25
    assert cls["model"]["metadata"]["provenance"]["trainer"] == "audit.workflows.demo_models"
    assert m_cls["cells"] == 21
    # the demo's gate: the classifier keeps most of its accuracy and passes, the segmenter does not;
    # the demo still exits 0 and prints both verdicts
    verdicts = {name: _primary(out, name)[0]["verdict"]["status"] for name in ("classifier", "segmenter")}
    assert verdicts == {"classifier": "pass", "segmenter": "fail"}, verdicts
    assert "verdict: PASS" in result.output and "verdict: FAIL" in result.output
    html = (out / "report.html").read_text()
    assert "shapes-classifier.onnx" in html and "shapes-segmenter.onnx" in html


def test_auto_falls_back_to_numpy_with_a_message_when_torch_is_missing(tmp_path, monkeypatch):
    import audit.workflows.demo as demo

    class Chosen(Exception):
        pass

    def numpy_models(*args):
        raise Chosen

    monkeypatch.setattr(demo, "torch_available", lambda: False)
    monkeypatch.setattr(demo, "_numpy_models", numpy_models)
    messages = []
    with pytest.raises(Chosen):
        demo.run_demo(tmp_path / "demo", images=20, workers=0, progress=False, log=messages.append)
    assert any("pip install 'robustaudit[train]'" in m for m in messages)


def _demo_pair(tmp_path):
    """A demo-style FP32 / INT8 pair: the demo's NumPy classifier and a copy with its weights rounded
    to 8 bits, both recording the same source (as the demo's exports of one checkpoint do)."""
    import json

    import numpy as np
    import onnx
    from onnx import numpy_helper

    from audit.workflows import demo_models

    fp32 = demo_models.train_classifier(tmp_path / "models" / "classifier.onnx", n=200)
    model = onnx.load(fp32)
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        scale = float(np.abs(w).max()) / 127 or 1.0
        init.CopyFrom(numpy_helper.from_array((np.round(w / scale) * scale).astype(np.float32), init.name))
    for prop in model.metadata_props:
        if prop.key == "precision":
            prop.value = "int8"
    onnx.save(model, str(tmp_path / "models" / "classifier-int8.onnx"))
    for path in (fp32, tmp_path / "models" / "classifier-int8.onnx"):  # one source, as the exporter records it
        m = onnx.load(path)
        for prop in m.metadata_props:
            if prop.key == "provenance":
                prop.value = json.dumps({**json.loads(prop.value), "source_sha256": "ab" * 32})
        onnx.save(m, str(path))
    return fp32, tmp_path / "models" / "classifier-int8.onnx"


def test_the_demo_report_tests_the_fp32_int8_difference_pairwise_and_shows_the_gate(tmp_path):
    """The demo's comparison carries the paired intervals and significance marks `audit report`
    gives, and each run its gate verdict (pass and fail both shown)."""
    from audit.datasets import synthetic
    from audit.api import run_audit
    from audit.workflows.demo import GATE_RPC, DemoModel, audit_config, write_demo_report

    data = synthetic.write_cifar10(tmp_path / "data" / "cifar10", n_train=2, n_test=40, seed=7).parent
    fp32, int8 = _demo_pair(tmp_path)
    audits = [run_audit(audit_config(DemoModel(name, path, "cifar10", data), tmp_path / "runs" / name, workers=0,
                                     progress=False)) for name, path in (("classifier", fp32), ("classifier-int8", int8))]
    assert [a.document["thresholds"]["fail_under_rpc"] for a in audits] == [GATE_RPC, GATE_RPC]
    assert {a.verdict["status"] for a in audits} <= {"pass", "fail"}
    html = write_demo_report(tmp_path / "report.html", audits).read_text()
    assert "No paired test" not in html and "Not tested pairwise" not in html
    for key in ("P", "mPC", "rPC"):
        assert f'data-check="sig-{key}"' in html  # a significance mark beside each headline difference
    assert "McNemar p" in html and "paired bootstrap over images" in html



class _Work:
    """Counts the work of an audit: sessions created, engine calls while the cells run (and outside),
    corrupted renders per cell."""

    def __init__(self, monkeypatch):
        from collections import Counter

        import audit.api
        from audit.engines.onnxruntime import OrtEngine
        from audit.execution.context import PrepareContext

        self.sessions, self.cell_calls, self.other_calls, self.renders = 0, 0, 0, Counter()
        self.executing = False
        init, run, execute, corrupt = OrtEngine.__init__, OrtEngine.run, audit.api.execute, PrepareContext.corrupt

        def counted_init(engine, *a, **kw):
            self.sessions += 1
            init(engine, *a, **kw)

        def counted_run(engine, feeds):
            if self.executing:
                self.cell_calls += 1
            else:
                self.other_calls += 1
            return run(engine, feeds)

        def counted_execute(*a, **kw):
            self.executing = True
            try:
                return execute(*a, **kw)
            finally:
                self.executing = False

        def counted_corrupt(context, image, corruption, severity, image_id):
            if self.executing:  # the cells' renders (the report's example images are rendered after them)
                self.renders[(corruption, severity)] += 1
            return corrupt(context, image, corruption, severity, image_id)

        monkeypatch.setattr(OrtEngine, "__init__", counted_init)
        monkeypatch.setattr(OrtEngine, "run", counted_run)
        monkeypatch.setattr(audit.api, "execute", counted_execute)
        monkeypatch.setattr(PrepareContext, "corrupt", counted_corrupt)


@pytest.mark.parametrize("case", ["classifier", "detector"])
def test_the_demo_audit_does_the_work_of_bare_inference_and_no_more(case, tmp_path, monkeypatch, request):
    """The audit's cost over bare inference, counted rather than timed (robust on a loaded machine):
    one ONNX Runtime session per audit; per cell, the engine calls bare inference makes on the same
    images (batches of 8 for the classifier, one image per call for a torchvision detector); one
    corrupted render per image and corrupted cell; a bounded number of calls outside the cells (the
    start-up check, a detector's label probe, the report's example images)."""
    from audit.workflows import demo_models
    from audit.datasets import synthetic
    from audit.api import run_audit
    from audit.workflows.demo import DemoModel, audit_config
    from audit.execution.examples import pick_cells
    from audit.execution.cells import all_cells
    from audit.tasks.adapter import PROBE_IMAGES

    if case == "classifier":
        data = synthetic.write_cifar10(tmp_path / "cifar10", n_train=2, n_test=20, seed=7).parent
        model, task, n, per_call = demo_models.train_classifier(tmp_path / "c.onnx", n=200), "cifar10", 20, 8
    else:
        model, data = request.getfixturevalue("detector_onnx"), request.getfixturevalue("coco_dir")
        task, n, per_call = "coco", 5, 1
    config = audit_config(DemoModel(case, model, task, data), tmp_path / "run", workers=0, progress=False)
    if case == "detector":
        config.overrides = {"label_space": "index+background"}
    work = _Work(monkeypatch)
    doc = run_audit(config).document
    cells = all_cells(doc["corruption"]["corruptions"], doc["corruption"]["severities"])
    assert len(cells) == 22 and doc["dataset"]["num_images"] == n
    assert work.sessions == 1
    assert work.cell_calls == len(cells) * -(-n // per_call)
    shown = len(pick_cells(doc["corruption"]["corruptions"], doc["corruption"]["severities"]))
    assert work.other_calls <= 1 + PROBE_IMAGES + config.examples * shown
    corrupted = [c for c in cells if c[0] != "clean"]
    assert work.renders == {c: n for c in corrupted}  # the clean cell is never corrupted


def test_the_demo_detector_runs_its_box_head_on_150_proposals():
    """The demo detector's inference cost is its box head, once per RPN proposal: the demo keeps 150
    (torchvision's 320 px mobile preset) instead of torchvision's 1000, about 4x less CPU per image
    for the same box AP on the synthetic shapes (benchmarks/demo_speed.py)."""
    pytest.importorskip("torchvision")
    from audit.workflows.demo import TORCH_MODELS
    from finetune.models import build_model

    settings = next(s for name, _, s in TORCH_MODELS if name == "detector")
    model = build_model({"backbone": "test_resnet", "head": "fasterrcnn", "num_classes": 5, **settings["extra"]}).eval()
    assert model.rpn.pre_nms_top_n() == model.rpn.post_nms_top_n() == 150
    assert build_model({"backbone": "test_resnet", "head": "fasterrcnn", "num_classes": 5}).eval().rpn.post_nms_top_n() == 1000
