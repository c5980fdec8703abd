"""Giving a burst's memory back to the system once it is over (glibc's allocator, Linux).

Two glibc behaviours keep a server's RSS at its peak after a burst of uploads (issue 23: 373 →
666 MiB under ``mixed 100000``): the *dynamic* mmap threshold, raised to 256 KiB+ the first time
a 256 KiB receive buffer is freed, after which such buffers come from the heap instead of their
own mappings; and freed heap memory below a live allocation is never returned. So at start-up
the daemon fixes the threshold (buffers of 128 KiB and more are their own mappings, unmapped when
freed; this also covers the 16 MiB a scrypt verification allocates in a hashing thread, which a
login flood would otherwise leave in glibc's per-thread arenas, see ``logins.py``), and after a
burst (``trim_buffers`` freed spare buffers) the sweeper asks glibc to give back the free pages
of its heaps (``malloc_trim``). Elsewhere (musl, macOS) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["fix_mmap_threshold", "release_free_memory"]

log = logging.getLogger("ftpd")

_M_MMAP_THRESHOLD = -3  # mallopt() parameter, <malloc.h>
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value; fixing it turns the dynamic raise off


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    return libc


_LIBC = _glibc()


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Allocations of ``size`` bytes and more get their own mappings for good (process-wide: the
    daemon calls it, an application embedding ftpd decides for itself)."""
    return bool(_LIBC is not None and _LIBC.mallopt(_M_MMAP_THRESHOLD, size) == 1)


def release_free_memory() -> bool:
    """Return the free pages of the allocator's heaps to the system; True if some were."""
    return bool(_LIBC is not None and _LIBC.malloc_trim(0) == 1)
