"""The comparison view of several runs: the paper's Figure 1 (clean metric vs performance drop per
run) as a scatter, a per-group table per run, and the differences between runs of the same model on
other engines or precisions, with the cells that differ most.
"""

from __future__ import annotations

from reports.compare import deltas
from reports.fmt import drop_of, esc, is_num, pct, pp
from reports.load import GROUPS, Run
from reports.sections import VERDICT_TEXT, table
from reports.svg import SERIES, scatter


def comparison(runs: list[Run]) -> str:
    """The comparison section (empty string for a single run).

    Example:
        >>> comparison([load_run("out/results.json")])  # one run: nothing to compare  # doctest: +SKIP
        ''
    """
    if len(runs) < 2:
        return ""
    metric = runs[0].metric_label if len({r.metric for r in runs}) == 1 else "primary metric"
    points = [(r.label, r.clean(), drop_of(r.summary)) for r in runs]
    chart = scatter(points, f"clean {metric}", "performance drop (1 − rPC)", "clean metric vs performance drop per run")
    head = ["run", "verdict", "clean", "mPC", "rPC"] + [f"{g} drop" for g in GROUPS]
    rows = []
    for r in runs:
        pg = r.summary.get("per_group") or {}
        status = r.doc.get("verdict", {}).get("status", "none")
        rows.append([esc(r.label), esc(VERDICT_TEXT.get(status, status)), *(f'<span class="num">{esc(v)}</span>' for v in
                     [pct(r.clean()), pct(r.summary.get("mPC")), pct(r.summary.get("rPC"))]
                     + [pct(drop_of(pg.get(g))) for g in GROUPS])])
    return ('<section id="comparison" class="comparison" data-check="comparison"><h2>Comparison</h2>'
            f'<div class="scatter-wrap">{chart}{_legend(points)}</div>' + table(head, rows, "cmp") + _deltas(runs) + "</section>")


def _legend(points: list[tuple[str, float | None, float | None]]) -> str:
    items = []
    for i, (name, x, y) in enumerate(points):
        value = f"{pct(x)} clean, {pct(y)} drop" if is_num(x) and is_num(y) else "not plotted: clean metric or drop undefined"
        items.append(f'<li><span class="dot" style="background:{SERIES[i % len(SERIES)]}">{i + 1}</span>'
                     f"{esc(name)} <span class='muted'>— {esc(value)}</span></li>")
    return f'<ol class="legend">{"".join(items)}</ol>'


def _deltas(runs: list[Run]) -> str:
    found = deltas(runs)
    if not found:
        return '<p class="muted">No two runs audit the same model on the same task and data, so there are no engine / precision differences to show.</p>'
    parts = ["<h3>Same model, other engine or precision</h3>"]
    for d in found:
        parts.append(f'<div class="delta" data-check="delta"><h4>{esc(d.other.label)} vs {esc(d.base.label)}</h4>'
                     f'<p class="deltas">Δ clean <b>{esc(pp(d.clean))}</b> · Δ mPC <b>{esc(pp(d.mpc))}</b> · '
                     f'Δ rPC <b>{esc(pp(d.rpc))}</b></p>')
        rows = [[esc(c), f"s{s}", f'<span class="num">{esc(pct(a))}</span>', f'<span class="num">{esc(pct(b))}</span>',
                 f'<span class="num">{esc(pp(x))}</span>'] for c, s, a, b, x in d.cells]
        if rows:
            parts.append("<p class='muted'>Cells that differ most:</p>"
                         + table(["corruption", "severity", _short(d.base) + " (base)", _short(d.other), "Δ"], rows, "cells"))
        parts.append("</div>")
    return "".join(parts)


def _short(run: Run) -> str:
    """Engine and precision, the part that differs inside a family of runs (escaped)."""
    engine = run.doc.get("engine", {})
    return esc(f"{engine.get('name', '?')} {engine.get('precision', '')}".strip())
