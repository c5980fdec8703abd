"""A real headless Chromium for the HTML report tests: load a page, return the DOM it rendered.

The report's inline script writes ``data-charts-total``, ``data-charts-rendered`` and (on a script
error) ``data-js-errors`` on ``<body>`` once the page has loaded; ``--dump-dom`` prints the DOM
after that. Chromium missing skips the test, or fails it under ``FTPD_REQUIRE_CLIENTS=1`` (CI).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium() -> str:
    """The Chromium binary; skip (fail under FTPD_REQUIRE_CLIENTS) when not installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    msg = "chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("FTPD_REQUIRE_CLIENTS", "").strip().lower() not in ("", "0", "no", "false"):
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def render(page: Path, screenshot: Path | None = None) -> tuple[str, str]:
    """Load ``page`` from disk; return (the DOM after load, Chromium's log with console lines)."""
    with tempfile.TemporaryDirectory() as profile:
        args = [chromium(), *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000"]
        if screenshot is not None:
            args += ["--window-size=1200,2400", f"--screenshot={screenshot}"]
        else:
            args.append("--dump-dom")
        proc = subprocess.run(
            [*args, page.resolve().as_uri()], capture_output=True, text=True, timeout=90
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def body_attributes(dom: str) -> dict[str, str]:
    """The attributes of ``<body>`` in a dumped DOM."""
    match = re.search(r"<body([^>]*)>", dom)
    assert match, dom[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', match.group(1)))


def console_errors(log: str) -> list[str]:
    """Chromium's console lines about page script errors (``Uncaught ...``)."""
    return [line for line in log.splitlines() if "CONSOLE" in line and "Uncaught" in line]
