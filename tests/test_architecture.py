"""The architecture is enforced: import-linter's contracts (pyproject.toml) hold, they catch a broken layer or a
cycle, and docs/architecture.md draws the same layers in the same order."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("audit", "exporters", "finetune", "reports")

pytest.importorskip("importlinter", reason="import-linter is in the test extra: pip install -e '.[test]'")


def lint(root: Path) -> subprocess.CompletedProcess:
    """Run import-linter on the tree at `root` with its own pyproject.toml (a fresh process: no cache)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", command, "--no-cache", "--config", str(root / "pyproject.toml")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_import_contracts_hold():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"Contracts: {len(contracts())} kept, 0 broken." in result.stdout, result.stdout[-3000:]


def copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(ROOT / "pyproject.toml", root)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.json", "assets"))
    return root


@pytest.mark.parametrize("module, line, broken", [
    # the core reaching up into the CLI breaks the layers
    ("audit/spec/model.py", "import audit.cli.main  # noqa", "layered"),
    # the core importing the report renderer breaks the core contract
    ("audit/metrics/segmentation.py", "import reports  # noqa", "never imports exporters"),
    # two sibling modules importing each other: a cycle
    ("audit/corruptions/registry.py", "import audit.corruptions.plugins  # noqa", "no import cycles"),
])
def test_the_contracts_catch_what_they_forbid(tmp_path, module, line, broken):
    root = copy_tree(tmp_path)
    path = root / module
    path.write_text(path.read_text() + f"\n{line}\n")
    result = lint(root)
    assert result.returncode != 0
    failed = result.stdout.split("Broken contracts")[-1]
    assert broken in failed, result.stdout[-3000:]


def test_docs_draw_the_layers_of_the_contract():
    """docs/architecture.md lists audit's packages top to bottom in the order of the layers contract."""
    layers = next(c for c in contracts() if c["type"] == "layers")["layers"]
    doc = (ROOT / "docs" / "architecture.md").read_text()
    tree = doc.split("```")[1]
    drawn = [m.group(1) for m in re.finditer(r"^audit/(\w+)", tree, re.M)]
    expected = [name.strip() for layer in layers for name in layer.split("|")]
    assert [p for p in drawn if p in expected] == expected, (drawn, expected)
    on_disk = {p.name for p in (ROOT / "audit").iterdir() if (p / "__init__.py").exists() or p.suffix == ".py"}
    on_disk = {n.removesuffix(".py") for n in on_disk} - {"__init__"}
    assert on_disk <= set(drawn), f"packages missing from docs/architecture.md: {sorted(on_disk - set(drawn))}"
