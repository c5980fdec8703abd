"""Several worker processes on one port (``--workers N``), and limits that hold across them.

Each worker is a forked process with its own event loop and its own listening socket bound with
SO_REUSEPORT, so the kernel spreads new connections over the workers' accept queues. The workers
share the whole passive port range (``passive.PortMap``: no fixed slice starves one worker while
another has spare ports).

Limits (``max_sessions``, ``max_per_ip``, per-user ``max_sessions``) must hold for the whole server,
not per worker. ``SharedCounters`` keeps them in one anonymous shared-memory map created before the
fork: every worker writes only its own row (no locks, no races) and a check sums the column over all
rows. IPs and user names are hashed into 65,536 buckets; a collision can only make a limit stricter
for the two colliding keys, never looser.

The supervisor (the parent) does no FTP: it forwards SIGTERM/SIGINT (and SIGHUP, reload) to the workers, restarts a
worker that dies unexpectedly, and exits when all workers have exited.
"""

from __future__ import annotations

import logging
import mmap
import os
import signal
import socket
import time
import zlib
from collections.abc import Callable

__all__ = ["SharedCounters", "reserve_port", "supervise"]

log = logging.getLogger("ftpd.workers")

BUCKETS = 65536
_TOTAL = 0  # column 0: sessions of the worker
_IP0 = 1  # columns 1 .. BUCKETS: sessions per IP bucket
_USER0 = 1 + BUCKETS  # then sessions per user bucket
_XFER0 = 1 + 2 * BUCKETS  # then running rate-shared transfers: downloads, uploads (rates.py)


def _bucket(key: str) -> int:
    return zlib.crc32(key.encode("utf-8", "surrogateescape")) & (BUCKETS - 1)


class SharedCounters:
    """Session counters shared by all workers (see the module docstring)."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self.row = 3 + 2 * BUCKETS  # int32 cells per worker
        self._mm = mmap.mmap(-1, self.workers * self.row * 4)  # MAP_SHARED | MAP_ANONYMOUS
        self._cells = memoryview(self._mm).cast("i")
        self.index = 0  # this process's row

    def _add(self, column: int, delta: int) -> None:
        self._cells[self.index * self.row + column] += delta

    def _sum(self, column: int) -> int:
        cells, row = self._cells, self.row
        return sum(cells[w * row + column] for w in range(self.workers))

    def total(self) -> int:
        return self._sum(_TOTAL)

    def ip_count(self, ip: str) -> int:
        return self._sum(_IP0 + _bucket(ip))

    def user_count(self, name: str) -> int:
        return self._sum(_USER0 + _bucket(name))

    def add_session(self, ip: str, delta: int) -> None:
        self._add(_TOTAL, delta)
        self._add(_IP0 + _bucket(ip), delta)

    def add_user(self, name: str, delta: int) -> None:
        self._add(_USER0 + _bucket(name), delta)

    def transfers(self, upload: bool) -> int:
        """Transfers sharing ``max_total_*_rate`` in that direction, in every worker."""
        return self._sum(_XFER0 + upload)

    def add_transfer(self, upload: bool, delta: int) -> None:
        self._add(_XFER0 + upload, delta)

    def reset_row(self, index: int) -> None:
        """Zero a dead worker's row: its sessions died with it."""
        start = index * self.row
        self._cells[start : start + self.row] = memoryview(bytes(self.row * 4)).cast("i")


def reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """Bind (without listening) a SO_REUSEPORT socket so that port 0 becomes one fixed port that
    every worker can bind too; a bound, non-listening socket receives no connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6 and host == "::":
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind((host, port))
    return sock, sock.getsockname()[1]


def supervise(workers: int, child: Callable[[int, int], int], on_ready: Callable[[], None]) -> int:
    """Fork ``workers`` children running ``child(index, ready_fd)`` and watch them.

    A child writes one byte to ``ready_fd`` once it listens. Returns 0 when every worker exited 0
    after a shutdown signal, else 1.
    """
    stopping = False
    pids: dict[int, int] = {}

    def spawn(index: int) -> tuple[int, int]:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(r)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            # Until its loop handles SIGHUP (reload), one must not kill a starting worker.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            code = 1
            try:
                code = child(index, w)
            finally:
                os._exit(code)
        os.close(w)
        pids[pid] = index
        return pid, r

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping and signum == signal.SIGINT:
            pass
        stopping = True
        for pid in list(pids):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def forward_reload(signum: int, _frame: object) -> None:
        # SIGHUP: every worker reloads (each re-reads the files itself); nothing stops.
        for pid in list(pids):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, forward_reload)
    readers = [spawn(i)[1] for i in range(workers)]
    for r in readers:
        ok = os.read(r, 1)
        os.close(r)
        if not ok:
            log.error("a worker failed to start")
            forward(signal.SIGTERM, None)
            break
    else:
        on_ready()
    code = 0
    while pids:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        index = pids.pop(pid, None)
        exit_code = os.waitstatus_to_exitcode(status)
        if index is None:
            continue
        if stopping:
            if exit_code != 0:
                code = 1
            continue
        log.error("worker %d (pid %d) died with status %d: restarting it", index, pid, exit_code)
        time.sleep(0.5)  # a worker that dies at once must not turn into a fork loop
        _, r = spawn(index)
        os.read(r, 1)
        os.close(r)
    return code
