"""A small generic registry for extension points (corruptions, tasks, engines, output conventions).

Registries reject duplicate names and answer an unknown name with the nearest valid ones
(`unknown_name`: one short line, whatever the registry's size).
"""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from audit.errors import ConfigError

T = TypeVar("T")
_SHORT = 12  # a list this long is shown whole; a longer one is left to its `audit list` command


def unknown_name(kind: str, name: str, valid: Iterable[str], listing: str | None = None, among: str = "valid") -> str:
    """The one-line message for an unknown `name`: the nearest valid names (difflib), and the valid ones when
    they are few, else the command that lists them.

    Example:
        >>> unknown_name("corruption", "fogg", ["fog", "frost", "snow"], "audit list corruptions")
        "unknown corruption 'fogg'; did you mean 'fog'? (valid: fog, frost, snow)"
        >>> unknown_name("corruption", "fogg", [f"c{i}" for i in range(20)] + ["fog"], "audit list corruptions")
        "unknown corruption 'fogg'; did you mean 'fog'? (see 'audit list corruptions')"
    """
    names = list(dict.fromkeys(str(v) for v in valid))  # a name in two roles (a subset and a group) once
    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    if len(names) > _SHORT and listing:
        return f"unknown {kind} '{name}'{hint} (see '{listing}')"
    return f"unknown {kind} '{name}'{hint} ({among}: {', '.join(names) or '(none registered)'})"


class Registry(Generic[T]):
    """Name -> entry mapping with helpful errors.

    Example:
        >>> engines = Registry("engine")
        >>> @engines.register("dummy")
        ... class Dummy: ...
        >>> engines.get("dummy").__name__
        'Dummy'
    """

    def __init__(self, kind: str, listing: str | None = None):
        self.kind = kind
        self.listing = listing  # the command that lists the names (for long registries' errors)
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register `entry` under `name`; a name may be registered once."""
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Forget `name` (a plug-in refused after it registered); unknown names are ignored."""
        self._entries.pop(name, None)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""

        def deco(entry: T) -> T:
            return self.add(name, entry)

        return deco

    def get(self, name: str) -> T:
        """The entry for `name`, or a one-line `ConfigError` with the nearest valid names."""
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(unknown_name(self.kind, name, sorted(self._entries), self.listing)) from None

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
