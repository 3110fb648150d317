"""Adversarial attacks on classifiers and segmentation models: the threat model, targets, the attack registry, `run_attack`.

Importing this package needs NumPy only; the white-box attacks (fgsm, pgd, apgd-*, fab*) import torch when
they run, and Square (with `EngineTarget`) runs on NumPy + ONNX Runtime alone.

Example:
    >>> from audit.attacks import ATTACKS, Budget, parse_eps
    >>> sorted(ATTACKS.names())
    ['apgd-ce', 'apgd-dlr', 'apgd-t', 'autoattack', 'fab', 'fab-t', 'fgsm', 'pgd', 'segpgd', 'square']
"""

from __future__ import annotations

from audit.attacks.budget import Budget, parse_eps
from audit.attacks.core import ATTACKS, Attack, AttackOutcome, attack_names, register_attack, run_attack
from audit.attacks.targets import EngineTarget, Target, TorchTarget, normalise_batch, onnx_target

# the attacks register themselves on import
from audit.attacks import pgd, apgd, fab, square, autoattack  # noqa: E402,F401  isort: skip

__all__ = ["ATTACKS", "Attack", "AttackOutcome", "Budget", "attack_names", "EngineTarget", "Target", "TorchTarget",
           "normalise_batch", "onnx_target", "parse_eps", "register_attack", "run_attack"]
