"""Shared fixtures: a real ftpd process on a loopback port.

``ftpd_factory(**overrides)`` starts ``python -m ftpd`` with Config fields as flags (``--max-per-ip 3``),
a fresh home in tmp_path and port 0; it reads the bound port from the start-up line the CLI prints, and
stops the process (SIGTERM, by PID) at the end of the test. ``ftpd_server`` is one with the defaults
tests want: no failed-login delay, unlimited per-IP sessions. ``postgres`` (session scope) is a
real PostgreSQL server the run starts itself; ``postgres.new_database()`` gives a test its own.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# pytester drives tests/library's tests of the pytest plugin; the plugin itself is loaded as its
# pytest11 entry point does where ftpd is installed (the same name: no double registration).
pytest_plugins = ["pytester", "ftpd.testing.plugin"]

READY = re.compile(r"^ftpd serving .* on (\S+):(\d+)$")
_pasv_blocks = itertools.count()


@dataclass
class FtpdProcess:
    host: str
    port: int
    user: str
    password: str
    root: Path
    pid: int
    proc: subprocess.Popen[str]
    log_path: Path
    config: dict[str, object] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def _flag(key: str, value: object) -> list[str]:
    name = "--" + key.replace("_", "-")
    if isinstance(value, bool):
        return [f"{name}={'true' if value else 'false'}"]
    return [name, str(value)]


def start_ftpd(tmp: Path, **overrides: object) -> FtpdProcess:
    """Start an ftpd process; see the module docstring."""
    root = Path(str(overrides.pop("root", tmp / "home")))
    root.mkdir(parents=True, exist_ok=True)
    # A separate passive block per server, so ports in TIME_WAIT from one test never matter.
    block = next(_pasv_blocks) % 40
    cfg: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "root": str(root),
        "user": "user",
        "password": "12345",
        "login_fail_delay": 0,
        "max_per_ip": 0,
        "pasv_ports": f"{61000 + block * 100}-{61000 + block * 100 + 99}",
        "log_level": "info",
    }
    cfg.update(overrides)
    argv = [sys.executable, "-m", "ftpd"]
    for k, v in cfg.items():
        argv += _flag(k, v)
    log_path = tmp / f"ftpd-{time.monotonic_ns()}.log"
    logf = open(log_path, "w")  # noqa: SIM115 - closed with the process
    env = dict(os.environ)
    env.pop("FTPD_CONFIG", None)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=logf, text=True, env=env)
    logf.close()
    deadline = time.monotonic() + 20
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            proc.wait(5)
            raise RuntimeError(f"ftpd exited ({proc.returncode}):\n{log_path.read_text()}")
        m = READY.match(line.strip())
        if m:
            host, port = m.group(1).strip("[]"), int(m.group(2))
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("ftpd did not start")
    return FtpdProcess(host=host, port=port, user=str(cfg["user"]), password=str(cfg["password"]),
                       root=root, pid=proc.pid, proc=proc, log_path=log_path, config=cfg)


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


def _required() -> bool:
    flags = (os.environ.get("FTPD_REQUIRE_CLIENTS", ""), os.environ.get("CI", ""))
    return any(v.strip().lower() not in ("", "0", "no", "false") for v in flags)


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
        msg = "PostgreSQL is not installed (apt-get install -y postgresql)"
        if _required():
            pytest.fail(f"{msg}; FTPD_REQUIRE_CLIENTS/CI is set, so it is required", pytrace=False)
        pytest.skip(msg)
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        pytest.skip("asyncpg is not installed (pip install 'ftpd[postgres]')")
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
