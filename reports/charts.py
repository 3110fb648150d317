"""Multi-series SVG charts for study reports: grouped bars (paper Figures 1 and 6) and lines over a
numeric x axis (Figure 5, drop vs learning rate). Same conventions as `reports.svg`: strings of SVG,
every text escaped, colours from one palette, values as fractions shown as percentages.
"""

from __future__ import annotations

import math
from typing import Sequence

from reports.fmt import esc, is_num, pct
from reports.svg import INK, MUTED, SERIES, _svg


def _legend(names: Sequence[str], x: float, y: float, width: float) -> tuple[str, float]:
    """Swatches, as many per row as fit in `width`; returns the SVG and the height used."""
    parts, per_row = [], max(1, int(width // 210))
    for i, name in enumerate(names):
        cx, cy = x + (i % per_row) * 210, y + (i // per_row) * 18
        parts.append(f'<rect x="{cx}" y="{cy}" width="12" height="12" rx="2" fill="{SERIES[i % len(SERIES)]}"/>'
                     f'<text x="{cx + 17}" y="{cy + 10}" font-size="11" fill="{INK}">{esc(name)}</text>')
    return "".join(parts), math.ceil(len(names) / per_row) * 18


def _y_axis(left: float, top: float, height: float, width: float, y_max: float) -> str:
    parts = []
    for f in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + (1 - f) * height
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" stroke="#eef0f3"/>'
                     f'<text x="{left - 6}" y="{y + 3:.1f}" text-anchor="end" font-size="10" fill="{MUTED}">{esc(pct(f * y_max))}</text>')
    return "".join(parts)


def _top(values: Sequence[float | None]) -> float:
    """A y-axis maximum whose quarters are whole percents, above the largest value (at most 100 % for fractions)."""
    vals = [v for v in values if is_num(v)]
    top = max(vals + [0.0])
    return max(0.04, min(math.ceil(top * 1.05 / 0.04) * 0.04, 1.0 if top <= 1.0 else math.inf))


def grouped_bars(groups: Sequence[tuple[str, Sequence[float | None]]], series: Sequence[str], label: str,
                 y_label: str = "performance drop (1 − rPC)") -> str:
    """Vertical bars: one cluster per group (e.g. a backbone), one bar per series (e.g. a task).

    Missing values (None) leave a gap marked 'n/a'.

    Example:
        >>> svg = grouped_bars([("Regular", [0.3, None]), ("Swin-T", [0.2, 0.25])], ["COCO", "ADE20K"], "drops")
        >>> svg.count("<rect") - 2, "n/a" in svg  # minus the two legend swatches
        (3, True)
    """
    bar_w, left, top, plot_h = 24, 56, 14, 220
    cluster = max(len(series) * bar_w + 30, 130)  # room for the group's name under its bars
    gap = cluster - len(series) * bar_w
    width = left + max(1, len(groups)) * cluster + 16
    y_max = _top([v for _, vs in groups for v in vs])
    sy = lambda v: top + (1 - max(0.0, v) / y_max) * plot_h  # noqa: E731
    parts = [_y_axis(left, top, plot_h, width - left - 8, y_max),
             f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" font-size="11" fill="{INK}" '
             f'transform="rotate(-90 14 {top + plot_h / 2})">{esc(y_label)}</text>']
    for g, (name, values) in enumerate(groups):
        x0 = left + gap / 2 + g * cluster
        for s, value in enumerate(values):
            x = x0 + s * bar_w
            if is_num(value):
                parts.append(f'<rect x="{x:.1f}" y="{sy(value):.1f}" width="{bar_w - 3}" height="{top + plot_h - sy(value):.1f}" '
                             f'fill="{SERIES[s % len(SERIES)]}"><title>{esc(name)} · {esc(series[s])}: {esc(pct(value))}</title></rect>')
            else:
                parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - 4}" text-anchor="middle" font-size="9" '
                             f'fill="{MUTED}">n/a</text>')
        parts.append(f'<text x="{x0 + len(series) * bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                     f'font-size="11" fill="{INK}">{esc(name)}</text>')
    width = max(width, left + 2 * 210)
    legend, legend_h = _legend(series, left, top + plot_h + 30, width - left)
    parts.append(legend)
    return _svg(width, top + plot_h + 36 + legend_h, "".join(parts), label, "chart grouped")


def lines(series: Sequence[tuple[str, Sequence[tuple[float, float | None]]]], x_label: str, y_label: str, label: str,
          log_x: bool = True) -> str:
    """One polyline per series over a numeric x axis (log scale by default, as learning rates are swept).

    Example:
        >>> svg = lines([("PRIME", [(0.01, 0.2), (0.02, 0.25), (0.04, None)])], "learning rate", "drop", "fig 5")
        >>> svg.count("<circle"), "<polyline" in svg
        (2, True)
    """
    w, left, top, plot_h = 560, 60, 14, 220
    shown = (lambda v: v > 0) if log_x else (lambda v: v >= 0)  # noqa: E731  a log axis has no 0
    xs = sorted({x for _, pts in series for x, y in pts if shown(x)})
    if not xs:
        return ""
    tx = (lambda v: math.log10(v)) if log_x else (lambda v: v)  # noqa: E731
    lo, hi = tx(xs[0]), tx(xs[-1])
    span = hi - lo or 1.0
    sx = lambda v: left + 20 + (tx(v) - lo) / span * (w - left - 50) if hi > lo else left + (w - left) / 2  # noqa: E731
    y_max = _top([y for _, pts in series for _, y in pts])
    sy = lambda v: top + (1 - v / y_max) * plot_h  # noqa: E731
    parts = [_y_axis(left, top, plot_h, w - left - 10, y_max),
             f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" font-size="11" fill="{INK}" '
             f'transform="rotate(-90 14 {top + plot_h / 2})">{esc(y_label)}</text>',
             f'<text x="{(left + w) / 2}" y="{top + plot_h + 34}" text-anchor="middle" font-size="11" fill="{INK}">{esc(x_label)}</text>']
    parts += [f'<text x="{sx(x):.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="10" fill="{MUTED}">{x:g}</text>' for x in xs]
    for s, (name, pts) in enumerate(series):
        colour = SERIES[s % len(SERIES)]
        valid = sorted((x, y) for x, y in pts if shown(x) and is_num(y))
        if len(valid) > 1:
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in valid)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{colour}"><title>{esc(name)}, {x:g}: '
                  f'{esc(pct(y))}</title></circle>' for x, y in valid]
    legend, legend_h = _legend([n for n, _ in series], left, top + plot_h + 46, w - left)
    parts.append(legend)
    return _svg(w, top + plot_h + 52 + legend_h, "".join(parts), label, "chart lines")
