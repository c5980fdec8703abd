"""TEMPORARY stand-in fixtures for tests/load until tests/conftest.py provides the real ones.

TEMPORARY: the lead deletes this file once tests/conftest.py has ``ftpd_server`` and
``ftpd_factory`` starting the real ftpd. Until then the same interface is served by pyftpdlib
(through bench/pyftpdlib_server.py): an object with ``.host .port .user .password .root .pid``.
The fixtures are defined only when tests/conftest.py does not define them already.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "bench" / "pyftpdlib_server.py"
PASV_PORTS = "65100-65499"  # outside the ephemeral range and the ftpd fixtures


@dataclass
class _Server:
    host: str
    port: int
    user: str
    password: str
    root: Path
    pid: int


def _start(root: Path, **overrides: object) -> tuple[subprocess.Popen[str], _Server]:
    user = str(overrides.get("user", "user"))
    password = str(overrides.get("password", "pass"))
    cmd = [
        sys.executable,
        str(LAUNCHER),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--root",
        str(root),
        "--user",
        user,
        "--password",
        password,
        "--pasv-ports",
        PASV_PORTS,
        "--auth-failed-delay",
        str(overrides.get("login_fail_delay", 0.05)),
        "--max-login-attempts",
        str(overrides.get("max_login_attempts", 3)),
        "--idle-timeout",
        str(overrides.get("idle_timeout", 300.0)),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if len(line) != 3 or line[0] != "ready":
        proc.kill()
        raise RuntimeError(f"pyftpdlib did not start: {line}")
    return proc, _Server("127.0.0.1", int(line[2]), user, password, root, proc.pid)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_ROOT_CONFTEST = (
    (Path(__file__).resolve().parents[1] / "conftest.py").read_text()
    if (Path(__file__).resolve().parents[1] / "conftest.py").exists()
    else ""
)

if "def ftpd_server" not in _ROOT_CONFTEST:

    @pytest.fixture
    def ftpd_server(tmp_path: Path) -> Iterator[_Server]:
        """TEMPORARY: pyftpdlib standing in for ftpd."""
        root = tmp_path / "home"
        root.mkdir()
        proc, server = _start(root)
        try:
            yield server
        finally:
            _stop(proc)


if "def ftpd_factory" not in _ROOT_CONFTEST:

    @pytest.fixture
    def ftpd_factory(tmp_path: Path) -> Iterator[Callable[..., _Server]]:
        """TEMPORARY: start pyftpdlib with Config-like overrides (password, idle_timeout...)."""
        procs: list[subprocess.Popen[str]] = []

        def factory(**overrides: object) -> _Server:
            root = tmp_path / f"home{len(procs)}"
            root.mkdir()
            proc, server = _start(root, **overrides)
            procs.append(proc)
            return server

        try:
            yield factory
        finally:
            for proc in procs:
                _stop(proc)
