"""`audit demo` at a reduced size: real models that beat chance, audits, one comparison report."""

from click.testing import CliRunner

from audit import results
from audit.cli.main import cli


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--images", "40", "--workers", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    cls = results.load(out / "runs" / "classifier" / "results.json")
    seg = results.load(out / "runs" / "segmenter" / "results.json")
    assert cls["summary"]["metrics"]["top1"]["P"] > 0.6  # 4 classes: chance is 0.25
    assert seg["summary"]["metrics"]["mIoU"]["P"] > 0.5
    assert cls["model"]["metadata"]["provenance"]["trainer"] == "audit.demo_models"
    assert cls["summary"]["metrics"]["top1"]["cells"] == 21
    html = (out / "report.html").read_text()
    assert "shapes-classifier.onnx" in html and "shapes-segmenter.onnx" in html
    assert f"report: {out / 'report.html'}" in result.output
    again = CliRunner().invoke(cli, ["demo", "--out", str(out), "--images", "40", "--workers", "0", "--quiet"])
    assert again.exit_code == 0  # a second run resumes the finished audits
