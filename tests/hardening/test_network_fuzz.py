"""Network fuzzing: many concurrent hostile connections against one real server.

While a well-behaved client (its own thread, logged in) measures NOOP latency throughout, waves
of concurrent connections from 127.0.0.2-127.0.0.9 send: random bytes, Telnet IAC storms,
overlong lines, lines without CRLF, NUL bytes, invalid UTF-8, HTTP requests, and 10,000 commands
without reading a reply. The server must stay up, answer every pipelined command in order, keep
its memory bounded (PSS sampled throughout), close an HTTP client after one 500 (vsftpd's
cross-protocol defence), log no traceback, and give back every fd once the clients are gone.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from support.client import Ctl, noop_latency, split_replies
from support.proc import alive, fds, pss_kib, settle_fds
from support.server import warm_up

SOURCES = [f"127.0.0.{i}" for i in range(2, 10)]
WAVES = 6
PER_WAVE = 40
PIPELINED = 10_000


class Prober(threading.Thread):
    """A logged-in client sending NOOP every 20 ms, recording round-trip times and failures."""

    def __init__(self, srv: Any) -> None:
        super().__init__(daemon=True)
        self.ctl = Ctl(srv.host, srv.port).login(srv.user, srv.password)
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.latencies.append(noop_latency(self.ctl))
            except Exception as exc:  # noqa: BLE001 - recorded, asserted by the test
                self.errors.append(repr(exc))
                return
            time.sleep(0.02)  # probing pace

    def finish(self) -> None:
        self.stop.set()
        self.join(10)
        self.ctl.close()


async def _open(srv: Any, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(
        asyncio.open_connection(srv.host, srv.port, local_addr=(source, 0), limit=1 << 20), 10
    )


async def _drain_until_closed(reader: asyncio.StreamReader, timeout: float) -> bytes:
    out = b""
    try:
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                out += chunk
    except (TimeoutError, ConnectionError):
        pass
    return out


# Each attack returns the bytes it sent; the harness then checks the replies it got back.
async def random_bytes(w: asyncio.StreamWriter, rng: random.Random) -> None:
    w.write(rng.randbytes(rng.randrange(1, 65536)))


async def iac_storm(w: asyncio.StreamWriter, rng: random.Random) -> None:
    seq = [b"\xff\xf4", b"\xff\xf2", b"\xff\xfb\x01", b"\xff\xfd\x03", b"\xff\xff", b"\xff"]
    w.write(b"".join(rng.choice(seq) for _ in range(40_000)) + b"\r\n")


async def overlong_lines(w: asyncio.StreamWriter, rng: random.Random) -> None:
    for _ in range(4):
        w.write(b"MKD " + b"A" * rng.randrange(5_000, 200_000) + b"\r\n")
        await w.drain()


async def no_crlf(w: asyncio.StreamWriter, rng: random.Random) -> None:
    w.write(b"USER " + b"x" * rng.randrange(1, 3_000))  # never a line end, then vanish


async def nul_bytes(w: asyncio.StreamWriter, rng: random.Random) -> None:
    w.write(b"US\0ER us\0er\r\nPA\0SS \0\r\n\0\0\0\r\nCWD \0/etc\r\n" * 50)


async def invalid_utf8(w: asyncio.StreamWriter, rng: random.Random) -> None:
    w.write(
        b"USER \xc3\x28\xa0\xa1\r\nPASS \xed\xa0\x80\xf8\x88\x80\x80\x80\r\n\xfe\xfe\xfe\r\n"
        b"\xc0\xaf\xc0\xaf\r\nSITE \xe2\x82\r\n" * 40
    )


ATTACKS: list[Callable[[asyncio.StreamWriter, random.Random], Awaitable[None]]] = [
    random_bytes,
    iac_storm,
    overlong_lines,
    no_crlf,
    nul_bytes,
    invalid_utf8,
]


async def attack(srv: Any, source: str, rng: random.Random, stats: dict[str, int]) -> None:
    kind = rng.choice(ATTACKS)
    reader, writer = await _open(srv, source)
    try:
        await kind(writer, rng)
        await writer.drain()
        await asyncio.sleep(rng.random() * 0.2)  # a random pause: part of the attack
        if rng.random() < 0.5:
            writer.transport.abort()  # vanish
        else:
            writer.write_eof()  # half-close: the server answers what it got, then closes
            data = await _drain_until_closed(reader, 10)
            writer.close()
            replies, rest = split_replies(data)  # raises on anything that is not a reply
            assert replies and replies[0][0].startswith(b"220 "), data[:200]
            assert rest == b"", rest[:200]
        stats[kind.__name__] = stats.get(kind.__name__, 0) + 1
    except (ConnectionError, TimeoutError):
        stats["reset by server"] = stats.get("reset by server", 0) + 1
        writer.transport.abort()


async def http_request(srv: Any, source: str) -> None:
    """A browser at the FTP port: one 500, then the server closes (nothing after the 1st line)."""
    reader, writer = await _open(srv, source)
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: x\r\nQUIT\r\n\r\n")
    data = await _drain_until_closed(reader, 5)
    writer.close()
    replies, rest = split_replies(data)
    codes = [r[0][:3] for r in replies]
    assert codes == [b"220", b"500"], data
    assert rest == b""


async def pipelined(srv: Any, source: str) -> int:
    """PIPELINED commands sent before reading anything; every reply must come, in order."""
    reader, writer = await _open(srv, source)
    cmds = [b"NOOP", b"PWD", b"SYST", b"HELP", b"TYPE I", b"FEAT", b"XYZZY"]
    expect = [b"200", b"530", b"215", b"214", b"530", b"211", b"500"]
    order = [i % len(cmds) for i in range(PIPELINED)]
    writer.write(b"".join(cmds[i] + b"\r\n" for i in order))
    got: list[bytes] = []
    buf = b""
    async with asyncio.timeout(30):
        while len(got) < PIPELINED + 1:
            chunk = await reader.read(1 << 20)
            assert chunk, f"closed after {len(got)} replies"
            replies, buf = split_replies(buf + chunk)
            got += [r[0][:3] for r in replies]
    writer.close()
    assert got[0] == b"220"
    assert got[1:] == [expect[i] for i in order]
    return len(got) - 1


async def _wave(srv: Any, rng: random.Random, stats: dict[str, int]) -> None:
    jobs: list[Awaitable[Any]] = []
    for i in range(PER_WAVE):
        jobs.append(attack(srv, SOURCES[i % len(SOURCES)], random.Random(rng.random()), stats))
    jobs.append(http_request(srv, SOURCES[0]))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures[:3]


async def test_hostile_connections_do_not_hurt_the_server(servers: Any, figures: Any) -> None:
    # ban_after 0: the invalid_utf8 attack sends USER/PASS pairs, and the default ban would turn
    # later waves from those addresses into a 421 at accept; this test is about what bytes do.
    srv = servers(login_timeout=20, ban_after=0)
    rng = random.Random(959)
    stats: dict[str, int] = {}
    warm_up(srv)
    fd0, pss0 = fds(srv.pid), pss_kib(srv.pid)
    idle = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    base_latency = statistics.median(noop_latency(idle) for _ in range(20))
    idle.close()

    prober = Prober(srv)
    prober.start()
    peak = pss0
    pipelined_total = 0
    started = time.monotonic()
    try:
        pipe = asyncio.ensure_future(
            asyncio.gather(pipelined(srv, SOURCES[1]), pipelined(srv, SOURCES[2]))
        )
        for _ in range(WAVES):
            await _wave(srv, rng, stats)
            peak = max(peak, pss_kib(srv.pid))
            assert alive(srv.pid)
        pipelined_total = sum(await pipe)
        peak = max(peak, pss_kib(srv.pid))
    finally:
        prober.finish()
    elapsed = time.monotonic() - started

    assert alive(srv.pid), srv.log()[-2000:]
    assert not prober.errors, prober.errors
    lat = sorted(prober.latencies)
    p50, p99, worst = lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1]
    fd1 = settle_fds(srv.pid, fd0)
    pss1 = pss_kib(srv.pid)
    log = srv.log()
    total = sum(stats.values()) + WAVES  # + the HTTP clients
    figures.record(
        "network fuzz",
        connections=total,
        pipelined_commands=pipelined_total,
        attacks=dict(sorted(stats.items())),
        seconds=round(elapsed, 1),
        fds_before=fd0,
        fds_after=fd1,
        pss_kib_before=pss0,
        pss_kib_peak=peak,
        pss_kib_after=pss1,
        noop_ms_idle=round(base_latency * 1000, 2),
        noop_ms_p50=round(p50 * 1000, 2),
        noop_ms_p99=round(p99 * 1000, 2),
        noop_ms_max=round(worst * 1000, 2),
        probes=len(lat),
    )
    assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:3000]
    assert fd1 <= fd0, f"fd leak: {fd0} before, {fd1} after"
    # Bounded memory: 240 hostile connections and two 10,000-command pipelines may not cost
    # more than 32 MiB at the peak, and the server must give most of it back.
    assert peak - pss0 < 32 * 1024, (pss0, peak)
    assert pss1 - pss0 < 16 * 1024, (pss0, pss1)
    # Other sessions keep working: no probe waited a whole second (on 2 loaded, shared cores;
    # the idle round trip is ~0.1 ms).
    assert worst < 1.0, (p50, p99, worst)
