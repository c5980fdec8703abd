"""A real ftpd process on a loopback port, and passive port ranges that are actually free.

``start_ftpd(tmp, **overrides)`` starts ``python -m ftpd`` with Config fields as flags
(``--max-per-ip 3``), a fresh home and port 0; it reads the bound port from the start-up line the
CLI prints. ``FtpdProcess.stop()`` ends it (SIGTERM, by PID) and gives its passive block back.

Passive ranges: every server gets a block of ``BLOCK`` ports of its own from ``PORTS`` (below the
ephemeral range 32768-60999 and away from ftpd's default 61000-61999). A block is held with an
``flock`` on ``/tmp/ftpd-tests-pasv/<first port>.lock`` for as long as the server runs, so that
several pytest processes on one machine never share a block (the kernel drops the lock if pytest
dies), and it is bind-probed before use, so that a port some other program listens on is never
handed out. ``pasv_count=N`` asks for a smaller range (first N ports of a block): for tests of
running out of passive ports.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

READY = re.compile(r"^ftpd serving .* on (\S+):(\d+)$")
PORTS = range(20000, 32768)
BLOCK = 64
LOCK_DIR = Path("/tmp/ftpd-tests-pasv")


def _free(port: int, host: str) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine, LISTEN not
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class PasvBlocks:
    """Allocates free passive blocks; one instance per pytest process (``BLOCKS``)."""

    def __init__(self, ports: range = PORTS, size: int = BLOCK) -> None:
        self.starts = list(range(ports.start, ports.stop - size + 1, size))
        self.size = size
        # Start at a random block and go round, so that consecutive servers (and processes) do
        # not reuse the ports the previous one left in TIME_WAIT.
        self.next = random.randrange(len(self.starts))

    def take(self, host: str = "127.0.0.1") -> tuple[int, IO[bytes]]:
        """The first port of a free block and the open lock file that holds it."""
        LOCK_DIR.mkdir(mode=0o1777, exist_ok=True)
        for _ in range(len(self.starts)):
            start = self.starts[self.next]
            self.next = (self.next + 1) % len(self.starts)
            lock = open(LOCK_DIR / f"{start}.lock", "ab")  # noqa: SIM115 - held while serving
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                continue
            if all(_free(p, host) for p in range(start, start + self.size)):
                return start, lock
            lock.close()
        raise RuntimeError(f"no free block of {self.size} passive ports in {PORTS}")


BLOCKS = PasvBlocks()


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
    pasv_lock: IO[bytes] | None = None

    @property
    def pasv_range(self) -> range:
        lo, hi = str(self.config["pasv_ports"]).split("-")
        return range(int(lo), int(hi) + 1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        terminate(self.proc, timeout)
        if self.pasv_lock is not None:
            self.pasv_lock.close()  # releases the flock: the block is free again
            self.pasv_lock = None
        return self.proc.returncode


def terminate(proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM a server we started (graceful shutdown), SIGKILL it after ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _flag(key: str, value: object) -> list[str]:
    name = "--" + key.replace("_", "-")
    if isinstance(value, bool):
        return [f"{name}={'true' if value else 'false'}"]
    return [name, str(value)]


def start_ftpd(tmp: Path, *, env: dict[str, str] | None = None, **overrides: object) -> FtpdProcess:
    """Start an ftpd process (see the module docstring); ``env`` adds environment variables
    (``TZ``)."""
    root = Path(str(overrides.pop("root", tmp / "home")))
    root.mkdir(parents=True, exist_ok=True)
    count = int(str(overrides.pop("pasv_count", BLOCK)))
    lock = None
    cfg: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "root": str(root),
        "user": "user",
        "password": "12345",
        "login_fail_delay": 0,
        "max_per_ip": 0,
        "log_level": "info",
    }
    cfg.update(overrides)
    if "pasv_ports" not in cfg:
        first, lock = BLOCKS.take(str(cfg["host"]))
        cfg["pasv_ports"] = f"{first}-{first + min(count, BLOCK) - 1}"
    argv = [sys.executable, "-m", "ftpd"]
    for k, v in cfg.items():
        argv += _flag(k, v)
    log_path = tmp / f"ftpd-{time.monotonic_ns()}.log"
    logf = open(log_path, "w")  # noqa: SIM115 - closed with the process
    penv = dict(os.environ)
    penv.pop("FTPD_CONFIG", None)
    penv.update(env or {})
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=logf, text=True, env=penv)
    logf.close()
    deadline = time.monotonic() + 20
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            proc.wait(5)
            if lock is not None:
                lock.close()
            raise RuntimeError(f"ftpd exited ({proc.returncode}):\n{log_path.read_text()}")
        m = READY.match(line.strip())
        if m:
            host, port = m.group(1).strip("[]"), int(m.group(2))
            break
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait(5)
            if lock is not None:
                lock.close()
            raise RuntimeError("ftpd did not start")
    return FtpdProcess(
        host=host,
        port=port,
        user=str(cfg["user"]),
        password=str(cfg["password"]),
        root=root,
        pid=proc.pid,
        proc=proc,
        log_path=log_path,
        config=cfg,
        pasv_lock=lock,
    )


@contextlib.contextmanager
def pasv_block(host: str = "127.0.0.1") -> Iterator[range]:
    """A free passive block for a server that is not ftpd (the pyftpdlib reference), held for
    the duration of the ``with``."""
    first, lock = BLOCKS.take(host)
    try:
        yield range(first, first + BLOCK)
    finally:
        lock.close()


def warm_up(srv: FtpdProcess) -> None:
    """One session with a listing, over on the server's side too, before a test takes its
    baseline of fds or memory: what the first session loads is not the test's clients' cost."""
    from .client import Ctl
    from .proc import fds, settle_fds

    fd0 = fds(srv.pid)
    with Ctl(srv.host, srv.port) as c:
        c.login(srv.user, srv.password)
        c.listing("LIST")
    settle_fds(srv.pid, fd0)
