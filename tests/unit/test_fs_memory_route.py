"""A home on a memory filesystem (tmpfs/ramfs, no swap) runs every file call on the loop
(``ftpd.fs.memfs``, ``IoMode.all_inline``, ``local_io.Hops.memory``): no thread hop, each result
delivered on the loop's next turn, so the other sessions still run between a listing's batches;
and an open whose caller is cancelled before delivery is disposed of. Every file operation's
answers on this route are checked against the thread route by test_fs_local.py ("memory")."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ftpd.fs import local_io, memfs
from ftpd.fs.iomode import IoMode, Op, Route
from ftpd.fs.iopool import IoPool
from ftpd.fs.local import LocalFS
from ftpd.fs.local_io import LocalWriter

SHM = Path("/dev/shm")


def test_the_filesystem_type_and_swap_come_from_proc(tmp_path: Path) -> None:
    root_type = memfs.fs_type("/")
    assert root_type is not None and root_type not in ("", "-")
    if SHM.is_dir():
        assert memfs.fs_type(str(SHM)) == "tmpfs"
        assert memfs.never_blocks(str(SHM)) is not memfs.swap_configured()
    if memfs.fs_type(str(tmp_path)) not in memfs.MEMORY_TYPES:
        assert not memfs.never_blocks(str(tmp_path))
    with open("/proc/swaps") as f:
        assert memfs.swap_configured() == (len(f.read().splitlines()) > 1)


def test_the_route_is_decided_per_home(tmp_path: Path) -> None:
    pool = IoPool(2, "test-memroute")
    try:
        forced = LocalFS(str(tmp_path), pool, mode=IoMode(inline=True, memory=True))
        assert forced._hops.memory
        off = LocalFS(str(tmp_path), pool, mode=IoMode(inline=False, memory=True))
        assert not off._hops.memory  # io_inline = false sends everything to the threads
        auto = LocalFS(str(tmp_path), pool, mode=IoMode(inline=True))
        assert auto._hops.memory is memfs.never_blocks(str(tmp_path))
    finally:
        pool.shutdown()


class NoThreads(IoPool):
    """A pool that fails the test if anything is submitted to it."""

    def submit(self, fn, *args, dispose=None):  # type: ignore[no-untyped-def,override]
        raise AssertionError(f"a hop on the memory route: {fn}")


async def test_no_call_leaves_the_loop_and_the_others_run_between_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for i in range(3500):  # four listing batches (BATCH = 1000)
        (home / f"f{i:05d}").write_bytes(b"x")
    pool = NoThreads(1, "test-memroute")
    try:
        mode = IoMode(inline=True, memory=True)
        fs = LocalFS(str(home), pool, mode=mode)
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        stream = await fs.open_listing("/", lambda entries: b"x" * len(entries))
        batches = 0
        seen_before = ticks
        while await stream.read():
            batches += 1
            assert ticks > seen_before, "the listing did not let the loop turn"
            seen_before = ticks
        await stream.close()
        stop = True
        await t
        assert batches == 4
        # Uploads, stats, renames, deletes: all without a hop (NoThreads would raise).
        w = await fs.open_write("/up.bin")
        await w.write(b"a" * 100_000)
        await w.commit(b"tail")
        assert (home / "up.bin").stat().st_size == 100_004
        await fs.rename("/up.bin", "/moved.bin")
        assert (await fs.stat("/moved.bin")).size == 100_004
        await fs.mkdir("/d")
        await fs.rmdir("/d")
        # A download's slices are resident without a probe or a fill: memory holds every page
        # (a probe cannot tell on tmpfs, which has no RWF_NOWAIT reads: each RETR then filled).
        def no_probe(fd: int, off: int) -> bool | None:
            raise AssertionError("a probe on the memory route")

        monkeypatch.setattr(local_io, "readable_now", no_probe)
        monkeypatch.setattr(local_io, "cached_pages", no_probe)
        r = await fs.open_read("/moved.bin")
        assert r.resident(100_004)  # type: ignore[attr-defined]
        assert mode.counts[(Op.SEND, Route.INLINE)] == 1
        await r.close()
        await fs.delete("/moved.bin")
        assert not (home / "moved.bin").exists()
    finally:
        pool.shutdown()


async def test_an_open_whose_caller_is_cancelled_is_disposed_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aborted: list[bool] = []
    real = LocalWriter.finish_sync

    def finish_sync(self: LocalWriter, commit: bool) -> None:
        aborted.append(not commit)
        real(self, commit)

    monkeypatch.setattr(LocalWriter, "finish_sync", finish_sync)
    home = tmp_path / "home"
    home.mkdir()
    pool = NoThreads(1, "test-memroute")
    try:
        fs = LocalFS(str(home), pool, mode=IoMode(inline=True, memory=True), anonymous_temps=False)
        fut = fs.open_write("/never.bin")  # the open ran now; its delivery waits a turn
        assert os.listdir(home) != []  # its temp file exists
        assert isinstance(fut, asyncio.Future)
        fut.cancel()  # the caller gives up before it is delivered (ABOR, a vanished client)
        await asyncio.sleep(0.01)
        assert fut.cancelled()
        assert aborted == [True]  # disposed of explicitly, not left to the garbage collector
        # The writer was aborted: no temp file, no target, no open descriptor left to it.
        assert os.listdir(home) == []
    finally:
        pool.shutdown()
