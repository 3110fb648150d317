"""The documentation: the MkDocs site builds with --strict, the README stays short and its links resolve.

A broken link or anchor in `docs/` fails `mkdocs build --strict` (mkdocs.yml turns link and anchor
problems into warnings); the README is not part of the site, so its relative links and anchors are
checked here. The README's test command must be what `.ci/run` runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 300
# [text](target): the target up to the closing parenthesis, no spaces (Markdown's inline link)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (it comes with the 'test' extra)")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, cwd=config.parent, timeout=120)


def _slugify(heading: str) -> str:
    """Python-Markdown's default toc slug (what MkDocs gives a heading as its anchor)."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_slugify(m.group(1).replace("`", "")) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.M)}


def _relative_links(text: str) -> list[str]:
    return [t for t in LINK.findall(FENCE.sub("", text)) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def test_slugify_matches_mkdocs_anchors():
    assert _slugify("Which ONNX graphs engine-onnx converts") == "which-onnx-graphs-engine-onnx-converts"
    assert _slugify("ImageNet-C-bar (--corruptions cbar)") == "imagenet-c-bar-corruptions-cbar"


def test_docs_site_builds_strict(tmp_path):
    result = _mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    for page in DOCS.glob("*.md"):
        target = "index.html" if page.stem == "index" else f"{page.stem}/index.html"
        assert (tmp_path / "site" / target).is_file(), f"{page.name} was not built"


@pytest.mark.parametrize("breakage", [("cli.md", "(datasets.md)", "(no-such-page.md)"),
                                      ("model-spec.md", "(#label-spaces)", "(#no-such-anchor)")])
def test_a_broken_link_or_anchor_fails_the_strict_build(tmp_path, breakage):
    page, good, bad = breakage
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    text = (tmp_path / "docs" / page).read_text(encoding="utf-8")
    assert good in text, f"{page} no longer links {good}: pick another link for this test"
    (tmp_path / "docs" / page).write_text(text.replace(good, bad, 1), encoding="utf-8")
    result = _mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert bad.strip("()#") in result.stdout + result.stderr


def test_every_docs_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    in_nav = {next(iter(entry.values())) for entry in config["nav"]}
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert on_disk == in_nav, f"pages not in the nav: {sorted(on_disk - in_nav)}; nav entries without a page: {sorted(in_nav - on_disk)}"


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail into docs/ (at most {MAX_README_LINES})"


def test_readme_relative_links_resolve():
    links = _relative_links(README.read_text(encoding="utf-8"))
    assert any(link.startswith("docs/") for link in links), "the README links no page of docs/"
    for link in links:
        path, _, anchor = link.partition("#")
        target = ROOT / path if path else README
        assert target.is_file(), f"README.md links {link!r}, but {target.relative_to(ROOT)} does not exist"
        if anchor and target.suffix == ".md":
            assert anchor in _anchors(target), f"README.md links {link!r}, but {path or 'README.md'} has no heading '#{anchor}'"


def test_readme_links_every_docs_page():
    linked = {link.partition("#")[0] for link in _relative_links(README.read_text(encoding="utf-8"))}
    missing = sorted(p.relative_to(ROOT).as_posix() for p in DOCS.glob("*.md") if p.name != "index.md")
    assert not [m for m in missing if m not in linked], f"README.md does not link {[m for m in missing if m not in linked]}"


def _section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def _steps(command: str) -> list[str]:
    """The steps of a `a && b && c` command, with pip's quiet / cache flags (CI's choice) removed."""
    steps = [re.sub(r"\s+", " ", s).strip() for s in command.split("&&")]
    return [re.sub(r" (-q|--no-cache-dir)(?= )", "", s) for s in steps]


def test_readme_test_command_is_what_ci_runs():
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", _section(text, "Running the tests"), re.S)
    assert len(blocks) == 1 and blocks[0].count("\n") == 1, "'Running the tests' should hold one one-line command"
    ci = [re.sub(r"\s+", " ", line).strip() for line in (ROOT / ".ci/run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    ci = _steps(" && ".join(ci))
    venv_steps = ("python3 -m venv", ". .venv/bin/activate")  # CI makes its venv in a temporary folder
    for step in _steps(blocks[0]):
        if not step.startswith(venv_steps):
            assert step in ci, f"the README's test step {step!r} is not in .ci/run"
    assert "pytest" not in _section(text, "Quick start"), "the test command belongs in its own section, not Quick start"


def test_user_docs_name_no_issue_numbers():
    for page in [README, ROOT / "CHANGELOG.md", *DOCS.rglob("*.md")]:
        found = re.findall(r"\bissues?\s*#?\d+", page.read_text(encoding="utf-8"), re.I)
        assert not found, f"{page.relative_to(ROOT)} names {found}: user documentation says what is, not which issue"
