"""Start-up time of a fresh test server: ftpd's pytest fixtures against pytest-localftpserver's.

Each round starts one server, connects and reads its 220 greeting (ready means serving), then
stops it; the figure is start-to-greeting. ftpd: ``ftpd.testing.fixtures.start_test_server``
(what ``ftp_server`` / ``ftps_server`` call). pytest-localftpserver: ``PytestLocalFTPServer``
(what its ``ftpserver`` / ``ftpserver_TLS`` fixtures build), measured only if it is importable;
it is no dependency of ftpd (install it in a throw-away venv to compare)::

    python3 -m venv --system-site-packages /tmp/lfs && /tmp/lfs/bin/pip install pytest-localftpserver
    PYTHONPATH=$PWD /tmp/lfs/bin/python bench/fixture_startup.py --rounds 30

The first FTPS round of ftpd includes making the throw-away CA (once per test run); it is
reported apart. Figures are only meaningful on a quiet machine.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def connect(host: str, port: int) -> socket.socket:
    """pytest-localftpserver's constructor returns before its thread listens: retry a refused
    connection (1 ms apart, 10 s at most), so that both are timed until they really serve."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return socket.create_connection((host, port), timeout=10)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)


def greet(host: str, port: int) -> None:
    with connect(host, port) as sock:
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(512)
            if not chunk:
                raise ConnectionError("closed before the greeting")
            data += chunk
        assert data.startswith(b"220"), data


def rounds(
    name: str, n: int, start: Callable[[int], tuple[Any, str, int]], stop: Callable[[Any], None]
) -> list[float]:
    times, stops = [], []
    for i in range(n):
        began = time.perf_counter()
        handle, host, port = start(i)
        greet(host, port)
        times.append(time.perf_counter() - began)
        began = time.perf_counter()
        stop(handle)
        stops.append(time.perf_counter() - began)
    ms = sorted(t * 1000 for t in times)
    print(
        f"{name:<36} start: median {statistics.median(ms):6.1f} ms, min {ms[0]:6.1f}, "
        f"max {ms[-1]:6.1f}; stop: median {1000 * statistics.median(stops):6.1f} ms (n={n})"
    )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    from ftpd.testing.fixtures import start_test_server

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)

        def ftpd(tls: bool) -> Callable[[int], tuple[Any, str, int]]:
            def start(i: int) -> tuple[Any, str, int]:
                server = start_test_server(
                    base / f"{'s' if tls else 'p'}{i}", tls=tls, ca_dir=base / "ca"
                )
                return server, server.host, server.port

            return start

        first = time.perf_counter()
        server, host, port = ftpd(True)(9999)
        greet(host, port)
        print(
            f"{'ftpd ftps_server, first (makes CA)':<36} start: {1000 * (time.perf_counter() - first):.1f} ms"
        )
        server.stop()
        rounds("ftpd ftp_server", args.rounds, ftpd(False), lambda s: s.stop())
        rounds("ftpd ftps_server", args.rounds, ftpd(True), lambda s: s.stop())

    try:
        from pytest_localftpserver.servers import PytestLocalFTPServer
    except ImportError:
        print("pytest-localftpserver is not installed: not compared")
        return

    def lfs(tls: bool) -> Callable[[int], tuple[Any, str, int]]:
        def start(i: int) -> tuple[Any, str, int]:
            server = PytestLocalFTPServer(use_TLS=tls)
            return server, "127.0.0.1", server.server_port

        return start

    rounds("pytest-localftpserver ftpserver", args.rounds, lfs(False), lambda s: s.stop())
    rounds("pytest-localftpserver ftpserver_TLS", args.rounds, lfs(True), lambda s: s.stop())


if __name__ == "__main__":
    main()
