"""``--workers 2`` under load: sessions spread over both workers, limits hold across them.

ftpd-load opens sessions really concurrently from two processes, so both workers accept at the same
time; the limits must still count the sessions of the whole server (issue 5, point 5).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtool import assert_sane, run_load, server_args


def test_max_sessions_holds_across_workers(ftpd_factory: Any, tmp_path: Path) -> None:
    server = ftpd_factory(workers=2, max_sessions=60)
    rc, r, log = run_load(
        ["hold", "90", *server_args(server), "--procs", "2", "--duration", "1"]
        + ["--connect-concurrency", "30", "--server-pid", str(server.pid)],
        tmp_path,
    )
    assert rc == 1, log
    assert_sane(r, "hold")
    # Exactly the limit got in, whichever worker accepted them; the rest were told 421.
    assert r["sessions"]["established"] == 60, r["errors"]
    assert r["errors"] == {"establish 421": 30}
    assert r["sessions"]["alive_at_end"] == 60
    # Both workers served (the supervisor and its two children).
    assert r["server"]["processes"] == 3


def test_max_per_ip_holds_across_workers(ftpd_factory: Any, tmp_path: Path) -> None:
    server = ftpd_factory(workers=2, max_per_ip=25)
    rc, r, log = run_load(
        ["hold", "80", *server_args(server), "--procs", "2", "--duration", "1"]
        + ["--source-addresses", "127.0.0.2-127.0.0.3"],
        tmp_path,
    )
    assert rc == 1, log
    # Two source addresses, 25 sessions each at most, over both workers together.
    assert r["sessions"]["established"] == 50, r["errors"]
    assert r["errors"] == {"establish 421": 30}
