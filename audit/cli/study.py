"""`audit study STUDY.yaml`: finetune -> export -> audit for every combination of a study file, one report."""

from __future__ import annotations

import click


@click.command()
@click.argument("study_file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--out", default=None, help="Output folder [default: the study file's 'out'].")
@click.option("--only", multiple=True, metavar="GLOB", help="Run only the combinations whose id matches (repeatable).")
@click.option("--list", "list_only", is_flag=True, help="Print the combinations and their stage status; run nothing.")
@click.option("--keep-going", is_flag=True, help="A failed combination is recorded and the others still run (exit 1 at the end).")
@click.option("--report-only", is_flag=True, help="Only re-render the study report from what has finished.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def study(study_file, out, only, list_only, keep_going, report_only, quiet):
    """Run the paper's protocol from a study file: for every backbone x task x transfer mode x
    augmentation x learning rate, fine-tune, export to ONNX (parity-checked) and audit; then write
    one report (drop per model and task, per corruption group, vs learning rate, with / without
    PRIME). Running it again skips finished stages and resumes interrupted ones.

    Example:

        audit study studies/tiny-cpu.yaml && open runs/study-tiny-cpu/report.html
    """
    from audit.errors import StudyError
    from audit.workflows.study import load_study, run_study, select
    from audit.workflows.study.runner import write_study_report

    spec = load_study(study_file, out)
    if list_only:
        _print_grid(spec, select(spec, list(only)))
        return
    if report_only:
        if not (spec.out / "study.json").exists():
            raise StudyError(f"{spec.out} holds no study.json yet; run `audit study {study_file}` first")
        click.echo(f"report: {write_study_report(spec.out)}")
        return
    result = run_study(spec, only=list(only), keep_going=keep_going, progress=not quiet,
                       log=lambda m: click.echo(m, err=True))
    if result.report:
        click.echo(f"report: {result.report}")
    if result.failed:
        raise StudyError(f"{len(result.failed)} combination(s) failed: {', '.join(result.failed)}; "
                         f"see {result.manifest} and run the study again after fixing them")


def _print_grid(spec, combos) -> None:
    import json

    manifest = spec.out / "study.json"
    stages = {}
    if manifest.exists():
        stages = {c["id"]: c["stages"] for c in json.loads(manifest.read_text()).get("combinations", [])}
    click.echo(f"{spec.name}: {len(combos)} combination(s), output {spec.out}")
    for c in combos:
        status = " ".join(f"{k}:{v['status']}" for k, v in stages.get(c.id, {}).items()) or "not started"
        click.echo(f"  {c.id:<50} {status}")
