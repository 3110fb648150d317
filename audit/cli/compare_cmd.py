"""`audit compare BASE OTHER`: paired statistics of two audits of the same data, and a CI gate."""

from __future__ import annotations

import json

import click


@click.command("compare")
@click.argument("base", type=click.Path(file_okay=False, path_type=str))
@click.argument("other", type=click.Path(file_okay=False, path_type=str))
@click.option("--samples", default=1000, show_default=True, type=click.IntRange(min=50),
              help="Bootstrap resamples of the images (detection: each costs one COCO evaluation per cell and run).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the resampling.")
@click.option("--level", default=0.95, show_default=True, type=click.FloatRange(0.5, 0.999), help="Confidence level.")
@click.option("--metric", default=None, help="Metric key [default: the task's primary metric].")
@click.option("--fail-if-worse", "margin", default=None, type=click.FloatRange(min=0),
              help="Exit 2 when OTHER is significantly worse than BASE by more than this (fraction, e.g. 0.01).")
@click.option("--gate-on", type=click.Choice(["mPC", "rPC", "P"]), default="mPC", show_default=True)
@click.option("-o", "--output", default=None, help="Write the comparison document (JSON) here.")
@click.option("--data", default=None, help="Detection: the dataset root, if it moved since the audits.")
@click.option("--annotations", default=None, help="Detection: the COCO json the audits used.")
@click.option("--images", default=None, help="Detection: the image folder the audits used.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison document.")
def compare(base, other, samples, seed, level, metric, margin, gate_on, output, data, annotations, images, as_json):
    """Compare OTHER with BASE (two `audit run` output folders of the same data, seed and corruptions):
    the difference of P, mPC, rPC and every cell, with paired bootstrap intervals (the same image
    resample for both runs) and, for classification, McNemar's exact test per cell.

    Exit codes: 0 ok, 1 error (e.g. runs that did not see the same pixels), 2 the --fail-if-worse gate failed.

    Example:

        audit compare runs/fp32 runs/int8 --fail-if-worse 0.01
    """
    from audit.analysis.compare import compare_runs, gate, write
    from audit.errors import GateFailed

    doc = compare_runs(base, other, samples=samples, seed=seed, level=level, metric=metric, data=data,
                       annotations=annotations, images=images)
    if margin is not None:
        doc["gate"] = gate(doc, margin, gate_on)
    if output:
        write(doc, output)
    click.echo(json.dumps(doc, indent=2) if as_json else render(doc))
    if doc.get("gate", {}).get("status") == "fail":
        raise GateFailed("comparison gate failed: " + doc["gate"]["reason"])


def render(doc: dict, top: int = 10) -> str:
    """The comparison as plain text: the headline figures, then the cells that moved most."""
    pct = int(round(doc["level"] * 100))
    lines = [f"{doc['other']['model']} vs {doc['base']['model']} on {doc['num_images']} images, {doc['metric']}, "
             f"{pct}% paired bootstrap intervals, mPC and rPC {doc['shared']['note']}", f"{'':6s} {'base':>8s} {'other':>8s} {'delta':>8s}  {'interval':21s} significant"]
    for key in ("P", "mPC", "rPC"):
        lines.append(_row(key, doc["summary"][key]))
    moved = sorted((c for c in doc["cells"] if c["delta"] is not None), key=lambda c: -abs(c["delta"]))[:top]
    if moved:
        lines.append("cells that moved most:")
        for c in moved:
            extra = f"  McNemar p={c['mcnemar']['p_value']:.3g}" if "mcnemar" in c else ""
            lines.append(_row(f"{c['corruption']}-s{c['severity']}", c, width=22) + extra)
    if "gate" in doc:
        lines.append(f"gate: {doc['gate']['status']}: {doc['gate']['reason']}")
    return "\n".join(lines)


def _row(name: str, e: dict, width: int = 6) -> str:
    def f(v):
        return f"{v:8.4f}" if v is not None else f"{'n/a':>8s}"

    ci = f"[{e['ci'][0]:+.4f}, {e['ci'][1]:+.4f}]" if e["ci"] else "n/a"
    delta = f"{e['delta']:+8.4f}" if e["delta"] is not None else f"{'n/a':>8s}"
    return f"{name:{width}s} {f(e['base'])} {f(e['other'])} {delta}  {ci:21s} {'yes' if e['significant'] else 'no'}"
