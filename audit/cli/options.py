"""Small parsers shared by the commands' options."""

from __future__ import annotations

import functools
from pathlib import Path

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


# the model-spec flags `audit run` and `audit inspect` share: each wins over --model-config, the model's
# metadata, what the graph shows, the output convention's contract and the benchmark default
SPEC_FLAGS = ("input_size", "resize", "crop_pct", "interpolation", "mean", "std", "channel_order", "output_convention",
              "label_space", "class_names")
_SPEC_OPTIONS = [
    click.option("--model-config", default=None,
                 help="YAML/JSON with any of the model's spec keys (foreign models), or a timm pretrained_cfg dumped to JSON."),
    click.option("--input-size", nargs=2, type=int, default=None, help="Network input H W."),
    click.option("--resize", type=click.Choice(["fixed", "keep_ratio", "letterbox", "center_crop", "none"]), default=None,
                 help="center_crop: timm / torchvision classification eval (shorter side to input / crop-pct, centre crop)."),
    click.option("--crop-pct", default=None, type=click.FloatRange(0, 1, min_open=True),
                 help="center_crop: kept fraction [default: 0.875]."),
    click.option("--interpolation", type=click.Choice(["bilinear", "bicubic", "nearest"]), default=None,
                 help="Resize filter [default: bilinear]."),
    click.option("--mean", nargs=3, type=float, default=None, help="Per-channel mean on [0, 1] pixels."),
    click.option("--std", nargs=3, type=float, default=None, help="Per-channel std on [0, 1] pixels."),
    click.option("--channel-order", type=click.Choice(["RGB", "BGR"]), default=None),
    click.option("--output-convention", default=None, help="How to read the outputs (see 'audit list conventions')."),
    click.option("--label-space", type=click.Choice(["index", "index+background", "category-id", "names"]), default=None,
                 help="How the model's labels map to the dataset's categories [default: the model's metadata, else "
                      "inferred from evidence, else an error]."),
    click.option("--class-names", default=None,
                 help="The model's class names, one per label index: comma-separated, or @FILE with one name per line."),
]


def model_spec_options(func):
    """The model-spec flags (SPEC_FLAGS and --model-config), handed to `func` as `model_config` and
    `overrides` (a dict of SPEC_FLAGS, None where not given).

    Example:
        >>> @click.command()
        ... @model_spec_options
        ... def cmd(model_config, overrides): ...
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        kwargs["overrides"] = spec_overrides(**{name: kwargs.pop(name) for name in SPEC_FLAGS})
        return func(*args, **kwargs)

    for option in reversed(_SPEC_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def spec_overrides(input_size=None, resize=None, crop_pct=None, interpolation=None, mean=None, std=None,
                   channel_order=None, output_convention=None, label_space=None, class_names=None) -> dict:
    """The flags as ModelSpec overrides (None: not given; click gives an empty tuple for an absent nargs option)."""
    return {"input_size": input_size or None, "resize": resize, "crop_pct": crop_pct, "interpolation": interpolation,
            "mean": mean or None, "std": std or None, "channel_order": channel_order,
            "output_convention": output_convention, "label_space": label_space,
            "class_names": parse_class_names(class_names) if class_names is not None else None}


def parse_class_names(text: str) -> list[str]:
    """--class-names 'a,b' -> ['a', 'b']; '@names.txt' reads one name per line (names holding commas).

    Example:
        >>> parse_class_names("cat, dog")
        ['cat', 'dog']
    """
    if text.startswith("@"):
        try:
            lines = Path(text[1:]).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--class-names cannot read {text[1:]}: {getattr(exc, 'strerror', None) or exc}") from None
        names = [line.strip() for line in lines if line.strip()]
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--class-names holds no names, got '{text}'; give 'a,b,c' or @FILE with one name per line")
    return names


class GroupedCommand(click.Command):
    """A command whose `--help` lists its options under headings (data, corruptions, model spec, ...), in the
    order given (`help` names the help option); an option no heading names is listed under "Other options".

    Example:
        >>> @click.command(cls=GroupedCommand, option_groups={"Data": ("data",)})
        ... @click.option("--data")
        ... def cmd(data): ...
    """

    def __init__(self, *args, option_groups: dict[str, tuple[str, ...]], **kwargs):
        super().__init__(*args, **kwargs)
        self.option_groups = option_groups

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        help_option = self.get_help_option(ctx)
        records = {("help" if p is help_option else p.name): p.get_help_record(ctx)
                   for p in self.get_params(ctx) if isinstance(p, click.Option)}
        records = {name: record for name, record in records.items() if record is not None}
        placed = {name for names in self.option_groups.values() for name in names}
        sections = [(title, names) for title, names in self.option_groups.items()]
        sections.append(("Other options", tuple(n for n in records if n not in placed)))
        for title, names in sections:
            rows = [records[name] for name in names if name in records]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
