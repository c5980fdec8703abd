"""A lean thread pool for blocking filesystem calls, answering with the event loop's own futures.

``loop.run_in_executor`` on a ``ThreadPoolExecutor`` costs ~100-170 µs of CPU per call on the
benchmark machine for a job that itself takes ~20 µs (``bench/hop.py``; ~3x less with this pool): a
``concurrent.futures.Future`` chained to an asyncio future, one ``call_soon_threadsafe`` (a loop
wake-up) per result, and hops rotating over many cold threads. Every local RETR, STOR, LIST and
CWD pays at least one hop, so that cost was most of ftpd's CPU per small transfer (see
docs/PERFORMANCE.md). This pool keeps the rule that nothing blocking runs on the loop and makes the
hop cheap:

- ``submit`` creates a plain ``asyncio.Future`` and puts the job on a ``queue.SimpleQueue``
  (C-implemented; a waiting thread sleeps in one futex);
- a thread that finishes a job appends the result to the loop's completion list and wakes the
  loop only if no wake-up is already pending, so results that finish together cost one wake-up;
- a thread is started only when jobs queue up while every thread is stuck in a job (at most
  ``size``), so a server on a fast disk runs its file calls on one or two warm threads, and one on
  a slow disk grows the pool as it needs.

A job whose future was cancelled before it starts is skipped; a finished job whose future was
cancelled meanwhile hands its result to ``dispose`` (closing an fd, dropping a temp file) in the
pool, so cancelling an open never leaks.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["IoPool"]

log = logging.getLogger("ftpd.io")
T = TypeVar("T")

_STOP = object()
STALL = 0.02  # seconds without any thread taking a job, jobs waiting: start another thread


class IoPool:
    """Up to ``size`` threads running blocking calls for one or more event loops."""

    __slots__ = (
        "size",
        "name",
        "_jobs",
        "_threads",
        "_idle",
        "_lock",
        "_done",
        "_closed",
        "_last_take",
    )

    def __init__(self, size: int, name: str = "ftpd-io") -> None:
        if size < 1:
            raise ValueError("an IoPool needs at least one thread")
        self.size = size
        self.name = name
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        # Finished jobs per loop, waiting for that loop's drain; a loop is a key here exactly
        # while a drain call is scheduled on it.
        self._done: dict[asyncio.AbstractEventLoop, list[tuple[Any, ...]]] = {}
        self._closed = False
        self._last_take = 0.0  # when a thread last took a job from the queue

    def submit(
        self,
        fn: Callable[..., T],
        *args: Any,
        dispose: Callable[[T], object] | None = None,
    ) -> asyncio.Future[T]:
        """Run ``fn(*args)`` in a pool thread; the returned future belongs to the running loop."""
        if self._closed:
            raise RuntimeError("IoPool is shut down")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._put((fut, fn, args, dispose))
        return fut

    def run_detached(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` in the pool without a future (clean-up whose outcome nobody awaits)."""
        if self._closed:
            fn(*args)  # shutting down: do it here rather than lose it
            return
        self._put((None, fn, args, None))

    def _put(self, job: tuple[Any, ...]) -> None:
        # A new thread only when no thread has taken a job for STALL seconds while jobs wait:
        # the threads are then blocked in the kernel (a slow disk, NFS), and another one helps.
        # (STALL is well above the GIL's 5 ms switch interval: a thread merely waiting for the
        # GIL on a busy loop is not stuck.)
        # Short jobs never need more than one or two threads: under the GIL more threads do not
        # run Python faster, and each one adds GIL hand-offs on every system call (measured:
        # 32 threads cost 30% more CPU per small STOR than 1).
        threads = len(self._threads)
        with self._lock:
            spawn = (
                threads < self.size
                and self._idle == 0
                and (
                    threads == 0
                    or (not self._jobs.empty() and time.monotonic() - self._last_take > STALL)
                )
            )
            if spawn:
                self._idle += 1  # counted as idle from now: the next submit does not spawn too
        if spawn:
            t = threading.Thread(
                target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(t)
            t.start()
        self._jobs.put(job)

    def shutdown(self) -> None:
        """Stop the threads once the queued jobs are done (does not wait)."""
        self._closed = True
        for _ in self._threads:
            self._jobs.put(_STOP)

    # ------------------------------------------------------------------ pool threads
    def _work(self) -> None:
        jobs = self._jobs
        lock = self._lock
        while True:
            job = jobs.get()
            if job is _STOP:
                return
            with lock:
                self._idle -= 1
                self._last_take = time.monotonic()
            fut, fn, args, dispose = job
            if fut is None:
                try:
                    fn(*args)
                except Exception:  # noqa: BLE001 - clean-up: log and go on
                    log.exception("background IO job %r failed", fn)
            elif fut.cancelled():
                pass  # the caller gave up before the job started: do not run it at all
            else:
                try:
                    item = (fut, True, fn(*args), dispose)
                except BaseException as exc:  # noqa: BLE001 - delivered to the awaiting caller
                    item = (fut, False, exc, None)
                self._deliver(item)
                del item
            # Nothing of this job may stay alive while the thread waits for the next one: its
            # arguments (an upload's 256 KiB receive buffer, behind a memoryview) and result.
            del job, fut, fn, args, dispose
            with lock:
                self._idle += 1

    def _deliver(self, item: tuple[Any, ...]) -> None:
        loop = item[0].get_loop()
        with self._lock:
            pending = self._done.get(loop)
            if pending is not None:
                pending.append(item)  # a drain is already scheduled: it takes this one too
                return
            self._done[loop] = [item]
        try:
            loop.call_soon_threadsafe(self._drain, loop)
        except RuntimeError:  # the loop is closed: nobody will await the result
            with self._lock:
                items = self._done.pop(loop, [])
            for _fut, ok, value, dispose in items:
                if ok and dispose is not None:
                    dispose(value)

    # ------------------------------------------------------------------ loop side
    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            items = self._done.pop(loop, ())
        for fut, ok, value, dispose in items:
            if fut.cancelled():
                if ok and dispose is not None:
                    self.run_detached(dispose, value)
            elif ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
