"""Per-user quotas: bytes and files a user may keep in their home (``quota_bytes``, ``quota_files``).

``QuotaFS`` wraps a session's local filesystem and keeps the home's usage as files are stored,
appended, renamed over and deleted. The usage lives in ``<home>/.ftpquota`` (the name pure-ftpd
uses), a small JSON file written atomically (temp file + rename) so it survives restarts; a
missing or unreadable one is recomputed by walking the home (as ``ftpd quota rescan NAME`` does).
Updates are read-modify-write under ``flock`` on the home directory, so sessions in several
workers never lose each other's changes. Sessions never see the file: it is left out of listings
and every command naming it gets 550.

An upload is checked as it arrives: the writer counts the bytes, and the write that would take
the user over ``quota_bytes`` fails with ``EDQUOT`` (552) before it reaches the disk; the upload is
then aborted, and with atomic uploads the previous version of the file is kept. A new file over
``quota_files`` is refused at once. Two uploads of one user running at the same moment are each
checked against the usage when they started (as pure-ftpd does): they may together pass the quota
by less than one upload; the next upload sees the sum.

Usage after a change is settled by a ``stat`` of the file (its real size after a commit, an
abort of a non-atomic APPE, a REST...), never by adding up what the client sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .base import FileStat, FileSystem, Reader, Writer
from .listing_stream import Format, open_listing, open_listing_of
from .local import is_upload_temp

__all__ = ["STATE_NAME", "Limits", "QuotaFS", "Usage", "apply_change", "read_usage", "rescan"]

STATE_NAME = ".ftpquota"
_STATE_VPATH = "/" + STATE_NAME
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Usage:
    bytes: int = 0
    files: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    """0 = no limit."""

    bytes: int = 0
    files: int = 0

    def __bool__(self) -> bool:
        return bool(self.bytes or self.files)


def _quota_error() -> OSError:
    return OSError(errno.EDQUOT, "Disk quota exceeded")


# --- the state file (blocking; run in an executor) ------------------------------------------


def scan(home: str) -> Usage:
    """The home's usage by walking it: regular files, symlinks not followed, upload temp files
    and the state file left out."""
    total = files = 0
    for dirpath, _dirs, names in os.walk(home):
        for name in names:
            if is_upload_temp(name) or (name == STATE_NAME and dirpath == home):
                continue
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue  # deleted meanwhile
            if not os.path.islink(os.path.join(dirpath, name)) and st.st_nlink >= 1:
                total += st.st_size
                files += 1
    return Usage(total, files)


def read_usage(home: str) -> Usage | None:
    """The recorded usage, or None when there is none (or it is unreadable)."""
    try:
        with open(os.path.join(home, STATE_NAME), encoding="utf-8") as fh:
            data = json.load(fh)
        return Usage(int(data["bytes"]), int(data["files"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_usage(home: str, usage: Usage) -> None:
    path = os.path.join(home, STATE_NAME)
    temp = f"{path}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="utf-8") as fh:
        json.dump({"bytes": usage.bytes, "files": usage.files}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)


@contextlib.contextmanager
def _locked(home: str) -> Any:
    # flock on the directory itself: the state file is replaced on every write, so a lock on it
    # would be on an inode the next writer no longer opens.
    fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def current(home: str) -> Usage:
    """The recorded usage; the home is scanned (and the result recorded) when there is none."""
    usage = read_usage(home)
    if usage is not None:
        return usage
    with _locked(home):
        usage = read_usage(home)
        if usage is None:
            usage = scan(home)
            _write_usage(home, usage)
    return usage


def apply_change(home: str, dbytes: int, dfiles: int) -> Usage:
    """Add a change to the recorded usage (under the home's lock); the new usage."""
    with _locked(home):
        old = read_usage(home)
        if old is None:
            usage = scan(home)  # already includes the change
        else:
            usage = Usage(max(0, old.bytes + dbytes), max(0, old.files + dfiles))
        _write_usage(home, usage)
    return usage


def rescan(home: str) -> Usage:
    """Recompute the usage from the files and record it (``ftpd quota rescan``)."""
    with _locked(home):
        usage = scan(home)
        _write_usage(home, usage)
    return usage


# --- the session's filesystem --------------------------------------------------------------


def _guard(vpath: str) -> None:
    if vpath == _STATE_VPATH:
        raise PermissionError(errno.EACCES, "Permission denied")


class QuotaFS:
    """A session's filesystem with the home's quota applied (see the module docstring)."""

    def __init__(self, inner: FileSystem, home: str, limits: Limits) -> None:
        self.inner = inner
        self.home = home
        self.limits = limits
        self.capabilities = inner.capabilities

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # real_path and other extras of the backend

    def _blocking(self, fn: Callable[..., T], *args: Any) -> Awaitable[T]:
        return asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def usage(self) -> Usage:
        return await self._blocking(current, self.home)

    async def _stat_file(self, vpath: str) -> FileStat | None:
        try:
            st = await self.inner.stat(vpath)
        except FileNotFoundError:
            return None
        return None if st.is_dir else st

    async def _change(self, dbytes: int, dfiles: int) -> None:
        if dbytes or dfiles:
            await self._blocking(apply_change, self.home, dbytes, dfiles)

    async def settle(self, vpath: str, before: FileStat | None) -> None:
        """Record how ``vpath`` changed since ``before`` (None: it did not exist)."""
        after = await self._stat_file(vpath)
        dbytes = (after.size if after else 0) - (before.size if before else 0)
        await self._change(dbytes, (after is not None) - (before is not None))

    # -- reads: only the state file is hidden
    def stat(self, vpath: str) -> Awaitable[FileStat]:
        _guard(vpath)
        return self.inner.stat(vpath)

    async def list(self, vpath: str) -> list[FileStat]:
        entries = await self.inner.list(vpath)
        if vpath == "/":
            entries = [e for e in entries if e.name != STATE_NAME]
        return entries

    def open_listing(self, vpath: str, format: Format) -> Awaitable[Reader]:
        """Streamed like the backend's own listing, except the home itself, which holds the
        state file: that one comes from ``list`` (above), which hides it."""
        if vpath == "/":
            return open_listing_of(self.list, vpath, format)
        return open_listing(self.inner, vpath, format)

    def open_read(self, vpath: str, offset: int = 0) -> Awaitable[Reader]:
        _guard(vpath)
        return self.inner.open_read(vpath, offset)

    # -- changes
    async def open_write(self, vpath: str, offset: int = 0, append: bool = False) -> Writer:
        _guard(vpath)
        before = await self._stat_file(vpath)
        usage = await self.usage()
        if before is None and self.limits.files and usage.files >= self.limits.files:
            raise _quota_error()
        allowed: int | None = None
        if self.limits.bytes:
            old = before.size if before else 0
            base = old if append else offset  # bytes of the old file the upload keeps
            allowed = self.limits.bytes - (usage.bytes - old) - base
        writer = await self.inner.open_write(vpath, offset, append)
        return QuotaWriter(writer, self, vpath, before, allowed)

    def mkdir(self, vpath: str) -> Awaitable[None]:
        _guard(vpath)
        return self.inner.mkdir(vpath)

    def rmdir(self, vpath: str) -> Awaitable[None]:
        return self.inner.rmdir(vpath)

    async def delete(self, vpath: str) -> None:
        _guard(vpath)
        before = await self._stat_file(vpath)
        await self.inner.delete(vpath)
        if before is not None:
            await self._change(-before.size, -1)

    async def rename(self, src: str, dst: str) -> None:
        _guard(src)
        _guard(dst)
        # Within one home a rename moves nothing in or out, except a file it replaces.
        replaced = await self._stat_file(dst)
        await self.inner.rename(src, dst)
        if replaced is not None:
            await self._change(-replaced.size, -1)

    def set_mtime(self, vpath: str, mtime: float) -> Awaitable[None]:
        _guard(vpath)
        return self.inner.set_mtime(vpath, mtime)

    def chmod(self, vpath: str, mode: int) -> Awaitable[None]:
        _guard(vpath)
        return self.inner.chmod(vpath, mode)

    def unique_name(self, vdir: str, prefix: str) -> Awaitable[str]:
        return self.inner.unique_name(vdir, prefix)


class QuotaWriter:
    """Counts an upload's bytes; the write that would pass the quota fails with EDQUOT."""

    __slots__ = ("inner", "fs", "vpath", "before", "allowed", "written")

    def __init__(
        self, inner: Writer, fs: QuotaFS, vpath: str, before: FileStat | None, allowed: int | None
    ) -> None:
        self.inner = inner
        self.fs = fs
        self.vpath = vpath
        self.before = before
        self.allowed = allowed
        self.written = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _count(self, n: int) -> None:
        self.written += n
        if self.allowed is not None and self.written > self.allowed:
            raise _quota_error()

    def write(self, data: bytes | memoryview) -> Awaitable[None]:
        self._count(len(data))
        return self.inner.write(data)

    def blocking_write(self) -> Callable[[memoryview], None] | None:
        write = self.inner.blocking_write()
        if write is None:
            return None

        def counted(data: memoryview) -> None:  # in a bulk thread: the count is its own
            self._count(len(data))
            write(data)

        return counted

    async def commit(self, tail: bytes | memoryview = b"") -> None:
        self._count(len(tail))
        await self.inner.commit(tail)
        await self.fs.settle(self.vpath, self.before)

    async def abort(self) -> None:
        await self.inner.abort()
        # A non-atomic upload (APPE, REST) keeps what it wrote: count it.
        await self.fs.settle(self.vpath, self.before)
