"""The filesystem interface every storage backend implements.

The protocol core speaks only in *virtual paths*: absolute, normalised POSIX strings such as
``/docs/a.txt`` where ``/`` is the user's home (see ``ftpd.proto.paths``). A backend maps them to
its storage and guarantees that nothing outside the home is ever touched. Every method is async;
blocking work happens in an executor. Errors are raised as ``OSError`` with an ``errno`` set
(``ftpd.proto.errors`` turns the errno into the FTP reply); a path that would leave the home raises
``PathEscapeError``.

This module imports nothing from asyncio so that the sans-IO core can use its data types.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


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


@dataclass(slots=True, frozen=True)
class Capabilities:
    """What a backend can do; FEAT and the command handlers consult these."""

    resume_write: bool = True  # REST+STOR and APPE
    set_mtime: bool = True  # MFMT
    chmod: bool = True  # SITE CHMOD
    sendfile: bool = True  # readers expose a real file descriptor for zero-copy RETR
    atomic_rename_dir: bool = True  # RNFR/RNTO of a non-empty directory


@runtime_checkable
class Reader(Protocol):
    """An open file for RETR, positioned at the requested offset."""

    size: int  # size of the whole file when opened

    async def read(self, n: int) -> bytes: ...

    def fileno(self) -> int | None:
        """A real fd usable with os.sendfile, or None."""
        ...

    def position(self) -> int:
        """Current absolute offset (sendfile callers advance it with ``advance``)."""
        ...

    def advance(self, n: int) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class Writer(Protocol):
    """An upload in progress. Nothing is visible under the final name until ``commit``."""

    async def write(self, data: bytes | memoryview) -> None: ...

    async def commit(self) -> None:
        """Make the upload visible (atomically where the backend can)."""
        ...

    async def abort(self) -> None:
        """Discard a failed upload; the previous version of the file stays intact."""
        ...


@runtime_checkable
class FileSystem(Protocol):
    """A user's view of storage, rooted at the user's home. All paths are virtual."""

    capabilities: Capabilities

    async def stat(self, vpath: str) -> FileStat: ...

    async def list(self, vpath: str) -> list[FileStat]:
        """All entries of a directory (not '.' and '..'), in one executor call."""
        ...

    async def open_listing(self, vpath: str, format: Any) -> Reader:
        """A directory's listing as a stream of formatted batches (``format(entries) -> bytes``,
        ``ftpd.proto.listing.LineFormat``); nothing is read before its first ``read``, so a
        session opens it before its data connection exists (``ftpd.fs.listing_stream``)."""
        ...

    async def open_read(self, vpath: str, offset: int = 0) -> Reader: ...

    async def open_write(self, vpath: str, offset: int = 0, append: bool = False) -> Writer:
        """Start an upload. ``offset`` > 0 resumes (REST), ``append`` appends (APPE)."""
        ...

    async def mkdir(self, vpath: str) -> None: ...

    async def rmdir(self, vpath: str) -> None: ...

    async def delete(self, vpath: str) -> None: ...

    async def rename(self, src: str, dst: str) -> None: ...

    async def set_mtime(self, vpath: str, mtime: float) -> None: ...

    async def chmod(self, vpath: str, mode: int) -> None: ...

    async def unique_name(self, vdir: str, prefix: str) -> str:
        """A virtual path in ``vdir`` that does not exist yet (STOU), created empty."""
        ...
