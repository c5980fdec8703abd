"""The local backend's inline forms: opens and stats answered from the dentry cache, on the loop.

``LocalFS.open_read`` and ``LocalFS.stat`` are routed here: ``IoMode.run`` (``iomode.py``) tries
the *fast* forms below, and falls back to the backend's own blocking code (realpath, jail check,
O_NOFOLLOW walk: ``LocalFS._open_read``/``_stat``) in a hop, its *thread* form. The
path is resolved by the kernel with ``openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
RESOLVE_CACHED)`` relative to the home, so the jail is enforced in the same system call: ``..``
past the home, an absolute symlink or a symlink leading out fails with ``EXDEV``, a magic link
(``/proc/self/fd/N``) with ``ELOOP``. Anything but a clean success (a cache miss, any error, a
symlink as the entry of a stat, something that is not a regular file) raises ``WouldBlock``: the
thread form then answers as it always has, so the inline route can never answer differently.
"""

from __future__ import annotations

import os
import stat as st
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from ftpd.fs.base import FileStat
from ftpd.fs.homefds import HomeFds
from ftpd.fs.iomode import Op
from ftpd.fs.local_io import Hops, LocalReader
from ftpd.fs.nowait import WouldBlock, openat2_cached


class LocalFS(Protocol):
    """What these forms need of ``ftpd.fs.local.LocalFS`` (a Protocol: no import cycle)."""

    home: str
    _hops: Hops

    def _parts(self, vpath: str) -> list[str]: ...

    def _stat(self, vpath: str) -> FileStat: ...

    def _open_read(self, vpath: str, offset: int) -> LocalReader: ...

    @property
    def entry_stat(self) -> Callable[..., FileStat]: ...


__all__ = ["open_read", "open_read_fast", "stat", "stat_fast"]

T = TypeVar("T")

_O_PATH = getattr(os, "O_PATH", 0)
# No O_NOFOLLOW on the entry: a symlink inside the home is followed (RESOLVE_BENEATH keeps it in).
_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
_LOOKUP = _O_PATH | os.O_NOFOLLOW


def _in_home(homes: HomeFds, home: str, parts: list[str], flags: int) -> int:
    """``home/parts`` opened beneath ``home`` from the dentry cache, or ``WouldBlock``."""
    try:
        # The home is a real path fixed at start-up, not the client's: no jail flags for it.
        # Kept open for a second between calls (homefds.py); never closed here.
        hfd = homes.get(home, time.monotonic())
    except OSError:
        raise WouldBlock() from None
    try:
        if not parts:
            return os.dup(hfd) if flags & _O_PATH else openat2_cached(hfd, ".", flags)
        return openat2_cached(hfd, "/".join(parts), flags)
    except OSError:
        raise WouldBlock() from None  # EXDEV, ENOENT, EACCES...: the thread form's answer


def open_read_fast(
    homes: HomeFds, home: str, parts: list[str], offset: int, make: Callable[[int, int], T]
) -> T:
    """``make(fd, size)`` for the regular file ``home/parts``, positioned at ``offset``."""
    if not parts or offset < 0:
        raise WouldBlock()
    fd = _in_home(homes, home, parts, _READ)
    try:
        s = os.fstat(fd)
        if not st.S_ISREG(s.st_mode) or offset > s.st_size:
            raise WouldBlock()
        if offset:
            os.lseek(fd, offset, os.SEEK_SET)
        return make(fd, s.st_size)
    except BaseException:
        os.close(fd)
        raise


def stat_fast(
    homes: HomeFds,
    home: str,
    parts: list[str],
    make: Callable[[str, os.stat_result], FileStat],
) -> FileStat:
    """The ``FileStat`` of ``home/parts``; ``WouldBlock`` for a symlink (the thread form follows it
    and checks where it leads)."""
    fd = _in_home(homes, home, parts, _LOOKUP)
    try:
        s = os.fstat(fd)
    except OSError:
        raise WouldBlock() from None
    finally:
        os.close(fd)
    if st.S_ISLNK(s.st_mode):
        raise WouldBlock()
    return make(parts[-1] if parts else "/", s)


def _parts(fs: LocalFS, vpath: str) -> list[str]:
    try:
        return fs._parts(vpath)
    except (OSError, ValueError):
        raise WouldBlock() from None  # the thread form gives the error


def stat(fs: LocalFS, vpath: str) -> Awaitable[FileStat]:
    """``LocalFS.stat``: inline from the dentry cache, else ``fs._stat`` in a hop."""
    hops = fs._hops
    return hops.mode.run(
        Op.STAT,
        lambda: stat_fast(hops.mode.homes, fs.home, _parts(fs, vpath), fs.entry_stat),
        lambda: hops.run(fs._stat, vpath),
    )


def open_read(fs: LocalFS, vpath: str, offset: int) -> Awaitable[LocalReader]:
    """``LocalFS.open_read``: inline from the dentry cache, else ``fs._open_read`` in a hop."""
    hops = fs._hops

    def reader(fd: int, size: int) -> LocalReader:
        return LocalReader(fd, size, offset, hops)

    return hops.mode.run(
        Op.OPEN_READ,
        lambda: open_read_fast(hops.mode.homes, fs.home, _parts(fs, vpath), offset, reader),
        lambda: hops.run_open(fs._open_read, LocalReader.close_sync, vpath, offset),
    )
