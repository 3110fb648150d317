"""`audit run`: the main job, a corruption audit of an ONNX model / TensorRT engine."""

from __future__ import annotations

import click

from audit.cli.options import (FORMAT_CHOICES, FORMAT_HELP, SPEC_FLAGS, GroupedCommand, corruption_plugin_option,
                               model_spec_options, parse_int_list)

TASK_CHOICES = ["coco", "detection", "ade20k", "segmentation", "cifar10", "classification"]
# `audit run --help` lists its options under these headings, in this order
OPTION_GROUPS = {
    "Data": ("task", "data", "data_format", "annotations", "images", "num_classes", "ignore_index", "cifar_c", "limit",
             "skip_bad", "max_image_pixels"),
    "Corruptions": ("corruptions", "corruption_plugins", "severities", "profile", "corrupt_at", "corrupt_device", "seed",
                    "reference_corruptions"),
    "Model spec (a flag wins over --model-config and the model's metadata)": (
        "model_config", *SPEC_FLAGS, "ignore_unmatched_labels"),
    "Execution": ("provider", "fp16", "trt_cache", "batch_size", "workers", "threads", "executor", "ray_address", "resume"),
    "Gates (exit code 2 when one fails)": ("fail_under_rpc", "fail_under_mpc"),
    "Output": ("out", "examples", "bootstrap", "no_report", "quiet", "help"),
}


@click.command(cls=GroupedCommand, option_groups=OPTION_GROUPS)
@click.argument("model", type=click.Path(dir_okay=False, path_type=str))
@click.option("--task", required=True, type=click.Choice(TASK_CHOICES), help="Dataset / task kind.")
@click.option("--data", required=True, type=click.Path(path_type=str),
              help="Dataset root in its standard layout (or a YOLO data.yaml).")
@click.option("--format", "data_format", type=click.Choice(FORMAT_CHOICES), default="auto", show_default=True, help=FORMAT_HELP)
@click.option("--annotations", default=None, help="COCO json (default DATA/annotations/instances_val2017.json).")
@click.option("--images", default=None, help="COCO image folder (default DATA/val2017).")
@click.option("--out", default=None, help="Output folder [default: runs/<model>-<task>].")
@click.option("--corruptions", default="benchmark", show_default=True, help="Subset, group or names (see 'audit list corruptions').")
@corruption_plugin_option
@click.option("--severities", default="1,2,3,4,5", show_default=True)
@click.option("--profile", type=click.Choice(["imagenet-c", "cifar-10-c"]), default=None,
              help="Corruption constants [default: cifar-10-c for cifar10, else imagenet-c].")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--workers", default=None, type=click.IntRange(min=0), help="Corruption worker processes [default: CPU count - 1; 0: in-process].")
@click.option("--threads", default=None, type=click.IntRange(min=1), help="ONNX Runtime intra-op threads.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--limit", default=None, type=click.IntRange(min=1), help="Audit a seeded subset of N images (adds bootstrap CIs).")
@click.option("--bootstrap", default=None, type=click.IntRange(min=0), help="Bootstrap samples for CIs [default: 1000 with --limit].")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable or missing images (counted in the results).")
@click.option("--resume", is_flag=True, help="Continue an interrupted audit in --out.")
@click.option("--provider", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda", "tensorrt"]))
@click.option("--fp16", is_flag=True, help="TensorRT provider: build FP16 engines.")
@click.option("--trt-cache", default=None, help="TensorRT provider: engine cache folder.")
@click.option("--corrupt-device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Corrupt with the torch kernels on this device (the gpu-corruptions extra; equal to the NumPy "
                   "kernels up to float rounding) [default: the NumPy kernels].")
@click.option("--corrupt-at", type=click.Choice(["original", "input"]), default=None,
              help="Corrupt the full original image, or the image at the network input geometry "
                   "[default: input for classification (ImageNet-C), original otherwise (COCO-C, CIFAR-10-C)].")
@model_spec_options
@click.option("--ignore-unmatched-labels", is_flag=True,
              help="Leave out model classes / dataset categories whose names have no counterpart (listed in the results).")
@click.option("--num-classes", default=None, type=click.IntRange(min=1), help="Segmentation folders: class count.")
@click.option("--ignore-index", default=255, show_default=True, type=int)
@click.option("--cifar-c", default=None, help="Folder of the published CIFAR-10-C .npy files.")
@click.option("--fail-under-rpc", default=None, type=float, help="Exit 2 when rPC is under this (fraction, e.g. 0.6).")
@click.option("--fail-under-mpc", default=None, type=float, help="Exit 2 when mPC is under this (fraction).")
@click.option("--examples", default=3, show_default=True, type=click.IntRange(min=0), help="Example images in the report.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Run cells here, or as Ray tasks (the 'ray' extra).")
@click.option("--ray-address", default=None, help="Ray cluster address [default: start a local Ray].")
@click.option("--reference-corruptions", is_flag=True, help="Corrupt with imagecorruptions' own (slow) code.")
@click.option("--max-image-pixels", default=None, type=click.IntRange(min=1),
              help="Refuse images with more pixels, before decoding (decompression bombs) [default: 89478485].")
@click.option("--no-report", is_flag=True, help="Do not write report.html.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(model, task, data, data_format, annotations, images, out, corruptions, corruption_plugins, severities, profile, batch_size, workers,
        threads, seed, limit, bootstrap, skip_bad, resume, provider, fp16, trt_cache, corrupt_device, corrupt_at, model_config,
        overrides,
        ignore_unmatched_labels, num_classes, ignore_index, cifar_c, fail_under_rpc, fail_under_mpc, examples, executor,
        ray_address, reference_corruptions, max_image_pixels, no_report, quiet):
    """Audit MODEL (.onnx, or a TensorRT .engine) on clean and corrupted data.

    Prints P (clean), mPC and rPC per group; writes OUT/results.json (schema: audit/results/schemas),
    OUT/cells.csv, OUT/report.html. Exit codes: 0 ok, 1 error, 2 a --fail-under gate failed.

    Example:

        audit run model.onnx --task coco --data data/coco --fail-under-rpc 0.5
    """
    from audit.api import AuditConfig, run_audit
    from audit.cli.render import print_summary
    from audit.errors import GateFailed

    config = AuditConfig(model=model, task=task, data=data, format=data_format, out=out, annotations=annotations, images=images,
                         corruptions=corruptions, severities=parse_int_list(severities, "--severities"), profile=profile,
                         batch_size=batch_size, workers=workers, threads=threads, seed=seed, limit=limit,
                         bootstrap=bootstrap, skip_bad=skip_bad, resume=resume, provider=provider, fp16=fp16,
                         trt_cache=trt_cache, model_config=model_config, overrides=overrides,
                         ignore_unmatched_labels=ignore_unmatched_labels, num_classes=num_classes,
                         ignore_index=ignore_index, cifar_c=cifar_c, fail_under_rpc=fail_under_rpc,
                         fail_under_mpc=fail_under_mpc, examples=examples, report=not no_report, progress=not quiet,
                         reference_corruptions=reference_corruptions, corrupt_at=corrupt_at, corrupt_device=corrupt_device,
                         executor=executor,
                         ray_address=ray_address, max_image_pixels=max_image_pixels,
                         corruption_plugins=list(corruption_plugins))
    result = run_audit(config)
    print_summary(result.document, str(result.out))
    if result.verdict["status"] == "fail":
        raise GateFailed("robustness gate failed: " + "; ".join(result.verdict["reasons"]))
