"""The "Precision" section: where an INT8 engine loses precision, from `audit precision`'s document.

The forensics document (kind `robustaudit.forensics`) holds, per tensor of an FP32 / INT8 pair, the
local SQNR (the error quantising that tensor adds) and the accumulated SQNR (FP32 vs INT8 tensor),
clean and under corruptions. This section shows one ranked list, the layers to keep in FP32 (those
that lose the most accumulated SQNR, with their local SQNR as detail), and the layers whose local error
grows most under each corruption; tensors quantised exactly (`exact`) are in neither.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from reports.fmt import esc
from reports.load import ReportInputError
from reports.sections import table

KIND = "robustaudit.forensics"


def load_forensics(path: str | Path) -> dict[str, Any]:
    """Read and check a forensics document (`audit precision -o FILE`); one-line ReportInputError otherwise."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ReportInputError(f"{path} is not a readable forensics document ({type(exc).__name__}); "
                               "give the file 'audit precision -o' wrote") from None
    def texts(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    ok = (isinstance(doc, dict) and doc.get("kind") == KIND and texts(doc.get("conditions")) and doc["conditions"]
          and isinstance(doc.get("tensors"), list)
          and all(isinstance(r, dict) and isinstance(r.get("tensor"), str) for r in doc["tensors"])
          and texts(doc.get("worst_local")) and (doc.get("worst_added") is None or texts(doc.get("worst_added")))
          and isinstance(doc.get("worst_growth"), dict) and all(texts(v) for v in doc["worst_growth"].values()))
    if not ok:
        raise ReportInputError(f"{path} is not a forensics document of 'audit precision' (kind {KIND})")
    return doc


def _at(row: dict, key: str, condition: str) -> Any:
    values = row.get(key)
    return values.get(condition) if isinstance(values, dict) else None


def _db(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    return "∞" if math.isinf(value) else f"{value:.1f}"


def section(docs: list[dict[str, Any]], top: int = 8) -> str:
    """The precision section for each forensics document (empty string when there is none)."""
    parts = []
    for i, doc in enumerate(docs):
        rows = {r.get("tensor"): r for r in doc["tensors"] if isinstance(r, dict) and r.get("exact") is not True}
        conditions = [str(c) for c in doc["conditions"]]
        ranking = doc.get("worst_added") if isinstance(doc.get("worst_added"), list) else doc["worst_local"]
        worst = [rows[t] for t in ranking if t in rows][:top]
        body = [[f'<span title="{esc(r.get("tensor"))}">{esc(r.get("node"))}</span>', esc(r.get("op_type")),
                 *(f'<span class="num">{_db(_at(r, "added_db", c))} '
                   f'<span class="muted">({_db(_at(r, "local_db", c))})</span></span>' for c in conditions)]
                for r in worst]
        head = ["layer", "op", *(f"{c}: dB lost (local SQNR)" for c in conditions)]
        growth = []
        for cond, ranked in doc["worst_growth"].items():
            for t in [t for t in ranked if t in rows][:3]:
                r = rows[t]
                growth.append([esc(cond), esc(r.get("node")), esc(r.get("op_type")),
                               f'<span class="num">{_db(_at(r, "growth_db", cond))}</span>'])
        parts.append(
            f'<section class="card precision" id="precision{i + 1}" data-check="precision"><h2>Precision: where INT8 loses</h2>'
            f'<p class="muted">{esc(Path(str(doc.get("int8", "?"))).name)} against {esc(Path(str(doc.get("fp32", "?"))).name)}. '
            "Layers to keep in FP32, worst first (as <code>--keep-fp32 auto</code> ranks them): the FP32-vs-INT8 SQNR "
            "each loses between its inputs and its output (dB lost, higher is worse); in brackets the local SQNR, the "
            "error quantising the layer's output adds (lower is worse). SQNR is energy-weighted: an outlier channel "
            "shows at the layer that reads it. Tensors quantised exactly on their input's scale are not ranked.</p>"
            + table(head, body, "precision-layers")
            + ("<h3>Largest growth of local error under corruption</h3>"
               + table(["condition", "layer", "op", "SQNR lost vs clean (dB)"], growth, "precision-growth") if growth else "")
            + "</section>")
    return "".join(parts)
