"""``ftpd-load compare``: one scenario against ftpd and pyftpdlib, side by side with ratios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from browser import body_attributes, console_errors, render
from loadtool import start_pyftpdlib, url_of

from ftpd.load.comparison import comparison_rows


def test_compare_ftpd_and_pyftpdlib(ftpd_server: Any, tmp_path: Path) -> None:
    ref = start_pyftpdlib(tmp_path / "pyftpdlib-home")
    out, report = tmp_path / "cmp.json", tmp_path / "cmp.html"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ftpd.load", "compare", url_of(ftpd_server), url_of(ref)]
            + ["small", "-c", "4", "--rate", "40", "--duration", "1.5", "--progress", "none"]
            + ["--server-pids", f"{ftpd_server.pid},{ref.pid}"]
            + ["--json", str(out), "--report", str(report)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        ref.stop()
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    cmp = json.loads(out.read_text())
    runs = cmp["compare"]
    assert [r["params"]["port"] for r in runs] == [ftpd_server.port, ref.port]
    for r in runs:
        assert r["errors"] == {} and r["schedule"]["intended"] == 60
        assert r["server"]["cpu_seconds"] is not None
    # The side-by-side table: one column per server, ratios to the first.
    assert "ops/s (headline)" in log and "(×" in log
    header, rows = comparison_rows(runs)
    assert header[1:] == [r["target"] for r in runs]
    p99 = next(row for row in rows if row[0] == "p99 ms")
    ratio = runs[1]["primary_latency"]["p99"] / runs[0]["primary_latency"]["p99"]
    assert f"×{ratio:.2f}" in p99[2]
    # Both servers' files were cleaned up.
    assert not list(ftpd_server.root.glob("ftpd-load-*"))
    assert not list((tmp_path / "pyftpdlib-home").glob("ftpd-load-*"))
    html = report.read_text()
    assert all(r["target"] in html for r in runs)
    dom, chrome_log = render(report)
    body = body_attributes(dom)
    # Overlays (throughput, p99, CPU, memory) and each run's eight charts.
    assert body.get("data-charts-total") == body.get("data-charts-rendered") == "20", body
    assert "data-js-errors" not in body and console_errors(chrome_log) == []


def test_compare_usage_errors(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ftpd.load", "compare", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    one = run("ftp://u:p@127.0.0.1:1/", "logins")
    assert one.returncode == 2 and "two or more server URLs" in one.stderr
    pids = run("ftp://u:p@127.0.0.1:1/", "ftp://u:p@127.0.0.1:2/", "logins", "--server-pids", "1")
    assert pids.returncode == 2 and "1 ids for 2 servers" in pids.stderr
