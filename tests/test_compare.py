"""`audit compare`: paired bootstrap and McNemar on two audits of the same pixels, and the CI gate."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from audit.api import AuditConfig, run_audit
from audit.results.cellstore import CellStore
from audit.cli.main import cli
from audit.analysis.compare import compare_runs, mcnemar
from audit.errors import ResultsError

from .conftest import NORM


def audit(model, data, out, **kw):
    base = dict(model=str(model), task="cifar10", data=str(data), out=str(out), corruptions="gaussian_noise,contrast",
                severities=[1, 3], workers=0, progress=False, examples=0, report=False, overrides=dict(NORM))
    base.update(kw)
    return run_audit(AuditConfig(**base))


@pytest.fixture(scope="module")
def runs(classifier_onnx, cifar_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    audit(classifier_onnx, cifar_dir, root / "a")
    audit(classifier_onnx, cifar_dir, root / "same")
    # the same model fed inputs scaled wrongly: a real, large loss
    audit(classifier_onnx, cifar_dir, root / "worse", overrides={"mean": (0.2, 0.2, 0.2), "std": (0.6, 0.6, 0.6)})
    audit(classifier_onnx, cifar_dir, root / "seed1", seed=1)
    audit(classifier_onnx, cifar_dir, root / "noise", corruptions="gaussian_noise")  # a subset of a's cells
    audit(classifier_onnx, cifar_dir, root / "contrast", corruptions="contrast", severities=[2])  # none of noise's
    return root


def test_identical_runs_differ_by_nothing_significant(runs):
    doc = compare_runs(runs / "a", runs / "same", samples=200)
    for key in ("P", "mPC", "rPC"):
        assert doc["summary"][key]["delta"] == 0 and not doc["summary"][key]["significant"]
    assert all(c["mcnemar"]["p_value"] == 1.0 for c in doc["cells"])


def test_a_large_loss_is_significant_and_matches_independent_statistics(runs):
    doc = compare_runs(runs / "a", runs / "worse", samples=2000, seed=3)
    clean = doc["summary"]["P"]
    assert clean["delta"] < -0.1 and clean["significant"] and clean["ci"][1] < 0
    # independent: the normal-theory interval of the paired per-image differences on the clean cell
    hits = [CellStore(runs / r).load(("clean", 0))[1]["hit1"].astype(float) for r in ("a", "worse")]
    d = hits[1] - hits[0]
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    assert clean["delta"] == pytest.approx(d.mean())
    assert clean["ci"][0] == pytest.approx(d.mean() - half, abs=0.025)
    assert clean["ci"][1] == pytest.approx(d.mean() + half, abs=0.025)
    # McNemar per cell equals scipy's exact binomial test on the discordant pairs
    cell = next(c for c in doc["cells"] if c["corruption"] == "clean")
    b, c = int(((hits[0] == 1) & (hits[1] == 0)).sum()), int(((hits[0] == 0) & (hits[1] == 1)).sum())
    assert (cell["mcnemar"]["b"], cell["mcnemar"]["c"]) == (b, c)
    assert cell["mcnemar"]["p_value"] == pytest.approx(stats.binomtest(min(b, c), b + c, 0.5).pvalue)


def test_mcnemar_known_cases():
    base = np.array([1] * 20 + [0] * 2 + [1] * 50, bool)
    other = np.array([0] * 20 + [1] * 2 + [1] * 50, bool)
    strong = mcnemar(base, other)
    assert (strong["b"], strong["c"]) == (20, 2) and strong["p_value"] < 0.001  # 2 * P(X <= 2), X ~ B(22, .5)
    weak = mcnemar(np.array([1, 1, 0, 1], bool), np.array([0, 0, 0, 1], bool))
    assert weak["p_value"] == pytest.approx(0.5)  # b = 2, c = 0: 2 * (1/4)


def test_runs_that_saw_other_pixels_are_not_compared(runs):
    with pytest.raises(ResultsError, match="seed differs"):
        compare_runs(runs / "a", runs / "seed1", samples=50)


def test_cli_gate_fails_on_a_significant_loss_only(runs, tmp_path):
    result = CliRunner().invoke(cli, ["compare", str(runs / "a"), str(runs / "worse"), "--samples", "200",
                                      "--fail-if-worse", "0.01", "-o", str(tmp_path / "cmp.json")])
    assert result.exit_code == 2 and "significantly worse than the base" in result.output
    assert (tmp_path / "cmp.json").is_file()
    result = CliRunner().invoke(cli, ["compare", str(runs / "a"), str(runs / "same"), "--samples", "100",
                                      "--fail-if-worse", "0.01"])
    assert result.exit_code == 0 and "gate: pass" in result.output


def test_report_shows_intervals_significance_and_the_chosen_baseline(runs, tmp_path):
    args = [str(runs / r / "results.json") for r in ("worse", "a", "seed1")]
    result = CliRunner().invoke(cli, ["report", *args, "-o", str(tmp_path / "r.html"), "--baseline", args[1],
                                      "--samples", "100"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r.html").read_text()
    assert "Each run against the baseline" in html
    assert 'data-check="sig-P">significant</span>' in html  # worse vs a: the large loss
    assert 'data-check="not-comparable"' in html and "seed differs" in html  # seed1 saw other pixels
    md = CliRunner().invoke(cli, ["report", *args[:2], "-o", str(tmp_path / "r.md"), "--format", "md",
                                  "--baseline", args[1], "--samples", "100"])
    assert md.exit_code == 0 and "(significant)" in (tmp_path / "r.md").read_text()


def test_deltas_stand_on_the_cells_both_runs_hold(runs, tmp_path):
    """Same model, seed and images; `a` over noise and contrast, `noise` over noise alone: the runs' own
    mPCs differ, but on the cells both hold nothing changed, and every view says so."""
    own = [json.loads((runs / r / "results.json").read_text())["summary"]["metrics"]["top1"]["mPC"] for r in ("a", "noise")]
    assert own[0] != own[1]  # what a delta of the two summaries would report
    doc = compare_runs(runs / "a", runs / "noise", samples=100)
    assert doc["summary"]["mPC"]["delta"] == 0 and doc["summary"]["mPC"]["ci"] == [0.0, 0.0]
    assert doc["shared"]["mpc_cells"] == 2 and doc["shared"]["only_base"] == ["contrast-s1", "contrast-s3"]
    text = CliRunner().invoke(cli, ["compare", str(runs / "a"), str(runs / "noise"), "--samples", "100"])
    assert text.exit_code == 0 and "mPC and rPC on the 2 corrupted cells both runs hold" in text.output
    for out in _reports(runs, ("a", "noise"), tmp_path, samples=100):
        assert "Δ mPC +0.0 pp" in out.replace("<b>", "").replace("</b>", "")
        assert "on the 2 cells both runs hold (left out: 2 only in the base)" in out
        assert "not significant" in out  # the same mark in both formats
    line = next(x for x in (tmp_path / "r.md").read_text().splitlines() if "Δ mPC" in x)
    assert "Δ mPC +0.0 pp [+0.0 pp, +0.0 pp] (not significant)" in line


def _reports(runs, names, tmp_path, samples: int):
    """`audit report` of the named runs as HTML (r.html) and Markdown (r.md): each page's text, HTML first."""
    args = [str(runs / r / "results.json") for r in names]
    for fmt in ("html", "md"):
        result = CliRunner().invoke(cli, ["report", *args, "-o", str(tmp_path / f"r.{fmt}"), "--format", fmt,
                                          "--samples", str(samples)])
        assert result.exit_code == 0, result.output
        yield (tmp_path / f"r.{fmt}").read_text()


def test_runs_without_a_shared_corrupted_cell_are_not_comparable(runs, tmp_path):
    with pytest.raises(ResultsError, match="share no corrupted cell"):
        compare_runs(runs / "noise", runs / "contrast", samples=50)
    for out in _reports(runs, ("noise", "contrast"), tmp_path, samples=50):
        assert "mPC and rPC not comparable: the runs share no corrupted cell" in out
    assert 'data-check="sig-mPC">not comparable</span>' in (tmp_path / "r.html").read_text()
    assert "Δ mPC – (not comparable)" in (tmp_path / "r.md").read_text()
