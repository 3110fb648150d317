"""Comparison of several runs: who is the same model on another engine or precision, and by how much
they differ (clean metric, mPC, rPC, and the corruption x severity cells that moved most).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reports.fmt import diff, is_num
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
    shared: int = 0  # corrupted cells both runs count in mPC: what the mPC / rPC deltas average
    only_base: list[str] = field(default_factory=list)  # cells one run holds and the other lacks: left out
    only_other: list[str] = field(default_factory=list)

    @property
    def comparable(self) -> bool:
        """False when the runs share no corrupted cell: mPC and rPC then have no difference to show."""
        return self.shared > 0

    @property
    def note(self) -> str:
        """Which cells the deltas stand on, e.g. 'on the 15 cells both runs hold'."""
        if not self.comparable:
            return "mPC and rPC not comparable: the runs share no corrupted cell"
        left = [f"{len(cells)} only in {who}" for cells, who in ((self.only_base, "the base"), (self.only_other, "this run"))
                if cells]
        return (f"mPC and rPC on the {self.shared} cell{'s' if self.shared != 1 else ''} both runs hold"
                + (f" (left out: {', '.join(left)})" if left else ""))

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


def significance(entry: dict[str, Any] | None) -> str:
    """The mark of one paired delta: 'significant', 'not significant', or '' when no interval was computed.

    Example:
        >>> significance({"ci": [-0.04, -0.01], "significant": True}), significance({"ci": []})
        ('significant', '')
    """
    if not entry or not entry.get("ci"):
        return ""
    return "significant" if entry.get("significant") else "not significant"


def mpc_cells(run: Run) -> list[tuple[str, int]]:
    """The corrupted cells a run's own mPC averages (summary per_corruption), in document order.

    Example:
        >>> mpc_cells(load_run("out/results.json"))[:2]  # doctest: +SKIP
        [('gaussian_noise', 1), ('gaussian_noise', 2)]
    """
    per = run.summary.get("per_corruption")
    counted = ({(str(n), int(s)) for n, e in per.items() if isinstance(e, dict) for s in (e.get("per_severity") or {})}
               if isinstance(per, dict) and per else None)
    cells = [(str(c.get("corruption")), int(c.get("severity", 0))) for c in run.doc.get("cells", [])
             if c.get("corruption") != "clean"]
    return [c for c in cells if (c in counted if counted is not None else is_num(run.cell(*c)))]


def _delta(base: Run, other: Run, top: int) -> Delta:
    mine, theirs = mpc_cells(base), mpc_cells(other)
    shared = [c for c in mine if c in set(theirs)]
    stats = other.paired.get(base.source)
    clean = diff(base.clean(), other.clean())
    if stats and stats.get("summary"):  # the paired test's own point estimates: the interval is about them
        s = stats["summary"]
        clean, mpc, rpc = s["P"]["delta"], s["mPC"]["delta"], s["rPC"]["delta"]
    elif set(mine) == set(theirs):  # the same cells: each run's own summary is the figure
        mpc, rpc = diff(base.summary.get("mPC"), other.summary.get("mPC")), diff(base.summary.get("rPC"), other.summary.get("rPC"))
    else:
        figures = [_on_cells(r, shared) for r in (base, other)]
        mpc, rpc = diff(figures[0][0], figures[1][0]), diff(figures[0][1], figures[1][1])
    cells = []
    for corruption, _ in base.corruptions():
        for severity in base.severities():
            a, b = base.cell(corruption, severity), other.cell(corruption, severity)
            d = diff(a, b)
            if d is not None:
                cells.append((corruption, severity, a, b, d))
    cells.sort(key=lambda c: -abs(c[4]))
    return Delta(base, other, clean, mpc if shared else None, rpc if shared else None, cells[:top], stats,
                 shared=len(shared), only_base=[_name(c) for c in mine if c not in set(theirs)],
                 only_other=[_name(c) for c in theirs if c not in set(mine)])


def _on_cells(run: Run, cells: list[tuple[str, int]]) -> tuple[float | None, float | None]:
    """mPC and rPC of `run` over `cells` (the summary's rule: the mean of the defined cells, over P)."""
    values = [v for v in (run.cell(c, s) for c, s in cells) if is_num(v)]
    mpc = sum(values) / len(values) if values else None
    p = run.clean()
    return mpc, (mpc / p if mpc is not None and is_num(p) and p else None)


def _name(cell: tuple[str, int]) -> str:
    return f"{cell[0]}-s{cell[1]}"
