"""`audit demo`: the whole audit on built-in synthetic data, nothing downloaded."""

from __future__ import annotations

import click


@click.command()
@click.option("--out", default="demo", show_default=True, help="Folder for data, models, runs and the report.")
@click.option("--full", is_flag=True, help="All 15 benchmark corruptions x 5 severities (default: 7 x 3).")
@click.option("--images", default=200, show_default=True, type=click.IntRange(min=20), help="Test images per dataset.")
@click.option("--workers", default=None, type=click.IntRange(min=0), help="Corruption worker processes.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--trainer", default="auto", show_default=True, type=click.Choice(["auto", "torch", "numpy"]),
              help="torch: fine-tune tiny timm models and export them (the train extra); numpy: torch-free models; "
                   "auto: torch when installed.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(out, full, images, workers, seed, trainer, quiet):
    """Write synthetic datasets (CIFAR-10 batches, ADE20K layout, COCO json with boxes and masks),
    fine-tune a tiny model per task, export each to ONNX (the classifier also to INT8), audit them
    under a deployment gate (--fail-under-rpc 0.8) and write a comparison report (FP32 vs INT8 with
    paired intervals). A few minutes on 2 CPU cores, most of it fine-tuning (README). Run again with
    the same --out, it reuses what is finished.

    Example:

        audit demo --out demo && open demo/report.html
    """
    from audit.cli.render import print_summary
    from audit.workflows.demo import run_demo

    result = run_demo(out, full=full, images=images, workers=workers, seed=seed, log=lambda m: click.echo(m, err=True),
                      progress=not quiet, trainer=trainer)
    for audit in result.audits:
        print_summary(audit.document, str(audit.out))
    if result.report:
        click.echo(f"\nreport: {result.report}")
