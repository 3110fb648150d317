"""The "Adversarial robustness" section (results documents with an `adversarial` section, schema 1.4):
robust accuracy vs budget per attack, the engines side by side (FP32 vs INT8 transfer), a table of
success rates and queries, and examples (clean, adversarial, perturbation amplified). With several
runs, `comparison` puts their verdict curves side by side. Segmentation documents (`metric: miou`)
show robust mIoU where classification shows robust accuracy, pixel accuracy beside it, and the
predicted masks (clean, adversarial) next to the ground truth in the examples.

Every value from the document goes through `esc`; numbers through `reports.fmt`.
"""

from __future__ import annotations

from reports.charts import lines
from reports.fmt import DASH, esc, is_num, pct
from reports.images import ImageBudget, data_uri, resolve
from reports.load import Run
from reports.sections import table


def adversarial(run: Run) -> dict | None:
    """The run's `adversarial` section, or None when it has none (or a malformed one)."""
    adv = run.doc.get("adversarial")
    return adv if isinstance(adv, dict) and isinstance(adv.get("cells"), list) else None


def budget_label(eps: float, norm: str) -> str:
    """'8/255' for L-inf budgets that are whole 255ths, else the number.

    Example:
        >>> budget_label(8 / 255, "linf"), budget_label(0.5, "l2"), budget_label(0.01, "linf")
        ('8/255', '0.5', '0.01')
    """
    if not is_num(eps):
        return DASH
    k = eps * 255
    if norm == "linf" and abs(k - round(k)) < 1e-6:
        return f"{round(k)}/255" if round(k) else "0"
    return f"{eps:g}"


def _x(eps: float, norm: str) -> float:
    return eps * 255 if norm == "linf" else eps


def _x_label(norm: str) -> str:
    return "budget eps (L-inf, in 1/255)" if norm == "linf" else "budget eps (L2, [0, 1] pixels)"


def metric(adv: dict) -> tuple[str, str]:
    """(the cells' key, its label) of the section's figure: robust accuracy, or robust mIoU for segmentation.

    Example:
        >>> metric({"metric": "miou"}), metric({})
        (('miou', 'robust mIoU'), ('accuracy', 'robust accuracy'))
    """
    return ("miou", "robust mIoU") if adv.get("metric") == "miou" else ("accuracy", "robust accuracy")


def _engines(adv: dict) -> list[str]:
    return [str(e.get("name")) for e in adv.get("engines") or [] if isinstance(e, dict)]


def section(run: Run, anchor: str, budget: ImageBudget) -> str:
    """The section of one run ('' when the document has no adversarial section).

    Example:
        >>> html = section(load_run("out/results.json"), "run1", ImageBudget(4_000_000))  # doctest: +SKIP
    """
    adv = adversarial(run)
    if adv is None:
        return ""
    norm = str(adv.get("norm", ""))
    cells = [c for c in adv["cells"] if isinstance(c, dict)]
    engines = _engines(adv)
    attacks = [str(a) for a in adv.get("attacks") or []]
    first = engines[0] if engines else ""
    key, label = metric(adv)
    per_attack = [(a, [(_x(c.get("eps"), norm), c.get(key)) for c in cells if c.get("attack") == a and is_num(c.get("eps"))])
                  for a in attacks]
    charts = lines(per_attack, _x_label(norm), f"{label} ({first})", f"{label} vs budget per attack", log_x=False)
    if len(engines) > 1:
        verdict_attack = str(adv.get("verdict_attack"))
        series = [(e, [(_x(c.get("eps"), norm), (c.get("engines") or {}).get(e, {}).get(key)) for c in cells
                       if c.get("attack") == verdict_attack and is_num(c.get("eps"))]) for e in engines]
        charts += lines(series, _x_label(norm), f"{label} ({verdict_attack})", f"{label} per engine", log_x=False)
    return (f'<section id="{anchor}-adversarial" data-check="adversarial"><h3>Adversarial robustness</h3>'
            + _summary(adv) + f'<div class="split">{charts}</div>' + _table(cells, engines, norm, key)
            + _examples(run, adv, budget) + "</section>")


def _summary(adv: dict) -> str:
    g, v, tm = adv.get("gradients") or {}, adv.get("verdict") or {}, adv.get("threat_model") or {}
    key, label = metric(adv)
    clean = adv.get("clean_miou") if key == "miou" else adv.get("clean")
    figures = "".join(f'<div class="fig"><span class="k">clean{" mIoU" if key == "miou" else ""} · {esc(name)}</span>'
                      f'<span class="v">{esc(pct(value))}</span></div>' for name, value in (clean or {}).items())
    robust = (f'<div class="fig"><span class="k">{label} · {esc(v.get("attack"))} at '
              f'{esc(budget_label(v.get("eps"), str(v.get("norm", adv.get("norm")))))}</span>'
              f'<span class="v">{esc(pct(v.get("robust_miou" if key == "miou" else "robust_accuracy")))}</span></div>')
    rule = ("Robust mIoU at a budget is the lowest mIoU among the adversarial examples found at that budget or a smaller "
            "one (per image, the one that labels fewer pixels right), so it never rises with the budget; pixel accuracy "
            "is that of the same examples.") if key == "miou" else \
        "Robust accuracy counts an image only if no adversarial example was found at that budget or a smaller one."
    return (f'<div class="headline">{figures}{robust}</div>'
            f'<p class="context"><b>Threat model:</b> {esc(tm.get("description"))}.</p>'
            f'<p class="context"><b>Gradients:</b> {esc(g.get("source"))} ({esc(g.get("description"))}). '
            f'<b>Attacks:</b> {esc(", ".join(str(a) for a in adv.get("attacks") or []))}; the first gives the verdict. '
            f'{rule}</p>')


def _table(cells: list[dict], engines: list[str], norm: str, key: str = "accuracy") -> str:
    rows = []
    figures = [("miou", "robust mIoU"), ("accuracy", "pixel acc.")] if key == "miou" else [("accuracy", "robust acc.")]
    for c in cells:
        per = c.get("engines") or {}
        accs = [f'<span class="num">{esc(pct((per.get(e) or {}).get(k)))}</span>' for k, _ in figures for e in engines]
        queries = DASH if not is_num(c.get("queries_mean")) else f'{c["queries_mean"]:.0f} / {c.get("queries_median", 0):.0f}'
        seconds = DASH if not is_num(c.get("seconds")) else f'{c["seconds"]:.1f}'
        rows.append([esc(c.get("attack")), esc(budget_label(c.get("eps"), norm)), *accs,
                     f'<span class="num">{esc(pct(c.get("success_rate")))}</span>', f'<span class="num">{esc(queries)}</span>',
                     f'<span class="num">{esc(seconds)}</span>', esc(c.get("source"))])
    head = ["attack", "eps", *[f"{label} · {esc(e)}" for _, label in figures for e in engines], "success rate", "queries mean / median",
            "seconds", "gradients from"]
    return table(head, rows, "adversarial")


def _examples(run: Run, adv: dict, budget: ImageBudget) -> str:
    items = [e for e in adv.get("examples") or [] if isinstance(e, dict)]
    if not items:
        return ""
    rows = []
    for e in items:
        images = (("clean", f"clean: {e.get('clean_prediction')}"), ("adversarial", f"adversarial: {e.get('adversarial_prediction')}"),
                  ("perturbation", f"perturbation ×{e.get('amplification')}"))
        masks = [(k, c) for k, c in (("ground_truth_mask", "ground truth"), ("clean_mask", "predicted, clean"),
                                     ("adversarial_mask", "predicted, adversarial")) if e.get(k)]  # segmentation
        lines = "".join(f'<div class="ex-figs">{"".join(_figure(run, e, kind, caption, budget) for kind, caption in line)}</div>'
                        for line in (images, masks) if line)
        rows.append(f'<div class="ex-row"><h4>image {esc(e.get("image_id"))} · label {esc(e.get("label"))} · '
                    f'{esc(e.get("attack"))} at {esc(budget_label(e.get("eps"), str(adv.get("norm"))))}</h4>{lines}</div>')
    return "<h4>Examples (perturbation amplified to be visible: 0.5 + delta × factor)</h4>" + "".join(rows)


def _figure(run: Run, example: dict, kind: str, caption: str, budget: ImageBudget) -> str:
    path = resolve(run.base, str(example.get(kind, "")))
    uri = data_uri(path, budget, keep_alpha=True) if path else None
    img = f'<img class="ex-img" src="{uri}" alt="{esc(kind)}">' if uri else '<span class="muted">image not available</span>'
    return f'<figure class="ex">{img}<figcaption>{esc(caption)}</figcaption></figure>'



def comparison(runs: list[Run]) -> str:
    """Several runs with adversarial sections: their verdict curves in one chart and one table.

    Example:
        >>> comparison([load_run("fp32/results.json"), load_run("int8/results.json")])  # doctest: +SKIP
    """
    chosen = [(r, adversarial(r)) for r in runs]
    chosen = [(r, a) for r, a in chosen if a is not None]
    if len(chosen) < 2:
        return ""
    norms = {str(a.get("norm")) for _, a in chosen}
    norm = norms.pop() if len(norms) == 1 else ""
    series, rows = [], []
    for run, adv in chosen:
        attack = str(adv.get("verdict_attack"))
        key = metric(adv)[0]
        pts = [(c.get("eps"), c.get(key)) for c in adv["cells"] if isinstance(c, dict) and c.get("attack") == attack
               and is_num(c.get("eps"))]
        series.append((f"{run.label} · {attack}", [(_x(e, str(adv.get("norm"))), a) for e, a in pts]))
        rows.append([esc(run.label), esc(attack if key == "accuracy" else f"{attack} (mIoU)"), esc(adv.get("norm")),
                     esc((adv.get("gradients") or {}).get("source")),
                     *[f"{esc(budget_label(e, str(adv.get('norm'))))}: {esc(pct(a))}" for e, a in pts]])
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    labels = {metric(a)[1] for _, a in chosen}
    figure = labels.pop() if len(labels) == 1 else "robust accuracy / mIoU"
    chart = lines(series, _x_label(norm) if norm else "budget eps", figure, f"{figure} per run", log_x=False)
    return ('<section id="adversarial-comparison" data-check="adversarial-comparison"><h2>Adversarial robustness, side by side</h2>'
            + chart + table(["run", "verdict attack", "norm", "gradients", *[figure] * (width - 4)], rows, "adversarial")
            + "</section>")
