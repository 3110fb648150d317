"""Terminal rendering of a results document: the end-of-run summary table."""

from __future__ import annotations

import click

from audit.tasks.labels import label_notes


SECONDARY = ("voc_AP50",)  # metrics shown beside the primary one wherever a run has them


def _pct(value) -> str:
    return "  n/a" if value is None else f"{100 * value:5.1f}"


def print_summary(doc: dict, out: str) -> None:
    """Clean metric, mPC, rPC and the per-group figures, then where the files are."""
    primary = doc["task"]["primary_metric"]
    fig = doc["summary"]["metrics"][primary]
    label = doc["task"]["metrics"][primary]["label"]
    click.echo(f"\n{doc['model']['name']} on {doc['task']['name']} ({doc['dataset']['num_images']} images), {label} in %:")
    if doc["dataset"].get("chosen"):
        click.echo(f"  data: {doc['dataset']['chosen']}")
    click.echo(f"  clean P {_pct(fig['P'])}   mPC {_pct(fig['mPC'])}   rPC {_pct(fig['rPC'])}   "
               f"({fig['cells']} cells, subset {doc['summary']['subset']})")
    for key in SECONDARY:  # a format's own figure beside the primary one (VOC's devkit AP50 beside COCO AP)
        other = doc["summary"]["metrics"].get(key)
        if other and key != primary:
            click.echo(f"  {doc['task']['metrics'][key]['label']}: clean P {_pct(other['P'])}   mPC {_pct(other['mPC'])}   "
                       f"rPC {_pct(other['rPC'])}")
    if fig.get("ci") and fig["ci"].get("mPC"):
        lo, hi = fig["ci"]["mPC"]
        click.echo(f"  mPC {int(100 * fig['ci']['level'])}% CI [{100 * lo:.1f}, {100 * hi:.1f}]")
    if fig.get("rPC_note"):
        click.echo(f"  note: {fig['rPC_note']}")
    if fig["per_group"]:
        click.echo(f"  {'group':8s} {'mPC':>6s} {'rPC':>6s} {'drop':>6s}")
        for group, g in fig["per_group"].items():
            click.echo(f"  {group:8s} {_pct(g['mPC']):>6s} {_pct(g['rPC']):>6s} {_pct(g['drop']):>6s}")
    assumed = doc["model"].get("spec_source", {}).get("defaulted")
    if assumed:
        click.echo(f"  note: nobody set the model's {', '.join(assumed)}: assumed (see model.metadata in results.json); "
                   "give them by flag or in --model-config")
    for note in label_notes(doc["model"].get("label_mapping") or {}, doc["task"]["type"]):
        click.echo(f"  note: {note}")
    verdict = doc["verdict"]
    if verdict["status"] != "none":
        click.echo(f"  verdict: {verdict['status'].upper()}: " + "; ".join(verdict["reasons"]))
    files = ", ".join(f"{out}/{name}" for name in ["results.json", *doc.get("files", {}).values()])
    click.echo(f"  files: {files}")
