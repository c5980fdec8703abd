"""Whether a directory lives on a filesystem whose calls can never wait for a disk.

tmpfs and ramfs keep files in memory only: with no swap on the machine, no call on them (open,
create, listing, rename, write, fsync) has an IO to wait for, so the rule of issue 18 ("inline
only when the kernel guarantees that it will not block") holds for every operation, not just for
the cached answers of ``nowait``. With swap, tmpfs pages may be swapped out and reading them back
waits for the swap device: then tmpfs is treated like a disk. ``IoMode`` asks this once per home
(cached by device); ``local_io.Hops`` then runs that home's file calls on the loop.

The filesystem type comes from ``/proc/self/mountinfo`` (the mount whose device number is the
directory's ``st_dev``); swap from ``/proc/swaps``. Anywhere these cannot be read: False.
"""

from __future__ import annotations

import os

__all__ = ["MEMORY_TYPES", "never_blocks", "fs_type", "swap_configured"]

MEMORY_TYPES = frozenset({"tmpfs", "ramfs"})
_by_dev: dict[int, bool] = {}


def fs_type(path: str) -> str | None:
    """The type of the filesystem mounted where ``path`` lives (its ``st_dev``), or None."""
    try:
        dev = os.stat(path).st_dev
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return None
    want = f"{os.major(dev)}:{os.minor(dev)}"
    for line in lines:
        # "36 35 0:32 / /dev/shm rw,... shared:2 - tmpfs tmpfs rw,..." (proc(5))
        fields = line.split()
        if len(fields) > 2 and fields[2] == want and " - " in line:
            return line.split(" - ", 1)[1].split()[0]
    return None


def swap_configured() -> bool:
    """True if any swap area is active (or if that cannot be known)."""
    try:
        with open("/proc/swaps", encoding="utf-8") as f:
            return len(f.read().splitlines()) > 1  # a header line, then one line per area
    except OSError:
        return True


def never_blocks(path: str) -> bool:
    """Whether every file call under ``path`` is answered from memory (tmpfs/ramfs, no swap)."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return False
    known = _by_dev.get(dev)
    if known is None:
        known = _by_dev[dev] = fs_type(path) in MEMORY_TYPES and not swap_configured()
    return known
