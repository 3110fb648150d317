"""A small generic registry for extension points (corruptions, tasks, engines, output conventions).

Registries reject duplicate names and answer an unknown name with the valid ones.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from audit.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry mapping with helpful errors.

    Example:
        >>> engines = Registry("engine")
        >>> @engines.register("dummy")
        ... class Dummy: ...
        >>> engines.get("dummy").__name__
        'Dummy'
    """

    def __init__(self, kind: str):
        self.kind = kind
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
        """The entry for `name`, or a `ConfigError` that lists the valid names."""
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries)) or "(none registered)"
            raise ConfigError(f"unknown {self.kind} '{name}'; valid: {valid}") from None

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
