"""`audit corrupt`: pre-render corrupted copies of a folder of images or a COCO dataset."""

from __future__ import annotations

import click

from audit.cli.options import FORMAT_CHOICES, FORMAT_HELP, corruption_plugin_option, parse_int_list


@click.command()
@click.option("--images", "images", default=None, type=click.Path(file_okay=False, path_type=str),
              help="Folder of images (searched recursively), or the image folder of a COCO dataset.")
@click.option("--data", default=None, type=click.Path(path_type=str),
              help="Instead of --images: a dataset root audit run reads (YOLO data.yaml, VOCdevkit, Cityscapes, COCO, ADE20K).")
@click.option("--task", default=None, type=click.Choice(["coco", "detection", "ade20k", "segmentation", "classification"]),
              help="With --data: the task, when the layout alone does not say it.")
@click.option("--format", "data_format", type=click.Choice(FORMAT_CHOICES), default="auto", show_default=True, help=FORMAT_HELP)
@click.option("--out", required=True, type=click.Path(path_type=str),
              help="Output folder: OUT/<corruption>/<severity>/<relative path>.")
@click.option("--coco", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="COCO annotation json: render only its images; the json is copied to OUT/annotations/.")
@click.option("--corruptions", default="benchmark", show_default=True,
              help="Subset (benchmark, holdout, all), group (noise, blur, weather, digital) or names, comma-separated.")
@corruption_plugin_option
@click.option("--severities", default="1,2,3,4,5", show_default=True, help="Comma-separated severities 1-5.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the corruptions' random draws.")
@click.option("--profile", default="imagenet-c", show_default=True, type=click.Choice(["imagenet-c", "cifar-10-c"]))
@click.option("--workers", default=None, type=click.IntRange(min=1), help="Worker processes [default: CPU count].")
@click.option("--reference", is_flag=True, help="Use imagecorruptions' own (slow) code instead of our kernels.")
@click.option("--max-image-pixels", default=None, type=click.IntRange(min=1),
              help="Refuse images with more pixels, before decoding (decompression bombs) [default: 89478485].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def corrupt(images, data, task, data_format, out, coco, corruptions, corruption_plugins, severities, seed, profile, workers, reference, max_image_pixels, quiet):
    """Write corrupted copies of every image, for every corruption and severity.

    Files keep their format (PNG stays lossless) and are written atomically; running the same
    command again skips what exists, so an interrupted run resumes. The image id that seeds the
    random draws is the path relative to --images (the COCO file_name), so the files hold exactly
    the pixels that `audit run --seed` makes on the fly. COCO layout (mmdetection-style COCO-C):
    OUT/<corruption>/<severity>/<file_name> with the annotations in OUT/annotations/. With --data, any
    dataset `audit run` reads: ids as `audit run` gives them, detection ground truth as
    OUT/annotations/instances.json (COCO).

    Example:

        audit corrupt --images data/coco/val2017 --coco data/coco/annotations/instances_val2017.json --out coco-c

        audit corrupt --data data/VOCdevkit --out voc-c --corruptions fog --severities 3
    """
    from audit.workflows.prerender import prerender

    result = prerender(images, out, corruptions=corruptions, severities=parse_int_list(severities, "--severities"),
                       seed=seed, profile=profile, workers=workers, coco=coco, progress=not quiet,
                       reference=reference, max_image_pixels=max_image_pixels, data=data, task=task,
                       format=data_format, plugins=corruption_plugins)
    click.echo(f"{result.images} images x {len(result.cells)} cells: {result.written} files written, "
               f"{result.skipped} already there, in {result.out}")
