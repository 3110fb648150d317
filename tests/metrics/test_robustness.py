"""Robustness summaries: mPC over evaluated cells, rPC, groups, hold-out apart, bootstrap, mCE."""

import weakref

import numpy as np
import pytest

from audit.metrics import Accuracy
from audit.metrics.robustness import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS, bootstrap_ci, mce, summarize


def cell(corruption, severity, value):
    return {"corruption": corruption, "severity": severity, "metrics": {"top1": value}}


def test_mpc_over_evaluated_cells_groups_and_holdout():
    cells = [cell("clean", 0, 0.8), cell("gaussian_noise", 1, 0.6), cell("fog", 1, 0.4), cell("fog", 2, 0.2),
             cell("saturate", 3, 0.7)]
    s = summarize(cells, ["top1"])
    fig = s["metrics"]["top1"]
    assert s["subset"] == "benchmark" and fig["cells"] == 3
    assert fig["mPC"] == pytest.approx(0.4)  # (0.6 + 0.4 + 0.2) / 3: never divided by 5 severities
    assert fig["rPC"] == pytest.approx(0.5)
    assert fig["per_group"]["weather"]["mPC"] == pytest.approx(0.3)
    assert fig["per_group"]["weather"]["drop"] == pytest.approx(1 - 0.3 / 0.8)
    assert fig["per_corruption"]["fog"]["worst_severity"] == 2
    assert fig["per_severity"] == {"1": pytest.approx(0.5), "2": pytest.approx(0.2)}
    assert s["holdout"]["top1"]["mPC"] == pytest.approx(0.7)


def test_zero_clean_metric_gives_undefined_rpc():
    fig = summarize([cell("clean", 0, 0.0), cell("fog", 1, 0.0)], ["top1"])["metrics"]["top1"]
    assert fig["rPC"] is None and "undefined" in fig["rPC_note"]


def test_holdout_only_run_is_summarised_and_labelled():
    s = summarize([cell("clean", 0, 0.9), cell("spatter", 1, 0.45)], ["top1"])
    assert s["subset"] == "evaluated" and s["metrics"]["top1"]["mPC"] == pytest.approx(0.45)


def test_mce_matches_a_hand_computation():
    top1 = {(c, s): 0.5 for c in ALEXNET_ERRORS for s in range(1, 6)}
    out = mce(0.7, top1)
    assert out["mCE"] == pytest.approx(np.mean([0.5 / a for a in ALEXNET_ERRORS.values()]))
    assert out["relative_mCE"] == pytest.approx(np.mean([(0.5 - 0.3) / (a - ALEXNET_CLEAN_ERROR) for a in ALEXNET_ERRORS.values()]))
    assert mce(0.7, {("fog", 1): 0.5}) == {}  # a corruption needs all 5 severities


def _accuracy(hits):
    m = Accuracy(np.zeros(len(hits), int), num_classes=2)
    for i, h in enumerate(hits):
        m.update(i, np.array([1.0, 0.0]) if h else np.array([0.0, 1.0]))
    return m


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_more_images():
    rng = np.random.default_rng(0)
    widths = []
    for n in (40, 400):
        clean = _accuracy(rng.random(n) < 0.9)
        cells = {("fog", 1): _accuracy(rng.random(n) < 0.6), ("fog", 3): _accuracy(rng.random(n) < 0.4)}
        ci = bootstrap_ci(clean, cells, "top1", n, samples=300, seed=1)
        mpc = np.mean([m.compute()["top1"] for m in cells.values()])
        assert ci["mPC"][0] <= mpc <= ci["mPC"][1]
        assert ci["rPC"][0] <= mpc / clean.compute()["top1"] <= ci["rPC"][1]
        widths.append(ci["mPC"][1] - ci["mPC"][0])
    assert widths[1] < widths[0] / 2


def test_cbar_is_its_own_suite_never_in_mpc():
    cells = [cell("clean", 0, 0.8), cell("fog", 1, 0.4), cell("saturate", 1, 0.7),
             cell("sparkles", 1, 0.6), cell("plasma_noise", 2, 0.2)]
    s = summarize(cells, ["top1"])
    assert s["metrics"]["top1"]["mPC"] == pytest.approx(0.4) and s["metrics"]["top1"]["cells"] == 1
    assert s["holdout"]["top1"]["mPC"] == pytest.approx(0.7)
    cbar = s["suites"]["cbar"]["top1"]
    assert cbar["mPC"] == pytest.approx(0.4) and cbar["rPC"] == pytest.approx(0.5)
    assert set(cbar["per_group"]) == {"cbar"} and set(cbar["per_corruption"]) == {"sparkles", "plasma_noise"}
    assert summarize(cells[:2], ["top1"])["suites"] == {}


def test_cbar_only_run_keeps_its_suite_block():
    s = summarize([cell("clean", 0, 0.9), cell("sparkles", 1, 0.45)], ["top1"])
    assert s["suites"]["cbar"]["top1"]["mPC"] == pytest.approx(0.45)


def test_bootstrap_streams_cells_one_at_a_time_with_the_all_in_memory_numbers():
    """Cells read one at a time (a mapping that builds each on access) give the numbers of the loop
    that held every cell: the same draws per cell, the same mean per draw."""
    rng = np.random.default_rng(2)
    n = 50
    clean = _accuracy(rng.random(n) < 0.9)
    held = {("fog", s): _accuracy(rng.random(n) < 0.2 * s) for s in (1, 2, 3)}
    alive = weakref.WeakSet()

    class OneAtATime(dict):  # builds a fresh copy of the cell's metric on each access, as StoredCells does
        def __getitem__(self, key):
            assert len(alive) == 0, "a second cell was built while one was still held"
            source = dict.__getitem__(self, key)
            metric = Accuracy(np.zeros(n, int), num_classes=2)
            metric.load_state(source.state())
            alive.add(metric)
            return metric

    ci = bootstrap_ci(clean, OneAtATime(held), "top1", n, samples=200, seed=4)
    draws = np.random.default_rng(4)
    ps, mpcs = [], []
    for _ in range(200):  # the loop bootstrap_ci ran before it streamed
        pos = draws.integers(0, n, size=n)
        ps.append(clean.compute_on(pos)["top1"])
        mpcs.append(float(np.mean([m.compute_on(pos)["top1"] for m in held.values()])))
    assert ci["P"] == [float(np.percentile(ps, 2.5)), float(np.percentile(ps, 97.5))]
    assert ci["mPC"] == [float(np.percentile(mpcs, 2.5)), float(np.percentile(mpcs, 97.5))]
