"""Password checks that need a hash verification: bounded, fair between addresses, and cancelled
when the client that asked for one goes away.

A verification costs ~50 ms of CPU and 16 MiB (scrypt), so it is the cheapest way to make a server
busy: ``USER x``/``PASS y`` then a reset, thousands of times. Three rules keep a real user's login
fast whatever others do:

- a connection that closes cancels its check (``cancel(owner)``); a check already running in a
  thread cannot be stopped, but its result is dropped (and a failure still counts towards a ban);
- the checks waiting or running are bounded per address (``PER_ADDRESS``) and in total
  (``TOTAL``); beyond that the login is refused at once (the caller answers 421 and closes);
- waiting checks are served round-robin between addresses, and one address runs at most half of
  the verifications at once, so one address's queue never stands in front of another's first
  check and a flood from one address always leaves a thread for the others.

A scrypt verification allocates 16 MiB (argon2 more); glibc would keep such blocks in its
per-thread arenas after a flood (+50 MiB seen). The daemon fixes glibc's mmap threshold at
start-up (``memory.fix_mmap_threshold``, 128 KiB), so such blocks are their own mappings and go
back to the system when freed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from ..auth.base import LoginResult, Refusal

__all__ = ["LoginGate", "BUSY"]

PER_ADDRESS = 4  # checks waiting or running per client address
TOTAL = 256  # checks waiting or running in all
BUSY = "Too many logins in progress, please try later."


# The check itself: (name, password, the client as the user store sees it) -> the answer.
Verify = Callable[[str, str, Any], Awaitable[LoginResult]]


class _Check:
    __slots__ = ("owner", "address", "name", "password", "client", "future", "queued")

    def __init__(
        self,
        owner: object,
        address: str,
        name: str,
        password: str,
        client: Any,
        future: asyncio.Future[LoginResult],
    ) -> None:
        self.owner = owner
        self.address = address
        self.name = name
        self.password = password
        self.client = client
        self.future = future
        self.queued = True


class LoginGate:
    """The server's queue of hash verifications (see the module docstring)."""

    def __init__(self, verify: Verify, slots: int, on_failure: Callable[[str], None]) -> None:
        self.verify = verify
        self.slots = max(1, slots)  # verifications running at once (~ the cores)
        self.on_failure = on_failure  # counts a failed verification of an address (bans)
        self.running = 0
        self.running_per_address = max(1, self.slots // 2)
        self._running: dict[str, int] = {}  # running, per address
        self._queues: dict[str, deque[_Check]] = {}  # address -> its waiting checks
        self._turns: deque[str] = deque()  # addresses with waiting checks, round-robin
        self._per_address: dict[str, int] = {}  # waiting + running, per address
        self._by_owner: dict[object, _Check] = {}
        self._count = 0  # waiting + running

    def pending(self) -> int:
        """Checks waiting or running (0 once every abuse has passed)."""
        return self._count

    def refuses(self, address: str) -> bool:
        return self._count >= TOTAL or self._per_address.get(address, 0) >= PER_ADDRESS

    async def check(
        self, owner: object, address: str, name: str, password: str, client: Any = None
    ) -> LoginResult:
        """The store's answer, or ``Refusal(BUSY)`` at once; cancelled by ``cancel(owner)`` or
        by cancelling the caller (the session's ``finish`` does)."""
        if self.refuses(address):
            return Refusal(BUSY)
        loop = asyncio.get_running_loop()
        job = _Check(owner, address, name, password, client, loop.create_future())
        self._count += 1
        self._per_address[address] = self._per_address.get(address, 0) + 1
        self._by_owner[owner] = job
        queue = self._queues.get(address)
        if queue is None:
            queue = self._queues[address] = deque()
            self._turns.append(address)
        queue.append(job)
        self._pump()
        try:
            return await job.future
        finally:
            if self._by_owner.get(owner) is job:
                del self._by_owner[owner]
            if job.queued:  # cancelled before its turn: it never runs
                job.queued = False
                queue.remove(job)
                if not queue and self._queues.get(address) is queue:
                    del self._queues[address]
                    self._turns.remove(address)
                self._done(job)

    def cancel(self, owner: object) -> None:
        """The owner's connection is gone: drop its check (see the module docstring)."""
        job = self._by_owner.pop(owner, None)
        if job is not None and not job.future.done():
            job.future.cancel()

    def _done(self, job: _Check) -> None:
        self._count -= 1
        left = self._per_address[job.address] - 1
        if left:
            self._per_address[job.address] = left
        else:
            del self._per_address[job.address]

    def _next(self) -> _Check | None:
        turns = self._turns
        for _ in range(len(turns)):
            address = turns.popleft()
            if self._running.get(address, 0) >= self.running_per_address:
                turns.append(address)  # its share of the threads is in use: the next one
                continue
            queue = self._queues[address]
            job = queue.popleft()
            if queue:
                turns.append(address)  # its next check waits for the others' turns
            else:
                del self._queues[address]
            return job
        return None

    def _pump(self) -> None:
        while self.running < self.slots:
            job = self._next()
            if job is None:
                return
            job.queued = False
            self.running += 1
            self._running[job.address] = self._running.get(job.address, 0) + 1
            task = asyncio.ensure_future(self.verify(job.name, job.password, job.client))
            task.add_done_callback(partial(self._finished, job))

    def _finished(self, job: _Check, task: asyncio.Future[LoginResult]) -> None:
        self.running -= 1
        left = self._running[job.address] - 1
        if left:
            self._running[job.address] = left
        else:
            del self._running[job.address]
        self._done(job)
        result: Any = None
        if task.cancelled():
            exc: BaseException | None = asyncio.CancelledError()
        else:
            exc = task.exception()
            result = task.result() if exc is None else None
        if exc is None and result is None:
            self.on_failure(job.address)  # also when the client left: abandoning is no escape
        if not job.future.done():
            if exc is not None:
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)
        self._pump()
