"""Run a study: for each combination finetune -> export -> audit, skipping finished stages.

Each combination has its folder OUT/<id>/ (finetune/checkpoint.pt, model.onnx, audit/results.json).
What is finished is read from those files, not from memory (see `audit.workflows.pipeline`), and a stage cut
short resumes (fine-tuning from its last epoch, the audit from its saved cells). The manifest OUT/study.json is rewritten atomically after every stage; the study report
reads it.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from audit.results import document as results
from audit.errors import ConfigError, RobustAuditError, StudyError
from audit.workflows.pipeline import attack_stage, audit_stage, export_stage, finetune_stage, read_json, synthetic_stage
from audit.io.safety import prepare_out
from audit.workflows.study.spec import Combination, Study

KIND = "robustaudit-study"
VERSION = 1
STAGES = ("finetune", "export", "audit", "attack")  # attack: only where the study has an `attack:` block


def stages_of(combo: Combination) -> tuple[str, ...]:
    """The stages a combination runs: the adversarial audit only when its task has attack settings."""
    return STAGES if combo.task.attack else STAGES[:3]


@dataclass
class StudyResult:
    """Where the manifest and report are, and which combinations failed (with --keep-going)."""

    out: Path
    manifest: Path
    report: Path | None
    failed: dict[str, str] = field(default_factory=dict)
    ran: dict[str, list[str]] = field(default_factory=dict)  # combination id -> stages run (not reused) this time


def select(study: Study, only: list[str] | None) -> list[Combination]:
    """The combinations whose id matches one of the `only` globs (all when none given)."""
    combos = study.combinations()
    if not only:
        return combos
    chosen = [c for c in combos if any(fnmatch.fnmatchcase(c.id, pattern) for pattern in only)]
    if not chosen:
        raise ConfigError(f"--only {' '.join(only)} matches no combination; `audit study FILE --list` shows the ids")
    return chosen


def run_study(study: Study, *, only: list[str] | None = None, keep_going: bool = False, progress: bool = True,
              report: bool = True, log: Callable[[str], None] = print) -> StudyResult:
    """Run every (selected) combination's missing stages, then write the study report.

    Example:
        >>> from audit.workflows.study import load_study, run_study
        >>> result = run_study(load_study("studies/tiny-cpu.yaml"))  # doctest: +SKIP
        >>> result.report  # doctest: +SKIP
        PosixPath('runs/study-tiny-cpu/report.html')
    """
    combos = select(study, only)
    _check_configs(study, [c for c in combos if c.backbone.pretrain is None])
    prepare_out(study.out)
    pretrain(study, combos, log)  # weights the study makes must exist before their fine-tuning configs are checked
    _check_configs(study, [c for c in combos if c.backbone.pretrain is not None])
    manifest = Manifest(study)
    result = StudyResult(study.out, manifest.path, None)
    for task in {c.task.name: c.task for c in combos}.values():
        prepare_data(task, study.seed, log)
    for i, combo in enumerate(combos, 1):
        log(f"[{i}/{len(combos)}] {combo.id}")
        try:
            result.ran[combo.id] = _run_combination(study, combo, manifest, progress, log)
        except RobustAuditError as exc:
            if not keep_going:
                raise StudyError(f"{combo.id}: {exc} (finished stages are kept: fix this and run the study again)") from exc
            result.failed[combo.id] = str(exc)
            log(f"  failed: {exc}")
    if report:
        result.report = write_study_report(study.out)
    return result


def write_study_report(out: Path) -> Path | None:
    """Render OUT/study.json as OUT/report.html (None when the reports package is absent)."""
    try:
        from reports.study import write_study_report as render
    except ImportError:
        return None
    return render(Path(out) / "study.json", Path(out) / "report.html")


def pretrain(study: Study, combos: list[Combination], log: Callable[[str], None]) -> None:
    """Make the weights of backbones with a `pretrain:` block (once; reused while the settings match)."""
    backbones = {c.backbone.name: c.backbone for c in combos if c.backbone.pretrain is not None}
    if not backbones:
        return
    from finetune.pretrain import pretrain_backbone, settings

    for b in backbones.values():
        options = settings(b.pretrain, f"{study.path}: backbone {b.name}")
        pretrain_backbone(b.arch, b.weights, options, log=lambda m: log(f"  {m}"))


def _check_configs(study: Study, combos: list[Combination]) -> None:
    """Resolve every fine-tuning config before any work, so a typo fails now, not after hours."""
    from finetune.models import resolve_backbone

    for combo in combos:
        try:
            finetune_config(study, combo, resume=False).resolved()
            resolve_backbone(combo.backbone.arch)
        except ConfigError as exc:
            raise ConfigError(f"{study.path}: {combo.id} (backbone {combo.backbone.name}): {exc}") from None


def finetune_config(study: Study, combo: Combination, resume: bool, progress: bool = True):
    """The `FinetuneConfig` of one combination."""
    from finetune.config import FinetuneConfig

    opts = {k: v for k, v in combo.task.finetune.items() if k != "threads"}
    if "input_size" in opts:
        opts["input_size"] = tuple(opts["input_size"])
    return FinetuneConfig(task=combo.task.name, data=combo.task.data, backbone=combo.backbone.arch,
                          out=study.out / combo.id / "finetune", weights=combo.backbone.weights, mode=combo.mode,
                          lr=combo.lr, augment=combo.augment, seed=study.seed, resume=resume, progress=progress, **opts)


def prepare_data(task, seed: int, log: Callable[[str], None]) -> None:
    """Write a task's synthetic dataset once, or check that its dataset folder is there."""
    if task.synthetic is None:
        if not task.data.exists():
            raise ConfigError(f"dataset folder {task.data} for task {task.name} does not exist; fix 'data' in the study file")
        return
    sizes = dict(task.synthetic)
    synthetic_stage(task.name, task.data, int(sizes.pop("seed", seed)), log, **sizes)


class Manifest:
    """OUT/study.json: the grid, each combination's stages (status, seconds, reused) and file paths."""

    def __init__(self, study: Study):
        self.path = study.out / "study.json"
        old = read_json(self.path) or {}
        previous = {c["id"]: c for c in old.get("combinations", [])}
        self.doc = {"kind": KIND, "version": VERSION, "name": study.name, "file": str(study.path),
                    "created": old.get("created") or _now(), "updated": _now(), "seed": study.seed,
                    "export": study.export, "combinations": []}
        for combo in study.combinations():
            entry = {**combo.describe(), "dir": combo.id, "finetune_options": combo.task.finetune,
                     "audit_options": combo.task.audit, "attack_options": combo.task.attack, "files": {},
                     "stages": {s: {"status": "pending"} for s in stages_of(combo)}}
            if combo.id in previous:
                entry["stages"].update(previous[combo.id].get("stages", {}))
                entry["files"].update(previous[combo.id].get("files", {}))
            self.doc["combinations"].append(entry)
        self.save()

    def entry(self, combo_id: str) -> dict[str, Any]:
        return next(c for c in self.doc["combinations"] if c["id"] == combo_id)

    def stage(self, combo_id: str, stage: str, **values) -> None:
        self.entry(combo_id)["stages"][stage] = values
        self.doc["updated"] = _now()
        self.save()

    def save(self) -> None:
        results.atomic_write_text(self.path, json.dumps(self.doc, indent=2, allow_nan=False) + "\n")


def _run_combination(study: Study, combo: Combination, manifest: Manifest, progress: bool, log) -> list[str]:
    folder = study.out / combo.id
    ran = []
    fns = {"finetune": _finetune, "export": _export, "audit": _audit, "attack": _attack}
    for stage, fn in ((s, fns[s]) for s in stages_of(combo)):
        started = time.time()
        try:
            done, reused, info = fn(study, combo, folder, progress, log)
        except KeyboardInterrupt:
            manifest.stage(combo.id, stage, status="interrupted", at=_now())
            raise
        except RobustAuditError as exc:
            manifest.stage(combo.id, stage, status="failed", error=str(exc), at=_now())
            raise
        previous = manifest.entry(combo.id)["stages"][stage]
        seconds = previous.get("seconds") if reused and previous.get("status") == "done" else round(time.time() - started, 2)
        manifest.entry(combo.id)["files"][stage] = str(done.relative_to(study.out))
        manifest.stage(combo.id, stage, status="done", reused=reused, seconds=seconds, at=_now(), **info)
        log(f"  {stage}: {'already done' if reused else 'done'} ({done.relative_to(study.out)})")
        if not reused:
            ran.append(stage)
    return ran


def _finetune(study: Study, combo: Combination, folder: Path, progress: bool, log):
    stage = finetune_stage(finetune_config(study, combo, resume=False, progress=progress),
                           threads=combo.task.finetune.get("threads"), log=lambda m: log(f"  {m}"))
    return stage.path, stage.reused, stage.info


def _export(study: Study, combo: Combination, folder: Path, progress: bool, log):
    opts = dict(study.export)
    stage = export_stage(folder / "finetune" / "checkpoint.pt", folder / "model.onnx", threads=combo.task.finetune.get("threads"),
                         opset=int(opts.get("opset", 17)), dynamic=bool(opts.get("dynamic", True)),
                         precision=opts.get("precision", "fp32"), calibration=opts.get("calibration"),
                         check=bool(opts.get("check", True)))
    return stage.path, stage.reused, stage.info


def _audit(study: Study, combo: Combination, folder: Path, progress: bool, log):
    from audit.api import AuditConfig

    opts = dict(combo.task.audit)
    if "severities" in opts:
        opts["severities"] = [int(s) for s in opts["severities"]]
    stage = audit_stage(AuditConfig(model=str(folder / "model.onnx"), task=combo.task.name, data=str(combo.task.data),
                                    out=str(folder / "audit"), progress=progress, seed=study.seed, **opts))
    return stage.path, stage.reused, stage.info


def _attack(study: Study, combo: Combination, folder: Path, progress: bool, log):
    from audit.attack_audit import AttackConfig

    opts = dict(combo.task.attack)
    if "eps" in opts:
        opts["eps"] = [_budget(e) for e in (opts["eps"] if isinstance(opts["eps"], list) else [opts["eps"]])]
    if isinstance(opts.get("attacks"), str):
        opts["attacks"] = [a.strip() for a in opts["attacks"].split(",") if a.strip()]
    stage = attack_stage(AttackConfig(model=str(folder / "model.onnx"), task=combo.task.name, data=str(combo.task.data),
                                      out=str(folder / "attack"), progress=progress, seed=study.seed, **opts))
    return stage.path, stage.reused, stage.info


def _budget(value) -> float:
    """A budget from the study file: a number, or text such as '8/255'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    from audit.attacks import parse_eps

    return parse_eps(str(value))[0]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
