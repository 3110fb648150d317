"""Comparison of several runs: families of the same model, deltas, the cells that differ most."""

from __future__ import annotations

import json

import pytest

from reports import load_runs
from reports.compare import deltas, families
from tests.reports.synth import cell_value, make_results


def test_same_model_paired_other_model_not(fp32_results, int8_results, other_results):
    runs = load_runs([int8_results, other_results, fp32_results])
    fams = families(runs)
    assert len(fams) == 1 and {r.doc["engine"]["precision"] for r in fams[0]} == {"fp32", "int8"}
    (d,) = deltas(runs)
    assert d.base.doc["engine"]["precision"] == "fp32"  # fp32 is the baseline even when given second


def test_deltas_are_other_minus_base(fp32_results, int8_results):
    base, other = load_runs([fp32_results, int8_results])
    (d,) = deltas([base, other])
    assert d.clean == pytest.approx(0.38 - 0.40)
    assert d.mpc == pytest.approx(other.summary["mPC"] - base.summary["mPC"])
    assert d.rpc == pytest.approx(other.summary["rPC"] - base.summary["rPC"])
    assert len(d.cells) == 10
    magnitudes = [abs(c[4]) for c in d.cells]
    assert magnitudes == sorted(magnitudes, reverse=True)
    # the top cell is the largest |delta| over all 95 cells, computed independently
    names = [n for n, _ in base.corruptions()]
    largest = max(abs(cell_value(0.38, i, s, 0.1) - cell_value(0.4, i, s, 0.08)) for i in range(19) for s in range(1, 6))
    assert magnitudes[0] == pytest.approx(largest)
    corruption, severity, a, b, delta = d.cells[0]
    assert (a, b) == (base.cell(corruption, severity), other.cell(corruption, severity)) and corruption in names


def test_match_by_name_without_source_hash(tmp_path):
    a = make_results(tmp_path / "a", model="net", source_sha256=None, examples=0)
    b = make_results(tmp_path / "b", model="net", source_sha256=None, precision="fp16", examples=0)
    c = make_results(tmp_path / "c", model="net", source_sha256=None, precision="int8", examples=0)
    doc = json.loads(c.read_text())
    doc["dataset"]["path"] = "other/data"  # same model, other data: not comparable
    c.write_text(json.dumps(doc))
    (d,) = deltas(load_runs([a, b, c]))
    assert d.other.doc["engine"]["precision"] == "fp16" and d.clean == pytest.approx(0.0)


def test_comparison_view_in_html(comparison_html):
    page = comparison_html.read_text()
    section = page[page.index('id="comparison"'):page.index('id="run1"')]
    assert 'class="chart scatter"' in section and section.count("<circle") == 3
    assert section.count('data-check="delta"') == 1
    assert "Δ clean <b>-2.0 pp</b>" in section
    assert section.count("<tr>") == 1 + 3 + 1 + 10  # heads + 3 runs, delta table head + top 10
    assert page.count('data-check="verdict"') == 3 and page.count('data-check="heatmap"') == 3


def test_scatter_moves_a_marker_aside_instead_of_hiding_it():
    import re

    from reports.svg import scatter

    svg = scatter([("fp32", 0.87, 0.099), ("int8", 0.87, 0.100), ("other", 0.5, 0.3)], "clean", "drop", "fig")
    markers = [(float(x), float(y)) for x, y in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="9"', svg)]
    assert len(markers) == 3
    (x1, y1), (x2, y2) = markers[:2]
    assert (x1 - x2) ** 2 + (y1 - y2) ** 2 >= 18 ** 2  # no marker covers another
    assert svg.count('r="2.5"') == 1  # the moved one keeps a dot at its true value, with a leader line
    assert ">1</text>" in svg and ">2</text>" in svg
