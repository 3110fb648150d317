"""HTML sections of one run, in the report's order: verdict, groups, heatmap and curves, per-corruption
table, provenance. Examples and the comparison of several runs live in their own modules.

Every value from the document goes through `esc`; the numbers are formatted by `reports.fmt`.
"""

from __future__ import annotations

from reports.fmt import DASH, ci_text, drop_of, esc, is_num, pct
from reports.load import GROUPS, Run
from reports.svg import bar_chart, heatmap, line_chart, nice_range

VERDICT_TEXT = {"pass": "PASS", "fail": "FAIL", "none": "NO THRESHOLDS SET"}


def table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table from already-escaped cells (numbers right-aligned by CSS class 'num').

    Example:
        >>> table(["a"], [["1"]])
        '<table class=""><thead><tr><th>a</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>'
    """
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def headline(run: Run) -> dict[str, str]:
    """Escaped headline figures with CIs: P, mPC and rPC (rPC's note when it is undefined).

    Example:
        >>> headline(load_run("out/results.json"))["mPC"]  # doctest: +SKIP
        '32.8% [31.3, 34.2]'
    """
    s = run.summary or run.holdout
    ci = s.get("ci")
    rpc = pct(s.get("rPC")) + ci_text(ci, "rPC")
    if not is_num(s.get("rPC")):
        rpc = DASH + (f' <span class="note">({esc(s.get("rPC_note"))})</span>' if s.get("rPC_note") else "")
    else:
        rpc = esc(rpc)
    return {"P": esc(pct(run.clean()) + ci_text(ci, "P")), "mPC": esc(pct(s.get("mPC")) + ci_text(ci, "mPC")), "rPC": rpc}


def verdict(run: Run, anchor: str) -> str:
    """Section 1: the pass / fail badge with reasons, headline figures and the one-line context.

    Example:
        >>> "badge-fail" in verdict(load_run("out/results.json"), "run1")  # doctest: +SKIP
        True
    """
    doc = run.doc
    status = doc.get("verdict", {}).get("status", "none")
    status = status if status in VERDICT_TEXT else "none"
    reasons = doc.get("verdict", {}).get("reasons") or []
    if status == "none" and not reasons:
        reasons = (["no --fail-under-robust-acc threshold was given to 'audit attack'"] if "adversarial" in doc and not run.corruptions()
                   else ["no --fail-under-rpc / --fail-under-mpc thresholds were given to 'audit run'"])
    h = headline(run)
    m = esc(run.metric_label)
    notes = []
    if doc.get("status") == "partial":
        notes.append("Partial run: some requested cells are missing; figures cover the cells that ran.")
    if not run.summary and run.holdout:
        notes.append("Only hold-out corruptions ran: the headline figures are over the hold-out set.")
    task, ds = doc.get("task", {}), doc.get("dataset", {})
    context = (f"<b>{esc(doc.get('model', {}).get('name'))}</b> · {esc(task.get('name'))} ({esc(task.get('type'))}) · "
               f"{esc(ds.get('format'))} {esc(ds.get('path'))}, {esc(ds.get('num_images'))} images"
               + (f" · {esc(ds['chosen'])}" if ds.get("chosen") else ""))
    return (f'<section id="{anchor}-verdict" class="verdict verdict-{status}" data-check="verdict">'
            f'<div class="badge badge-{status}">{VERDICT_TEXT[status]}</div>'
            f'<div class="headline"><div class="fig"><span class="k">clean {m}</span><span class="v">{h["P"]}</span></div>'
            f'<div class="fig"><span class="k">mPC</span><span class="v">{h["mPC"]}</span></div>'
            f'<div class="fig"><span class="k">rPC</span><span class="v">{h["rPC"]}</span></div></div>'
            + secondary(run) +
            f'<p class="context">{context}</p>'
            f'<ul class="reasons">{"".join(f"<li>{esc(r)}</li>" for r in reasons)}</ul>'
            + "".join(f'<p class="warn">{esc(n)}</p>' for n in notes) + "</section>")


SECONDARY = ("voc_AP50",)  # a format's own figure, shown beside the primary one (VOC's devkit AP50 beside COCO AP)


def secondary(run: Run) -> str:
    """P, mPC and rPC of the run's secondary metrics (e.g. voc_AP50), one line each; empty when none.

    Example:
        >>> secondary(load_run("voc/results.json"))  # doctest: +SKIP
        '<p class="secondary" data-check="secondary-voc_AP50">VOC AP50 (devkit): clean 41.0% · mPC 30.2% · rPC 73.7%</p>'
    """
    metrics = run.doc.get("summary", {}).get("metrics") or {}
    out = []
    for key in SECONDARY:
        block = metrics.get(key)
        if isinstance(block, dict) and key != run.metric:
            label = (run.doc.get("task", {}).get("metrics", {}).get(key) or {}).get("label") or key
            out.append(f'<p class="secondary" data-check="secondary-{esc(key)}">{esc(label)}: clean {esc(pct(block.get("P")))} · '
                       f'mPC {esc(pct(block.get("mPC")))} · rPC {esc(pct(block.get("rPC")))}</p>')
    return "".join(out)


SUITE_LABELS = {"cbar": "ImageNet-C-bar"}


def group_rows(run: Run) -> list[tuple[str, dict]]:
    """(group, per_group entry) for the paper's groups present, then others (e.g. holdout).

    Example:
        >>> [g for g, _ in group_rows(load_run("out/results.json"))]  # doctest: +SKIP
        ['noise', 'blur', 'weather', 'digital', 'hold-out']
    """
    per_group = dict(run.summary.get("per_group") or {})
    rows = [(g, per_group.pop(g)) for g in GROUPS if g in per_group]
    rows += sorted(per_group.items())
    for g, entry in sorted((run.holdout.get("per_group") or {}).items()):
        rows.append((f"{g} (hold-out)" if g != "holdout" else "hold-out", entry))
    for suite, block in sorted(run.suites.items()):  # e.g. ImageNet-C-bar: its own rows, not in mPC
        label = SUITE_LABELS.get(suite, suite)
        rows += [(f"{g} ({label})" if g != suite else label, e) for g, e in sorted((block.get("per_group") or {}).items())]
    return rows


def groups(run: Run, anchor: str) -> str:
    """Section 2: performance drop per corruption group, table and bar chart (paper Tables 1-2).

    Example:
        >>> html = groups(load_run("out/results.json"), "run1")  # doctest: +SKIP
    """
    rows = group_rows(run)
    if not rows:
        return f'<section id="{anchor}-groups"><h3>Performance drop per group</h3><p class="muted">No group figures in these results.</p></section>'
    body = [[esc(g), f'<span class="num">{esc(pct(e.get("mPC")))}</span>', f'<span class="num">{esc(pct(e.get("rPC")))}</span>',
             f'<span class="num">{esc(pct(drop_of(e)))}</span>'] for g, e in rows]
    chart = bar_chart([(g, drop_of(e)) for g, e in rows], "performance drop (1 - rPC) per corruption group")
    return (f'<section id="{anchor}-groups"><h3>Performance drop per corruption group</h3><div class="split">'
            + table(["group", "mPC", "rPC", "drop (1 − rPC)"], body, "groups") + chart + "</div></section>")


def grid(run: Run, anchor: str) -> str:
    """Section 3: corruption x severity heatmap with legend, and a severity curve per corruption.

    Example:
        >>> html = grid(load_run("out/results.json"), "run1")  # doctest: +SKIP
    """
    corruptions, severities = run.corruptions(), run.severities()
    if not corruptions or not severities:
        return f'<section id="{anchor}-heatmap" data-check="heatmap"><h3>Corruption × severity</h3><p class="muted">No corrupted cells in these results.</p></section>'
    values = [(c, [run.cell(c, s) for s in severities]) for c, _ in corruptions]
    lo, hi = nice_range([v for _, vs in values for v in vs], run.clean())
    hm = heatmap(values, severities, (lo, hi), f"{run.metric_label} per corruption and severity")
    curves = "".join(line_chart(c, run.clean(), list(zip(severities, vs)), (lo, hi)) for c, vs in values)
    return (f'<section id="{anchor}-heatmap" data-check="heatmap"><h3>{esc(run.metric_label)} per corruption and severity</h3>'
            f'<p class="muted">Colour: {esc(run.metric_label)} from {esc(pct(lo))} (dark) to {esc(pct(hi))} (light); '
            f'the clean value is {esc(pct(run.clean()))}.</p><div class="hm-wrap">{hm}</div>'
            f'<h4>Severity curves (severity 0 = clean)</h4><div class="multiples">{curves}</div></section>')


def per_corruption(run: Run, anchor: str) -> str:
    """Section 4: clean, mean corrupted, relative drop and worst severity per corruption.

    Example:
        >>> html = per_corruption(load_run("out/results.json"), "run1")  # doctest: +SKIP
    """
    entries = dict(run.summary.get("per_corruption") or {})
    entries.update(run.holdout.get("per_corruption") or {})
    for block in run.suites.values():
        entries.update(block.get("per_corruption") or {})
    rows = []
    user = set((run.doc.get("corruption") or {}).get("user_defined") or [])  # plug-ins (schema 1.2)
    for name, group in run.corruptions():
        e = entries.get(name, {})
        mean = e.get("mean")
        if not is_num(mean):
            vals = [v for v in (run.cell(name, s) for s in run.severities()) if is_num(v)]
            mean = sum(vals) / len(vals) if vals else None
        worst = f"s{e['worst_severity']} ({esc(pct(e.get('worst')))})" if is_num(e.get("worst_severity")) else DASH
        label = esc(name) + (' <span class="muted">(user-defined)</span>' if name in user else "")
        rows.append([label, esc(e.get("group", group)), f'<span class="num">{esc(pct(run.clean()))}</span>',
                     f'<span class="num">{esc(pct(mean))}</span>', f'<span class="num">{esc(pct(drop_of(e)))}</span>', worst])
    return (f'<section id="{anchor}-corruptions"><h3>Per corruption</h3>'
            + table(["corruption", "group", "clean", "mean corrupted", "relative drop", "worst severity"], rows, "percorr")
            + "</section>")
