"""Reports: results document(s) -> one self-contained HTML file, or a Markdown summary.

Reads the results document of `audit run` and imports nothing else of robustaudit, so anyone holding
results.json files can render them. Public API:

- `write_report(results_paths, out, fmt="html", title=None) -> Path`
- `render_html(runs, title) -> str`, `render_markdown(runs, title) -> str`
- `load_run(path) -> Run`; bad input raises `ReportInputError` (a `ValueError`) with a one-line message.
"""

from __future__ import annotations

from pathlib import Path

from reports.html import render_html
from reports.load import ReportInputError, Run, load_run
from reports.markdown import render_markdown

__all__ = ["ReportInputError", "Run", "load_run", "render_html", "render_markdown", "write_report", "load_runs",
           "mark_baseline"]

FORMATS = ("html", "md")


def load_runs(results_paths: list[str | Path]) -> list[Run]:
    """Load several results documents; labels are made unique so runs can be told apart.

    Example:
        >>> [r.label for r in load_runs(["a/results.json", "a/results.json"])]  # doctest: +SKIP
        ['net · onnxruntime fp32', 'net · onnxruntime fp32 (2)']
    """
    if not results_paths:
        raise ReportInputError("no results document given; pass one or more results.json files")
    runs = [load_run(p) for p in results_paths]
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
        if seen[run.label] > 1:
            run.label = f"{run.label} ({seen[run.label]})"
    return runs


def mark_baseline(runs: list[Run], baseline: str | Path | None) -> None:
    """Mark the run read from `baseline` (a results.json or its folder) as the one others are compared with."""
    if baseline is None:
        return
    want = Path(baseline)
    want = want / "results.json" if want.is_dir() else want
    for run in runs:
        if Path(run.source).resolve() == want.resolve():
            run.baseline = True
            return
    raise ReportInputError(f"--baseline {baseline} is not one of the reported results; give one of them")


def write_report(results_paths: list[str | Path], out: str | Path, fmt: str = "html", title: str | None = None,
                 baseline: str | Path | None = None, paired: dict[tuple[str, str], dict] | None = None,
                 forensics: list[str | Path] | None = None) -> Path:
    """Render results document(s) and write the report; `out` is a file, or a folder (-> report.html / report.md).

    `baseline` (one of `results_paths`) is what the other runs are compared with; `paired` maps
    (base source, other source) to the paired comparison document of `audit compare`, whose
    intervals and significance the comparison then shows. `forensics` are documents of `audit
    precision -o` (FP32 / INT8 layer errors), shown as a "Precision" section.

    Example:
        >>> write_report(["out/results.json"], "out")  # doctest: +SKIP
        PosixPath('out/report.html')
    """
    if fmt not in FORMATS:
        raise ReportInputError(f"unknown report format {fmt!r}; use one of: {', '.join(FORMATS)}")
    if isinstance(results_paths, (str, Path)):
        results_paths = [results_paths]
    runs = load_runs(list(results_paths))
    mark_baseline(runs, baseline)
    for (base, other), doc in (paired or {}).items():
        for run in runs:
            if run.source == other:
                run.paired[base] = doc
    out = Path(out)
    if out.is_dir() or (not out.suffix and not out.exists()):
        out = out / f"report.{fmt}"
    heading = title or ("Robustness audit" if len(runs) == 1 else "Robustness comparison")
    from reports.precision import load_forensics

    docs = [load_forensics(f) for f in forensics or []]
    text = render_html(runs, heading, forensics=docs) if fmt == "html" else render_markdown(runs, heading)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)  # atomic: a reader never sees half a report
    return out
