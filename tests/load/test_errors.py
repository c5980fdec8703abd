"""Errors are counted, never dropped: refused logins, refused connections, sessions that die."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loadtool import assert_sane, run_load, server_args


def test_refused_logins_are_counted_by_reply_code(ftpd_factory: Any, tmp_path: Path) -> None:
    server = ftpd_factory(password="right", login_fail_delay=0.05)
    args = server_args(server)
    args[args.index("--password") + 1] = "wrong"
    rc, r, log = run_load(["logins", "-c", "2", *args, "--count", "6"], tmp_path)
    assert rc == 1, log
    assert_sane(r, "logins")
    assert r["errors"] == {"login 530": 6}
    assert r["counts"] == {}
    assert "login 530: 6" in log


def test_refused_sessions_in_hold(ftpd_factory: Any, tmp_path: Path) -> None:
    server = ftpd_factory(password="right", login_fail_delay=0.05)
    args = server_args(server)
    args[args.index("--password") + 1] = "wrong"
    rc, r, log = run_load(["hold", "5", *args, "--duration", "0.5"], tmp_path)
    assert rc == 1, log
    assert r["errors"] == {"establish 530": 5}
    assert r["sessions"]["established"] == 0 and r["sessions"]["alive_at_end"] == 0


def test_connection_refused_is_counted(tmp_path: Path) -> None:
    import socket

    # A port that was free a moment ago: nothing listens there.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc, r, log = run_load(
        ["logins", "-c", "2", "--port", str(port), "--password", "x", "--count", "4"]
        + ["--duration", "5"],
        tmp_path,
    )
    assert rc == 1, log
    assert r["errors"] == {"login ConnectionRefusedError": 4}


def test_sessions_killed_by_the_server_are_not_alive(ftpd_factory: Any, tmp_path: Path) -> None:
    server = ftpd_factory(idle_timeout=1)
    rc, r, log = run_load(
        ["hold", "10", *server_args(server), "--duration", "2.5", "--noop-sample", "0"], tmp_path
    )
    assert rc == 1, log
    assert r["sessions"]["established"] == 10
    assert r["sessions"]["alive_at_end"] == 0
    # Closed sessions are detected either before the final NOOP or by it (a 421 reply).
    assert sum(n for k, n in r["errors"].items() if k.startswith("final_noop ")) == 10


def test_setup_failure_is_a_clear_message(ftpd_server: Any, tmp_path: Path) -> None:
    rc, r, log = run_load(
        ["retr", *server_args(ftpd_server), "--file", "/no/such/file", "--duration", "1"], tmp_path
    )
    assert rc == 2 and r == {}
    assert "--file /no/such/file: 550" in log


def test_ctrl_c_stops_cleanly_with_a_partial_report(ftpd_server: Any, tmp_path: Path) -> None:
    out = tmp_path / "partial.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ftpd.load",
            "hold",
            "50",
            *server_args(ftpd_server),
            "--duration",
            "60",
            "--noop-interval",
            "0.1",
            "--procs",
            "2",
            "--json",
            str(out),
            "--progress",
            "plain",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait until the sessions are held (the progress line shows phase "run").
        deadline = time.monotonic() + 20
        assert proc.stderr is not None
        for line in proc.stderr:
            if " run " in line or time.monotonic() > deadline:
                break
        time.sleep(0.5)  # SIGINT half a second into the run phase: the scenario
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - t0 < 8
    assert proc.returncode == 130
    import json

    r = json.loads(out.read_text())
    assert r["interrupted"] is True
    assert r["sessions"]["established"] == 50
    assert r["counts"]["noop"] > 0
    assert r["errors"] == {}
    assert "partial report" in stdout


def test_plot_or_a_clear_error_without_matplotlib(ftpd_server: Any, tmp_path: Path) -> None:
    png = tmp_path / "run.png"
    cmd = [sys.executable, "-m", "ftpd.load", "hold", "3", *server_args(ftpd_server)]
    proc = subprocess.run(
        [*cmd, "--duration", "1", "--plot", str(png), "--progress", "none"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        # Refused before the run starts, with the fix in the message.
        assert proc.returncode != 0 and not png.exists()
        assert "--plot needs matplotlib" in proc.stderr
        assert "pip install" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
