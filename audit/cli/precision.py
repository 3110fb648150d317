"""`audit precision FP32 INT8`: which layers of an INT8 (QDQ) model lose precision, clean and corrupted."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("fp32", type=click.Path(exists=True, dir_okay=False))
@click.argument("int8", type=click.Path(exists=True, dir_okay=False))
@click.option("--task", required=True, help="Task / dataset format, as for `audit run`.")
@click.option("--data", required=True, help="Dataset root, as for `audit run`.")
@click.option("--corruptions", default="gaussian_noise,defocus_blur,fog,contrast", show_default=True,
              help="Corruptions to compare with clean (names, groups or subsets).")
@click.option("--severity", default=3, show_default=True, type=click.IntRange(1, 5))
@click.option("--images", default=32, show_default=True, type=click.IntRange(min=1), help="Images per condition.")
@click.option("--seed", default=0, show_default=True, type=int, help="Corruption seed (as `audit run --seed`).")
@click.option("--top", default=5, show_default=True, type=click.IntRange(min=1), help="Layers to print.")
@click.option("--json", "as_json", is_flag=True, help="Print the forensics document as JSON.")
@click.option("-o", "--out", default=None, help="Write the forensics document (JSON) here.")
def precision(fp32, int8, task, data, corruptions, severity, images, seed, top, as_json, out):
    """Per-layer SQNR (dB) between FP32 and its INT8 export on clean and corrupted images made as
    `audit run` makes them; the worst layers by local error, and whose error grows most per corruption.

    Example:

        audit precision fp32.onnx int8.onnx --task cifar10 --data data/cifar --corruptions noise -o forensics.json
    """
    from audit.forensics import condition_images, layer_errors
    from audit.safety import prepare_out

    doc = layer_errors(fp32, int8, condition_images(fp32, task, data, corruptions, severity, images, seed))
    if out:
        from pathlib import Path

        from audit.results import atomic_write_text

        target = Path(out)
        prepare_out(target.parent if str(target.parent) else ".", "--out's folder")
        atomic_write_text(target, json.dumps(doc, indent=1))
    click.echo(json.dumps(doc, indent=1) if as_json else render(doc, top))


def render(doc: dict, top: int) -> str:
    """The worst layers by local SQNR, then the largest growth per corruption, as plain text."""
    rows = {r["tensor"]: r for r in doc["tensors"]}
    base = doc["conditions"][0]
    lines = [f"layers that lose the most accumulated SQNR on {base} (dB lost between their inputs and output):"]
    for t in doc.get("worst_added", [])[:top]:
        r = rows[t]
        if r["added_db"][base] is not None:
            lines.append(f"  {r['node']} ({r['op_type']}) -> {t}: {r['added_db'][base]:.1f} dB lost")
    lines.append(f"worst layers by local SQNR on {base} (dB; lower is worse):")
    for t in doc["worst_local"][:top]:
        r = rows[t]
        per = ", ".join(f"{c} {v:.1f}" for c, v in r["local_db"].items())
        lines.append(f"  {r['node']} ({r['op_type']}) -> {t}: {per}; accumulated {r['accumulated_db'][base]:.1f}")
    for cond, ranked in doc["worst_growth"].items():
        r = rows[ranked[0]]
        lines.append(f"largest growth under {cond}: {r['node']} ({r['op_type']}) local SQNR "
                     f"{r['local_db'][base]:.1f} -> {r['local_db'][cond]:.1f} dB")
    return "\n".join(lines)
