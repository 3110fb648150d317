"""The exception hierarchy of robustaudit.

Every error a user can cause derives from `RobustAuditError`. `audit.cli.main.main` turns one into a
single line on stderr that says what went wrong and what to do, and exit code 1; anything else is a
bug and keeps its traceback. `GateFailed` is not an error but a verdict: exit code 2.

Exit codes (documented in the README): 0 ok, 1 error, 2 a robustness gate failed, 130 interrupted.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_GATE_FAILED = 2
EXIT_INTERRUPTED = 130


class RobustAuditError(Exception):
    """Base class of every error caused by input, configuration or environment.

    The message is one line: what was received and what to do about it. Control characters (new
    lines, terminal escapes) that foreign input smuggles into a message are shown escaped.
    """

    exit_code = EXIT_ERROR

    def __str__(self) -> str:
        text = super().__str__()
        if text.isprintable():
            return text
        return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class ConfigError(RobustAuditError):
    """Invalid option values, unknown names, inconsistent flags or configuration files."""


class CorruptionError(RobustAuditError):
    """An image or a request the corruption engine cannot handle (size, dtype, name, severity)."""


class DatasetError(RobustAuditError):
    """Missing, unreadable or malformed data: images, annotations, masks, label files."""


class ModelError(RobustAuditError):
    """A model file that cannot be loaded, or whose inputs / outputs do not fit the task."""


class EngineError(RobustAuditError):
    """An inference engine or execution provider that cannot start or run (missing GPU, package, ...)."""


class OutputError(RobustAuditError):
    """An output folder or file that cannot be written: a file in the way, no permission, a full disk."""


class ResultsError(RobustAuditError):
    """A results document that is missing, of the wrong kind, or of an unsupported version."""


class CheckpointError(RobustAuditError):
    """A training checkpoint that cannot be read or does not fit the requested model."""


class ExportError(RobustAuditError):
    """An export that failed, or whose parity check against PyTorch failed."""


class StudyError(RobustAuditError):
    """A study combination whose stage failed; the message names the combination and the cause."""


class MissingDependencyError(RobustAuditError):
    """An optional package (an extra) is needed for this command but is not installed."""

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed; "
            f"install it with: pip install 'robustaudit[{extra}]'"
        )
        self.package = package
        self.extra = extra


class GateFailed(RobustAuditError):
    """A robustness gate (--fail-under-rpc / --fail-under-mpc) was not met. Exit code 2."""

    exit_code = EXIT_GATE_FAILED


def require(module: str, extra: str, purpose: str):
    """Import an optional module, or raise `MissingDependencyError` naming the extra to install.

    Example:
        >>> ort = require("onnxruntime", "cpu", "Running ONNX models")  # doctest: +SKIP
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # the package or one of its shared libraries is missing
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from exc
