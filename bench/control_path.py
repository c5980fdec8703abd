"""The control path's own CPU, without sockets: a login and a NOOP through a real ``ControlChannel``.

``bench/compare.py`` measures a whole server: the kernel's TCP work, uvloop, and ftpd's Python.
This takes the first two away. It starts a real server in-process (``ftpd.api.Server``, single
user, a tmpfs root), then drives ``ControlChannel`` objects through a fake transport that only
counts the bytes written: ``connection_made``, ``USER``, ``PASS``, ``QUIT``, ``connection_lost``
per login, and ``NOOP`` on one logged-in session. What it prints is the Python cost of the
session lifecycle, the command path, the address table and the login accounting: the part an
optimisation of ftpd's own code can change.

    python3 bench/control_path.py                  # this checkout
    python3 bench/control_path.py --tree /tmp/old  # another one (git archive REV ftpd | tar -x)

Figures are the best of ``--rounds`` rounds of ``process_time``; run two trees alternately
several times, the machine's speed drifts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


class FakeTransport:
    """What ``ControlChannel`` uses of an asyncio transport, writing nowhere."""

    def __init__(self) -> None:
        self.written = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 21)}.get(
            name, default
        )

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing


async def measure(root: str, n: int, rounds: int) -> tuple[float, float]:
    """(µs per login, µs per NOOP), the best round of each."""
    from ftpd.api import Server
    from ftpd.config import Config
    from ftpd.server.control import ControlChannel

    config = Config(
        host="127.0.0.1", port=0, root=root, user="bench", password="bench-pass",
        max_per_ip=0, max_sessions=0, pasv_ports="61000-61099", log_level="warning",
    )  # fmt: skip
    async with Server(config) as server:
        host = server._core.host  # type: ignore[union-attr]

        def login() -> None:
            ch = ControlChannel(host)
            ch.connection_made(FakeTransport())
            ch.data_received(b"USER bench\r\n")
            ch.data_received(b"PASS bench-pass\r\n")
            ch.data_received(b"QUIT\r\n")
            ch.connection_lost(None)

        for _ in range(200):  # warm-up: caches, the user's filesystem object
            login()
        best_login = best_noop = float("inf")
        for _ in range(rounds):
            start = time.process_time()
            for _ in range(n):
                login()
            best_login = min(best_login, (time.process_time() - start) / n * 1e6)
        ch = ControlChannel(host)
        ch.connection_made(FakeTransport())
        ch.data_received(b"USER bench\r\n")
        ch.data_received(b"PASS bench-pass\r\n")
        for _ in range(rounds):
            start = time.process_time()
            for _ in range(4 * n):
                ch.data_received(b"NOOP\r\n")
            best_noop = min(best_noop, (time.process_time() - start) / (4 * n) * 1e6)
        ch.connection_lost(None)
    return best_login, best_noop


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]),
                   help="the directory holding the ftpd package to measure")  # fmt: skip
    p.add_argument("-n", type=int, default=4000, help="logins per round (NOOPs: 4x)")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    sys.path.insert(0, a.tree)
    try:
        import uvloop

        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as d:
        per_login, per_noop = run(measure(d, a.n, a.rounds))
    print(f"{a.tree}: login {per_login:.1f} µs, NOOP {per_noop:.2f} µs (Python only, no sockets)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
