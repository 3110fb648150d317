"""The Markdown summary (`--format md`) for CI step summaries: verdict, headline figures, per-group
table, worst corruptions, and a comparison table for several runs.

Markdown is rendered as HTML by CI hosts, so table cells are escaped (pipes, angle brackets).
"""

from __future__ import annotations

from reports.adversarial import adversarial, budget_label, metric
from reports.compare import deltas, significance
from reports.fmt import ci_text, drop_of, is_num, pct, pp
from reports.load import GROUPS, Run
from reports.sections import SECONDARY, VERDICT_TEXT, group_rows


def md(value: object) -> str:
    """Escape a value for a Markdown table cell or line (no HTML, no pipes, one line).

    Example:
        >>> print(md("a|b <c>"))
        a\\|b &lt;c&gt;
    """
    text = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "\\`")


def render_markdown(runs: list[Run], title: str = "Robustness audit") -> str:
    """A Markdown summary of one or several runs.

    Example:
        >>> print(render_markdown([load_run("out/results.json")]))  # doctest: +SKIP
        # Robustness audit
        ...
    """
    lines = [f"# {md(title)}", ""]
    if len(runs) > 1:
        lines += _comparison(runs)
    for run in runs:
        lines += _run(run, heading=len(runs) > 1)
    return "\n".join(lines).rstrip() + "\n"


def _run(run: Run, heading: bool) -> list[str]:
    s = run.summary or run.holdout
    status = run.doc.get("verdict", {}).get("status", "none")
    reasons = run.doc.get("verdict", {}).get("reasons") or []
    out = [f"## {md(run.label)}", ""] if heading else []
    out += [f"**Verdict: {VERDICT_TEXT.get(status, md(status))}**" + (f" — {md('; '.join(reasons))}" if reasons else ""), ""]
    rpc = pct(s.get("rPC")) + ci_text(s.get("ci"), "rPC") if is_num(s.get("rPC")) else f"– ({md(s.get('rPC_note') or 'undefined')})"
    out += [f"- clean {md(run.metric_label)}: **{pct(run.clean())}{ci_text(s.get('ci'), 'P')}**",
            f"- mPC: **{pct(s.get('mPC'))}{ci_text(s.get('ci'), 'mPC')}**", f"- rPC: **{rpc}**",
            f"- model: {md(run.doc.get('model', {}).get('name'))}; task: {md(run.doc.get('task', {}).get('name'))}; "
            f"data: {md(run.doc.get('dataset', {}).get('path'))} ({run.doc.get('dataset', {}).get('num_images')} images)"]
    for key in SECONDARY:  # a format's own figure beside the primary one (VOC's devkit AP50)
        block = (run.doc.get("summary", {}).get("metrics") or {}).get(key)
        if isinstance(block, dict) and key != run.metric:
            label = (run.doc.get("task", {}).get("metrics", {}).get(key) or {}).get("label") or key
            out.append(f"- {md(label)}: clean {pct(block.get('P'))}, mPC {pct(block.get('mPC'))}, rPC {pct(block.get('rPC'))}")
    if run.doc.get("dataset", {}).get("chosen"):
        out.append(f"- data: {md(run.doc['dataset']['chosen'])}")
    if run.doc.get("status") == "partial":
        out.append("- status: **partial** (some cells missing)")
    out.append("")
    out += _adversarial(run)
    groups = group_rows(run)
    if groups:
        out += ["| group | mPC | rPC | drop |", "|---|---:|---:|---:|"]
        out += [f"| {md(g)} | {pct(e.get('mPC'))} | {pct(e.get('rPC'))} | {pct(drop_of(e))} |" for g, e in groups]
        out.append("")
    worst = sorted(((n, e) for n, e in (run.summary.get("per_corruption") or {}).items() if is_num(drop_of(e))),
                   key=lambda item: -drop_of(item[1]))[:5]
    if worst:
        out += ["Worst corruptions:", "", "| corruption | mean | drop | worst severity |", "|---|---:|---:|---:|"]
        out += [f"| {md(n)} | {pct(e.get('mean'))} | {pct(drop_of(e))} | {md(e.get('worst_severity', '–'))} |" for n, e in worst]
        out.append("")
    return out


def _adversarial(run: Run) -> list[str]:
    """Robust accuracy per attack and budget, one column per engine (documents of `audit attack`)."""
    adv = adversarial(run)
    if adv is None:
        return []
    engines = [str(e.get("name")) for e in adv.get("engines") or [] if isinstance(e, dict)]
    v = adv.get("verdict") or {}
    key, label = metric(adv)
    short = "robust mIoU" if key == "miou" else "robust acc."
    out = [f"Adversarial robustness ({md((adv.get('gradients') or {}).get('source'))} gradients): {label} "
           f"**{pct(v.get('robust_miou' if key == 'miou' else 'robust_accuracy'))}** under {md(v.get('attack'))} at "
           f"{md(budget_label(v.get('eps'), str(adv.get('norm'))))}",
           "", "| attack | eps | " + " | ".join(f"{short} {md(e)}" for e in engines) + " | success rate |",
           "|---|---|" + "---:|" * (len(engines) + 1)]
    for c in (c for c in adv["cells"] if isinstance(c, dict)):
        accs = " | ".join(pct(((c.get("engines") or {}).get(e) or {}).get(key)) for e in engines)
        out.append(f"| {md(c.get('attack'))} | {md(budget_label(c.get('eps'), str(adv.get('norm'))))} | {accs} | "
                   f"{pct(c.get('success_rate'))} |")
    return out + [""]


def _comparison(runs: list[Run]) -> list[str]:
    out = ["## Comparison", "", "| run | verdict | clean | mPC | rPC | " + " | ".join(f"{g} drop" for g in GROUPS) + " |",
           "|---|---|---:|---:|---:|" + "---:|" * len(GROUPS)]
    for r in runs:
        pg = r.summary.get("per_group") or {}
        status = r.doc.get("verdict", {}).get("status", "none")
        out.append(f"| {md(r.label)} | {VERDICT_TEXT.get(status, md(status))} | {pct(r.clean())} | {pct(r.summary.get('mPC'))} | "
                   f"{pct(r.summary.get('rPC'))} | " + " | ".join(pct(drop_of(pg.get(g))) for g in GROUPS) + " |")
    out.append("")
    for d in deltas(runs):
        out.append(f"- {md(d.other.label)} vs {md(d.base.label)}: " + ", ".join(
            f"Δ {name} {pp(value)}{_mark(d, key)}" for name, key, value in
            (("clean", "P", d.clean), ("mPC", "mPC", d.mpc), ("rPC", "rPC", d.rpc))) + f"; {md(d.note)}")
        stats = d.stats or {}
        if stats.get("comparable") is False:
            out.append(f"  - not tested pairwise: {md(stats.get('reason', ''))}")
    return out + [""]


def _mark(d, key: str) -> str:
    """The paired interval and the same significant / not significant mark as the HTML."""
    if key != "P" and not d.comparable:
        return " (not comparable)"
    entry = ((d.stats or {}).get("summary") or {}).get(key)
    mark = significance(entry)
    return f" [{pp(entry['ci'][0])}, {pp(entry['ci'][1])}] ({mark})" if mark else ""
