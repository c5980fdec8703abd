"""Freeing a replaced file's blocks after the reply, not before it.

When an upload's commit renames its temp file over an existing file, the old file's last link
goes and the filesystem frees its blocks inside the ``rename``: on ext4 ~0.3-0.6 s for 1 GiB
(docs/PERFORMANCE.md, "Large STOR on a real disk"), all of it before the client's ``226``
(pyftpdlib pays the same inside its ``O_TRUNC``, before the data). The commit instead opens the
old file first (``hold``): the rename then only changes the directory entry, the inode lives on
through that descriptor, and closing it (``release``) in this module's thread, after the reply,
is what frees the blocks. A crash in between leaves an orphan inode, which the filesystem's
orphan list frees at the next mount; nothing is visible in the user's tree.

Only files big enough for it to matter are held (``HOLD_FROM``): a small file's inode is freed
in microseconds, and a descriptor per replaced small file would only cost a thread wake-up.
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading

__all__ = ["HOLD_FROM", "hold", "release"]

log = logging.getLogger("ftpd")

HOLD_FROM = 32 * 1024 * 1024  # bytes: below this, freeing in the rename costs less than a hop

_queue: queue.SimpleQueue[int] = queue.SimpleQueue()
_thread: threading.Thread | None = None
_start = threading.Lock()


def hold(dir_fd: int, name: str) -> int:
    """An fd on the regular file ``name`` in ``dir_fd`` if it is at least ``HOLD_FROM`` bytes,
    else -1 (no such file, not a regular file, small, or not openable: the rename frees it)."""
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
        )
    except OSError:
        return -1
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        return -1
    if not stat.S_ISREG(st.st_mode) or st.st_size < HOLD_FROM:
        os.close(fd)
        return -1
    return fd


def release(fd: int) -> None:
    """Close ``fd`` (from ``hold``) in the reaper thread: the last reference to an unlinked inode
    frees its blocks there, off the caller's path."""
    global _thread
    if fd < 0:
        return
    with _start:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="ftpd-reaper", daemon=True)
            _thread.start()
    _queue.put(fd)


def _run() -> None:
    while True:
        fd = _queue.get()
        try:
            os.close(fd)
        except OSError as exc:  # nothing to do but say so: the blocks are freed all the same
            log.warning("closing a replaced file: %r", exc)
