"""Comparison of several runs: who is the same model on another engine or precision, and by how much
they differ (clean metric, mPC, rPC, and the corruption x severity cells that moved most).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reports.fmt import diff
from reports.load import Run

# baseline preference inside a family of runs: the least optimised engine is the reference
PRECISION_RANK = {"fp32": 0, "mixed": 1, "fp16": 2, "int8": 3}


@dataclass
class Delta:
    """How `other` differs from `base` (other - base, fractions); `cells` sorted by |delta|, top first."""

    base: Run
    other: Run
    clean: float | None
    mpc: float | None
    rpc: float | None
    cells: list[tuple[str, int, float | None, float | None, float]] = field(default_factory=list)
    stats: dict[str, Any] | None = None  # the paired comparison document (audit compare), when there is one

    def cell_stats(self, corruption: str, severity: int) -> dict[str, Any] | None:
        for c in (self.stats or {}).get("cells", []):
            if c.get("corruption") == corruption and c.get("severity") == severity:
                return c
        return None


def model_key(run: Run) -> tuple[str, str, str, str]:
    """Same model (by source hash, else name) on the same task and data: what makes runs comparable.

    Example:
        >>> model_key(load_run("int8/results.json"))  # doctest: +SKIP
        ('sha256:abab...', 'coco', 'coco', 'data/coco')
    """
    doc = run.doc
    provenance = (doc.get("model", {}).get("metadata") or {}).get("provenance") or {}
    ident = provenance.get("source_sha256") if isinstance(provenance, dict) else None
    model = f"sha256:{ident}" if ident else f"name:{doc.get('model', {}).get('name', '')}"
    dataset = doc.get("dataset", {})
    return model, str(doc.get("task", {}).get("name", "")), str(dataset.get("format", "")), str(dataset.get("path", ""))


def families(runs: list[Run]) -> list[list[Run]]:
    """Groups of two or more runs that audit the same model on the same task and data.

    Example:
        >>> [len(f) for f in families(load_runs(["a.json", "b.json", "c.json"]))]  # doctest: +SKIP
        [2]
    """
    groups: dict[tuple[str, str, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault(model_key(run), []).append(run)
    return [g for g in groups.values() if len(g) > 1]


def deltas(runs: list[Run], top: int = 10) -> list[Delta]:
    """For each family, each run against the family's baseline (fp32 first, else the first given).

    Example:
        >>> [(d.base.label, d.other.label, d.mpc) for d in deltas(runs)]  # doctest: +SKIP
        [('net · onnxruntime fp32', 'net · tensorrt int8', -0.031)]
    """
    chosen = [r for r in runs if r.baseline]
    if chosen:  # --baseline: every other run against it, whatever model it is
        return [_delta(chosen[0], other, top) for other in runs if other is not chosen[0]]
    out = []
    for family in families(runs):
        base = min(family, key=lambda r: (PRECISION_RANK.get(r.doc.get("engine", {}).get("precision"), 9),
                                          family.index(r)))
        for other in family:
            if other is not base:
                out.append(_delta(base, other, top))
    return out


def _delta(base: Run, other: Run, top: int) -> Delta:
    s0, s1 = base.summary, other.summary
    cells = []
    for corruption, _ in base.corruptions():
        for severity in base.severities():
            a, b = base.cell(corruption, severity), other.cell(corruption, severity)
            d = diff(a, b)
            if d is not None:
                cells.append((corruption, severity, a, b, d))
    cells.sort(key=lambda c: -abs(c[4]))
    return Delta(base, other, diff(base.clean(), other.clean()), diff(s0.get("mPC"), s1.get("mPC")),
                 diff(s0.get("rPC"), s1.get("rPC")), cells[:top], other.paired.get(base.source))
