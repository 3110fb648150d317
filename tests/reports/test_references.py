"""Published reference points: shown for a run of the same task, data and metric, labelled, never mixed in."""

import json

from reports import write_report
from reports.load import load_run
from reports.references import matching
from tests.reports.synth import make_results


def coco80(path):
    doc = json.loads(path.read_text())
    doc["task"]["class_names"] = [f"class {k}" for k in range(80)]  # the COCO detection set's 80 categories
    path.write_text(json.dumps(doc))
    return path


def test_a_coco_run_gets_the_coco_c_rows_of_its_metric(tmp_path):
    run = load_run(coco80(make_results(tmp_path / "a", examples=0)))
    assert [r["model"] for r in matching(run)] == ["Faster R-CNN R50-FPN", "Mask R-CNN R50-FPN (boxes)", "RetinaNet R50-FPN"]
    html = write_report([run.source], tmp_path / "a" / "r.html").read_text()
    assert 'data-check="references"' in html and "published, not measured by this run" in html
    assert "Michaelis et al. 2019" in html and "50.2%" in html


def test_other_data_gets_no_reference_rows(fp32_results):
    # the synthetic run has 2 classes: not the 80-category COCO set the published rows are about
    assert matching(load_run(fp32_results)) == []


def test_comparison_draws_reference_points_apart_from_runs(tmp_path):
    a = coco80(make_results(tmp_path / "a", examples=0))
    b = coco80(make_results(tmp_path / "b", p=0.3, examples=0, precision="int8"))
    html = write_report([a, b], tmp_path / "cmp.html").read_text()
    assert html.count("published reference: ") == 3 and ">R3</text>" in html
    assert html.count('data-check="references"') == 1  # in the comparison, not repeated per run
