"""The control path's own CPU, without sockets: a login and a NOOP through a real ``ControlChannel``.

``bench/compare.py`` measures a whole server: the kernel's TCP work, uvloop, and ftpd's Python.
This takes the first two away. It starts a real server in-process (``ftpd.api.Server``, single
user, a tmpfs root), then drives ``ControlChannel`` objects through a fake transport that only
counts the bytes written: ``connection_made``, ``USER``, ``PASS``, ``QUIT``, ``connection_lost``
per login, and ``NOOP`` on one logged-in session. What it prints is the Python cost of the
session lifecycle, the command path, the address table and the login accounting: the part an
optimisation of ftpd's own code can change.

    python3 bench/control_path.py                  # this checkout
    python3 bench/control_path.py --tree /tmp/old  # another tree (git archive REV | tar -x -C /tmp/old)

It prints the login by step (the channel's creation, ``connection_made`` with the greeting, each
command, ``connection_lost``), each the best of ``--rounds`` rounds; run two trees alternately
several times, the machine's speed drifts (by up to 1.5x between runs here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
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


STEPS = ("channel", "connect", "USER", "PASS", "QUIT", "lost")


@contextlib.asynccontextmanager
async def _started(config: Any) -> AsyncIterator[Any]:
    """A started server's session host: what ``ControlChannel`` takes. Trees before ``ftpd.api``
    (such as 9ba10eb, issue 18's day) handed channels the ``Server`` itself."""
    try:
        from ftpd.api import Server
    except ImportError:
        from ftpd.server.server import Server as OldServer

        old = OldServer(config)
        await old.start()
        try:
            yield old
        finally:
            await old.shutdown(0)
        return
    async with Server(config) as server:
        yield server._core.host  # type: ignore[union-attr]


async def measure(root: str, n: int, rounds: int) -> tuple[dict[str, float], float]:
    """(µs per step of a login, µs per NOOP), the best round of each."""
    from ftpd.config import Config
    from ftpd.server.control import ControlChannel

    config = Config(
        host="127.0.0.1", port=0, root=root, user="bench", password="bench-pass",
        max_per_ip=0, max_sessions=0, pasv_ports="61000-61099", log_level="warning",
    )  # fmt: skip
    async with _started(config) as host:
        clock = time.perf_counter
        transport = FakeTransport()

        def login(spent: list[float]) -> None:
            t0 = clock()
            ch = ControlChannel(host)
            t1 = clock()
            ch.connection_made(transport)
            t2 = clock()
            ch.data_received(b"USER bench\r\n")
            t3 = clock()
            ch.data_received(b"PASS bench-pass\r\n")
            t4 = clock()
            ch.data_received(b"QUIT\r\n")
            t5 = clock()
            ch.connection_lost(None)
            t6 = clock()
            spent[0] += t1 - t0
            spent[1] += t2 - t1
            spent[2] += t3 - t2
            spent[3] += t4 - t3
            spent[4] += t5 - t4
            spent[5] += t6 - t5

        warm = [0.0] * len(STEPS)
        for _ in range(200):  # warm-up: caches, the user's filesystem object
            login(warm)
        best = dict.fromkeys(STEPS, float("inf"))
        for _ in range(rounds):
            spent = [0.0] * len(STEPS)
            for _ in range(n):
                login(spent)
            for name, total in zip(STEPS, spent, strict=True):
                best[name] = min(best[name], total / n * 1e6)
        best_noop = float("inf")
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
    return best, best_noop


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
        steps, per_noop = run(measure(d, a.n, a.rounds))
    parts = ", ".join(f"{name} {steps[name]:.1f}" for name in STEPS)
    print(f"{a.tree}: login {sum(steps.values()):.1f} µs ({parts}), NOOP {per_noop:.2f} µs "
          "(Python only, no sockets)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
