"""Where an adversarial audit's gradients come from, and the attack target built from it.

- `engine-onnx`: the deployed ONNX graph turned into a differentiable PyTorch module (white-box on what
  is deployed); the default for an ONNX model. An INT8 QDQ graph becomes a float simulation of itself with
  straight-through rounding (audit/conversion/qdq.py), recorded as `quantised: "qdq-ste"`.
- `checkpoint:PATH`, `torchvision:NAME`, `timm:NAME`: the PyTorch source (white-box on it); the
  examples are judged on the engine, so the figures measure transfer from the source to the engine.
- `none`: no gradients, a query-based black-box attack (Square) against the engine itself, which also
  catches gradient masking; the default for a TensorRT engine.

torch is imported only for the white-box sources: the `none` path runs where only ONNX Runtime /
TensorRT is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.attacks.targets import TorchTarget
from audit.errors import ConfigError
from audit.registry import unknown_name
from audit.spec.model import ModelSpec
from exporters.sources import load_source

SOURCE_KINDS = {"engine-onnx": "white-box on the deployed ONNX graph (converted to a differentiable PyTorch module)",
                "checkpoint": "white-box on the PyTorch checkpoint; examples transferred to the engine",
                "torchvision": "white-box on the torchvision model; examples transferred to the engine",
                "timm": "white-box on the timm model; examples transferred to the engine",
                "none": "black-box: queries to the engine only, no gradients"}


def parse_gradients(text: str | None, model: str) -> str:
    """The canonical gradient source for `--gradients TEXT` (None: the default for `model`).

    Example:
        >>> parse_gradients(None, "m.onnx"), parse_gradients("timm:resnet18", "m.onnx"), parse_gradients(None, "m.engine")
        ('engine-onnx', 'timm:resnet18', 'none')
    """
    if text is None or text == "":
        return "engine-onnx" if Path(model).suffix.lower() == ".onnx" else "none"
    kind, _, rest = text.partition(":")
    if text in ("engine-onnx", "none"):
        if text == "engine-onnx" and Path(model).suffix.lower() != ".onnx":
            raise ConfigError(f"--gradients engine-onnx needs an ONNX model, got '{Path(model).name}'; "
                              "use --gradients none (black-box) or a PyTorch source (checkpoint:PATH, timm:NAME)")
        return text
    if kind in ("checkpoint", "torchvision", "timm") and rest:
        if kind == "checkpoint" and not Path(rest).is_file():
            raise ConfigError(f"--gradients {text}: no checkpoint file at {rest}")
        return text
    raise ConfigError(f"unknown --gradients '{text}'; valid: engine-onnx, none, checkpoint:PATH, torchvision:NAME, timm:NAME")


def source_kind(gradients: str) -> str:
    return gradients.partition(":")[0]


QDQ_STE = ("a float simulation of the INT8 (QDQ) graph: ONNX's QuantizeLinear / DequantizeLinear arithmetic forward, "
           "rounding differentiated with the straight-through estimator (identity inside the integer range, zero where "
           "it saturates)")


def describe(gradients: str, model: str | Path | None = None) -> dict[str, Any]:
    """The results document's `adversarial.gradients` entry; for `engine-onnx` on an INT8 QDQ graph
    (`model`), `quantised: "qdq-ste"`: the gradients come from a float simulation of the INT8 graph with
    straight-through rounding (audit/conversion/qdq.py).

    Example:
        >>> describe("none")["white_box"]
        False
    """
    kind = source_kind(gradients)
    entry = {"source": gradients, "kind": kind, "white_box": kind != "none",
             "transfer": kind in ("checkpoint", "torchvision", "timm"), "description": SOURCE_KINDS[kind]}
    if kind == "engine-onnx" and model is not None and _is_qdq(model):
        entry.update(quantised="qdq-ste", description=f"{entry['description']}; {QDQ_STE}")
    return entry


def _is_qdq(model: str | Path) -> bool:
    """Whether the ONNX graph at `model` holds QuantizeLinear / DequantizeLinear nodes (read without weights)."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.node)


def check_attacks(attacks: list[str], gradients: str, task: str = "classification") -> None:
    """Known attack names, attacks made for the task, and gradient attacks only with a gradient source;
    one-line errors saying what to use instead (autoattack without gradients runs its black-box member,
    Square, alone; segmentation runs fgsm, pgd and square, not the APGD / AutoAttack classifiers' attacks).

    Example:
        >>> check_attacks(["apgd-ce"], "engine-onnx", "segmentation")
        Traceback (most recent call last):
        ...
        audit.errors.ConfigError: --attack apgd-ce is a classification attack; for segmentation use fgsm, pgd, segpgd, square
    """
    from audit.attacks import ATTACKS, attack_names

    for name in attacks:
        if name not in ATTACKS:  # the nearest names among the attacks made for this task
            raise ConfigError(unknown_name("attack", name, attack_names(task), among=f"valid for {task}"))
        if task not in ATTACKS.get(name).tasks:
            raise ConfigError(f"--attack {name} is a {' / '.join(ATTACKS.get(name).tasks)} attack; for {task} use "
                              f"{', '.join(attack_names(task))}")
        if ATTACKS.get(name).white_box and gradients == "none":
            alone = " (or autoattack, which then runs Square alone)" if task == "classification" else ""
            raise ConfigError(f"--attack {name} needs gradients, and --gradients none gives none; "
                              f"use --attack square{alone}, or a gradient source")


def make_target(gradients: str, model: str, engine, spec):
    """The attack target for a gradient source (torch imported only for white-box sources)."""
    from audit import attacks

    if gradients == "none":
        return attacks.EngineTarget(engine, spec)
    if gradients == "engine-onnx":
        return attacks.onnx_target(model, spec)
    return source_target(gradients, spec)


def source_target(source: str, spec: ModelSpec) -> TorchTarget:
    """A gradient source: `checkpoint:PATH` (or a checkpoint path), `torchvision:NAME`, `timm:NAME`.

    Loaded with `exporters.sources.load_source` (checkpoints with weights_only; named models with
    random weights: nothing is downloaded). The source's own normalisation wraps it (what it was
    trained with); `spec` supplies the class count and input size of the deployed model.

    Example:
        >>> target = source_target("checkpoint:runs/r18/checkpoint.pt", spec)  # doctest: +SKIP
    """
    kind, _, rest = str(source).partition(":")
    if kind == "checkpoint":
        if not rest:
            raise ConfigError("gradient source 'checkpoint:' needs a path: checkpoint:PATH")
        loaded, name = load_source(rest), "checkpoint"
    elif kind in ("torchvision", "timm"):
        loaded = load_source(source, num_classes=len(spec.class_names) or None,
                             input_size=tuple(spec.input_size) if spec.input_size else None)
        name = kind
    elif Path(source).is_file():
        loaded, name = load_source(source), "checkpoint"
    else:
        raise ConfigError(f"unknown gradient source '{source}'; give checkpoint:PATH, torchvision:NAME or timm:NAME")
    if loaded.spec.task != spec.task or spec.task not in ("classification", "segmentation"):
        raise ConfigError(f"gradient source '{source}' is a {loaded.spec.task} model and the audited model a {spec.task} one; "
                          "attacks need a classifier or a segmentation model of the same task")
    return TorchTarget(loaded.model, loaded.spec, source=name)
