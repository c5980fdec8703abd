"""hangup.py with ``data.receive_upload`` on a real socket pair: when the control connection goes,
an upload whose EOF is already in takes it and finishes whole; one without EOF ends at once with
``UploadCut``, never waiting, whether the loop or a bulk thread is reading (issue 17 item 2)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ftpd.server import data as datamod
from ftpd.server.hangup import Hangup, UploadCut


class Sink:
    """A writer that keeps what it is given (``blocking_write`` makes bulk threads usable)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.lock = threading.Lock()

    def write_sync(self, chunk: Any) -> None:
        with self.lock:
            self.data += bytes(chunk)

    def blocking_write(self) -> Any:
        return self.write_sync

    async def write(self, chunk: Any) -> None:
        self.write_sync(chunk)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    server.setblocking(False)
    yield server, client
    server.close()
    client.close()


@pytest.fixture
def bulk() -> Iterator[datamod.BulkThreads]:
    ex = ThreadPoolExecutor(2)
    yield datamod.BulkThreads(ex, 2)
    ex.shutdown(wait=True)


async def _receive(
    server: socket.socket, sink: Sink, hangup: Hangup, bulk: datamod.BulkThreads | None = None
) -> asyncio.Task[Any]:
    async def finish(tail: Any) -> str:
        await sink.write(tail)
        return "committed"

    return asyncio.create_task(
        datamod.receive_upload(
            datamod.PlainStream(server), sink, False, lambda n: None, bulk, finish, hangup
        )
    )


def _drained(sock: socket.socket) -> bool:
    """Nothing left in the kernel for ``sock`` (and no EOF)."""
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    return False


async def _until(pred: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_hang_up_with_the_eof_already_in_commits_everything(pair: Any) -> None:
    server, client = pair
    sink, hangup = Sink(), Hangup()
    task = await _receive(server, sink, hangup)
    await _until(lambda: hangup.waiter is not None)  # waiting for data
    payload = os.urandom(100_000)  # fits in the socket buffer
    # The client sends everything and closes, and the server notices the control connection's
    # loss before it has read any of it (its reader callback has not run yet).
    client.sendall(payload)
    client.shutdown(socket.SHUT_WR)
    assert hangup.hang_up()  # armed: the loop takes it from here
    assert await asyncio.wait_for(task, 5) == "committed"
    assert bytes(sink.data) == payload


async def test_hang_up_without_eof_ends_at_once(pair: Any) -> None:
    server, client = pair
    sink, hangup = Sink(), Hangup()
    task = await _receive(server, sink, hangup)
    client.sendall(b"x" * 1000)  # part of it, no EOF
    await _until(lambda: len(sink.data) == 1000 or hangup.waiter is not None)
    assert hangup.hang_up()
    with pytest.raises(UploadCut):
        await asyncio.wait_for(task, 2)


async def test_hang_up_before_data_cancels_nothing_itself() -> None:
    hangup = Hangup()
    assert not hangup.hang_up()  # nobody receives: the caller cancels the transfer instead


@pytest.mark.parametrize("eof", [True, False], ids=["eof-in", "no-eof"])
async def test_bulk_thread_blocked_in_recv(pair: Any, bulk: Any, eof: bool) -> None:
    server, client = pair
    sink, hangup = Sink(), Hangup()
    big = os.urandom(datamod.BULK_AFTER + 3 * 1024 * 1024)
    sender = threading.Thread(target=client.sendall, args=(big,))
    sender.start()
    task = await _receive(server, sink, hangup, bulk)
    await _until(lambda: hangup.sock is not None)  # a bulk thread reads it now
    await asyncio.to_thread(sender.join)
    await _until(lambda: _drained(server))  # the thread took it all and waits in recv
    if eof:
        client.shutdown(socket.SHUT_WR)
        # The thread may see the EOF first (then the upload is past receiving: False, and the
        # channel would cancel the task, whose commit is shielded) or after the hang-up.
        hangup.hang_up()
    else:
        assert hangup.hang_up()
    if eof:
        assert await asyncio.wait_for(task, 5) == "committed"
        assert bytes(sink.data) == big
    else:
        with pytest.raises(UploadCut):
            await asyncio.wait_for(task, 5)


def test_a_reset_seen_by_the_hang_up_is_a_cut_not_an_eof() -> None:
    """The data connection was reset (a client that aborts both connections) and the hang-up's
    peek is the first to read the socket: the error is reported once, so the bulk thread's next
    recv returns 0. That must not read as the client's EOF (a partial upload committed)."""
    with socket.create_server(("127.0.0.1", 0)) as lsock:
        client = socket.create_connection(lsock.getsockname())
        server, _ = lsock.accept()
    try:
        client.sendall(b"x" * 1000)
        got = b""
        while len(got) < 1000:  # the thread has taken all the data before the reset
            got += server.recv(1000)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.close()  # RST
        hangup = Hangup()
        hangup.arm()
        hangup.sock = server  # a bulk thread reads it
        assert hangup.hang_up()
        assert hangup.cut  # the receiver raises UploadCut, whatever its recv returns now
    finally:
        server.close()
