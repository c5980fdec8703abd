"""A worker process: its own event loop, its share of the sessions, and what it reports.

The parent starts workers with the ``spawn`` method and talks to them through three events and
one queue. Protocol of a run, as seen by a worker:

1. send ``hello`` once imported and the host resolved; wait for ``begin`` (all workers start
   connecting at the same moment, so establishment is really concurrent across processes);
2. establish its sessions (scenario-dependent), then send ``ready``; wait for ``go`` (the parent
   samples the server's memory in between, while every session is idle);
3. run the scenario until the duration or the count is exhausted;
4. final checks (a NOOP on every held session), QUIT, then ``done`` with the last measurements.

Every ``interval / 2`` seconds a ``tick`` carries what was measured since the previous one, so the
parent's sum is exact and a partial report survives Ctrl-C. Setting ``stop`` cancels whatever is in
flight: operations not finished by then are not counted.
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from multiprocessing.synchronize import Event
from typing import Any

from ftpd.load.client import (
    FtpClient,
    ReplyError,
    ShortTransfer,
    client_context,
    error_key,
    error_text,
)
from ftpd.load.options import Options, Plan
from ftpd.load.schedule import MISSED, Action, open_loop
from ftpd.load.stats import Recorder

POLL = 0.02  # seconds between checks of the parent's events


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop to use: uvloop when installed (``auto``), or as asked."""
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise SystemExit("--loop uvloop: uvloop is not installed") from None
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def make_ssl_context(opts: Options) -> ssl.SSLContext:
    """Client TLS context: system CAs (or ``--cafile``), verification off with ``--insecure``."""
    return client_context(opts.cafile, opts.insecure)


class Worker:
    """State and helpers shared by the scenarios of one worker process."""

    def __init__(
        self,
        opts: Options,
        plan: Plan,
        queue: Any,
        begin: Event,
        go: Event,
        stop: Event,
    ) -> None:
        self.opts = opts
        self.plan = plan
        self.queue = queue
        self._begin = begin
        self._go = go
        self._stop = stop
        self.rec = Recorder()
        self.rng = random.Random(plan.seed)
        self.ssl_context = make_ssl_context(opts) if opts.tls else None
        self.sessions: list[FtpClient | None] = []
        self.inflight = 0
        self.stopped = False
        self.deadline = 0.0
        self.left = plan.count
        self.addr: tuple[Any, ...] = ()
        self.family = socket.AF_INET
        # Global round-robin: the run's session g binds to sources[g % len], whichever worker
        # owns it, so addresses stay evenly used whatever the number of processes.
        self._source_i = plan.first_session
        self._tasks: set[asyncio.Task[Any]] = set()
        self.info: dict[str, Any] = {"established": 0, "alive": None}
        self._flushed_ns = time.perf_counter_ns()

    # -- lifecycle ---------------------------------------------------------------------------

    async def main(self, scenario: Callable[[Worker], Awaitable[None]]) -> None:
        """Run the whole protocol described in the module docstring, with ``scenario``."""
        ticker = poller = None
        try:
            await self._resolve()
            self.queue.put(("hello", self.plan.index))
            ticker = asyncio.create_task(self._ticker())
            poller = asyncio.create_task(self._stop_poller())
            if await self.wait_event(self._begin):
                await scenario(self)
        except Exception:
            self.queue.put(("fatal", self.plan.index, traceback.format_exc()))
        finally:
            for task in (ticker, poller):
                if task is not None:
                    task.cancel()
            for s in self.sessions:
                if s is not None:
                    s.close()
            self.info["sessions_open_at_end"] = self.up()
            self.queue.put(("done", self.plan.index, self.rec.to_wire(), self.info))

    async def _resolve(self) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_UNSPEC
        if self.plan.sources:
            family = socket.AF_INET6 if ":" in self.plan.sources[0] else socket.AF_INET
        infos = await loop.getaddrinfo(
            self.opts.host, self.opts.port, family=family, type=socket.SOCK_STREAM
        )
        self.family, _, _, _, self.addr = infos[0]

    async def _ticker(self) -> None:
        period = max(self.opts.interval / 2, 0.05)
        while True:
            await asyncio.sleep(period)
            self.flush()

    def flush(self) -> None:
        """Send what was measured since the last flush to the parent.

        The message says which span of time it covers (the shared monotonic clock), so that the
        parent divides each worker's counts by the time they really took, even for a last,
        partial interval.
        """
        rec, self.rec = self.rec, Recorder()
        now = time.perf_counter_ns()
        since, self._flushed_ns = self._flushed_ns, now
        info = {
            "sessions": self.up(),
            "since_ns": since,
            "until_ns": now,
            "run_start_ns": self.info.get("run_start_ns"),
            "run_end_ns": self.info.get("run_end_ns"),
        }
        self.queue.put(("tick", self.plan.index, rec.to_wire(), info))

    def up(self) -> int:
        """Sessions currently open (plus logins in flight)."""
        return sum(1 for s in self.sessions if s is not None and s.alive) + self.inflight

    async def _stop_poller(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(POLL)
        self.stopped = True
        for task in list(self._tasks):
            task.cancel()

    async def wait_event(self, event: Event) -> bool:
        """Wait for one of the parent's events; False if told to stop first."""
        while not event.is_set():
            if self._stop.is_set():
                self.stopped = True
                return False
            await asyncio.sleep(POLL)
        return not self.stopped

    async def barrier(self, ready_info: dict[str, Any]) -> bool:
        """Report ``ready`` and wait for ``go``; then start the duration. False when stopped."""
        self.flush()
        self.queue.put(("ready", self.plan.index, ready_info))
        if not await self.wait_event(self._go):
            return False
        self.info["run_start_ns"] = time.perf_counter_ns()
        self.deadline = time.perf_counter() + self.opts.duration
        return True

    def end_run(self) -> None:
        """Mark the end of the measured phase (before final checks and QUIT); tell the parent."""
        self.info["run_end_ns"] = time.perf_counter_ns()
        self.flush()
        self.queue.put(("ran", self.plan.index))

    async def run_tasks(self, coros: Iterable[Coroutine[Any, Any, Any]]) -> None:
        """Run coroutines concurrently; all are cancelled when the parent says stop."""
        tasks = [asyncio.create_task(c) for c in coros]
        self._tasks.update(tasks)
        if self.stopped:
            for task in tasks:
                task.cancel()
        try:
            results = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._tasks.difference_update(tasks)
        for result in results:
            if isinstance(result, Exception):
                # A bug in a scenario loop, not a measured failure: the parent counts it.
                self.queue.put(
                    ("fatal", self.plan.index, "".join(traceback.format_exception(result)))
                )

    # -- run-phase helpers -------------------------------------------------------------------

    def running(self) -> bool:
        """True while the run should go on (not stopped, before the deadline)."""
        return not self.stopped and time.perf_counter() < self.deadline

    def take(self) -> bool:
        """Consume one operation of the ``--count`` budget (always True without a count)."""
        if self.left < 0:
            return True
        if self.left == 0:
            return False
        self.left -= 1
        return True

    def count_intended(self) -> None:
        """One start laid down by the open model's schedule."""
        self.rec.intended += 1

    def count_missed(self, n: int = 1) -> None:
        """``n`` scheduled starts never made: counted, and shown as errors."""
        self.rec.missed += n
        key = f"schedule {MISSED}"
        self.rec.errors[key] = self.rec.errors.get(key, 0) + n

    async def open_loop(self, slots: int, action: Action) -> None:
        """Run ``action`` on ``slots`` slots at this worker's share of ``--rate`` (open model)."""
        plan = self.plan
        await open_loop(
            self,
            slots,
            plan.rate,
            self.opts.arrivals == "poisson",
            self.rng,
            plan.rate_phase,
            self.opts.timeout,
            action,
        )

    def remaining(self) -> float:
        """Seconds left until the deadline (>= 0)."""
        return max(0.0, self.deadline - time.perf_counter())

    async def sleep(self, seconds: float) -> bool:
        """Sleep, but not past the deadline; True if the run should go on afterwards."""
        await asyncio.sleep(min(seconds, self.remaining()))
        return self.running()

    def source(self) -> str | None:
        """Next source address (None: let the kernel choose)."""
        sources = self.plan.sources
        if not sources:
            return None
        address = sources[self._source_i % len(sources)]
        self._source_i += 1
        return address

    def failed(self, name: str, exc: BaseException) -> None:
        """Count a failed operation under its reply code or exception, keeping what it said."""
        self.rec.error(name, error_key(exc), error_text(exc))

    async def op(
        self,
        name: str,
        session: FtpClient | None,
        awaitable: Awaitable[Any],
        intended_ns: int | None = None,
    ) -> bool:
        """Time one operation on ``session`` and record its success or its error.

        After an error that leaves the control channel in an unknown state (timeout, reset,
        garbage) the session is closed; after an error reply it stays usable. With
        ``intended_ns`` (open model) the latency runs from the intended start, so time spent
        waiting behind a stalled server counts (no coordinated omission); the service time,
        from the actual start, is recorded beside it.
        """
        t0 = time.perf_counter_ns()
        if intended_ns is not None:
            self.rec.lag.record(t0 - intended_ns)
        try:
            async with asyncio.timeout(self.opts.timeout):
                result = await awaitable
        except Exception as exc:
            self.failed(name, exc)
            if session is not None and not isinstance(exc, ReplyError | ShortTransfer):
                session.close()
            return False
        t1 = time.perf_counter_ns()
        nbytes = result if isinstance(result, int) else 0
        if intended_ns is None:
            self.rec.ok(name, t1 - t0, nbytes)
        else:
            self.rec.ok(name, t1 - intended_ns, nbytes, service_ns=t1 - t0)
        return True

    async def connect(self, s: FtpClient) -> None:
        """Open ``s``'s control connection to the target and secure it (``--tls``, ``ftps://``)."""
        opts = self.opts
        await s.connect(
            self.addr, self.family, self.source(), self.ssl_context, opts.host, opts.implicit_tls
        )
        if self.ssl_context is not None:
            await s.start_tls()

    async def open_session(self, name: str, binary: bool) -> FtpClient | None:
        """Connect, optionally secure, log in (and TYPE I when ``binary``); timed as ``name``."""
        s = FtpClient()
        t0 = time.perf_counter_ns()
        try:
            async with asyncio.timeout(self.opts.timeout):
                await self.connect(s)
                await s.login(self.opts.user, self.opts.password)
                if binary:
                    await s.expect("TYPE I", (200,))
        except Exception as exc:
            s.close()
            self.failed(name, exc)
            return None
        self.rec.ok(name, time.perf_counter_ns() - t0)
        return s

    async def establish(self, n: int, binary: bool) -> list[FtpClient]:
        """Open ``n`` sessions with bounded concurrency, paced over ``--ramp``; report ``ready``.

        Returns the sessions that logged in; failures are counted as ``establish`` errors.
        """
        self.sessions = [None] * n
        opts = self.opts
        next_i = 0
        t0 = time.perf_counter()
        give_up = t0 + opts.ramp + opts.establish_timeout
        first_ns = time.perf_counter_ns()

        async def connector() -> None:
            nonlocal next_i
            while next_i < n and not self.stopped:
                i = next_i
                next_i += 1
                if opts.ramp > 0:
                    delay = t0 + opts.ramp * i / n - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if time.perf_counter() > give_up:
                    self.rec.error("establish", "EstablishTimeout")
                    continue
                self.sessions[i] = await self.open_session("establish", binary)

        await self.run_tasks(connector() for _ in range(min(self.plan.connect_concurrency, n)))
        held = [s for s in self.sessions if s is not None and s.alive]
        self.info["established"] = len(held)
        self.info["establish_first_ns"] = first_ns
        self.info["establish_last_ns"] = time.perf_counter_ns()
        return held

    async def final_check(self, sessions: list[FtpClient]) -> None:
        """A last NOOP on every session: how many are still alive at the end."""
        if self.stopped:
            return
        alive = 0
        pending = iter(sessions)

        async def checker() -> None:
            nonlocal alive
            for s in pending:
                if not s.alive:
                    self.rec.error("final_noop", "ClosedBeforeEnd")
                elif await self.op("final_noop", s, s.noop()):
                    alive += 1

        await self.run_tasks(checker() for _ in range(min(256, len(sessions))))
        if not self.stopped:
            self.info["alive"] = alive

    async def quit_all(self, sessions: list[FtpClient]) -> None:
        """QUIT every open session (bounded concurrency); failures are counted as ``quit``."""
        if self.stopped:
            return
        pending = iter(sessions)

        async def quitter() -> None:
            for s in pending:
                if s.alive:
                    try:
                        async with asyncio.timeout(min(self.opts.timeout, 5.0)):
                            await s.quit(linger=0.2)
                    except Exception as exc:
                        self.failed("quit", exc)
                        s.close()

        await self.run_tasks(quitter() for _ in range(min(256, len(sessions))))
