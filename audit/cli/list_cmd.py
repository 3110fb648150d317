"""`audit list`: corruptions (names, groups, subsets), corruption profiles, output conventions."""

from __future__ import annotations

import json

import click


@click.group("list")
def list_group() -> None:
    """List what robustaudit knows: corruptions, profiles, output conventions."""


@list_group.command("corruptions")
@click.option("--subset", default="all", show_default=True,
              help="all, a suite (benchmark, holdout, cbar), a group (noise, blur, weather, digital) or names.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def corruptions(subset: str, as_json: bool) -> None:
    """Corruption names with their group and subset, i.e. suite (benchmark counts in mPC; holdout and
    cbar, ImageNet-C-bar, are reported apart).

    Example:

        audit list corruptions --subset noise
    """
    from audit.corruptions import get, names

    rows = [{"name": n, "group": get(n).group, "subset": get(n).subset, "random": get(n).random} for n in names(subset)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max([20, *(len(r["name"]) for r in rows)])
    click.echo(f"{'name':{width}s} {'group':8s} {'subset':10s}")
    for row in rows:
        click.echo(f"{row['name']:{width}s} {row['group']:8s} {row['subset']:10s}")


@list_group.command("profiles")
def profiles() -> None:
    """Corruption parameter profiles."""
    from audit.corruptions import PROFILES

    for name, text in PROFILES.items():
        click.echo(f"{name:12s} {text}")


@list_group.command("conventions")
def conventions() -> None:
    """Model output conventions `audit run` can read (--output-convention)."""
    from audit.modelspec import OUTPUT_CONVENTIONS

    for name, text in OUTPUT_CONVENTIONS.items():
        click.echo(f"{name:24s} {text}")
