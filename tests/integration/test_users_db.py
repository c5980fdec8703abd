"""Logins through each user store on a real server: accounts made with ``ftpd user`` (the CLI, in
a subprocess), a real ftplib client, and changes seen by the running server without a restart.
PostgreSQL is a real server the tests start (``postgres`` in tests/conftest.py).
"""

from __future__ import annotations

import ftplib
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = 0.5  # users_cache_seconds of these servers


def ftpd_cli(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FTPD_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "ftpd", *argv], input=stdin, text=True,
                          capture_output=True, timeout=60, env=env)  # fmt: skip


def login(port: int, user: str, password: str) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=20)
    ftp.login(user, password)
    return ftp


def refused(port: int, user: str, password: str) -> bool:
    try:
        login(port, user, password).quit()
    except ftplib.error_perm as exc:
        return str(exc).startswith("530")
    return False


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def works(port: int, user: str, password: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            login(port, user, password).quit()
        except ftplib.error_perm:
            return False
        return True

    return check


@pytest.fixture(params=["sqlite", "postgres"])
def users_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'users.db'}"
    return str(request.getfixturevalue("postgres").new_database())


def test_logins_through_the_database(users_db: str, tmp_path: Path, ftpd_factory: Any) -> None:
    home = tmp_path / "alice-home"
    add = ftpd_cli("user", "add", "alice", "--home", str(home), "--users-db", users_db,
                   stdin="wonder land\n")  # fmt: skip
    assert add.returncode == 0, add.stderr
    srv = ftpd_factory(users_db=users_db, password="", users_cache_seconds=CACHE, workers=2)
    out = srv.proc.stdout.readline()  # the "connect with" line: no single user to show
    assert out.startswith("connect with: ftp://") and "users database" in out
    secret = urlsplit(users_db).password
    assert "wonder land" not in out and (secret is None or secret not in out + srv.log())

    ftp = login(srv.port, "alice", "wonder land")
    ftp.storbinary("STOR up.bin", io.BytesIO(b"x" * 1000))
    ftp.quit()
    assert (home / "up.bin").read_bytes() == b"x" * 1000
    assert refused(srv.port, "alice", "wrong")
    assert refused(srv.port, "mallory", "wonder land")

    # Changed and added while the server runs: seen within users_cache_seconds, no restart.
    assert (
        ftpd_cli("user", "passwd", "alice", "--users-db", users_db, stdin="new pw\n").returncode
        == 0
    )
    changed = time.monotonic()
    assert eventually(works(srv.port, "alice", "new pw"))
    # Each worker caches on its own: the new password may work in one while the other still
    # holds the old entry. Once users_cache_seconds have passed since the change, no worker may
    # take the old one (several logins, so that both workers answer; fewer than ban_after).
    time.sleep(max(0.0, changed + CACHE + 0.5 - time.monotonic()))
    assert all(refused(srv.port, "alice", "wonder land") for _ in range(4))
    add = ftpd_cli("user", "add", "bob", "--home", str(tmp_path / "bob"), "--perms", "elr",
                   "--users-db", users_db, stdin="builder\n")  # fmt: skip
    assert add.returncode == 0, add.stderr
    assert eventually(works(srv.port, "bob", "builder"))
    ftp = login(srv.port, "bob", "builder")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.storbinary("STOR nope.bin", io.BytesIO(b"x"))  # read-only from the database row
    ftp.quit()
    assert ftpd_cli("user", "del", "bob", "--users-db", users_db).returncode == 0
    assert eventually(lambda: refused(srv.port, "bob", "builder"))
    assert srv.proc.poll() is None


def test_users_file_changes_are_picked_up_without_a_signal(
    tmp_path: Path, ftpd_factory: Any
) -> None:
    users = tmp_path / "users.toml"
    add = ftpd_cli("user", "add", "alice", "--home", str(tmp_path / "a"), "--users-file",
                   str(users), stdin="pw1\n")  # fmt: skip
    assert add.returncode == 0, add.stderr
    srv = ftpd_factory(users_file=str(users), password="", users_cache_seconds=CACHE)
    assert works(srv.port, "alice", "pw1")()
    assert ftpd_cli("user", "add", "bob", "--home", str(tmp_path / "b"), "--users-file",
                    str(users), stdin="pw2\n").returncode == 0  # fmt: skip
    assert eventually(works(srv.port, "bob", "pw2"))
    # A broken edit is refused with a warning; the accounts loaded before stay in force.
    users.write_text(users.read_text() + "\n[[users]]\nname = 3\n")
    # (Checked on login: each attempt below may be the one that notices.)
    alice = works(srv.port, "alice", "pw1")
    assert eventually(lambda: alice() and "changed but is not valid" in srv.log())
    assert srv.log().count("changed but is not valid") == 1  # once per version, not per login
    assert works(srv.port, "bob", "pw2")()


@pytest.mark.parametrize("kind", ["sqlite-missing", "sqlite-no-table", "postgres-bad-password"])
def test_database_problems_stop_start_up_with_one_line(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite-missing":
        url, expected = f"sqlite:///{tmp_path / 'none.db'}", "does not exist"
    elif kind == "sqlite-no-table":
        import sqlite3

        sqlite3.connect(tmp_path / "empty.db").close()
        url, expected = f"sqlite:///{tmp_path / 'empty.db'}", "no such table"
    else:
        pg = request.getfixturevalue("postgres")
        url = f"postgresql://ftpd:not-the-password@127.0.0.1:{pg.port}/postgres"
        expected = "password authentication failed"
    run = ftpd_cli("--users-db", url, "--port", "0", "--root", str(tmp_path / "r"))
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("ftpd: error: invalid value for users_db: ")
    assert run.stderr.count("\n") == 1 and expected in run.stderr, run.stderr
    assert "not-the-password" not in run.stderr
