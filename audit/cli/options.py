"""Small parsers shared by the commands' options."""

from __future__ import annotations

from audit.errors import ConfigError


def parse_int_list(text: str, option: str) -> list[int]:
    """'1,2, 3' -> [1, 2, 3]; a one-line ConfigError naming the option otherwise.

    Example:
        >>> parse_int_list("1,3", "--severities")
        [1, 3]
    """
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated integers, got '{text}'") from None
    if not values:
        raise ConfigError(f"{option} is empty")
    return values
