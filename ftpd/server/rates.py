"""Bandwidth limits: a token bucket per transfer, and a server-wide rate shared between transfers.

The data pumps (``data.py``) ask a transfer's ``RateLimiter`` two things:
``grant(want)`` -- how many bytes may go (or be read) now, possibly 0 -- and, when it said 0,
``await wait(want)``, which sleeps exactly until enough tokens have accumulated (one timer, no
polling). A download then sends ``sendfile`` slices of the granted size; an upload reads no more
than it was granted and stops reading while it waits, so TCP's window pushes back on the client.
Block pumps (TLS streams, TYPE A: no sendfile) read
``block()``-sized pieces and ``await spend(n)`` afterwards, which sleeps off the debt. Transfers
without a limit get no limiter at all (``None``): unlimited sessions pay nothing.

Smoothness: a pump is granted bytes once a quantum (``QUANTUM_SECONDS`` of the rate, at least
``MIN_QUANTUM`` bytes) has accumulated, and the bucket holds at most two, so a transfer never
bursts more than a tenth of a second's worth after a pause, a late timer costs no throughput,
and throughput over any window much longer than that stays at the rate. A pump that could not send
everything it was granted (a full socket buffer) gives the rest back (``refund``).

The server-wide limits (``max_total_download_rate``, ``max_total_upload_rate``) are shared fairly:
each running limited transfer gets ``total / n``, where ``n`` is the number of transfers in that
direction running now in *all* workers (per-worker cells of ``addrtable.AddressTable``, in shared memory), read
again at each refill, so a transfer's share grows as others finish. A transfer slower than its
share (a slow client) leaves the difference unused rather than lending it out: simple, and it
never lets the server exceed the total.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Bandwidth", "RateLimiter", "MIN_QUANTUM", "QUANTUM_SECONDS"]

QUANTUM_SECONDS = 0.05  # the bucket's depth, in seconds of the rate
MIN_QUANTUM = 4096  # bytes: below that, syscalls would cost more than the smoothness gains


class TransferCount(Protocol):
    """Running limited transfers per direction, over all workers (``addrtable.AddressTable``)."""

    def transfers(self, upload: bool) -> int: ...

    def add_transfer(self, upload: bool, delta: int) -> None: ...


class RateLimiter:
    """The token bucket of one transfer (see the module docstring)."""

    __slots__ = ("rate", "total", "shared", "upload", "tokens", "stamp", "clock", "_open")

    def __init__(
        self,
        rate: int,
        total: int = 0,
        shared: TransferCount | None = None,
        upload: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate  # this transfer's own limit, bytes/s (0: none)
        self.total = total  # the server's limit for the direction, shared (0: none)
        self.shared = shared
        self.upload = upload
        self.clock = clock
        self._open = shared is not None and total > 0
        if self._open:
            shared.add_transfer(upload, 1)  # type: ignore[union-attr]
        self.stamp = clock()
        self.tokens = float(self._quantum(self.current_rate()))

    def current_rate(self) -> float:
        """Bytes per second this transfer may use now."""
        rate = float(self.rate) if self.rate else float("inf")
        if self.total:
            running = self.shared.transfers(self.upload) if self.shared is not None else 1
            rate = min(rate, self.total / max(1, running))
        return rate

    @staticmethod
    def _quantum(rate: float) -> int:
        return max(MIN_QUANTUM, int(rate * QUANTUM_SECONDS))

    def _refill(self) -> float:
        rate = self.current_rate()
        now = self.clock()
        # Two quanta deep: a pump grants once a quantum is there, so the second one keeps what a
        # late timer (loop lag) adds; with one, every late wake-up would lower the rate.
        cap = 2 * self._quantum(rate)
        self.tokens = min(float(cap), self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        return rate

    def grant(self, want: int) -> int:
        """Bytes that may be transferred now (``<= want``), or 0: then ``await wait(want)``."""
        rate = self._refill()
        need = min(want, self._quantum(rate))
        # Half a byte of slack: a pump that slept exactly ``delay()`` must not be refused for a
        # rounding error in the refill (and then spin on ever smaller delays).
        if self.tokens + 0.5 < need:
            return 0
        n = min(want, int(self.tokens + 0.5))
        self.tokens -= n
        return n

    def delay(self, want: int) -> float:
        """Seconds until ``grant(want)`` can give something."""
        rate = self._refill()
        need = min(want, self._quantum(rate))
        return max(0.0, (need - self.tokens) / rate)

    async def wait(self, want: int) -> None:
        """Sleep until ``grant(want)`` can give something: one timer, no polling."""
        delay = self.delay(want)
        if delay > 0:
            await asyncio.sleep(delay)

    def block(self, size: int) -> int:
        """A read size for pumps that cannot ask before each byte (TLS records, converted
        blocks): at most one quantum, so that ``spend`` keeps them smooth."""
        return max(1, min(size, self._quantum(self.current_rate())))

    async def spend(self, n: int) -> None:
        """Account ``n`` bytes already moved, then sleep off any debt (the pump does not read
        or send meanwhile): for pumps whose next byte count is known only afterwards."""
        rate = self._refill()
        self.tokens -= n
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / rate)

    def refund(self, n: int) -> None:
        """Give back granted bytes that were not transferred."""
        if n > 0:
            self.tokens += n

    def close(self) -> None:
        """The transfer ended: it no longer takes a share of the server-wide rate."""
        if self._open:
            self._open = False
            self.shared.add_transfer(self.upload, -1)  # type: ignore[union-attr]


class Bandwidth:
    """The limits of one server process: makes each transfer's limiter (or none)."""

    def __init__(
        self,
        download: int,
        upload: int,
        total_download: int,
        total_upload: int,
        shared: TransferCount,
    ) -> None:
        self.download = download
        self.upload = upload
        self.total_download = total_download
        self.total_upload = total_upload
        self.shared = shared

    def limiter(self, upload: bool, account_rate: int = 0) -> RateLimiter | None:
        """The limiter of a new transfer; ``account_rate`` (the users file's) overrides the
        server's per-session rate. ``None`` when nothing limits it."""
        rate = account_rate or (self.upload if upload else self.download)
        total = self.total_upload if upload else self.total_download
        if not rate and not total:
            return None
        return RateLimiter(rate, total, self.shared, upload)
