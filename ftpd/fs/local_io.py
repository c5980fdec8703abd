"""The local backend's open files and its one hop per operation.

``LocalReader`` and ``LocalWriter`` are what ``LocalFS.open_read``/``open_write`` return (raw fds,
positioned reads, atomic commit); ``Hops`` is how a filesystem's blocking calls leave the loop:
through the server's ``IoPool`` (bare futures, cheap) or any ``concurrent.futures`` executor via
aiofiles' executor wrapper, unless its ``IoMode`` (``iomode.py``) answers them inline from the
page cache. Split from local.py, which keeps the path mapping and the jail.

Downloads with ``sendfile`` ask the reader ``resident(n)`` before each slice: ``True`` when the
next ``n`` bytes are in the page cache (``cachestat``), so that sending them cannot wait for the
disk. ``False`` means ``await fill(n)`` first: one hop that reads the slice into the page cache.
Read-ahead is the kernel's own: sending resident pages that carry its read-ahead mark starts the
next window asynchronously, so a cold file streams at disk speed with a fill only where the pump
catches up with the disk (1-5 per 2 GiB here). An explicit ``posix_fadvise(WILLNEED)`` window in a
pool thread was measured and dropped: it cost twice the CPU (the kernel reads it into small
folios, which ``sendfile`` then also pays for) for no gain (docs/PERFORMANCE.md, "The IO model").
"""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import aiofiles.os

from ftpd.fs import reaper
from ftpd.fs.iomode import IoMode, Op, Route
from ftpd.fs.iopool import IoPool
from ftpd.fs.nowait import (
    PAGE,
    WouldBlock,
    cached_pages,
    pread_nowait,
    pwrite_nowait,
    readable_now,
)
from ftpd.fs.temps import link_anonymous, link_new
from ftpd.fs.writeback import Writeback
from ftpd.fs.writeback import available as writeback_available

__all__ = ["Hops", "LocalReader", "LocalWriter", "close_quietly", "sync_dir"]

T = TypeVar("T")

_FILL_BUF = 128 * 1024  # per pool thread: fill() reads a slice through it into the page cache
_scratch = threading.local()


def _all_cached(fd: int, off: int, n: int) -> bool:
    """Whether ``[off, off + n)`` is in the page cache now, its reads done.

    ``cachestat`` counts the pages in the cache, and a page the kernel's read-ahead is still
    reading from the disk is in the cache already: ``sendfile`` of it waits for that read (an
    8 MiB read-ahead window on this machine's disk: a 7 ms stall of the loop, measured with
    strace during a cold 2 GiB RETR). So the first and the last byte are then read with
    ``RWF_NOWAIT``, which fails on a page not yet read. A read-ahead's pages become readable a
    disk request at a time, and requests are large (4 MiB here, ``max_sectors_kb``), so a 1 MiB
    range is in at most two of them; where they are smaller, a request in between that is still
    out completes about when its neighbours do. Without ``cachestat`` the same two probes decide
    alone (a miss between them costs one slice); without ``RWF_NOWAIT`` (EOPNOTSUPP), the count
    does."""
    pages = cached_pages(fd, off, n)
    if pages is not None and pages < (off + n - 1) // PAGE - off // PAGE + 1:
        return False
    first = readable_now(fd, off)
    if first is None:  # no RWF_NOWAIT on this filesystem: cachestat's count decides alone
        return pages is not None
    return first and readable_now(fd, off + n - 1) is True


# fdatasync flushes the data and the metadata needed to read it back (the size), not the times.
_fdatasync = getattr(os, "fdatasync", os.fsync)


def sync_dir(dir_fd: int) -> None:
    """fsync the directory ``dir_fd`` (which may be an O_PATH fd, on which fsync fails):
    makes a new or renamed entry in it durable."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class LocalReader:
    """An open file for RETR. ``position`` is authoritative: ``read`` uses ``os.pread`` there,
    and sendfile callers pass it as the offset and then call ``advance``."""

    __slots__ = ("size", "_fd", "_pos", "_lock", "_hops")

    def __init__(self, fd: int, size: int, offset: int, hops: Hops) -> None:
        self.size = size
        self._fd = fd
        self._pos = offset
        self._hops = hops
        # Held around pread and close so that close never frees an fd number that a read
        # running in another thread is about to use (it could be reused by another open()).
        self._lock = threading.Lock()

    def fileno(self) -> int | None:
        return self._fd if self._fd >= 0 else None

    def position(self) -> int:
        return self._pos

    def advance(self, n: int) -> None:
        if n < 0:
            raise ValueError("advance by a negative count")
        self._pos += n

    def _pread(self, n: int, pos: int) -> bytes:
        with self._lock:
            if self._fd < 0:
                raise ValueError("read from a closed reader")
            return os.pread(self._fd, n, pos)

    def _pread_nowait(self, n: int) -> bytes:
        if not self._lock.acquire(blocking=False):  # a thread still holds it: do not wait
            raise WouldBlock()
        try:
            if self._fd < 0:
                raise WouldBlock()  # the thread form raises the error
            buf = bytearray(n)
            got = pread_nowait(self._fd, buf, self._pos)
        finally:
            self._lock.release()
        del buf[got:]
        return buf  # type: ignore[return-value]  # bytes-like; not copied again

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes from the current position; ``b""`` at end of file. Inline when the
        page cache has them (``preadv2(RWF_NOWAIT)``), else one hop."""
        pos = self._pos
        fut = self._hops.mode.run(
            Op.READ, lambda: self._pread_nowait(n), lambda: self._hops.run(self._pread, n, pos)
        )
        inline = isinstance(fut, asyncio.Future) and fut.done()
        data = await fut
        self._pos += len(data)
        if inline:
            # The turn a hop gave the other sessions: a TLS or ASCII download whose client keeps
            # up would otherwise read, convert and send block after block without yielding.
            await asyncio.sleep(0)
        return data

    # -- sendfile downloads: send only what is resident (see the module docstring) ----------
    def resident(self, n: int) -> bool:
        """Whether the next ``n`` bytes (within the file) are in the page cache, so that
        ``sendfile`` of them will not wait for the disk."""
        hops = self._hops
        mode = hops.mode
        fd = self._fd
        if not mode.inline or fd < 0:
            mode.count(Op.SEND, Route.THREAD)
            return False
        if hops.memory:  # tmpfs/ramfs without swap (memfs.py): every page is in memory
            mode.count(Op.SEND, Route.INLINE)
            return True
        if not _all_cached(fd, self._pos, n):
            mode.count(Op.SEND, Route.FALLBACK)
            return False
        mode.count(Op.SEND, Route.INLINE)
        return True

    def _fill(self, off: int, n: int) -> None:
        buf = getattr(_scratch, "buf", None)
        if buf is None:
            buf = _scratch.buf = memoryview(bytearray(_FILL_BUF))
        with self._lock:
            if self._fd < 0:
                raise ValueError("read from a closed reader")
            end = off + n
            while off < end:
                got = os.preadv(self._fd, [buf[: min(_FILL_BUF, end - off)]], off)
                if got <= 0:
                    break  # the file shrank: sendfile will see the end
                off += got

    def fill(self, n: int) -> Awaitable[None]:
        """Bring the next ``n`` bytes into the page cache in a pool thread (one hop; the reads
        there also start the kernel's read-ahead beyond them)."""
        return self._hops.run(self._fill, self._pos, n)

    def close_sync(self) -> None:
        """Blocking close (idempotent)."""
        with self._lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            close_quietly(fd)

    def close_now(self) -> bool:
        """Closing a read-only fd never waits on the disk: no executor hop for it."""
        self.close_sync()
        return True

    async def close(self) -> None:
        await self._hops.run_shielded(self.close_sync)

    def __del__(self) -> None:
        # Safety net against fd leaks if a caller forgets close(); no lock (nobody else holds us).
        if getattr(self, "_fd", -1) >= 0:
            close_quietly(self._fd)
            self._fd = -1


class LocalWriter:
    """An upload in progress: atomic (temp file renamed over the target on commit) or in place.

    In place is used for REST+STOR, APPE and when atomic uploads are off. Then ``abort`` keeps
    the bytes written so far: they are already in the file (a plain STOR truncated it at open;
    REST+STOR writes from its offset and keeps the rest), and keeping them is what lets the
    client resume with REST after a broken transfer.

    With ``sync`` (``fsync_uploads``) commit flushes the file's data to the disk before the
    rename and the directory (``dir_fd``: for a rename or a newly created entry) after it, so
    that the 226 that follows means the upload survives a power loss. Blocking: commit runs in
    the IO threads, never on the event loop.
    """

    __slots__ = (
        "_fd",
        "_dir_fd",
        "_temp",
        "_target",
        "_done",
        "_lock",
        "_hops",
        "_anonymous",
        "_sync",
        "_wb",
    )

    def __init__(
        self,
        fd: int,
        hops: Hops,
        dir_fd: int = -1,
        temp: str | None = None,
        target: str = "",
        anonymous: bool = False,
        sync: bool = False,
    ) -> None:
        self._fd = fd
        self._anonymous = anonymous  # an O_TMPFILE upload: no name until commit
        # The directory holding temp and target (atomic), or a new file's (in place, with sync).
        self._dir_fd = dir_fd
        self._sync = sync
        self._temp = temp
        self._target = target
        self._done = False
        self._hops = hops
        # Serialises write / commit / abort: a write cancelled by ABOR may still be running in a
        # thread when abort arrives; abort must wait for it rather than close the fd under it.
        self._lock = threading.Lock()
        self._wb: Writeback | None = None  # see stream_to_disk
        if sync:
            self.stream_to_disk()  # the commit's flush then finds the data mostly on the disk

    @property
    def atomic(self) -> bool:
        return self._temp is not None or self._anonymous

    def stream_to_disk(self) -> None:
        """Write the upload back to the disk as it arrives (``writeback.py``), for an upload whose
        commit flushes it (``fsync_uploads``): the flush then has little left. Its writes always
        take the thread route from now on (the write-back waits for the disk)."""
        if writeback_available():
            self._wb = Writeback()

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        with self._lock:
            if self._done or self._fd < 0:
                raise ValueError("write to a finished upload")
            while view:
                n = os.write(self._fd, view)
                if n <= 0:  # a regular file never does this; do not spin if one does
                    raise OSError(errno.EIO, "short write")
                view = view[n:]
                if self._wb is not None:
                    self._wb.wrote(self._fd, n)

    def blocking_write(self) -> Callable[[memoryview], None]:
        """The blocking write, for a caller that already runs in a worker thread (bulk uploads)."""
        return self._write

    def write(self, data: bytes | memoryview) -> Awaitable[None]:
        """Write all of ``data``: inline where the filesystem takes ``pwritev2(RWF_NOWAIT)``
        and has room in the page cache, else (or for what is left) one hop. An ``OSError``
        leaves the writer abortable."""
        hops = self._hops
        if not hops.write_nowait or self._wb is not None:
            hops.mode.count(Op.WRITE, Route.THREAD)
            return hops.run(self._write, data)
        rest = [memoryview(data).cast("B")]

        def fast() -> None:
            view = rest[0]
            if not self._lock.acquire(blocking=False):
                raise WouldBlock()
            try:
                if self._done or self._fd < 0:
                    raise WouldBlock()  # the thread form raises the error
                while view:
                    try:
                        n = pwrite_nowait(self._fd, view, None)
                    except NotImplementedError:
                        hops.write_nowait = False  # this filesystem never will: stop trying
                        raise WouldBlock() from None
                    if n <= 0:
                        raise WouldBlock()
                    view = rest[0] = view[n:]
            finally:
                self._lock.release()

        return hops.mode.run(Op.WRITE, fast, lambda: hops.run(self._write, rest[0]))

    def finish_sync(self, commit: bool) -> None:
        """Blocking commit (``commit=True``) or abort. Idempotent once it has succeeded."""
        with self._lock:
            if self._done:
                return
            if self._anonymous:
                self._finish_anonymous(commit)
                return
            fd, self._fd = self._fd, -1
            if fd >= 0:
                if commit:
                    try:
                        if self._sync:
                            _fdatasync(fd)  # the data, before the rename makes it the file
                    except BaseException:
                        self._fd = fd  # still abortable: abort closes it and drops the temp
                        raise
                    os.close(fd)  # may report a delayed write error (NFS); the upload then failed
                else:
                    close_quietly(fd)
            if self._temp is not None:
                if commit:
                    old = reaper.hold(self._dir_fd, self._target)  # its blocks freed later
                    try:
                        os.replace(
                            self._temp,
                            self._target,
                            src_dir_fd=self._dir_fd,
                            dst_dir_fd=self._dir_fd,
                        )
                    finally:
                        reaper.release(old)
                else:
                    try:
                        os.unlink(self._temp, dir_fd=self._dir_fd)
                    except FileNotFoundError:
                        pass
                self._temp = None
            if commit and self._sync and self._dir_fd >= 0:
                sync_dir(self._dir_fd)  # the rename (or the new entry) itself
            # Reached only on success: a failed commit stays abortable (abort removes the temp).
            self._done = True
            if self._dir_fd >= 0:
                close_quietly(self._dir_fd)
                self._dir_fd = -1

    def _finish_anonymous(self, commit: bool) -> None:
        """``finish_sync`` of an O_TMPFILE upload (lock held). A new file is linked under its
        name directly. ``linkat`` cannot replace a name, so over an existing file it is linked
        under a private temp name and renamed over the target: the name exists for the length
        of two calls, and a crash there leaves a file that start-up cleanup removes. With
        ``sync`` as for a named temp: the data is flushed before the link, the directory after
        the link or the rename."""
        fd = self._fd
        if commit and fd >= 0:
            if self._sync:
                _fdatasync(fd)  # the data, before the link makes it a file (fd kept: abortable)
            if link_new(fd, self._dir_fd, self._target):
                # No file of that name: the complete upload took the name in one call, with no
                # temp name and no rename. The close comes after, but O_TMPFILE exists only on
                # local filesystems, whose close reports no delayed write error (NFS has none).
                self._fd = -1
                os.close(fd)
            else:
                self._link_over(fd)
            if self._sync:
                sync_dir(self._dir_fd)  # the new entry or the rename, as for a named temp
        elif fd >= 0:
            self._fd = -1
            close_quietly(fd)  # an anonymous file: closing it is discarding it
        self._done = True
        if self._dir_fd >= 0:
            close_quietly(self._dir_fd)
            self._dir_fd = -1

    def _link_over(self, fd: int) -> None:
        """The O_TMPFILE ``fd`` over an existing target: linked under a temp name, closed, then
        renamed over it (``linkat`` cannot replace a name)."""
        temp = link_anonymous(fd, self._dir_fd)
        try:
            self._fd = -1
            os.close(fd)  # may report a delayed write error (NFS): the upload then failed
            old = reaper.hold(self._dir_fd, self._target)  # its blocks freed later
            try:
                os.replace(temp, self._target, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            finally:
                reaper.release(old)
        except BaseException:
            try:
                os.unlink(temp, dir_fd=self._dir_fd)
            except OSError:
                pass
            raise

    def _write_and_finish(self, tail: bytes | memoryview) -> None:
        if tail:
            self._write(tail)
        self.finish_sync(True)

    def commit(self, tail: bytes | memoryview = b"") -> Awaitable[None]:
        """Make the upload visible: rename the temp file over the target (or just close).

        ``tail``, the upload's last bytes, is written first in the same hop: a small upload then
        costs two hops (open, commit) instead of three. Inline (``Hops.memory``) the result is
        a bare future, so the caller's ``ensure_future`` makes no task for it."""
        return self._hops.run_shielded(self._write_and_finish, tail)

    async def abort(self) -> None:
        """Discard the upload; after a successful commit this does nothing."""
        await self._hops.run_shielded(self.finish_sync, False)

    def __del__(self) -> None:
        # Safety net for a writer dropped without commit/abort: free the fds, drop the temp.
        if getattr(self, "_done", True):
            return
        if self._fd >= 0:
            close_quietly(self._fd)
        if self._temp is not None:
            try:
                os.unlink(self._temp, dir_fd=self._dir_fd)
            except OSError:
                pass
        if self._dir_fd >= 0:
            close_quietly(self._dir_fd)
        self._done = True


def _call(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)


# With a plain executor, the one hop of each operation goes through aiofiles' executor wrapper:
# the same hop as aiofiles' own file methods, but one per *operation* (open+fstat+seek, a whole
# listing, a 256 KiB block) rather than one per method call.
_in_executor = aiofiles.os.wrap(_call)


class Hops:
    """How one filesystem's blocking calls leave the loop: the server's ``IoPool`` (a bare future
    per call, cheap), else any ``concurrent.futures`` executor or the loop's default one."""

    __slots__ = ("pool", "executor", "mode", "write_nowait", "memory")

    def __init__(
        self, executor: IoPool | Executor | None, mode: IoMode | None = None, memory: bool = False
    ) -> None:
        # memory: the home is on tmpfs/ramfs without swap (memfs.py): no call can wait for a
        # disk, so each runs on the loop and its result is delivered on the loop's next turn.
        self.memory = memory
        self.pool: IoPool | None = None
        self.executor: Executor | None = None
        if isinstance(executor, IoPool):
            self.pool = executor
        else:
            self.executor = executor
        self.mode = mode if mode is not None else IoMode(inline=False)
        # pwritev2(RWF_NOWAIT) is tried until the filesystem answers EOPNOTSUPP once.
        self.write_nowait = self.mode.inline

    def run(self, fn: Callable[..., T], *args: Any) -> Awaitable[T]:
        if self.memory:
            return _next_turn(fn, args)
        if self.pool is not None:
            return self.pool.submit(fn, *args)
        return _in_executor(fn, *args, executor=self.executor)

    def once(self, fn: Callable[..., T], *args: Any) -> Awaitable[T]:
        """``run`` for a call a command makes once (a delete, a mkdir: never a loop of calls)
        that returns no open resource. On a memory filesystem it runs now and comes back as a
        done future, which the command driver takes at once (``ControlChannel._step``) instead
        of a loop turn later. (Opens keep ``run_open``: a caller cancelled before it takes the
        file must still have it disposed of.)"""
        if self.memory:
            return _now(fn, args)
        return self.run(fn, *args)

    def done(self, value: T) -> Awaitable[T]:
        """``value`` as an awaitable that needs no hop (a future already done)."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        fut.set_result(value)
        return fut

    def run_open(
        self, fn: Callable[..., T], dispose: Callable[[T], object], *args: Any
    ) -> Awaitable[T]:
        """For calls that return an open resource: if the caller is cancelled while the job runs,
        the resource is disposed of when it arrives instead of leaking."""
        if self.memory:
            return _next_turn(fn, args, dispose)
        if self.pool is not None:
            return self.pool.submit(fn, *args, dispose=dispose)
        return _run_open(self.executor, fn, dispose, *args)

    def run_shielded(self, fn: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Run ``fn``; if the caller is cancelled, let it finish anyway. Used for close, commit
        and abort, so that cancelling a transfer (ABOR, disconnect, shutdown) never skips the step
        that frees an fd or removes a temp file."""
        if self.memory:
            return _next_turn(fn, args)  # done before the caller can be cancelled
        if self.pool is not None:
            return _shielded(self.pool.submit(fn, *args))
        return _shielded(asyncio.get_running_loop().run_in_executor(self.executor, fn, *args))


def _now(fn: Callable[..., T], args: tuple[Any, ...]) -> asyncio.Future[T]:
    """``fn(*args)`` now, on the loop, as a done future (its result or its error)."""
    fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    try:
        fut.set_result(fn(*args))
    except Exception as exc:  # noqa: BLE001 - delivered to the caller, as from a thread
        fut.set_exception(exc)
    return fut


def _next_turn(
    fn: Callable[..., T], args: tuple[Any, ...], dispose: Callable[[T], object] | None = None
) -> asyncio.Future[T]:
    """``fn(*args)`` now, on the loop; its result (or error) delivered on the loop's next turn,
    as a hop's would be, so that a caller looping over calls (a listing's batches, an upload's
    writes) lets the other sessions run between them. If the caller is cancelled meanwhile, an
    open resource is disposed of (``dispose``)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()
    try:
        value = fn(*args)
    except Exception as exc:  # noqa: BLE001 - delivered to the caller, as from a thread
        loop.call_soon(_deliver_error, fut, exc)
    else:
        loop.call_soon(_deliver, fut, value, dispose)
    return fut


def _deliver(fut: asyncio.Future[T], value: T, dispose: Callable[[T], object] | None) -> None:
    if not fut.done():
        fut.set_result(value)
    elif dispose is not None:
        dispose(value)  # the caller was cancelled: nobody will close it


def _deliver_error(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


async def _run_open(
    executor: Executor | None, fn: Callable[..., T], dispose: Callable[[T], object], *args: Any
) -> T:
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(executor, fn, *args)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:

        def _dispose(f: asyncio.Future[T]) -> None:
            if not f.cancelled() and f.exception() is None:
                loop.run_in_executor(executor, dispose, f.result())

        fut.add_done_callback(_dispose)
        raise


async def _shielded(fut: asyncio.Future[T]) -> T:
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        # Retrieve a late exception so asyncio does not log "exception was never retrieved".
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        raise
