"""Directory listings streamed in bounded batches (LIST, NLST, MLSD and STAT of a directory).

A listing used to be read whole (a ``scandir`` plus a stat per entry), then formatted on the event
loop and held as one payload: a 200,000-entry directory stalled every session for seconds and a
client that never connected its data connection held hundreds of MiB. A listing is now a stream:

- nothing is read when it is created (the session opens it before the data connection exists;
  the first ``read`` comes once that connection is up);
- each ``read`` is one hop to an IO thread that reads the next ``BATCH`` entries and formats them
  there with the session's ``format`` (a pure function of ``ftpd.proto.listing``), so the loop
  only moves bytes, at the pace of the data connection (the callers wait for it to drain); a
  format that takes rows (``LineFormat.row_format``) gets plain tuples from each ``lstat``, not
  a ``FileStat`` per entry (that was a third of a LIST's CPU): a ``Row`` for LIST and NLST, a
  ``FactRow`` for MLSD;
- memory is one batch whatever the directory's size.

Order: a directory that fits in the first batch is sorted by name, as before; a larger one is
sent in the directory's own order (sorting would mean holding it whole). S3 pages the same way
with ``list_objects_v2`` continuation tokens (``PagedListing``).

The streams look like a ``Reader`` without a file descriptor (``fileno()`` is None), so the
transfer code sends them like a RETR in blocks, with TLS or without.
"""

from __future__ import annotations

import asyncio
import os
import stat as st
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from ftpd.fs.base import FileStat, FileSystem, PathEscapeError, Reader
from ftpd.fs.local_io import Hops, close_quietly
from ftpd.fs.temps import TEMP_PREFIX, is_upload_temp

__all__ = [
    "BATCH",
    "UNIQUE",
    "Format",
    "LocalDir",
    "LocalListing",
    "PagedListing",
    "open_listing",
    "open_listing_of",
]

BATCH = 1000  # entries read and formatted per hop (~80 KiB of LIST lines)
Format = Callable[[list[FileStat]], bytes]
# (name, st_mode, st_nlink, st_size, st_mtime) of an entry, of its target for a symlink: all a
# LIST or NLST line shows (``ftpd.proto.listing.StatRow``), without a FileStat per entry.
Row = tuple[str, int, int, int, float]
# (name, is_dir, st_size, st_mtime, st_mode, unique), the same way: all an MLSD line shows
# (``ftpd.proto.listing.FactRow``), the fields of the entry's FileStat.
FactRow = tuple[str, bool, int, float, int, str]
RowFormat = Callable[[list[Row]], bytes] | Callable[[list[FactRow]], bytes]
UNIQUE = "%xg%x"  # a local entry's unique fact: st_dev "g" st_ino in hex (also local.py's)

_ENTRIES, _ROWS, _FACT_ROWS = 0, 1, 2  # what a batch holds: FileStat, Row or FactRow
_S_IFMT, _S_IFDIR = 0o170000, st.S_IFDIR  # S_ISDIR(m): m & _S_IFMT == _S_IFDIR
_TEMP_LEAD = TEMP_PREFIX[0]  # names that cannot be an upload temp skip is_upload_temp
_row_name = itemgetter(0)


@dataclass(frozen=True, slots=True)
class LocalDir:
    """What a local listing needs of its ``LocalFS`` (handed in, so this module does not
    import local.py, which imports it)."""

    open_fd: Callable[[str], tuple[int, str]]  # vpath -> (directory fd, its real path), jailed
    link_stat: Callable[[str, str, str], os.stat_result]  # (real dir, name, vpath) -> target
    entry_stat: Callable[[str, os.stat_result, bool], FileStat]
    hops: Hops


class _Stream:
    """What the transfer code needs of a reader that has no file descriptor."""

    size = 0

    def fileno(self) -> int | None:
        return None

    def position(self) -> int:
        return 0

    def advance(self, n: int) -> None:
        pass


class LocalListing(_Stream):
    """A local directory's listing, ``BATCH`` entries per IO hop (see the module docstring)."""

    __slots__ = (
        "_fs",
        "_vpath",
        "_format",
        "_fd",
        "_it",
        "_real",
        "_first",
        "_done",
        "_lock",
        "_abandoned",
        "_rows",
        "_shape",
    )

    def __init__(self, fs: LocalDir, vpath: str, format: Format | None) -> None:
        self._fs = fs
        self._vpath = vpath
        self._format = format
        self._fd = -1
        self._it: Any = None
        self._real = ""
        self._first = True
        self._done = False
        # A read cancelled by ABOR may still run in a thread when close comes: the thread then
        # closes when its batch is done (close_now never waits for it).
        self._lock = threading.Lock()
        self._abandoned = False
        # A format that takes plain rows (``LineFormat.row_format``) is given them.
        row_format = getattr(format, "row_format", None)
        self._rows: RowFormat | None = row_format() if row_format is not None else None
        if self._rows is None:
            self._shape = _ENTRIES
        else:
            self._shape = _FACT_ROWS if getattr(format, "fact_rows", False) else _ROWS

    def _open(self) -> None:
        self._fd, self._real = self._fs.open_fd(self._vpath)
        self._it = os.scandir(self._fd)

    def entries_sync(self, limit: int) -> list[FileStat]:
        """Up to ``limit`` more entries (blocking); fewer only at the end, which closes (as
        does an error, or a ``close_now`` that came while this ran)."""
        return self._batch(limit, _ENTRIES)

    def _batch(self, limit: int, shape: int) -> list[Any]:
        """``entries_sync``; ``Row`` or ``FactRow`` tuples rather than ``FileStat`` (``shape``)."""
        with self._lock:
            try:
                return self._entries_locked(limit, shape)
            except BaseException:
                self._close_locked()
                raise
            finally:
                if self._abandoned:
                    self._close_locked()

    def _entries_locked(self, limit: int, shape: int) -> list[Any]:
        if self._done:
            return []
        if self._it is None:
            self._open()
        out: list[Any] = []
        fs, real, vpath = self._fs, self._real, self._vpath
        append, entry_stat, s_islnk = out.append, fs.entry_stat, st.S_ISLNK  # once, not per entry
        for entry in self._it:
            name = entry.name
            if name[0] == _TEMP_LEAD and is_upload_temp(name):
                continue
            try:
                s = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # deleted while we listed
                continue
            is_link = s_islnk(s.st_mode)
            if is_link:
                try:
                    s = fs.link_stat(real, name, vpath)
                except PathEscapeError:
                    continue  # points outside the home: omit, it leaks nothing
                except OSError:
                    pass  # dangling or looping inside the home: show the link itself
            if shape == _ROWS:
                append((name, s.st_mode, s.st_nlink, s.st_size, s.st_mtime))
            elif shape == _FACT_ROWS:
                mode = s.st_mode  # is_dir as entry_stat's S_ISDIR, without a call
                append((name, (mode & _S_IFMT) == _S_IFDIR, s.st_size, s.st_mtime, mode,
                        UNIQUE % (s.st_dev, s.st_ino)))  # fmt: skip
            else:
                append(entry_stat(name, s, is_link))
            if len(out) >= limit:
                break
        else:
            self._close_locked()
        return out

    def _read_sync(self) -> bytes:
        first, self._first = self._first, False
        rows = self._rows
        entries = self._batch(BATCH + 1 if first else BATCH, self._shape)
        if first and self._done:
            # the whole directory fitted in one batch
            entries.sort(key=_name if rows is None else _row_name)
        if not entries:
            return b""
        if rows is not None:
            return rows(entries)
        return b"" if self._format is None else self._format(entries)

    async def read(self, n: int = 0) -> bytes:
        """The next batch, formatted; ``b""`` at the end. ``n`` is ignored (one batch)."""
        if self._done:
            return b""  # the last batch said so: no hop (and no turn of the loop) to learn it
        while True:
            data = await self._fs.hops.run(self._read_sync)
            if data or self._done:
                return data

    def _close_locked(self) -> None:
        self._done = True
        it, self._it = self._it, None
        if it is not None:
            it.close()
        fd, self._fd = self._fd, -1
        if fd >= 0:
            close_quietly(fd)

    def close_sync(self) -> None:
        """Release the directory (idempotent; a closedir does not wait on the disk)."""
        with self._lock:
            self._close_locked()

    def close_now(self) -> bool:
        """Close without waiting: at once, or by the thread reading a batch when it ends."""
        if self._lock.acquire(blocking=False):
            try:
                self._close_locked()
            finally:
                self._lock.release()
        else:
            self._abandoned = True
        return True

    async def close(self) -> None:
        self.close_now()

    def __del__(self) -> None:
        # Safety net: a stream dropped unread (a session gone before its data connection).
        if getattr(self, "_fd", -1) >= 0 or getattr(self, "_it", None) is not None:
            self._close_locked()


class PagedListing(_Stream):
    """A listing from pages of entries (S3's ``list_objects_v2``), formatted in the loop's
    default executor. The first page is fetched at the first ``read``; a listing of one page
    is sorted."""

    __slots__ = ("_pages", "_format", "_next", "_started")

    def __init__(self, pages: AsyncIterator[list[FileStat]], format: Format) -> None:
        self._pages = pages
        self._format = format
        self._next: list[FileStat] | None = None
        self._started = False

    async def _page(self) -> list[FileStat] | None:
        try:
            return await anext(self._pages)
        except StopAsyncIteration:
            return None

    async def read(self, n: int = 0) -> bytes:
        if not self._started:
            self._started = True
            page = await self._page()
            if page is None:
                return b""
            self._next = await self._page()  # one page ahead: is the listing a single page?
            if self._next is None:
                page.sort(key=_name)
        else:
            page, self._next = self._next, None
            if page is None:
                return b""
            self._next = await self._page()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._format, page)

    def close_sync(self) -> None:
        self._next = None

    def close_now(self) -> bool:
        return False  # the page iterator is closed by ``close``

    async def close(self) -> None:
        self._next = None
        aclose = getattr(self._pages, "aclose", None)
        if aclose is not None:
            await aclose()


def _name(e: FileStat) -> str:
    return e.name


def open_listing(fs: FileSystem, vpath: str, format: Format) -> Awaitable[Reader]:
    """The listing stream of ``vpath``: the backend's own (``StreamsListings``), or for any other
    backend one page from ``fs.list``, still read only at the first ``read``."""
    # getattr, not isinstance(fs, StreamsListings): the same test (runtime_checkable only looks
    # for the method), without typing's 7 µs per call on Python 3.11.
    streams = getattr(fs, "open_listing", None)
    if streams is not None:
        return streams(vpath, format)  # type: ignore[no-any-return]
    return open_listing_of(fs.list, vpath, format)


def open_listing_of(
    list_dir: Callable[[str], Awaitable[list[FileStat]]], vpath: str, format: Format
) -> Awaitable[Reader]:
    """A listing stream over one ``list_dir(vpath)`` call, made at the first ``read``."""
    return _ready(PagedListing(_whole(list_dir, vpath), format))


async def _whole(
    list_dir: Callable[[str], Awaitable[list[FileStat]]], vpath: str
) -> AsyncIterator[list[FileStat]]:
    yield await list_dir(vpath)


async def _ready(stream: PagedListing) -> PagedListing:
    return stream
