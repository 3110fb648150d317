"""The study file: the paper's grid as data, parsed and checked into `Study` and its `Combination`s.

A study is backbones x tasks x transfer modes x fine-tuning augmentations x learning rates (per
task), minus `exclude` rules. Every combination is fine-tuned, exported and audited the same way;
the options shared by all (epochs, export precision, corruption set...) sit under `finetune`,
`export` and `audit`, and a task may override them. Paths are relative to the study file.

Example (YAML):

    name: tiny
    out: runs/tiny
    backbones:
      - {name: Regular, arch: resnet50, weights: imagenet, imagenet_c: {clean: 0.761, corrupted: 0.393}}
    tasks:
      cifar10: {data: data/cifar10, lrs: [0.01]}
      coco: {data: data/coco, lrs: [0.01, 0.02], finetune: {head: maskrcnn}}
    modes: [fixed, full]
    augment: [none, prime]
    exclude:
      - {task: cifar10, mode: fixed}
      - {task: coco, mode: fixed, lr: [0.02]}   # a list matches any of its values

An `attack:` block (top level or per task; keys ATTACK_KEYS) adds an adversarial audit (`audit
attack`) of every export after its corruption audit. A backbone may carry `pretrain:` instead of
`weights:` (finetune/pretrain.py: standard or PGD-adversarial pre-training on synthetic shapes, the
CPU stand-in for robust ImageNet checkpoints); its weights are made once under OUT/pretrain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

from audit.errors import ConfigError

TASKS = ("cifar10", "coco", "ade20k")
MODES = ("fixed", "full")
AUGMENTS = ("none", "prime", "augmix")
TOP_KEYS = {"name", "out", "backbones", "tasks", "modes", "augment", "exclude", "finetune", "export", "audit", "attack", "seed"}
TASK_KEYS = {"data", "synthetic", "lrs", "modes", "augment", "finetune", "audit", "attack"}
FINETUNE_KEYS = {"epochs", "batch_size", "weight_decay", "input_size", "head", "max_steps", "device", "workers",
                 "val_split", "extra", "threads"}
EXPORT_KEYS = {"precision", "opset", "dynamic", "calibration", "check"}
AUDIT_KEYS = {"corruptions", "severities", "limit", "batch_size", "workers", "provider", "threads", "profile",
              "examples", "bootstrap", "executor"}
SYNTHETIC_KEYS = {"n_train", "n_val", "size", "seed"}
# an adversarial audit after the corruption audit (audit.attack_audit.AttackConfig's fields)
ATTACK_KEYS = {"attacks", "norm", "eps", "limit", "steps", "queries", "restarts", "gradients", "batch_size", "examples"}


@dataclass(frozen=True)
class Backbone:
    """One pretrained backbone: a label for the report, the architecture, its weights.

    `imagenet_c` holds the backbone's own ImageNet / ImageNet-C top-1 (`clean`, `corrupted`), or its
    `drop` directly, when known: the report draws it beside the downstream drops (paper Figure 1).
    """

    name: str
    arch: str
    weights: str = "imagenet"
    imagenet_c: dict[str, float] | None = None
    pretrain: dict[str, Any] | None = None  # finetune.pretrain settings: weights made by the study itself

    @property
    def imagenet_c_drop(self) -> float | None:
        if not self.imagenet_c:
            return None
        if "drop" in self.imagenet_c:
            return float(self.imagenet_c["drop"])
        return 1.0 - float(self.imagenet_c["corrupted"]) / float(self.imagenet_c["clean"])


@dataclass(frozen=True)
class TaskPlan:
    """One downstream task: its data (a folder, or synthetic data to write), lrs and option overrides."""

    name: str
    data: Path
    synthetic: dict[str, Any] | None
    lrs: tuple[float, ...]
    modes: tuple[str, ...]
    augments: tuple[str, ...]
    finetune: dict[str, Any]
    audit: dict[str, Any]
    attack: dict[str, Any] = field(default_factory=dict)  # empty: no adversarial audit


@dataclass(frozen=True)
class Combination:
    """One cell of the grid: what gets fine-tuned, exported and audited, under a stable id."""

    backbone: Backbone
    task: TaskPlan
    mode: str
    augment: str
    lr: float

    @property
    def id(self) -> str:
        return f"{self.task.name}-{slug(self.backbone.name)}-{self.mode}-{self.augment}-lr{self.lr:g}"

    def describe(self) -> dict[str, Any]:
        """The manifest's description of this combination (what the report groups by)."""
        b = self.backbone
        return {"id": self.id, "task": self.task.name, "backbone": {"name": b.name, "arch": b.arch, "weights": b.weights,
                "imagenet_c": b.imagenet_c, "imagenet_c_drop": b.imagenet_c_drop, "pretrain": b.pretrain},
                "mode": self.mode, "augment": self.augment, "lr": self.lr}


@dataclass
class Study:
    """A parsed study file."""

    name: str
    path: Path
    out: Path
    backbones: list[Backbone]
    tasks: list[TaskPlan]
    exclude: list[dict[str, Any]]
    export: dict[str, Any]
    seed: int = 0
    raw: dict[str, Any] = field(default_factory=dict)

    def combinations(self) -> list[Combination]:
        """Every combination, in file order (task, backbone, mode, augment, lr), exclusions removed."""
        combos = [Combination(b, t, m, a, lr) for t in self.tasks for b in self.backbones
                  for m, a, lr in product(t.modes, t.augments, t.lrs)]
        return [c for c in combos if not any(_matches(rule, c) for rule in self.exclude)]


def slug(name: str) -> str:
    """A file-name-safe form of a label (`DeepAug+AugMix` -> `deepaug+augmix`)."""
    return re.sub(r"[^a-z0-9+._]+", "_", name.lower()).strip("_") or "model"


def _matches(rule: dict[str, Any], c: Combination) -> bool:
    """A rule matches when every key matches; a list value matches any of its items."""
    values = {"task": c.task.name, "backbone": c.backbone.name, "mode": c.mode, "augment": c.augment, "lr": c.lr}
    return all(any((float(v) == values[k]) if k == "lr" else (str(v) == values[k]) for k in [key]
                   for v in (wanted if isinstance(wanted, list) else [wanted]))
               for key, wanted in rule.items())


def load_study(path: str | Path, out: str | Path | None = None) -> Study:
    """Read and check a study file (YAML); `out` overrides the file's output folder.

    Example:
        >>> study = load_study("studies/tiny-cpu.yaml")  # doctest: +SKIP
        >>> [c.id for c in study.combinations()][:1]  # doctest: +SKIP
        ['cifar10-regular-full-none-lr0.05']
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"study file {path} does not exist; see studies/ for examples")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; a study file is YAML") from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:  # ValueError: a YAML timestamp out of range
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{path} is not valid YAML ({first}); fix the file") from None
    return parse_study(raw, path, out)


def parse_study(raw: Any, path: Path, out: str | Path | None = None) -> Study:
    """Check the structure of a loaded study file and build the `Study`."""
    where = str(path)
    _mapping(raw, where, TOP_KEYS)
    base = path.resolve().parent
    name = str(raw.get("name") or path.stem)
    out_dir = (Path(out) if out is not None else _resolve(base, raw.get("out") or f"runs/study-{slug(name)}")).resolve()
    backbones = [_backbone(b, f"{where}: backbones[{i}]", base, out_dir) for i, b in enumerate(_list(raw, "backbones", where))]
    if len({b.name for b in backbones}) != len(backbones):
        raise ConfigError(f"{where}: backbone names must be unique (they label the report's rows)")
    top_modes = _choices(raw.get("modes", ["full"]), MODES, f"{where}: modes")
    top_aug = _choices(raw.get("augment", ["none"]), AUGMENTS, f"{where}: augment")
    finetune = _options(raw.get("finetune"), FINETUNE_KEYS, f"{where}: finetune")
    audit = _options(raw.get("audit"), AUDIT_KEYS, f"{where}: audit")
    attack = _options(raw.get("attack"), ATTACK_KEYS, f"{where}: attack")
    tasks_raw = raw.get("tasks")
    if not isinstance(tasks_raw, dict) or not tasks_raw:
        raise ConfigError(f"{where}: 'tasks' must map task names ({', '.join(TASKS)}) to their settings")
    tasks = [_task(n, t, f"{where}: tasks.{n}", base, out_dir, top_modes, top_aug, finetune, audit, attack)
             for n, t in tasks_raw.items()]
    exclude = raw.get("exclude") or []
    if not isinstance(exclude, list) or not all(isinstance(r, dict) and r and set(r) <= {"task", "backbone", "mode", "augment", "lr"}
                                                for r in exclude):
        raise ConfigError(f"{where}: 'exclude' must be a list of rules with keys among task, backbone, mode, augment, lr")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for r in exclude if "lr" in r
               for v in (r["lr"] if isinstance(r["lr"], list) else [r["lr"]])):
        raise ConfigError(f"{where}: an exclude rule's 'lr' must be a number or a list of numbers")
    study = Study(name, path, out_dir, backbones, tasks, exclude, _options(raw.get("export"), EXPORT_KEYS, f"{where}: export"),
                  _seed(raw.get("seed", 0), where), raw)
    if not study.combinations():
        raise ConfigError(f"{where}: the exclude rules remove every combination; nothing to run")
    return study


def _seed(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
        raise ConfigError(f"{where}: 'seed' must be an integer from 0 to 2^32-1, got {str(value)[:40]!r}")
    return value


def _mapping(value: Any, where: str, allowed: set[str]) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(value).__name__}")
    unknown = sorted(str(k) for k in value if k not in allowed)  # YAML keys may be numbers, dates, None
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")


def _list(raw: dict, key: str, where: str) -> list:
    value = raw.get(key)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: '{key}' must be a non-empty list")
    return value


def _choices(value: Any, valid: tuple[str, ...], where: str) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    bad = [v for v in values if v not in valid]
    if bad or not values:
        raise ConfigError(f"{where}: {bad or 'empty'} not valid; choose among {', '.join(valid)}")
    return tuple(values)


def _options(value: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if value is None:
        return {}
    _mapping(value, where, allowed)
    return dict(value)


def _resolve(base: Path, value: str) -> Path:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ConfigError(f"a path in the study file must be text, got {str(value)[:80]!r}")
    try:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base / p).resolve()
    except (RuntimeError, ValueError, OSError) as exc:  # ~user that does not exist, a loop of links
        raise ConfigError(f"the study file's path {value[:80]!r} cannot be resolved ({exc})") from None


def _backbone(raw: Any, where: str, base: Path, out: Path) -> Backbone:
    _mapping(raw, where, {"name", "arch", "weights", "imagenet_c", "pretrain"})
    if not raw.get("name") or not raw.get("arch"):
        raise ConfigError(f"{where}: a backbone needs 'name' (its label) and 'arch' (a timm / torchvision name)")
    weights = str(raw.get("weights", "imagenet"))
    pretrain = None
    if raw.get("pretrain") is not None:  # weights the study makes itself (finetune/pretrain.py), under OUT/pretrain
        if "weights" in raw:
            raise ConfigError(f"{where}: give 'weights' or 'pretrain', not both")
        if not isinstance(raw["pretrain"], dict):
            raise ConfigError(f"{where}.pretrain must be a mapping (keys of finetune/pretrain.py DEFAULTS, checked before any work)")
        pretrain = dict(raw["pretrain"])
        weights = str(out / "pretrain" / f"{slug(str(raw['name']))}.pt")
    elif weights not in ("imagenet", "none"):
        weights = str(_resolve(base, weights))
    inc = raw.get("imagenet_c")
    if inc is not None:
        _mapping(inc, f"{where}.imagenet_c", {"clean", "corrupted", "drop"})
        if "drop" not in inc and not {"clean", "corrupted"} <= set(inc):
            raise ConfigError(f"{where}.imagenet_c: give 'clean' and 'corrupted' top-1 accuracy, or 'drop'")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in inc.values()) \
                or inc.get("clean", 1) == 0:
            raise ConfigError(f"{where}.imagenet_c: values must be fractions from 0 to 1 (e.g. 0.761), clean above 0")
        inc = {k: float(v) for k, v in inc.items()}
    return Backbone(str(raw["name"]), str(raw["arch"]), weights, inc, pretrain)


def _task(name: str, raw: Any, where: str, base: Path, out: Path, modes, augments, finetune, audit, attack) -> TaskPlan:
    if name not in TASKS:
        raise ConfigError(f"{where}: unknown task '{name}'; valid: {', '.join(TASKS)}")
    raw = raw or {}
    _mapping(raw, where, TASK_KEYS)
    if ("data" in raw) == ("synthetic" in raw):
        raise ConfigError(f"{where}: give 'data' (a dataset folder) or 'synthetic' (sizes of data to draw), one of them")
    synthetic = None
    if "synthetic" in raw:
        synthetic = _options(raw["synthetic"] or {}, SYNTHETIC_KEYS, f"{where}.synthetic")
        data = out / "data" / name
    else:
        data = _resolve(base, raw["data"])
    lrs = raw.get("lrs")
    if lrs is None:
        lrs = [None]
    elif not isinstance(lrs, list) or not lrs or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 10 for v in lrs):
        raise ConfigError(f"{where}.lrs must be a list of positive learning rates, got {lrs!r}")
    return TaskPlan(name, data, synthetic, tuple(float(v) if v is not None else _default_lr(name) for v in lrs),
                    _choices(raw["modes"], MODES, f"{where}.modes") if "modes" in raw else modes,
                    _choices(raw["augment"], AUGMENTS, f"{where}.augment") if "augment" in raw else augments,
                    {**finetune, **_options(raw.get("finetune"), FINETUNE_KEYS, f"{where}.finetune")},
                    {**audit, **_options(raw.get("audit"), AUDIT_KEYS, f"{where}.audit")},
                    {**attack, **_options(raw.get("attack"), ATTACK_KEYS, f"{where}.attack")})


def _default_lr(task: str) -> float:
    """The default learning rate of the task in Yamada & Otani's fine-tuning setups ("Transferability of ImageNet Robustness to Downstream Tasks")."""
    return {"cifar10": 0.01, "coco": 0.02, "ade20k": 0.01}[task]
