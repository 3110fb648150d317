"""Small parsers shared by the commands' options."""

from __future__ import annotations

import click

from audit.errors import ConfigError

# audit.datasets.recognize.FORMATS, listed here so that the CLI starts without importing the readers
FORMAT_CHOICES = ["auto", "coco", "yolo", "voc", "ade20k", "cityscapes", "segfolder", "cifar10", "imagefolder"]
FORMAT_HELP = ("Dataset layout [default: auto, recognised from --data: a YOLO data.yaml or images/+labels/, a VOCdevkit, "
               "Cityscapes gtFine/+leftImg8bit/, COCO, ADE20K, CIFAR-10 batches, image folders].")


def parse_int_list(text: str, option: str) -> list[int]:
    """'1,2, 3' -> [1, 2, 3]; a one-line ConfigError naming the option otherwise.

    Example:
        >>> parse_int_list("1,3", "--severities")
        [1, 3]
    """
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated integers, got '{text}'") from None
    if not values:
        raise ConfigError(f"{option} is empty")
    return values


def corruption_plugin_option(func):
    """`--corruption-plugin PATH.py` (repeatable), shared by run, corrupt and list corruptions."""
    return click.option("--corruption-plugin", "corruption_plugins", multiple=True, type=click.Path(dir_okay=False, path_type=str),
                        help="A Python file that registers corruptions with @audit.corruptions.corruption (repeatable); "
                             "it runs as code, like a plug-in package: give only files you trust.")(func)
