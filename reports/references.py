"""Published reference rows (reports/assets/references.json) shown beside measured runs.

A row is shown for a run when the task type, the dataset format and class count, and the metric
match (e.g. a COCO audit with 80 categories and box AP gets the COCO-C rows of Michaelis et al.).
They are drawn as hollow, lettered markers and listed in their own table, always labelled
"published", never averaged or compared with measured runs as if they were one.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from reports.fmt import esc, pct
from reports.load import ASSETS, Run

_FILE = "references.json"


@lru_cache(maxsize=1)
def _rows() -> list[dict[str, Any]]:
    return json.loads((ASSETS / _FILE).read_text(encoding="utf-8"))["references"]


def matching(run: Run) -> list[dict[str, Any]]:
    """The published rows that describe the same task, dataset and metric as `run`.

    Example:
        >>> [r["model"] for r in matching(load_run("coco-run/results.json"))]  # doctest: +SKIP
        ['Faster R-CNN R50-FPN', 'Mask R-CNN R50-FPN (boxes)', 'RetinaNet R50-FPN']
    """
    doc = run.doc
    task, dataset = doc.get("task", {}), doc.get("dataset", {})
    fmt, classes = dataset.get("format"), len(task.get("class_names") or [])
    return [r for r in _rows() if r["task_type"] == task.get("type") and r["metric"] == run.metric
            and r["match"]["format"] == fmt and r["match"]["num_classes"] == classes]


def for_runs(runs: list[Run]) -> list[dict[str, Any]]:
    """The rows matching any of `runs`, each once, in file order."""
    ids = {r["id"] for run in runs for r in matching(run)}
    return [r for r in _rows() if r["id"] in ids]


def section(rows: list[dict[str, Any]], anchor: str) -> str:
    """A table of published reference rows (empty string when none match)."""
    if not rows:
        return ""
    body = "".join(f"<tr><td>R{i + 1}</td><td>{esc(r['model'])}</td><td>{esc(r['dataset'])}</td>"
                   f'<td class="num">{esc(pct(r["P"]))}</td><td class="num">{esc(pct(r["mPC"]))}</td>'
                   f'<td class="num">{esc(pct(r["rPC"]))}</td><td class="muted">{esc(r["source"])}</td></tr>'
                   for i, r in enumerate(rows))
    return (f'<section class="card references" id="{esc(anchor)}-references" data-check="references">'
            "<h3>Published reference points</h3><p class='muted'>Figures from the literature for the same task, data "
            "and metric, for context: published, not measured by this run, and made with other models.</p>"
            "<table><thead><tr><th></th><th>model</th><th>data</th><th>P</th><th>mPC</th><th>rPC</th><th>source</th>"
            f"</tr></thead><tbody>{body}</tbody></table></section>")
