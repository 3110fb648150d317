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
    `audit run` makes them: the layers to keep in FP32 (those that lose the most accumulated SQNR, what
    `audit export --keep-fp32 auto` keeps), and whose local error grows most per corruption.

    Example:

        audit precision fp32.onnx int8.onnx --task cifar10 --data data/cifar --corruptions noise -o forensics.json
    """
    from audit.analysis.forensics import condition_images, layer_errors
    from audit.io.safety import prepare_out

    doc = layer_errors(fp32, int8, condition_images(fp32, task, data, corruptions, severity, images, seed))
    if out:
        from pathlib import Path

        from audit.results.document import atomic_write_text

        target = Path(out)
        prepare_out(target.parent if str(target.parent) else ".", "--out's folder")
        atomic_write_text(target, json.dumps(doc, indent=1))
    click.echo(json.dumps(doc, indent=1) if as_json else render(doc, top))


def render(doc: dict, top: int) -> str:
    """One ranked list, the layers to keep in FP32 (accumulated SQNR lost, local SQNR as detail), then the
    largest growth of local error per corruption; tensors quantised exactly are named only as such."""
    rows = {r["tensor"]: r for r in doc["tensors"]}
    base = doc["conditions"][0]
    lines = [(f"layers to keep in FP32, worst first (as `audit export --keep-fp32 auto:K` ranks them on its calibration "
              f"images, keeping the first K): accumulated SQNR lost between the layer's inputs and its output on {base}; "
              "local SQNR (the error quantising its output adds) per condition")]
    by_node: dict[str, dict] = {}  # one line per layer, as auto counts them
    for t in doc.get("worst_added") or doc["worst_local"]:
        if rows[t]["op_type"] != "Input":
            by_node.setdefault(rows[t]["node"], rows[t])
    ranked = list(by_node.values())
    for i, r in enumerate(ranked[:top], 1):
        lost = r["added_db"][base]
        per = ", ".join(f"{c} {v:.1f}" for c, v in r["local_db"].items())
        lines.append(f"  {i}. {r['node']} ({r['op_type']}): {'?' if lost is None else f'{lost:.1f}'} dB lost; local SQNR {per} dB")
    for cond, ranked_growth in doc["worst_growth"].items():
        if ranked_growth:
            r = rows[ranked_growth[0]]
            lines.append(f"largest growth of local error under {cond}: {r['node']} ({r['op_type']}) local SQNR "
                         f"{r['local_db'][base]:.1f} -> {r['local_db'][cond]:.1f} dB")
    exact = [r["node"] for r in doc["tensors"] if r.get("exact")]
    if exact:
        lines.append(f"not ranked, quantised exactly (their SQNR changes are float noise): {', '.join(dict.fromkeys(exact))}")
    return "\n".join(lines)
