"""The study report: one page over a study's manifest (study.json) and its runs' results documents.

It reproduces the paper's views from whatever has finished: every combination in one table; Figure 1
(performance drop per backbone per task, beside the backbone's own ImageNet-C drop); Tables 1-2
(drop per corruption group); Figure 5 (drop and clean metric vs learning rate); Figure 6 and
Tables 4-5 (fine-tuning with PRIME vs without). Like the rest of `reports/`, it reads JSON only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports.charts import grouped_bars, lines
from reports.fmt import DASH, esc, is_num, pct
from reports.html import _page
from reports.load import ReportInputError, Run, load_run
from reports.sections import table

KIND = "robustaudit-study"
TASK_NAMES = {"cifar10": "CIFAR-10", "coco": "COCO", "ade20k": "ADE20K"}
MODE_NAMES = {"fixed": "fixed-feature transfer", "full": "full-network transfer"}
PAPER_GROUPS = ("noise", "blur", "digital", "weather")  # the column order of the paper's Tables 1-2


@dataclass
class Entry:
    """One combination of the manifest and its results (None until its audit has finished)."""

    combo: dict[str, Any]
    run: Run | None
    attack: dict[str, Any] | None = None  # the `adversarial` section of its adversarial audit, when one finished

    @property
    def backbone(self) -> str:
        return str(self.combo["backbone"]["name"])

    def drop(self) -> float | None:
        rpc = self.run.summary.get("rPC") if self.run else None
        return 1.0 - rpc if is_num(rpc) else None

    def group_drop(self, group: str) -> float | None:
        entry = (self.run.summary.get("per_group") or {}).get(group) if self.run else None
        rpc = entry.get("rPC") if isinstance(entry, dict) else None
        return 1.0 - rpc if is_num(rpc) else None

    def figure(self, key: str) -> float | None:
        return self.run.summary.get(key) if self.run else None


def load_study(path: str | Path) -> tuple[dict[str, Any], list[Entry]]:
    """Read study.json and the results of its finished combinations.

    Example:
        >>> doc, entries = load_study("runs/study-tiny-cpu/study.json")  # doctest: +SKIP
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportInputError(f"cannot read the study manifest {path} ({exc}); give the study.json `audit study` wrote") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND or not isinstance(doc.get("combinations"), list):
        raise ReportInputError(f"{path} is not a robustaudit study manifest (expected \"kind\": \"{KIND}\")")
    entries = []
    for combo in doc["combinations"]:
        results = (combo.get("files") or {}).get("audit")
        run = None
        if results and combo.get("stages", {}).get("audit", {}).get("status") == "done":
            try:
                run = load_run(path.parent / results)
            except ReportInputError:
                run = None  # shown as missing; the table says which stage to re-run
            else:
                run.label = combo["id"]
        entries.append(Entry(combo, run, _attack_section(path.parent, combo)))
    return doc, entries


def _attack_section(folder: Path, combo: dict[str, Any]) -> dict[str, Any] | None:
    """The `adversarial` section of a combination's finished adversarial audit (None otherwise)."""
    results = (combo.get("files") or {}).get("attack")
    if not results or combo.get("stages", {}).get("attack", {}).get("status") != "done":
        return None
    try:
        adv = load_run(folder / results).doc.get("adversarial")
    except ReportInputError:
        return None
    return adv if isinstance(adv, dict) and isinstance(adv.get("cells"), list) else None


def write_study_report(study_json: str | Path, out: str | Path) -> Path:
    """Render a study's manifest and results as one self-contained HTML file.

    Example:
        >>> write_study_report("runs/study/study.json", "runs/study/report.html")  # doctest: +SKIP
        PosixPath('runs/study/report.html')
    """
    doc, entries = load_study(study_json)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render_study(doc, entries), encoding="utf-8")
    tmp.replace(out)
    return out


def render_study(doc: dict[str, Any], entries: list[Entry]) -> str:
    """The study page (HTML)."""
    body = (_overview(doc, entries) + _all(entries) + _adversarial(entries) + _figure1(entries) + _groups(entries)
            + _figure5(entries) + _prime(entries))
    return _page(f"Study: {doc.get('name', '?')}", "", body)


def _task_name(task: str) -> str:
    return TASK_NAMES.get(task, task)


def _tasks(entries: list[Entry]) -> list[str]:
    return list(dict.fromkeys(e.combo["task"] for e in entries))


def _reference_lr(entries: list[Entry], task: str) -> float:
    """The task's first listed learning rate: the one the per-model views compare at."""
    return next(e.combo["lr"] for e in entries if e.combo["task"] == task)


def _metric_label(entries: list[Entry], task: str) -> str:
    return next((e.run.metric_label for e in entries if e.combo["task"] == task and e.run), "metric")


def _pick(entries: list[Entry], **where) -> list[Entry]:
    return [e for e in entries if all(e.combo[k] == v for k, v in where.items())]


def _num(value: Any) -> str:
    return f'<span class="num">{esc(pct(value))}</span>'


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}" class="study"><h2>{esc(heading)}</h2>{body}</section>'


def _overview(doc: dict[str, Any], entries: list[Entry]) -> str:
    done = sum(1 for e in entries if e.run)
    failed = [e.combo["id"] for e in entries if any(s.get("status") == "failed" for s in e.combo.get("stages", {}).values())]
    text = (f"{len(entries)} combinations from {esc(doc.get('file', '?'))}; {done} audited"
            + (f", {len(failed)} failed ({esc(', '.join(failed))})" if failed else "")
            + (f", {len(entries) - done - len(failed)} not finished yet" if len(entries) - done - len(failed) else "")
            + ". Performance drop = 1 − rPC = 1 − mPC / P (the paper's measure); lower is more robust.")
    return _section("overview", "Overview", f"<p>{text}</p>")


def _status(entry: Entry) -> str:
    stages = entry.combo.get("stages", {})
    for name in ("finetune", "export", "audit"):
        status = stages.get(name, {}).get("status", "pending")
        if status != "done":
            return f"{name} {status}"
    return "done"


def _all(entries: list[Entry]) -> str:
    head = ["combination", "task", "backbone", "mode", "augment", "lr", "metric", "clean", "mPC", "drop",
            *(f"drop {g}" for g in PAPER_GROUPS), "status"]
    rows = []
    for e in entries:
        c = e.combo
        page = Path(c["files"]["audit"]).parent / "report.html" if e.run else None
        link = (f'<a href="{esc(page.as_posix())}">{esc(c["id"])}</a>' if page and (e.run.base / "report.html").exists()
                else esc(c["id"]))
        rows.append([f'<span data-combination="{esc(c["id"])}">{link}</span>', esc(_task_name(c["task"])), esc(e.backbone),
                     esc(c["mode"]), esc(c["augment"]), esc(f'{c["lr"]:g}'), esc(e.run.metric_label if e.run else DASH),
                     _num(e.figure("P")), _num(e.figure("mPC")), _num(e.drop()), *(_num(e.group_drop(g)) for g in PAPER_GROUPS),
                     esc(_status(e))])
    return _section("combinations", "All combinations", table(head, rows, "study-all"))


def _figure1(entries: list[Entry]) -> str:
    """Drop per backbone per task (one chart per transfer mode, no fine-tuning augmentation, reference lr)."""
    all_tasks, backbones = _tasks(entries), list(dict.fromkeys(e.backbone for e in entries))
    imagenet = {e.backbone: e.combo["backbone"].get("imagenet_c_drop") for e in entries}
    with_inc = any(is_num(v) for v in imagenet.values())
    blocks = []
    for mode in sorted({e.combo["mode"] for e in entries}, key=lambda m: m != "full"):
        chosen = {t: {e.backbone: e for e in _pick(entries, task=t, mode=mode, augment="none", lr=_reference_lr(entries, t))}
                  for t in all_tasks}
        tasks = [t for t in all_tasks if chosen[t]]
        if not any(e.run for by in chosen.values() for e in by.values()):
            continue
        series = (["ImageNet-C (backbone)"] if with_inc else []) + [_task_name(t) for t in tasks]
        groups = [(b, ([imagenet.get(b)] if with_inc else []) + [chosen[t][b].drop() if b in chosen[t] else None for t in tasks])
                  for b in backbones]
        rows = [[esc(b), *([_num(imagenet.get(b))] if with_inc else []),
                 *(_num(chosen[t][b].figure(k) if k != "drop" else chosen[t][b].drop()) if b in chosen[t] else DASH
                   for t in tasks for k in ("P", "drop"))]
                for b in backbones]
        head = ["backbone", *(["ImageNet-C drop"] if with_inc else []),
                *(f"{_task_name(t)} {k}" for t in tasks for k in (f"clean {_metric_label(entries, t)}", "drop"))]
        blocks.append(f"<h3>{esc(MODE_NAMES.get(mode, mode))}</h3>"
                      + grouped_bars(groups, series, f"performance drop per backbone and task, {mode} transfer")
                      + table(head, rows, "study-fig1"))
    if not blocks:
        return _section("figure1", "Figure 1: performance drop per model and task",
                        '<p class="muted">No combination without fine-tuning augmentation has been audited yet.</p>')
    return _section("figure1", "Figure 1: performance drop per model and task",
                    '<p class="muted">Without augmentation during fine-tuning, at each task\'s first learning rate. '
                    "If ImageNet-C robustness transferred, the downstream bars would follow the ImageNet-C bars.</p>"
                    + "".join(blocks))


def _groups(entries: list[Entry]) -> str:
    """Tables 1-2: drop per corruption group, per task and transfer mode."""
    blocks = []
    for task in _tasks(entries):
        for mode in sorted({e.combo["mode"] for e in entries}, key=lambda m: m != "fixed"):
            chosen = [e for e in _pick(entries, task=task, mode=mode, augment="none", lr=_reference_lr(entries, task)) if e.run]
            if not chosen:
                continue
            rows = [[esc(e.backbone), *(_num(e.group_drop(g)) for g in PAPER_GROUPS), _num(e.drop())] for e in chosen]
            blocks.append(f"<h3>{esc(_task_name(task))}, {esc(MODE_NAMES.get(mode, mode))} ({esc(_metric_label(entries, task))} drop)</h3>"
                          + table(["backbone", *PAPER_GROUPS, "all"], rows, "study-groups"))
    body = "".join(blocks) or '<p class="muted">No combination without fine-tuning augmentation has been audited yet.</p>'
    return _section("groups", "Tables 1-2: performance drop per corruption group", body)


def _figure5(entries: list[Entry]) -> str:
    """Drop and clean metric vs learning rate, one line per backbone / mode / augmentation."""
    blocks = []
    for task in _tasks(entries):
        picked = _pick(entries, task=task)
        if len({e.combo["lr"] for e in picked}) < 2:
            continue
        keys = list(dict.fromkeys((e.backbone, e.combo["mode"], e.combo["augment"]) for e in picked))
        def series(value):  # one line per backbone / mode / augmentation swept over two or more lrs
            lines_ = [(f"{b} · {m} · {'PR' if a == 'prime' else a}",
                       [(e.combo["lr"], value(e)) for e in picked if (e.backbone, e.combo["mode"], e.combo["augment"]) == (b, m, a)])
                      for b, m, a in keys]
            return [(name, pts) for name, pts in lines_ if len(pts) > 1]
        label = _metric_label(entries, task)
        blocks.append(f"<h3>{esc(_task_name(task))}</h3><div class=\"split\">"
                      + lines(series(Entry.drop), "learning rate (log scale)", "performance drop", f"{task}: drop vs learning rate")
                      + lines(series(lambda e: e.figure("P")), "learning rate (log scale)", f"clean {label}",
                              f"{task}: clean {label} vs learning rate") + "</div>")
    body = "".join(blocks) or '<p class="muted">Figure 5 needs a task fine-tuned at two or more learning rates.</p>'
    return _section("figure5", "Figure 5: degree of fine-tuning (learning rate)",
                    '<p class="muted">Smaller learning rates move the backbone less: the paper finds a lower clean '
                    "metric but a smaller drop.</p>" + body)


def _prime(entries: list[Entry]) -> str:
    """Figure 6 and Tables 4-5: the same backbone, mode and lr fine-tuned with and without PRIME."""
    blocks = []
    for task in _tasks(entries):
        lr = _reference_lr(entries, task)
        pairs = []
        for e in _pick(entries, task=task, augment="prime", lr=lr):
            base = _pick(entries, task=task, augment="none", lr=lr, mode=e.combo["mode"])
            base = next((b for b in base if b.backbone == e.backbone), None)
            if base and (base.run or e.run):
                pairs.append((base, e))
        if not pairs:
            continue
        label = _metric_label(entries, task)
        head = [""] + [h for b, p in pairs for h in (f"{b.backbone} ({b.combo['mode']})", f"PR-{p.backbone} ({p.combo['mode']})")]
        rows = [[f"{esc(label)} {name}", *(_num(f(x)) for pair in pairs for x in pair)]
                for name, f in (("clean", lambda x: x.figure("P")), ("corrupted (mPC)", lambda x: x.figure("mPC")),
                                ("drop", Entry.drop))]
        groups_clean = [(f"{b.backbone} ({b.combo['mode']})", [b.figure("P"), p.figure("P")]) for b, p in pairs]
        groups_drop = [(f"{b.backbone} ({b.combo['mode']})", [b.drop(), p.drop()]) for b, p in pairs]
        blocks.append(f"<h3>{esc(_task_name(task))}</h3>" + table(head, rows, "study-prime") + '<div class="split">'
                      + grouped_bars(groups_clean, ["no augmentation", "PRIME"], f"{task}: clean {label}", f"clean {label}")
                      + grouped_bars(groups_drop, ["no augmentation", "PRIME"], f"{task}: drop") + "</div>")
    body = "".join(blocks) or '<p class="muted">These views need the same combination fine-tuned with augment none and prime.</p>'
    return _section("prime", "Figure 6 and Tables 4-5: PRIME during fine-tuning", body)


def _adversarial(entries: list[Entry]) -> str:
    """Seed 003's view: adversarial accuracy after fine-tuning per pre-training (backbone) and transfer mode."""
    done = [e for e in entries if e.attack]
    if not done:
        return ""
    first = done[0].attack
    attack, norm = str(first.get("verdict_attack")), str(first.get("norm"))
    budgets = sorted({c.get("eps") for e in done for c in e.attack["cells"] if c.get("attack") == attack and is_num(c.get("eps"))})
    label = (lambda v: f"{v * 255:.3g}/255") if norm == "linf" else (lambda v: f"{v:g}")  # noqa: E731

    def robust(e: Entry, eps: float) -> float | None:
        key = "miou" if e.attack.get("metric") == "miou" else "accuracy"  # a segmentation task's audit: robust mIoU
        return next((c.get(key) for c in e.attack["cells"] if c.get("attack") == attack and c.get("eps") == eps), None)

    rows = [[esc(e.backbone), esc(MODE_NAMES.get(e.combo["mode"], e.combo["mode"])), esc(_task_name(e.combo["task"])),
             esc(e.combo["augment"]), esc(f'{e.combo["lr"]:g}'), *(_num(robust(e, b)) for b in budgets)] for e in done]
    modes = list(dict.fromkeys(e.combo["mode"] for e in done))
    backbones = list(dict.fromkeys(e.backbone for e in done))
    top = budgets[-1] if budgets else None
    groups = [(b, [next((robust(e, top) for e in done if e.backbone == b and e.combo["mode"] == m), None) for m in modes])
              for b in backbones]
    chart = grouped_bars(groups, [MODE_NAMES.get(m, m) for m in modes], "adversarial accuracy per pre-training and mode",
                         y_label=f"robust accuracy, {attack} at {label(top)}") if top is not None else ""
    head = ["pre-training (backbone)", "mode", "task", "augment", "lr", *(f"eps {label(b)}" for b in budgets)]
    return _section("adversarial", "Adversarial accuracy after fine-tuning (seed 003)",
                    f'<p class="muted">Robust accuracy under {esc(attack)} ({esc(norm)}) of each fine-tuned export, judged '
                    "on the engine (segmentation tasks: robust mIoU); eps 0 is the clean figure. If robust pre-training "
                    "passes robustness on, its rows stay "
                    "higher as the budget grows.</p>" + chart + table(head, rows, "study-adversarial"))
