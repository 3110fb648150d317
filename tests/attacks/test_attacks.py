"""The attacks on the tiny classifier: the properties every attack must have, and their ordering.

Budgets: the tiny model's faint gratings (amplitude 0.04) are broken between 1/255 and 8/255 (L-inf)
and 0.1 and 0.5 (L2), so the robust accuracies below sit between 0 and 1 rather than at the ends.
"""

from __future__ import annotations

import numpy as np
import pytest

from audit.attacks import Budget, attack_names, run_attack
from audit.attacks.budget import norms
from audit.errors import ConfigError

FAST = {"steps": 20, "queries": 300}  # enough to order the attacks on this model; defaults are 10/100/1000
LINF = [0, 1 / 255, 2 / 255, 4 / 255, 8 / 255]
L2 = [0, 0.1, 0.25, 0.5]


def clean_correct(target, points):
    x, y = points
    return target.logits(x).argmax(1) == y


@pytest.mark.parametrize("name", attack_names("classification"))
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_eps_zero_is_clean_accuracy(name, norm, torch_target, points):
    x, y = points
    out = run_attack(name, torch_target, x, y, Budget(norm, 0.0))
    np.testing.assert_array_equal(out.correct, clean_correct(torch_target, points))
    np.testing.assert_array_equal(out.x_adv, x)
    assert (out.queries == 1).all() and out.attack == name and out.source == "torch"


@pytest.mark.parametrize("name", ["fgsm", "pgd", "apgd-ce", "apgd-dlr", "apgd-t", "square", "autoattack"])
@pytest.mark.parametrize("budget", [Budget("linf", 8 / 255), Budget("l2", 0.5)], ids=str)
def test_outcome_respects_the_budget_and_matches_the_target(name, budget, torch_target, points):
    x, y = points
    out = run_attack(name, torch_target, x, y, budget, seed=1, **FAST)
    assert out.x_adv.dtype == np.float32 and out.x_adv.shape == x.shape
    assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    assert norms(out.x_adv - x, budget.norm).max() <= budget.eps * (1 + 1e-5) + 1e-6
    np.testing.assert_array_equal(out.correct, torch_target.logits(out.x_adv).argmax(1) == y)
    assert out.correct.sum() < clean_correct(torch_target, points).sum()  # every attack breaks some at this budget
    assert out.queries.dtype == np.int64 and (out.queries >= 1).all()
    levels = np.round(out.x_adv * 255)
    assert not np.allclose(out.x_adv, levels / 255, atol=1e-7)  # not re-quantised to uint8


# Slow: square and AutoAttack over every budget of the grid (about 25 CPU s); the default run checks
# their budget, target and breaking power above and AutoAttack's strength against PGD below
@pytest.mark.parametrize("name", ["pgd", "apgd-ce", "apgd-t", pytest.param("square", marks=pytest.mark.slow),
                                  pytest.param("autoattack", marks=pytest.mark.slow)])
@pytest.mark.parametrize("norm, grid", [("linf", LINF), ("l2", L2)])
def test_robust_accuracy_does_not_rise_with_the_budget(name, norm, grid, torch_target, points):
    x, y = points
    acc = [run_attack(name, torch_target, x, y, Budget(norm, e), seed=0, **FAST).correct.sum() for e in grid]
    assert all(b <= a for a, b in zip(acc, acc[1:])), acc
    assert acc[0] > acc[-1]


@pytest.mark.parametrize("eps", [4 / 255, 6 / 255])
def test_pgd_is_at_least_as_strong_as_fgsm(eps, torch_target, points):
    x, y = points
    fgsm = run_attack("fgsm", torch_target, x, y, Budget("linf", eps))
    pgd = run_attack("pgd", torch_target, x, y, Budget("linf", eps), seed=0)
    assert pgd.correct.sum() <= fgsm.correct.sum()
    assert fgsm.correct.sum() < len(x)


@pytest.mark.parametrize("budget", [Budget("linf", 2 / 255), Budget("linf", 4 / 255), Budget("l2", 0.25)], ids=str)
def test_autoattack_is_at_least_as_strong_as_pgd(budget, torch_target, points):
    x, y = points
    pgd = run_attack("pgd", torch_target, x, y, budget, seed=0)
    aa = run_attack("autoattack", torch_target, x, y, budget, seed=0, **FAST)
    assert aa.correct.sum() <= pgd.correct.sum()
    assert aa.attack == "autoattack"
    assert (aa.queries[aa.correct] > FAST["steps"]).all()  # the unbroken went through every stage


# Slow: AutoAttack (three runs of four stages, about 11 CPU s) seeds the stages replayed here by default
@pytest.mark.parametrize("name", ["pgd", "apgd-ce", "square", pytest.param("autoattack", marks=pytest.mark.slow)])
def test_same_seed_replays_other_seed_differs(name, torch_target, points):
    x, y = points
    b = Budget("linf", 2 / 255)
    one = run_attack(name, torch_target, x, y, b, seed=3, **FAST)
    two = run_attack(name, torch_target, x, y, b, seed=3, **FAST)
    other = run_attack(name, torch_target, x, y, b, seed=4, **FAST)
    np.testing.assert_array_equal(one.x_adv, two.x_adv)
    np.testing.assert_array_equal(one.queries, two.queries)
    assert not np.array_equal(one.x_adv, other.x_adv)


def test_batching_and_progress(torch_target, points):
    x, y = points
    seen = []
    out = run_attack("pgd", torch_target, x, y, Budget("linf", 2 / 255), batch_size=20, progress=seen.append)
    assert seen == [20, 20, 8] and len(out.correct) == len(x)


def test_pgd_counts_its_queries(torch_target, points):
    x, y = points
    out = run_attack("pgd", torch_target, x, y, Budget("linf", 8 / 255), steps=7)
    clean = clean_correct(torch_target, points)
    assert (out.queries[~clean] == 1).all()
    assert out.queries.max() <= 1 + 7 + 1 and (out.queries[clean] >= 2).all()


def test_square_runs_on_the_engine_within_its_query_budget(engine_target, points):
    x, y = points
    out = run_attack("square", engine_target, x, y, Budget("linf", 8 / 255), queries=200)
    assert out.source == "engine" and out.queries.max() <= 1 + 200
    assert out.correct.sum() < clean_correct(engine_target, points).sum()
    assert out.queries.min() < out.queries.max()  # the broken stopped early


def test_autoattack_on_an_engine_is_square_only_and_says_so(engine_target, points):
    x, y = points
    out = run_attack("autoattack", engine_target, x, y, Budget("linf", 4 / 255), queries=100)
    assert out.attack == "autoattack(square only: target not differentiable)"
    assert out.queries.max() <= 1 + 100


@pytest.mark.parametrize("name", ["fgsm", "pgd", "apgd-ce", "apgd-dlr", "apgd-t"])
def test_white_box_attacks_refuse_a_target_without_gradients(name, engine_target, points):
    x, y = points
    with pytest.raises(ConfigError, match="--attack square") as err:
        run_attack(name, engine_target, x, y, Budget("linf", 1 / 255))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs, words", [
    ({"name": "cw"}, "unknown attack 'cw' \\(valid: .*pgd.*square"),
    ({"x": np.zeros((2, 1, 16, 16), np.float32)}, r"\[N, 3, H, W\]"),
    ({"x": np.full((48, 3, 16, 16), 255, np.uint8)}, "floats in"),
    ({"x": np.full((48, 3, 16, 16), 2.0, np.float32)}, r"\[0, 1\]"),
    ({"y": np.zeros(3, np.int64)}, "labels"),
    ({"y": np.full(48, 4, np.int64)}, r"class indices in \[0, 3\]"),
    ({"steps": 0}, "steps"),
    ({"queries": -5}, "queries"),
    ({"budget": ("linf", 0.1)}, "Budget"),
])
def test_bad_input_is_a_one_line_config_error(kwargs, words, torch_target, points):
    x, y = points
    args = {"name": "pgd", "x": x, "y": y, "budget": Budget("linf", 1 / 255), **kwargs}
    with pytest.raises(ConfigError, match=words) as err:
        run_attack(args.pop("name"), torch_target, args.pop("x"), args.pop("y"), args.pop("budget"), **args)
    assert "\n" not in str(err.value)


def test_the_registry_rejects_duplicates():
    from audit.attacks import register_attack

    with pytest.raises(ValueError, match="already registered"):
        register_attack("pgd", white_box=True, summary="again")(lambda *a, **k: None)


def test_square_l2_draws_its_squares_per_image():
    from audit.attacks.square import _corner, _etas, _window

    rng = np.random.default_rng(0)
    vh, vw = _corner(rng, 16, 12, 10, 5)
    assert vh.max() <= 12 - 5 and vw.max() <= 10 - 5
    assert len(set(zip(vh.ravel(), vw.ravel()))) > 8  # not one position for the batch
    d = np.arange(16 * 3 * 12 * 10, dtype=float).reshape(16, 3, 12, 10)
    got = d[_window(vh, vw, 5, 3)]
    for i in range(16):
        np.testing.assert_array_equal(got[i], d[i, :, vh[i, 0]:vh[i, 0] + 5, vw[i, 0]:vw[i, 0] + 5])
    etas = _etas(5, 16, rng)
    assert etas.shape == (16, 1, 5, 5) and np.allclose((etas ** 2).sum(axis=(2, 3)), 1)
    assert 0 < sum(np.allclose(e[0], etas[0, 0].T) and not np.allclose(e[0], etas[0, 0]) for e in etas) < 16
