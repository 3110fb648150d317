"""Read results documents for reports: JSON, kind and major version checked here, nothing else of ours.

`reports/` deliberately does not import `audit.results.document`: a report must be renderable by anyone who has
the JSON files (the document is the contract), so the few checks it needs are done here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KIND = "robustaudit.results"
MAJOR = "1"
GROUPS = ("noise", "blur", "weather", "digital")
# the stylesheet, the self-check script and the published reference rows, inlined into every report
ASSETS = Path(__file__).parent / "assets"


class ReportInputError(ValueError):
    """A results document cannot be read or is not one this report understands (one-line message)."""


@dataclass
class Run:
    """One results document and the folder its relative example paths start from."""

    doc: dict[str, Any]
    base: Path
    label: str = ""
    source: str = ""
    metric: str = field(init=False)
    # set by write_report: this run is what the others are compared with (--baseline); and the paired
    # comparison documents of `audit compare` (audit/analysis/compare.py) against a base run, by its source
    baseline: bool = False
    paired: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metric = str(self.doc.get("task", {}).get("primary_metric", ""))

    @property
    def summary(self) -> dict[str, Any]:
        """summary.metrics[primary metric] (empty dict when missing)."""
        return (self.doc.get("summary", {}).get("metrics") or {}).get(self.metric) or {}

    @property
    def holdout(self) -> dict[str, Any]:
        """summary.holdout[primary metric] (empty dict when missing)."""
        return (self.doc.get("summary", {}).get("holdout") or {}).get(self.metric) or {}

    @property
    def suites(self) -> dict[str, dict[str, Any]]:
        """summary.suites[suite][primary metric] per other suite (e.g. cbar); empty when missing."""
        raw = self.doc.get("summary", {}).get("suites") or {}
        return {name: (block or {}).get(self.metric) or {} for name, block in raw.items()}

    @property
    def metric_label(self) -> str:
        """Human label of the primary metric, e.g. 'box AP'."""
        return str(self.doc.get("task", {}).get("metrics", {}).get(self.metric, {}).get("label") or self.metric)

    def cell(self, corruption: str, severity: int) -> float | None:
        """The primary metric of one cell, or None when the cell is missing or undefined."""
        for c in self.doc.get("cells", []):
            if c.get("corruption") == corruption and c.get("severity") == severity:
                return c.get("metrics", {}).get(self.metric)
        return None

    def clean(self) -> float | None:
        """The clean metric P (summary first, else the clean cell)."""
        p = self.summary.get("P")
        return p if p is not None else self.cell("clean", 0)

    def corruptions(self) -> list[tuple[str, str]]:
        """(corruption, group) pairs with cells, in document order; clean excluded."""
        seen: dict[str, str] = {}
        for c in self.doc.get("cells", []):
            if c.get("corruption") != "clean":
                seen.setdefault(str(c.get("corruption")), str(c.get("group", "")))
        return list(seen.items())

    def severities(self) -> list[int]:
        """Severities that have cells, ascending."""
        return sorted({int(c["severity"]) for c in self.doc.get("cells", []) if c.get("severity", 0) > 0})


def load_run(path: str | Path) -> Run:
    """Read one results.json, check `kind` and the major `schema_version`, return a `Run`.

    Example:
        >>> run = load_run("out/results.json")  # doctest: +SKIP
        >>> run.metric  # doctest: +SKIP
        'bbox_AP'
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportInputError(f"no results document at {path}; give the results.json that 'audit run' wrote") from None
    except IsADirectoryError:
        raise ReportInputError(f"{path} is a folder; give the results.json inside it") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInputError(f"{path} is not readable JSON ({exc}); give the results.json that 'audit run' wrote") from None
    check_document(doc, str(path))
    model = doc.get("model", {})
    engine = doc.get("engine", {})
    label = f"{model.get('name', '?')} · {engine.get('name', '?')} {engine.get('precision', '')}".strip()
    return Run(doc=doc, base=path.parent, label=label, source=str(path))


def check_document(doc: Any, source: str = "results document") -> None:
    """Raise `ReportInputError` unless `doc` is a robustaudit results document of major version 1.

    Example:
        >>> check_document({"kind": "other"})  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        ReportInputError: ...
    """
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise ReportInputError(f"{source} is not a robustaudit results document (expected \"kind\": \"{KIND}\")")
    version = str(doc.get("schema_version", ""))
    if version.split(".")[0] != MAJOR:
        raise ReportInputError(f"{source} has schema_version {version!r}; this report reads {MAJOR}.x; "
                               "upgrade robustaudit to render it")
    for key in ("task", "cells", "summary"):
        if key not in doc:
            raise ReportInputError(f"{source} lacks \"{key}\"; it is not a complete results document")
