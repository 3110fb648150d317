"""`audit report`: exit codes and one-line messages (click's CliRunner)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from audit.cli.main import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def test_html_and_md(tmp_path, fp32_results, int8_results):
    result = invoke("report", fp32_results, int8_results, "-o", tmp_path / "cmp.html", "--title", "FP32 vs INT8")
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "<title>FP32 vs INT8</title>" in (tmp_path / "cmp.html").read_text()
    result = invoke("report", fp32_results, "-o", tmp_path / "s.md", "--format", "md")
    assert result.exit_code == 0 and (tmp_path / "s.md").read_text().startswith("# Robustness audit")


@pytest.mark.parametrize("content, message", [
    (None, "no results document at"),
    ("not json", "is not readable JSON"),
    ('{"kind": "x"}', "is not a robustaudit results document"),
    ('{"kind": "robustaudit.results", "schema_version": "2.1"}', "schema_version '2.1'"),
])
def test_bad_input_one_line_exit_1(tmp_path, content, message):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    result = invoke("report", path, "-o", tmp_path / "r.html")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "r.html").exists()


def test_usage_errors_exit_1(tmp_path, fp32_results):
    assert invoke("report", "-o", tmp_path / "r.html").exit_code == 1  # no results given
    assert invoke("report", fp32_results, "-o", tmp_path / "r", "--format", "pdf").exit_code == 1
