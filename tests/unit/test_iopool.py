"""IoPool with real threads: results and exceptions reach the right loop, threads start lazily
and only as stuck jobs need them (never beyond ``size``), results that finish together wake the
loop once, cancelled jobs are skipped or their results disposed of, several loops share one
pool, and shutdown stops the threads. Every wait is bounded; the only sleeps are the STALL
intervals the pool's growth rule is about."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ftpd.fs import iopool as iopool_mod
from ftpd.fs.iopool import STALL, IoPool

WAIT = 10.0  # upper bound of every wait for another thread (the machine may be loaded)
NAME = "t-io"


async def until(pred: Callable[[], object], timeout: float = WAIT) -> None:
    """Poll ``pred`` from the loop (without blocking it) until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {pred}")
        await asyncio.sleep(0.001)


class Blocker:
    """A job that says it has started, then holds its pool thread until ``release``."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.started = threading.Event()
        self._go = threading.Event()
        self.thread = ""

    def __call__(self) -> object:
        self.thread = threading.current_thread().name
        self.started.set()
        assert self._go.wait(WAIT)
        return self.value

    def release(self) -> None:
        self._go.set()


class DrainCountingPool(IoPool):
    """Records every ``_drain`` (one per loop wake-up): the loop and the thread it ran in."""

    def __init__(self, size: int, name: str = NAME) -> None:
        super().__init__(size, name)
        self.drains: list[tuple[asyncio.AbstractEventLoop, int]] = []

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        self.drains.append((loop, threading.get_ident()))
        super()._drain(loop)


class Kit:
    """Pools and blockers that the fixture releases and stops whatever the test did."""

    def __init__(self) -> None:
        self.pools: list[IoPool] = []
        self.blockers: list[Blocker] = []

    def pool(self, size: int, cls: type[IoPool] = IoPool) -> Any:
        p = cls(size, NAME)
        self.pools.append(p)
        return p

    def blocker(self, value: object = None) -> Blocker:
        b = Blocker(value)
        self.blockers.append(b)
        return b

    def close(self) -> None:
        for b in self.blockers:
            b.release()
        for p in self.pools:
            if not p._closed:
                p.shutdown()
        for p in self.pools:
            for t in list(p._threads):
                t.join(WAIT)
                assert not t.is_alive(), f"{t.name} did not stop"


@pytest.fixture
def kit() -> Iterator[Kit]:
    k = Kit()
    yield k
    k.close()


def loop_errors() -> list[dict[str, Any]]:
    """Record what reaches the running loop's exception handler (e.g. set_result on a
    cancelled future raising InvalidStateError inside a drain)."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    return errors


# -- results ----------------------------------------------------------------------------------


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        IoPool(0)


def test_submit_needs_a_running_loop(kit: Kit) -> None:
    p = kit.pool(1)
    with pytest.raises(RuntimeError):
        p.submit(int)
    assert p._threads == []  # nothing started for it


async def test_results_and_exceptions_are_delivered(kit: Kit) -> None:
    p = kit.pool(2)
    assert p._threads == []  # threads start lazily, with the first job
    fut = p.submit(pow, 2, 10)
    assert isinstance(fut, asyncio.Future) and fut.get_loop() is asyncio.get_running_loop()
    assert await asyncio.wait_for(fut, WAIT) == 1024
    assert len(p._threads) == 1

    where = await asyncio.wait_for(p.submit(lambda: threading.current_thread().name), WAIT)
    assert where.startswith(NAME) and where != threading.current_thread().name

    err = OSError(errno.ENOSPC, "No space left on device")

    def fail() -> None:
        raise err

    with pytest.raises(OSError) as ei:
        await asyncio.wait_for(p.submit(fail), WAIT)
    assert ei.value is err and ei.value.errno == errno.ENOSPC
    with pytest.raises(ZeroDivisionError):
        await asyncio.wait_for(p.submit(divmod, 1, 0), WAIT)
    assert await asyncio.wait_for(p.submit(str, 42), WAIT) == "42"  # the thread survived


async def test_results_match_their_futures_in_any_order(kit: Kit) -> None:
    p = kit.pool(2)
    futs = [p.submit(lambda i=i: (i, i * i)) for i in range(300)]
    # Awaited in reverse and in random-ish order: each future has its own job's result.
    for i in reversed(range(0, 300, 7)):
        assert await asyncio.wait_for(futs[i], WAIT) == (i, i * i)
    assert await asyncio.wait_for(asyncio.gather(*futs), WAIT) == [(i, i * i) for i in range(300)]


# -- threads ----------------------------------------------------------------------------------


async def test_fast_jobs_run_on_one_thread(kit: Kit, tmp_path: Path) -> None:
    p = kit.pool(8)
    target = str(tmp_path)
    for _ in range(30):
        futs: list[asyncio.Future[os.stat_result]] = []
        for _ in range(10):  # jobs keep arriving while the thread runs the earlier ones
            futs += [p.submit(os.stat, target) for _ in range(20)]
            await asyncio.sleep(0)
        got = await asyncio.wait_for(asyncio.gather(*futs), WAIT)
        assert len(got) == 200 and all(s.st_ino == got[0].st_ino for s in got)
    assert len(p._threads) == 1


async def test_no_thread_while_one_keeps_taking_jobs(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs waiting is not enough: a thread must also have taken none for STALL (made long here,
    so that a loaded machine cannot blur the two cases)."""
    monkeypatch.setattr(iopool_mod, "STALL", 0.5)
    p = kit.pool(4)
    a = kit.blocker("a")
    fa = p.submit(a)
    await until(a.started.is_set)
    t0 = time.monotonic()
    queued = [p.submit(str, i) for i in range(5)]  # waiting, but a job was taken just now
    assert len(p._threads) == 1
    await asyncio.sleep(max(0.0, t0 + 0.55 - time.monotonic()))  # past STALL: under test
    queued.append(p.submit(str, 5))  # now nothing was taken for > STALL
    assert len(p._threads) == 2
    assert await asyncio.wait_for(asyncio.gather(*queued), WAIT) == [str(i) for i in range(6)]
    a.release()
    assert await asyncio.wait_for(fa, WAIT) == "a"


async def test_grows_only_while_jobs_are_stuck_and_never_beyond_size(kit: Kit) -> None:
    """Also the order-independence case: later jobs finish while an earlier one is stuck."""
    p = kit.pool(3)
    a = kit.blocker("a")
    fa = p.submit(a)
    await until(a.started.is_set)
    fb = p.submit(str, "b")  # queued behind the stuck job; nobody has waited STALL yet
    assert len(p._threads) == 1
    await asyncio.sleep(STALL * 2)  # time passing is what is tested
    fc = p.submit(str, "c")  # a job has waited while no thread took one for > STALL: grow
    assert len(p._threads) == 2
    assert await asyncio.wait_for(asyncio.gather(fb, fc), WAIT) == ["b", "c"]
    assert not fa.done()  # the first job is still stuck: results arrived out of order

    d = kit.blocker("d")
    fd = p.submit(d)  # the second thread is idle: it takes the job, no new thread
    await until(d.started.is_set)
    assert len(p._threads) == 2 and d.thread != a.thread
    fe = p.submit(str, "e")
    await asyncio.sleep(STALL * 2)  # time passing is what is tested
    ff = p.submit(str, "f")
    assert len(p._threads) == 3
    assert await asyncio.wait_for(asyncio.gather(fe, ff), WAIT) == ["e", "f"]

    g = kit.blocker("g")
    fg = p.submit(g)
    await until(g.started.is_set)
    assert len({a.thread, d.thread, g.thread}) == 3  # every thread is stuck now
    fh = p.submit(str, "h")
    await asyncio.sleep(STALL * 2)  # time passing is what is tested
    fi = p.submit(str, "i")
    await asyncio.sleep(STALL * 2)  # time passing is what is tested
    fj = p.submit(str, "j")
    assert len(p._threads) == 3  # at most size, however long the jobs wait
    assert not (fh.done() or fi.done() or fj.done())

    for b in (g, d, a):
        b.release()
    got = await asyncio.wait_for(asyncio.gather(fa, fd, fg, fh, fi, fj), WAIT)
    assert got == ["a", "d", "g", "h", "i", "j"]
    assert len(p._threads) == 3


# -- batching ---------------------------------------------------------------------------------


async def test_results_finishing_together_wake_the_loop_once(kit: Kit) -> None:
    p = kit.pool(1, DrainCountingPool)
    loop = asyncio.get_running_loop()
    n = 200

    def delivered() -> int:
        with p._lock:
            return len(p._done.get(loop, ()))

    for batch in range(2):
        futs = [p.submit(lambda i=i: i * 3) for i in range(n)]
        # Hold the loop (a blocking wait on purpose) until the pool has handed over every result:
        # they all finish while no drain can run.
        deadline = time.monotonic() + WAIT
        while delivered() < n:
            assert time.monotonic() < deadline, f"only {delivered()} of {n} results delivered"
            time.sleep(0.001)
        assert await asyncio.wait_for(asyncio.gather(*futs), WAIT) == [i * 3 for i in range(n)]
        assert len(p.drains) == batch + 1  # n results, one wake-up
    assert all(lp is loop and tid == threading.get_ident() for lp, tid in p.drains)


# -- cancellation -----------------------------------------------------------------------------


async def test_job_cancelled_before_it_starts_is_skipped(kit: Kit) -> None:
    p = kit.pool(1)
    errors = loop_errors()
    a = kit.blocker("first")
    fa = p.submit(a)
    await until(a.started.is_set)
    ran: list[str] = []
    disposed: list[object] = []
    fb = p.submit(ran.append, "b", dispose=disposed.append)  # waits behind the blocker
    fb.cancel()
    a.release()
    assert await asyncio.wait_for(fa, WAIT) == "first"
    # One thread, first in first out: once a later job is done, "b" has been taken and skipped.
    await asyncio.wait_for(p.submit(ran.append, "c"), WAIT)
    assert ran == ["c"]
    assert disposed == [] and fb.cancelled()
    assert errors == []


async def test_job_cancelled_while_running_hands_its_result_to_dispose(kit: Kit) -> None:
    p = kit.pool(1)
    errors = loop_errors()
    resource = object()
    a = kit.blocker(resource)
    disposed: list[tuple[object, str]] = []
    fut = p.submit(a, dispose=lambda r: disposed.append((r, threading.current_thread().name)))
    await until(a.started.is_set)
    fut.cancel()
    a.release()
    await until(lambda: disposed)
    # Later jobs on the single thread prove no second disposal is queued behind the first.
    for _ in range(3):
        await asyncio.wait_for(p.submit(int), WAIT)
    assert len(disposed) == 1
    assert disposed[0][0] is resource and disposed[0][1].startswith(NAME)  # in the pool
    assert fut.cancelled()  # never set: a set_result would have reached the loop's handler
    assert errors == []


async def test_dispose_is_only_for_results_nobody_takes(kit: Kit) -> None:
    p = kit.pool(1)
    errors = loop_errors()
    disposed: list[object] = []
    assert await asyncio.wait_for(p.submit(str, 7, dispose=disposed.append), WAIT) == "7"

    # A job that fails after its caller gave up: nothing to dispose of, nothing reported.
    a = kit.blocker()

    def fail_late() -> None:
        a()
        raise OSError(errno.EIO, "late failure")

    fut = p.submit(fail_late, dispose=disposed.append)
    await until(a.started.is_set)
    fut.cancel()
    a.release()
    for _ in range(3):
        await asyncio.wait_for(p.submit(int), WAIT)
    assert disposed == [] and fut.cancelled()
    assert errors == []


async def test_dispose_failure_is_logged_not_raised(
    kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="ftpd.io")
    p = kit.pool(1)
    errors = loop_errors()
    a = kit.blocker("leaky")
    calls: list[object] = []

    def bad_dispose(r: object) -> None:
        calls.append(r)
        raise RuntimeError("dispose failed")

    fut = p.submit(a, dispose=bad_dispose)
    await until(a.started.is_set)
    fut.cancel()
    a.release()
    await until(lambda: calls)
    # The same (single) thread runs the next job only after it has logged the failure.
    assert await asyncio.wait_for(p.submit(str, "alive"), WAIT) == "alive"
    assert calls == ["leaky"]
    recs = [r for r in caplog.records if r.name == "ftpd.io"]
    assert len(recs) == 1 and recs[0].exc_info is not None
    assert recs[0].exc_info[0] is RuntimeError
    assert errors == []


async def test_run_detached(kit: Kit, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="ftpd.io")
    p = kit.pool(1)
    where: list[str] = []
    p.run_detached(lambda: where.append(threading.current_thread().name))

    def boom() -> None:
        raise ValueError("background job failed")

    p.run_detached(boom)
    assert await asyncio.wait_for(p.submit(str, 1), WAIT) == "1"  # behind both, same thread
    assert len(where) == 1 and where[0].startswith(NAME)
    recs = [r for r in caplog.records if r.name == "ftpd.io"]
    assert len(recs) == 1 and recs[0].exc_info is not None and recs[0].exc_info[0] is ValueError


def test_result_for_a_closed_loop_is_disposed(kit: Kit) -> None:
    p = kit.pool(1)
    a = kit.blocker("fd-like")
    disposed: list[object] = []
    done = threading.Event()

    def dispose(r: object) -> None:
        disposed.append(r)
        done.set()

    async def main() -> asyncio.Future[object]:
        fut = p.submit(a, dispose=dispose)
        await until(a.started.is_set)
        return fut

    fut = asyncio.run(main())  # the loop closes while its job still runs
    a.release()
    assert done.wait(WAIT)
    assert disposed == ["fd-like"] and not fut.done()


# -- several loops ----------------------------------------------------------------------------


def test_two_loops_in_two_threads_share_one_pool(kit: Kit) -> None:
    p = kit.pool(2, DrainCountingPool)
    barrier = threading.Barrier(2, timeout=WAIT)
    out: dict[str, Any] = {}
    n = 300

    def job(tag: str, i: int) -> tuple[str, int, str]:
        return tag, i, threading.current_thread().name

    def side(tag: str) -> None:
        async def main() -> tuple[Any, ...]:
            loop = asyncio.get_running_loop()
            barrier.wait()  # both loops submit at the same time
            futs = [p.submit(job, tag, i) for i in range(n)]
            seen: list[int] = []
            for f in futs:
                f.add_done_callback(lambda _f: seen.append(threading.get_ident()))
            res = await asyncio.wait_for(asyncio.gather(*futs), WAIT)
            return loop, threading.get_ident(), res, seen

        try:
            out[tag] = asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread below
            out[tag] = exc

    threads = [threading.Thread(target=side, args=(tag,)) for tag in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
        assert not t.is_alive()
    owner = {}
    for tag in ("x", "y"):
        assert not isinstance(out[tag], BaseException), out[tag]
        loop, ident, res, seen = out[tag]
        assert [(r[0], r[1]) for r in res] == [(tag, i) for i in range(n)]
        assert all(r[2].startswith(NAME) for r in res)
        assert len(seen) == n and set(seen) == {ident}  # completed in the loop's own thread
        owner[loop] = ident
    assert len(owner) == 2
    # Each loop drained only its own results, in its own thread, and in batches.
    assert {lp for lp, _ in p.drains} == set(owner)
    assert all(owner[lp] == tid for lp, tid in p.drains)


# -- shutdown ---------------------------------------------------------------------------------


async def test_shutdown_finishes_queued_jobs_then_stops_the_threads(kit: Kit) -> None:
    p = kit.pool(2)
    a = kit.blocker("a")
    fa = p.submit(a)
    await until(a.started.is_set)
    f1 = p.submit(str, 1)
    await asyncio.sleep(STALL * 2)  # time passing is what is tested
    f2 = p.submit(str, 2)  # stuck + waited past STALL: a second thread
    assert await asyncio.wait_for(asyncio.gather(f1, f2), WAIT) == ["1", "2"]
    assert len(p._threads) == 2
    b = kit.blocker("b")
    fb = p.submit(b)
    await until(b.started.is_set)
    queued = p.submit(str, "queued")  # both threads busy: waits in the queue
    p.shutdown()
    with pytest.raises(RuntimeError):
        p.submit(int)
    here: list[str] = []
    p.run_detached(lambda: here.append(threading.current_thread().name))
    assert here == [threading.current_thread().name]  # after shutdown: run inline, not lost
    a.release()
    b.release()
    got = await asyncio.wait_for(asyncio.gather(fa, fb, queued), WAIT)
    assert got == ["a", "b", "queued"]  # jobs queued before shutdown still run
    for t in p._threads:
        t.join(WAIT)
        assert not t.is_alive()
