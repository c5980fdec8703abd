"""Connection floods above ``max_sessions`` and ``max_per_ip``: 421, and logged-in sessions go on.

Four sessions log in first and hold a RETR/LIST/NOOP workload through the flood; then 600
connections arrive at once from 127.0.0.2-127.0.0.7. Those over a limit must get ``421`` and be
closed, those within it a ``220``; the sessions that were there first must not notice. When the
flood is gone the slots are free again (the counters are released), and every fd is given back.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from support.client import Ctl, split_replies
from support.proc import fds, pss_kib, settle_fds
from support.server import warm_up

MAX_SESSIONS = 30
MAX_PER_IP = 6
FLOOD = 600
SOURCES = [f"127.0.0.{i}" for i in range(2, 8)]


async def _flood_one(srv: Any, source: str, hold: asyncio.Event) -> str:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(srv.host, srv.port, local_addr=(source, 0)), 20
        )
    except (ConnectionError, TimeoutError) as exc:
        return f"connect failed {exc!r}"
    try:
        line = await asyncio.wait_for(reader.readline(), 20)
        if line.startswith(b"421"):
            rest = await asyncio.wait_for(reader.read(), 5)
            return "421+closed" if rest == b"" else f"421 but open: {rest!r}"
        if line.startswith(b"220"):
            await hold.wait()
            return "220"
        return f"unexpected {line!r}"
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        return f"reset {exc!r}"
    finally:
        writer.transport.abort()


def _workload(ctl: Ctl, payload: bytes) -> None:
    data, r150, r = ctl.retr("f.bin")
    assert (r150.code, r.code, data == payload) == (150, 226, True), (r150, r)
    listing, r = ctl.listing("NLST")
    assert r.code == 226 and b"f.bin" in listing
    assert ctl.cmd("NOOP").code == 200


async def test_flood_above_limits(servers: Any, figures: Any) -> None:
    srv = servers(max_sessions=MAX_SESSIONS, max_per_ip=MAX_PER_IP, log_level="warning")
    payload = bytes(range(256)) * 4096  # 1 MiB
    (srv.root / "f.bin").write_bytes(payload)
    warm_up(srv)
    fd0, pss0 = fds(srv.pid), pss_kib(srv.pid)
    # Sessions that were there first: one from the flooders' own address, three from elsewhere.
    first = [
        Ctl(srv.host, srv.port, source=src).login(srv.user, srv.password)
        for src in (SOURCES[0], "127.0.0.1", "127.0.0.1", "127.0.0.9")
    ]
    for c in first:
        assert c.cmd("TYPE I").code == 200

    hold = asyncio.Event()
    t0 = time.monotonic()
    tasks = [
        asyncio.create_task(_flood_one(srv, SOURCES[i % len(SOURCES)], hold)) for i in range(FLOOD)
    ]
    # While the flood is held open, the first sessions work as before.
    rounds = 0
    while time.monotonic() - t0 < 3 or rounds < 2:
        for c in first:
            await asyncio.to_thread(_workload, c, payload)
        rounds += 1
        if sum(t.done() for t in tasks) >= FLOOD - (MAX_SESSIONS - len(first)):
            break
    peak_fds, peak_pss = fds(srv.pid), pss_kib(srv.pid)
    # New connections are refused while the server is full, also from a fresh address.
    with Ctl(srv.host, srv.port, source="127.0.0.10", greet=False) as c:
        r = c.reply()
        assert r.code == 421, r
    hold.set()
    results = [await t for t in tasks]
    elapsed = time.monotonic() - t0

    admitted = results.count("220")
    refused = results.count("421+closed")
    figures.record(
        "connection flood",
        flood=FLOOD,
        max_sessions=MAX_SESSIONS,
        max_per_ip=MAX_PER_IP,
        admitted=admitted,
        refused_421=refused,
        seconds=round(elapsed, 1),
        workload_rounds=rounds,
        fds_before=fd0,
        fds_peak=peak_fds,
        pss_kib_before=pss0,
        pss_kib_peak=peak_pss,
    )
    assert admitted + refused == FLOOD, sorted(set(results) - {"220", "421+closed"})[:5]
    # Per IP: 6 each, one of 127.0.0.2's slots is taken by a first session; and never more than
    # max_sessions in all.
    assert admitted == min(MAX_PER_IP * len(SOURCES) - 1, MAX_SESSIONS - len(first)), admitted

    for c in first:
        await asyncio.to_thread(_workload, c, payload)
    # The flood has gone: the slots are free again.
    assert await asyncio.to_thread(settle_fds, srv.pid, fd0 + len(first) * 1) <= fd0 + len(first)
    again = [Ctl(srv.host, srv.port, source=SOURCES[1]) for _ in range(MAX_PER_IP)]
    assert all(c.greeting is not None and c.greeting.code == 220 for c in again)
    with Ctl(srv.host, srv.port, source=SOURCES[1], greet=False) as c:
        assert c.reply().code == 421  # the 7th from that IP
    for c in again + first:
        c.close()
    fd1 = await asyncio.to_thread(settle_fds, srv.pid, fd0)
    figures.record("connection flood", fds_after=fd1, pss_kib_after=pss_kib(srv.pid))
    assert fd1 <= fd0


async def test_pipelined_login_flood_respects_max_per_ip(servers: Any) -> None:
    """Connections that log in at once (USER+PASS pipelined with the connect) all count: of 12
    held open together from one address, at most 3 get in."""
    srv = servers(max_per_ip=3, log_level="warning")
    answered = 0
    all_answered = asyncio.Event()

    async def one() -> list[bytes]:
        nonlocal answered
        reader, writer = await asyncio.open_connection(
            srv.host, srv.port, local_addr=("127.0.0.5", 0)
        )
        writer.write(f"USER {srv.user}\r\nPASS {srv.password}\r\nNOOP\r\n".encode())
        data = b""
        try:
            async with asyncio.timeout(3):
                while chunk := await reader.read(4096):
                    data += chunk
                    if data.count(b"\r\n") >= 4:
                        break
        except TimeoutError:
            pass
        except ConnectionResetError:
            # Refused with our USER/PASS still unread: the kernel answers the close with RST,
            # which may discard the 421 before we read it.
            data += b"RST"
        answered += 1
        if answered == 12:
            all_answered.set()
        await all_answered.wait()  # hold every connection until all have their answer
        writer.transport.abort()
        if data.endswith(b"RST"):
            return [r[0][:3] for r in split_replies(data[:-3])[0]] or [b"RST"]
        return [r[0][:3] for r in split_replies(data)[0]]

    results = await asyncio.gather(*(one() for _ in range(12)))
    ok = [r for r in results if r == [b"220", b"331", b"230", b"200"]]
    refused = [r for r in results if r in ([b"421"], [b"RST"])]
    assert len(ok) <= 3 and len(ok) + len(refused) == 12, results


def test_idle_passive_ports_are_released(servers: Any) -> None:
    """Sessions that open a passive port and never use it (NOOP keep-alives only) must not hold
    the pool for ever: after ``data_timeout`` without a data connection the listener is closed,
    as pyftpdlib does (30 s), so a few logged-in clients cannot exhaust ``pasv_ports``.
    Observed before the fix: the listener lives as long as the session (``idle_timeout``)."""
    srv = servers(pasv_count=4, data_timeout=1, log_level="warning")
    (srv.root / "f").write_bytes(b"data")
    hogs = [Ctl(srv.host, srv.port).login(srv.user, srv.password) for _ in range(4)]
    for c in hogs:
        c.epsv()
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as victim:
        assert victim.cmd("EPSV").code == 425  # the pool (4 ports) is exhausted right now
        deadline = time.monotonic() + 4
        while True:
            for c in hogs:
                assert c.cmd("NOOP").code == 200  # the hogs stay active
            r = victim.cmd("EPSV")
            if r.code == 229 or time.monotonic() > deadline:
                break
            time.sleep(0.25)  # the hogs keep talking every 0.25 s: under test
        assert r.code == 229, "passive ports still held 4 s after data_timeout (1 s)"
        victim.cmd("ABOR")
        data, _, r = victim.retr("f")
        assert (r.code, data) == (226, b"data")
    for c in hogs:
        c.close()
