"""Receive buffers are reused across uploads only when nothing can still read them.

Regression test: a binary upload cancelled (ABOR, disconnect, shutdown) while its shielded
``commit(tail)`` waited in the IO pool gave its buffers back at once; the commit then wrote the
tail from a buffer the next upload was already filling, and still committed the file.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

from ftpd.fs.iopool import IoPool
from ftpd.fs.local import LocalFS
from ftpd.server import data as datamod


async def test_cancelled_commit_keeps_its_buffer(tmp_path: Path) -> None:
    pool = IoPool(1, "test-io")
    a, b = socket.socketpair()
    try:
        fs = LocalFS(str(tmp_path), pool)
        writer = await fs.open_write("/upload.bin")
        a.setblocking(False)
        payload = b"A" * 1000  # a small upload: all of it is the tail written by the commit
        b.sendall(payload)
        b.close()
        gate, holding = threading.Event(), threading.Event()
        pool.run_detached(lambda: (holding.set(), gate.wait(10)))  # the one IO thread is busy
        for _ in range(1000):
            if holding.is_set():
                break
            await asyncio.sleep(0.001)
        task = asyncio.ensure_future(
            datamod.receive_upload(
                datamod.PlainStream(a), writer, False, lambda n: None, None, finish=writer.commit
            )
        )
        for _ in range(1000):
            if pool._jobs.qsize():
                break  # commit(tail) is queued behind the gate
            await asyncio.sleep(0.001)
        assert pool._jobs.qsize() == 1
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        # The next upload takes buffers from the free list and fills them.
        taken = [datamod._take_buffer() for _ in range(4)]
        for buf in taken:
            buf[:1000] = b"B" * 1000
        gate.set()
        target = tmp_path / "upload.bin"
        for _ in range(1000):
            if target.exists():
                break
            await asyncio.sleep(0.005)
        # The shielded commit ran to the end: the file holds this upload's bytes, not B's.
        assert target.read_bytes() == payload
        datamod._give_buffers(tuple(taken))
    finally:
        a.close()
        pool.shutdown()
