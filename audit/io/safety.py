"""Paths from data files stay inside their root; outputs stay inside --out and are written like any tool's.

Datasets are foreign input: a COCO `file_name`, a mask path or a list entry is a name chosen by whoever
made the file. `safe_join` refuses names that are absolute, climb with `..`, carry a drive or a NUL,
or lead through a symbolic link out of the root (as `tarfile`'s data filter refuses them), with a
`DatasetError` naming the entry. `prepare_out` turns a file in the way or an unwritable folder into
one `OutputError`; `write_error` does the same for a failed write (full disk, permissions);
`output_mode` is the mode a plain `open()` would give a new file under the user's umask.

Example:
    >>> safe_join("/data/val2017", "000000000139.jpg", "COCO file_name")
    PosixPath('/data/val2017/000000000139.jpg')
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from audit.errors import DatasetError, OutputError

_DRIVE = re.compile(r"^[A-Za-z]:")


def check_name(rel: object, what: str) -> str:
    """`rel` as a relative POSIX-style name that stays below its root; `DatasetError` naming it otherwise.

    Example:
        >>> check_name("a/b.png", "file_name")
        'a/b.png'
    """
    if not isinstance(rel, str) or not rel.strip():
        raise DatasetError(f"{what} {str(rel)[:80]!r} is not a file name; fix the entry in the data file")
    shown = repr(rel[:120])
    if "\x00" in rel:
        raise DatasetError(f"{what} {shown} contains a NUL byte; fix the entry in the data file")
    parts = re.split(r"[\\/]", rel)
    if rel.startswith(("/", "\\")) or _DRIVE.match(rel):
        raise DatasetError(f"{what} {shown} is an absolute path; data files may only name files below their folder")
    if ".." in parts:
        raise DatasetError(f"{what} {shown} climbs out of its folder with '..'; data files may only name files below their folder")
    return rel


def safe_join(root: str | Path, rel: object, what: str) -> Path:
    """`root / rel`, refused (`DatasetError` naming the entry) unless it resolves inside `root`.

    Catches absolute and climbing names, and symbolic links (of the file or a folder on the way)
    that point out of `root`.

    Example:
        >>> safe_join("/data/val2017", "../secret.png", "COCO file_name")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        DatasetError: ...
    """
    root = Path(root)
    path = root / check_name(rel, what)
    check_inside(root, path, what, rel)
    return path


def check_inside(root: str | Path, path: str | Path, what: str, shown: object | None = None) -> None:
    """`DatasetError` if `path` (following symbolic links) is not inside `root` (following them too)."""
    try:
        real = Path(os.path.realpath(path))
        real.relative_to(os.path.realpath(root))
    except ValueError:
        name = repr(str(shown if shown is not None else path)[:120])
        raise DatasetError(f"{what} {name} leads out of {root} (through a symbolic link); "
                           f"data may only name files below their folder") from None
    except OSError as exc:  # a symlink loop, a name too long
        raise DatasetError(f"{what} {str(shown if shown is not None else path)[:120]!r} cannot be resolved ({exc.strerror})") from None


def check_regular_file(path: str | Path, what: str) -> None:
    """`DatasetError` if `path` exists but is not a regular file (a FIFO would block a read forever, a
    device never ends); a missing file raises `FileNotFoundError` for the caller's own message."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise DatasetError(f"{what} {path} is not a regular file (a folder, a pipe or a device); give a file")


def output_path(out: str | Path, *parts: str) -> Path:
    """`out / parts...`, refused (`OutputError`) unless it stays inside `out`, whatever names the data chose."""
    path = Path(out).joinpath(*parts)
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(out))
    except ValueError:
        raise OutputError(f"refusing to write {path}: it is outside the output folder {out}") from None
    return path


def current_umask() -> int:
    """The process umask, read without changing it where /proc allows (threads may be writing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def output_mode() -> int:
    """The mode a new file gets from a plain `open()`: 0o666 less the umask (mkstemp would give 0o600)."""
    return 0o666 & ~current_umask()


def prepare_out(out: str | Path, what: str = "--out") -> Path:
    """Create the output folder (and its parents); one `OutputError` if a file is in the way or it is not writable.

    Example:
        >>> prepare_out("runs/a")  # doctest: +SKIP
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{what} {out} is a file, not a folder; give a folder path (or move the file away)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"{what} {out}: a part of the path is a file, not a folder; give another folder path") from None
    except OSError as exc:
        raise write_error(out, exc, what) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {out} is not writable by you; choose another folder or fix its permissions")
    return out


def write_error(path: str | Path, exc: OSError, what: str = "output") -> OutputError:
    """The one-line `OutputError` for an `OSError` met while writing `path` (full disk, permissions...)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"the disk is full writing {path}; free space and run the same command again "
                           f"(finished work is kept; use --resume where offered)")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"cannot write {path} ({exc.strerror}); choose another {what} folder or fix its permissions")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return OutputError(f"cannot write {path}: a file or folder of that name is in the way ({exc.strerror}); "
                           f"choose another {what} folder")
    return OutputError(f"cannot write {path} ({exc.strerror or exc}); check the {what} folder and run again")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], what: str = "output", fsync: bool = True) -> None:
    """Write `path` atomically: `write(fh)` fills a temporary file in the same folder, which is renamed.

    The file appears complete or not at all, so what was finished before a failure stays intact; it
    gets the user's umask mode (not mkstemp's 0600). A failed write is one `OutputError`.

    Example:
        >>> atomic_write("out/a.txt", lambda fh: fh.write(b"hi"))  # doctest: +SKIP
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise write_error(path, exc, what) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), output_mode())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, exc, what) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
