"""The Markdown summary for CI step summaries."""

from __future__ import annotations

from reports import write_report
from tests.reports.synth import HOSTILE


def test_single_run_summary(tmp_path, fp32_results):
    text = write_report([fp32_results], tmp_path / "summary.md", fmt="md").read_text()
    assert text.startswith("# Robustness audit\n")
    assert "**Verdict: FAIL**" in text
    assert "- clean box AP: **40.0% [38.0, 42.0]**" in text
    assert "| noise | 34.0% | 85.0% | 15.0% |" in text
    worst = text[text.index("Worst corruptions"):]
    assert worst.index("glass_blur") < worst.index("defocus_blur")  # sorted by drop, largest first
    assert HOSTILE not in text and "&lt;script&gt;" in text  # CI hosts render Markdown as HTML


def test_comparison_table(tmp_path, fp32_results, int8_results, other_results):
    text = write_report([fp32_results, int8_results, other_results], tmp_path / "cmp.md", fmt="md", title="CI").read_text()
    assert text.startswith("# CI\n") and "## Comparison" in text
    section = text[text.index("## Comparison"):text.index("\n## ", text.index("## Comparison") + 1)]
    table = [line for line in section.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 3  # header + one row per run
    assert "| NO THRESHOLDS SET | 50.0% |" in table[3]
    assert "Δ clean -2.0 pp" in text and "tensorrt int8 vs" in text
