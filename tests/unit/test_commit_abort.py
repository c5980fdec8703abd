"""ABOR (or a timeout) that lands while a complete upload is being committed.

The data connection has ended and every byte is in the temp file; the commit (write the tail,
close, rename) runs to its end whatever happens. The transfer must then report success (226,
RFC 959 §4.1.3: ABOR of a completed transfer), never 426 for a file that exists.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from ftpd.fs.iopool import IoPool
from ftpd.fs.local import LocalFS
from ftpd.proto.requests import Transfer
from ftpd.server.transfer import Outcome, commit_upload


async def test_cancel_during_commit_reports_ok(tmp_path: Path) -> None:
    pool = IoPool(1, "test-io")
    try:
        fs = LocalFS(str(tmp_path), pool)
        writer = await fs.open_write("/up.bin")
        t = Transfer("STOR", "/up.bin", writer=writer)
        gate, holding = threading.Event(), threading.Event()
        pool.run_detached(lambda: (holding.set(), gate.wait(10)))  # the IO thread is busy
        for _ in range(1000):
            if holding.is_set():
                break
            await asyncio.sleep(0.001)
        task = asyncio.ensure_future(
            commit_upload(t.writer, b"complete upload")
        )
        for _ in range(1000):
            if pool._jobs.qsize():
                break  # the commit waits behind the gate
            await asyncio.sleep(0.001)
        assert pool._jobs.qsize() == 1
        task.cancel()  # ABOR arrives now
        await asyncio.sleep(0.01)  # a chance to give up (it must not): a negative check
        assert not task.done()  # it waits for the commit instead of giving up
        gate.set()
        assert await asyncio.wait_for(task, 10) is Outcome.OK
        assert (tmp_path / "up.bin").read_bytes() == b"complete upload"
    finally:
        pool.shutdown()
