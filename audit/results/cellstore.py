"""The cell store: one atomically written file pair per finished cell, and the run manifest.

OUT/cells/<corruption>-s<severity>.json holds the cell's metrics; the .npz beside it the metric's
per-image state (for bootstrap and for recomputation). OUT/run.json records what the run is (model
hash, data, corruption settings), so that `--resume` continues only the same audit.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from audit.errors import ConfigError
from audit.results.document import atomic_write_bytes, atomic_write_text


class CellStore:
    """Finished cells under OUT/cells.

    Example:
        >>> store = CellStore("runs/a")  # doctest: +SKIP
        >>> store.save(("fog", 3), {"metrics": {"top1": .5}}, {"hit1": np.zeros(3, bool)})  # doctest: +SKIP
    """

    def __init__(self, out: str | Path, folder: str = "cells", manifest: str = "run.json"):
        self.out = Path(out)
        self.folder = self.out / folder
        self.manifest = manifest  # another kind of run (audit attack) keeps its own folder and manifest

    @staticmethod
    def key(cell: tuple[str, int]) -> str:
        return f"{cell[0]}-s{cell[1]}"

    def has(self, cell: tuple[str, int]) -> bool:
        return (self.folder / f"{self.key(cell)}.json").is_file() and (self.folder / f"{self.key(cell)}.npz").is_file()

    def save(self, cell: tuple[str, int], record: dict[str, Any], state: dict[str, np.ndarray]) -> None:
        """Write the state first and the record last: a record on disk means a complete cell."""
        self.folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez_compressed(buf, **state)
        atomic_write_bytes(self.folder / f"{self.key(cell)}.npz", buf.getvalue())
        atomic_write_text(self.folder / f"{self.key(cell)}.json", json.dumps(record, allow_nan=False))

    def load(self, cell: tuple[str, int]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """A finished cell's record and state; `ConfigError` naming the file if it is damaged."""
        path = self.folder / f"{self.key(cell)}.json"
        try:
            record = json.loads(path.read_bytes())
            with np.load(path.with_suffix(".npz"), allow_pickle=False) as npz:
                state = {k: npz[k] for k in npz.files}
        except Exception as exc:  # noqa: BLE001 - json, zip and npy parsers raise many types on damaged files
            raise ConfigError(f"the finished cell {path} (or its .npz) is damaged ({type(exc).__name__}); "
                              f"delete both files and run again with --resume") from None
        if not isinstance(record, dict):
            raise ConfigError(f"the finished cell {path} is damaged (not an object); delete it and run again with --resume")
        return record, state

    def check_manifest(self, manifest: dict[str, Any], resume: bool) -> None:
        """Start a new run (OUT must be empty of cells) or resume the same one; write the manifest."""
        path = self.out / self.manifest
        if path.is_file():
            if not resume:
                raise ConfigError(f"{self.out} already holds an audit; use --resume to continue it or another --out")
            try:
                old = json.loads(path.read_bytes())
            except (OSError, ValueError, RecursionError) as exc:
                raise ConfigError(f"{path} is damaged ({type(exc).__name__}); use another --out") from None
            if not isinstance(old, dict):
                raise ConfigError(f"{path} is damaged (not an object); use another --out")
            diff = [k for k in sorted(set(old) | set(manifest)) if old.get(k) != manifest.get(k)]
            if "model_sha256" in diff:  # the graph or a file it loads (external weights) is not the one audited
                raise ConfigError(f"--resume: the model is not the one {self.out} audited (its files hash to "
                                  f"{str(manifest.get('model_sha256'))[:12]}, the audit's to {str(old.get('model_sha256'))[:12]}); "
                                  "use another --out")
            if diff:
                raise ConfigError(f"--resume: {self.out} holds a different audit ({', '.join(diff)} differ); use another --out")
        elif self.folder.is_dir() and any(self.folder.iterdir()) and not resume:
            raise ConfigError(f"{self.out} already holds cells; use --resume or another --out")
        atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True))
