"""SVG charts written in Python: bars, corruption x severity heatmap, severity curves, scatter.

No JavaScript library draws anything: each chart is a string of SVG with every text escaped, so the
report opens offline and prints as vectors. Colours come from one sequential scale, chosen to be
readable in print and by colour-blind readers (light yellow -> teal -> dark blue).
"""

from __future__ import annotations

import math
from typing import Sequence

from reports.fmt import esc, is_num, pct

# sequential stops (position, rgb): low values light/warm, high values dark/blue
STOPS = [(0.0, (253, 231, 190)), (0.25, (248, 175, 110)), (0.5, (220, 110, 90)),
         (0.75, (120, 90, 150)), (1.0, (40, 60, 120))]
INK = "#1f2937"
MUTED = "#6b7280"
ACCENT = "#2563eb"
SERIES = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626"]


def colour(t: float) -> str:
    """Colour of position t in [0, 1] on the sequential scale (clamped).

    Example:
        >>> colour(0.0), colour(1.0)
        ('#fde7be', '#283c78')
    """
    t = min(1.0, max(0.0, t))
    for (p0, c0), (p1, c1) in zip(STOPS, STOPS[1:]):
        if t <= p1:
            f = (t - p0) / (p1 - p0)
            return "#%02x%02x%02x" % tuple(round(a + (b - a) * f) for a, b in zip(c0, c1))
    return "#%02x%02x%02x" % STOPS[-1][1]


def text_colour(t: float) -> str:
    """Dark text on light cells, white on dark cells (the scale darkens past its middle)."""
    return "#ffffff" if t > 0.55 else INK


def _svg(width: float, height: float, body: str, label: str, cls: str) -> str:
    return (f'<svg class="{cls}" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
            f'height="{height:.0f}" role="img" aria-label="{esc(label)}">'
            f"<title>{esc(label)}</title>{body}</svg>")


def bar_chart(rows: Sequence[tuple[str, float | None]], label: str, max_value: float | None = None) -> str:
    """Horizontal bars of fractions (e.g. drop per group); None draws 'n/a' instead of a bar.

    Example:
        >>> "<rect" in bar_chart([("noise", 0.52), ("blur", None)], "drop per group")
        True
    """
    top = max([v for _, v in rows if is_num(v)] + [max_value or 0.0, 1e-9])
    name_w, bar_w, row_h = 110, 300, 26
    parts = []
    for i, (name, value) in enumerate(rows):
        y = 8 + i * row_h
        parts.append(f'<text x="{name_w - 8}" y="{y + 15}" text-anchor="end" fill="{INK}">{esc(name)}</text>')
        if is_num(value):
            w = max(0.0, value) / top * bar_w
            fill = MUTED if "hold" in name else ACCENT  # hold-out corruptions are not in mPC: grey
            parts.append(f'<rect x="{name_w}" y="{y + 3}" width="{w:.1f}" height="17" rx="2" fill="{fill}">'
                         f"<title>{esc(name)}: {esc(pct(value))}</title></rect>")
            parts.append(f'<text x="{name_w + w + 6:.1f}" y="{y + 15}" fill="{INK}">{esc(pct(value))}</text>')
        else:
            parts.append(f'<text x="{name_w + 4}" y="{y + 15}" fill="{MUTED}">n/a</text>')
    return _svg(name_w + bar_w + 70, 16 + len(rows) * row_h, "".join(parts), label, "chart bars")


def heatmap(rows: Sequence[tuple[str, Sequence[float | None]]], severities: Sequence[int], scale: tuple[float, float],
            label: str) -> str:
    """Corruption x severity grid; colour = position of the value in `scale` (lo, hi), value printed in each cell.

    Example:
        >>> svg = heatmap([("fog", [0.3, None])], [1, 2], (0.2, 0.4), "box AP")
        >>> svg.count('class="hm-cell"'), "30.0%" in svg
        (1, True)
    """
    name_w, cw, ch, top = 130, 64, 22, 26
    lo, hi = scale
    span = hi - lo if hi > lo else 1.0
    parts = [f'<text x="{name_w + i * cw + cw / 2}" y="17" text-anchor="middle" fill="{MUTED}">s{s}</text>'
             for i, s in enumerate(severities)]
    for r, (name, values) in enumerate(rows):
        y = top + r * ch
        parts.append(f'<text x="{name_w - 8}" y="{y + 15}" text-anchor="end" fill="{INK}">{esc(name)}</text>')
        for i, v in enumerate(values):
            x = name_w + i * cw
            if is_num(v):
                t = 1 - (v - lo) / span  # low values dark: the eye goes to the damage
                parts.append(f'<rect class="hm-cell" x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{colour(t)}">'
                             f"<title>{esc(name)}, severity {severities[i]}: {esc(pct(v))}</title></rect>"
                             f'<text x="{x + cw / 2 - 1}" y="{y + 15}" text-anchor="middle" fill="{text_colour(t)}">{esc(pct(v))}</text>')
            else:
                parts.append(f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="#f3f4f6"/>'
                             f'<text x="{x + cw / 2 - 1}" y="{y + 15}" text-anchor="middle" fill="{MUTED}">–</text>')
    body = "".join(parts) + _legend(name_w, top + len(rows) * ch + 14, len(severities) * cw - 2, lo, hi)
    return _svg(name_w + len(severities) * cw + 10, top + len(rows) * ch + 54, body, label, "chart heatmap")


def nice_range(values: Sequence[float], top: float | None = None) -> tuple[float, float]:
    """A colour range rounded to 5 points that spans `values` (and `top`, e.g. the clean metric).

    Example:
        >>> nice_range([0.243, 0.31], top=0.402)
        (0.2, 0.45)
    """
    vals = [v for v in values if is_num(v)] + ([top] if is_num(top) else [])
    if not vals:
        return 0.0, 1.0
    lo, hi = math.floor(min(vals) * 20) / 20, math.ceil(max(vals) * 20) / 20
    return (lo, hi) if hi > lo else (max(0.0, lo - 0.05), hi + 0.05)


def _legend(x: float, y: float, width: float, lo: float, hi: float) -> str:
    steps = 24
    parts = [f'<rect x="{x + i * width / steps:.1f}" y="{y}" width="{width / steps + 0.5:.1f}" height="10" '
             f'fill="{colour(1 - i / (steps - 1))}"/>' for i in range(steps)]
    for f in (0.0, 0.5, 1.0):
        anchor = {0.0: "start", 0.5: "middle", 1.0: "end"}[f]
        parts.append(f'<text x="{x + f * width:.1f}" y="{y + 24}" text-anchor="{anchor}" fill="{MUTED}" '
                     f'font-size="11">{esc(pct(lo + f * (hi - lo)))}</text>')
    return f'<g class="legend">{"".join(parts)}</g>'


def line_chart(name: str, clean: float | None, points: Sequence[tuple[int, float | None]], y_range: tuple[float, float]) -> str:
    """A small severity curve: x = severity (0 = clean), y = metric on the heatmap's range (lo, hi).

    Example:
        >>> "<polyline" in line_chart("fog", 0.4, [(1, 0.35), (2, 0.3)], (0.2, 0.4))
        True
    """
    w, h, left, bottom, pad = 156, 104, 36, 18, 20
    lo, hi = y_range
    span = hi - lo if hi > lo else 1.0
    xs = [0] + [s for s, _ in points]
    sx = lambda s: left + (s - min(xs)) / max(1, max(xs) - min(xs)) * (w - left - 8)  # noqa: E731
    sy = lambda v: pad + (1 - (v - lo) / span) * (h - bottom - pad)  # noqa: E731
    pts = ([(0, clean)] if is_num(clean) else []) + [(s, v) for s, v in points if is_num(v)]
    parts = [f'<line x1="{left}" y1="{h - bottom}" x2="{w - 8}" y2="{h - bottom}" stroke="#d1d5db"/>',
             f'<line x1="{left}" y1="{pad}" x2="{w - 8}" y2="{pad}" stroke="#eef0f3"/>',
             f'<text x="{left - 3}" y="{pad + 3}" text-anchor="end" font-size="9" fill="{MUTED}">{esc(pct(hi))}</text>',
             f'<text x="{left - 3}" y="{h - bottom + 3}" text-anchor="end" font-size="9" fill="{MUTED}">{esc(pct(lo))}</text>']
    parts += [f'<text x="{sx(s):.1f}" y="{h - 5}" text-anchor="middle" font-size="9" fill="{MUTED}">{s}</text>' for s in xs]
    if len(pts) > 1:
        path = " ".join(f"{sx(s):.1f},{sy(v):.1f}" for s, v in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{ACCENT}" stroke-width="1.8"/>')
    parts += [f'<circle cx="{sx(s):.1f}" cy="{sy(v):.1f}" r="2.4" fill="{ACCENT}"><title>severity {s}: {esc(pct(v))}</title></circle>'
              for s, v in pts]
    body = f'<text x="4" y="12" font-size="11" fill="{INK}" font-weight="600">{esc(name)}</text>' + "".join(parts)
    return _svg(w, h + 6, body, f"{name}: metric per severity", "chart curve")


def scatter(points: Sequence[tuple[str, float | None, float | None]], x_label: str, y_label: str, label: str,
            references: Sequence[tuple[str, float, float]] = ()) -> str:
    """Numbered points (name, x fraction, y fraction), as the paper's Figure 1: clean metric vs
    performance drop, one point per run; point i+1 is points[i] (the legend is HTML, so long names wrap).

    Example:
        >>> scatter([("fp32", 0.4, 0.18), ("int8", None, 0.2)], "clean", "drop", "fig").count("<circle")
        1
    """
    w, left, bottom, pad, plot_h = 600, 70, 44, 16, 260
    valid = [(i, x, y) for i, (_, x, y) in enumerate(points) if is_num(x) and is_num(y)]
    refs = [(i, x, y) for i, (_, x, y) in enumerate(references) if is_num(x) and is_num(y)]
    xs, ys = [x for _, x, _ in valid + refs], [y for _, _, y in valid + refs]
    x_max = min(1.0, math.ceil(max(xs + [0.05]) * 1.1 * 10) / 10)
    y_max = min(1.0, math.ceil(max(ys + [0.04]) * 1.1 / 0.04) * 0.04)  # ticks at whole percents
    h = pad + plot_h + bottom
    sx = lambda v: left + v / x_max * (w - left - pad)  # noqa: E731
    sy = lambda v: pad + (1 - v / y_max) * plot_h  # noqa: E731
    parts = [f'<line x1="{left}" y1="{pad + plot_h}" x2="{w - pad}" y2="{pad + plot_h}" stroke="{MUTED}"/>',
             f'<line x1="{left}" y1="{pad}" x2="{left}" y2="{pad + plot_h}" stroke="{MUTED}"/>',
             f'<text x="{(left + w - pad) / 2}" y="{pad + plot_h + 36}" text-anchor="middle" fill="{INK}">{esc(x_label)}</text>',
             f'<text x="14" y="{pad + plot_h / 2}" text-anchor="middle" fill="{INK}" '
             f'transform="rotate(-90 14 {pad + plot_h / 2})">{esc(y_label)}</text>']
    for f in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" y1="{sy(f * y_max):.1f}" x2="{w - pad}" y2="{sy(f * y_max):.1f}" stroke="#eef0f3"/>')
        parts.append(f'<text x="{sx(f * x_max):.1f}" y="{pad + plot_h + 16}" text-anchor="middle" font-size="10" fill="{MUTED}">{esc(pct(f * x_max))}</text>')
        parts.append(f'<text x="{left - 6}" y="{sy(f * y_max) + 3:.1f}" text-anchor="end" font-size="10" fill="{MUTED}">{esc(pct(f * y_max))}</text>')
    placed: list[tuple[float, float]] = []
    leaders, markers = [], []
    for i, x, y in valid:
        name, c = points[i][0], SERIES[i % len(SERIES)]
        px, py = sx(x), sy(y)
        mx = _free_spot(px, py, placed)
        placed.append((mx, py))
        if mx != px:  # moved aside from a marker it would hide (FP32 vs INT8 often coincide): a leader to its value
            leaders.append(f'<line x1="{px:.1f}" y1="{py:.1f}" x2="{mx:.1f}" y2="{py:.1f}" stroke="{c}" stroke-width="1.5"/>'
                           f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{c}"/>')
        markers.append(f'<circle cx="{mx:.1f}" cy="{py:.1f}" r="9" fill="{c}"><title>{esc(name)}: {esc(pct(x))}, '
                       f'drop {esc(pct(y))}</title></circle><text x="{mx:.1f}" y="{py + 4:.1f}" text-anchor="middle" '
                       f'font-size="11" font-weight="700" fill="#fff">{i + 1}</text>')
    for i, x, y in refs:  # published reference points: hollow grey squares, lettered R1, R2, ...
        vx, py = sx(x), sy(y)
        px = _free_spot(vx, py, placed)
        placed.append((px, py))
        if px != vx:  # moved aside from a marker it would hide: a leader to its value
            leaders.append(f'<line x1="{vx:.1f}" y1="{py:.1f}" x2="{px:.1f}" y2="{py:.1f}" stroke="{MUTED}" stroke-width="1"/>'
                           f'<circle cx="{vx:.1f}" cy="{py:.1f}" r="2" fill="{MUTED}"/>')
        markers.append(f'<rect x="{px - 8:.1f}" y="{py - 8:.1f}" width="16" height="16" fill="#fff" stroke="{MUTED}" '
                       f'stroke-width="1.5" stroke-dasharray="3 2"><title>published reference: {esc(references[i][0])}: '
                       f'{esc(pct(x))}, drop {esc(pct(y))}</title></rect><text x="{px:.1f}" y="{py + 3.5:.1f}" '
                       f'text-anchor="middle" font-size="8" fill="{MUTED}">R{i + 1}</text>')
    return _svg(w, h, "".join(parts + leaders + markers), label, "chart scatter")  # leaders first: under markers


def _free_spot(x: float, y: float, placed: list[tuple[float, float]], r: float = 9.0) -> float:
    """The x nearest to `x` (stepping right) where a marker of radius `r` at height `y` overlaps none placed."""
    while any((x - px) ** 2 + (y - py) ** 2 < (2 * r) ** 2 for px, py in placed):
        x += 2 * r + 2
    return x
