"""The CI smoke runs of issue 5: ``hold 1000`` and ``mixed 200`` for a few seconds, zero errors.

Both run against a real ftpd on loopback with the server figures on (``--server-pid``), and check
that every session was established, stayed alive and was counted, and that the server-side
figures the performance report relies on are present and plausible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtool import assert_sane, run_load, server_args


def test_hold_1000(ftpd_server: Any, tmp_path: Path) -> None:
    rc, r, log = run_load(
        ["hold", "1000", *server_args(ftpd_server), "--procs", "2", "--duration", "2"]
        + ["--noop-sample", "100", "--noop-interval", "0.5", "--settle", "0.5"]
        + ["--server-pid", str(ftpd_server.pid)],
        tmp_path,
    )
    assert rc == 0, log
    assert_sane(r, "hold")
    assert r["errors"] == {}
    assert r["sessions"]["established"] == 1000 and r["sessions"]["alive_at_end"] == 1000
    assert r["counts"]["final_noop"] == 1000 and r["counts"]["noop"] >= 100
    server = r["server"]
    assert server["fds_after"] >= server["fds_before"] + 1000
    # ftpd's sessions are small: far under the 3 KiB, and never negative.
    assert 0 < server["per_session_kib"] < 16
    assert server["cpu_us_per_session"] > 0


def test_mixed_200(ftpd_server: Any, tmp_path: Path) -> None:
    rc, r, log = run_load(
        ["mixed", "200", *server_args(ftpd_server), "--procs", "2", "--think", "0.5"]
        + ["--duration", "3", "--settle", "0.5", "--server-pid", str(ftpd_server.pid)],
        tmp_path,
    )
    assert rc == 0, log
    assert_sane(r, "mixed")
    assert r["errors"] == {}
    assert r["sessions"]["established"] == 200 and r["sessions"]["alive_at_end"] == 200
    # 200 users thinking 0.5 s on average for 3 s: about 1,200 actions; allow a slow machine.
    actions = sum(r["counts"].get(op, 0) for op in ("list", "retr", "stor"))
    assert actions >= 200
    assert r["primary_latency"]["count"] == actions
    server = r["server"]
    assert server["cpu_us_per_op"] > 0 and server["per_session_kib_end"] is not None
