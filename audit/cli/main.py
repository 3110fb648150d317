"""The `audit` click group and `main()`, the console-script entry point.

Each command lives in its own module `audit/cli/<name>.py` and is imported only when it is invoked
(or when its help is shown), so heavy packages (torch, onnxruntime) load only where needed.
`main()` turns a `RobustAuditError` into one line on stderr and its exit code; anything else is a bug
and keeps its traceback.

Exit codes: 0 ok, 1 error (including bad usage), 2 a robustness gate failed, 130 interrupted.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from audit import __version__
from audit.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, RobustAuditError

# command name -> "module:attribute"; the module is imported on first use.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("audit.cli.list_cmd:list_group", "List corruptions, tasks, output conventions."),
    "corrupt": ("audit.cli.corrupt:corrupt", "Write corrupted copies of a folder of images or a COCO dataset."),
    "run": ("audit.cli.run:run", "Audit an ONNX model / TensorRT engine under common corruptions."),
    "attack": ("audit.cli.attack:attack", "Adversarial audit: robust accuracy / mIoU of the engine under L-inf / L2 attacks."),
    "inspect": ("audit.cli.inspect_cmd:inspect", "Show what robustaudit reads from a model, and where each value came from."),
    "compare": ("audit.cli.compare_cmd:compare", "Paired statistics of two audits of the same data (and a CI gate)."),
    "precision": ("audit.cli.precision:precision", "Which layers of an INT8 model lose precision, clean and corrupted."),
    "report": ("audit.cli.report:report", "Render results.json file(s) as an HTML or Markdown report."),
    "finetune": ("audit.cli.finetune:finetune", "Fine-tune an ImageNet backbone on a downstream task."),
    "export": ("audit.cli.export:export", "Export a checkpoint or model to ONNX / TensorRT with parity checks."),
    "demo": ("audit.cli.demo:demo", "Run the whole pipeline on built-in synthetic data."),
    "study": ("audit.cli.study:study", "Run a grid of finetune -> export -> audit from a study file."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on demand, and which owns the exit codes.

    `main` turns a `RobustAuditError` into one line on stderr and its exit code, a usage error into
    exit code 1 (2 is reserved for failed robustness gates) and Ctrl-C into 130; it is what both
    the console script and click's `CliRunner` call.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _available(name):
            return None
        target, _ = COMMANDS[name]
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help without importing every command module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else EXIT_OK
        except RobustAuditError as exc:
            click.echo(f"error: {exc}", err=True)
            code = exc.exit_code
        except click.exceptions.Abort:
            click.echo(
                "interrupted; finished work is kept: run the same command again (with --resume where offered)",
                err=True,
            )
            code = EXIT_INTERRUPTED
        except click.ClickException as exc:
            exc.show()
            code = EXIT_ERROR
        sys.exit(code)


def _available(name: str) -> bool:
    module_name = COMMANDS[name][0].split(":")[0]
    return importlib.util.find_spec(module_name) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="robustaudit")
def cli() -> None:
    """robustaudit: audit vision models under common corruptions, as they will be deployed.

    Exit codes: 0 ok, 1 error, 2 a robustness gate (--fail-under-*) failed.
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `audit` console script; exits with the documented exit code."""
    cli.main(args=argv, prog_name="audit")


if __name__ == "__main__":  # pragma: no cover
    main()
