"""`audit run --help` groups its options under headings a person can scan."""

from __future__ import annotations

import re

import click
from click.testing import CliRunner

from audit.cli.main import cli
from audit.cli.options import GroupedCommand
from audit.cli.run import OPTION_GROUPS, run


def test_run_help_lists_every_option_once_under_its_heading_in_order():
    result = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    headings = [line[:-1] for line in result.output.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert headings == list(OPTION_GROUPS), headings
    flags = re.findall(r"^  (--[a-z0-9-]+)", result.output, re.M)
    every = {opt for p in run.params if isinstance(p, click.Option) for opt in p.opts}
    assert sorted(flags) == sorted(set(flags)), "an option is listed twice"
    assert set(flags) == every, set(flags) ^ every


def test_an_option_no_heading_names_is_not_lost():
    @click.command(cls=GroupedCommand, option_groups={"Data": ("data",)})
    @click.option("--data")
    @click.option("--stray")
    def cmd(data, stray):
        """A command."""

    output = CliRunner().invoke(cmd, ["--help"]).output
    assert output.index("Data:") < output.index("--data") < output.index("Other options:") < output.index("--stray")
