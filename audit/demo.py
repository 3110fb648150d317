"""The built-in demo: synthetic data in the real formats, tiny models, audits and one report.

Nothing is downloaded and no GPU or torch is needed: the datasets are drawn (audit.synthetic), the
models are trained in NumPy and written as ONNX with robustaudit metadata (audit.demo_models), and
each is audited through the same `run_audit` as any user model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from audit import demo_models, synthetic
from audit.api import AuditConfig, AuditResult, run_audit

REDUCED = "gaussian_noise,defocus_blur,motion_blur,fog,frost,contrast,jpeg_compression"


@dataclass
class DemoResult:
    """The demo's audits and the comparison report."""

    out: Path
    audits: list[AuditResult]
    report: Path | None


def run_demo(out: str | Path = "demo", *, full: bool = False, images: int = 200, workers: int | None = None,
             seed: int = 0, log: Callable[[str], None] = print, progress: bool = True) -> DemoResult:
    """Write the data, train the models, audit them, render one report.

    Example:
        >>> result = run_demo("demo-out", images=50)  # doctest: +SKIP
        >>> result.report  # doctest: +SKIP
        PosixPath('demo-out/report.html')
    """
    out = Path(out)
    log(f"writing synthetic datasets to {out / 'data'}")
    cifar = synthetic.write_cifar10(out / "data" / "cifar10", n_train=2, n_test=images, seed=seed + 7).parent
    ade = synthetic.write_ade20k(out / "data" / "ade20k", n_train=1, n_val=max(10, images // 10), seed=seed + 8)
    log("training the demo classifier and segmenter (NumPy, a few seconds each)")
    models = {
        "classifier": (demo_models.train_classifier(out / "models" / "shapes-classifier.onnx", seed=seed), "cifar10", cifar),
        "segmenter": (demo_models.train_segmenter(out / "models" / "shapes-segmenter.onnx", seed=seed + 1), "ade20k", ade),
    }
    corruptions, severities = ("benchmark", [1, 2, 3, 4, 5]) if full else (REDUCED, [1, 3, 5])
    audits = []
    for name, (model, task, data) in models.items():
        log(f"auditing the {name} ({task}) under {corruptions} at severities {severities}")
        audits.append(run_audit(AuditConfig(model=str(model), task=task, data=str(data), out=str(out / "runs" / name),
                                            corruptions=corruptions, severities=severities, workers=workers, seed=seed,
                                            resume=True, progress=progress)))
    report = None
    try:
        from reports import write_report
    except ImportError:
        pass
    else:
        report = write_report([a.out / "results.json" for a in audits], out / "report.html", title="robustaudit demo")
    return DemoResult(out, audits, report)
