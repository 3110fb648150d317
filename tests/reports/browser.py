"""Headless Chromium for the report tests: load a file from disk with every network path closed.

Chromium comes from Debian (scripts/install-system-deps.sh). Missing Chromium fails the tests with
what to run, unless ROBUSTAUDIT_SKIP_BROWSER=1 says this machine cannot run a browser.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# no network: a proxy that points nowhere (loopback too), no background or component traffic
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--disable-default-apps", "--hide-scrollbars", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000"]


def chromium() -> str:
    """Path of the chromium binary; fails (or skips with ROBUSTAUDIT_SKIP_BROWSER=1) when absent."""
    found = shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium")
    if found:
        return found
    if os.environ.get("ROBUSTAUDIT_SKIP_BROWSER") == "1":
        pytest.skip("chromium not installed and ROBUSTAUDIT_SKIP_BROWSER=1")
    pytest.fail("headless chromium is missing: run 'bash scripts/install-system-deps.sh' (as root or with sudo), "
                "or set ROBUSTAUDIT_SKIP_BROWSER=1 to skip the browser tests")


def run(page: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run chromium on `page` (a file URL) with a fresh profile; stdout and stderr captured."""
    with tempfile.TemporaryDirectory(prefix="ra-chromium-") as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=120)


def console_problems(stderr: str) -> list[str]:
    """Console output and uncaught errors in chromium's log (the report logs nothing)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def page_status(page: Path) -> tuple[dict, list[str]]:
    """The report's self-check JSON (from the dumped DOM) and any console problems."""
    result = run(page, "--dump-dom")
    match = re.search(r'data-report-status="([^"]*)"', result.stdout)
    assert match, f"no DOM dumped (exit {result.returncode}): {result.stderr[-500:]}"
    raw = html.unescape(match.group(1))
    return (json.loads(raw) if raw else {}), console_problems(result.stderr)
