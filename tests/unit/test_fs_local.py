"""LocalFS: every operation on real files in tmp_path, the errno of every failure, atomic and
resumed uploads, names that are not UTF-8, and the jail (symlinks, ``..``, races) that nothing
may escape. The behavioural tests run three times: with a plain executor (aiofiles' wrapper), with
the server's ``IoPool`` (bare loop futures), and with the ``IoPool`` behind the inline route
(``IoMode(inline=True)``: opens, stats, reads and writes answered on the loop from the page and
dentry caches where they can be, ``iomode.py``), so the inline route can never answer
differently. The fast path (no ``realpath`` when no symlink is on the path) must behave exactly
like the general one."""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import os
import resource
import shutil
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftpd.fs import FileSystem, PathEscapeError, Reader, Writer
from ftpd.fs import local as local_mod
from ftpd.fs.iomode import IoMode
from ftpd.fs.iopool import IoPool
from ftpd.fs.local import TEMP_PREFIX, TEMP_SUFFIX, LocalFS, cleanup_stale_uploads

SECRET = b"SENTINEL-SECRET-outside-the-home"


class CountingExecutor(ThreadPoolExecutor):
    """Counts the jobs submitted to it (one per executor round trip)."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.calls = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


class CountingIoPool(IoPool):
    """The server's pool, counting the jobs submitted to it (one per hop). With ``inline``, the
    filesystems the tests build on it try the inline route first (``mode_of``)."""

    def __init__(self, inline: bool = False, memory: bool = False) -> None:
        super().__init__(4, "test-fs-io")
        self.calls = 0
        self.mode = IoMode(inline=True, memory=memory) if inline or memory else None

    def submit(self, fn: Callable[..., Any], *args: Any, dispose: Any = None) -> Any:
        self.calls += 1
        return super().submit(fn, *args, dispose=dispose)


class InlinePool(IoPool):
    """An ``IoPool`` whose filesystems take the inline route first (see ``mode_of``)."""

    def __init__(self, memory: bool = False) -> None:
        super().__init__(2, "test-fs-io")
        self.mode = IoMode(inline=True, memory=memory)


def mode_of(executor: object) -> IoMode | None:
    """The ``IoMode`` the tests' filesystems get with this executor (None: threads only)."""
    return getattr(executor, "mode", None)


def hops_per_open(executor: object) -> int:
    """Hops an open for reading of a cached plain path costs: none on the inline route."""
    return 0 if mode_of(executor) is not None else 1


def hops_of(executor: object, n: int) -> int:
    """``n`` hops, or none where every call runs on the loop (the "memory" route)."""
    mode = mode_of(executor)
    return 0 if mode is not None and mode.memory else n


Counting = CountingExecutor | CountingIoPool
WAIT = 10.0  # bound on every wait for a pool thread


def stop_pool(pool: IoPool) -> None:
    pool.shutdown()
    for t in list(pool._threads):
        t.join(WAIT)
        assert not t.is_alive()


# "memory": every call on the loop, as for a home on tmpfs without swap (memfs.py), forced here
# whatever filesystem tmp_path is on; "inline" forces the opposite (the disk's routes).
@pytest.fixture(params=["executor", "iopool", "inline", "memory"])
def executor(request: pytest.FixtureRequest) -> Iterator[Counting]:
    if request.param == "executor":
        ex = CountingExecutor()
        yield ex
        ex.shutdown(wait=True)
    else:
        pool = CountingIoPool(inline=request.param == "inline", memory=request.param == "memory")
        yield pool
        stop_pool(pool)


@pytest.fixture(params=["default-executor", "iopool", "inline", "memory"])
def hops(request: pytest.FixtureRequest) -> Iterator[IoPool | None]:
    """What LocalFS sends its blocking calls through, for tests that build their own LocalFS
    (``mode_of(hops)``: the inline route in front of it, or None)."""
    if request.param == "default-executor":
        yield None
    else:
        if request.param in ("inline", "memory"):
            pool: IoPool = InlinePool(memory=request.param == "memory")
        else:
            pool = IoPool(2, "test-fs-io")
        yield pool
        stop_pool(pool)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def fs(home: Path, executor: Counting) -> LocalFS:
    return LocalFS(str(home), executor, mode=mode_of(executor))


async def raises_errno(aw: Awaitable[Any], code: int) -> OSError:
    with pytest.raises(OSError) as ei:
        await aw
    assert ei.value.errno == code, (ei.value, errno.errorcode.get(code))
    return ei.value


def temp_files(d: Path) -> list[str]:
    return [n for n in os.listdir(d) if n.startswith(TEMP_PREFIX)]


def pending(fs: LocalFS) -> int:
    """Named temp files an unfinished upload shows: none when it is anonymous (O_TMPFILE)."""
    return 0 if fs.anonymous_temps else 1


async def read_all(r: Reader, block: int = 7) -> bytes:
    chunks = []
    while chunk := await r.read(block):
        chunks.append(chunk)
    return b"".join(chunks)


# -- construction and the interface ------------------------------------------------------------


def test_satisfies_protocols(fs: LocalFS, home: Path) -> None:
    assert isinstance(fs, FileSystem)
    assert fs.home == os.path.realpath(home)
    caps = fs.capabilities
    assert caps.resume_write and caps.set_mtime and caps.chmod


def test_home_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        LocalFS(str(tmp_path / "f"), None)
    with pytest.raises(NotADirectoryError):
        LocalFS(str(tmp_path / "missing"), None)


def test_home_is_made_real(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert LocalFS(str(tmp_path / "alias") + "/", None).home == str(tmp_path / "real")


async def test_default_executor_works(home: Path) -> None:
    (home / "f").write_bytes(b"x")
    assert (await LocalFS(str(home), None).stat("/f")).size == 1


# -- stat and list --------------------------------------------------------------------------


async def test_stat_root(fs: LocalFS, home: Path) -> None:
    s = await fs.stat("/")
    real = os.stat(home)
    assert s.name == "/" and s.is_dir and not s.is_link
    assert s.unique == f"{real.st_dev:x}g{real.st_ino:x}"


async def test_stat_file(fs: LocalFS, home: Path) -> None:
    p = home / "d" / "f.txt"
    p.parent.mkdir()
    p.write_bytes(b"12345")
    os.utime(p, (1_000_000, 1_234_567.5))
    os.link(p, home / "hard")
    s = await fs.stat("/d/f.txt")
    real = os.stat(p)
    assert (s.name, s.is_dir, s.size, s.mtime, s.nlink) == ("f.txt", False, 5, 1_234_567.5, 2)
    assert s.mode == real.st_mode and not s.is_link
    assert s.unique == f"{real.st_dev:x}g{real.st_ino:x}"
    d = await fs.stat("/d")
    assert d.is_dir and d.name == "d"


async def test_stat_errors(fs: LocalFS, home: Path) -> None:
    (home / "f").write_bytes(b"")
    await raises_errno(fs.stat("/missing"), errno.ENOENT)
    await raises_errno(fs.stat("/missing/x"), errno.ENOENT)
    await raises_errno(fs.stat("/f/x"), errno.ENOTDIR)


async def test_list(fs: LocalFS, home: Path) -> None:
    (home / "b.txt").write_bytes(b"bb")
    (home / "a").mkdir()
    (home / "a" / "inner").write_bytes(b"")
    (home / f"{TEMP_PREFIX}0123{TEMP_SUFFIX}").write_bytes(b"partial upload")
    (home / f"{TEMP_PREFIX}notatemp.txt").write_bytes(b"")  # wrong suffix: a normal file
    entries = await fs.list("/")
    assert [e.name for e in entries] == [f"{TEMP_PREFIX}notatemp.txt", "a", "b.txt"]
    by_name = {e.name: e for e in entries}
    assert by_name["a"].is_dir and not by_name["b.txt"].is_dir
    assert by_name["b.txt"].size == 2
    real = os.stat(home / "b.txt")
    assert by_name["b.txt"].unique == f"{real.st_dev:x}g{real.st_ino:x}"
    assert [e.name for e in await fs.list("/a")] == ["inner"]
    assert await fs.list("/a/") == await fs.list("//a/.")


async def test_list_errors(fs: LocalFS, home: Path) -> None:
    (home / "f").write_bytes(b"")
    await raises_errno(fs.list("/f"), errno.ENOTDIR)
    await raises_errno(fs.list("/missing"), errno.ENOENT)


async def test_list_of_2000_files_is_one_executor_call(
    fs: LocalFS, home: Path, executor: Counting
) -> None:
    for i in range(2000):
        (home / f"f{i:04d}").write_bytes(b"x" * (i % 7))
    executor.calls = 0
    entries = await fs.list("/")
    assert executor.calls == hops_of(executor, 1)
    assert len(entries) == 2000
    assert entries[1234].name == "f1234" and entries[1234].size == 1234 % 7


# -- reading -----------------------------------------------------------------------------------


async def test_open_read(fs: LocalFS, home: Path, executor: Counting) -> None:
    data = bytes(range(256)) * 40
    (home / "f").write_bytes(data)
    executor.calls = 0
    r = await fs.open_read("/f")
    # resolve + open + fstat + seek in one round trip, or none from the dentry cache
    assert executor.calls == hops_per_open(executor)
    assert isinstance(r, Reader)
    assert r.size == len(data) and r.position() == 0
    assert await read_all(r, 1000) == data
    assert r.position() == len(data)
    await r.close()
    await r.close()  # idempotent
    assert r.fileno() is None
    with pytest.raises(ValueError):
        await r.read(1)


async def test_open_read_at_offset_and_sendfile_style_use(fs: LocalFS, home: Path) -> None:
    data = b"0123456789"
    (home / "f").write_bytes(data)
    r = await fs.open_read("/f", 3)
    try:
        fd = r.fileno()
        assert fd is not None
        assert os.lseek(fd, 0, os.SEEK_CUR) == 3
        # A sendfile caller reads via the fd at position() and then advances.
        assert os.pread(fd, 4, r.position()) == b"3456"
        r.advance(4)
        assert r.position() == 7
        assert await r.read(100) == b"789"
        assert await r.read(100) == b""
        with pytest.raises(ValueError):
            r.advance(-1)
    finally:
        await r.close()
    r = await fs.open_read("/f", len(data))  # offset == size: empty transfer, allowed
    assert await r.read(10) == b""
    await r.close()


async def test_open_read_errors(fs: LocalFS, home: Path) -> None:
    (home / "f").write_bytes(b"abc")
    (home / "d").mkdir()
    os.mkfifo(home / "fifo")
    err = await raises_errno(fs.open_read("/f", 4), errno.EINVAL)
    assert "beyond end" in str(err)
    await raises_errno(fs.open_read("/f", -1), errno.EINVAL)
    await raises_errno(fs.open_read("/missing"), errno.ENOENT)
    await raises_errno(fs.open_read("/d"), errno.EISDIR)
    await raises_errno(fs.open_read("/"), errno.EISDIR)
    # A FIFO must neither block an executor thread nor be served.
    await asyncio.wait_for(raises_errno(fs.open_read("/fifo"), errno.EACCES), 5)


async def test_open_read_leaks_no_fd_on_errors(fs: LocalFS, home: Path) -> None:
    (home / "f").write_bytes(b"abc")
    with pytest.raises(OSError):
        await fs.open_read("/f", 10)  # the inline route keeps the home open (homefds.py)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        with pytest.raises(OSError):
            await fs.open_read("/f", 10)
    assert len(os.listdir("/proc/self/fd")) == before


# -- writing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("anonymous", [True, False], ids=["o_tmpfile", "named"])
async def test_atomic_upload_new_file(home: Path, executor: Counting, anonymous: bool) -> None:
    fs = LocalFS(str(home), executor, anonymous_temps=anonymous)
    assert fs.anonymous_temps == anonymous  # O_TMPFILE works here (Linux, tmpfs/ext4)
    w = await fs.open_write("/new.txt")
    assert isinstance(w, Writer)
    await w.write(b"hello ")
    await w.write(memoryview(b"world"))
    # Not visible under its name, and the temp file is hidden from listings.
    await raises_errno(fs.stat("/new.txt"), errno.ENOENT)
    assert await fs.list("/") == []
    assert len(temp_files(home)) == pending(fs)
    await w.commit()
    assert (home / "new.txt").read_bytes() == b"hello world"
    assert temp_files(home) == []
    await w.abort()  # after commit: does nothing
    assert (home / "new.txt").read_bytes() == b"hello world"
    with pytest.raises(ValueError):
        await w.write(b"late")


async def test_anonymous_upload_takes_a_free_name_in_one_link(
    home: Path, executor: Counting, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new file is linked under its name directly; over an existing file (here one that
    appeared while the upload ran) it goes through a temp name and a rename, and replaces it."""
    from ftpd.fs import local_io

    temp_links: list[int] = []
    real = local_io.link_anonymous

    def counting(fd: int, dir_fd: int) -> str:
        temp_links.append(fd)
        return real(fd, dir_fd)

    monkeypatch.setattr(local_io, "link_anonymous", counting)
    fs = LocalFS(str(home), executor, anonymous_temps=True, mode=mode_of(executor))
    w = await fs.open_write("/new.bin")
    await w.write(b"first")
    await w.commit()
    assert (home / "new.bin").read_bytes() == b"first" and temp_links == []
    w = await fs.open_write("/raced.bin")
    await w.write(b"ours")
    (home / "raced.bin").write_bytes(b"someone else's, committed meanwhile")
    await w.commit()
    assert (home / "raced.bin").read_bytes() == b"ours" and len(temp_links) == 1
    assert sorted(os.listdir(home)) == ["new.bin", "raced.bin"]  # no temp name left


async def test_atomic_upload_readers_see_old_content_until_commit(fs: LocalFS, home: Path) -> None:
    (home / "f").write_bytes(b"old content")
    os.chmod(home / "f", 0o640)
    r_before = await fs.open_read("/f")
    w = await fs.open_write("/f")
    await w.write(b"new content, longer")
    r_during = await fs.open_read("/f")
    assert await read_all(r_during) == b"old content"
    assert (await fs.stat("/f")).size == len(b"old content")
    await w.commit()
    assert (home / "f").read_bytes() == b"new content, longer"
    assert os.stat(home / "f").st_mode & 0o777 == 0o640  # permission bits carried over
    assert await read_all(r_before) == b"old content"  # an open reader keeps the old inode
    r_after = await fs.open_read("/f")
    assert await read_all(r_after) == b"new content, longer"
    for r in (r_before, r_during, r_after):
        await r.close()


async def test_atomic_upload_abort_keeps_old_version(fs: LocalFS, home: Path) -> None:
    (home / "f").write_bytes(b"precious")
    w = await fs.open_write("/f")
    await w.write(b"half an upl")
    await w.abort()
    await w.abort()
    assert (home / "f").read_bytes() == b"precious"
    assert temp_files(home) == []
    w = await fs.open_write("/g")
    await w.abort()
    assert os.listdir(home) == ["f"]


async def test_new_file_mode_follows_umask(fs: LocalFS, home: Path, executor: Counting) -> None:
    old = os.umask(0o027)
    try:
        w = await fs.open_write("/f")
        await w.commit()
        fs_in_place = LocalFS(str(home), executor, atomic_uploads=False, mode=mode_of(executor))
        w = await fs_in_place.open_write("/g")
        await w.commit()
    finally:
        os.umask(old)
    assert os.stat(home / "f").st_mode & 0o777 == 0o640
    assert os.stat(home / "g").st_mode & 0o777 == 0o640


async def test_large_and_odd_blocks(fs: LocalFS, home: Path, executor: Counting) -> None:
    block = os.urandom(1 << 20)
    ints = array.array("i", range(1000))  # a memoryview whose items are not bytes
    w = await fs.open_write("/big")
    executor.calls = 0
    for _ in range(4):
        await w.write(memoryview(block))
    await w.write(memoryview(ints))
    await w.write(b"")
    assert executor.calls == hops_of(executor, 6)  # one round trip per write, however large
    await w.commit()
    assert (home / "big").read_bytes() == block * 4 + ints.tobytes()


async def test_write_error_leaves_writer_abortable(fs: LocalFS, home: Path) -> None:
    (home / "f").write_bytes(b"previous")
    w = await fs.open_write("/f")
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, old_limit[1]))
    try:
        await raises_errno(w.write(b"x" * (2 << 20)), errno.EFBIG)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    await w.abort()
    assert (home / "f").read_bytes() == b"previous"
    assert temp_files(home) == []


async def test_failed_commit_stays_abortable(fs: LocalFS, home: Path) -> None:
    w = await fs.open_write("/f")
    await w.write(b"data")
    (home / "f").mkdir()  # the target turned into a directory meanwhile
    (home / "f" / "x").write_bytes(b"")
    with pytest.raises(OSError):
        await w.commit()
    assert len(temp_files(home)) == pending(fs)
    await w.abort()
    assert temp_files(home) == []


async def test_open_write_errors(fs: LocalFS, home: Path, executor: Counting) -> None:
    (home / "d").mkdir()
    (home / "f").write_bytes(b"")
    for atomic in (True, False):
        f = LocalFS(str(home), executor, atomic_uploads=atomic, mode=mode_of(executor))
        await raises_errno(f.open_write("/d"), errno.EISDIR)
        await raises_errno(f.open_write("/"), errno.EISDIR)
        await raises_errno(f.open_write("/missing/x"), errno.ENOENT)
        await raises_errno(f.open_write("/f/x"), errno.ENOTDIR)
    await raises_errno(fs.open_write("/d", append=True), errno.EISDIR)
    await raises_errno(fs.open_write("/f", offset=-1), errno.EINVAL)
    await raises_errno(fs.open_write("/f", offset=1, append=True), errno.EINVAL)
    assert temp_files(home) == [] and temp_files(home / "d") == []


async def test_rest_stor(fs: LocalFS, home: Path) -> None:
    (home / "f").write_bytes(b"0123456789")
    w = await fs.open_write("/f", offset=4)
    await w.write(b"ab")
    await w.commit()
    # Written from the offset; the bytes after what was written stay (vsftpd, ProFTPD,
    # pyftpdlib): REST never shrinks a file.
    assert (home / "f").read_bytes() == b"0123ab6789"
    w = await fs.open_write("/f", offset=8)  # over the end: the file grows
    await w.write(b"cdef")
    await w.commit()
    assert (home / "f").read_bytes() == b"0123ab67cdef"
    w = await fs.open_write("/f", offset=12)  # offset == size: a pure continuation
    await w.write(b"gh")
    await w.commit()
    assert (home / "f").read_bytes() == b"0123ab67cdefgh"
    err = await raises_errno(fs.open_write("/f", offset=15), errno.EINVAL)
    assert "beyond end" in str(err)
    assert (home / "f").read_bytes() == b"0123ab67cdefgh"
    await raises_errno(fs.open_write("/missing", offset=3), errno.ENOENT)
    assert temp_files(home) == []


async def test_rest_stor_abort_keeps_partial_data(fs: LocalFS, home: Path) -> None:
    # In place: the bytes already written stay so that the client can resume again.
    (home / "f").write_bytes(b"0123456789")
    w = await fs.open_write("/f", offset=2)
    await w.write(b"XY")
    await w.abort()
    assert (home / "f").read_bytes() == b"01XY456789"


async def test_appe(fs: LocalFS, home: Path) -> None:
    (home / "f").write_bytes(b"start-")
    w = await fs.open_write("/f", append=True)
    await w.write(b"more")
    await w.commit()
    assert (home / "f").read_bytes() == b"start-more"
    w = await fs.open_write("/created", append=True)
    await w.write(b"x")
    await w.commit()
    assert (home / "created").read_bytes() == b"x"
    assert temp_files(home) == []


async def test_non_atomic_mode(home: Path, executor: Counting) -> None:
    fs = LocalFS(str(home), executor, atomic_uploads=False, mode=mode_of(executor))
    (home / "f").write_bytes(b"old old old")
    w = await fs.open_write("/f")
    assert (home / "f").read_bytes() == b""  # truncated in place at once
    await w.write(b"part")
    assert temp_files(home) == []
    await w.abort()
    assert (home / "f").read_bytes() == b"part"
    w = await fs.open_write("/f")
    await w.write(b"whole")
    await w.commit()
    assert (home / "f").read_bytes() == b"whole"


async def test_cancelled_open_leaks_nothing(home: Path) -> None:
    """ABOR or a disconnect may cancel open_write/open_read while the open runs in a thread:
    the temp file and fds it creates must be disposed of when it finishes."""

    class GatedExecutor(ThreadPoolExecutor):
        """Jobs wait for ``gate``; ``jobs`` keeps every submitted future."""

        def __init__(self) -> None:
            super().__init__(max_workers=2)
            self.gate = threading.Event()
            self.jobs: list[Future[Any]] = []

        def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
            gate = self.gate

            def gated() -> Any:
                assert gate.wait(5)
                return fn(*args, **kwargs)

            self.jobs.append(super().submit(gated))
            return self.jobs[-1]

    ex = GatedExecutor()
    try:
        fs = LocalFS(str(home), ex)
        (home / "f").write_bytes(b"x")
        before = len(os.listdir("/proc/self/fd"))
        for opener in (lambda: fs.open_write("/f"), lambda: fs.open_read("/f")):
            ex.gate, ex.jobs = threading.Event(), []
            task = asyncio.ensure_future(opener())
            while not ex.jobs:
                await asyncio.sleep(0.001)
            task.cancel()
            ex.gate.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The open job, then the disposal job it triggers, both run to completion.
            for _ in range(500):
                if len(ex.jobs) == 2 and all(j.done() for j in ex.jobs):
                    break
                await asyncio.sleep(0.01)
            assert len(ex.jobs) == 2 and all(j.exception() is None for j in ex.jobs)
            assert temp_files(home) == []
            assert len(os.listdir("/proc/self/fd")) == before
        assert (home / "f").read_bytes() == b"x"
    finally:
        ex.gate.set()
        ex.shutdown(wait=True)


async def test_cancelled_open_with_an_iopool_leaks_nothing(home: Path) -> None:
    """The same with the server's IoPool: an open cancelled while it runs hands its result to
    the disposer (in the pool); one cancelled before it starts never runs at all."""
    pool = IoPool(1, "test-fs-io")
    try:
        fs = LocalFS(str(home), pool)
        (home / "f").write_bytes(b"x")
        before = len(os.listdir("/proc/self/fd"))
        for attr, opener in (
            ("_open_write", lambda: fs.open_write("/f")),
            ("_open_read", lambda: fs.open_read("/f")),
        ):
            gate, started = threading.Event(), threading.Event()
            opened: list[Any] = []
            real = getattr(fs, attr)

            def gated(
                *args: Any,
                real: Any = real,
                gate: Any = gate,
                started: Any = started,
                opened: list[Any] = opened,
            ) -> Any:
                started.set()
                assert gate.wait(WAIT)
                opened.append(real(*args))
                return opened[-1]

            setattr(fs, attr, gated)

            async def call(opener: Any = opener) -> Any:
                return await opener()

            # Cancelled while the open runs in the pool thread.
            task = asyncio.ensure_future(call())
            await until(started.is_set)
            task.cancel()
            gate.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            await until(lambda opened=opened: opened)  # the open did happen...
            res = opened[0]
            # ...and its writer was aborted / its reader closed by the pool, not by us.
            if attr == "_open_write":
                await until(lambda res=res: res._done)
            else:
                await until(lambda res=res: res.fileno() is None)
            assert temp_files(home) == []
            assert len(os.listdir("/proc/self/fd")) == before

            # Cancelled before it starts: the only thread is busy, the open job is skipped.
            busy, holding = threading.Event(), threading.Event()

            def hold_thread(busy: Any = busy, holding: Any = holding) -> bool:
                holding.set()
                return bool(busy.wait(WAIT))

            hold = pool.submit(hold_thread)
            await until(holding.is_set)
            started.clear()
            task = asyncio.ensure_future(call())
            await until(lambda: pool._jobs.qsize() == 1)  # the open job waits in the queue
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            busy.set()
            assert await asyncio.wait_for(hold, WAIT) is True
            assert await asyncio.wait_for(pool.submit(len, "after"), WAIT) == 5  # FIFO: after it
            assert not started.is_set() and len(opened) == 1
            assert temp_files(home) == []
            assert len(os.listdir("/proc/self/fd")) == before
        assert (home / "f").read_bytes() == b"x"
    finally:
        stop_pool(pool)


async def until(pred: Callable[[], object], timeout: float = WAIT) -> None:
    """Poll ``pred`` from the loop until true; fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {pred}"
        await asyncio.sleep(0.002)


# -- commit with the upload's last bytes (one hop) -------------------------------------------


@pytest.mark.parametrize(
    "tail", [b"tail", memoryview(b"tail"), b""], ids=["bytes", "view", "empty"]
)
async def test_commit_with_tail_is_one_hop_and_atomic(
    fs: LocalFS, home: Path, executor: Counting, tail: bytes | memoryview
) -> None:
    (home / "f").write_bytes(b"old content")
    os.chmod(home / "f", 0o604)
    old_ino = os.stat(home / "f").st_ino
    executor.calls = 0
    w = await fs.open_write("/f")
    assert executor.calls == hops_of(executor, 1)
    await w.write(b"head-")
    assert len(temp_files(home)) == pending(fs)
    temp_ino = os.fstat(w._fd).st_ino
    reader = await fs.open_read("/f")  # opened before the commit: keeps the old inode
    executor.calls = 0
    await w.commit(tail)
    assert executor.calls == hops_of(executor, 1)  # tail write, close and rename in one hop
    assert (home / "f").read_bytes() == b"head-" + bytes(tail)
    st_new = os.stat(home / "f")
    assert st_new.st_ino == temp_ino != old_ino  # renamed over the target, not rewritten
    assert st_new.st_mode & 0o777 == 0o604
    assert temp_files(home) == []
    assert await read_all(reader) == b"old content"
    await reader.close()
    await w.abort()  # after a commit: nothing
    assert (home / "f").read_bytes() == b"head-" + bytes(tail)


@pytest.mark.parametrize("kind", ["executor", "iopool"])
async def test_cancelling_commit_or_abort_does_not_skip_it(home: Path, kind: str) -> None:
    """ABOR or a disconnect may cancel the transfer while its commit/abort waits for a thread:
    the step still runs (no temp file or fd left behind, a commit still lands)."""
    ex: Any = IoPool(1, "test-fs-io") if kind == "iopool" else ThreadPoolExecutor(1)
    gate = threading.Event()
    try:
        fs = LocalFS(str(home), ex)
        (home / "f").write_bytes(b"old")
        before = len(os.listdir("/proc/self/fd"))
        for finish, expect in (("commit", b"new!"), ("abort", b"new!")):
            w = await fs.open_write("/f")
            await w.write(b"new")
            gate, holding = threading.Event(), threading.Event()

            def hold(gate: Any = gate, holding: Any = holding) -> None:
                holding.set()
                assert gate.wait(WAIT)

            if kind == "iopool":  # the only thread is busy: the step waits in the queue
                ex.run_detached(hold)
            else:
                ex.submit(hold)
            await until(holding.is_set)
            task = asyncio.ensure_future(w.commit(b"!") if finish == "commit" else w.abort())
            await asyncio.sleep(0)  # the task hands its job to the executor
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            gate.set()
            # (An O_TMPFILE upload has no temp name to watch: wait for the writer itself.)
            await until(lambda w=w: w._done and temp_files(home) == [])
            assert (home / "f").read_bytes() == expect
        await until(lambda: len(os.listdir("/proc/self/fd")) == before)
    finally:
        gate.set()
        if kind == "iopool":
            stop_pool(ex)
        else:
            ex.shutdown(wait=True)


async def test_commit_with_tail_in_place(fs: LocalFS, home: Path) -> None:
    (home / "f").write_bytes(b"0123456789")
    w = await fs.open_write("/f", offset=2)  # REST + STOR: in place
    await w.commit(b"XY")
    assert (home / "f").read_bytes() == b"01XY456789"
    w = await fs.open_write("/f", append=True)
    await w.write(b"-")
    await w.commit(memoryview(array.array("B", b"Z!")))
    assert (home / "f").read_bytes() == b"01XY456789-Z!"
    w = await fs.open_write("/new", append=True)
    await w.commit(b"only the tail")
    assert (home / "new").read_bytes() == b"only the tail"
    assert temp_files(home) == []


async def test_commit_tail_out_of_space_leaves_writer_abortable(
    fs: LocalFS, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / "f").write_bytes(b"previous")
    before = len(os.listdir("/proc/self/fd"))
    w = await fs.open_write("/f")
    await w.write(b"head")
    fd = w._fd
    real_write = os.write
    failed: list[int] = []

    def full_disk(f: int, data: Any) -> int:
        if f == fd and not failed:  # the tail's write: once, and only on the upload's fd
            failed.append(f)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(f, data)

    monkeypatch.setattr(local_mod.os, "write", full_disk)
    await raises_errno(w.commit(b"tail"), errno.ENOSPC)
    assert failed == [fd]
    assert (home / "f").read_bytes() == b"previous"  # nothing renamed
    assert len(temp_files(home)) == pending(fs)
    await w.abort()
    assert (home / "f").read_bytes() == b"previous"
    assert temp_files(home) == []
    assert len(os.listdir("/proc/self/fd")) == before


async def test_commit_tail_beyond_file_size_limit_leaves_writer_abortable(
    fs: LocalFS, home: Path
) -> None:
    """The same with a real kernel error: RLIMIT_FSIZE makes the tail's write fail (EFBIG)."""
    (home / "f").write_bytes(b"previous")
    w = await fs.open_write("/f")
    await w.write(b"x" * 1000)
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, old_limit[1]))
    try:
        await raises_errno(w.commit(b"y" * 8192), errno.EFBIG)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert (home / "f").read_bytes() == b"previous"
    assert len(temp_files(home)) == pending(fs)
    await w.abort()
    assert (home / "f").read_bytes() == b"previous"
    assert temp_files(home) == []


# -- directories, delete, rename, metadata -----------------------------------------------------


async def test_mkdir_rmdir(fs: LocalFS, home: Path) -> None:
    await fs.mkdir("/d")
    await fs.mkdir("/d/e")
    assert (home / "d" / "e").is_dir()
    await raises_errno(fs.mkdir("/d"), errno.EEXIST)
    await raises_errno(fs.mkdir("/"), errno.EEXIST)
    await raises_errno(fs.mkdir("/missing/x"), errno.ENOENT)
    await raises_errno(fs.rmdir("/d"), errno.ENOTEMPTY)
    await fs.rmdir("/d/e")
    await fs.rmdir("/d")
    assert os.listdir(home) == []
    (home / "f").write_bytes(b"")
    await raises_errno(fs.rmdir("/f"), errno.ENOTDIR)
    await raises_errno(fs.rmdir("/missing"), errno.ENOENT)
    with pytest.raises(PermissionError):
        await fs.rmdir("/")


async def test_delete(fs: LocalFS, home: Path) -> None:
    (home / "f").write_bytes(b"")
    (home / "d").mkdir()
    await fs.delete("/f")
    assert not (home / "f").exists()
    await raises_errno(fs.delete("/f"), errno.ENOENT)
    await raises_errno(fs.delete("/d"), errno.EISDIR)
    await raises_errno(fs.delete("/"), errno.EISDIR)
    assert (home / "d").is_dir()


async def test_rename(fs: LocalFS, home: Path) -> None:
    (home / "f").write_bytes(b"F")
    (home / "g").write_bytes(b"G")
    (home / "d").mkdir()
    (home / "d" / "inner").write_bytes(b"I")
    await fs.rename("/f", "/d/f2")
    assert (home / "d" / "f2").read_bytes() == b"F" and not (home / "f").exists()
    await fs.rename("/d", "/e")  # a non-empty directory
    assert (home / "e" / "inner").read_bytes() == b"I"
    await fs.rename("/g", "/e/f2")  # replaces an existing file
    assert (home / "e" / "f2").read_bytes() == b"G"
    await raises_errno(fs.rename("/missing", "/x"), errno.ENOENT)
    await raises_errno(fs.rename("/e/f2", "/nodir/x"), errno.ENOENT)
    await raises_errno(fs.rename("/e", "/e/inside"), errno.EINVAL)
    with pytest.raises(PermissionError):
        await fs.rename("/", "/x")
    with pytest.raises(PermissionError):
        await fs.rename("/e", "/")
    assert sorted(os.listdir(home)) == ["e"]


async def test_set_mtime_keeps_atime(fs: LocalFS, home: Path) -> None:
    p = home / "f"
    p.write_bytes(b"")
    os.utime(p, ns=(111_000_000_000, 222_000_000_000))
    await fs.set_mtime("/f", 1_600_000_000.25)
    s = os.stat(p)
    assert s.st_mtime_ns == 1_600_000_000_250_000_000 and s.st_atime_ns == 111_000_000_000
    assert (await fs.stat("/f")).mtime == pytest.approx(1_600_000_000.25, abs=1e-6)
    await fs.set_mtime("/", 1_500_000_000)
    assert os.stat(home).st_mtime == 1_500_000_000
    await raises_errno(fs.set_mtime("/missing", 0), errno.ENOENT)


async def test_chmod(fs: LocalFS, home: Path) -> None:
    (home / "f").write_bytes(b"")
    (home / "d").mkdir()
    await fs.chmod("/f", 0o100640)  # only the permission bits are used
    assert os.stat(home / "f").st_mode == 0o100640
    await fs.chmod("/d", 0o4711)
    assert os.stat(home / "d").st_mode & 0o7777 == 0o711
    await raises_errno(fs.chmod("/missing", 0o600), errno.ENOENT)


async def test_unique_name(fs: LocalFS, home: Path) -> None:
    (home / "d").mkdir()
    first = await fs.unique_name("/d", "upload")
    second = await fs.unique_name("/d", "upload")
    assert (first, second) == ("/d/upload.1", "/d/upload.2")
    assert (home / "d" / "upload.1").read_bytes() == b""
    assert await fs.unique_name("/", "x") == "/x.1"
    for i in range(1, 100):
        (home / f"busy.{i}").write_bytes(b"")
    random_name = await fs.unique_name("/", "busy")
    assert random_name.startswith("/busy.") and (home / random_name[1:]).is_file()
    await raises_errno(fs.unique_name("/d", "a/b"), errno.EINVAL)
    await raises_errno(fs.unique_name("/d", ".."), errno.EINVAL)
    await raises_errno(fs.unique_name("/missing", "u"), errno.ENOENT)


def test_cleanup_stale_uploads(tmp_path: Path, home: Path) -> None:
    stale = [
        home / f"{TEMP_PREFIX}aa{TEMP_SUFFIX}",
        home / "d" / "e" / f"{TEMP_PREFIX}b{TEMP_SUFFIX}",
    ]
    stale[1].parent.mkdir(parents=True)
    for p in stale:
        p.write_bytes(b"partial")
    keep = [home / f"{TEMP_PREFIX}x.txt", home / "d" / "normal.tmp"]
    for p in keep:
        p.write_bytes(b"")
    (home / f"{TEMP_PREFIX}dir{TEMP_SUFFIX}").mkdir()  # a directory is not ours
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / f"{TEMP_PREFIX}o{TEMP_SUFFIX}").write_bytes(b"not ours")
    (home / "link").symlink_to(outside)  # never descended into
    assert cleanup_stale_uploads(str(home)) == 2
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep)
    assert (outside / f"{TEMP_PREFIX}o{TEMP_SUFFIX}").exists()
    assert cleanup_stale_uploads(str(home)) == 0


# -- names that are not UTF-8 ----------------------------------------------------------------


async def test_non_utf8_names_round_trip(fs: LocalFS, home: Path) -> None:
    hb = os.fsencode(home)
    raw_file, raw_dir = b"caf\xe9 \xff.txt", b"\xfe\xfddir"
    with open(hb + b"/" + raw_file, "wb") as f:
        f.write(b"latin-1 name")
    os.mkdir(hb + b"/" + raw_dir)
    entries = await fs.list("/")
    names = {os.fsencode(e.name) for e in entries}
    assert names == {raw_file, raw_dir}
    fname = next(e.name for e in entries if not e.is_dir)
    dname = next(e.name for e in entries if e.is_dir)
    assert (await fs.stat("/" + fname)).size == len(b"latin-1 name")
    r = await fs.open_read("/" + fname)
    assert await read_all(r) == b"latin-1 name"
    await r.close()
    await fs.rename("/" + fname, f"/{dname}/{fname}")
    assert os.listdir(hb + b"/" + raw_dir) == [raw_file]
    w = await fs.open_write(f"/{dname}/{fname}", append=True)
    await w.write(b"!")
    await w.commit()
    await fs.delete(f"/{dname}/{fname}")
    await fs.rmdir("/" + dname)
    assert os.listdir(hb) == []


# -- virtual path validation -------------------------------------------------------------------


async def test_bad_virtual_paths(fs: LocalFS, home: Path) -> None:
    (home / "a").mkdir()
    await raises_errno(fs.stat("/a\0b"), errno.EINVAL)
    await raises_errno(fs.stat("a"), errno.EINVAL)
    await raises_errno(fs.stat(""), errno.EINVAL)
    for p in ("/..", "/a/..", "/a/../..", "/../home/a"):
        with pytest.raises(PathEscapeError):
            await fs.stat(p)
        with pytest.raises(PathEscapeError):
            await fs.list(p)
    assert (await fs.stat("//a/./")).name == "a"


# -- the jail ----------------------------------------------------------------------------------


class Jail:
    """A home full of symlinks, next to an ``outside`` directory holding a sentinel file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.outside = root / "outside"
        self.sentinel = self.outside / "sentinel.txt"
        if not self.outside.exists():
            self.outside.mkdir()
            (self.outside / "sub").mkdir()
            self.sentinel.write_bytes(SECRET)
            os.utime(self.sentinel, ns=(1_000_000_000, 2_000_000_000))
        self.snapshot = self._snapshot()
        self.build_home()

    def build_home(self) -> None:
        if self.home.exists():
            shutil.rmtree(self.home)
        h = self.home
        h.mkdir()
        (h / "a.txt").write_bytes(b"hello")
        (h / "sub").mkdir()
        (h / "sub" / "inner.txt").write_bytes(b"inner")
        # Escapes: (link, target)
        for name, target in [
            ("file_abs", str(self.sentinel)),
            ("file_rel", "../outside/sentinel.txt"),
            ("dir_abs", str(self.outside)),
            ("dir_rel", "../outside"),
            ("sub/deep_rel", "../../outside"),
            ("chain", "dir_rel"),
            ("dotdot", ".."),
            ("root_abs", "/"),
            ("dangling_out", "../outside/nothing-here"),
        ]:
            os.symlink(target, h / name)
        # Symlinks that stay inside.
        os.symlink("a.txt", h / "in_file")
        os.symlink(str(h / "sub"), h / "in_dir")
        os.symlink("in_dir", h / "in_chain")
        os.symlink("sub/../a.txt", h / "in_dotdot")
        os.symlink("nothing-here", h / "dangling_in")
        os.symlink("loop_b", h / "loop_a")
        os.symlink("loop_a", h / "loop_b")

    def _snapshot(self) -> object:
        s = os.stat(self.sentinel)
        tree = sorted(
            (dp, tuple(sorted(dn)), tuple(sorted(fn))) for dp, dn, fn in os.walk(self.outside)
        )
        return (self.sentinel.read_bytes(), s.st_mode, s.st_mtime_ns, s.st_ino, tree)

    def assert_untouched(self) -> None:
        assert self._snapshot() == self.snapshot

    def outside_uniques(self) -> set[str]:
        out = set()
        for p in (self.outside, self.sentinel, self.outside / "sub", self.root):
            s = os.stat(p)
            out.add(f"{s.st_dev:x}g{s.st_ino:x}")
        return out


@pytest.fixture
def jail(tmp_path: Path) -> Jail:
    return Jail(tmp_path)


async def _write_and_commit(fs: LocalFS, vpath: str, **kw: Any) -> None:
    w = await fs.open_write(vpath, **kw)
    await w.write(b"PLANTED")
    await w.commit()


# How each escaping link reaches the sentinel from inside it.
DIR_LINKS = {
    "/dir_abs": "sentinel.txt",
    "/dir_rel": "sentinel.txt",
    "/sub/deep_rel": "sentinel.txt",
    "/chain": "sentinel.txt",
    "/dotdot": "outside/sentinel.txt",
    "/root_abs": None,  # filled in from tmp_path at run time
}
FILE_LINKS = ["/file_abs", "/file_rel", "/dangling_out"]

# (operation name, how to run it given the link L and the sentinel reached through it S)
DIR_OPS: list[tuple[str, Callable[[LocalFS, str, str], Awaitable[Any]]]] = [
    ("stat link", lambda fs, L, S: fs.stat(L)),
    ("list link", lambda fs, L, S: fs.list(L)),
    ("list subdir", lambda fs, L, S: fs.list(S.rsplit("/", 1)[0] + "/sub")),
    ("stat through", lambda fs, L, S: fs.stat(S)),
    ("open_read through", lambda fs, L, S: fs.open_read(S)),
    ("open_write over sentinel", lambda fs, L, S: _write_and_commit(fs, S)),
    ("REST STOR on sentinel", lambda fs, L, S: _write_and_commit(fs, S, offset=2)),
    ("APPE to sentinel", lambda fs, L, S: _write_and_commit(fs, S, append=True)),
    ("open_write new", lambda fs, L, S: _write_and_commit(fs, L + "/planted")),
    ("delete through", lambda fs, L, S: fs.delete(S)),
    ("rename out of", lambda fs, L, S: fs.rename(S, "/stolen")),
    ("rename into", lambda fs, L, S: fs.rename("/a.txt", L + "/planted")),
    ("mkdir through", lambda fs, L, S: fs.mkdir(L + "/newdir")),
    ("rmdir through", lambda fs, L, S: fs.rmdir(S.rsplit("/", 1)[0] + "/sub")),
    ("set_mtime through", lambda fs, L, S: fs.set_mtime(S, 0)),
    ("chmod through", lambda fs, L, S: fs.chmod(S, 0o777)),
    ("chmod dir", lambda fs, L, S: fs.chmod(L, 0o700)),
    ("unique_name in", lambda fs, L, S: fs.unique_name(L, "u")),
]
FILE_OPS: list[tuple[str, Callable[[LocalFS, str], Awaitable[Any]]]] = [
    ("stat", lambda fs, L: fs.stat(L)),
    ("list", lambda fs, L: fs.list(L)),
    ("open_read", lambda fs, L: fs.open_read(L)),
    ("open_write", lambda fs, L: _write_and_commit(fs, L)),
    ("REST STOR", lambda fs, L: _write_and_commit(fs, L, offset=1)),
    ("APPE", lambda fs, L: _write_and_commit(fs, L, append=True)),
    ("set_mtime", lambda fs, L: fs.set_mtime(L, 0)),
    ("chmod", lambda fs, L: fs.chmod(L, 0o777)),
    ("mkdir under", lambda fs, L: fs.mkdir(L + "/x")),
    ("unique_name", lambda fs, L: fs.unique_name(L, "u")),
]


@pytest.mark.parametrize("atomic", [True, False])
@pytest.mark.parametrize("link", list(DIR_LINKS))
@pytest.mark.parametrize("op", DIR_OPS, ids=[name for name, _ in DIR_OPS])
async def test_jail_directory_links(
    jail: Jail, link: str, op: tuple[str, Any], atomic: bool, hops: IoPool | None
) -> None:
    fs = LocalFS(str(jail.home), hops, atomic_uploads=atomic, mode=mode_of(hops))
    through = DIR_LINKS[link] or str(jail.sentinel).lstrip("/")
    with pytest.raises(PathEscapeError):
        await op[1](fs, link, f"{link}/{through}")
    jail.assert_untouched()
    assert (jail.home / "a.txt").read_bytes() == b"hello"


@pytest.mark.parametrize("atomic", [True, False])
@pytest.mark.parametrize("link", FILE_LINKS)
@pytest.mark.parametrize("op", FILE_OPS, ids=[name for name, _ in FILE_OPS])
async def test_jail_file_links(
    jail: Jail, link: str, op: tuple[str, Any], atomic: bool, hops: IoPool | None
) -> None:
    fs = LocalFS(str(jail.home), hops, atomic_uploads=atomic, mode=mode_of(hops))
    with pytest.raises(PathEscapeError):
        await op[1](fs, link)
    jail.assert_untouched()
    assert not (jail.outside / "nothing-here").exists()


async def test_jail_acting_on_the_link_itself(jail: Jail, hops: IoPool | None) -> None:
    """DELE/RNFR act on the symlink entry (inside the home), never on what it points to."""
    fs = LocalFS(str(jail.home), hops, mode=mode_of(hops))
    await raises_errno(fs.rmdir("/dir_abs"), errno.ENOTDIR)
    await raises_errno(fs.mkdir("/dir_abs"), errno.EEXIST)
    await fs.delete("/file_abs")
    assert not os.path.lexists(jail.home / "file_abs")
    await fs.rename("/dir_rel", "/moved")
    assert os.readlink(jail.home / "moved") == "../outside"
    with pytest.raises(PathEscapeError):  # still an escape from its new name
        await fs.list("/moved")
    await fs.rename("/moved", "/sub/moved")  # now "../outside" means home/outside: missing
    await raises_errno(fs.list("/sub/moved"), errno.ENOENT)
    await fs.rename("/a.txt", "/file_rel")  # replaces the link, not the sentinel
    assert not (jail.home / "file_rel").is_symlink()
    assert (jail.home / "file_rel").read_bytes() == b"hello"
    jail.assert_untouched()


async def test_links_inside_home_work(jail: Jail, hops: IoPool | None) -> None:
    fs = LocalFS(str(jail.home), hops, mode=mode_of(hops))
    s = await fs.stat("/in_file")
    assert s.is_link and not s.is_dir and s.size == 5 and s.name == "in_file"
    s = await fs.stat("/in_chain")
    assert s.is_link and s.is_dir
    assert (await fs.stat("/in_dotdot")).size == 5
    assert [e.name for e in await fs.list("/in_chain")] == ["inner.txt"]
    r = await fs.open_read("/in_dir/inner.txt")
    assert await read_all(r) == b"inner"
    await r.close()
    await _write_and_commit(fs, "/in_file")  # replaces the target, the link stays a link
    assert (jail.home / "in_file").is_symlink()
    assert (jail.home / "a.txt").read_bytes() == b"PLANTED"
    await fs.mkdir("/in_dir/new")
    assert (jail.home / "sub" / "new").is_dir()
    await fs.rename("/in_dir/inner.txt", "/in_chain/renamed.txt")
    assert (jail.home / "sub" / "renamed.txt").exists()
    await fs.set_mtime("/in_file", 1_000)
    assert os.stat(jail.home / "a.txt").st_mtime == 1_000
    assert await fs.unique_name("/in_dir", "u") == "/in_dir/u.1"
    await raises_errno(fs.stat("/loop_a"), errno.ELOOP)
    await raises_errno(fs.stat("/dangling_in"), errno.ENOENT)
    jail.assert_untouched()


async def test_listing_omits_links_that_leave_the_home(jail: Jail, hops: IoPool | None) -> None:
    fs = LocalFS(str(jail.home), hops, mode=mode_of(hops))
    by_name = {e.name: e for e in await fs.list("/")}
    assert set(by_name) == {
        "a.txt",
        "sub",
        "in_file",
        "in_dir",
        "in_chain",
        "in_dotdot",
        "dangling_in",
        "loop_a",
        "loop_b",
    }
    assert by_name["in_file"].is_link and by_name["in_file"].size == 5
    assert by_name["in_dir"].is_link and by_name["in_dir"].is_dir
    assert by_name["dangling_in"].is_link and not by_name["dangling_in"].is_dir
    assert [e.name for e in await fs.list("/sub")] == ["inner.txt"]  # deep_rel omitted
    assert not {e.unique for e in by_name.values()} & jail.outside_uniques()


async def test_walk_refuses_a_symlink_swapped_in_after_the_check(
    jail: Jail, monkeypatch: pytest.MonkeyPatch, hops: IoPool | None
) -> None:
    """Simulate losing the race between the realpath check and the open: the check sees a
    plain directory, then the O_NOFOLLOW walk meets the symlink and fails."""
    fs = LocalFS(str(jail.home), hops, mode=mode_of(hops))
    monkeypatch.setattr(local_mod.os.path, "realpath", os.path.normpath)
    for vpath in ("/dir_abs/sentinel.txt", "/dotdot/outside/sentinel.txt"):
        with pytest.raises(OSError) as ei:
            r = await fs.open_read(vpath)
            await r.close()
        assert ei.value.errno in (errno.ENOTDIR, errno.ELOOP)
    with pytest.raises(OSError):
        await fs.list("/dir_rel")
    with pytest.raises(OSError):
        await fs.delete("/dir_abs/sentinel.txt")
    with pytest.raises(OSError):  # the final component is never followed either
        await fs.open_read("/file_abs")
    with pytest.raises(OSError):
        await fs.set_mtime("/file_abs", 0)
    jail.assert_untouched()


# -- the fast path (no realpath when no symlink is on the path) ------------------------------


@pytest.fixture
def realpaths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ``os.path.realpath`` call LocalFS makes from now on (the general path's mark)."""
    calls: list[str] = []
    real = os.path.realpath

    def counting(path: Any, *args: Any, **kw: Any) -> Any:
        calls.append(os.fsdecode(path))
        return real(path, *args, **kw)

    monkeypatch.setattr(local_mod.os.path, "realpath", counting)
    return calls


async def test_plain_paths_take_the_fast_path(
    home: Path, executor: Counting, realpaths: list[str]
) -> None:
    fs = LocalFS(str(home), executor, mode=mode_of(executor))
    (home / "d" / "e").mkdir(parents=True)
    (home / "d" / "e" / "f.txt").write_bytes(b"deep file")
    (home / "top").write_bytes(b"top")
    calls = realpaths
    calls.clear()  # the constructor's own
    s = await fs.stat("/d/e/f.txt")
    assert (s.name, s.size, s.is_link, s.is_dir) == ("f.txt", 9, False, False)
    assert (await fs.stat("/d")).is_dir
    assert [e.name for e in await fs.list("/d/e")] == ["f.txt"]
    assert [e.name for e in await fs.list("/")] == ["d", "top"]
    r = await fs.open_read("/d/e/f.txt", 5)
    assert await read_all(r) == b"file"
    await r.close()
    r = await fs.open_read("/top")
    assert await read_all(r) == b"top"
    await r.close()
    assert (await fs.stat("/top")).size == 3
    await _write_and_commit(fs, "/d/e/new.txt")
    await _write_and_commit(fs, "/top")
    assert (home / "d" / "e" / "new.txt").read_bytes() == b"PLANTED"
    assert (home / "top").read_bytes() == b"PLANTED"
    assert calls == []  # nothing needed the general path
    # Errors on plain paths come out of the general path, unchanged.
    await raises_errno(fs.stat("/d/missing"), errno.ENOENT)
    await raises_errno(fs.open_read("/top/x"), errno.ENOTDIR)
    await raises_errno(fs.list("/top"), errno.ENOTDIR)
    await raises_errno(fs.open_write("/d/e"), errno.EISDIR)
    assert calls  # they did fall back
    assert temp_files(home) == [] and temp_files(home / "d" / "e") == []


async def test_symlinked_directory_inside_home_is_followed(
    jail: Jail, hops: IoPool | None, realpaths: list[str]
) -> None:
    fs = LocalFS(str(jail.home), hops, mode=mode_of(hops))
    realpaths.clear()  # the constructor's own
    for d in ("/in_dir", "/in_chain"):  # absolute link, and a link to a link
        s = await fs.stat(f"{d}/inner.txt")
        assert (s.name, s.size, s.is_link) == ("inner.txt", 5, False)
        assert [e.name for e in await fs.list(d)] == ["inner.txt"]
        r = await fs.open_read(f"{d}/inner.txt", 1)
        assert await read_all(r) == b"nner"
        await r.close()
    assert realpaths  # the symlinks sent these through the general path
    for atomic in (True, False):
        f = LocalFS(str(jail.home), hops, atomic_uploads=atomic, mode=mode_of(hops))
        await _write_and_commit(f, f"/in_dir/stored-{atomic}")
        assert (jail.home / "sub" / f"stored-{atomic}").read_bytes() == b"PLANTED"
    await _write_and_commit(fs, "/in_chain/inner.txt")  # replaces the file in the real dir
    assert (jail.home / "sub" / "inner.txt").read_bytes() == b"PLANTED"
    assert (jail.home / "in_dir").is_symlink() and (jail.home / "in_chain").is_symlink()
    assert temp_files(jail.home / "sub") == []
    jail.assert_untouched()


async def test_symlinked_final_component_is_written_through(
    jail: Jail, hops: IoPool | None
) -> None:
    """STOR onto a symlink inside the home writes its target (atomic: the target is replaced,
    the link stays a link), as the general path always did."""
    for atomic in (True, False):
        jail.build_home()
        fs = LocalFS(str(jail.home), hops, atomic_uploads=atomic, mode=mode_of(hops))
        w = await fs.open_write("/in_file")
        await w.write(b"through ")
        await w.commit(b"the link")
        assert os.readlink(jail.home / "in_file") == "a.txt"
        assert (jail.home / "a.txt").read_bytes() == b"through the link"
        await _write_and_commit(fs, "/in_dotdot")  # sub/../a.txt
        assert (jail.home / "a.txt").read_bytes() == b"PLANTED"
        assert (jail.home / "in_dotdot").is_symlink()
        await _write_and_commit(fs, "/in_dir/inner.txt")
        assert (jail.home / "sub" / "inner.txt").read_bytes() == b"PLANTED"
        await raises_errno(fs.open_write("/in_dir"), errno.EISDIR)  # a link to a directory
        await raises_errno(fs.open_write("/loop_a"), errno.ELOOP)
        assert temp_files(jail.home) == [] and temp_files(jail.home / "sub") == []
        jail.assert_untouched()


# Paths of every kind in the Jail: plain, through links inside, escaping, broken.
EQUIV_PATHS = [
    "/", "/a.txt", "/sub", "/sub/inner.txt", "/missing", "/missing/x", "/a.txt/x", "/in_file",
    "/in_dir", "/in_dir/inner.txt", "/in_chain/inner.txt", "/in_dotdot", "/dangling_in",
    "/loop_a", "/loop_a/x", "/file_abs", "/file_rel", "/dangling_out", "/dir_abs",
    "/dir_abs/sentinel.txt", "/dotdot/outside/sentinel.txt", "/sub/deep_rel",
    "/sub/deep_rel/sentinel.txt", "/root_abs", "/in_dir/new.txt", "/new.txt",
    "/in_dir/missing/x", "/chain/sub",
]  # fmt: skip


def _home_tree(home: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for dirpath, dirs, files in os.walk(home):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = str(p.relative_to(home))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", p.read_bytes(), os.stat(p).st_mode)
    return out


async def _outcome(fs: LocalFS, op: str, vpath: str) -> object:
    try:
        if op == "stat":
            s = await fs.stat(vpath)
            return ("ok", s.name, s.is_dir, s.size, s.is_link, s.unique, s.mode)
        if op == "list":
            return ("ok", [(e.name, e.is_dir, e.size, e.is_link, e.unique)
                           for e in await fs.list(vpath)])  # fmt: skip
        if op == "read":
            r = await fs.open_read(vpath)
            try:
                return ("ok", await read_all(r, 1 << 16))
            finally:
                await r.close()
        w = await fs.open_write(vpath)
        await w.write(b"W")
        await w.commit(b"!")
        return ("ok",)
    except PathEscapeError:
        return ("escape",)
    except OSError as e:
        return ("error", type(e).__name__, e.errno)


@contextlib.contextmanager
def general_path_only(fs: LocalFS) -> Iterator[list[str]]:
    """While active, every fast path of ``fs`` gives up: its walk returns None, and opening or
    stat-ing a path below the home by its full name (rather than relative to a directory fd)
    fails. Yields the realpath calls made meanwhile (the general path's mark)."""
    prefix = fs.home + os.sep
    real_open, real_stat, real_realpath = os.open, os.stat, os.path.realpath
    calls: list[str] = []

    def below_home(path: Any) -> bool:
        return isinstance(path, str) and path.startswith(prefix)

    def no_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if dir_fd is None and below_home(path):
            raise OSError(errno.EAGAIN, "fast path disabled by the test", path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    def no_stat(path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> Any:
        if dir_fd is None and below_home(path):
            raise OSError(errno.EAGAIN, "fast path disabled by the test", path)
        return real_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)

    def counting(path: Any, *args: Any, **kw: Any) -> Any:
        calls.append(path)
        return real_realpath(path, *args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fs, "_walk_fast", lambda *a, **k: None)
        mp.setattr(local_mod.os, "open", no_open)
        mp.setattr(local_mod.os, "stat", no_stat)
        mp.setattr(local_mod.os.path, "realpath", counting)
        yield calls


@pytest.mark.parametrize("op", ["stat", "list", "read", "write"])
async def test_fast_path_agrees_with_the_general_path(
    jail: Jail, hops: IoPool | None, op: str
) -> None:
    """Every path, through the real fs and through the general path alone: the same results,
    the same errors (PathEscapeError, errno), the same files afterwards."""
    results = {}
    for kind in ("fast", "general"):
        got = []
        for vpath in EQUIV_PATHS:
            if op == "write":
                jail.build_home()  # each write on the same tree
            # The reference is the thread form alone: no inline route in front of it.
            fs = LocalFS(str(jail.home), hops, mode=mode_of(hops) if kind == "fast" else None)
            if kind == "general":
                with general_path_only(fs) as realpaths:
                    res = await _outcome(fs, op, vpath)
                # The reference did take the general path (only the home itself needs none).
                assert realpaths or vpath == "/", (op, vpath)
            else:
                res = await _outcome(fs, op, vpath)
            tree = _home_tree(jail.home) if op == "write" else None
            got.append((vpath, res, tree))
            jail.assert_untouched()
        results[kind] = got
    for fast, general in zip(results["fast"], results["general"], strict=True):
        assert fast == general
    outcomes = {res[0] for _, res, _ in results["fast"]}  # type: ignore[index]
    assert {"ok", "escape", "error"} <= outcomes  # the list covers all three kinds


async def test_escapes_are_refused_as_before(jail: Jail, hops: IoPool | None) -> None:
    fs = LocalFS(str(jail.home), hops, mode=mode_of(hops))
    for vpath in ("/dir_abs/sentinel.txt", "/dir_rel/sentinel.txt", "/dotdot/outside/sentinel.txt",
                  "/file_abs", "/file_rel", "/chain/sentinel.txt"):  # fmt: skip
        with pytest.raises(PathEscapeError) as ei:
            await fs.open_read(vpath)
        assert ei.value.errno == errno.EACCES
        with pytest.raises(PathEscapeError):
            await fs.stat(vpath)
        with pytest.raises(PathEscapeError):
            await _write_and_commit(fs, vpath)
    for vpath in ("/dir_abs", "/dir_rel", "/sub/deep_rel", "/root_abs"):
        with pytest.raises(PathEscapeError):
            await fs.list(vpath)
        with pytest.raises(PathEscapeError):
            await _write_and_commit(fs, vpath + "/planted")
    assert temp_files(jail.home) == [] and temp_files(jail.outside) == []
    jail.assert_untouched()


# -- property: no virtual path reaches outside the home ---------------------------------------

SEGMENTS = st.sampled_from(
    ["a.txt", "sub", "..", ".", "", "link_out", "dir_abs", "file_abs", "dotdot", "%2e%2e",
     "outside", "sentinel.txt", "in_dir", "chain", "root_abs"]
)  # fmt: skip
VPATHS = st.tuples(st.lists(SEGMENTS, max_size=6), st.booleans())
OPS = st.sampled_from(
    ["stat", "list", "read", "write", "rest", "appe", "mkdir", "rmdir", "delete", "rename",
     "mtime", "chmod", "unique"]
)  # fmt: skip


def normalise(vpath: str) -> str:
    """What the protocol core does: resolve '.' and '..' lexically, clamped at the root."""
    out: list[str] = []
    for seg in vpath.split("/"):
        if seg == "..":
            if out:
                out.pop()
        elif seg not in ("", "."):
            out.append(seg)
    return "/" + "/".join(out)


def to_vpath(spec: tuple[list[str], bool]) -> str:
    segs, normalised = spec
    raw = "/" + "/".join(segs)
    return normalise(raw) if normalised else raw


async def _run_op(fs: LocalFS, op: str, p: str, q: str, jail: Jail) -> None:
    forbidden = jail.outside_uniques()
    if op == "stat":
        assert (await fs.stat(p)).unique not in forbidden
    elif op == "list":
        assert not {e.unique for e in await fs.list(p)} & forbidden
    elif op == "read":
        r = await fs.open_read(p)
        try:
            assert SECRET not in await read_all(r, 1 << 16)
        finally:
            await r.close()
    elif op in ("write", "rest", "appe"):
        kw = {"rest": {"offset": 1}, "appe": {"append": True}}.get(op, {})
        w = await fs.open_write(p, **kw)
        try:
            await w.write(b"PLANTED")
        finally:
            await w.abort() if op == "write" and len(q) % 2 else await w.commit()
    elif op == "mkdir":
        await fs.mkdir(p)
    elif op == "rmdir":
        await fs.rmdir(p)
    elif op == "delete":
        await fs.delete(p)
    elif op == "rename":
        await fs.rename(p, q)
    elif op == "mtime":
        await fs.set_mtime(p, 12345)
    elif op == "chmod":
        await fs.chmod(p, 0o700)
    elif op == "unique":
        await fs.unique_name(p, "u")


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(st.tuples(OPS, VPATHS, VPATHS), min_size=1, max_size=4))
def test_no_virtual_path_leaves_the_home(
    tmp_path: Path, ops: list[tuple[str, tuple[list[str], bool], tuple[list[str], bool]]]
) -> None:
    jail = Jail(tmp_path)  # the home is rebuilt for every example; outside never changes
    os.symlink("../outside", jail.home / "link_out")

    async def scenario() -> None:
        fs = LocalFS(str(jail.home), None)
        for op, p, q in ops:
            try:
                await _run_op(fs, op, to_vpath(p), to_vpath(q), jail)
            except OSError:
                pass  # refusing is fine; reaching outside is not
            jail.assert_untouched()
        for dirpath, _dirs, files in os.walk(jail.home):  # nothing outside was moved in
            for name in files:
                path = Path(dirpath) / name
                assert path.is_symlink() or SECRET not in path.read_bytes()

    asyncio.run(scenario())
