"""The open model (``--rate``): actions start on a schedule, whatever the server's pace.

A closed model (sessions that act, wait for the answer, then act again) slows down with the server
it measures: when the server stalls, nobody sends, and the stall shows up in one sample per
session only ("coordinated omission"). Here, as in wrk2 and Gatling, a producer lays down
intended start times at a fixed rate (``constant``: evenly spaced; ``poisson``: exponential gaps
of the same mean), and a slot (a logged-in session, or a login's connection) takes the oldest one
when it is free. Latency runs from the intended start, so time spent queued behind a stalled
server is counted; the service time (from the actual start) is kept beside it.

A start that cannot be made within ``--timeout`` of its intended time, or is still waiting when
the run ends, is a *missed start*: counted in ``Recorder.missed`` and as a ``schedule
MissedStart`` error, never silently dropped.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

MISSED = "MissedStart"


class Arrivals:
    """Intended start times in ``perf_counter_ns``: evenly spaced, or a Poisson process."""

    def __init__(self, rate: float, poisson: bool, rng: random.Random, start_ns: int) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.poisson = poisson
        self.rng = rng
        self.start_ns = start_ns
        self.n = 0
        self._t = float(start_ns)
        self.due = start_ns if not poisson else self._gap_from(self._t)

    def _gap_from(self, t: float) -> int:
        self._t = t + self.rng.expovariate(self.rate) * 1e9
        return int(self._t)

    def advance(self) -> None:
        """Move to the next intended start."""
        self.n += 1
        if self.poisson:
            self.due = self._gap_from(self._t)
        else:
            # From the start, not by accumulating gaps: no drift however long the run.
            self.due = self.start_ns + int(self.n * 1e9 / self.rate)


class Host(Protocol):
    """What the open loop needs from a worker (``worker.Worker`` provides it)."""

    def running(self) -> bool: ...

    def take(self) -> bool: ...

    def remaining(self) -> float: ...

    def count_intended(self) -> None: ...

    def count_missed(self, n: int = 1) -> None: ...


# ``action(slot, intended_ns)`` runs one action on a slot; False when the slot is unusable now
# (its session died), which retires it.
Action = Callable[[int, int], Awaitable[bool]]


async def open_loop(
    host: Host,
    slots: int,
    rate: float,
    poisson: bool,
    rng: random.Random,
    phase_s: float,
    timeout_s: float,
    action: Action,
) -> None:
    """Run ``action`` at ``rate`` starts per second over ``slots`` concurrent slots until the end."""
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    # One base for both ends, so a run of D s at R/s lays down exactly D x R starts.
    base_ns = time.perf_counter_ns()
    end_ns = base_ns + int(host.remaining() * 1e9)
    arrivals = Arrivals(rate, poisson, rng, base_ns + int(phase_s * 1e9))
    timeout_ns = int(timeout_s * 1e9)

    async def producer() -> None:
        try:
            while host.running():
                now = time.perf_counter_ns()
                if arrivals.due > now:
                    await asyncio.sleep(min((arrivals.due - now) / 1e9, host.remaining()))
                    continue
                # Every start now due is queued at once: a late wake-up (busy client) is
                # counted in the latency of those starts, not skipped.
                if arrivals.due >= end_ns or not host.take():
                    return
                queue.put_nowait(arrivals.due)
                host.count_intended()
                arrivals.advance()
        finally:
            for _ in range(slots):
                queue.put_nowait(None)

    async def slot(j: int) -> None:
        while True:
            intended = await queue.get()
            if intended is None:
                return
            if not host.running() or time.perf_counter_ns() - intended > timeout_ns:
                host.count_missed()
                continue
            if not await action(j, intended):
                return

    tasks = [asyncio.create_task(producer())]
    tasks += [asyncio.create_task(slot(j)) for j in range(slots)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        # Starts still queued (every slot retired, or the run was stopped) were never made.
        left = sum(1 for i in range(queue.qsize()) if queue.get_nowait() is not None)
        if left:
            host.count_missed(left)
