"""`audit demo` at a reduced size: fine-tuned models (or the torch-free fallback) that beat chance,
exports with parity, INT8, audits, one comparison report, and a second run that reuses everything."""

import pytest
from click.testing import CliRunner

from audit import results
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
    html = (out / "report.html").read_text()
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
    assert cls["model"]["metadata"]["provenance"]["trainer"] == "audit.demo_models"
    assert m_cls["cells"] == 21
    html = (out / "report.html").read_text()
    assert "shapes-classifier.onnx" in html and "shapes-segmenter.onnx" in html


def test_auto_falls_back_to_numpy_with_a_message_when_torch_is_missing(tmp_path, monkeypatch):
    import audit.demo as demo

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
