"""`audit inspect`: what robustaudit reads from a model (and how it maps labels to a dataset)."""

from __future__ import annotations

import json

import click

from audit.cli.options import model_spec_options
from audit.cli.run import TASK_CHOICES


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False, path_type=str))
@click.option("--task", type=click.Choice(TASK_CHOICES), default=None, help="Task [default: from the model's metadata].")
@click.option("--data", default=None, help="Dataset root: also resolve the label mapping against it.")
@click.option("--annotations", default=None, help="COCO json (default DATA/annotations/instances_val2017.json).")
@click.option("--images", default=None, help="COCO image folder (default DATA/val2017).")
@click.option("--num-classes", default=None, type=click.IntRange(min=1), help="Segmentation folders: class count.")
@model_spec_options
@click.option("--ignore-unmatched-labels", is_flag=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(model, task, data, annotations, images, num_classes, model_config, overrides, ignore_unmatched_labels, as_json):
    """Show what `audit run` would read from MODEL: inputs, outputs, metadata, the resolved spec with
    where each value came from (flag, model-config, metadata, inferred, convention, default, assumed)
    and, with --data, the label mapping. Takes the same model flags as `audit run`. Runs the model on
    one image (a few for detectors whose labels decide the mapping).

    Example:

        audit inspect yolo11n.onnx --task coco --data data/coco
    """
    from audit.analysis.inspection import inspect_model, render_text

    report = inspect_model(model, task=task, data=data, model_config=model_config, overrides=overrides,
                           ignore_unmatched_labels=ignore_unmatched_labels, annotations=annotations, images=images,
                           num_classes=num_classes)
    click.echo(json.dumps(report, indent=2, default=str) if as_json else render_text(report))
