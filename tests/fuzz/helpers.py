"""The fuzz harness: hypothesis settings for the quick (default) and long (`-m fuzz`) budgets, and the property.

Every reader of foreign input may return or raise a `RobustAuditError`; any other exception is a bug
(a traceback for the user), and so is a hang: each example runs under an alarm.
"""

from __future__ import annotations

import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from audit.errors import RobustAuditError

QUICK, LONG = 15, 1500
# one parameter per fuzz test: the quick budget runs by default, the long one under `pytest -m fuzz`
BUDGETS = pytest.mark.parametrize("budget", [pytest.param(QUICK, id="quick"),
                                             pytest.param(LONG, id="long", marks=pytest.mark.fuzz)])
HANG_S = 20


def fuzz_settings(budget: int):
    """Settings of one fuzz run: `budget` examples, a deadline per example, no example database."""
    return settings(max_examples=budget, deadline=5000, database=None, derandomize=budget == QUICK,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


class Hang(Exception):
    """An example ran past `HANG_S` seconds."""


@contextmanager
def _alarm(seconds: int):
    def ring(signum, frame):
        raise Hang(f"no answer after {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def only_our_errors(call, *args, **kwargs):
    """Run `call`; a `RobustAuditError` with a one-line message is fine, anything else fails the example."""
    with _alarm(HANG_S):
        try:
            return call(*args, **kwargs)
        except RobustAuditError as exc:
            assert "\n" not in str(exc), f"multi-line error: {exc!r}"
            return None


def scratch(base: Path) -> Path:
    """A fresh folder under the test's `tmp_path` (each test needs a few; examples reuse them)."""
    return Path(tempfile.mkdtemp(dir=base))


# JSON / YAML-shaped values: wrong types, huge and non-finite numbers, deep nesting, odd text
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**62, max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
           | st.sampled_from(["", "..", "../x", "/etc/passwd", "a\x00b", "1e999", "NaN", "nan", "-1", "0"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                      max_leaves=12)
