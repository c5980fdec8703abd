"""The command driver (``ControlChannel._step``) and file calls answered at once.

A file call served from memory (``fs.iomode``: a stat or an open from the kernel's caches; on a
memory filesystem, a delete or a mkdir, ``Hops.once``) comes back as a future that is already
done. The driver takes its result (or its error) at once and the command's reply goes out within
the same ``data_received``, without a turn of the loop; a future still pending is waited for as
before. A real channel on a real server's host, with a transport that records what is written.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ftpd.config import Config
from ftpd.fs.iomode import IoMode
from ftpd.fs.local import LocalFS
from ftpd.fs.local_io import Hops
from ftpd.server.control import ControlChannel
from ftpd.server.server import Server


class Transport:
    """What ``ControlChannel`` uses of an asyncio transport; keeps what is written."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.closing = False

    def write(self, data: bytes) -> None:
        self.out += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 21)}.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closing = True

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing


class StubFS:
    """Answers DELE with the future the test gives it."""

    def __init__(self, fut: asyncio.Future[None]) -> None:
        self.fut = fut
        self.calls = 0

    def delete(self, vpath: str) -> asyncio.Future[None]:
        self.calls += 1
        return self.fut


@pytest.fixture
async def channel(tmp_path: Path) -> Any:
    srv = Server(Config(root=str(tmp_path), user="u", password="p", host="127.0.0.1", port=0,
                        login_fail_delay=0, log_level="warning"))  # fmt: skip
    ch = ControlChannel(srv.host)
    t = Transport()
    ch.connection_made(t)
    ch.data_received(b"USER u\r\nPASS p\r\n")
    assert t.out.endswith(b"230 Login successful.\r\n"), bytes(t.out)
    del t.out[:]
    yield ch, t
    ch.connection_lost(None)
    srv.executor.shutdown(wait=False)
    srv.io.shutdown()


def _done(value: Any = None, error: BaseException | None = None) -> asyncio.Future[None]:
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(value)
    return fut


async def test_a_call_answered_at_once_replies_within_the_same_read(channel: Any) -> None:
    ch, t = channel
    ch.fs = StubFS(_done())
    ch.data_received(b"DELE f\r\n")
    assert bytes(t.out) == b"250 File removed.\r\n"  # no turn of the loop in between
    assert not ch.busy and ch.pending is None


async def test_an_error_answered_at_once_is_the_errno_reply(channel: Any) -> None:
    ch, t = channel
    ch.fs = StubFS(_done(error=FileNotFoundError(2, "No such file or directory")))
    ch.data_received(b"DELE f\r\n")
    assert bytes(t.out).startswith(b"550 ")


async def test_a_pending_call_is_waited_for(channel: Any) -> None:
    ch, t = channel
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ch.fs = StubFS(fut)
    ch.data_received(b"DELE f\r\nNOOP\r\n")
    assert bytes(t.out) == b"" and ch.busy  # the NOOP waits its turn behind the DELE
    fut.set_result(None)
    for _ in range(5):
        await asyncio.sleep(0)
    assert bytes(t.out) == b"250 File removed.\r\n200 NOOP ok.\r\n"


async def test_memory_filesystem_calls_made_once_come_back_done(tmp_path: Path) -> None:
    """On a memory filesystem a delete or a mkdir runs now and comes back done (``once``);
    an open still comes a turn later, so a caller cancelled meanwhile has it disposed of."""
    hops = Hops(None, IoMode(inline=True, memory=True), memory=True)
    fs = LocalFS(str(tmp_path), hops.pool, mode=IoMode(inline=True, memory=True))
    (tmp_path / "f").write_bytes(b"x")
    made = fs.mkdir("/d")
    assert isinstance(made, asyncio.Future) and made.done()
    assert (tmp_path / "d").is_dir()
    gone = fs.delete("/missing")
    assert isinstance(gone, asyncio.Future) and isinstance(gone.exception(), FileNotFoundError)
    opened = fs.open_write("/g")
    assert isinstance(opened, asyncio.Future) and not opened.done()
    writer = await opened
    await writer.abort()


class Later:
    """An awaitable that is neither a future nor a coroutine: done after one turn of the loop."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error

    def __await__(self) -> Any:
        yield from asyncio.sleep(0).__await__()
        if self.error is not None:
            raise self.error


class AnyFS:
    """Answers DELE with whatever each call of ``make`` gives."""

    def __init__(self, make: Any) -> None:
        self.make = make

    def delete(self, vpath: str) -> Any:
        return self.make()


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.parametrize("kind", ["coroutine", "awaitable"])
async def test_awaitables_are_waited_for_every_time(channel: Any, kind: str) -> None:
    """A coroutine or any awaitable a performer returns is run and waited for, the second time
    of its type as the first (the driver remembers per type that it is awaitable)."""
    ch, t = channel

    async def coro(error: BaseException | None) -> None:
        await asyncio.sleep(0)
        if error is not None:
            raise error

    errors: list[BaseException | None] = [None, FileNotFoundError(2, "gone"), None]
    ch.fs = AnyFS(lambda: coro(errors.pop(0)) if kind == "coroutine" else Later(errors.pop(0)))
    for expected in (b"250 File removed.\r\n", b"550 ", b"250 File removed.\r\n"):
        ch.data_received(b"DELE f\r\n")
        assert bytes(t.out) == b"" and ch.busy  # not taken as a plain value
        await _turns()
        assert bytes(t.out).startswith(expected), bytes(t.out)
        del t.out[:]


async def test_a_plain_value_is_the_result(channel: Any) -> None:
    ch, t = channel
    ch.fs = AnyFS(lambda: ("not", "awaitable"))
    for _ in range(2):
        ch.data_received(b"DELE f\r\n")
        assert bytes(t.out) == b"250 File removed.\r\n"
        del t.out[:]
