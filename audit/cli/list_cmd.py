"""`audit list`: corruptions (names, groups, subsets), corruption profiles, output conventions."""

from __future__ import annotations

import json

import click

from audit.cli.options import corruption_plugin_option


@click.group("list")
def list_group() -> None:
    """List what robustaudit knows: corruptions, profiles, output conventions."""


@list_group.command("corruptions")
@click.option("--subset", default="all", show_default=True,
              help="all, a suite (benchmark, holdout, cbar, user), a group (noise, blur, weather, digital, cbar, a "
                   "plug-in's) or names.")
@corruption_plugin_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def corruptions(subset: str, corruption_plugins: tuple[str, ...], as_json: bool) -> None:
    """Corruption names with their group, subset (suite) and origin.

    benchmark counts in mPC; holdout and cbar (ImageNet-C-bar) are reported apart; user: plug-ins
    (installed packages with a `robustaudit.corruptions` entry point, or --corruption-plugin files),
    origin says which.

    Example:

        audit list corruptions --subset noise

        audit list corruptions --corruption-plugin lens_dirt.py --subset user
    """
    from audit.corruptions import get, names
    from audit.corruptions.plugins import load_files

    load_files(corruption_plugins)
    rows = [{"name": n, "group": get(n).group, "subset": get(n).subset, "origin": get(n).origin, "random": get(n).random}
            for n in names(subset)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max([20, *(len(r["name"]) + 1 for r in rows)])
    click.echo(f"{'name':{width}s} {'group':8s} {'subset':10s} origin")
    for row in rows:
        click.echo(f"{row['name']:{width}s} {row['group']:8s} {row['subset']:10s} {row['origin']}")


@list_group.command("profiles")
def profiles() -> None:
    """Corruption parameter profiles."""
    from audit.corruptions import PROFILES

    for name, text in PROFILES.items():
        click.echo(f"{name:12s} {text}")


@list_group.command("conventions")
def conventions() -> None:
    """Model output conventions `audit run` can read (--output-convention)."""
    from audit.spec.model import OUTPUT_CONVENTIONS

    for name, text in OUTPUT_CONVENTIONS.items():
        click.echo(f"{name:24s} {text}")
