"""The scenarios, as run inside one worker process on its share of the sessions.

Operation names (the keys of counts, latency and errors in the report):
``establish`` connect + greeting (+ TLS) + USER/PASS (+ TYPE I), ``noop``, ``login`` (a whole
connect + USER + PASS + QUIT cycle), ``retr``, ``stor`` (in ``mixed``: STOR then DELE), ``list``
(CWD + LIST or MLSD + CDUP), ``final_noop`` (the liveness check at the end), ``quit``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ftpd.load.client import FtpClient
from ftpd.load.worker import Worker


async def hold(w: Worker) -> None:
    """Open N sessions, hold them for the duration while a sample sends NOOP at an interval."""
    sessions = await w.establish(w.plan.sessions, binary=False)
    if not await w.barrier(dict(w.info)):
        return
    k = min(w.plan.noop_sample, len(sessions))
    sample = w.rng.sample(sessions, k)
    interval = w.opts.noop_interval

    async def noop_loop(s: FtpClient) -> None:
        # A random phase per session spreads the NOOPs evenly over the interval.
        if not await w.sleep(w.rng.random() * interval):
            return
        due = time.perf_counter()
        while w.running() and s.alive and w.take():
            await w.op("noop", s, s.noop())
            # Behind schedule (slow server): skip missed beats rather than burst to catch up.
            due = max(due + interval, time.perf_counter())
            if not await w.sleep(due - time.perf_counter()):
                return

    async def hold_until_deadline() -> None:
        while w.running() and w.left != 0:
            await w.sleep(0.5)

    await w.run_tasks([hold_until_deadline(), *(noop_loop(s) for s in sample)])
    w.end_run()
    await w.final_check(sessions)
    await w.quit_all(sessions)


async def logins(w: Worker) -> None:
    """C concurrent loops of connect + USER + PASS + QUIT, each a new TCP connection."""
    if not await w.barrier({"established": 0}):
        return
    c = w.plan.sessions
    opts = w.opts

    async def login_once(intended_ns: int | None = None) -> None:
        s = FtpClient()
        w.inflight += 1
        t0 = time.perf_counter_ns()
        if intended_ns is not None:
            w.rec.lag.record(t0 - intended_ns)
        try:
            async with asyncio.timeout(opts.timeout):
                await w.connect(s)
                await s.login(opts.user, opts.password)
                await s.quit()
        except Exception as exc:
            w.failed("login", exc)
        else:
            t1 = time.perf_counter_ns()
            if intended_ns is None:
                w.rec.ok("login", t1 - t0)
            else:
                w.rec.ok("login", t1 - intended_ns, service_ns=t1 - t0)
        finally:
            s.close()
            w.inflight -= 1

    async def login_loop(j: int) -> None:
        if opts.ramp > 0 and not await w.sleep(opts.ramp * j / c):
            return
        while w.running() and w.take():
            await login_once()

    async def scheduled(j: int, intended_ns: int) -> bool:
        await login_once(intended_ns)
        return True

    if w.plan.rate:
        # Open model: -c is the number of logins in flight at most.
        await w.run_tasks([w.open_loop(c, scheduled)])
    else:
        await w.run_tasks(login_loop(j) for j in range(c))
    w.end_run()


# One action on session ``j``; ``intended_ns`` is its intended start in the open model.
Step = Callable[[int, FtpClient, int | None], Awaitable[None]]


async def _transfer_loops(w: Worker, sessions: list[FtpClient], step: Step) -> None:
    """Closed model: each session runs ``step`` back to back. Open model: on the schedule."""

    async def loop(j: int, s: FtpClient) -> None:
        while w.running() and s.alive and w.take():
            await step(j, s, None)

    async def scheduled(j: int, intended_ns: int) -> bool:
        s = sessions[j]
        if not s.alive:
            return False
        await step(j, s, intended_ns)
        return s.alive

    if w.plan.rate:
        await w.run_tasks([w.open_loop(len(sessions), scheduled)])
    else:
        await w.run_tasks(loop(j, s) for j, s in enumerate(sessions))
    w.end_run()


def _stor_name(w: Worker, j: int, stem: str) -> str:
    return f"{w.plan.prepared.run_dir}/{stem}-{w.plan.first_session + j}.bin"


async def retr(w: Worker) -> None:
    """C sessions downloading the big file in a loop (TYPE I, PASV or EPSV)."""
    sessions = await w.establish(w.plan.sessions, binary=True)
    if not await w.barrier(dict(w.info)):
        return
    prep = w.plan.prepared
    command = f"RETR {prep.retr_path}"

    async def step(j: int, s: FtpClient, intended: int | None) -> None:
        await w.op("retr", s, s.download(command, w.opts.epsv, prep.retr_size), intended)

    await _transfer_loops(w, sessions, step)
    await w.quit_all(sessions)


async def stor(w: Worker) -> None:
    """C sessions uploading ``--size`` generated bytes in a loop, each to its own file.

    The files are removed by the parent's clean-up (unless ``--keep``).
    """
    sessions = await w.establish(w.plan.sessions, binary=True)
    if not await w.barrier(dict(w.info)):
        return
    names: dict[int, str] = {}

    async def step(j: int, s: FtpClient, intended: int | None) -> None:
        name = names.setdefault(j, _stor_name(w, j, "stor"))
        await w.op("stor", s, s.upload(f"STOR {name}", w.opts.size, w.opts.epsv), intended)

    await _transfer_loops(w, sessions, step)
    await w.quit_all(sessions)


async def small(w: Worker) -> None:
    """C sessions looping PASV + RETR of a small file, or STOR of one (``--mix``)."""
    sessions = await w.establish(w.plan.sessions, binary=True)
    if not await w.barrier(dict(w.info)):
        return
    prep = w.plan.prepared
    names: dict[int, str] = {}
    kinds = [k for k, v in w.opts.mix.items() if v > 0]
    weights = [w.opts.mix[k] for k in kinds]
    retr_command = f"RETR {prep.retr_path}"

    async def step(j: int, s: FtpClient, intended: int | None) -> None:
        kind = kinds[0] if len(kinds) == 1 else w.rng.choices(kinds, weights)[0]
        if kind == "retr":
            download = s.download(retr_command, w.opts.epsv, prep.retr_size)
            await w.op("retr", s, download, intended)
        else:
            name = names.setdefault(j, _stor_name(w, j, "small"))
            await w.op("stor", s, s.upload(f"STOR {name}", w.opts.size, w.opts.epsv), intended)

    await _transfer_loops(w, sessions, step)
    await w.quit_all(sessions)


async def mixed(w: Worker) -> None:
    """N sessions acting like users: think (exponential, mean ``--think``), then one action."""
    sessions = await w.establish(w.plan.sessions, binary=True)
    if not await w.barrier(dict(w.info)):
        return
    opts = w.opts
    prep = w.plan.prepared
    kinds = [k for k, v in opts.mix.items() if v > 0]
    weights = [opts.mix[k] for k in kinds]
    list_command = "MLSD" if opts.mlsd else "LIST"
    retr_command = f"RETR {prep.retr_path}"

    async def browse(s: FtpClient) -> int:
        await s.expect(f"CWD {prep.list_dir}", (250,))
        nbytes = await s.download(list_command, opts.epsv)
        await s.expect("CDUP", (200, 250))
        return nbytes

    async def upload_then_delete(s: FtpClient, name: str) -> int:
        nbytes = await s.upload(f"STOR {name}", opts.size, opts.epsv)
        await s.expect(f"DELE {name}", (250,))
        return nbytes

    async def act(j: int, s: FtpClient, intended: int | None) -> None:
        kind = kinds[0] if len(kinds) == 1 else w.rng.choices(kinds, weights)[0]
        if kind == "list":
            await w.op("list", s, browse(s), intended)
        elif kind == "retr":
            download = s.download(retr_command, opts.epsv, prep.retr_size)
            await w.op("retr", s, download, intended)
        else:
            await w.op("stor", s, upload_then_delete(s, _stor_name(w, j, "mixed")), intended)

    async def user(j: int, s: FtpClient) -> None:
        while s.alive:
            think = w.rng.expovariate(1.0 / opts.think) if opts.think > 0 else 0.0
            if not await w.sleep(think) or not w.take():
                return
            await act(j, s, None)

    if w.plan.rate:
        # Open model: no think time; the schedule decides when each action starts.
        await _transfer_loops(w, sessions, act)
    else:
        await w.run_tasks(user(j, s) for j, s in enumerate(sessions))
        w.end_run()
    await w.final_check(sessions)
    await w.quit_all(sessions)


SCENARIOS: dict[str, Callable[[Worker], Awaitable[None]]] = {
    "hold": hold,
    "logins": logins,
    "retr": retr,
    "stor": stor,
    "small": small,
    "mixed": mixed,
}

# Operations whose rate and latency are each scenario's headline (progress display, timeline).
PRIMARY_OPS: dict[str, tuple[str, ...]] = {
    "hold": ("noop",),
    "logins": ("login",),
    "retr": ("retr",),
    "stor": ("stor",),
    "small": ("retr", "stor"),
    "mixed": ("list", "retr", "stor"),
}
