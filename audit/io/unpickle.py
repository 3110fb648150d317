"""A restricted unpickler for the one foreign pickle format robustaudit reads: CIFAR-10 python batches.

A pickle is a program: `pickle.load` calls whatever callable the file names, so a crafted
`test_batch` runs code before any check of its content. `load_restricted` runs only the pickle
opcodes for plain containers (dict, list, tuple, bytes, str, int, float, bool, None) and resolves
only the few globals that NumPy arrays and Python 2 byte strings pickle through; any other global
stops the load with a `DatasetError` before it is called.

Example:
    >>> import io, pickle
    >>> load_restricted(io.BytesIO(pickle.dumps({b"labels": [1, 2]})), "batch")
    {b'labels': [1, 2]}
"""

from __future__ import annotations

import io
import pickle
from typing import BinaryIO

from audit.errors import DatasetError

# (module, name) -> the object it stands for. Each rebuilds data, none runs code the file chooses:
# ndarray / dtype are constructors whose __setstate__ only takes shape, dtype and raw bytes (or
# already-restricted objects), `_codecs.encode` is how protocol 2 spells a bytes literal.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),
}


def _reconstruct(subtype, shape, dtype):
    """numpy's `_reconstruct`, only as numpy itself writes it: an empty ndarray that BUILD then fills."""
    import numpy as np

    if subtype is not np.ndarray or tuple(shape) != (0,):
        raise pickle.UnpicklingError("it rebuilds an array in a way numpy never writes")
    return np.ndarray.__new__(np.ndarray, (0,), dtype)


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a data pickle never needs")
        if name == "_reconstruct":
            return _reconstruct
        import importlib

        import numpy

        # numpy 1 files name numpy.core, numpy 2 files numpy._core: either loads under either numpy
        if hasattr(numpy, "_core"):
            module = module.replace("numpy.core", "numpy._core")
        else:
            module = module.replace("numpy._core", "numpy.core")
        return getattr(importlib.import_module(module), name)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("it uses persistent ids, which a data pickle never needs")


def load_restricted(fh: BinaryIO, source: str):
    """Unpickle `fh` (bytes strings stay bytes, as CIFAR's Python 2 pickles need) with only data globals.

    Any other global, a truncated or malformed stream: `DatasetError` naming `source`, and nothing ran.
    """
    try:
        return _Restricted(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError) as exc:
        raise DatasetError(f"{source} is not a data pickle ({exc}); it was not loaded, replace the file") from None
    except Exception as exc:  # noqa: BLE001 - malformed opcodes raise ValueError, TypeError, KeyError, IndexError...
        raise DatasetError(f"{source} is not a valid pickle ({type(exc).__name__}: {str(exc)[:100]}); replace the file") from None


def loads_restricted(data: bytes, source: str):
    """`load_restricted` on bytes in memory."""
    return load_restricted(io.BytesIO(data), source)
