"""Assemble the self-contained HTML page: inline CSS and JavaScript, sections per run, comparison.

The stylesheet and the small self-check script live in `reports/assets/` and are inlined, so the
file makes no request to any host. The script only checks the page (errors, key elements visible)
and writes the result into `<html data-report-status>`; the content is complete without it.
"""

from __future__ import annotations

from reports import adversarial, precision, references
from reports.comparison import comparison
from reports.examples import examples
from reports.fmt import esc
from reports.images import ImageBudget
from reports.load import ASSETS, Run
from reports.provenance import provenance
from reports.sections import VERDICT_TEXT, grid, groups, per_corruption, verdict

IMAGE_BUDGET = 4_000_000  # base64 bytes of images; keeps a 19 x 5 audit with examples under 5 MB


def render_html(runs: list[Run], title: str = "Robustness audit", image_budget: int = IMAGE_BUDGET,
                forensics: list[dict] | None = None) -> str:
    """One self-contained HTML page for one run, or several side by side.

    Example:
        >>> page = render_html([load_run("out/results.json")], title="ResNet-50 on ImageNet")  # doctest: +SKIP
        >>> page.startswith("<!DOCTYPE html>")  # doctest: +SKIP
        True
    """
    budget = ImageBudget(image_budget)
    blocks = [comparison(runs), adversarial.comparison(runs), precision.section(forensics or [])]
    for i, run in enumerate(runs):
        anchor = f"run{i + 1}"
        heading = f'<h2 class="run-title">{esc(run.label)}</h2>' if len(runs) > 1 else ""
        refs = references.section(references.matching(run), anchor) if len(runs) == 1 else ""
        attack_only = adversarial.adversarial(run) is not None and not run.corruptions()
        corruption = "" if attack_only else (groups(run, anchor) + grid(run, anchor) + per_corruption(run, anchor)
                                             + examples(run, anchor, budget))
        blocks.append(f'<article class="run" id="{anchor}">{heading}' + verdict(run, anchor) + refs
                      + adversarial.section(run, anchor, budget) + corruption + provenance(run, anchor) + "</article>")
    return _page(title, _nav(runs), "".join(blocks))


def _nav(runs: list[Run]) -> str:
    if len(runs) < 2:
        return ""
    links = "".join(f'<a href="#run{i + 1}">{esc(r.label)} · {esc(VERDICT_TEXT.get(r.doc.get("verdict", {}).get("status"), "?"))}</a>'
                    for i, r in enumerate(runs))
    return f'<nav class="runs"><a href="#comparison">comparison</a>{links}</nav>'


def _page(title: str, nav: str, body: str) -> str:
    css = (ASSETS / "report.css").read_text(encoding="utf-8")
    js = (ASSETS / "report.js").read_text(encoding="utf-8")
    return ("<!DOCTYPE html>\n<html lang=\"en\" data-report-status=\"\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{css}</style></head><body>"
            f'<header class="top"><h1>{esc(title)}</h1><p class="muted">robustaudit report · common-corruption '
            f"robustness (clean P, mPC, rPC = mPC / P)</p>{nav}</header><main>{body}</main>"
            f'<footer class="muted">Figures are percentages of the primary metric; brackets are confidence intervals where '
            f"the results carry them.</footer><script>{js}</script></body></html>\n")
