"""The inline IO route (``ftpd.fs.iomode``, ``nowait``, ``local_nowait``): what is answered on the
loop and what falls back to a thread, with real files whose pages are dropped from the page cache
(``posix_fadvise(DONTNEED)`` after ``fsync``) to make the cold case real. That every operation
answers the same on both routes is ``test_fs_local.py``'s job (it runs everything three ways)."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftpd.fs import local_io, nowait
from ftpd.fs.iomode import IoMode, Op, Route
from ftpd.fs.iopool import IoPool
from ftpd.fs.local import LocalFS
from ftpd.fs.local_io import LocalReader
from ftpd.server import data as datamod

MiB = 1024 * 1024
WAIT = 10.0

linux_only = pytest.mark.skipif(
    not nowait.has_openat2() or not nowait.has_rwf_nowait(),
    reason="the inline route needs Linux openat2 (5.12+) and RWF_NOWAIT",
)


class CountingPool(IoPool):
    def __init__(self) -> None:
        super().__init__(2, "test-inline")
        self.calls = 0

    def submit(self, fn: Any, *args: Any, dispose: Any = None) -> Any:
        self.calls += 1
        return super().submit(fn, *args, dispose=dispose)


@pytest.fixture
def pool() -> Iterator[CountingPool]:
    p = CountingPool()
    yield p
    p.shutdown()
    for t in list(p._threads):
        t.join(WAIT)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (clean pages go; hence the fsync first)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def counts(mode: IoMode, op: Op) -> dict[Route, int]:
    return {route: n for (o, route), n in mode.counts.items() if o is op}


@linux_only
async def test_cached_open_stat_read_take_no_hop(home: Path, pool: CountingPool) -> None:
    (home / "d").mkdir()
    data = os.urandom(300_000)
    (home / "d" / "f.bin").write_bytes(data)
    mode = IoMode(inline=True, memory=False)  # the disk's routes, whatever tmp_path is on
    fs = LocalFS(str(home), pool, mode=mode)
    await fs.stat("/d/f.bin")  # warms the dentry cache if the write did not
    pool.calls = 0
    s = await fs.stat("/d/f.bin")
    assert (s.name, s.size, s.is_dir) == ("f.bin", len(data), False)
    assert (await fs.stat("/")).is_dir
    r = await fs.open_read("/d/f.bin", 1000)
    try:
        got = b""
        while chunk := await r.read(64 * 1024):
            got += chunk
    finally:
        await r.close()
    assert got == data[1000:]
    assert pool.calls == 1  # only the close (a read-only close may free an inode: a thread)
    assert counts(mode, Op.STAT).get(Route.INLINE, 0) >= 2
    assert counts(mode, Op.OPEN_READ) == {Route.INLINE: 1}
    assert set(counts(mode, Op.READ)) == {Route.INLINE}


@linux_only
async def test_io_inline_off_never_tries_inline(home: Path, pool: CountingPool) -> None:
    (home / "f").write_bytes(b"x" * 5000)
    mode = IoMode(inline=False)
    fs = LocalFS(str(home), pool, mode=mode)
    await fs.stat("/f")
    r = await fs.open_read("/f")
    assert await r.read(10_000) == b"x" * 5000
    assert not r.resident(5000)
    await r.close()
    assert {route for _, route in mode.counts} == {Route.THREAD}
    assert pool.calls == 4  # stat, open, read, close


@linux_only
async def test_jail_escapes_fall_back_and_are_refused(
    home: Path, tmp_path: Path, pool: CountingPool
) -> None:
    """openat2(RESOLVE_BENEATH) refuses what leaves the home (EXDEV); the thread form then gives
    the answer the server always gave: an absolute symlink inside the home is followed, one
    leading out is refused."""
    (tmp_path / "secret").write_bytes(b"SECRET")
    (home / "in.txt").write_bytes(b"inside")
    os.symlink(tmp_path / "secret", home / "out")
    os.symlink(home / "in.txt", home / "abs_in")  # absolute, but inside the home
    os.symlink("in.txt", home / "rel_in")
    hfd = os.open(home, os.O_PATH)
    try:
        # With RESOLVE_CACHED an absolute symlink is EAGAIN (a slow-path lookup) or EXDEV...
        with pytest.raises((nowait.WouldBlock, OSError)) as ex:
            nowait.openat2_cached(hfd, "out", os.O_RDONLY)
        assert ex.type is nowait.WouldBlock or getattr(ex.value, "errno", 0) == errno.EXDEV
        # ... and the jail alone answers EXDEV: the kernel refuses to leave the home.
        for path in ("out", "../home/in.txt"):
            with pytest.raises(OSError) as ei:
                nowait._openat2(hfd, path, os.O_RDONLY, 0, nowait.JAIL)
            assert ei.value.errno == errno.EXDEV
    finally:
        os.close(hfd)
    mode = IoMode(inline=True, memory=False)  # the disk's routes, whatever tmp_path is on
    fs = LocalFS(str(home), pool, mode=mode)
    with pytest.raises(PermissionError):
        await fs.open_read("/out")
    with pytest.raises(PermissionError):
        await fs.open_read("/../secret")
    for name in ("abs_in", "rel_in"):
        r = await fs.open_read("/" + name)
        assert await r.read(100) == b"inside"
        await r.close()
    opens = counts(mode, Op.OPEN_READ)  # a relative link inside: inline if the kernel can
    assert opens.get(Route.FALLBACK, 0) >= 3 and sum(opens.values()) == 4, opens
    assert (await fs.stat("/rel_in")).is_link  # a symlink's stat: the thread form's job
    assert counts(mode, Op.STAT) == {Route.FALLBACK: 1}


@linux_only
async def test_cold_read_falls_back_to_a_thread(home: Path, pool: CountingPool) -> None:
    data = os.urandom(2 * MiB)
    (home / "cold").write_bytes(data)
    evict(home / "cold")
    mode = IoMode(inline=True, memory=False)  # the disk's routes, whatever tmp_path is on
    fs = LocalFS(str(home), pool, mode=mode)
    r = await fs.open_read("/cold")
    assert await r.read(256 * 1024) == data[: 256 * 1024]
    assert counts(mode, Op.READ) == {Route.FALLBACK: 1}
    await r.close()


@pytest.mark.parametrize("cachestat", [True, False], ids=["cachestat", "rwf-nowait-probe"])
@linux_only
async def test_resident_and_fill(
    home: Path, pool: CountingPool, cachestat: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if cachestat and not nowait.has_cachestat():
        pytest.skip("cachestat(2) needs Linux 6.5")
    if not cachestat:
        monkeypatch.setitem(nowait._support, "cachestat", False)
    size = 3 * MiB
    (home / "f").write_bytes(os.urandom(size))
    evict(home / "f")
    mode = IoMode(inline=True, memory=False)  # the disk's routes, whatever tmp_path is on
    fs = LocalFS(str(home), pool, mode=mode)
    r = await fs.open_read("/f")
    assert isinstance(r, LocalReader)
    fd = r.fileno()
    assert fd is not None
    assert not r.resident(MiB)  # cold: sendfile would wait for the disk
    await r.fill(MiB)
    assert r.resident(MiB)  # the hop brought it in
    if cachestat:
        cached = nowait.cached_pages(fd, 0, MiB)
        assert cached == MiB // nowait.PAGE
    assert counts(mode, Op.SEND) == {Route.FALLBACK: 1, Route.INLINE: 1}
    await r.close()
    assert not r.resident(MiB)  # closed: never inline


@linux_only
async def test_a_page_still_being_read_is_not_resident(
    home: Path, pool: CountingPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cachestat counts a page the kernel's read-ahead has put in the cache but not yet filled
    from the disk; sendfile of it waits for the disk (a 7 ms stall of the loop per 8 MiB
    read-ahead window, measured). The kernel's RWF_NOWAIT read says EAGAIN for such a page: the
    range is then not resident, and the pump fills it in a thread."""
    (home / "f").write_bytes(os.urandom(2 * MiB))
    mode = IoMode(inline=True, memory=False)
    fs = LocalFS(str(home), pool, mode=mode)
    r = await fs.open_read("/f")
    assert isinstance(r, LocalReader)
    pages = MiB // nowait.PAGE
    monkeypatch.setattr(local_io, "cached_pages", lambda fd, off, n: pages)  # all "in the cache"
    real = local_io.readable_now
    probes: list[int] = []

    def under_read(fd: int, off: int) -> bool | None:
        probes.append(off)
        if off >= MiB - nowait.PAGE:  # the range's last page: its read is still out
            return False
        return real(fd, off)

    monkeypatch.setattr(local_io, "readable_now", under_read)
    assert not r.resident(MiB)
    assert probes == [0, MiB - 1]
    monkeypatch.setattr(local_io, "readable_now", real)
    assert r.resident(MiB)  # the same range once its pages are read
    # A filesystem without RWF_NOWAIT (EOPNOTSUPP): cachestat's count decides, as before.
    monkeypatch.setattr(local_io, "readable_now", lambda fd, off: None)
    assert r.resident(MiB)
    monkeypatch.setattr(local_io, "cached_pages", lambda fd, off, n: pages - 1)
    assert not r.resident(MiB)
    await r.close()


@linux_only
async def test_write_without_rwf_nowait_support_is_remembered(
    home: Path, pool: CountingPool
) -> None:
    mode = IoMode(inline=True, memory=False)  # the disk's routes, whatever tmp_path is on
    fs = LocalFS(str(home), pool, fsync_uploads=False, mode=mode)
    w = await fs.open_write("/up.bin")
    for i in range(3):
        await w.write(bytes([i]) * 1000)
    await w.commit()
    assert (home / "up.bin").read_bytes() == b"\0" * 1000 + b"\1" * 1000 + b"\2" * 1000
    routes = counts(mode, Op.WRITE)
    if routes.get(Route.INLINE):  # a filesystem with non-blocking buffered writes (XFS...)
        assert sum(routes.values()) == 3
    else:  # ext4, tmpfs: EOPNOTSUPP once, then straight to the thread
        assert routes == {Route.FALLBACK: 1, Route.THREAD: 2}


# -- the download pump: bounded slices, never a disk wait on the loop --------------------------


def _drain(sock: socket.socket, out: list[int]) -> None:
    buf = bytearray(MiB)
    total = 0
    while n := sock.recv_into(buf):
        total += n
    out.append(total)


async def _send(fs: LocalFS, name: str, ascii: bool = False) -> tuple[int, int]:
    """RETR ``name`` through ``send_file`` over loopback TCP to a reader thread; (bytes received,
    the most bytes sent while another task waited for its turn)."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        b = socket.create_connection(srv.getsockname())
        a, _ = srv.accept()
    a.setblocking(False)
    got: list[int] = []
    t = threading.Thread(target=_drain, args=(b, got), daemon=True)
    t.start()
    sent = 0
    burst = 0
    done = False

    def progress(n: int) -> None:
        nonlocal sent
        sent += n

    async def ticker() -> None:
        nonlocal burst
        last = 0
        while not done:
            burst = max(burst, sent - last)
            last = sent
            await asyncio.sleep(0)
        burst = max(burst, sent - last)

    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)  # the ticker is running before the transfer starts
    r = await fs.open_read(name)
    try:
        await datamod.send_file(datamod.PlainStream(a), r, ascii, progress)
    finally:
        done = True
        await tick
        await r.close()
        a.close()
    t.join(WAIT)
    b.close()
    return got[0], burst


@linux_only
@pytest.mark.parametrize("cold", [False, True], ids=["cached", "cold"])
async def test_send_file_yields_between_slices(home: Path, pool: CountingPool, cold: bool) -> None:
    """A client that keeps up never makes the pump wait; other sessions must still get the loop
    between slices (the old pump sent 16 MiB per call and looped until EAGAIN). Cold, every
    slice that is not resident is brought in by a pool thread first."""
    size = 24 * MiB
    (home / "big").write_bytes(os.urandom(size))
    if cold:
        evict(home / "big")
    mode = IoMode(inline=True, memory=False)  # the disk's routes, whatever tmp_path is on
    fs = LocalFS(str(home), pool, mode=mode)
    received, burst = await _send(fs, "/big")
    assert received == size
    # At most one slice (~150 µs of the loop) while the others wait for their turn.
    assert burst <= MiB, burst
    slices = size // MiB
    send = counts(mode, Op.SEND)
    assert sum(send.values()) >= slices
    if cold:
        assert send.get(Route.FALLBACK, 0) >= 1
        # The kernel's read-ahead ran in front of the pump: far fewer fills than slices.
        assert send[Route.FALLBACK] <= slices // 2, send
    else:
        assert send == {Route.INLINE: send[Route.INLINE]}


class _FastClient:
    """A data stream (``data.Stream``) that takes everything at once, as a TLS one does when its
    client keeps up: a pump that never has to wait must still give the others their turns."""

    def __init__(self) -> None:
        self.received = 0

    def raw_socket(self) -> None:
        return None

    def try_send(self, data: bytes | memoryview) -> int:
        self.received += len(data)
        return len(data)

    async def send(self, data: bytes | memoryview) -> None:
        self.received += len(data)

    def recv_into_now(self, view: memoryview) -> int | None:
        raise AssertionError("a download never receives")

    async def readable(self) -> None:
        raise AssertionError("a download never receives")


@linux_only
async def test_block_downloads_yield_between_inline_reads(home: Path, pool: CountingPool) -> None:
    """TYPE A (and TLS) downloads read blocks: inline from the page cache they no longer wait for
    a hop, so each inline read gives the others a turn instead."""
    size = 8 * MiB
    data = os.urandom(size).replace(b"\n", b"x").replace(b"\r", b"y")
    (home / "text").write_bytes(data)
    mode = IoMode(inline=True, memory=False)  # the disk's routes, whatever tmp_path is on
    fs = LocalFS(str(home), pool, mode=mode)
    sent = 0
    burst = 0
    done = False

    def progress(n: int) -> None:
        nonlocal sent
        sent += n

    async def ticker() -> None:
        nonlocal burst
        last = 0
        while not done:
            burst = max(burst, sent - last)
            last = sent
            await asyncio.sleep(0)
        burst = max(burst, sent - last)

    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)  # the ticker is running before the transfer starts
    client = _FastClient()
    r = await fs.open_read("/text")
    try:
        await datamod.send_file(client, r, True, progress)
    finally:
        done = True
        await tick
        await r.close()
    assert client.received == size
    assert burst <= datamod.READ_BLOCK, burst
    assert set(counts(mode, Op.READ)) == {Route.INLINE}


@linux_only
async def test_synced_uploads_always_write_in_a_thread(home: Path, pool: CountingPool) -> None:
    """With ``fsync_uploads`` the writes also stream to the disk (``writeback.py``), which waits
    for it: never on the loop, whatever the filesystem."""
    mode = IoMode(inline=True, memory=False)  # the disk's routes, whatever tmp_path is on
    fs = LocalFS(str(home), pool, fsync_uploads=True, mode=mode)
    w = await fs.open_write("/up.bin")
    await w.write(b"a" * 1000)
    await w.commit()
    assert (home / "up.bin").read_bytes() == b"a" * 1000
    assert counts(mode, Op.WRITE) == {Route.THREAD: 1}
