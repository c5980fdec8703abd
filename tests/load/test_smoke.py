"""CI smoke runs of every scenario against a real server on loopback, at small scale.

Each asserts zero errors and checks the JSON fields against what the run must have done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtool import assert_sane, run_load, server_args


def _no_leftovers(root: Path) -> None:
    assert not list(root.glob("ftpd-load-*")), "the run directory was not cleaned up"


def test_hold(ftpd_server: Any, tmp_path: Path) -> None:
    rc, r, log = run_load(
        [
            "hold",
            "200",
            *server_args(ftpd_server),
            "--duration",
            "2",
            "--noop-sample",
            "50",
            "--noop-interval",
            "0.25",
            "--server-pid",
            str(ftpd_server.pid),
        ],
        tmp_path,
    )
    assert rc == 0, log
    assert_sane(r, "hold")
    assert r["errors"] == {}
    assert r["sessions"]["established"] == 200 and r["sessions"]["alive_at_end"] == 200
    assert r["counts"]["establish"] == 200 and r["counts"]["final_noop"] == 200
    # 50 sessions x about 8 NOOPs in 2 s; allow for a slow machine but not for none.
    assert 100 <= r["counts"]["noop"] <= 50 * 9
    assert r["sessions"]["establish_s"] > 0
    server = r["server"]
    assert server["fds_after"] >= server["fds_before"] + 200
    assert server["pss_kib_after"] > 0 and server["per_session_kib"] is not None
    assert server["cpu_us_per_op"] is not None and server["cpu_seconds"] >= 0
    assert max(p["sessions"] for p in r["timeline"]) == 200


def test_logins(ftpd_server: Any, tmp_path: Path) -> None:
    rc, r, log = run_load(
        [
            "logins",
            "-c",
            "8",
            *server_args(ftpd_server),
            "--duration",
            "2",
            "--server-pid",
            str(ftpd_server.pid),
        ],
        tmp_path,
    )
    assert rc == 0, log
    assert_sane(r, "logins")
    assert r["errors"] == {}
    assert r["counts"]["login"] >= 20
    assert r["rates"]["logins_per_s"] == r["rates"]["login_per_s"] > 0
    assert r["server"]["cpu_us_per_op"] is not None


def test_logins_count_bound(ftpd_server: Any, tmp_path: Path) -> None:
    rc, r, log = run_load(
        ["logins", "-c", "3", *server_args(ftpd_server), "--count", "7", "--procs", "2"], tmp_path
    )
    assert rc == 0, log
    assert r["counts"] == {"login": 7} and r["workers"] == 2


def test_small_retr_and_stor(ftpd_server: Any, tmp_path: Path) -> None:
    rc, r, log = run_load(
        [
            "small",
            "-c",
            "20",
            *server_args(ftpd_server),
            "--duration",
            "3",
            "--mix",
            "retr=3,stor=1",
        ],
        tmp_path,
    )
    assert rc == 0, log
    assert_sane(r, "small")
    assert r["errors"] == {}
    assert r["sessions"]["established"] == 20
    assert r["counts"]["retr"] > 20 and r["counts"]["stor"] > 5
    assert r["bytes"]["retr"] == 4096 * r["counts"]["retr"]
    assert r["bytes"]["stor"] == 4096 * r["counts"]["stor"]
    assert r["rates"]["transfers_per_s"] > 0
    _no_leftovers(ftpd_server.root)


def test_retr_big_file_epsv(ftpd_server: Any, tmp_path: Path) -> None:
    size = 8 << 20
    (ftpd_server.root / "big.bin").write_bytes(b"\0" * size)
    rc, r, log = run_load(
        [
            "retr",
            "-c",
            "2",
            *server_args(ftpd_server),
            "--file",
            "/big.bin",
            "--epsv",
            "--duration",
            "1.5",
        ],
        tmp_path,
    )
    assert rc == 0, log
    assert_sane(r, "retr")
    assert r["errors"] == {}
    assert r["counts"]["retr"] >= 2
    assert r["bytes"]["retr"] == size * r["counts"]["retr"]
    assert r["rates"]["mb_per_s"] > 1
    assert (ftpd_server.root / "big.bin").exists()


def test_stor_then_removed_and_keep(ftpd_server: Any, tmp_path: Path) -> None:
    size = 4 << 20
    args = ["stor", *server_args(ftpd_server), "--size", "4M", "--duration", "1"]
    rc, r, log = run_load(args, tmp_path)
    assert rc == 0, log
    assert_sane(r, "stor")
    assert r["errors"] == {} and r["counts"]["stor"] >= 1
    assert r["bytes"]["stor"] == size * r["counts"]["stor"]
    _no_leftovers(ftpd_server.root)
    rc, r, log = run_load([*args, "--keep", "--count", "1"], tmp_path)
    assert rc == 0, log
    kept = list(ftpd_server.root.glob("ftpd-load-*/stor-*.bin"))
    assert [p.stat().st_size for p in kept] == [size]


def test_mixed(ftpd_server: Any, tmp_path: Path) -> None:
    rc, r, log = run_load(
        [
            "mixed",
            "30",
            *server_args(ftpd_server),
            "--think",
            "0.1",
            "--duration",
            "2",
            "--procs",
            "2",
            "--server-pid",
            str(ftpd_server.pid),
        ],
        tmp_path,
    )
    assert rc == 0, log
    assert_sane(r, "mixed")
    assert r["errors"] == {}
    assert r["sessions"]["established"] == 30 and r["sessions"]["alive_at_end"] == 30
    for op in ("list", "retr", "stor"):
        assert r["counts"][op] > 10, op
    assert r["rates"]["actions_per_s"] > 0
    assert r["server"]["per_session_kib"] is not None
    _no_leftovers(ftpd_server.root)


def test_mixed_mlsd(ftpd_server: Any, tmp_path: Path) -> None:
    rc, r, log = run_load(
        [
            "mixed",
            "5",
            *server_args(ftpd_server),
            "--think",
            "0.05",
            "--duration",
            "1",
            "--mlsd",
            "--mix",
            "list=1",
        ],
        tmp_path,
    )
    assert rc == 0, log
    assert r["errors"] == {} and r["counts"]["list"] > 5
    # 20 entries of a few dozen bytes each at least: the listing really arrived.
    assert r["bytes"]["list"] > 20 * 20 * r["counts"]["list"] // 2
    _no_leftovers(ftpd_server.root)
