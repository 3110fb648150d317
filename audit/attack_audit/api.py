"""Everything `audit attack` does, callable from Python: `run_attack_audit(AttackConfig(...)) -> AttackAuditResult`.

One cell per (attack, norm, eps), saved atomically under OUT/attack-cells (per-image correctness on
every engine, or for segmentation mIoU's per-image intersection / union counts, and queries in the
.npz) with a manifest (OUT/attack.json) that `--resume` checks, so a killed run continues where it
stopped and gives the same numbers bit for bit.

Example:
    >>> from audit.attack_audit import AttackConfig, run_attack_audit
    >>> result = run_attack_audit(AttackConfig(model="m.onnx", task="cifar10", data="data/cifar"))  # doctest: +SKIP
    >>> result.adversarial["verdict_attack"]  # doctest: +SKIP
    'autoattack'
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audit.attack_audit import document, sources
from audit.attack_audit.inputs import Judge, load_inputs, model_label_maps, model_labels
from audit.api import report_renderer
from audit.results.cellstore import CellStore
from audit.datasets import open_dataset, task_type
from audit.engines.base import open_engine
from audit.errors import ConfigError
from audit.io.hashing import model_sha256
from audit.io.safety import prepare_out
from audit.tasks import TaskAdapter, check_model, resolve_spec
from audit.tasks.labels import DatasetLabels
from audit.io.progress import progress_bar

DEFAULT_EPS = {"linf": [0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255], "l2": [0.0, 0.25, 0.5, 1.0]}
DEFAULT_LIMIT = 500  # attacks cost hundreds of forward/backward passes per image


@dataclass
class AttackConfig:
    """The settings of one adversarial audit (the `audit attack` flags)."""

    model: str
    task: str
    data: str
    out: str | None = None
    format: str | None = None
    # the first is the verdict's; default autoattack (segmentation: pgd), square with --gradients none
    attacks: list[str] | None = None
    norm: str = "linf"
    eps: list[float] | None = None  # [0, 1] pixel units; default DEFAULT_EPS[norm]
    gradients: str | None = None  # see audit.attack_audit.sources; default engine-onnx for ONNX, none otherwise
    transfer_to: list[str] = field(default_factory=list)  # other exports judged on the same examples
    steps: int | None = None
    queries: int | None = None
    restarts: int = 1
    limit: int | None = DEFAULT_LIMIT
    seed: int = 0
    batch_size: int = 32
    resume: bool = False
    provider: str = "cpu"
    threads: int | None = None
    model_config: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    ignore_unmatched_labels: bool = False
    num_classes: int | None = None  # generic segmentation folders (--task segmentation): the class count
    ignore_index: int = 255  # segmentation: the label map value left out of the metric and the attack loss
    skip_bad: bool = False
    max_image_pixels: int | None = None
    fail_under_robust_acc: float | None = None  # segmentation: gates on the robust mIoU
    examples: int = 3
    report: bool = True
    progress: bool = True


@dataclass
class AttackAuditResult:
    """Where the files are and the document (its `adversarial` section holds the figures)."""

    out: Path
    document: dict[str, Any]

    @property
    def adversarial(self) -> dict[str, Any]:
        return self.document["adversarial"]

    @property
    def verdict(self) -> dict[str, Any]:
        return self.document["verdict"]


class AttackCellStore(CellStore):
    """Finished (attack, norm, eps) cells under OUT/attack-cells, manifest OUT/attack.json."""

    def __init__(self, out: str | Path):
        super().__init__(out, folder="attack-cells", manifest="attack.json")

    @staticmethod
    def key(cell: tuple[str, str, float]) -> str:
        return f"{cell[0]}-{cell[1]}-eps{cell[2]:.8g}"


def run_attack_audit(config: AttackConfig) -> AttackAuditResult:
    """Attack `config.model` on a seeded subset of `config.data`; write OUT/results.json with an
    `adversarial` section. A --fail-under-robust-acc gate that is not met shows in `result.verdict`."""
    started = time.time()
    norm, eps, gradients, attacks = check_config(config)
    out = prepare_out(config.out or f"runs/{Path(config.model).stem}-{config.task}-attack")
    ttype = task_type(config.task)
    dataset = open_dataset(config.task, config.data, skip_bad=config.skip_bad, max_image_pixels=config.max_image_pixels,
                           format=config.format, num_classes=config.num_classes,
                           ignore_index=config.ignore_index).subset(config.limit, config.seed)
    judges = [_judge(config, config.model, ttype, dataset, "engine")]
    judges += [_judge(config, path, ttype, dataset, "transfer") for path in config.transfer_to]
    _unique_names(judges, [config.model, *config.transfer_to])
    main = judges[0]
    spec = main.adapter.spec
    x01, metas = load_inputs(dataset, spec)
    if ttype == "segmentation":
        for judge in judges:
            judge.metas = metas
        labels = model_label_maps(main.adapter, dataset, metas)
    else:
        labels = model_labels(main.adapter, dataset)

    store = AttackCellStore(out)
    manifest = {"model_sha256": model_sha256(config.model), "transfer_sha256": [model_sha256(p) for p in config.transfer_to],
                "task": config.task, "data": str(Path(config.data).resolve()), "num_images": len(dataset),
                "images": [dataset.image_id(i) for i in range(min(len(dataset), 50))], "limit": config.limit,
                "seed": config.seed, "attacks": attacks, "norm": norm, "eps": eps, "gradients": gradients,
                "steps": config.steps, "queries": config.queries, "restarts": config.restarts, "spec": spec.to_metadata(),
                **({"num_classes": dataset.num_classes, "ignore_index": config.ignore_index} if ttype == "segmentation" else {})}
    store.check_manifest(manifest, config.resume)

    cells = [(a, norm, e) for a in attacks for e in eps]
    todo = [c for c in cells if not store.has(c)]
    n_attacked = sum(1 for c in todo if c[2] > 0)
    # made before any cell runs, so a model the source cannot attack (argmax inside) stops at once
    target = sources.make_target(gradients, config.model, main.adapter.engine, spec) if n_attacked else None
    clean_metrics = [j.evaluate(dataset, x01, config.batch_size) for j in judges]
    clean = [document.engine_state(m.state(), ttype) for m in clean_metrics]
    if ttype == "segmentation" and clean_metrics[0].compute()["mIoU"] is None:
        raise ConfigError(f"no image of the {len(dataset)} attacked has a labelled pixel the model can predict; "
                          "check --data, --limit and the label mapping")
    bar = progress_bar(n_attacked * len(dataset), "attacking", config.progress)
    try:
        for cell in todo:
            _run_cell(cell, target, x01, labels, dataset, judges, store, config, bar, clean[0])
    finally:
        bar.close()

    loaded = {c: store.load(c) for c in cells}
    section = document.section(loaded, cells, attacks=attacks, norm=norm, eps=eps, judges=judges, clean=clean,
                               gradients=gradients, config=config, x01=x01, out=out, dataset=dataset)
    doc = document.results_document(config, dataset, main, clean_metrics[0], section, ttype, started)
    return AttackAuditResult(out, document.write(doc, out, report_renderer() if config.report else None))


def check_config(config: AttackConfig) -> tuple[str, list[float], str, list[str]]:
    """Validate the flags before anything is opened; one-line errors."""
    ttype = task_type(config.task)
    if ttype not in ("classification", "segmentation"):
        raise ConfigError(f"audit attack: classification and segmentation only (got --task {config.task}, a {ttype} task); "
                          "use --task cifar10, classification, ade20k or segmentation")
    if config.norm not in DEFAULT_EPS:
        raise ConfigError(f"unknown --norm '{config.norm}'; valid: {', '.join(DEFAULT_EPS)}")
    eps = sorted(set(float(e) for e in (config.eps if config.eps is not None else DEFAULT_EPS[config.norm])))
    if not eps or any(not (0.0 <= e) or (config.norm == "linf" and e > 1.0) for e in eps):
        raise ConfigError(f"--eps must be budgets in [0, 1] pixel units for linf (>= 0 for l2), got {config.eps}")
    gradients = sources.parse_gradients(config.gradients, config.model)
    default = "square" if gradients == "none" else "autoattack" if ttype == "classification" else "pgd"
    attacks = list(dict.fromkeys(config.attacks or [default]))
    sources.check_attacks(attacks, gradients, ttype)
    if config.num_classes is not None and ttype != "segmentation":
        raise ConfigError(f"--num-classes does nothing with --task {config.task} (it is for segmentation folders); drop it")
    if config.fail_under_robust_acc is not None and not 0.0 <= config.fail_under_robust_acc <= 1.0:
        raise ConfigError(f"--fail-under-robust-acc is a fraction in [0, 1], got {config.fail_under_robust_acc}")
    for path in config.transfer_to:
        if not Path(path).is_file():
            raise ConfigError(f"--transfer-to {path}: no such model file")
    return config.norm, eps, gradients, attacks


def _judge(config: AttackConfig, path: str, ttype: str, dataset, role: str) -> Judge:
    """Open an engine, resolve its spec and label mapping (as `audit run` does), and wrap it."""
    engine = open_engine(path, provider=config.provider, threads=config.threads)
    spec = resolve_spec(engine, ttype, config.model_config, config.overrides, benchmark=config.task)
    adapter = TaskAdapter(spec, engine)
    mapping = check_model(adapter, dataset, config.ignore_unmatched_labels)
    return Judge(Path(path).name, adapter, role, mapping.describe(spec.class_names, DatasetLabels.of(dataset)))


def _unique_names(judges: list[Judge], paths: list[str]) -> None:
    """Engines are keyed by file name in the document; same-named exports in other folders get the folder too."""
    seen: set[str] = set()
    for i, (judge, path) in enumerate(zip(judges, paths)):
        if judge.name in seen:
            judge.name = f"{Path(path).parent.name}/{judge.name}"
        if judge.name in seen:
            judge.name = f"{judge.name} ({i + 1})"
        seen.add(judge.name)


def _run_cell(cell, target, x01: np.ndarray, labels: np.ndarray, dataset, judges: list[Judge], store: CellStore,
              config: AttackConfig, bar, clean_main: dict[str, np.ndarray]) -> None:
    """Craft the cell's examples (none at eps 0), judge them on every engine, save the cell."""
    attack, norm, eps = cell
    t0 = time.perf_counter()
    x_adv, queries = x01, np.zeros(len(x01), np.int64)
    dense = labels.ndim == 3
    source_correct = np.full(len(x01), np.nan) if dense else np.zeros(len(x01), bool)
    # an image whose class the model lacks (segmentation: without a valid pixel) is never correct anyway
    attacked = np.flatnonzero((labels.reshape(len(labels), -1) >= 0).any(axis=1))
    if eps > 0 and len(attacked):
        from audit.attacks import Budget, run_attack

        outcome = run_attack(attack, target, x01[attacked], labels[attacked], Budget(norm=norm, eps=eps), seed=config.seed,
                             steps=config.steps, restarts=config.restarts, queries=config.queries,
                             batch_size=config.batch_size, progress=_ticker(bar))
        x_adv = x01.copy()
        x_adv[attacked] = np.clip(np.asarray(outcome.x_adv, np.float32), 0.0, 1.0)
        queries[attacked] = np.asarray(outcome.queries, np.int64)
        source_correct[attacked] = np.asarray(outcome.correct, source_correct.dtype)
        source = outcome.source
    else:
        source = getattr(target, "source", None)
    state: dict[str, np.ndarray] = {}
    for i, judge in enumerate(judges):
        state.update({f"{key}_{i}": value for key, value in judge.state(dataset, x_adv, config.batch_size).items()})
    picks = document.pick_examples(document.engine_state(state, dataset.task_type, 0), clean_main, x01, x_adv, config.examples)
    state.update({"queries": queries, "source_correct": source_correct, "example_positions": picks,
                  "example_x": x_adv[picks].astype(np.float32)})
    record = {"attack": attack, "norm": norm, "eps": eps, "num_images": len(x01), "source": source,
              "seconds": round(time.perf_counter() - t0, 3),
              **{key: {j.name: document.figures(document.engine_state(state, dataset.task_type, i)).get(key)
                       for i, j in enumerate(judges)} for key in (("accuracy", "miou") if dense else ("accuracy",))}}
    store.save(cell, record, state)


def _ticker(bar):
    """A progress callback that accepts the attack's count of finished images (or nothing: one batch)."""
    def tick(n=None, *_args, **_kwargs):
        bar.update(int(n) if isinstance(n, (int, np.integer)) else 0)
    return tick



__all__ = ["AttackConfig", "AttackAuditResult", "run_attack_audit", "DEFAULT_EPS", "DEFAULT_LIMIT"]
