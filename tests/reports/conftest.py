"""Fixtures: synthetic 19 x 5 results documents (validated against the schema) and their reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.results.document import validate
from tests.reports.synth import make_results


def _valid(path: Path) -> Path:
    validate(json.loads(path.read_text()), str(path))  # the synthetic documents obey the real schema
    return path


@pytest.fixture(scope="session")
def fp32_results(tmp_path_factory) -> Path:
    """A detection audit, fp32 on ONNX Runtime, failing its threshold, with 30 example thumbnails."""
    return _valid(make_results(tmp_path_factory.mktemp("fp32")))


@pytest.fixture(scope="session")
def int8_results(tmp_path_factory) -> Path:
    """The same model (same source hash) as int8 on TensorRT: lower clean AP, steeper drop."""
    return _valid(make_results(tmp_path_factory.mktemp("int8"), p=0.38, slope=0.1, precision="int8",
                               engine="tensorrt", verdict="pass", examples=0))


@pytest.fixture(scope="session")
def other_results(tmp_path_factory) -> Path:
    """A different model (other hash and name), no thresholds, no CIs."""
    return _valid(make_results(tmp_path_factory.mktemp("other"), p=0.5, slope=0.05, model="resnet",
                               source_sha256="ef" * 32, verdict="none", examples=0, ci=False))


@pytest.fixture(scope="session")
def comparison_html(tmp_path_factory, fp32_results, int8_results, other_results) -> Path:
    """The comparison report of the three runs."""
    from reports import write_report

    return write_report([fp32_results, int8_results, other_results], tmp_path_factory.mktemp("cmp") / "cmp.html")
