"""FAB and FAB-T (audit/attacks/fab.py) and the AutoAttack ensemble with its FAB-T stage.

FAB is a minimal-norm attack, so besides the properties every attack has (the registry-wide tests in
test_attacks.py: eps 0 is the clean accuracy) it is checked against the closed form: on a linear
classifier f(x) = W x + b the smallest perturbation that changes the class c is
min_{s != c} (f_c - f_s)(x) / ||w_s - w_c||_q (q the dual norm: L1 for L-inf, L2 for L2), reached
inside the box when the points sit in [0.3, 0.7]. Measured (20 iterations, 16 points, 2 and 4 classes,
L-inf and L2, fab and fab-t): FAB's distance / the exact one is 1.00000 to 1.006; asserted in [1 - 1e-5, 1.01].
Agreement with torchattacks' FAB is in test_reference.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from audit.attacks import Budget, run_attack
from audit.attacks.autoattack import STANDARD, run_stages, stages
from audit.attacks.budget import norms
from audit.attacks.fab import fab, fab_t, minimal_adversarial, project_to_hyperplane
from audit.errors import ConfigError

STEPS = 10  # enough for FAB on the tiny model (it agrees with 100 to within an image, test_reference.py)


def correct_points(target, points):
    x, y = points
    keep = target.logits(x).argmax(1) == y
    return x[keep], y[keep]


def linear(classes: int, size: int = 8, scale: float = 1.0):
    """A linear classifier on raw [0, 1] pixels (mean 0, std 1), its weights, and 16 points it classifies."""
    import torch

    from audit.attacks import TorchTarget
    from audit.spec.model import ModelSpec

    torch.manual_seed(classes)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * size * size, classes))
    with torch.no_grad():
        net[1].weight *= scale
        net[1].bias *= scale
    spec = ModelSpec(task="classification", output_convention="classification_logits", input_size=(size, size),
                     mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), class_names=[f"c{k}" for k in range(classes)])
    target = TorchTarget(net, spec)
    x = np.random.default_rng(classes).uniform(0.3, 0.7, (16, 3, size, size)).astype(np.float32)
    return target, net[1].weight.detach().numpy().astype(np.float64), x, target.logits(x).argmax(1)


@pytest.mark.parametrize("classes", [2, 4])
@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("targeted", [False, True], ids=["fab", "fab-t"])
def test_fab_finds_the_minimal_perturbation_of_a_linear_classifier(classes, norm, targeted):
    target, w, x, y = linear(classes)
    z = target.logits(x).astype(np.float64)
    dual = 1 if norm == "linf" else 2  # the dual norm of the gradient differences
    exact = np.array([min((z[i, y[i]] - z[i, s]) / np.linalg.norm(w[s] - w[y[i]], ord=dual)
                          for s in range(classes) if s != y[i]) for i in range(len(x))])
    x_adv, dist, used = minimal_adversarial(target, x, y, norm, eps=0.1, steps=20, targeted=targeted)
    assert (target.logits(x_adv).argmax(1) != y).all()  # every one is a real adversarial example
    np.testing.assert_allclose(dist, norms(x_adv - x, norm), rtol=1e-5)
    ratio = dist / exact
    assert ratio.min() >= 1 - 1e-5, ratio  # nothing below the minimum: the distances are honest
    assert ratio.max() <= 1.01, ratio
    assert x_adv.min() >= 0 and x_adv.max() <= 1 and (used > 1).all()


@pytest.mark.parametrize("fn", [fab, fab_t], ids=["fab", "fab-t"])
@pytest.mark.parametrize("budget", [Budget("linf", 4 / 255), Budget("l2", 0.3)], ids=str)
def test_examples_lie_within_the_budget_and_in_the_box(fn, budget, torch_target, points):
    x, y = correct_points(torch_target, points)
    adv, broken, used = fn(torch_target, x, y, budget, seed=0, steps=STEPS)  # the attack's own output, no projection
    assert adv.dtype == np.float32 and adv.min() >= 0 and adv.max() <= 1
    assert norms(adv - x, budget.norm).max() <= budget.eps * (1 + 1e-6)
    wrong = torch_target.logits(adv).argmax(1) != y
    assert 0 < broken.sum() < len(x) and (wrong == broken).all()  # broken means misclassified, within eps
    np.testing.assert_array_equal(adv[~broken], x[~broken])  # the unbroken come back unperturbed
    assert used[broken].min() < used[~broken].min()  # the broken left the run early


@pytest.mark.parametrize("name", ["fab", "fab-t"])
@pytest.mark.parametrize("norm, grid", [("linf", [0, 2 / 255, 4 / 255, 8 / 255]), ("l2", [0, 0.1, 0.25, 0.5])])
def test_robust_accuracy_does_not_rise_with_the_budget(name, norm, grid, torch_target, points):
    x, y = points
    acc = [run_attack(name, torch_target, x, y, Budget(norm, e), seed=0, steps=STEPS).correct.sum() for e in grid]
    assert all(b <= a for a, b in zip(acc, acc[1:])), acc
    assert acc[0] > acc[-1]


def test_fab_counts_its_evaluations(torch_target, points):
    x, y = points
    out = run_attack("fab-t", torch_target, x, y, Budget("linf", 4 / 255), steps=STEPS)
    clean = torch_target.logits(x).argmax(1) == y
    assert (out.queries[~clean] == 1).all()
    # run_attack's clean pass, FAB's, then per target (3 on 4 classes) <= 1 + 2 * steps + the final search's 3
    assert (out.queries[clean] >= 3).all() and out.queries.max() <= 2 + 3 * (1 + 2 * STEPS + 3)


def test_restarts_are_seeded(torch_target, points):
    x, y = correct_points(torch_target, points)
    runs = [minimal_adversarial(torch_target, x[:16], y[:16], "l2", eps=0.1, steps=5, restarts=3, seed=s)[1]
            for s in (0, 0, 1)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])  # the random starts differ, and some restart improves on the first run


def test_minimal_adversarial_batches_and_reports_progress(torch_target, points):
    x, y = points
    seen = []
    x_adv, dist, _ = minimal_adversarial(torch_target, x, y, "linf", eps=8 / 255, steps=3, batch_size=20,
                                         progress=seen.append)
    assert seen == [20, 20, 8]
    clean = torch_target.logits(x).argmax(1) == y
    assert (dist[~clean] == 0).all() and (dist[clean] > 0).all()


def test_fab_t_never_weakens_the_ensemble(torch_target, points):
    """AutoAttack with FAB-T breaks at least as many images as its other stages alone, same seed.

    The APGD stages are the same runs in both (each stage's seed is fixed by its place in the standard
    order); Square then runs on fewer images with FAB-T, and its draws depend on the batch, so on the
    tiny CNN (where APGD already finds all that FAB-T finds) this is a measured ordering of one run.
    """
    x, y = correct_points(torch_target, points)
    budget, kw = Budget("linf", 3 / 255), dict(seed=0, steps=STEPS, queries=100)
    _, with_fab, _ = run_stages(torch_target, x, y, budget, STANDARD, **kw)
    _, no_fab, _ = run_stages(torch_target, x, y, budget, tuple(s for s in STANDARD if s != "fab-t"), **kw)
    assert 0 < no_fab.sum() <= with_fab.sum() < len(x)


@pytest.mark.parametrize("budget", [Budget("linf", 0.05), Budget("l2", 0.5)], ids=str)
def test_fab_t_breaks_what_apgd_cannot_on_a_saturated_softmax(budget):
    """A linear 2-class model with logits scaled by 1e4: the cross-entropy's gradient underflows to 0,
    so APGD-CE does not move (APGD-T needs 4 classes), while FAB works on the logits themselves.
    Measured (10 steps, Square 100 queries, 16 points): APGD 1 / 0 broken, without FAB-T 14 / 8
    (Square's random search), with FAB-T 16 / 16 (L-inf 0.05 / L2 0.5)."""
    target, _, x, y = linear(2, scale=1e4)
    kw = dict(seed=0, steps=STEPS, queries=100)
    _, with_fab, _ = run_stages(target, x, y, budget, STANDARD, **kw)
    _, no_fab, _ = run_stages(target, x, y, budget, tuple(s for s in STANDARD if s != "fab-t"), **kw)
    _, apgd_only, _ = run_stages(target, x, y, budget, ("apgd-ce", "apgd-t"), **kw)
    assert apgd_only.sum() <= 2 and (with_fab >= apgd_only).all()
    assert with_fab.sum() > no_fab.sum()
    assert with_fab.all()


def test_the_ensemble_has_the_standard_stages(torch_target, engine_target):
    assert [name for name, _ in stages(torch_target, 4)] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert [name for name, _ in stages(engine_target, None)] == ["square"]


@pytest.mark.parametrize("name", ["fab", "fab-t"])
def test_fab_refuses_a_target_without_gradients(name, engine_target, points):
    x, y = points
    with pytest.raises(ConfigError, match="--attack square") as err:
        run_attack(name, engine_target, x, y, Budget("l2", 0.1))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="gradients"):
        minimal_adversarial(engine_target, x, y, "l2", eps=0.1)


def test_projection_onto_a_hyperplane_within_the_box():
    import torch

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 20, generator=gen, dtype=torch.float64)
    w = torch.randn(64, 20, generator=gen, dtype=torch.float64)
    c = torch.randn(64, generator=gen, dtype=torch.float64)
    for norm in ("linf", "l2"):
        d = project_to_hyperplane(x, w, c, norm)
        assert ((x + d) >= -1e-12).all() and ((x + d) <= 1 + 1e-12).all()
        reached = ((w * d).sum(1) - c).abs() < 1e-9
        corner = torch.where(w * c[:, None] > 0, 1 - x, x)  # the room in the direction sign(w_i c)
        # where the box cannot reach the hyperplane: the box's corner nearest to it
        torch.testing.assert_close(d[~reached].abs(), corner[~reached])
        assert reached.float().mean() > 0.5
        # minimal: a random feasible step that also reaches the hyperplane is never shorter
        e = d + 0.05 * torch.randn(d.shape, generator=gen, dtype=torch.float64)
        e = e - ((w * e).sum(1) - c)[:, None] * w / (w * w).sum(1, keepdim=True)
        ok = reached & ((x + e) >= 0).all(1) & ((x + e) <= 1).all(1)
        size = (lambda t: t.abs().amax(1)) if norm == "linf" else (lambda t: t.norm(dim=1))
        assert ok.sum() > 10 and (size(d[ok]) <= size(e[ok]) + 1e-12).all()
