"""The filesystem interface every storage backend implements.

The protocol core speaks only in *virtual paths*: absolute, normalised POSIX strings such as
``/docs/a.txt`` where ``/`` is the user's home (see ``ftpd.proto.paths``). A backend maps them to
its storage and guarantees that nothing outside the home is ever touched. Every operation returns
an awaitable (a coroutine, or a bare future: ``LocalFS`` hands out its IO pool's futures from plain
functions, which saves a coroutine per call); blocking work happens in an executor. What a
backend can do is declared here too, never probed: ``Capabilities`` (FEAT and the handlers),
``Reader.fileno`` (sendfile), ``Reader.close_now``, ``Writer.blocking_write`` (bulk uploads) and
``Writer.commit(tail)``. Errors are raised as ``OSError`` with an ``errno`` set
(``ftpd.proto.errors`` turns the errno into the FTP reply); a path that would leave the home raises
``PathEscapeError``.

This module imports nothing from asyncio so that the sans-IO core can use its data types.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class PathEscapeError(PermissionError):
    """A virtual path resolved (through ``..`` or a symlink) outside the user's home."""

    def __init__(self, vpath: str = "") -> None:
        super().__init__(errno.EACCES, "Permission denied")
        self.vpath = vpath


def virtual_parts(vpath: str) -> list[str]:
    """The components of a virtual path. The core normalises paths already; backends call this
    as defence in depth against an un-normalised one (NUL, relative, ``..``)."""
    if "\0" in vpath:
        raise OSError(errno.EINVAL, "NUL byte in path")
    if not vpath.startswith("/"):
        raise OSError(errno.EINVAL, "not an absolute virtual path")
    parts = [p for p in vpath.split("/") if p and p != "."]
    if ".." in parts:
        raise PathEscapeError(vpath)
    return parts


@dataclass(slots=True, frozen=True)
class FileStat:
    """What the listing formats and SIZE/MDTM need to know about one entry."""

    name: str  # the entry's own name (last path component); "/" for the root
    is_dir: bool
    size: int
    mtime: float  # seconds since the epoch, UTC
    mode: int = 0o644  # st_mode permission bits (and file type bits when known)
    nlink: int = 1
    is_link: bool = False  # a symlink (inside the home) that was followed
    unique: str = ""  # RFC 3659 'unique' fact (e.g. "dev-ino" in hex)


_FILESTAT_SETTERS = tuple(
    FileStat.__dict__[f].__set__
    for f in ("name", "is_dir", "size", "mtime", "mode", "nlink", "is_link", "unique")
)


def make_file_stat(
    name: str, is_dir: bool, size: int, mtime: float, mode: int, nlink: int, is_link: bool,
    unique: str,
) -> FileStat:
    """``FileStat(name, is_dir, ...)``, every field given, at a third of the cost: a frozen
    dataclass's ``__init__`` sets each field through ``object.__setattr__``, and a listing makes
    one per entry. The slots' own setters are what that call ends in."""
    s0, s1, s2, s3, s4, s5, s6, s7 = _FILESTAT_SETTERS
    out = object.__new__(FileStat)
    s0(out, name)
    s1(out, is_dir)
    s2(out, size)
    s3(out, mtime)
    s4(out, mode)
    s5(out, nlink)
    s6(out, is_link)
    s7(out, unique)
    return out


@dataclass(slots=True, frozen=True)
class Capabilities:
    """What a backend can do; FEAT and the command handlers consult these."""

    resume_write: bool = True  # REST+STOR and APPE
    set_mtime: bool = True  # MFMT
    chmod: bool = True  # SITE CHMOD
    atomic_rename_dir: bool = True  # RNFR/RNTO of a non-empty directory


@runtime_checkable
class Reader(Protocol):
    """An open file for RETR, positioned at the requested offset."""

    size: int  # size of the whole file when opened

    def read(self, n: int) -> Awaitable[bytes]: ...

    def fileno(self) -> int | None:
        """A real fd usable with os.sendfile, or None."""
        ...

    def position(self) -> int:
        """Current absolute offset (sendfile callers advance it with ``advance``)."""
        ...

    def advance(self, n: int) -> None: ...

    def close_now(self) -> bool:
        """Close without waiting if that never blocks (a read-only fd with no read in flight):
        True; False when the caller must await ``close`` instead."""
        ...

    def close(self) -> Awaitable[None]: ...


@runtime_checkable
class Writer(Protocol):
    """An upload in progress. Nothing is visible under the final name until ``commit``."""

    def write(self, data: bytes | memoryview) -> Awaitable[None]: ...

    def blocking_write(self) -> Callable[[memoryview], None] | None:
        """A blocking write for a worker thread (the bulk of a large upload), or None when the
        backend has none: uploads then stay on ``write``."""
        ...

    def commit(self, tail: bytes | memoryview = b"") -> Awaitable[None]:
        """Write ``tail`` (the upload's last bytes; in the same hop where the backend can) and
        make the upload visible (atomically where the backend can)."""
        ...

    def abort(self) -> Awaitable[None]:
        """Discard a failed upload; the previous version of the file stays intact."""
        ...


# Formats a batch of entries as listing lines (``ftpd.proto.listing.LineFormat``).
ListingFormat = Callable[[list[FileStat]], bytes]


@runtime_checkable
class StreamsListings(Protocol):
    """A backend that can stream a directory's listing (LocalFS, S3FS). Optional: for any other
    ``FileSystem`` the server lists the directory with ``list`` at the first read
    (``ftpd.fs.listing_stream.open_listing``)."""

    def open_listing(self, vpath: str, format: ListingFormat) -> Awaitable[Reader]:
        """The listing as a stream of batches formatted by ``format``; nothing is read before
        its first ``read``, so a session opens it before its data connection exists."""
        ...


@runtime_checkable
class FileSystem(Protocol):
    """A user's view of storage, rooted at the user's home. All paths are virtual.

    Errors are ``OSError`` with an errno (``ENOENT``, ``EEXIST``, ``ENOTEMPTY``, ``EISDIR``,
    ``ENOTDIR``, ``EACCES``, ``ENOSPC``, ``EDQUOT``...), turned into replies by one table
    (``ftpd.proto.errors``); ``ftpd.StorageError(code, text)`` chooses the reply itself.
    """

    capabilities: Capabilities

    def stat(self, vpath: str) -> Awaitable[FileStat]: ...

    def list(self, vpath: str) -> Awaitable[list[FileStat]]:
        """All entries of a directory (not '.' and '..'), in one executor call."""
        ...

    def open_read(self, vpath: str, offset: int = 0) -> Awaitable[Reader]: ...

    def open_write(self, vpath: str, offset: int = 0, append: bool = False) -> Awaitable[Writer]:
        """Start an upload. ``offset`` > 0 resumes (REST), ``append`` appends (APPE)."""
        ...

    def mkdir(self, vpath: str) -> Awaitable[None]: ...

    def rmdir(self, vpath: str) -> Awaitable[None]: ...

    def delete(self, vpath: str) -> Awaitable[None]: ...

    def rename(self, src: str, dst: str) -> Awaitable[None]: ...

    def set_mtime(self, vpath: str, mtime: float) -> Awaitable[None]: ...

    def chmod(self, vpath: str, mode: int) -> Awaitable[None]: ...

    def unique_name(self, vdir: str, prefix: str) -> Awaitable[str]:
        """A virtual path in ``vdir`` that does not exist yet (STOU), created empty."""
        ...


@runtime_checkable
class RealPaths(Protocol):
    """Optional: a backend that can say where a virtual path lives (events' ``real_path``)."""

    def real_path(self, vpath: str) -> str | None: ...
