"""`audit report`: render results.json file(s) as one self-contained HTML report or a Markdown summary."""

from __future__ import annotations

from pathlib import Path

import click

from audit.errors import ResultsError
from audit.results.document import load as validate_results
from audit.io.safety import write_error


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("-o", "--out", required=True, type=click.Path(path_type=str),
              help="Report file to write (or a folder: OUT/report.html / OUT/report.md).")
@click.option("--format", "fmt", default="html", show_default=True, type=click.Choice(["html", "md"]),
              help="html: one self-contained file; md: a Markdown summary for CI step summaries.")
@click.option("--title", default=None, help="Title of the report [default: 'Robustness audit' / 'Robustness comparison'].")
@click.option("--baseline", default=None, help="The run (one of RESULTS) the others are compared with "
              "[default: per model, its least optimised engine].")
@click.option("--samples", default=500, show_default=True, type=click.IntRange(min=0),
              help="Paired bootstrap resamples per comparison (0: no paired tests).")
@click.option("--forensics", multiple=True, type=click.Path(dir_okay=False, path_type=str),
              help="A document of 'audit precision -o' (FP32 / INT8 layer errors) to show as a Precision section.")
def report(results, out, fmt, title, baseline, samples, forensics):
    """Render one run, or several side by side (models, engines, precisions) with their differences:
    paired bootstrap intervals and significance where the runs audited the same pixels (see `audit compare`).

    Example:

        audit report fp32/results.json int8/results.json -o compare.html
    """
    from reports import ReportInputError, write_report

    for path in results:  # the JSON Schema first: the renderer trusts the document's shape
        if not Path(path).is_dir():
            validate_results(path)
    try:
        from audit.analysis.compare import report_pairs

        paired = report_pairs(list(results), baseline, samples) if len(results) > 1 and samples else {}
        path = write_report(list(results), out, fmt=fmt, title=title, baseline=baseline, paired=paired,
                            forensics=list(forensics))
    except ReportInputError as exc:
        # reports/ stays independent of audit; its input errors are the CLI's ResultsError
        raise ResultsError(str(exc)) from None
    except OSError as exc:  # the report could not be written: a full disk, no permission, a file in the way
        raise write_error(out, exc, "-o/--out") from None
    size = path.stat().st_size
    click.echo(f"wrote {path} ({size / 1e6:.1f} MB)" if size >= 1e6 else f"wrote {path} ({size / 1e3:.0f} kB)")
