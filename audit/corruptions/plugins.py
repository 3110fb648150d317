"""Corruption plug-ins: corruptions registered by other packages or by files the user names.

Two sources, both using the public `@audit.corruptions.corruption` decorator:

- the entry point group `robustaudit.corruptions` of installed distributions: each entry point names a
  module that registers corruptions when imported (or a callable that registers them when called);
  loaded lazily by the registry, once per process, so worker processes and Ray workers get them too;
- files given with `--corruption-plugin PATH.py` (`load_files`): imported as modules, once per process
  and path; the runner passes the paths to its workers.

What a plug-in registers is user-defined: subset "user", never in the benchmark mPC, with the plug-in
as `Corruption.origin`. Each of its corruptions is checked on load (`check_corruption`); a broken one
refuses the whole plug-in with one `CorruptionError` line. A plug-in is code the user chose to run,
trusted like the model graph.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import warnings
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Callable, Sequence

from audit.corruptions.registry import CORRUPTIONS, FAMILY_MODULES, registering_plugin
from audit.corruptions.validate import check_corruption
from audit.errors import ConfigError, CorruptionError, RobustAuditError
from audit.io.hashing import sha256_of

ENTRY_POINT_GROUP = "robustaudit.corruptions"
CONTRACT = "see the README, 'Your own corruptions'"


@dataclass(frozen=True)
class Plugin:
    """A loaded plug-in: where it came from and what it registered."""

    kind: str  # "entry point" or "file"
    origin: str  # the distribution's name, or the file's resolved path
    source: str  # "name = module:attr" of the entry point, or the file's path
    version: str | None = None  # the distribution's version (entry points)
    sha256: str | None = None  # the file's hash (files)
    corruptions: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def describe(self) -> dict[str, Any]:
        """The plug-in as the results document and the run manifest hold it."""
        return {"kind": self.kind, "origin": self.origin, "source": self.source, "version": self.version,
                "sha256": self.sha256, "corruptions": list(self.corruptions), "warnings": list(self.warnings)}


_LOADED: dict[str, Plugin] = {}  # key: "ep:<entry point>" or "file:<resolved path>"
_SCANNED = False
_SCANNING = False


def loaded() -> list[Plugin]:
    """The plug-ins loaded in this process, in load order."""
    return list(_LOADED.values())


def load_entry_points() -> None:
    """Load every `robustaudit.corruptions` entry point not loaded yet (cheap after the first call)."""
    global _SCANNED, _SCANNING
    if _SCANNED or _SCANNING:  # _SCANNING: the load-time checks call back into the registry
        return
    _SCANNING = True
    try:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            key = f"ep:{ep.name}={ep.value}"
            if key not in _LOADED:
                _LOADED[key] = _load_entry_point(ep)
        _SCANNED = True
    finally:
        _SCANNING = False


def _load_entry_point(ep: EntryPoint) -> Plugin:
    dist = getattr(ep, "dist", None)
    origin = dist.name if dist is not None else ep.name
    label = f"'{ep.name} = {ep.value}' (distribution {origin}, entry point group {ENTRY_POINT_GROUP})"
    added, notes = _register(label, origin, ep.load, modules=[ep.value.split(":")[0].strip()])
    return Plugin("entry point", origin, f"{ep.name} = {ep.value}", version=dist.version if dist is not None else None,
                  corruptions=tuple(added), warnings=tuple(notes))


def load_builtins() -> None:
    """Register the built-in families (in the protocol's order), then the installed entry points.

    Idempotent: a module is imported once, an entry point loaded once.
    """
    for family in FAMILY_MODULES:
        importlib.import_module(f"audit.corruptions.{family}")
    load_entry_points()  # after the built-ins: a plug-in may not take their names


def load_files(paths: Sequence[str | Path]) -> list[Plugin]:
    """Import each plug-in file (once per process and path) and return their `Plugin`s.

    Example:
        >>> load_files(["my_lens_dirt.py"])  # doctest: +SKIP
        [Plugin(kind='file', origin='/home/me/my_lens_dirt.py', ...)]
    """
    load_builtins()  # built-ins and entry points first: a file may not take their names
    return [load_file(p) for p in paths]


def load_file(path: str | Path) -> Plugin:
    """Import one plug-in file; `ConfigError` if it is not a readable .py file."""
    resolved = Path(path).expanduser().resolve()
    key = f"file:{resolved}"
    if key in _LOADED:
        return _LOADED[key]
    if resolved.suffix != ".py" or not resolved.is_file():
        raise ConfigError(f"--corruption-plugin {path}: not a Python file (.py); give the path of a file that "
                          f"registers corruptions with @audit.corruptions.corruption")
    digest = sha256_of(resolved)
    module = f"robustaudit_plugin_{digest[:16]}"
    added, notes = _register(f"{resolved}", str(resolved), lambda: _import_file(module, resolved), modules=[module])
    plugin = Plugin("file", str(resolved), str(path), sha256=digest, corruptions=tuple(added), warnings=tuple(notes))
    _LOADED[key] = plugin
    return plugin


def _import_file(module: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    spec.loader.exec_module(mod)
    return mod


def _register(label: str, origin: str, load: Callable[[], Any], modules: list[str]) -> tuple[list[str], list[str]]:
    """Run a plug-in's registration and check what it registered; undo it all on any failure."""
    before = set(CORRUPTIONS.names())
    try:
        with registering_plugin(origin):
            obj = load()
            if not set(CORRUPTIONS.names()) - before and callable(obj) and not inspect.ismodule(obj):
                obj()
        added = [n for n in CORRUPTIONS.names() if n not in before]
        if not added:
            raise CorruptionError("it registered no corruption; decorate a kernel with @audit.corruptions.corruption")
        notes = [note for name in added for note in check_corruption(name)]
    except Exception as exc:  # noqa: BLE001 - a plug-in is foreign code: any failure refuses it, in one line
        _undo(before, modules)
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, RobustAuditError):
            what = f"{type(exc).__name__}: {what}"
        raise CorruptionError(f"corruption plug-in {label} refused: {what} ({CONTRACT})") from None
    for note in notes:
        warnings.warn(f"corruption plug-in {label}: {note}", stacklevel=2)
    return added, notes


def _undo(before: set[str], modules: list[str]) -> None:
    for name in [n for n in CORRUPTIONS.names() if n not in before]:
        CORRUPTIONS.remove(name)
    for module in modules:  # so that loading it again runs it again (and fails the same way)
        sys.modules.pop(module, None)


def unload(plugin: Plugin) -> None:
    """Forget a plug-in and its corruptions (tests; a process that loads another plug-in set)."""
    global _SCANNED
    for name in plugin.corruptions:
        CORRUPTIONS.remove(name)
    for key in [k for k, v in _LOADED.items() if v is plugin]:
        del _LOADED[key]
    module = (plugin.source.split("=", 1)[1].split(":")[0].strip() if plugin.kind == "entry point"
              else f"robustaudit_plugin_{plugin.sha256[:16]}")
    sys.modules.pop(module, None)
    _SCANNED = _SCANNED and plugin.kind != "entry point"
