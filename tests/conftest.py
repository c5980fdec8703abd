"""Shared fixtures: a real ftpd process on a loopback port.

``ftpd_factory(**overrides)`` starts ``python -m ftpd`` with Config fields as flags (``--max-per-ip 3``),
a fresh home in tmp_path and port 0; it reads the bound port from the start-up line the CLI prints, and
stops the process (SIGTERM, by PID) at the end of the test. ``ftpd_server`` is one with the defaults
tests want: no failed-login delay, unlimited per-IP sessions.
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
