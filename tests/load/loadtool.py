"""Run ``python -m ftpd.load`` as a subprocess and read its JSON result; a pyftpdlib to run it on."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"


def server_args(server: Any) -> list[str]:
    """Connection options for a fixture server object."""
    return [
        "--host",
        server.host,
        "--port",
        str(server.port),
        "--user",
        server.user,
        "--password",
        server.password,
    ]


def run_load(
    args: list[str], tmp_path: Path, timeout: float = 60.0
) -> tuple[int, dict[str, Any], str]:
    """Run the tool with ``args`` plus ``--json``; return (exit status, result, stderr)."""
    out = tmp_path / f"result-{len(list(tmp_path.glob('result-*.json')))}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "ftpd.load", *args, "--json", str(out), "--progress", "plain"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    result = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, result, proc.stdout + proc.stderr


def assert_sane(result: dict[str, Any], scenario: str) -> None:
    """Fields every result has, with consistent values."""
    assert result["tool"] == "ftpd-load" and result["scenario"] == scenario
    assert result["started"] < result["ended"]
    assert "password" not in result["params"]
    assert result["run_s"] > 0
    assert result["errors_total"] == sum(result["errors"].values())
    for op, lat in result["latency"].items():
        assert lat["count"] == result["counts"][op]
        assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert lat["mean"] <= lat["max"]
    assert result["timeline"], "no progress points"


def url_of(server: Any) -> str:
    """The server as the URL ``ftpd`` prints (with the password), for the positional target."""
    return f"ftp://{server.user}:{server.password}@{server.host}:{server.port}/"


@dataclass
class PyftpdlibServer:
    """A real pyftpdlib server in its own process (bench/pyftpdlib_server.py)."""

    host: str
    port: int
    user: str
    password: str
    root: Path
    pid: int
    proc: subprocess.Popen[str]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_pyftpdlib(root: Path, pasv_ports: str = "65500-65535") -> PyftpdlibServer:
    """Start pyftpdlib as ``bench/compare.py`` does (no limits, sendfile) on a free port."""
    root.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(BENCH / "pyftpdlib_server.py"), "--host", "127.0.0.1"]
    cmd += ["--port", "0", "--root", str(root), "--user", "user", "--password", "12345"]
    cmd += ["--pasv-ports", pasv_ports, "--auth-failed-delay", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "ready <pid> <port>", or EOF if it failed to start
    if not line.startswith("ready "):
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"pyftpdlib did not start: {line!r}")
    _, pid, port = line.split()
    return PyftpdlibServer("127.0.0.1", int(port), "user", "12345", root, int(pid), proc)
