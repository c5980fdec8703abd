"""``--report FILE.html``: one self-contained page whose charts a real headless Chromium draws."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from browser import body_attributes, console_errors, render
from loadtool import run_load, url_of

from ftpd.load.svgchart import Chart, Series, line_chart, log_ticks, nice_ticks

# Throughput, transfer rate, latency, errors, sessions, server CPU, memory, fds.
CHARTS_WITH_SERVER = 8


def _self_contained(html: str) -> None:
    # Nothing to fetch: no src/href to anywhere, no CSS import or url(); the SVG namespace
    # (an identifier, never fetched) is the only http text allowed.
    assert not re.search(r"""\b(src|href)\s*=""", html)
    assert "@import" not in html and "url(" not in html
    assert set(re.findall(r"https?://[^\s\"'<]+", html)) <= {"http://www.w3.org/2000/svg"}


def test_report_renders_in_chromium(ftpd_server: Any, tmp_path: Path) -> None:
    report = tmp_path / "run.html"
    rc, r, log = run_load(
        ["small", url_of(ftpd_server), "-c", "4", "--rate", "50", "--duration", "2.5"]
        + ["--mix", "retr=1,stor=1", "--server-pid", str(ftpd_server.pid)]
        + ["--report", str(report)],
        tmp_path,
    )
    assert rc == 0, log
    html = report.read_text()
    _self_contained(html)
    # The run's figures and parameters are on the page.
    assert f"{r['rates']['ops_per_s']:.1f}" in html and "p99 service time" in html
    assert ">arrivals<" in html and ">&quot;constant&quot;<" in html and ">50.0<" in html
    dom, chrome_log = render(report)
    body = body_attributes(dom)
    assert body.get("data-charts-total") == str(CHARTS_WITH_SERVER), body
    assert body.get("data-charts-rendered") == str(CHARTS_WITH_SERVER), body
    assert "data-js-errors" not in body and console_errors(chrome_log) == []


def test_report_shows_errors_by_kind(ftpd_factory: Any, tmp_path: Path) -> None:
    server = ftpd_factory(password="right", login_fail_delay=0)
    report = tmp_path / "errors.html"
    url = f"ftp://user:wrong@127.0.0.1:{server.port}/"
    rc, r, log = run_load(
        ["logins", url, "-c", "2", "--rate", "20", "--duration", "1.5", "--report", str(report)],
        tmp_path,
    )
    assert rc == 1, log
    html = report.read_text()
    assert "login 530" in html and "the server refused the login" in html
    dom, chrome_log = render(report)
    body = body_attributes(dom)
    # No --server-pid: throughput, errors and sessions; latency has no point (no login
    # succeeded) and says so instead of drawing an empty frame.
    assert body.get("data-charts-total") == body.get("data-charts-rendered") == "3", body
    assert "no data: ms" in dom
    assert "data-js-errors" not in body and console_errors(chrome_log) == []
    # The errors chart drew the "login 530" line (rendered charts are marked).
    assert re.search(r'<svg class="chart" id="c-2"[^>]*data-rendered="1"', dom), dom[:3000]


def test_svg_chart_pieces() -> None:
    assert nice_ticks(0, 97) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(0, 0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert log_ticks(3, 2000)[0] <= 3 and log_ticks(3, 2000)[-1] >= 2000
    svg = line_chart(Chart([Series("a", [(0, 1), (1, None), (2, 3), (3, 4)])], "ms"), "x")
    # A gap (None) lifts the pen: two subpaths; the lone first point gets a marker.
    path = re.search(r'<path class="series" d="([^"]+)"', svg)
    assert path and path.group(1).count("M") == 2 and svg.count('<circle class="point"') == 1
    empty = line_chart(Chart([Series("a", [(0, None)])], "ms <&>"), "y")
    assert "no data" in empty and "&lt;&amp;&gt;" in empty
