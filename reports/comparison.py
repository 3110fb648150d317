"""The comparison view of several runs: the paper's Figure 1 (clean metric vs performance drop per
run) as a scatter, a per-group table per run, and the differences between runs of the same model on
other engines or precisions, with the cells that differ most.
"""

from __future__ import annotations

from reports import references
from reports.compare import deltas, significance
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
    refs = references.for_runs(runs) if len({r.metric for r in runs}) == 1 else []
    chart = scatter(points, f"clean {metric}", "performance drop (1 − rPC)", "clean metric vs performance drop per run",
                    [(r["model"], r["P"], 1 - r["rPC"]) for r in refs])
    head = ["run", "verdict", "clean", "mPC", "rPC"] + [f"{g} drop" for g in GROUPS]
    rows = []
    for r in runs:
        pg = r.summary.get("per_group") or {}
        status = r.doc.get("verdict", {}).get("status", "none")
        rows.append([esc(r.label), esc(VERDICT_TEXT.get(status, status)), *(f'<span class="num">{esc(v)}</span>' for v in
                     [pct(r.clean()), pct(r.summary.get("mPC")), pct(r.summary.get("rPC"))]
                     + [pct(drop_of(pg.get(g))) for g in GROUPS])])
    return ('<section id="comparison" class="comparison" data-check="comparison"><h2>Comparison</h2>'
            f'<div class="scatter-wrap">{chart}{_legend(points)}</div>' + table(head, rows, "cmp")
            + references.section(refs, "comparison") + _deltas(runs) + "</section>")


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
    chosen = any(r.baseline for r in runs)
    parts = ["<h3>" + ("Each run against the baseline" if chosen else "Same model, other engine or precision") + "</h3>"]
    for d in found:
        parts.append(f'<div class="delta" data-check="delta"><h4>{esc(d.other.label)} vs {esc(d.base.label)}</h4>'
                     + _headline(d))
        stats = d.stats if d.stats and d.stats.get("summary") else None
        rows = []
        for c, s, a, b, x in d.cells:
            row = [esc(c), f"s{s}", f'<span class="num">{esc(pct(a))}</span>', f'<span class="num">{esc(pct(b))}</span>',
                   f'<span class="num">{esc(pp(x))}</span>']
            if stats:
                row += _cell_stats(d.cell_stats(c, s))
            rows.append(row)
        if rows:
            head = ["corruption", "severity", _short(d.base) + " (base)", _short(d.other), "Δ"]
            if stats:
                head += [f"{_level(stats)} CI", "significant", "McNemar p"]
            parts.append("<p class='muted'>Cells that differ most:</p>" + table(head, rows, "cells"))
        parts.append("</div>")
    return "".join(parts)


def _level(stats: dict) -> str:
    return f"{round(float(stats.get('level', 0.95)) * 100):d}%"


def _headline(d) -> str:
    """Δ clean / mPC / rPC, with the paired interval and a significance mark when `audit compare` ran."""
    stats = d.stats or {}
    if stats.get("comparable") is False:
        note = f'<p class="muted" data-check="not-comparable">Not tested pairwise: {esc(stats.get("reason", ""))}</p>'
    elif not stats:
        note = '<p class="muted">No paired test: the runs\' per-image cell states were not available.</p>'
    else:
        note = f'<p class="muted">{esc(stats.get("method", ""))}; significant: the {_level(stats)} interval excludes 0.</p>'
    parts = []
    for name, key, value in (("clean", "P", d.clean), ("mPC", "mPC", d.mpc), ("rPC", "rPC", d.rpc)):
        entry = (stats.get("summary") or {}).get(key)
        text = f"Δ {name} <b>{esc(pp(value))}</b>"
        if key != "P" and not d.comparable:
            text += f' <span class="sig na" data-check="sig-{key}">not comparable</span>'
        elif entry and entry.get("ci"):
            text += (f' <span class="muted">[{esc(pp(entry["ci"][0]))}, {esc(pp(entry["ci"][1]))}]</span> '
                     f'<span class="sig {"yes" if entry.get("significant") else "no"}" data-check="sig-{key}">{significance(entry)}</span>')
        parts.append(text)
    shared = f'<p class="muted" data-check="shared">{esc(d.note)}.</p>'
    return f'<p class="deltas">{" · ".join(parts)}</p>' + shared + note


def _cell_stats(entry: dict | None) -> list[str]:
    if not entry or not entry.get("ci"):
        return ["—", "—", "—"]
    ci = f"[{pp(entry['ci'][0])}, {pp(entry['ci'][1])}]"
    p = entry.get("mcnemar", {}).get("p_value")
    return [f'<span class="num">{esc(ci)}</span>', "yes" if entry.get("significant") else "no",
            f'<span class="num">{p:.3g}</span>' if isinstance(p, (int, float)) else "—"]


def _short(run: Run) -> str:
    """Engine and precision, the part that differs inside a family of runs (escaped)."""
    engine = run.doc.get("engine", {})
    return esc(f"{engine.get('name', '?')} {engine.get('precision', '')}".strip())
