"""Shared fixtures: a real ftpd process on a loopback port (``support.server.start_ftpd``).

``ftpd_factory(**overrides)`` starts ``python -m ftpd`` with Config fields as flags
(``--max-per-ip 3``), a fresh home in tmp_path, port 0 and a free passive block, and stops the
process (SIGTERM, by PID) at the end of the test. ``ftpd_server`` is one with the defaults tests
want: no failed-login delay, unlimited per-IP sessions. ``postgres`` (session scope) is a real
PostgreSQL server the run starts itself; ``postgres.new_database()`` gives a test its own.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.env import missing, require_ipv6
from support.server import FtpdProcess, start_ftpd

__all__ = ["FtpdProcess", "start_ftpd"]

# pytester drives tests/library's tests of the pytest plugin; the plugin itself is loaded as its
# pytest11 entry point does where ftpd is installed (the same name: no double registration).
pytest_plugins = ["pytester", "ftpd.testing.plugin"]


@pytest.fixture
def ftpd_factory(tmp_path: Path) -> Iterator[object]:
    started: list[FtpdProcess] = []
    counter = itertools.count()

    def factory(**overrides: object) -> FtpdProcess:
        d = tmp_path / f"srv{next(counter)}"
        d.mkdir()
        p = start_ftpd(d, **overrides)
        started.append(p)
        return p

    yield factory
    for p in started:
        p.stop()


@pytest.fixture
def ftpd_server(ftpd_factory: object) -> FtpdProcess:
    return ftpd_factory()  # type: ignore[operator]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test parametrized with the host ``::1`` needs the IPv6 loopback: skip without it, or
    fail under ``FTPD_REQUIRE_CLIENTS`` (CI), before any fixture starts a server on it."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "::1" in callspec.params.values():
        require_ipv6()


# --- a real PostgreSQL server (users_db tests, tests/cluster) ------------------------------------
# Debian's `postgresql` package (.ci/run installs it): initdb + pg_ctl into a temporary directory,
# listening on a free port of 127.0.0.1 only, with a password for the `ftpd` role (scram). initdb
# refuses to run as root, so as root the cluster belongs to the `postgres` user (or nobody).


@dataclass
class PostgresServer:
    port: int
    password: str
    datadir: Path
    _databases: itertools.count[int] = field(default_factory=itertools.count)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://ftpd:{self.password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database for one test; returns its URL."""
        import asyncio

        import asyncpg

        name = f"t{next(self._databases)}_{os.getpid()}"

        async def create() -> None:
            conn = await asyncpg.connect(self.url(), timeout=20)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        return self.url(name)


def _pg_bin(tool: str) -> str | None:
    import glob
    import shutil

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return found[-1] if found else shutil.which(tool)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole run (about 2-5 s to create and start)."""
    import pwd
    import secrets
    import shutil
    import socket
    import tempfile

    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        missing("PostgreSQL is not installed (apt-get install -y postgresql)")
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        missing("asyncpg is not installed (pip install 'ftpd[postgres]')")
    owner: dict[str, int] = {}
    base = Path(tempfile.mkdtemp(prefix="ftpd-pg-"))  # not under pytest's 0700 root-only tree
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            entry = pwd.getpwnam("nobody")
        owner = {"user": entry.pw_uid, "group": entry.pw_gid}
        os.chown(base, entry.pw_uid, entry.pw_gid)
    password = secrets.token_urlsafe(12)
    pwfile = base / "pw"
    pwfile.write_text(password + "\n")
    if owner:
        os.chown(pwfile, owner["user"], owner["group"])
    datadir = base / "data"

    def run(*argv: str, timeout: float = 120) -> None:
        # cwd: the server's user may not be allowed into the checkout (a clone under /root).
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=base,
                              stdin=subprocess.DEVNULL, **owner)  # type: ignore[call-overload]
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {proc.stdout}\n{proc.stderr}")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run(initdb, "-D", str(datadir), "-U", "ftpd", "--pwfile", str(pwfile), "--auth",
        "scram-sha-256", "--encoding", "UTF8", "--no-sync")
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(pg_ctl, "-D", str(datadir), "-l", str(base / "log"), "-o", options, "-w", "-t", "60",
        "start")
    server = PostgresServer(port, password, datadir)
    try:
        yield server
    finally:
        subprocess.run([pg_ctl, "-D", str(datadir), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60, cwd=base,
                       **owner)  # type: ignore[call-overload]
        shutil.rmtree(base, ignore_errors=True)
