"""The timeout sweeper gives the loop a turn between slices of sessions.

One pass over 10,000 sessions takes ~7 ms of pure Python; without slicing, every command that
arrives meanwhile waits for all of it (NOOP latency with 10,000 sessions held).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ftpd.config import Config
from ftpd.server import server as servermod


class StubChannel:
    """Just enough of a ControlChannel for the sweeper: it records when it is ticked."""

    def __init__(self, seen: list[object]) -> None:
        self._seen = seen
        self.quiet_until = 0.0

    def tick(self, now: float) -> None:
        self._seen.append(self)


async def test_sweep_yields_between_slices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servermod, "SWEEP_INTERVAL", 0.0)
    srv = servermod.Server(Config(root=str(tmp_path), password="x", port=0))
    seen: list[object] = []
    n = 2001
    srv.host.channels = {StubChannel(seen) for _ in range(n)}
    marker = object()
    task = asyncio.ensure_future(srv._sweep())
    try:
        await asyncio.sleep(0)  # the sweeper's first sleep(0) interval
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0)
        seen.append(marker)  # runs at a turn of the loop the sweeper gave away
        for _ in range(200):
            if len(seen) > n:
                break
            await asyncio.sleep(0)
    finally:
        task.cancel()
        srv.executor.shutdown(wait=False)
        srv.io.shutdown()
    first_pass = seen[: n + 1]
    assert marker in first_pass
    # The loop got its turn in the middle of the pass (not after all of it), after one slice.
    assert 0 < first_pass.index(marker) < n
    assert first_pass.index(marker) <= servermod.SWEEP_SLICE


# ------------------------------------------------------------------ quiet sessions are skipped
# A logged-in session with nothing running is marked quiet by its tick; the sweeper then skips
# it until the shortest timeout has passed (or its idle timeout falls due). Synthetic ``now``
# values drive ``sweep_once``, so nothing here waits for a real timeout.
LOGIN_TIMEOUT = 5.0


async def _line(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readline(), 5)


class Quiet:
    """A server without its own sweeper (the tests call ``sweep_once``) and one logged-in
    session: its channel and its client's streams."""

    def __init__(self, srv: servermod.Server, ch: Any, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:  # fmt: skip
        self.srv, self.ch, self.reader, self.writer = srv, ch, reader, writer


@pytest.fixture
async def quiet(tmp_path: Path) -> AsyncIterator[Quiet]:
    srv = servermod.Server(_quiet_config(tmp_path))
    port = (await srv.start())[0][1]
    assert srv._sweeper is not None
    srv._sweeper.cancel()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await _line(reader)).startswith(b"220")
        for line, code in ((b"USER u\r\n", b"331"), (b"PASS p\r\n", b"230")):
            writer.write(line)
            assert (await _line(reader)).startswith(code)
        (ch,) = srv.host.channels
        yield Quiet(srv, ch, reader, writer)
        writer.close()
    finally:
        await srv.shutdown()


def _quiet_config(root: Path, **over: object) -> Config:
    base: dict[str, object] = dict(
        root=str(root), user="u", password="p", host="127.0.0.1", port=0, login_fail_delay=0,
        idle_timeout=100.0, data_timeout=100.0, login_timeout=LOGIN_TIMEOUT,
        tls_handshake_timeout=100.0, log_level="warning",
    )
    base.update(over)
    return Config(**base)  # type: ignore[arg-type]


class _Ticks:
    """Counts ``ControlChannel.tick`` calls (the real method still runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from ftpd.server.control import ControlChannel

        self.n = 0
        real = ControlChannel.tick

        def counting(ch: ControlChannel, now: float) -> None:
            self.n += 1
            real(ch, now)

        monkeypatch.setattr(ControlChannel, "tick", counting)


async def test_quiet_session_is_skipped_until_the_shortest_timeout(
    quiet: Quiet, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, ch, reader, writer = quiet.srv, quiet.ch, quiet.reader, quiet.writer
    ticks = _Ticks(monkeypatch)
    t0 = ch.last_activity
    await srv.sweep_once(t0 + 1)
    assert ticks.n == 1 and ch.quiet_until == t0 + 1 + LOGIN_TIMEOUT
    await srv.sweep_once(t0 + 1 + LOGIN_TIMEOUT - 0.5)  # quiet: skipped
    assert ticks.n == 1
    await srv.sweep_once(t0 + 1 + LOGIN_TIMEOUT)  # due again
    assert ticks.n == 2
    # A PASV is a timer that starts later: the session is ticked from the next sweep on.
    writer.write(b"EPSV\r\n")
    assert (await _line(reader)).startswith(b"229")
    assert ch.quiet_until == 0.0
    now = ch.last_activity
    for step in (1, 2, 3):
        await srv.sweep_once(now + step)
    assert ticks.n == 5 and ch.source is not None  # not expired: data_timeout is 100 s
    await srv.sweep_once(now + 101)
    assert ch.source is None  # the unused passive port went back to the pool


async def test_rein_on_a_quiet_session_meets_the_login_timeout_at_the_next_sweep(
    quiet: Quiet,
) -> None:
    """After REIN a session is logged out, and its login timeout counts from the connection:
    long passed, so the next sweep closes it, whatever the session's quiet mark said."""
    srv, ch, reader, writer = quiet.srv, quiet.ch, quiet.reader, quiet.writer
    t0 = ch.connected_at
    await srv.sweep_once(t0 + 20)
    assert ch.quiet_until == t0 + 20 + LOGIN_TIMEOUT  # quiet until t0 + 25
    writer.write(b"REIN\r\n")
    assert (await _line(reader)).startswith(b"220")
    await srv.sweep_once(t0 + 21)
    assert (await _line(reader)).startswith(b"421 Login timeout")


async def test_a_reload_that_shortens_the_idle_timeout_reaches_quiet_sessions(
    quiet: Quiet, tmp_path: Path
) -> None:
    srv, ch = quiet.srv, quiet.ch
    t0 = ch.last_activity
    await srv.sweep_once(t0 + 1)
    assert ch.quiet_until == t0 + 1 + LOGIN_TIMEOUT
    assert await srv.reload(lambda: _quiet_config(tmp_path, idle_timeout=3.0))
    await srv.sweep_once(t0 + 4)  # before the quiet mark, after the new idle timeout
    assert (await _line(quiet.reader)).startswith(b"421 Timeout")
