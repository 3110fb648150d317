"""The report's "Adversarial robustness" section, from a real `audit attack` run (FP32 + INT8 transfer)."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from audit.attack_audit import AttackConfig, run_attack_audit
from reports import write_report
from reports.adversarial import budget_label
from reports.fmt import pct
from tests.conftest import NORM


class Text(HTMLParser):
    """The page's visible text, its <svg> titles, ids and image sources."""

    def __init__(self):
        super().__init__()
        self.text, self.ids, self.images, self._skip = [], set(), [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def parse(path) -> Text:
    parser = Text()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def attacked(classifier_onnx, cifar_dir, tmp_path_factory):
    from audit.spec.model import ModelSpec
    from exporters.precision import to_int8

    folder = tmp_path_factory.mktemp("report-attack")
    spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(32, 32), **NORM)
    int8 = to_int8(classifier_onnx, folder / "classifier-int8.onnx", spec, cifar_dir)
    config = AttackConfig(model=str(classifier_onnx), task="cifar10", data=str(cifar_dir), out=str(folder / "run"),
                          attacks=["pgd", "fgsm"], eps=[0.0, 4 / 255, 8 / 255], steps=3, limit=12, overrides=dict(NORM),
                          transfer_to=[str(int8)], examples=2, progress=False)
    return run_attack_audit(config)


def test_section_shows_every_figure(attacked):
    page = parse(attacked.out / "report.html")
    text = " ".join(page.text)
    adv = attacked.adversarial
    assert "run1-adversarial" in page.ids and "Adversarial robustness" in text
    assert "Threat model:" in text and "without re-quantising to uint8" in text and "engine-onnx" in text
    for engine in adv["engines"]:
        assert f"robust acc. · {engine['name']}" in text
    for cell in adv["cells"]:
        assert budget_label(cell["eps"], "linf") in text
        for figures in cell["engines"].values():
            assert pct(figures["accuracy"]) in text
        assert pct(cell["success_rate"]) in text
    assert "robust accuracy vs budget per attack" in attacked.out.joinpath("report.html").read_text()
    assert "robust accuracy per engine" in attacked.out.joinpath("report.html").read_text()  # FP32 vs INT8 chart
    # an attack-only document shows no empty corruption sections
    assert "run1-heatmap" not in page.ids and "no --fail-under-robust-acc threshold" in text


def test_examples_are_embedded_pngs(attacked):
    page = parse(attacked.out / "report.html")
    pngs = [src for src in page.images if src.startswith("data:image/png;base64,")]
    assert len(pngs) == 3 * len(attacked.adversarial["examples"]) > 0
    assert "perturbation ×" in " ".join(page.text)


def test_values_are_escaped(attacked, tmp_path):
    doc = json.loads((attacked.out / "results.json").read_text())
    doc["adversarial"]["attacks"][0] = doc["adversarial"]["verdict_attack"] = "<script>x</script>"
    for cell in doc["adversarial"]["cells"]:
        cell["attack"] = "<script>x</script>" if cell["attack"] == "pgd" else cell["attack"]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    html = write_report([path], tmp_path / "r.html").read_text()
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_several_runs_side_by_side(attacked, tmp_path):
    doc = json.loads((attacked.out / "results.json").read_text())
    doc["model"]["name"] = "other.onnx"
    other = tmp_path / "other" / "results.json"
    other.parent.mkdir()
    other.write_text(json.dumps(doc))
    page = parse(write_report([attacked.out / "results.json", other], tmp_path / "both.html"))
    text = " ".join(page.text)
    assert "adversarial-comparison" in page.ids and "Adversarial robustness, side by side" in text
    assert "other.onnx" in text and "run2-adversarial" in page.ids


def test_markdown_summary_has_the_robust_accuracy_table(attacked, tmp_path):
    text = write_report([attacked.out / "results.json"], tmp_path / "r.md", fmt="md").read_text()
    adv = attacked.adversarial
    rows = [line for line in text.splitlines() if line.startswith(("| pgd |", "| fgsm |"))]
    assert len(rows) == len(adv["cells"])
    for row, cell in zip(rows, adv["cells"]):
        assert all(pct(figures["accuracy"]) in row for figures in cell["engines"].values())
