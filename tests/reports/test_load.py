"""Reading results documents: the checks reports/ does itself, and its independence from audit."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from reports import ReportInputError, load_run, load_runs, write_report


def test_loads_document_and_primary_metric(fp32_results):
    run = load_run(fp32_results)
    assert run.metric == "bbox_AP" and run.metric_label == "box AP"
    assert len(run.corruptions()) == 19 and run.severities() == [1, 2, 3, 4, 5]
    assert run.clean() == pytest.approx(0.4)


@pytest.mark.parametrize("content, message", [
    (None, "no results document"),
    ("{not json", "not readable JSON"),
    (json.dumps({"kind": "something.else"}), "not a robustaudit results document"),
    (json.dumps([1, 2]), "not a robustaudit results document"),
    (json.dumps({"kind": "robustaudit.results", "schema_version": "2.0"}), "schema_version '2.0'"),
    (json.dumps({"kind": "robustaudit.results", "schema_version": "1.3"}), "lacks \"task\""),
])
def test_bad_input_is_one_clear_line(tmp_path, content, message):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReportInputError, match=message) as info:
        load_run(path)
    assert "\n" not in str(info.value)


def test_unknown_format_and_no_input_rejected(tmp_path, fp32_results):
    with pytest.raises(ReportInputError, match="unknown report format 'pdf'"):
        write_report([fp32_results], tmp_path / "r.pdf", fmt="pdf")
    with pytest.raises(ReportInputError, match="no results document given"):
        load_runs([])


def test_duplicate_labels_made_unique(fp32_results):
    runs = load_runs([fp32_results, fp32_results])
    assert runs[0].label != runs[1].label


def test_folder_output_gets_report_html(tmp_path, fp32_results):
    out = write_report([fp32_results], tmp_path)
    assert out == tmp_path / "report.html" and out.read_text().startswith("<!DOCTYPE html>")


def test_reports_imports_nothing_of_robustaudit():
    """The floor: reports/ reads the document only (no audit, exporters, finetune imports)."""
    for path in (Path(__file__).parents[2] / "reports").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in {"audit", "exporters", "finetune"}, f"{path.name} imports {name}"


def test_cbar_suite_rows_are_their_own_group(tmp_path):
    from audit.metrics.robustness import summarize
    from reports.load import Run
    from reports.sections import group_rows

    cells = [{"corruption": c, "severity": s, "group": g, "metrics": {"top1": v}}
             for c, s, g, v in [("clean", 0, "clean", 0.8), ("fog", 1, "weather", 0.4), ("sparkles", 1, "cbar", 0.6)]]
    doc = {"task": {"primary_metric": "top1"}, "cells": cells, "summary": summarize(cells, ["top1"])}
    run = Run(doc, tmp_path)
    rows = dict(group_rows(run))
    assert rows["weather"]["mPC"] == 0.4 and rows["ImageNet-C-bar"]["mPC"] == 0.6
    assert run.summary["mPC"] == 0.4  # C-bar never enters the benchmark mPC
