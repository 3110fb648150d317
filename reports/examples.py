"""Section 5: example images, clean and corrupted, with the model's predictions drawn over them.

Boxes and labels are SVG over the embedded thumbnail (coordinates are thumbnail pixels, so the SVG
viewBox is the thumbnail's size), ground-truth boxes dashed beneath the predicted ones; label maps
are a translucent RGBA overlay image; top classes are text.
"""

from __future__ import annotations

from reports.fmt import esc, is_num, pct
from reports.images import ImageBudget, data_uri, resolve
from reports.load import Run
from reports.svg import SERIES


def examples(run: Run, anchor: str, budget: ImageBudget) -> str:
    """The examples section: one row per image, one figure per (corruption, severity).

    Example:
        >>> html = examples(load_run("out/results.json"), "run1", ImageBudget(4_000_000))  # doctest: +SKIP
    """
    items = [e for e in run.doc.get("examples") or [] if isinstance(e, dict)]
    if not items:
        return f'<section id="{anchor}-examples"><h3>Examples</h3><p class="muted">No example images in these results.</p></section>'
    # clean first, then corruptions in the audit's order, severities ascending
    order = {name: i + 1 for i, name in enumerate(run.doc.get("corruption", {}).get("corruptions") or [])} | {"clean": 0}
    by_image: dict[str, list[dict]] = {}
    for e in items:
        by_image.setdefault(str(e.get("image_id")), []).append(e)
    rows = []
    for image_id, entries in by_image.items():
        entries.sort(key=lambda e: (order.get(str(e.get("corruption")), len(order)), e.get("severity", 0)))
        figures = "".join(_figure(run, e, budget) for e in entries)
        rows.append(f'<div class="ex-row"><h4>image {esc(image_id)}</h4><div class="ex-figs">{figures}</div></div>')
    note = (f'<p class="warn">{budget.skipped} image(s) left out to keep the report small.</p>' if budget.skipped else "")
    return f'<section id="{anchor}-examples"><h3>Examples</h3>{note}{"".join(rows)}</section>'


def _figure(run: Run, entry: dict, budget: ImageBudget) -> str:
    w, h = entry.get("width") or 1, entry.get("height") or 1
    caption = "clean" if entry.get("corruption") == "clean" else f"{entry.get('corruption')}, severity {entry.get('severity')}"
    path = resolve(run.base, str(entry.get("image", "")))
    uri = data_uri(path, budget) if path else None
    pred = entry.get("prediction") or {}
    layers = [f'<image href="{uri}" x="0" y="0" width="{w}" height="{h}" preserveAspectRatio="none"/>' if uri
              else f'<rect width="{w}" height="{h}" fill="#e5e7eb"/><text x="8" y="20" font-size="12">image not available</text>']
    if pred.get("type") == "label_map" and pred.get("overlay"):
        over = resolve(run.base, str(pred["overlay"]))
        over_uri = data_uri(over, budget, keep_alpha=True) if over else None
        if over_uri:
            layers.append(f'<image href="{over_uri}" x="0" y="0" width="{w}" height="{h}" opacity="0.55" preserveAspectRatio="none"/>')
    gt = entry.get("ground_truth") or {}
    if gt.get("type") == "boxes":
        layers.append(_truth_boxes(gt, w))
    if pred.get("type") == "boxes":
        layers.append(_boxes(pred, w))
    svg = (f'<svg class="ex-img" viewBox="0 0 {w} {h}" role="img" aria-label="{esc(caption)}">{"".join(layers)}</svg>')
    return f'<figure class="ex">{svg}<figcaption><b>{esc(caption)}</b>{_text_prediction(pred, entry)}</figcaption></figure>'


def _rect(box) -> str | None:
    """The SVG geometry of an xyxy box, None when the box is malformed (results may be hand-edited)."""
    if len(box) != 4 or not all(is_num(v) for v in box):
        return None
    x0, y0, x1, y1 = box
    return f'x="{x0:.1f}" y="{y0:.1f}" width="{max(0, x1 - x0):.1f}" height="{max(0, y1 - y0):.1f}" fill="none"'


def _boxes(pred: dict, width: float) -> str:
    labels, scores = pred.get("labels") or [], pred.get("scores") or []
    stroke = max(1.0, width / 160)
    parts = []
    for i, box in enumerate(pred.get("boxes") or []):
        rect = _rect(box)
        if rect is None:
            continue
        c = SERIES[i % len(SERIES)]
        text = labels[i] if i < len(labels) else ""
        if i < len(scores) and is_num(scores[i]):
            text = f"{text} {scores[i]:.2f}"
        parts.append(f'<rect {rect} stroke="{c}" stroke-width="{stroke:.1f}"/>'
                     f'<text x="{box[0] + 2:.1f}" y="{max(box[1] - 3, 10):.1f}" font-size="{max(9, width / 20):.0f}" fill="{c}" '
                     f'stroke="#fff" stroke-width="0.6" paint-order="stroke">{esc(text)}</text>')
    return "".join(parts)


def _truth_boxes(gt: dict, width: float) -> str:
    """Ground truth: dashed white-on-black outlines (visible on any image), no labels to keep it legible."""
    stroke = max(1.0, width / 200)
    rects = [r for r in map(_rect, gt.get("boxes") or []) if r is not None]
    return "".join(f'<rect class="gt" {r} stroke="#000" stroke-width="{stroke * 2:.1f}" opacity="0.5"/>'
                   f'<rect class="gt" {r} stroke="#fff" stroke-width="{stroke:.1f}" stroke-dasharray="{stroke * 3:.1f}"/>'
                   for r in rects)


def _text_prediction(pred: dict, entry: dict) -> str:
    kind = pred.get("type")
    lines = []
    if kind == "classes":
        lines = [f"{esc(t.get('label'))} <span class='num'>{esc(pct(t.get('score')))}</span>"
                 for t in pred.get("top") or [] if isinstance(t, dict)]
    elif kind == "label":
        lines = [esc(pred.get("label"))]
    elif kind == "boxes":
        lines = [f"{len(pred.get('boxes') or [])} detection(s)"]
        truth = (entry.get("ground_truth") or {}).get("boxes")
        if truth is not None:
            lines.append(f"<span class='muted'>{len(truth)} true object(s), dashed</span>")
    elif kind == "label_map":
        lines = ["<span class='muted'>predicted label map (overlay)</span>"]
    gt = entry.get("ground_truth") or {}
    if gt.get("type") == "label" and gt.get("label") is not None:
        lines.append(f"<span class='muted'>truth: {esc(gt.get('label'))}</span>")
    return "".join(f"<div>{line}</div>" for line in lines)
