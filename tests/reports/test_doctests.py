"""The `Example:` sections of reports/ docstrings run (those that need no files on disk)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import reports

MODULES = [m.name for m in pkgutil.iter_modules(reports.__path__, "reports.")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
