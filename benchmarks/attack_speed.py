"""Benchmark: images/s of our attacks vs torchattacks 3.5.1, same model, same images, same run.

Run by hand:  python benchmarks/attack_speed.py [--images 32] [--size 32] [--eps 4/255,8/255] [--timm]

The model: the tests' small CNN (tests/attacks/tiny.py) trained for a few seconds on 4-class gratings
at --size; with --timm also timm's `test_resnet` (random weights) at 64x64. L-inf, same parameters on
both sides: PGD 10 steps of 2.5 * eps / 10; APGD-CE 100 steps; FAB (untargeted) and FAB-T (targets:
the other classes, at most 9; torchattacks' FAB with multi_targeted) 100 steps, 1 run; Square 1000
queries, p_init 0.8; the ensemble APGD-CE -> APGD-T (9 targets, 100 steps) -> FAB-T -> Square (1000
queries), which for torchattacks is MultiAttack of the same four (its AutoAttack uses 5000 queries).
Both run on the torch module (ours could also query the ONNX engine: Square only). Prints images/s,
robust accuracy and the speed ratio ours / torchattacks (> 1: ours faster).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def models(size: int, use_timm: bool):
    from audit.attacks import TorchTarget
    from tests.attacks import tiny

    out = [("tiny CNN", TorchTarget(tiny.train(size=size), tiny.spec(size)), size)]
    if use_timm:
        import timm
        import torch

        torch.manual_seed(0)
        net = timm.create_model("test_resnet", pretrained=False, num_classes=10)
        out.append(("timm test_resnet", TorchTarget(net, tiny.spec(64)), 64))
    return out


def peers(module, eps: float, n_classes: int):
    import torchattacks as ta

    apgd = dict(norm="Linf", eps=eps, steps=100, seed=0)
    fab = dict(norm="Linf", eps=eps, steps=100, n_restarts=1, seed=0, n_classes=min(n_classes, 10))  # <= 9 targets
    return {
        "pgd": ta.PGD(module, eps=eps, alpha=2.5 * eps / 10, steps=10, random_start=True),
        "apgd-ce": ta.APGD(module, loss="ce", **apgd),
        "fab": ta.FAB(module, multi_targeted=False, **fab),
        "fab-t": ta.FAB(module, multi_targeted=True, **fab),
        "square": ta.Square(module, norm="Linf", eps=eps, n_queries=1000, seed=0),
        "autoattack": ta.MultiAttack([ta.APGD(module, loss="ce", **apgd), ta.APGDT(module, n_classes=n_classes, **apgd),
                                      ta.FAB(module, multi_targeted=True, **fab),
                                      ta.Square(module, norm="Linf", eps=eps, n_queries=1000, seed=0)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--eps", default="4/255,8/255", help="L-inf budgets, comma-separated")
    parser.add_argument("--timm", action="store_true", help="also timm test_resnet at 64x64")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import torch

    from audit.attacks import parse_eps

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.images} images, L-inf eps {args.eps}")
    for label, target, size in models(args.size, args.timm):
        rng = np.random.default_rng(0)
        if label == "tiny CNN":
            from tests.attacks import tiny

            x, _ = tiny.make_data(args.images, seed=7, size=size)
        else:
            x = rng.random((args.images, 3, size, size), dtype=np.float32)
        y = target.logits(x).argmax(1)  # attack every image: its own prediction is the label
        module, n_classes = target.module(), target.logits(x[:1]).shape[1]
        for eps, text in zip(parse_eps(args.eps), args.eps.split(",")):
            compare(target, module, x, y, eps, f"{label} {size}x{size}, {n_classes} classes, eps {text.strip()}")


def compare(target, module, x, y, eps: float, title: str) -> None:
    """One table: each attack, ours then torchattacks, on the same images in one batch."""
    import torch

    from audit.attacks import Budget, run_attack

    budget = Budget("linf", eps)
    print(f"\n{title}")
    print(f"{'attack':<11} {'ours img/s':>11} {'theirs img/s':>13} {'ratio':>6} {'ours acc':>9} {'theirs acc':>11}")
    for name, peer in peers(module, eps, target.logits(x[:1]).shape[1]).items():
        t0 = time.perf_counter()
        out = run_attack(name, target, x, y, budget, seed=0, batch_size=len(x))
        ours = time.perf_counter() - t0
        torch.manual_seed(0)
        t0 = time.perf_counter()
        adv = peer(torch.from_numpy(x), torch.from_numpy(y))
        theirs = time.perf_counter() - t0
        with torch.no_grad():
            their_acc = float((module(adv).argmax(1).numpy() == y).mean())
        print(f"{name:<11} {len(x) / ours:>11.1f} {len(x) / theirs:>13.1f} {theirs / ours:>6.2f} "
              f"{out.robust_accuracy:>9.3f} {their_acc:>11.3f}")


if __name__ == "__main__":
    main()
