"""The threat model: Budget and parse_eps validation, projection and the budget check."""

from __future__ import annotations

import numpy as np
import pytest

from audit.attacks import Budget, parse_eps
from audit.attacks.budget import check_within, norms, project
from audit.errors import ConfigError


def test_parse_eps_numbers_and_fractions_in_order():
    assert parse_eps("0,1/255, 2/255,8/255") == [0.0, 1 / 255, 2 / 255, 8 / 255]
    assert parse_eps("0.5") == [0.5]


@pytest.mark.parametrize("text, words", [("", "comma-separated"), ("1/255,,2/255", "comma-separated"),
                                         ("-1/255", "negative"), ("abc", "not a number"), ("1/0", "not a number"),
                                         ("1/255,1/255", "twice"), ("nan", "not a number")])
def test_parse_eps_bad_input_is_one_line_config_error(text, words):
    with pytest.raises(ConfigError, match=words) as err:
        parse_eps(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("norm, eps, words", [("l1", 0.1, "unknown attack norm"), ("linf", -0.1, ">= 0"),
                                              ("l2", float("inf"), ">= 0"), ("linf", 8, "8/255"), ("linf", "x", "number")])
def test_budget_rejects_bad_norm_and_eps(norm, eps, words):
    with pytest.raises(ConfigError, match=words):
        Budget(norm, eps)


def test_budget_is_frozen_and_l2_may_exceed_one():
    b = Budget("l2", 3.0)
    assert b.eps == 3.0
    with pytest.raises(Exception):
        b.eps = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("budget", [Budget("linf", 4 / 255), Budget("l2", 0.3)])
def test_project_lands_inside_the_ball_and_the_box(budget):
    rng = np.random.default_rng(0)
    x = rng.random((5, 3, 8, 8), dtype=np.float32)
    far = x + rng.normal(0, 0.5, x.shape).astype(np.float32)
    p = project(far, x, budget)
    check_within(p, x, budget)
    assert (norms(p - x, budget.norm) <= budget.eps + 1e-6).all()
    near = np.clip(x + 1e-4, 0, 1).astype(np.float32)
    np.testing.assert_array_equal(project(near, x, budget), near)  # already inside: untouched


def test_check_within_catches_a_violation():
    x = np.full((1, 3, 4, 4), 0.5, np.float32)
    with pytest.raises(RuntimeError, match="left the"):
        check_within(x + np.float32(2 / 255), x, Budget("linf", 1 / 255))


@pytest.mark.parametrize("module", ["audit.attacks", "audit.attacks.budget", "audit.attacks.apgd", "audit.attacks.square"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
