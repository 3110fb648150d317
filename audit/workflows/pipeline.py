"""The stages that `audit study` and `audit demo` chain: (synthetic data ->) finetune -> export ->
audit, each skipped when its output is already there and belongs to its input.

What is finished is read from the files: a checkpoint whose provenance holds the final metric (and
the same lr, epochs, mode and augmentation), an export whose metadata names that checkpoint's hash, a
complete results document of that export. A stage cut short resumes: fine-tuning from its last
epoch, the audit from its saved cells. Torch is imported only by the first two stages.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from audit.errors import ConfigError


@dataclass
class Stage:
    """What a stage produced: its main file, whether it was already there, and its headline figures."""

    path: Path
    reused: bool
    info: dict[str, Any] = field(default_factory=dict)


SYNTHETIC_DEFAULTS = {"cifar10": {"n_train": 600, "n_val": 200}, "coco": {"n_train": 120, "n_val": 40, "size": (96, 128)},
                      "ade20k": {"n_train": 80, "n_val": 30, "size": (96, 128)}}


def synthetic_stage(task: str, folder: Path, seed: int, log: Callable[[str], None] = lambda m: None, **sizes) -> Path:
    """Write synthetic `task` data (SYNTHETIC_DEFAULTS overridden by `sizes`) in its real format at
    `folder`, unless a marker file says this very dataset is already complete there."""
    from audit.results import document as results
    from audit.datasets import synthetic

    if task not in SYNTHETIC_DEFAULTS:
        raise ConfigError(f"no synthetic data for task '{task}'; valid: {', '.join(SYNTHETIC_DEFAULTS)}")
    s = {**SYNTHETIC_DEFAULTS[task], **sizes}
    marker = Path(folder) / ".robustaudit-synthetic.json"
    wanted = json.dumps({"task": task, "seed": seed, **{k: list(v) if isinstance(v, tuple) else v for k, v in s.items()}},
                        sort_keys=True)
    if marker.exists() and marker.read_text() == wanted:
        return Path(folder)
    log(f"writing synthetic {task} data to {folder}")
    n_train, n_val = int(s["n_train"]), int(s["n_val"])
    if task == "cifar10":
        synthetic.write_cifar10(folder, n_train=n_train, n_test=n_val, seed=seed)
    elif task == "coco":
        synthetic.write_coco(folder, n_train=n_train, n_val=n_val, size=tuple(s["size"]), seed=seed)
    else:
        synthetic.write_ade20k(folder, n_train=n_train, n_val=n_val, size=tuple(s["size"]), seed=seed)
    results.atomic_write_text(marker, wanted)
    return Path(folder)


def finetune_stage(config, threads: int | None = None, log: Callable[[str], None] = lambda m: None) -> Stage:
    """Fine-tune per `config` (a FinetuneConfig) unless OUT/checkpoint.pt is finished; resume a cut-short one."""
    from finetune.checkpoint import load_checkpoint
    from finetune.train import CHECKPOINT, run_finetune

    path = Path(config.out) / CHECKPOINT
    cfg = config.resolved()
    if path.exists():
        ckpt = load_checkpoint(path)
        prov = ckpt.get("provenance", {})
        mismatch = [f"{k} {prov.get(k)} vs {getattr(cfg, k)}" for k in ("lr", "epochs", "mode", "augment")
                    if prov.get(k) != getattr(cfg, k)]
        if mismatch:
            raise ConfigError(f"{path} was fine-tuned with other settings ({', '.join(mismatch)}); "
                              f"delete {path.parent} or choose another output folder")
        if prov.get("final_metric") and ckpt.get("epoch", 0) >= cfg.epochs:
            return Stage(path, True, {"metric": prov["final_metric"]})
        log(f"resuming the fine-tuning in {path.parent} from epoch {ckpt.get('epoch', 0)}")
        cfg.resume = True
    with torch_threads(threads):
        path = run_finetune(cfg)
    return Stage(path, False, {"metric": load_checkpoint(path)["provenance"]["final_metric"]})


def export_stage(checkpoint: Path, out: Path, threads: int | None = None, **options) -> Stage:
    """Export `checkpoint` to `out` (exporters.api.export_model options) unless `out` was exported from it."""
    from audit.io.hashing import sha256_of
    from exporters.api import export_model

    precision = options.get("precision", "fp32")
    prov = onnx_provenance(out) if out.exists() else {}
    if prov.get("source_sha256") == sha256_of(checkpoint) and prov.get("precision", "fp32") == precision:
        return Stage(out, True)
    with torch_threads(threads):
        result = export_model(str(checkpoint), out, **options)
    return Stage(out, False, {"parity": result.parity.figures if result.parity else None})


def audit_stage(config) -> Stage:
    """Run the audit `config` (an AuditConfig) unless OUT/results.json is a complete audit of that model."""
    from audit.api import run_audit
    from audit.io.hashing import model_sha256

    results = Path(config.out) / "results.json"
    doc = read_json(results)
    if doc and doc.get("status") == "complete" and doc.get("model", {}).get("sha256") == model_sha256(config.model):
        return Stage(results, True, headline(doc))
    config.resume = True
    return Stage(results, False, headline(run_audit(config).document))


def attack_stage(config) -> Stage:
    """Run the adversarial audit `config` (an AttackConfig) unless OUT/results.json is a complete one of that model."""
    from audit.attack_audit import run_attack_audit
    from audit.io.hashing import model_sha256

    results = Path(config.out) / "results.json"
    doc = read_json(results)
    if (doc and doc.get("status") == "complete" and doc.get("adversarial")
            and doc.get("model", {}).get("sha256") == model_sha256(config.model)):
        return Stage(results, True, attack_headline(doc))
    config.resume = True
    return Stage(results, False, attack_headline(run_attack_audit(config).document))


def attack_headline(doc: dict) -> dict[str, Any]:
    """The verdict of an adversarial audit: attack, budget, clean and robust accuracy on the engine
    (segmentation: pixel accuracy, and clean and robust mIoU beside it)."""
    adv = doc["adversarial"]
    v = adv["verdict"]
    out = {"attack": v["attack"], "norm": v.get("norm"), "eps": v["eps"], "robust_accuracy": v["robust_accuracy"],
           "clean_accuracy": adv["clean"].get(v.get("engine"))}
    if adv.get("metric") == "miou":
        out.update(metric="miou", robust_miou=v["robust_miou"], clean_miou=adv["clean_miou"].get(v.get("engine")))
    return out


def headline(doc: dict) -> dict[str, Any]:
    """The primary metric's P, mPC and rPC of a results document."""
    primary = doc["task"]["primary_metric"]
    m = doc["summary"]["metrics"][primary]
    return {"metric": primary, "P": m["P"], "mPC": m["mPC"], "rPC": m["rPC"]}


def onnx_provenance(path: Path) -> dict:
    """The provenance robustaudit's exporter wrote into an ONNX file ({} when absent or unreadable)."""
    import onnx

    from audit.spec.model import ModelSpec

    try:
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        return ModelSpec.from_metadata(meta).provenance or {}
    except Exception:  # an unreadable or foreign file is simply not a finished export: export again
        return {}


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run torch with `threads` intra-op threads (on small CPU machines 1-2 avoid spin-waiting OpenMP threads)."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
