"""The attack registry, the outcome of an attack, and `run_attack`, the one entry point.

An attack is a registered `Attack`: a function over one batch of correctly classified images that
returns the adversarial images, which of them it broke, and the model evaluations it spent.
`run_attack` does the rest for every attack alike: input checks, eps = 0, batching, seeding,
skipping images the target already misclassifies, the budget check, and a final evaluation of the
returned images on the target, so that `correct` is always what the target says about `x_adv`.

Segmentation (labels [N, H, W]) runs the attacks registered for it (`Attack.tasks`), which get an
`objective=` keyword (audit.attacks.objectives: the loss and the judgement per image); every image
with a valid pixel is attacked and `correct` holds its fraction of correctly labelled valid pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from audit.attacks.budget import Budget, check_within, project
from audit.attacks.objectives import objective_for
from audit.errors import ConfigError
from audit.registry import Registry

# fn(target, x, y, budget, *, seed, steps, restarts, queries) -> (x_adv, broken, queries_spent)
AttackFn = Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Attack:
    """A registered attack: its batch function, whether it needs gradients, and a one-line summary."""

    name: str
    fn: AttackFn
    white_box: bool
    summary: str
    tasks: tuple[str, ...] = ("classification",)  # segmentation attacks take an `objective=` keyword


def attack_names(task: str) -> list[str]:
    """The registered attacks that run on `task` (classification / segmentation)."""
    return [n for n in ATTACKS.names() if task in ATTACKS.get(n).tasks]


ATTACKS: Registry[Attack] = Registry("attack")


def register_attack(name: str, *, white_box: bool, summary: str,
                    tasks: tuple[str, ...] = ("classification",)) -> Callable[[AttackFn], AttackFn]:
    """Decorator: add a batch attack function to `ATTACKS` (a name may be registered once)."""

    def deco(fn: AttackFn) -> AttackFn:
        ATTACKS.add(name, Attack(name, fn, white_box, summary, tuple(tasks)))
        return fn

    return deco


@dataclass
class AttackOutcome:
    """What an attack did to each image.

    `correct` comes from one final evaluation of `x_adv` on the attacked target (per image: top-1
    correct, or for segmentation the fraction of correctly labelled valid pixels); `queries` counts
    the model evaluations the attack spent per image, the clean one included (that final check is
    not counted). `x_adv` is float32 in [0, 1], within the budget, not re-quantised to uint8.
    """

    x_adv: np.ndarray
    correct: np.ndarray
    queries: np.ndarray
    attack: str
    budget: Budget
    source: str

    @property
    def robust_accuracy(self) -> float:
        """Fraction of images still classified correctly (segmentation: the mean pixel accuracy; nan for none)."""
        return float(np.nanmean(self.correct)) if len(self.correct) and not np.isnan(self.correct).all() else float("nan")


def batch_seed(seed: int, start: int) -> int:
    """The seed of the batch starting at image `start`: a run replays bit for bit at a fixed batch size."""
    return int(np.random.SeedSequence([int(seed), int(start)]).generate_state(1)[0])


def check_inputs(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 [N, 3, H, W] in [0, 1] and labels as int64 [N] (segmentation: [N, H, W],
    -1 for pixels left out of the loss), or a one-line ConfigError."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ConfigError(f"attack images must be [N, 3, H, W], got shape {list(x.shape)}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ConfigError(f"attack images must be floats in [0, 1] (divide uint8 by 255), got {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if len(x) and (not np.isfinite(x).all() or x.min() < 0 or x.max() > 1):
        raise ConfigError("attack images must be in [0, 1] (pixels before normalisation)")
    if y.shape not in ((len(x),), (len(x), *x.shape[2:])) or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"attack labels must be {len(x)} integers (or {len(x)} label maps of {list(x.shape[2:])}), "
                          f"got {y.dtype} {list(y.shape)}")
    return x, (y if y.ndim == 3 else y.astype(np.int64))  # label maps: int64 per batch (they can be large)


def run_attack(name: str, target: Any, x: np.ndarray, y: np.ndarray, budget: Budget, *, seed: int = 0,
               steps: int | None = None, restarts: int = 1, queries: int | None = None, batch_size: int = 32,
               progress: Callable[[int], None] = lambda n: None) -> AttackOutcome:
    """Attack `target` on images `x` (float32 [N, 3, H, W] in [0, 1]) with labels `y` within `budget`.

    Args:
        name: a registered attack (`ATTACKS.names()`): fgsm, pgd, apgd-ce, apgd-dlr, apgd-t, fab, fab-t, square,
            autoattack; for segmentation labels ([N, H, W]) one of `attack_names("segmentation")`: fgsm, pgd, segpgd, square.
        target: an `EngineTarget` (square, autoattack) or a `TorchTarget` (all).
        seed: every random draw of batch b comes from a generator seeded by (seed, b's first index).
        steps: iterations of a white-box attack (None: its default; pgd 10, apgd-* and fab* 100).
        restarts: random restarts of pgd / apgd-* / fab* / square, each on the still-unbroken images.
        queries: Square's budget of model evaluations per image (None: 1000).
        batch_size: images per attacked batch.
        progress: called with the number of images each finished batch adds (like tqdm's update).

    Example:
        >>> out = run_attack("pgd", target, x, y, Budget("linf", 8 / 255), seed=0)  # doctest: +SKIP
        >>> out.robust_accuracy  # doctest: +SKIP
        0.12
    """
    attack = ATTACKS.get(name)
    if not isinstance(budget, Budget):
        raise ConfigError(f"budget must be an audit.attacks.Budget, got {type(budget).__name__}")
    x, y = check_inputs(x, y)
    objective = objective_for(y)
    if objective.task not in attack.tasks:
        raise ConfigError(f"attack '{name}' is for {', '.join(attack.tasks)} only; for {objective.task} use "
                          f"{', '.join(attack_names(objective.task))}")
    extra = {"objective": objective} if objective.task != "classification" else {}
    for label, value in (("steps", steps), ("queries", queries), ("restarts", restarts), ("batch_size", batch_size)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise ConfigError(f"attack {label} must be an integer >= 1, got {value!r}")
    run_name = name
    if attack.white_box and not target.differentiable:
        raise ConfigError(f"attack '{name}' needs gradients but the {target.source} target has none: use --attack square "
                          "or a gradient source (the ONNX graph, checkpoint:PATH, torchvision:NAME, timm:NAME)")
    if name == "autoattack" and not target.differentiable:
        run_name = "autoattack(square only: target not differentiable)"
    x_adv, spent = x.copy(), np.zeros(len(x), np.int64)
    correct = np.zeros(len(x), bool if objective.task == "classification" else np.float64)
    for start in range(0, len(x), batch_size):
        sl = slice(start, start + batch_size)
        xb, yb = x[sl], y[sl].astype(np.int64)
        logits = target.logits(xb)
        objective.check(logits, yb)
        clean = objective.judge(logits, yb)
        spent[sl] = 1
        todo = np.flatnonzero(objective.attackable(yb, clean))
        if budget.eps > 0 and len(todo):
            adv, _, used = attack.fn(target, xb[todo], yb[todo], budget, seed=batch_seed(seed, start),
                                     steps=steps, restarts=restarts, queries=queries, **extra)
            adv = project(adv, xb[todo], budget)
            check_within(adv, xb[todo], budget)
            block = x_adv[sl]
            block[todo] = adv
            spent[start + todo] += np.asarray(used, np.int64)
            correct[sl] = objective.judge(target.logits(block), yb)
        else:
            correct[sl] = clean
        progress(len(xb))
    return AttackOutcome(x_adv, correct, spent, run_name, budget, target.source)
