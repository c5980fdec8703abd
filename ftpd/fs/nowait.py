"""Linux system calls that answer from memory or say "would block": the inline file IO layer.

Each function here either completes without waiting for a disk or reports that it would have to
(``WouldBlock``, or a count of 0), so that ``ftpd.fs.iomode`` can run it on the event loop and
send only the misses to a thread. Sources and measurements: docs/PERFORMANCE.md ("The IO model")
and /work/shared/reference/linux-nonblocking-io.md.

- ``cached_pages``: ``cachestat(2)`` (Linux 6.5+), pages of a range in the page cache. The
  answer can be stale by the time it is used (eviction), so callers act on it in bounded slices:
  a wrong guess costs one slice, never the file.
- ``openat2_cached``: ``openat2(2)`` with ``RESOLVE_CACHED`` (5.12+: only the dentry cache, else
  ``EAGAIN``) and ``RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`` (5.6+: the kernel refuses any
  resolution leaving the directory fd, ``EXDEV``): the home jail enforced in the same call.
- ``pread_nowait`` / ``pwrite_nowait``: ``preadv2``/``pwritev2`` with ``RWF_NOWAIT`` (buffered
  reads 4.14+; buffered writes only where the filesystem supports them: not ext4 nor tmpfs on 6.18,
  which answer ``EOPNOTSUPP``).

CPython has no wrapper for ``cachestat`` and ``openat2``: they go through libc's ``syscall`` with
ctypes. Their numbers are the same on every architecture since 5.1's unified table (424 and up),
except alpha, which is not supported here. Anything unavailable (another OS, an old kernel, a
seccomp profile answering ``ENOSYS``/``EPERM``) is probed once and reported as unsupported: the
callers then use their thread path, which is always correct.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from typing import Any

__all__ = [
    "PAGE",
    "RESOLVE_BENEATH",
    "RESOLVE_CACHED",
    "RESOLVE_NO_MAGICLINKS",
    "WouldBlock",
    "cached_pages",
    "dirty_pages",
    "has_cachestat",
    "has_openat2",
    "has_rwf_nowait",
    "openat2_cached",
    "openat2_no_symlinks",
    "pread_nowait",
    "pwrite_nowait",
]

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

# include/uapi/linux/openat2.h
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_CACHED = 0x20
JAIL = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS

_SYS_OPENAT2 = 437
_SYS_CACHESTAT = 451
_RWF_NOWAIT: int = getattr(os, "RWF_NOWAIT", 0)


class WouldBlock(Exception):
    """The call would have waited for the disk (or cannot tell): take the thread path."""


class _Range(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _CacheStat(ctypes.Structure):
    _fields_ = [
        ("nr_cache", ctypes.c_uint64),
        ("nr_dirty", ctypes.c_uint64),
        ("nr_writeback", ctypes.c_uint64),
        ("nr_evicted", ctypes.c_uint64),
        ("nr_recently_evicted", ctypes.c_uint64),
    ]


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _load_syscall() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syscall
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_long
    return fn


_syscall = _load_syscall()
# None: not probed yet; then True/False for the life of the process.
_support: dict[str, bool] = {}


def _probe(name: str) -> bool:
    known = _support.get(name)
    if known is not None:
        return known
    ok = False
    if _syscall is not None:
        try:
            fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                if name == "cachestat":
                    ok = _cachestat(fd, 0, 0) is not None
                else:
                    try:
                        os.close(
                            _openat2(fd, ".", os.O_PATH | os.O_CLOEXEC, 0, JAIL | RESOLVE_CACHED)
                        )
                        ok = True
                    except BlockingIOError:
                        ok = True  # RESOLVE_CACHED understood, lookup not cached
                    except OSError:
                        ok = False  # ENOSYS, or EINVAL for a kernel without RESOLVE_CACHED
            finally:
                os.close(fd)
    _support[name] = ok
    return ok


def has_cachestat() -> bool:
    return _probe("cachestat")


def has_openat2() -> bool:
    """``openat2`` with ``RESOLVE_CACHED`` and the jail flags works here."""
    return _probe("openat2")


def has_rwf_nowait() -> bool:
    return bool(_RWF_NOWAIT) and hasattr(os, "preadv")


def _cachestat(fd: int, off: int, length: int) -> int | None:
    rng = _Range(off, length)
    cs = _CacheStat()
    if _syscall(_SYS_CACHESTAT, fd, ctypes.byref(rng), ctypes.byref(cs), 0) < 0:
        return None
    return int(cs.nr_cache)


def cached_pages(fd: int, off: int, length: int) -> int | None:
    """How many pages of ``[off, off + length)`` are in the page cache; None if unknown."""
    if not has_cachestat():
        return None
    return _cachestat(fd, off, length)


def dirty_pages(fd: int) -> int | None:
    """Pages of the file that are dirty or under write-back now; None if unknown."""
    if not has_cachestat():
        return None
    cs = _CacheStat()
    if _syscall(_SYS_CACHESTAT, fd, ctypes.byref(_Range(0, 0)), ctypes.byref(cs), 0) < 0:
        return None
    return int(cs.nr_dirty + cs.nr_writeback)


# ``open_how`` arguments by (flags, mode, resolve): a handful of combinations, each built once
# (the kernel only reads it, so threads may share one). Building the struct and its reference
# per call was a third of the call's cost here.
_HOWS: dict[tuple[int, int, int], tuple[_OpenHow, Any]] = {}
_HOW_SIZE = ctypes.sizeof(_OpenHow)
_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()


def _how(flags: int, mode: int, resolve: int) -> Any:
    key = (flags, mode, resolve)
    entry = _HOWS.get(key)
    if entry is None:
        how = _OpenHow(flags, mode, resolve)
        entry = (how, ctypes.byref(how))  # the struct is kept alive with its reference
        if len(_HOWS) < 256:
            _HOWS[key] = entry
    return entry[1]


def _openat2(dir_fd: int, path: str | bytes, flags: int, mode: int, resolve: int) -> int:
    raw = path if isinstance(path, bytes) else path.encode(_FS_ENCODING, _FS_ERRORS)  # fsencode
    fd = _syscall(_SYS_OPENAT2, dir_fd, raw, _how(flags, mode, resolve), _HOW_SIZE)
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), path)
    return int(fd)


def openat2_cached(
    dir_fd: int, path: str | bytes, flags: int, mode: int = 0, jail: bool = True
) -> int:
    """Open ``path`` beneath ``dir_fd`` from the dentry cache only: the fd, or ``WouldBlock``
    when the lookup needs the disk (or openat2 is unavailable). With ``jail``, ``EXDEV`` (the
    path leaves ``dir_fd``), ``ELOOP`` (a magic link); every other error is an ``OSError``."""
    if not has_openat2():
        raise WouldBlock()
    resolve = (JAIL | RESOLVE_CACHED) if jail else RESOLVE_CACHED
    try:
        return _openat2(dir_fd, path, flags | os.O_CLOEXEC, mode, resolve)
    except BlockingIOError:
        raise WouldBlock() from None


def openat2_no_symlinks(dir_fd: int, path: str, flags: int) -> int:
    """``path`` opened beneath ``dir_fd`` with no symlink anywhere on it: the whole O_NOFOLLOW
    walk in one call. ``OSError`` as ``openat2`` gives it (``ELOOP`` for a symlink, ``EXDEV``
    for a way out); ``WouldBlock`` when openat2 is unavailable (then walk)."""
    if not has_openat2():
        raise WouldBlock()
    return _openat2(dir_fd, path, flags | os.O_CLOEXEC, 0, JAIL | RESOLVE_NO_SYMLINKS)


def pread_nowait(fd: int, buf: bytearray | memoryview, off: int) -> int:
    """``preadv2(RWF_NOWAIT)`` into ``buf``: bytes read (a short read when only part is cached;
    0 at end of file), or ``WouldBlock``."""
    if not _RWF_NOWAIT:
        raise WouldBlock()
    try:
        return os.preadv(fd, [buf], off, _RWF_NOWAIT)
    except BlockingIOError:
        raise WouldBlock() from None
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise WouldBlock() from None
        raise


def readable_now(fd: int, off: int) -> bool | None:
    """Whether the byte at ``off`` can be read without waiting for the disk (``RWF_NOWAIT``):
    False for a page not yet read; None where the filesystem cannot say (tmpfs: EOPNOTSUPP)."""
    if not _RWF_NOWAIT:
        return None
    try:
        return os.preadv(fd, [bytearray(1)], off, _RWF_NOWAIT) == 1
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return None
        return False


def pwrite_nowait(fd: int, data: bytes | memoryview, off: int | None) -> int:
    """``pwritev2(RWF_NOWAIT)`` of ``data`` at ``off`` (``None``: the file position, for
    ``O_APPEND``): bytes written, possibly short; ``WouldBlock`` if it would wait;
    ``NotImplementedError`` where the filesystem does not support it (``EOPNOTSUPP``)."""
    if not _RWF_NOWAIT:
        raise NotImplementedError
    try:
        return os.pwritev(fd, [data], -1 if off is None else off, _RWF_NOWAIT)
    except BlockingIOError:
        raise WouldBlock() from None
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise NotImplementedError from None
        raise
