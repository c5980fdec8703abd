"""Slowloris: 2,000 connections that never log in are closed at ``login_timeout``, without CPU spin.

The connections come from 127.0.0.2-127.0.0.9. Three quarters never send a byte; the rest send
one byte every 0.5 s (the "one byte a minute" client, scaled to ``login_timeout = 2``), which
must not extend the login deadline. Each must get ``421`` and be closed between ``login_timeout``
and ``login_timeout`` + the 1 s sweep + slack. Meanwhile a logged-in client keeps working; after
the flood the server's CPU use falls to ~0 (pyftpdlib #429/#613/#683 spun after timeouts) and its
fd count returns to the baseline.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from support.client import Ctl, noop_latency
from support.proc import alive, cpu_seconds, fds, pss_kib, settle_fds
from support.server import warm_up

COUNT = 2000
SOURCES = [f"127.0.0.{i}" for i in range(2, 10)]
LOGIN_TIMEOUT = 2.0
Result = tuple[float, float, bool, str]  # since before connect, since connected, closed, text


async def _slow_client(
    srv: Any, i: int, trickle: bool, out: list[Result], gate: asyncio.Semaphore
) -> None:
    async with gate:
        # The server's clock for this connection starts between t_start and t0 (it accepts after
        # our SYN, and we may learn of the connection late when this loop is busy): "early" is
        # judged from t_start, "late" from t0.
        t_start = time.monotonic()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(srv.host, srv.port, local_addr=(SOURCES[i % len(SOURCES)], 0)),
            20,
        )
        t0 = time.monotonic()
    got = b""
    try:
        got += await asyncio.wait_for(reader.readuntil(b"\r\n"), 20)
        deadline = t0 + LOGIN_TIMEOUT + 8
        while time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 0.5)
            except TimeoutError:
                if trickle:
                    writer.write(b"U")  # "USER" one byte at a time, never finished
                continue
            if not chunk:
                now = time.monotonic()
                out.append((now - t_start, now - t0, True, got.decode("latin-1")))
                return
            got += chunk
        now = time.monotonic()
        out.append((now - t_start, now - t0, False, got.decode("latin-1")))
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        now = time.monotonic()
        out.append((now - t_start, now - t0, True, got.decode("latin-1") + repr(exc)))
    finally:
        writer.transport.abort()


async def test_slowloris_closed_at_login_timeout(servers: Any, figures: Any) -> None:
    srv = servers(login_timeout=LOGIN_TIMEOUT, max_per_ip=0, log_level="warning")
    warm_up(srv)
    fd0, pss0, cpu0 = fds(srv.pid), pss_kib(srv.pid), cpu_seconds(srv.pid)
    good = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    results: list[Result] = []
    gate = asyncio.Semaphore(256)  # connections being opened at once
    tasks = [
        asyncio.create_task(_slow_client(srv, i, i % 4 == 0, results, gate)) for i in range(COUNT)
    ]
    t_start = time.monotonic()
    peak_fds, peak_pss = fd0, pss0
    latencies = []
    while not all(t.done() for t in tasks):
        await asyncio.sleep(0.25)  # the sampling interval while the flood runs
        peak_fds, peak_pss = max(peak_fds, fds(srv.pid)), max(peak_pss, pss_kib(srv.pid))
        latencies.append(await asyncio.to_thread(noop_latency, good))
        assert time.monotonic() - t_start < 45, "slowloris run did not finish"
    await asyncio.gather(*tasks)
    flood_seconds = time.monotonic() - t_start
    cpu_flood = cpu_seconds(srv.pid) - cpu0
    # After the flood (all its connections gone on the server's side too): nothing to do, so no
    # CPU time may be used (a spinning loop would). CPU time does not grow with others' load.
    settle_fds(srv.pid, fd0 + 1)  # + the good session
    cpu1 = cpu_seconds(srv.pid)
    await asyncio.sleep(2.0)  # the measuring window
    idle_cpu = cpu_seconds(srv.pid) - cpu1
    assert noop_latency(good) < 1
    good.close()
    fd1 = settle_fds(srv.pid, fd0)
    pss1 = pss_kib(srv.pid)

    closed = [r for r in results if r[2]]
    told = [r for r in closed if "421" in r[3]]
    early = [r for r in closed if r[0] < LOGIN_TIMEOUT - 0.1]
    late = [r for r in results if r[1] > LOGIN_TIMEOUT + 4.0]
    figures.record(
        "slowloris",
        connections=COUNT,
        trickling=COUNT // 4,
        closed_by_server=len(closed),
        got_421=len(told),
        seconds=round(flood_seconds, 1),
        close_after_s_min=round(min(r[0] for r in results), 2),
        close_after_s_max=round(max(r[1] for r in results), 2),
        server_cpu_s_flood=round(cpu_flood, 2),
        server_cpu_s_idle_2s=round(idle_cpu, 3),
        fds_before=fd0,
        fds_peak=peak_fds,
        fds_after=fd1,
        pss_kib_before=pss0,
        pss_kib_peak=peak_pss,
        pss_kib_after=pss1,
        logged_in_noop_ms_max=round(max(latencies) * 1000, 1),
    )
    assert alive(srv.pid)
    assert len(closed) == COUNT, [r for r in results if not r[2]][:3]
    assert not early, early[:3]
    assert not late, late[:3]
    assert len(told) == COUNT, [r for r in closed if "421" not in r[3]][:3]
    assert peak_fds >= fd0 + COUNT // 2, "the flood never held the connections open"
    assert idle_cpu < 0.2, f"server used {idle_cpu:.2f} s CPU in 2 idle seconds after the flood"
    assert fd1 <= fd0
    assert max(latencies) < 2.0, max(latencies)
