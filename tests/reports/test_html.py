"""The HTML report: order of sections, escaping, self-containment, size, graceful gaps."""

from __future__ import annotations

import json
import re

import pytest

from reports import load_run, render_html, write_report
from tests.reports.synth import HOSTILE, HOSTILE_ATTR, make_results

MB = 1_000_000


@pytest.fixture(scope="module")
def page(fp32_results) -> str:
    return write_report([fp32_results], fp32_results.parent / "report.html").read_text()


def test_sections_in_order(page):
    ids = ["run1-verdict", "run1-groups", "run1-heatmap", "run1-corruptions", "run1-examples", "run1-provenance"]
    positions = [page.index(f'id="{i}"') for i in ids]
    assert positions == sorted(positions)


def test_verdict_headline_with_cis(page):
    verdict = page[page.index('id="run1-verdict"'):page.index('id="run1-groups"')]
    assert "FAIL" in verdict and "badge-fail" in verdict
    assert "40.0% [38.0, 42.0]" in verdict  # clean P with its CI
    assert re.search(r"\d+\.\d% \[\d+\.\d, \d+\.\d\]", verdict.split("mPC")[1])
    assert "coco (detection)" in verdict and "50 images" in verdict


def test_hostile_strings_are_text(page):
    # the raw strings never appear; their escaped forms do (text, attributes, SVG text)
    assert HOSTILE not in page and HOSTILE_ATTR not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    # exactly one script element (the report's own) and no raw <img> element from a hostile value
    assert page.count("<script") == 1 and "<img" not in page


def test_no_external_urls(page, comparison_html):
    for text in (page, comparison_html.read_text()):
        assert not re.search(r"https?://", text, re.I)
        assert not re.search(r"""["'(\s]//[\w.-]""", text)  # protocol-relative //host
        assert "url(" not in text and "@import" not in text
        for attr in re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)""", text, re.I):
            assert attr.startswith(("data:", "#")), attr


def test_images_embedded_and_downscaled(page, fp32_results):
    uris = re.findall(r'href="(data:image/(?:png|jpeg);base64,[^"]+)"', page)
    assert len(uris) == 30  # 3 images x (clean + 3 corruptions x 3 severities)
    thumb = (fp32_results.parent / "examples/00000-clean-s0.png").stat().st_size
    assert max(len(u) for u in uris) < thumb  # re-encoded smaller than the source PNG


def test_size_budget_for_19x5_audit_with_examples(page):
    assert len(page.encode()) < 5 * MB
    # every example fits: none had to be left out for this audit
    assert "left out to keep the report small" not in page


def test_image_budget_enforced(fp32_results):
    small = render_html([load_run(fp32_results)], image_budget=60_000)
    assert "left out to keep the report small" in small
    assert sum(len(u) for u in re.findall(r'data:image/[^"]+', small)) <= 60_000


def test_heatmap_has_every_cell_with_values(page):
    heat = page[page.index('id="run1-heatmap"'):page.index('id="run1-corruptions"')]
    assert heat.count('class="hm-cell"') == 95
    assert "38.4%" in heat and 'class="legend"' in heat
    assert heat.count('class="chart curve"') == 19


def test_per_corruption_table(page):
    table = page[page.index('id="run1-corruptions"'):page.index('id="run1-examples"')]
    row = re.search(r"<tr><td>glass_blur</td>.*?</tr>", table).group(0)
    assert "30.4%" in row and "24.0%" in row and "s5 (24.0%)" in row


def test_examples_grouped_per_image_with_boxes(page):
    ex = page[page.index('id="run1-examples"'):page.index('id="run1-provenance"')]
    assert ex.count('class="ex-row"') == 3 and ex.count("<figure") == 30
    assert ex.count('stroke-width="1.6"') == 60  # two boxes per thumbnail (256 px wide)
    assert "glass_blur, severity 3" in ex and "0.91" in ex
    assert ex.count('class="gt"') == 2 * 10  # the first image's true box, dashed, in each of its 10 figures
    assert ex.count("1 true object(s), dashed") == 10


def test_provenance(page):
    prov = page[page.index('id="run1-provenance"'):]
    for text in ("cd" * 32, "onnxruntime, provider cpu", "limit 50 images, subset seed 0", "imagenet-c",
                 "original image resolution, before resize", "321.5 s", "2026-11-22T10:00:00Z", "onnxruntime 1.31.0"):
        assert text in prov, text


def test_graceful_gaps(tmp_path):
    """No examples, partial, hold-out only, null metrics and rPC None with its note all render."""
    path = make_results(tmp_path / "gaps", examples=0, status="partial", holdout_only=True, verdict="none", ci=False)
    doc = json.loads(path.read_text())
    doc["cells"][3]["metrics"]["bbox_AP"] = None
    doc["summary"]["holdout"]["bbox_AP"].update(rPC=None, rPC_note="P = 0: rPC undefined")
    path.write_text(json.dumps(doc))
    page = write_report([path], tmp_path / "gaps.html").read_text()
    assert "NO THRESHOLDS SET" in page and "Partial run" in page and "Only hold-out corruptions ran" in page
    assert "No example images" in page and "P = 0: rPC undefined" in page
    assert page.count('class="hm-cell"') == 19  # 4 x 5 hold-out cells, one null
    assert "No corrupted cells" in write_report([_clean_only(tmp_path, doc)], tmp_path / "c.html").read_text()


def _clean_only(tmp_path, doc):
    doc = dict(doc, cells=doc["cells"][:1], summary={"subset": "benchmark", "metrics": {}}, examples=[])
    path = tmp_path / "clean" / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    return path


def test_print_stylesheet(page):
    assert "@media print" in page and "break-inside: avoid" in page


def test_label_maps_classes_and_escaping_paths(tmp_path):
    """Label-map overlays and top classes render; an image path leaving the results folder is refused."""
    from PIL import Image

    path = make_results(tmp_path / "seg", examples=1)
    doc = json.loads(path.read_text())
    Image.new("RGBA", (256, 192), (230, 25, 75, 140)).save(tmp_path / "seg" / "examples" / "overlay.png")
    (tmp_path / "secret.png").write_bytes((tmp_path / "seg" / doc["examples"][0]["image"]).read_bytes())
    doc["examples"][0]["prediction"] = {"type": "label_map", "overlay": "examples/overlay.png"}
    doc["examples"][1]["prediction"] = {"type": "classes", "top": [{"label": HOSTILE, "score": 0.625}, {"label": "cat", "score": None}]}
    doc["examples"][1]["ground_truth"] = {"type": "label", "label": "dog"}
    doc["examples"][2]["image"] = "../secret.png"
    path.write_text(json.dumps(doc))
    page = write_report([path], tmp_path / "seg.html").read_text()
    assert 'opacity="0.55"' in page and page.count("data:image/png") == 1  # the RGBA overlay keeps its alpha
    assert page.count("data:image/jpeg") == 9  # photo thumbnails re-encoded as JPEG
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <span class='num'>62.5%</span>" in page and "truth: dog" in page
    assert page.count("image not available") == 1 and "predicted label map (overlay)" in page
