"""The progress bar every long command shows on the terminal (images audited, attacked or corrupted)."""

from __future__ import annotations

from typing import Any


def progress_bar(total: int, desc: str, enabled: bool = True) -> Any:
    """A tqdm bar over `total` images, labelled `desc`, silent when not `enabled` (`--quiet`).

    Example:
        >>> with progress_bar(3, "auditing", enabled=False) as bar:
        ...     _ = bar.update(3)
    """
    from tqdm import tqdm  # imported when a bar is made: `audit --help` stays fast

    return tqdm(total=total, unit="img", desc=desc, disable=not enabled, dynamic_ncols=True, smoothing=0.1)
