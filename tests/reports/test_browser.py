"""The report in a real browser (Debian's headless Chromium, network closed): no console errors, the
verdict, heatmap and comparison present and visible, and a screenshot that is not blank.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.reports import browser


def test_comparison_report_renders_cleanly(comparison_html):
    status, problems = browser.page_status(comparison_html)
    assert problems == [] and status["errors"] == []
    assert status["verdict"] == {"present": 3, "visible": 3}
    assert status["heatmap"] == {"present": 3, "visible": 3}
    assert status["comparison"] == {"present": 1, "visible": 1} and status["delta"]["visible"] == 1
    assert status["heatmapCells"] == 3 * 95 and status["images"] == 30


def test_checks_detect_a_broken_page(tmp_path):
    """Control: the same method sees script errors and console output, so a clean result means something."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html data-report-status=""><body><div data-check="verdict" style="display:none">x</div>'
                    "<script>console.error('boom'); undefinedFunction();</script></body></html>")
    status, problems = browser.page_status(page)
    assert status == {} and any("boom" in p for p in problems) and any("Uncaught" in p for p in problems)


def test_screenshot_is_a_real_page(comparison_html, tmp_path):
    shot = tmp_path / "report.png"
    result = browser.run(comparison_html, "--window-size=1280,2000", f"--screenshot={shot}")
    assert shot.exists(), result.stderr[-500:]
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape[:2] == (2000, 1280)
    assert image.std() > 20 and len(np.unique(image.reshape(-1, 3), axis=0)) > 500  # not blank
    # the first run's FAIL badge (#b91c1c) is drawn in its colour, above the fold
    assert (np.abs(image - (0xB9, 0x1C, 0x1C)).sum(-1) < 12).sum() > 500


def test_missing_chromium_fails_with_instructions_or_skips(monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.setattr(browser.os.path, "exists", lambda path: False)
    monkeypatch.delenv("ROBUSTAUDIT_SKIP_BROWSER", raising=False)
    with pytest.raises(pytest.fail.Exception, match="scripts/install-system-deps.sh"):
        browser.chromium()
    monkeypatch.setenv("ROBUSTAUDIT_SKIP_BROWSER", "1")
    with pytest.raises(pytest.skip.Exception):
        browser.chromium()


def test_prints_to_pdf(comparison_html, tmp_path):
    pdf = tmp_path / "report.pdf"
    result = browser.run(comparison_html, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert pdf.exists(), result.stderr[-500:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page\n") + data.count(b"/Type/Page") + data.count(b"/Type /Page ") >= 1
