"""Formatting shared by the HTML and Markdown views: escaping, percentages, confidence intervals.

Metric values in the results document are fractions in [0, 1]; every view shows them as percentages
with one decimal, and `None` (undefined, missing) as an en dash, never as 0.
"""

from __future__ import annotations

import html
from typing import Any

DASH = "–"


def esc(value: Any) -> str:
    """HTML-escape any value for text and attribute positions (quotes included).

    Example:
        >>> esc('<script>alert("x")</script>')
        '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'
    """
    return html.escape("" if value is None else str(value), quote=True)


def is_num(value: Any) -> bool:
    """True for real numbers (bool excluded), False for None and anything else.

    Example:
        >>> is_num(0.5), is_num(None), is_num(True)
        (True, False, False)
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def pct(value: Any, signed: bool = False) -> str:
    """A fraction as a percentage with one decimal ('41.2%'), or a dash when undefined.

    Example:
        >>> pct(0.4123), pct(None), pct(-0.021, signed=True)
        ('41.2%', '–', '-2.1%')
    """
    if not is_num(value):
        return DASH
    return f"{value * 100:+.1f}%" if signed else f"{value * 100:.1f}%"


def pp(value: Any) -> str:
    """A difference of two fractions in percentage points ('+1.3 pp'), or a dash.

    Example:
        >>> pp(-0.0213)
        '-2.1 pp'
    """
    return DASH if not is_num(value) else f"{value * 100:+.1f} pp"


def ci_text(ci: dict | None, key: str) -> str:
    """' [39.8, 42.7]' for a CI of `key` in percent, or '' when the results carry none.

    Example:
        >>> ci_text({"mPC": [0.398, 0.427]}, "mPC")
        ' [39.8, 42.7]'
    """
    if not isinstance(ci, dict):
        return ""
    bounds = ci.get(key)
    if not isinstance(bounds, list) or len(bounds) != 2 or not all(is_num(b) for b in bounds):
        return ""
    return f" [{bounds[0] * 100:.1f}, {bounds[1] * 100:.1f}]"


def drop_of(entry: dict | None) -> float | None:
    """Performance drop 1 - rPC of a summary entry (its 'drop' if given).

    Example:
        >>> round(drop_of({"rPC": 0.8}), 3), drop_of({"rPC": None})
        (0.2, None)
    """
    if not isinstance(entry, dict):
        return None
    if is_num(entry.get("drop")):
        return float(entry["drop"])
    return 1.0 - entry["rPC"] if is_num(entry.get("rPC")) else None


def diff(a: Any, b: Any) -> float | None:
    """b - a when both are numbers, else None.

    Example:
        >>> round(diff(0.4, 0.38), 3), diff(None, 0.38)
        (-0.02, None)
    """
    return float(b) - float(a) if is_num(a) and is_num(b) else None
